/**
 * The Redis connection (ioredis) that realtime shares: the command connection for publishing and stream tickets,
 * and the `redis` readiness check, which only degrades: Redis down slows nothing but fan-out across instances.
 */
import { Context, Effect, Layer, Redacted, type Scope } from "effect"
import { Redis as IORedis, type RedisOptions } from "ioredis"
import { Readiness } from "../runtime/Readiness.js"

/** The command connection; subscribers take a connection of their own (`subscriberConnection`). */
export class Redis extends Context.Tag("core/Redis")<Redis, IORedis>() {}

/**
 * Commands fail at once while the connection is down instead of queueing: a publish that cannot go out is caught up
 * from the event log later, and a request must not wait for Redis to come back. Reconnects are tried at most a
 * second apart, forever.
 */
export const connectionOptions: RedisOptions = {
  lazyConnect: true,
  enableOfflineQueue: false,
  maxRetriesPerRequest: 1,
  connectTimeout: 2_000,
  retryStrategy: (times) => Math.min(times * 50, 1_000)
}

const quit = (client: IORedis) =>
  Effect.promise(() => client.quit().catch(() => undefined)).pipe(
    Effect.timeoutOption("2 seconds"),
    Effect.ensuring(Effect.sync(() => client.disconnect()))
  )

/**
 * A connection to `url`, closed with the scope. The first connect is awaited (for a while): an instance may start
 * with Redis down, and then keeps trying in the background.
 */
export const connect = (
  url: Redacted.Redacted,
  options: RedisOptions = {}
): Effect.Effect<IORedis, never, Scope.Scope> =>
  Effect.acquireRelease(
    Effect.sync(() => {
      const client = new IORedis(Redacted.value(url), { ...connectionOptions, ...options })
      // Without a listener ioredis prints every connection error; the readiness check reports the state instead.
      client.on("error", () => {})
      return client
    }),
    quit
  ).pipe(
    Effect.tap((client) =>
      Effect.tryPromise(() => client.connect()).pipe(
        Effect.timeout("3 seconds"),
        Effect.catchAll(() =>
          Effect.logWarning("Redis: not reachable at startup; fan-out across instances waits for it")
        )
      )
    )
  )

/** `PING` on the command connection, for readiness. */
export const ping = (client: IORedis): Effect.Effect<void, unknown> =>
  Effect.tryPromise(() => client.ping()).pipe(Effect.asVoid)

/** The command connection to `url`, registered as the degrade-only `redis` readiness check. */
export const layer = (url: Redacted.Redacted): Layer.Layer<Redis, never, Readiness> =>
  Layer.scoped(
    Redis,
    Effect.gen(function*() {
      const client = yield* connect(url)
      const readiness = yield* Readiness
      yield* readiness.register("redis", ping(client), { degradeOnly: true })
      return client
    })
  )
