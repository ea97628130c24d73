/**
 * `GET /console`: a page that shows the realtime features at work (notifications over SSE, a job's progress over
 * WebSocket), served with its script and styles by the server itself, and nothing fetched from elsewhere.
 */
import * as HttpLayerRouter from "@effect/platform/HttpLayerRouter"
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import { Effect, Layer, Option } from "effect"
import { AppConfig } from "../../core/app/AppConfig.js"
import { css, html } from "./ConsolePage.js"
import { script } from "./ConsoleScript.js"
import { DevSignIn } from "./DevSignIn.js"

/** Same origin only: the page talks to this server and nothing else (its WebSockets included). */
const contentSecurityPolicy = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "connect-src 'self'",
  "img-src 'self' data:",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'"
].join("; ")

const asset = (body: string, contentType: string) => {
  const bytes = new TextEncoder().encode(body)
  return Effect.sync(() =>
    HttpServerResponse.uint8Array(bytes, {
      contentType,
      headers: {
        "cache-control": "no-cache",
        "content-security-policy": contentSecurityPolicy,
        "x-content-type-options": "nosniff",
        "referrer-policy": "no-referrer"
      }
    })
  )
}

export const ConsoleRoutes = Layer.unwrapEffect(Effect.gen(function*() {
  const settings = yield* AppConfig
  const devSignIn = yield* Effect.serviceOption(DevSignIn)
  const page = html({ apiPrefix: settings.core.apiPrefix, devSignIn: Option.isSome(devSignIn) })
  const routes = [
    HttpLayerRouter.route("GET", "/console", asset(page, "text/html; charset=utf-8")),
    HttpLayerRouter.route("GET", "/console/console.js", asset(script, "text/javascript; charset=utf-8")),
    HttpLayerRouter.route("GET", "/console/console.css", asset(css, "text/css; charset=utf-8"))
  ]
  return HttpLayerRouter.addAll(Option.match(devSignIn, {
    onNone: () => routes,
    onSome: (service) => [
      ...routes,
      HttpLayerRouter.route(
        "POST",
        "/console/dev-sign-in",
        Effect.map(service.signIn, (user) =>
          HttpServerResponse.unsafeJson(
            { access_token: user.accessToken, token_type: "bearer", email: user.email },
            { status: 201, headers: { "cache-control": "no-store" } }
          ))
      )
    ]
  }))
}))
