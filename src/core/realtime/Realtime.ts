/**
 * Realtime, composed from the settings: with `REDIS_URL`, the backplane and stream tickets in Redis (fan-out and
 * redemption across instances, a degrade-only `redis` readiness check); without it, both in this instance's memory.
 * Either way the event log in Postgres with its retention job, and the SSE bus.
 */
import { Layer, Option } from "effect"
import type { BgDb, MainDb } from "../db/Database.js"
import type { Lifecycle } from "../runtime/Lifecycle.js"
import type { Readiness } from "../runtime/Readiness.js"
import * as Backplane from "./Backplane.js"
import * as EventLog from "./EventLog.js"
import type { RealtimeSettings } from "./RealtimeSettings.js"
import * as Redis from "./Redis.js"
import * as SseBus from "./SseBus.js"
import * as TicketStore from "./TicketStore.js"

/** What realtime reads of the app's settings: the app's name keeps its Redis keys and channels apart. */
export interface Settings {
  readonly core: { readonly appName: string }
  readonly realtime: RealtimeSettings
}

export type Services = Backplane.Backplane | TicketStore.TicketStore | EventLog.EventLog | SseBus.SseBus

/** The SSE bus's options from the settings. */
export const busOptions = (settings: RealtimeSettings): SseBus.Options => ({
  queueSize: settings.queueSize,
  reapEveryEmits: settings.reapEveryEmits,
  fullCyclesBeforeReap: settings.fullCyclesBeforeReap,
  inactiveAfter: settings.inactiveAfter,
  maxSubscribers: settings.maxSubscribers,
  keepalive: settings.keepalive
})

/** The backplane and tickets: in Redis when the settings name one, in memory otherwise. */
export const layerTransport = (
  settings: Settings
): Layer.Layer<Backplane.Backplane | TicketStore.TicketStore, never, Readiness> => {
  const realtime = settings.realtime
  return Option.match(realtime.redisUrl, {
    onNone: () => Layer.merge(Backplane.layerMemory, TicketStore.layerMemory(realtime.ticketTtl)),
    onSome: (url) =>
      Layer.merge(
        Backplane.layerRedis({ channelPrefix: `${settings.core.appName}:rt:` }),
        TicketStore.layerRedis(realtime.ticketTtl, `${settings.core.appName}:ticket:`)
      ).pipe(Layer.provide(Redis.layer(url)))
  })
}

/** Everything realtime: the transport, the event log (and its retention job) and the SSE bus. */
export const layerFromSettings = (
  settings: Settings
): Layer.Layer<Services, never, MainDb | BgDb | Readiness | Lifecycle> =>
  Layer.mergeAll(
    SseBus.layer(busOptions(settings.realtime)),
    EventLog.layerRetention(settings.realtime.eventsRetention)
  ).pipe(
    Layer.provideMerge(EventLog.layer),
    Layer.provideMerge(layerTransport(settings))
  )

/** In memory, for tests and tools with no database: the backplane, tickets, event log and bus of one instance. */
export const layerMemory = (settings: RealtimeSettings): Layer.Layer<Services, never, Lifecycle> =>
  SseBus.layer(busOptions(settings)).pipe(
    Layer.provideMerge(EventLog.layerMemory),
    Layer.provideMerge(Layer.merge(Backplane.layerMemory, TicketStore.layerMemory(settings.ticketTtl)))
  )
