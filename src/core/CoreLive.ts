/** The whole core, composed: given the settings, every concern as one layer, each released in reverse order. */
import { Layer } from "effect"
import { AppConfig, type Settings } from "./AppConfig.js"
import * as HttpClients from "./HttpClients.js"
import * as Lifecycle from "./Lifecycle.js"
import * as Logging from "./Logging.js"
import * as Readiness from "./Readiness.js"

/** Our logger in place of Effect's; provide it to everything that logs, the main program included. */
export const logger = (settings: Settings) =>
  Logging.layer({
    format: settings.logging.format,
    level: settings.logging.level,
    sink: Logging.stdoutSink(),
    colour: Logging.wantsColour()
  })

export const layer = (settings: Settings) =>
  Layer.mergeAll(Readiness.layer(), HttpClients.layer(settings.httpClients)).pipe(
    Layer.provideMerge(Lifecycle.layer),
    Layer.provideMerge(Layer.succeed(AppConfig, settings))
  )
