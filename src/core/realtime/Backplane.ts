/**
 * The backplane: topics that every instance sees. `publish(topic, message)` reaches every subscriber of the topic on
 * every instance; with Redis (`REDIS_URL`) through its pub/sub, without it on this instance alone. Delivery is at
 * most once: a message published while Redis is down, or while a subscriber's connection is away, is gone, so after
 * each reconnect every subscriber is told to resync (catch up from where the truth is kept, say the event log).
 */
import { Context, Effect, Layer, Runtime, type Scope, Stream } from "effect"
import type { Redis as IORedis } from "ioredis"
import * as Logging from "../runtime/Logging.js"
import { Redis } from "./Redis.js"

export interface Subscriber {
  /** Called synchronously for each message; it must not block (hand the message on to a queue). */
  readonly onMessage: (message: string) => void
  /** Messages may have been missed (the connection to Redis came back): catch up. */
  readonly onResync: () => void
}

export class Backplane extends Context.Tag("core/Backplane")<Backplane, {
  /**
   * Delivers to this instance's subscribers at once, then to the other instances'. Never fails: if Redis cannot take
   * the message, the other instances miss it and resync when their connection comes back.
   */
  readonly publish: (topic: string, message: string) => Effect.Effect<void>
  /**
   * Subscribes for as long as the scope lasts. Completes once the subscription is in place (Redis acknowledged it),
   * so whatever is published afterwards reaches it; if Redis is down, it completes at once and resyncs later.
   */
  readonly subscribe: (topic: string, subscriber: Subscriber) => Effect.Effect<void, never, Scope.Scope>
}>() {}

export type Delivery =
  | { readonly _tag: "Message"; readonly message: string }
  | { readonly _tag: "Resync" }

/** A topic's deliveries as a stream (buffered without bound: for topics whose consumer keeps up). */
export const stream = (topic: string): Stream.Stream<Delivery, never, Backplane> =>
  Stream.unwrap(Effect.map(Backplane, (backplane) =>
    Stream.asyncScoped<Delivery>((emit) =>
      backplane.subscribe(topic, {
        onMessage: (message) => void emit.single({ _tag: "Message", message }),
        onResync: () => void emit.single({ _tag: "Resync" })
      })
    )))

/** Local subscribers by topic. */
const makeRegistry = () => {
  const topics = new Map<string, Set<Subscriber>>()
  return {
    topics,
    add: (topic: string, subscriber: Subscriber): boolean => {
      let set = topics.get(topic)
      const first = set === undefined
      if (set === undefined) {
        set = new Set()
        topics.set(topic, set)
      }
      set.add(subscriber)
      return first
    },
    remove: (topic: string, subscriber: Subscriber): boolean => {
      const set = topics.get(topic)
      if (set === undefined) return false
      set.delete(subscriber)
      if (set.size > 0) return false
      topics.delete(topic)
      return true
    },
    deliver: (topic: string, message: string): void => {
      const set = topics.get(topic)
      if (set === undefined) return
      for (const subscriber of set) subscriber.onMessage(message)
    },
    resyncAll: (): void => {
      for (const set of topics.values()) for (const subscriber of set) subscriber.onResync()
    }
  }
}

/** One instance alone: publication is a function call. */
export const makeMemory = Effect.sync(() => {
  const registry = makeRegistry()
  return Backplane.of({
    publish: (topic, message) => Effect.sync(() => registry.deliver(topic, message)),
    subscribe: (topic, subscriber) =>
      Effect.acquireRelease(
        Effect.sync(() => registry.add(topic, subscriber)),
        () => Effect.sync(() => registry.remove(topic, subscriber))
      ).pipe(Effect.asVoid)
  })
})

export const layerMemory: Layer.Layer<Backplane> = Layer.effect(Backplane, makeMemory)

export interface RedisOptions {
  /** Put before every topic's channel name, so apps (or tests) sharing a Redis keep apart. */
  readonly channelPrefix: string
}

/** Messages kept while Redis is away; past it the oldest go (the receivers resync when their connection returns). */
const maxOutbox = 10_000

/** Marks this instance's own messages, which it has delivered locally already. */
const instanceIdLength = 16
const newInstanceId = () => {
  const bytes = new Uint8Array(instanceIdLength / 2)
  crypto.getRandomValues(bytes)
  return Buffer.from(bytes).toString("hex")
}

/**
 * Through Redis pub/sub, on a subscriber connection of its own. Channels are subscribed only while the connection is
 * `ready` (a SUBSCRIBE sent earlier can break ioredis' ready check and leave it subscribed to nothing), and all of
 * them again after each reconnect, before subscribers are told to resync.
 */
