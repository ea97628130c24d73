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
import { Lifecycle } from "./Lifecycle.js"
import * as RequestPipeline from "./RequestPipeline.js"

/** The underlying Node server, for draining and for tests that need its address. */
export class NodeServer extends Context.Tag("core/NodeServer")<NodeServer, Http.Server>() {}

export interface ListenOptions {
  readonly host: string
  readonly port: number
}

/** Listens on `host:port` (port 0 picks a free one) and provides the platform's HTTP server services. */
export const layerListen = (options: ListenOptions) =>
  Layer.scopedContext(
    Effect.gen(function*() {
      const server = Http.createServer()
      const httpServer = yield* NodeHttpServer.make(() => server, { host: options.host, port: options.port })
      return Context.make(NodeServer, server).pipe(Context.add(HttpServer.HttpServer, httpServer))
    })
  ).pipe(Layer.provideMerge(NodeHttpServer.layerContext))

export interface ServeOptions extends Omit<RequestPipeline.Options, "isDraining"> {}

/**
 * Serves `routes` (an `HttpLayerRouter` app) with the request pipeline around every route, unknown ones included.
 * The platform's tracer is off: with no exporter configured it only costs time on every request.
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
    HttpMiddleware.withTracerDisabledWhen(() => true)
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
