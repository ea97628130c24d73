/**
 * The HTTP server: listens, serves a router through the request pipeline, and on shutdown stops accepting, lets
 * in-flight requests finish within a grace period, then lets the other layers close.
 */
import * as NodeHttpServer from "@effect/platform-node/NodeHttpServer"
import * as FileSystem from "@effect/platform/FileSystem"
import * as HttpIncomingMessage from "@effect/platform/HttpIncomingMessage"
import * as HttpLayerRouter from "@effect/platform/HttpLayerRouter"
import * as HttpMiddleware from "@effect/platform/HttpMiddleware"
import * as HttpServer from "@effect/platform/HttpServer"
import type * as HttpServerRequest from "@effect/platform/HttpServerRequest"
import type * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import { Context, Duration, Effect, Layer, Option, Runtime, Schedule } from "effect"
import * as Http from "node:http"
import * as Net from "node:net"
import type { Duplex } from "node:stream"
import * as ApiError from "../errors/ApiError.js"
import { Lifecycle } from "../runtime/Lifecycle.js"
import * as Logging from "../runtime/Logging.js"
import * as RequestId from "../runtime/RequestId.js"
import { MaxJsonDepth } from "./node/Exchange.js"
import * as NodeHttpAdapter from "./node/NodeHttpAdapter.js"
import * as RequestPipeline from "./RequestPipeline.js"
import * as Router from "./Router.js"
import type { CorsSettings, ServerSettings } from "./ServerSettings.js"

/** The underlying Node server, for draining and for tests that need its address. */
export class NodeServer extends Context.Tag("core/NodeServer")<NodeServer, Http.Server>() {}

export interface ListenOptions {
  readonly host: string
  readonly port: number
  /** Largest request head accepted (default 128 KiB); bigger ones get a 431 envelope. */
  readonly maxHeaderBytes?: number
  /** Time a client has to send a request's head, from its first byte (default 10 s); then 408 and the connection closes. */
  readonly headersTimeout?: Duration.DurationInput
  /**
   * Time a request has, from its head to the start of its response (default 30 s): a body still arriving then is
   * answered 408, a handler still working 503. Streaming responses and upgraded sockets are not cut.
   */
  readonly requestTimeout?: Duration.DurationInput
  /** Open connections (upgraded ones included) past which new ones are closed at once, unread (default: no limit). */
  readonly maxConnections?: number
}

/**
 * Writes an error's envelope (rendered by `ApiError.render`, like every other) straight to a socket Node took away
 * from the app (no request object exists for it) and ends it; with `close`, the socket is destroyed once that is
 * flushed, whatever the client still sends.
 */
const writeRaw = (socket: Duplex, error: ApiError.ApiError, close = false): void => {
  const { body, headers, status } = ApiError.render(error)
  const text = JSON.stringify(body)
  let head = `HTTP/1.1 ${status} ${Http.STATUS_CODES[status] ?? ""}\r\ncontent-type: application/json\r\n` +
    `content-length: ${Buffer.byteLength(text)}\r\n${RequestId.header}: ${RequestId.generate()}\r\n`
  for (const [name, value] of Object.entries(headers)) head += `${name}: ${value}\r\n`
  socket.end(`${head}connection: close\r\n\r\n${text}`)
  if (close && socket instanceof Net.Socket) socket.destroySoon()
}

/** The response Node is writing on `socket` for a request it handed to the app, if any. */
const inFlightResponse = (socket: Duplex): Http.ServerResponse | undefined => {
  // `_httpMessage` is how Node itself tells (its own `clientError` fallback checks the same field).
  const message: unknown = Reflect.get(socket, "_httpMessage")
  return message instanceof Http.ServerResponse ? message : undefined
}

/**
 * Requests Node refuses before they reach the app (a head too large, a malformed request line, a head that took
 * too long) still get the envelope and a request id, written straight to the socket, unless a response has
 * started on it already (bytes in the middle of it would corrupt it).
 */
