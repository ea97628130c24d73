/** Realtime on a test database: the pools, the migrations and realtime's layers, with Redis or without. */
import { Duration, Effect, Layer, Option, Redacted } from "effect"
import { randomUUID } from "node:crypto"
import * as Migrations from "../../src/core/db/Migrations.js"
import * as Realtime from "../../src/core/realtime/Realtime.js"
import type { RealtimeSettings } from "../../src/core/realtime/RealtimeSettings.js"
import * as Lifecycle from "../../src/core/runtime/Lifecycle.js"
import { layerPools, layerTestDb, TestDb, uniqueAppName } from "./DatabaseFixtures.js"

/** The shared Redis every engineer's tests use (keys and channels kept apart by a random app name). */
export const sharedRedisUrl = "redis://127.0.0.1:6379"

const defaultSettings: RealtimeSettings = {
  redisUrl: Option.none(),
  queueSize: 100,
  reapEveryEmits: 10,
  fullCyclesBeforeReap: 3,
  inactiveAfter: Duration.minutes(30),
  maxSubscribers: 500,
  keepalive: Duration.seconds(30),
  ticketTtl: Duration.seconds(30),
  eventsRetention: Duration.days(7)
}

/** A random app name: the Redis key and channel prefix of one test's instances. */
const uniqueApp = (): string => `t${randomUUID().replaceAll("-", "").slice(0, 12)}`

/** Realtime over its own test database; `redisUrl` set: through that Redis, under `appName`. */
export const layer = (
  tag: string,
  options: { readonly redisUrl?: string; readonly appName?: string; readonly settings?: Partial<RealtimeSettings> } = {}
) =>
  Layer.unwrapEffect(Effect.map(TestDb, (db) => {
    const settings: Realtime.Settings = {
      core: { appName: options.appName ?? uniqueApp() },
      realtime: {
        ...defaultSettings,
        ...options.settings,
        redisUrl: options.redisUrl === undefined ? Option.none() : Option.some(Redacted.make(options.redisUrl))
      }
    }
    return Realtime.layerFromSettings(settings).pipe(
      Layer.provideMerge(Lifecycle.layer),
      Layer.provideMerge(Migrations.layer()),
      Layer.provideMerge(layerPools(db.url, uniqueAppName(tag)))
    )
  })).pipe(Layer.provideMerge(layerTestDb(tag)))
