/**
 * The system probes and the docs, served straight off the router: probes are hit constantly and must stay cheap,
 * so their bodies are encoded once at startup. Their contract is `SystemGroup`, documented with the API.
 */
import * as HttpApiScalar from "@effect/platform/HttpApiScalar"
import * as HttpLayerRouter from "@effect/platform/HttpLayerRouter"
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import * as OpenApi from "@effect/platform/OpenApi"
import { Effect, Layer, Schema, Scope } from "effect"
import { AppConfig } from "../core/app/AppConfig.js"
import * as ApiError from "../core/errors/ApiError.js"
import { Readiness } from "../core/runtime/Readiness.js"
import { documented } from "./Api.js"
import { Health, Ready } from "./SystemGroup.js"

const preEncoded = (json: string) => {
  const body = new TextEncoder().encode(json)
  return () => HttpServerResponse.uint8Array(body, { contentType: "application/json" })
}

const probes = Layer.unwrapEffect(Effect.gen(function*() {
  const settings = yield* AppConfig
  const readiness = yield* Readiness
  const health = preEncoded(JSON.stringify(
    Schema.encodeSync(Health)({
      status: "ok",
      version: settings.core.version,
      environment: settings.core.env
    })
  ))
  // Failures are rendered by the request pipeline, like every other error.
  const ready = Effect.flatMap(readiness.run, (report) =>
    report.ready
      ? Effect.succeed(
        HttpServerResponse.unsafeJson(Schema.encodeSync(Ready)({ status: "ready", checks: report.checks }))
      )
      : Effect.fail(new ApiError.ServiceUnavailable({ message: "Not ready", details: { checks: report.checks } })))
  return HttpLayerRouter.addAll([
    HttpLayerRouter.route("GET", "/health", Effect.sync(health)),
    HttpLayerRouter.route("GET", "/ready", ready)
  ])
}))

/**
 * The docs page embeds its viewer's script, megabytes of it: the page is built when it is first asked for, and the
 * built server (`scripts/build.ts`) reads that script from `node_modules` only then, so a server nobody reads the docs
 * of never holds it.
 */
const docsPage = (api: ReturnType<typeof documented>) =>
  Effect.gen(function*() {
    const scope = yield* Effect.scope
    const page = yield* Effect.cached(
      HttpLayerRouter.toHttpEffect(
        HttpApiScalar.layerHttpLayerRouter({ api, path: "/docs", scalar: { withDefaultFonts: false } })
      ).pipe(
        Effect.provideService(Scope.Scope, scope),
        // A router of its own: in the app's memo map the router layer is the app's, which has `/docs` already.
        Effect.provideServiceEffect(Layer.CurrentMemoMap, Layer.makeMemoMap)
      )
    )
    return HttpLayerRouter.add("GET", "/docs", Effect.flatten(page))
  })

const docs = Layer.unwrapScoped(Effect.gen(function*() {
  const settings = yield* AppConfig
  if (!settings.features.docsEnabled) return Layer.empty
  const api = documented(settings.core.apiPrefix, settings.core.version)
  const spec = preEncoded(JSON.stringify(OpenApi.fromApi(api)))
  return Layer.merge(HttpLayerRouter.add("GET", "/openapi.json", Effect.sync(spec)), yield* docsPage(api))
}))

export const SystemRoutes = Layer.merge(probes, docs)