export const answerClientError = (error: NodeJS.ErrnoException, socket: Duplex): void => {
  if (error.code === "ECONNRESET" || !socket.writable || inFlightResponse(socket)?.headersSent === true) {
    socket.destroy()
    return
  }
  if (error.code === "ERR_HTTP_REQUEST_TIMEOUT") {
    // The parser is still reading: a head completed later must not start a request on an ended socket.
    writeRaw(socket, new ApiError.RequestTimeout(), true)
    return
  }
  if (error.code === "HPE_HEADER_OVERFLOW") {
    writeRaw(socket, new ApiError.HeadersTooLarge())
    return
  }
  writeRaw(socket, new ApiError.BadRequest({ message: "Malformed request" }))
}

/**
 * `CONNECT` (a proxy's method; Node takes the socket out of HTTP for it): refused with the envelope, and the socket
 * closed, since nothing else will ever read from or time out a socket out of HTTP.
 */
const answerConnect = (_request: Http.IncomingMessage, socket: Duplex): void => {
  writeRaw(socket, new ApiError.MethodNotAllowed({ message: "CONNECT is not supported" }), true)
}

const defaultHeadersTimeout = Duration.seconds(10)
const defaultRequestTimeout = Duration.seconds(30)

/** Listens on `host:port` (port 0 picks a free one) and provides the platform's HTTP server services. */
export const layerListen = (options: ListenOptions) =>
  Layer.scopedContext(
    Effect.gen(function*() {
      const headersTimeout = Duration.toMillis(options.headersTimeout ?? defaultHeadersTimeout)
      const server = Http.createServer({
        maxHeaderSize: options.maxHeaderBytes ?? 128 * 1024,
        headersTimeout,
        // Node checks its timeouts on this interval: a fraction of the limit keeps the answer close to it.
        connectionsCheckingInterval: Math.min(1000, Math.max(50, Math.floor(headersTimeout / 5))),
        // The adapter's request timeout covers each request from its head to its response, bodies included.
        requestTimeout: 0,
        // Answered by the request pipeline (with the envelope), not by Node's bare 400.
        requireHostHeader: false
      })
      server.on("clientError", answerClientError)
      server.on("connect", answerConnect)
      // Expectations other than 100-continue: the request pipeline answers 417, where Node would answer a bare one.
      server.on("checkExpectation", (request, response) => server.emit("request", request, response))
      if (options.maxConnections !== undefined) yield* limitConnections(server, options.maxConnections)
      const httpServer = yield* NodeHttpAdapter.make(() => server, { host: options.host, port: options.port }, {
        requestTimeout: options.requestTimeout ?? defaultRequestTimeout,
        requestIds: true
      })
      return Context.make(NodeServer, server).pipe(Context.add(HttpServer.HttpServer, httpServer))
    })
  ).pipe(Layer.provideMerge(NodeHttpServer.layerContext))

/** Past `max` open connections Node closes new ones at once; that is logged, at most every ten seconds. */
const limitConnections = (server: Http.Server, max: number) =>
  Effect.map(Effect.runtime<never>(), (runtime) => {
    server.maxConnections = max
    let refused = 0
    let loggedAt: number | undefined
    server.on("drop", () => {
      refused++
      const now = performance.now()
      if (loggedAt !== undefined && now - loggedAt < 10_000) return
      loggedAt = now
      Runtime.runFork(runtime)(
        Effect.logWarning(
          Logging.fields("Connection limit reached: new connections refused", { max_connections: max, refused })
        )
      )
      refused = 0
    })
  })

export interface ServeOptions extends Omit<RequestPipeline.Options, "isDraining"> {
  /** Larger request bodies are answered 413, whether announced by `Content-Length` or streamed. */
  readonly maxBodyBytes: number
  /** How deeply a JSON body may nest (default 64): deeper ones are answered 400 before they are parsed. */
  readonly maxJsonDepth?: number
  /** A span per request (`TRACING_ENABLED`, default off): without an exporter it only costs time per request. */
  readonly tracing?: boolean
}

/**
 * Serves `routes` (an `HttpLayerRouter` app) with the request pipeline around every route, unknown ones included, on
 * the `HttpServer` it is given: the listening one (`layerListen`), or one with no socket that tests drive in-process.
 */
