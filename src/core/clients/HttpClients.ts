/** The four shared outgoing HTTP clients (scraper, blog, general, Supabase auth): own pool, limits, default timeout. */
import * as NodeHttpClient from "@effect/platform-node/NodeHttpClient"
import * as HttpClient from "@effect/platform/HttpClient"
import * as HttpClientError from "@effect/platform/HttpClientError"
import * as HttpClientRequest from "@effect/platform/HttpClientRequest"
import * as HttpClientResponse from "@effect/platform/HttpClientResponse"
import * as HttpIncomingMessage from "@effect/platform/HttpIncomingMessage"
import type * as UrlParams from "@effect/platform/UrlParams"
import { Cause, Context, Duration, Effect, FiberRef, Inspectable, Layer, Option, Stream } from "effect"
import { dual } from "effect/Function"
import type * as Scope from "effect/Scope"
import { currentRequestId, header as requestIdHeader } from "../runtime/RequestId.js"
import { makeDispatcher } from "./Dispatcher.js"

export type Name = "scraper" | "blog" | "general" | "supabaseAuth"

export const names: ReadonlyArray<Name> = ["scraper", "blog", "general", "supabaseAuth"]

export interface Limits {
  /** Default budget of one request: for the response headers, then again for reading the body. */
  readonly timeout: Duration.Duration
  /** Most connections open at once per host. */
  readonly maxConnections: number
  /** Most idle kept-alive connections per host. */
  readonly maxKeepAlive: number
}

/** Every client's limits. */
export type Settings = { readonly [N in Name]: Limits }

/** The default limits of each client (timeout / max connections / keep-alive). */
export const defaults: Settings = {
  scraper: { timeout: Duration.seconds(60), maxConnections: 10, maxKeepAlive: 3 },
  blog: { timeout: Duration.seconds(120), maxConnections: 5, maxKeepAlive: 2 },
  general: { timeout: Duration.seconds(60), maxConnections: 5, maxKeepAlive: 2 },
  supabaseAuth: { timeout: Duration.seconds(10), maxConnections: 10, maxKeepAlive: 5 }
}

/** Per-client overrides of `defaults`; what is left out keeps its default. */
export type Options = { readonly [N in Name]?: Partial<Limits> | undefined }

export interface Service {
  readonly scraper: HttpClient.HttpClient
  readonly blog: HttpClient.HttpClient
  readonly general: HttpClient.HttpClient
  readonly supabaseAuth: HttpClient.HttpClient
  readonly get: (name: Name) => HttpClient.HttpClient
}

export class HttpClients extends Context.Tag("core/HttpClients")<HttpClients, Service>() {}

// Per-request timeout

/** The timeout chosen for requests started in this fiber; none means each client's default. */
export const currentTimeout: FiberRef.FiberRef<Option.Option<Duration.Duration>> = FiberRef.unsafeMake(
  Option.none<Duration.Duration>()
)

/**
 * Runs `effect` with `timeout` in place of the client's default for the requests it starts, and for reading
 * their bodies. Meant for one call: `clients.general.get(url).pipe(HttpClients.withTimeout("5 seconds"))`.
 * It is an effect transformer, so `HttpClient.transformResponse(client, withTimeout(...))` derives a client
 * with another default.
 */
export const withTimeout: {
  (timeout: Duration.DurationInput): <A, E, R>(effect: Effect.Effect<A, E, R>) => Effect.Effect<A, E, R>
  <A, E, R>(effect: Effect.Effect<A, E, R>, timeout: Duration.DurationInput): Effect.Effect<A, E, R>
} = dual(
  2,
  <A, E, R>(effect: Effect.Effect<A, E, R>, timeout: Duration.DurationInput): Effect.Effect<A, E, R> =>
    Effect.locally(effect, currentTimeout, Option.some(Duration.decode(timeout)))
)

/**
 * Whether a client error is one of these clients' timeouts (the auth layer answers 503 for them): a
 * `RequestError` with reason `Transport` when the response headers are late (transient for
 * `HttpClient.retryTransient`), a `ResponseError` with reason `Decode` when the body is. Either way the cause is
 * a `Cause.TimeoutException`.
 */
export const isTimeout = (error: HttpClientError.HttpClientError): boolean => Cause.isTimeoutException(error.cause)

const timeoutCause = (timeout: Duration.Duration, what: string) =>
  new Cause.TimeoutException(`${what} within ${Duration.format(timeout)}`)

/** A response whose body reads share the request's timeout; a streamed body must send each chunk within it. */
class TimedResponse extends Inspectable.Class implements HttpClientResponse.HttpClientResponse {
  readonly [HttpClientResponse.TypeId]: HttpClientResponse.TypeId = HttpClientResponse.TypeId
  readonly [HttpIncomingMessage.TypeId]: HttpIncomingMessage.TypeId = HttpIncomingMessage.TypeId

  constructor(readonly original: HttpClientResponse.HttpClientResponse, readonly timeout: Duration.Duration) {
    super()
  }

  get request() {
    return this.original.request
  }
  get status() {
    return this.original.status
  }
  get headers() {
    return this.original.headers
  }
  get cookies() {
    return this.original.cookies
  }
  get remoteAddress() {
    return this.original.remoteAddress
  }

