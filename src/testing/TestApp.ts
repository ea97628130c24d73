/**
 * `TestApp`: the reference API served in-process, for tests that run thousands of requests in seconds. The same
 * routes and the same `Server.serve` (request pipeline: request id, error envelope, CORS, body limit) as the real
 * server, on an `HttpServer` with no socket; the core's `Auth` verifying tokens of a `TestIssuer` against its key set
 * held in memory; users and notifications in memory; realtime (backplane, stream tickets, event log, SSE bus) in memory; outgoing HTTP
 * answered by handlers; time from a `SettableClock`. Nothing listens, nothing connects.
 */
import * as HttpClient from "@effect/platform/HttpClient"
import type { HttpMethod } from "@effect/platform/HttpMethod"
import { Context, Effect, Layer } from "effect"
import * as Http from "../api/Http.js"
import * as AppConfig from "../core/app/AppConfig.js"
import * as Auth from "../core/auth/Auth.js"
import * as AuthAdmin from "../core/auth/AuthAdmin.js"
import * as Jwks from "../core/auth/Jwks.js"
import * as CoreLive from "../core/CoreLive.js"
import * as Server from "../core/http/Server.js"
import * as Realtime from "../core/realtime/Realtime.js"
import * as WebSocketHub from "../core/realtime/WebSocketHub.js"
import * as Lifecycle from "../core/runtime/Lifecycle.js"
import type * as Logging from "../core/runtime/Logging.js"
import * as Readiness from "../core/runtime/Readiness.js"
import * as InMemoryJobs from "./InMemoryJobs.js"
import * as InMemoryNotificationRepo from "./InMemoryNotificationRepo.js"
import * as InMemoryUserRepo from "./InMemoryUserRepo.js"
import * as InProcessServer from "./InProcessServer.js"
import * as OfflineHttpClients from "./OfflineHttpClients.js"
import * as SettableClock from "./SettableClock.js"
import * as TestIssuer from "./TestIssuer.js"

export interface RequestOptions {
  /** Sent as `Authorization: Bearer <token>`. */
  readonly token?: string
  /** A string or bytes are sent as they are, anything else as JSON; `content-type` is JSON unless `headers` say. */
  readonly body?: unknown
  readonly headers?: Readonly<Record<string, string>>
}

export interface Reply {
  readonly status: number
  /** Lower-case names. */
  readonly headers: Readonly<Record<string, string>>
  /** The body parsed as JSON; `undefined` when it is empty or not JSON. */
  readonly json: any
  readonly text: string
}

export interface Service {
  /** One request to the app, in a fiber of its own; the reply with its body read. */
  readonly request: (method: HttpMethod, path: string, options?: RequestOptions) => Effect.Effect<Reply>
  /** The app as a web handler. */
  readonly handle: (request: Request) => Promise<Response>
  /** An `HttpClient` whose requests the app answers in-process (for `HttpApiClient`): any origin will do. */
  readonly client: HttpClient.HttpClient
  readonly settings: AppConfig.Settings
}

export class TestApp extends Context.Tag("testing/TestApp")<TestApp, Service>() {}

/** The origin requests are addressed to (never resolved). */
export const origin = "http://app.invalid"

export interface Options {
  /** Settings over the kit's, as environment variables (`API_PREFIX`, `CORS_ORIGINS`, `MAX_BODY_BYTES`, ...). */
  readonly env?: Readonly<Record<string, string>>
  /** Where the `SettableClock` starts (default `SettableClock.defaultStart`). */
  readonly start?: Date
  /** Answers the app's outgoing HTTP requests the issuer does not (default: none, as if the network were down). */
  readonly http?: OfflineHttpClients.Handler
  /** Where log lines go (default standard output; only warnings and errors, unless `LOG_LEVEL` says otherwise). */
  readonly logSink?: Logging.Sink
}

/** The kit's settings: a test environment pointed at the issuer; no file is read. */
const environment = (issuer: TestIssuer.Service, env: Readonly<Record<string, string>>) => ({
  APP_ENV: "test",
  SECRET_KEY: "test-secret-key-not-secret-0123456789abcdef",
  SUPABASE_URL: issuer.url,
  SUPABASE_ANON_KEY: "test-anon-key",
  SUPABASE_SERVICE_ROLE_KEY: "test-service-role-key",
  LOG_LEVEL: "warning",
  LOG_FORMAT: "json",
  ...env
})

