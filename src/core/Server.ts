/**
 * The HTTP server: listens, serves a router through the request pipeline, and on shutdown stops accepting, lets
 * in-flight requests finish within a grace period, then lets the other layers close.
 */
import * as FileSystem from "@effect/platform/FileSystem"
import * as HttpIncomingMessage from "@effect/platform/HttpIncomingMessage"
import * as HttpLayerRouter from "@effect/platform/HttpLayerRouter"
import * as HttpMiddleware from "@effect/platform/HttpMiddleware"
import * as HttpServer from "@effect/platform/HttpServer"
import type * as HttpServerRequest from "@effect/platform/HttpServerRequest"
import type * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import * as NodeHttpServer from "@effect/platform-node/NodeHttpServer"
import { Context, Duration, Effect, Layer, Option, Schedule } from "effect"
import * as Http from "node:http"
import type { Duplex } from "node:stream"
import { Lifecycle } from "./Lifecycle.js"
import * as NodeHttpAdapter from "./NodeHttpAdapter.js"
import * as RequestId from "./RequestId.js"
import * as RequestPipeline from "./RequestPipeline.js"

/** The underlying Node server, for draining and for tests that need its address. */
export class NodeServer extends Context.Tag("core/NodeServer")<NodeServer, Http.Server>() {}

export interface ListenOptions {
  readonly host: string
  readonly port: number
  /** Largest request head accepted (default 128 KiB); bigger ones get a 431 envelope. */
  readonly maxHeaderBytes?: number
}

const reasons: Record<number, string> = {
  400: "Bad Request",
  408: "Request Timeout",
  431: "Request Header Fields Too Large"
}

/**
 * Requests Node refuses before they reach the app (a head too large, a malformed request line, a timeout) still
 * get the envelope and a request id, written straight to the socket.
 */
export const answerClientError = (error: NodeJS.ErrnoException, socket: Duplex): void => {
  if (error.code === "ECONNRESET" || !socket.writable) {
    socket.destroy()
    return
  }
  const [status, code, message] = error.code === "HPE_HEADER_OVERFLOW"
    ? [431, "HEADERS_TOO_LARGE", "Request headers too large"] as const
    : error.code === "ERR_HTTP_REQUEST_TIMEOUT"
    ? [408, "REQUEST_TIMEOUT", "Request timed out"] as const
    : [400, "BAD_REQUEST", "Malformed request"] as const
  const body = JSON.stringify({ error: { code, message } })
  socket.end(
    `HTTP/1.1 ${status} ${reasons[status]}\r\ncontent-type: application/json\r\n` +
      `content-length: ${Buffer.byteLength(body)}\r\n${RequestId.header}: ${RequestId.generate()}\r\n` +
      `connection: close\r\n\r\n${body}`
  )
}

/** Listens on `host:port` (port 0 picks a free one) and provides the platform's HTTP server services. */
export const layerListen = (options: ListenOptions) =>
  Layer.scopedContext(
    Effect.gen(function*() {
      const server = Http.createServer({ maxHeaderSize: options.maxHeaderBytes ?? 128 * 1024 })
      server.on("clientError", answerClientError)
      const httpServer = yield* NodeHttpAdapter.make(() => server, { host: options.host, port: options.port })
      return Context.make(NodeServer, server).pipe(Context.add(HttpServer.HttpServer, httpServer))
    })
  ).pipe(Layer.provideMerge(NodeHttpServer.layerContext))

export interface ServeOptions extends Omit<RequestPipeline.Options, "isDraining"> {
  /** A span per request (`TRACING_ENABLED`, default off): without an exporter it only costs time per request. */
  readonly tracing?: boolean
}

/**
 * Serves `routes` (an `HttpLayerRouter` app) with the request pipeline around every route, unknown ones included.
 */
export const serve = <A, E, R>(routes: Layer.Layer<A, E, R>, options: ServeOptions) =>
  HttpLayerRouter.serve(
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
    Layer.provide(
      Layer.succeed(HttpIncomingMessage.MaxBodySize, Option.some(FileSystem.Size(options.maxBodyBytes)))
    ),
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