export const makeRedis = (
  options: RedisOptions
): Effect.Effect<Backplane["Type"], never, Redis | Scope.Scope> =>
  Effect.gen(function*() {
    const client = yield* Redis
    const runtime = yield* Effect.runtime<never>()
    const runFork = Runtime.runFork(runtime)
    const instanceId = newInstanceId()
    const registry = makeRegistry()
    const channel = (topic: string) => `${options.channelPrefix}${topic}`
    const topicOf = (name: string) => name.slice(options.channelPrefix.length)

    let closing = false
    const subscriber: IORedis = yield* Effect.acquireRelease(
      Effect.sync(() => {
        const connection = client.duplicate({ autoResubscribe: false, lazyConnect: true })
        connection.on("error", () => {})
        return connection
      }),
      (connection) =>
        Effect.promise(() => {
          closing = true
          return connection.quit().catch(() => undefined)
        }).pipe(
          Effect.timeoutOption("2 seconds"),
          Effect.ensuring(Effect.sync(() => connection.disconnect()))
        )
    )

    subscriber.on("message", (name: string, payload: string) => {
      if (payload.length > instanceIdLength && payload.startsWith(instanceId)) return
      registry.deliver(topicOf(name), payload.slice(instanceIdLength + 1))
    })

    subscriber.on("ready", () => {
      const channels = [...registry.topics.keys()].map(channel)
      if (channels.length === 0) return
      subscriber.subscribe(...channels).then(
        () => {
          runFork(Effect.logInfo(
            Logging.fields("Redis: subscriber (re)connected; subscribers catch up", { channels: channels.length })
          ))
          registry.resyncAll()
        },
        // The connection went away again: the next `ready` does it all over.
        () => {}
      )
    })
    subscriber.on("end", () => {
      if (!closing) runFork(Effect.logWarning("Redis: subscriber connection ended"))
    })
    yield* Effect.tryPromise(() => subscriber.connect()).pipe(Effect.timeout("3 seconds"), Effect.ignore)

    // A topic's SUBSCRIBE in flight: a second local subscriber waits for it too, or a message published before
    // Redis acknowledged it would reach neither of them.
    const inFlight = new Map<string, Promise<unknown>>()
    const send = (command: "subscribe" | "unsubscribe", topic: string) => {
      if (subscriber.status !== "ready") return Promise.resolve()
      const sent = subscriber[command](channel(topic)).catch(() => undefined)
      inFlight.set(topic, sent)
      void sent.then(() => {
        if (inFlight.get(topic) === sent) inFlight.delete(topic)
      })
      return sent
    }
    const settled = (promise: Promise<unknown> | undefined) =>
      promise === undefined
        ? Effect.void
        : Effect.promise(() => promise).pipe(Effect.timeoutOption("2 seconds"), Effect.asVoid)

    // Messages not yet taken by Redis, in order: kept (a bounded number) while the connection is away and sent
    // when it is back, so an event committed during an outage still reaches the other instances' streams even if
    // they resynced before this connection returned. Publishing never waits for Redis.
    const outbox: Array<readonly [channel: string, message: string]> = []
    let flushing = false
    const flush = (): void => {
      if (flushing || outbox.length === 0 || client.status !== "ready") return
      flushing = true
      const [name, message] = outbox[0]!
      client.publish(name, message).then(
        () => {
          if (outbox[0]?.[1] === message) outbox.shift()
          flushing = false
          flush()
        },
        () => {
          // The connection went away: the next `ready` flushes again.
          flushing = false
        }
      )
    }
    client.on("ready", flush)
    yield* Effect.addFinalizer(() => Effect.sync(() => client.off("ready", flush)))

    return Backplane.of({
      publish: (topic, message) =>
        Effect.sync(() => {
          registry.deliver(topic, message)
          outbox.push([channel(topic), `${instanceId}:${message}`])
          if (outbox.length > maxOutbox) outbox.shift()
          flush()
        }),
      subscribe: (topic, local) =>
        Effect.acquireRelease(
          Effect.suspend(() => settled(registry.add(topic, local) ? send("subscribe", topic) : inFlight.get(topic))),
          () =>
            Effect.sync(() => {
              if (registry.remove(topic, local)) void send("unsubscribe", topic)
            })
        )
    })
  })

export const layerRedis = (options: RedisOptions): Layer.Layer<Backplane, never, Redis> =>
  Layer.scoped(Backplane, makeRedis(options))
