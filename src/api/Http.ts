/** The reference API's HTTP server: its routes behind the core's request pipeline, drained on shutdown. */
import { Effect, Layer } from "effect"
import { AppConfig, type Settings } from "../core/app/AppConfig.js"
import * as HttpApiRoutes from "../core/http/HttpApiRoutes.js"
import * as Server from "../core/http/Server.js"
import * as Jobs from "../core/jobs/Jobs.js"
import { WebSocketHub } from "../core/realtime/WebSocketHub.js"
import * as DemoJob from "../domain/DemoJob.js"
import * as NotificationRepo from "../domain/NotificationRepo.js"
import * as UserRepo from "../domain/UserRepo.js"
import * as UserSync from "../domain/UserSync.js"
import { AdminUsersLive } from "./AdminUsers.js"
import { served } from "./Api.js"
import { AdminAuthenticationLive, AuthenticationLive } from "./Authentication.js"
import { ConsoleRoutes } from "./console/ConsoleRoutes.js"
import { EventsRoutes } from "./Events.js"
import { JobsLive } from "./Jobs.js"
import { MeLive } from "./Me.js"
import { NotificationsLive } from "./Notifications.js"
import * as StreamAuth from "./StreamAuth.js"
import { StreamTicketsLive } from "./StreamTickets.js"
import { SystemRoutes } from "./SystemRoutes.js"
import { publishJobEvent, WebSocketRoutes } from "./WebSocketRoutes.js"

/** The API's routes under the configured prefix, each group with its handlers and their dependencies. */
const ApiRoutes = Layer.unwrapEffect(
  Effect.map(AppConfig, (settings) => {
    const api = served(settings.core.apiPrefix)
    return HttpApiRoutes.layer(api).pipe(
      Layer.provide([MeLive(api), AdminUsersLive(api), StreamTicketsLive(api), NotificationsLive(api), JobsLive(api)]),
      Layer.provide([AuthenticationLive, AdminAuthenticationLive])
    )
  })
)

/** The background jobs, with the reference API's kinds of job, on this instance's workers; watchers told of each step. */
const JobRunner = (settings: Settings) =>
  Layer.unwrapEffect(Effect.map(WebSocketHub, (hub) =>
    Jobs.layerFromSettings(settings.jobs, {
      handlers: { [DemoJob.kind]: DemoJob.handler },
      publish: publishJobEvent(hub)
    })))

/**
 * Every route of the reference API (the system probes and docs, the console page, the API under its prefix, the
 * event stream and the WebSockets), on the `UserRepo` and `NotificationRepo` the caller provides: the Postgres ones
 * in the server (`layer`), in-memory ones in the testing kit's `TestApp`.
 */
export const Routes = Layer.mergeAll(
  SystemRoutes,
  ConsoleRoutes,
  Layer.mergeAll(ApiRoutes, EventsRoutes, WebSocketRoutes).pipe(
    Layer.provide(StreamAuth.layer),
    Layer.provide(UserSync.layer())
  )
)

/** The server for `settings`; `extraRoutes` lets tests mount routes of their own behind the same pipeline. */
export const layerWith = <E, R>(settings: Settings, extraRoutes: Layer.Layer<never, E, R>) =>
  Server.layerFromSettings(Layer.merge(Routes, extraRoutes), settings).pipe(
    Layer.provide(Layer.merge(UserRepo.layer, NotificationRepo.layer)),
    Layer.provide(JobRunner(settings))
  )

export const layer = (settings: Settings) => layerWith(settings, Layer.empty)
