/**
 * An `HttpServer` with no socket: what the core's `Server.serve` serves on it is reached through a web handler
 * (`Request` in, `Response` out). Each request runs in a fiber of its own, forked from the server's runtime as the
 * listening server does, with the pre-response handlers applied (`HttpApp.toHandled`), so no fiber state (request id,
 * queued headers) passes from one request to the next.
 */
import * as NodeHttpServer from "@effect/platform-node/NodeHttpServer"
import * as HttpApp from "@effect/platform/HttpApp"
import * as HttpServer from "@effect/platform/HttpServer"
import { Context, Effect, Layer } from "effect"

export interface Service {
  /** Serves one request; fails if nothing is served (yet, or any more). */
  readonly handle: (request: Request) => Promise<Response>
}

export class InProcessServer extends Context.Tag("testing/InProcessServer")<InProcessServer, Service>() {}

/** The server, with the platform's Node services (files, paths, ETags) as the listening server has them. */
export const layer = Layer.effectContext(
  Effect.sync(() => {
    let serving: ((request: Request) => Promise<Response>) | undefined
    const server = HttpServer.make({
      // Never resolved: the address only tells logs and tests that nothing listens.
      address: { _tag: "TcpAddress", hostname: "in-process.invalid", port: 0 },
      serve: (app, middleware) =>
        Effect.flatMap(Effect.runtime<never>(), (runtime) =>
          Effect.acquireRelease(
            Effect.sync(() => {
              serving = HttpApp.toWebHandlerRuntime(runtime)(app, middleware)
            }),
            () =>
              Effect.sync(() => {
                serving = undefined
              })
          ))
    })
    const handle = (request: Request) =>
      serving === undefined ? Promise.reject(new Error("InProcessServer: no app is served")) : serving(request)
    return Context.make(InProcessServer, { handle }).pipe(Context.add(HttpServer.HttpServer, server))
  })
).pipe(Layer.merge(NodeHttpServer.layerContext))