const requestBody = (body: unknown): string | Uint8Array | undefined =>
  body === undefined ? undefined : typeof body === "string" || body instanceof Uint8Array ? body : JSON.stringify(body)

const makeService = (handle: (request: Request) => Promise<Response>, settings: AppConfig.Settings): Service => {
  const request = (method: HttpMethod, path: string, options: RequestOptions = {}) =>
    Effect.promise(async (signal) => {
      const headers: Record<string, string> = { host: new URL(origin).host }
      const body = requestBody(options.body)
      if (body !== undefined) {
        headers["content-type"] = "application/json"
        headers["content-length"] = String(typeof body === "string" ? Buffer.byteLength(body) : body.byteLength)
      }
      if (options.token !== undefined) headers["authorization"] = `Bearer ${options.token}`
      for (const [name, value] of Object.entries(options.headers ?? {})) headers[name.toLowerCase()] = value
      const response = await handle(
        new Request(`${origin}${path}`, { method, headers, signal, ...(body === undefined ? {} : { body }) })
      )
      const text = await response.text()
      let json: unknown
      try {
        json = text === "" ? undefined : JSON.parse(text)
      } catch {
        json = undefined
      }
      return { status: response.status, headers: Object.fromEntries(response.headers), json, text }
    })
  const client = OfflineHttpClients.client((web) => Effect.promise(() => handle(web)))
  return { request, handle, client, settings }
}

/**
 * The reference API with `routes` of the caller's mounted beside it, behind the same pipeline. Provides `TestApp`,
 * `TestIssuer`, `SettableClock`, the in-memory users (`InMemoryUserRepo`, as `UserRepo` too) and the core's services
 * (`AppConfig`, `Auth`, `HttpClients`, `Readiness`, the realtime services...), which the routes may use.
 */
export const layerWith = <E, R>(routes: Layer.Layer<never, E, R>, options: Options = {}) =>
  Layer.unwrapEffect(
    Effect.gen(function*() {
      const issuer = yield* TestIssuer.TestIssuer
      const settings = yield* AppConfig.fromEnvironment(environment(issuer, options.env ?? {}))
      const auth = yield* Auth.optionsFromSettings(settings.supabase, settings.auth)
      const core = Layer.merge(
        Auth.layer(auth.auth).pipe(Layer.provideMerge(Jwks.layerStatic(issuer.keySet, auth.verifier))),
        AuthAdmin.layerFromSettings(settings.supabase)
      ).pipe(
        Layer.provideMerge(WebSocketHub.layerFromSettings(settings.websocket)),
        Layer.provideMerge(Layer.mergeAll(
          Readiness.layer(),
          OfflineHttpClients.layer(
            OfflineHttpClients.orElse(issuer.handle, options.http ?? OfflineHttpClients.unreachable),
            settings.httpClients
          ),
          InMemoryUserRepo.layer,
          InMemoryJobs.layer,
          InMemoryNotificationRepo.layer,
          Realtime.layerMemory(settings.realtime)
        )),
        Layer.provideMerge(Lifecycle.layer),
        Layer.provideMerge(Layer.succeed(AppConfig.AppConfig, settings))
      )
      const app = Layer.effect(
        TestApp,
        Effect.map(InProcessServer.InProcessServer, (server) => makeService(server.handle, settings))
      )
      return app.pipe(
        Layer.provide(Server.serve(Layer.merge(Http.Routes, routes), Server.serveOptions(settings))),
        Layer.provide(InProcessServer.layer),
        Layer.provideMerge(core),
        Layer.provide(CoreLive.observability(settings, options.logSink))
      )
    })
  ).pipe(Layer.provideMerge(TestIssuer.layer()), Layer.provideMerge(SettableClock.layer(options.start)))

/** The reference API alone (see `layerWith`). */
export const layer = layerWith(Layer.empty)

/** One request to the `TestApp` in context (see `Service.request`). */
export const request = (
  method: HttpMethod,
  path: string,
  options?: RequestOptions
): Effect.Effect<Reply, never, TestApp> => Effect.flatMap(TestApp, (app) => app.request(method, path, options))

/** The in-process `HttpClient` of the `TestApp` in context, for `HttpApiClient.make(api, { baseUrl: origin })`. */
export const layerHttpClient: Layer.Layer<HttpClient.HttpClient, never, TestApp> = Layer.effect(
  HttpClient.HttpClient,
  Effect.map(TestApp, (app) => app.client)
)
