/** The reference API's HTTP server: its routes behind the core's request pipeline, drained on shutdown. */
import * as HttpServer from "@effect/platform/HttpServer"
import { Effect, Layer } from "effect"
import type { Settings } from "../core/AppConfig.js"
import * as Server from "../core/Server.js"
import { SystemRoutes } from "./SystemRoutes.js"

export const Routes = SystemRoutes

const logAddress = Layer.effectDiscard(
  Effect.flatMap(HttpServer.HttpServer, (server) =>
    Effect.logInfo(
      server.address._tag === "TcpAddress"
        ? `Listening on http://${server.address.hostname}:${server.address.port}`
        : `Listening on ${server.address.path}`
    ))
)

/** The server for `settings`; `extraRoutes` lets tests mount routes of their own behind the same pipeline. */
export const layerWith = <E, R>(settings: Settings, extraRoutes: Layer.Layer<never, E, R>) =>
  Server.layerDrainOnShutdown(settings.server.shutdownGrace).pipe(
    Layer.provide(logAddress),
    Layer.provide(
      Server.serve(Layer.merge(Routes, extraRoutes), {
        corsOrigins: settings.cors.origins,
        corsAllowCredentials: settings.cors.allowCredentials,
        maxBodyBytes: settings.server.maxBodyBytes
      })
    ),
    Layer.provideMerge(Server.layerListen({ host: settings.server.host, port: settings.server.port }))
  )

export const layer = (settings: Settings) => layerWith(settings, Layer.empty)