  private timedOut(what: string): HttpClientError.ResponseError {
    const cause = timeoutCause(this.timeout, what)
    return new HttpClientError.ResponseError({
      request: this.request,
      response: this,
      reason: "Decode",
      description: cause.message,
      cause
    })
  }

  private bounded<A>(
    read: Effect.Effect<A, HttpClientError.ResponseError>
  ): Effect.Effect<A, HttpClientError.ResponseError> {
    return Effect.timeoutFail(read, { duration: this.timeout, onTimeout: () => this.timedOut("no response body") })
  }

  get text(): Effect.Effect<string, HttpClientError.ResponseError> {
    return this.bounded(this.original.text)
  }
  get json(): Effect.Effect<unknown, HttpClientError.ResponseError> {
    return this.bounded(this.original.json)
  }
  get urlParamsBody(): Effect.Effect<UrlParams.UrlParams, HttpClientError.ResponseError> {
    return this.bounded(this.original.urlParamsBody)
  }
  get arrayBuffer(): Effect.Effect<ArrayBuffer, HttpClientError.ResponseError> {
    return this.bounded(this.original.arrayBuffer)
  }
  get formData(): Effect.Effect<FormData, HttpClientError.ResponseError> {
    return this.bounded(this.original.formData)
  }
  get stream(): Stream.Stream<Uint8Array, HttpClientError.ResponseError> {
    return Stream.timeoutFail(this.original.stream, () => this.timedOut("no body chunk"), this.timeout)
  }

  toJSON() {
    return this.original.toJSON()
  }
}

/** Applies the timeout in force (the fiber's override, else `defaultTimeout`) as a typed `RequestError`. */
const withDefaultTimeout = (client: HttpClient.HttpClient, defaultTimeout: Duration.Duration): HttpClient.HttpClient =>
  HttpClient.transform(client, (response, request) =>
    Effect.flatMap(FiberRef.get(currentTimeout), (override) => {
      const timeout = Option.getOrElse(override, () => defaultTimeout)
      return response.pipe(
        Effect.timeoutFail({
          duration: timeout,
          onTimeout: () => {
            const cause = timeoutCause(timeout, "no response")
            return new HttpClientError.RequestError({ request, reason: "Transport", description: cause.message, cause })
          }
        }),
        Effect.map((response): HttpClientResponse.HttpClientResponse => new TimedResponse(response, timeout))
      )
    }))

/** Forwards the current request id, unless the caller set the header. */
const withRequestId = (client: HttpClient.HttpClient): HttpClient.HttpClient =>
  HttpClient.mapRequestEffect(
    client,
    (request) =>
      Effect.map(FiberRef.get(currentRequestId), (id) =>
        id === "" || request.headers[requestIdHeader] !== undefined
          ? request
          : HttpClientRequest.setHeader(request, "X-Request-ID", id))
  )

/** `transport` with the clients' behaviour: a default timeout (overridable per request), the request id forwarded. */
const withLimits = (transport: HttpClient.HttpClient, limits: Limits): HttpClient.HttpClient =>
  withDefaultTimeout(withRequestId(transport), limits.timeout)

/** One client on its own undici dispatcher, destroyed (with its sockets) when the scope closes. */
export const makeClient = (limits: Limits): Effect.Effect<HttpClient.HttpClient, never, Scope.Scope> =>
  Effect.map(
    Effect.acquireRelease(
      Effect.sync(() => makeDispatcher(limits)),
      (dispatcher) => Effect.promise(() => dispatcher.destroy())
    ),
    (dispatcher) => withLimits(NodeHttpClient.makeUndici(dispatcher), limits)
  )

const limitsOf = (options: Options, name: Name): Limits => ({ ...defaults[name], ...options[name] })

const service = (clients: { readonly [N in Name]: HttpClient.HttpClient }): Service => ({
  ...clients,
  get: (name) => clients[name]
})

export const make = (options: Options = {}): Effect.Effect<Service, never, Scope.Scope> =>
  Effect.gen(function*() {
    return service({
      scraper: yield* makeClient(limitsOf(options, "scraper")),
      blog: yield* makeClient(limitsOf(options, "blog")),
      general: yield* makeClient(limitsOf(options, "general")),
      supabaseAuth: yield* makeClient(limitsOf(options, "supabaseAuth"))
    })
  })

export const layer = (options: Options = {}): Layer.Layer<HttpClients> => Layer.scoped(HttpClients, make(options))

/**
 * The four clients over one `transport` instead of pools of their own, as tests use them: a transport that hands
 * each request to a function answers in-process, with no socket. Default timeouts, their per-request override and
 * the forwarded request id work as on the pooled clients; connection limits belong to pools and do not apply.
 */
export const layerWithTransport = (transport: HttpClient.HttpClient, options: Options = {}): Layer.Layer<HttpClients> =>
  Layer.succeed(
    HttpClients,
    service({
      scraper: withLimits(transport, limitsOf(options, "scraper")),
      blog: withLimits(transport, limitsOf(options, "blog")),
      general: withLimits(transport, limitsOf(options, "general")),
      supabaseAuth: withLimits(transport, limitsOf(options, "supabaseAuth"))
    })
  )

/** The clients from their settings group (`HttpClientsSettings`). */
export const layerFromSettings = (settings: Settings): Layer.Layer<HttpClients> => layer(settings)