export const serve = <A, E, R>(routes: Layer.Layer<A, E, R>, options: ServeOptions) =>
  Router.serve(
    Layer.merge(
      routes,
      Layer.unwrapEffect(
        Effect.map(Lifecycle, (lifecycle) => {
          const pipeline = RequestPipeline.make({ ...options, isDraining: lifecycle.isDraining })
          // The pipeline answers every error itself; `handles: unknown` tells the router's types so.
          return HttpLayerRouter.middleware<{ handles: unknown }>()(
            (app): Effect.Effect<
              HttpServerResponse.HttpServerResponse,
              HttpLayerRouter.unhandled,
              HttpServerRequest.HttpServerRequest
            > => pipeline(app),
            { global: true }
          )
        })
      )
    ),
    { disableLogger: true, disableListenLog: true }
  ).pipe(
    Layer.provide(Layer.mergeAll(
      Layer.succeed(HttpIncomingMessage.MaxBodySize, Option.some(FileSystem.Size(options.maxBodyBytes))),
      Layer.succeed(MaxJsonDepth, Option.some(options.maxJsonDepth ?? 64))
    )),
    HttpMiddleware.withTracerDisabledWhen(() => options.tracing !== true)
  )

const connectionCount = (server: Http.Server) =>
  Effect.async<number>((resume) => {
    server.getConnections((error, count) => resume(Effect.succeed(error ? 0 : count)))
  })

/**
 * Drains the server when its scope closes. Build it on top of `serve` so it runs first at shutdown, while the
 * routes still answer requests that arrive on open connections.
 */
export const layerDrainOnShutdown = (grace: Duration.DurationInput) =>
  Layer.scopedDiscard(
    Effect.gen(function*() {
      const server = yield* NodeServer
      const lifecycle = yield* Lifecycle
      yield* Effect.addFinalizer(() =>
        Effect.gen(function*() {
          yield* lifecycle.beginDrain
          server.close()
          server.closeIdleConnections()
          const open = yield* connectionCount(server)
          yield* Effect.logInfo(`Shutting down: waiting for ${open} open connection(s)`)
          const drained = yield* Effect.gen(function*() {
            server.closeIdleConnections()
            return yield* connectionCount(server)
          }).pipe(
            Effect.repeat({ schedule: Schedule.spaced(Duration.millis(50)), until: (count) => count === 0 }),
            // Finalizers run uninterruptibly: without this the timeout would wait for the loop to end by itself.
            Effect.interruptible,
            Effect.timeoutOption(grace)
          )
          if (Option.isNone(drained)) {
            yield* Effect.logWarning("Grace period over: closing the remaining connections")
            server.closeAllConnections()
          }
          yield* Effect.logInfo("HTTP server drained")
        })
      )
    })
  )

const logAddress = Layer.effectDiscard(
  Effect.flatMap(HttpServer.HttpServer, (server) =>
    Effect.logInfo(
      server.address._tag === "TcpAddress"
        ? `Listening on http://${server.address.hostname}:${server.address.port}`
        : `Listening on ${server.address.path}`
    ))
)

/** What the server reads of the app's settings. */
export interface Settings {
  readonly server: ServerSettings
  readonly cors: CorsSettings
  readonly tracingEnabled: boolean
}

/** What `serve` reads of the settings: the request pipeline's and the requests' own. */
export const serveOptions = (settings: Settings): ServeOptions => ({
  corsOrigins: settings.cors.origins,
  corsAllowCredentials: settings.cors.allowCredentials,
  maxBodyBytes: settings.server.maxBodyBytes,
  maxJsonDepth: settings.server.maxJsonDepth,
  tracing: settings.tracingEnabled
})

/**
 * The whole server from its settings: listening, serving `routes` through the pipeline, drained on shutdown. `serve`
 * on any other `HttpServer` (an in-process one, for tests) answers as this one does.
 */
export const layerFromSettings = <E, R>(routes: Layer.Layer<never, E, R>, settings: Settings) =>
  layerDrainOnShutdown(settings.server.shutdownGrace).pipe(
    Layer.provide(logAddress),
    Layer.provide(serve(routes, serveOptions(settings))),
    Layer.provideMerge(layerListen({
      host: settings.server.host,
      port: settings.server.port,
      maxHeaderBytes: settings.server.maxHeaderBytes,
      headersTimeout: settings.server.headersTimeout,
      requestTimeout: settings.server.requestTimeout,
      maxConnections: settings.server.maxConnections
    }))
  )
