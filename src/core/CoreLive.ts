/** The whole core, composed: given the settings, every concern as one layer, each released in reverse order. */
import { Layer } from "effect"
import { AppConfig, type Settings } from "./app/AppConfig.js"
import * as Auth from "./auth/Auth.js"
import * as AuthAdmin from "./auth/AuthAdmin.js"
import * as HttpClients from "./clients/HttpClients.js"
import * as Database from "./db/Database.js"
import * as Migrations from "./db/Migrations.js"
import * as Realtime from "./realtime/Realtime.js"
import * as WebSocketHub from "./realtime/WebSocketHub.js"
import * as Lifecycle from "./runtime/Lifecycle.js"
import * as Logging from "./runtime/Logging.js"
import * as Readiness from "./runtime/Readiness.js"

/**
 * Our logger in place of Effect's, and tracing on or off: provide it around everything, the main program included
 * (both are fiber settings, inherited by every fiber started inside). With tracing off, `Effect.fn` and SQL
 * statements skip making spans that nothing would export.
 */
export const observability = (settings: Settings, sink: Logging.Sink = Logging.stdoutSink()) =>
  Layer.merge(Logging.layerFromSettings(settings.logging, sink), Layer.setTracerEnabled(settings.tracingEnabled))

/**
 * Built bottom-up and released top-down: settings, lifecycle, readiness and the HTTP clients first, then the
 * database pools and the migrations (done before the server listens), then realtime and the WebSocket hub, then authentication.
 */
export const layer = (settings: Settings) =>
  AuthAdmin.layerFromSettings(settings.supabase).pipe(
    Layer.provideMerge(Auth.layerFromSettings(settings.supabase, settings.auth)),
    Layer.provideMerge(WebSocketHub.layerFromSettings(settings.websocket)),
    Layer.provideMerge(Realtime.layerFromSettings(settings)),
    Layer.provideMerge(Migrations.layer()),
    Layer.provideMerge(Database.layerFromSettings(settings)),
    Layer.provideMerge(Layer.mergeAll(Readiness.layer(), HttpClients.layerFromSettings(settings.httpClients))),
    Layer.provideMerge(Lifecycle.layer),
    Layer.provideMerge(Layer.succeed(AppConfig, settings))
  )
