/** The reference API's HTTP server: its routes behind the core's request pipeline, drained on shutdown. */
import { Effect, Layer } from "effect"
import { AppConfig, type Settings } from "../core/app/AppConfig.js"
import * as HttpApiRoutes from "../core/http/HttpApiRoutes.js"
import * as Server from "../core/http/Server.js"
import * as Jobs from "../core/jobs/Jobs.js"
import * as DemoJob from "../domain/DemoJob.js"
import * as UserRepo from "../domain/UserRepo.js"
import * as UserSync from "../domain/UserSync.js"
import { AdminUsersLive } from "./AdminUsers.js"
import { served } from "./Api.js"
import { AdminAuthenticationLive, AuthenticationLive } from "./Authentication.js"
import { ConsoleRoutes } from "./console/ConsoleRoutes.js"
import { JobsLive } from "./Jobs.js"
import { MeLive } from "./Me.js"
import * as StreamAuth from "./StreamAuth.js"
import { StreamTicketsLive } from "./StreamTickets.js"
import { SystemRoutes } from "./SystemRoutes.js"

/** The API's routes under the configured prefix, each group with its handlers and their dependencies. */
const ApiRoutes = Layer.unwrapEffect(
  Effect.map(AppConfig, (settings) => {
    const api = served(settings.core.apiPrefix)
    return HttpApiRoutes.layer(api).pipe(
      Layer.provide([MeLive(api), AdminUsersLive(api), StreamTicketsLive(api), JobsLive(api)]),
      Layer.provide([AuthenticationLive, AdminAuthenticationLive, StreamAuth.layer]),
      Layer.provide(UserSync.layer())
    )
  })
)

/** The background jobs, with the reference API's kinds of job, running on this instance's workers. */
const JobRunner = (settings: Settings) =>
  Jobs.layerFromSettings(settings.jobs, { handlers: { [DemoJob.kind]: DemoJob.handler } })

/**
 * Every route of the reference API (the system probes and docs, the console page, the API under its prefix), on
 * the `UserRepo` the caller provides: the Postgres one in the server (`layer`), an in-memory one in the testing
 * kit's `TestApp`.
 */
export const Routes = Layer.mergeAll(SystemRoutes, ConsoleRoutes, ApiRoutes)

/** The server for `settings`; `extraRoutes` lets tests mount routes of their own behind the same pipeline. */
export const layerWith = <E, R>(settings: Settings, extraRoutes: Layer.Layer<never, E, R>) =>
  Server.layerFromSettings(Layer.merge(Routes, extraRoutes), settings).pipe(
    Layer.provide(UserRepo.layer),
    Layer.provide(JobRunner(settings))
  )

export const layer = (settings: Settings) => layerWith(settings, Layer.empty)
