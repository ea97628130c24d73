/** The reference API's HTTP server: its routes behind the core's request pipeline, drained on shutdown. */
import * as HttpServer from "@effect/platform/HttpServer"
import { Effect, Layer } from "effect"
import { AppConfig, type Settings } from "../core/config/AppConfig.js"
import * as HttpApiRoutes from "../core/http/HttpApiRoutes.js"
import * as Server from "../core/http/Server.js"
import { UserRepo } from "../domain/UserRepo.js"
import * as UserSync from "../domain/UserSync.js"
import { AdminUsersLive } from "./AdminUsers.js"
import { served } from "./Api.js"
import { AdminAuthenticationLive, AuthenticationLive } from "./Authentication.js"
import { MeLive } from "./Me.js"
import { SystemRoutes } from "./SystemRoutes.js"

/** The API's routes under the configured prefix, each group with its handlers and their dependencies. */
const ApiRoutes = Layer.unwrapEffect(
  Effect.map(AppConfig, (settings) => {
    const api = served(settings.core.apiPrefix)
    return HttpApiRoutes.layer(api).pipe(
      Layer.provide([MeLive(api), AdminUsersLive(api)]),
      Layer.provide([AuthenticationLive, AdminAuthenticationLive]),
      Layer.provide(UserSync.layer().pipe(Layer.provide(UserRepo.Default)))
    )
  })
)

export const Routes = Layer.merge(SystemRoutes, ApiRoutes)

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
        maxBodyBytes: settings.server.maxBodyBytes,
        maxJsonDepth: settings.server.maxJsonDepth,
        tracing: settings.tracingEnabled
      })
    ),
    Layer.provideMerge(Server.layerListen({
      host: settings.server.host,
      port: settings.server.port,
      maxHeaderBytes: settings.server.maxHeaderBytes,
      headersTimeout: settings.server.headersTimeout,
      requestTimeout: settings.server.requestTimeout,
      maxConnections: settings.server.maxConnections
    }))
  )

export const layer = (settings: Settings) => layerWith(settings, Layer.empty)
