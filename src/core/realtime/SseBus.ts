/**
 * The SSE bus (the seed's `sse.py`): this instance's open streams, each with its own bounded queue, fed from the
 * users' backplane topics. Delivering never blocks: a full queue drops its oldest item, and the stream then ends
 * after the items before the dropped one, so its client reconnects and replays the rest from the event log. Every
 * few deliveries the bus reaps dead subscriptions (full for several reaps in a row, or not read for long), and it
 * holds at most a fixed number of them: past it a new stream is refused with 503 and a `Retry-After`. One timer
 * sends idle subscriptions their keepalives, and shutdown ends them all at once.
 */
import { type Clock, Context, Data, Duration, Effect, Layer, Schedule, Scheduler, type Scope } from "effect"
import * as ApiError from "../errors/ApiError.js"
import * as Held from "../runtime/Held.js"
import { Lifecycle } from "../runtime/Lifecycle.js"
import { Backplane } from "./Backplane.js"
import { userTopic } from "./EventLog.js"
import * as Wire from "./Wire.js"

/** The instance holds as many streams as it may. */
export class AtCapacity extends Data.TaggedError("AtCapacity")<{
  readonly retryAfter: Duration.Duration
}> implements ApiError.Convertible {
  [ApiError.ToApiError](): ApiError.ApiError {
    return new ApiError.ServiceUnavailable({
      message: "Too many open streams on this instance",
      retryAfterSeconds: Duration.toSeconds(this.retryAfter)
    })
  }
}

/** An item of a subscription's queue: a user's event, word that some may have been missed, or a keepalive. */
export type Queued = Wire.Item | { readonly _tag: "Resync" } | { readonly _tag: "Keepalive" }

export interface Taken {
  readonly items: ReadonlyArray<Queued>
  /** The subscription is over: nothing follows these items (the queue overflowed, or it was reaped). */
  readonly end: boolean
}

export interface Subscription {
  /** The items waiting, or the next ones when there are none. */
  readonly take: Effect.Effect<Taken>
  /** Why it ended, if it has. */
  readonly endedBy: () => EndReason | undefined
}

export interface Options {
  readonly queueSize: number
  readonly reapEveryEmits: number
  readonly fullCyclesBeforeReap: number
  readonly inactiveAfter: Duration.DurationInput
  readonly maxSubscribers: number
  /**
   * How often an idle subscription gets a keepalive item (one timer for the whole bus, not one per stream); also the
   * `Retry-After` of a refused stream, since each keepalive is when dead streams still counted are found out (their
   * write fails) and give their place back.
   */
  readonly keepalive: Duration.DurationInput
}

export class SseBus extends Context.Tag("core/SseBus")<SseBus, {
  /** A subscription to `userId`'s topic for as long as the scope lasts, in place once this completes. */
  readonly subscribe: (userId: string) => Effect.Effect<Subscription, AtCapacity, Scope.Scope>
  /** An event that needs no log (nothing replays it), to `userId`'s streams on every instance. */
  readonly emit: (userId: string, type: string, data: unknown) => Effect.Effect<void>
  /** Open subscriptions on this instance, and the items waiting in their queues (never more than the queue size each). */
  readonly stats: () => { readonly subscribers: number; readonly queued: number }
}>() {}

export type EndReason = "overflow" | "reaped" | "draining"

interface Entry {
  readonly seq: number
  readonly item: Queued
}

const resync: Queued = { _tag: "Resync" }
const keepalive: Queued = { _tag: "Keepalive" }

/**
 * A subscription's bounded queue (sliding: a full queue drops its oldest entry) and its one reader. Hand-rolled
 * rather than a `Mailbox`, whose effects and state every open stream would otherwise hold for its whole life.
 */
class Sub {
  offered = 0
  /** The sequence number of the first item dropped; what follows it is never delivered. */
  firstDropped = Infinity
  fullCycles = 0
  endedBy: EndReason | undefined = undefined
  private entries: Array<Entry> = []
  /** No entry is added any more; the reader gets what is left, then the end. */
  private closed = false
  /** The reader waiting for an entry or the end. */
  private waiter: ((resumed: Effect.Effect<Taken>) => void) | undefined = undefined
  /** When it was made or last read (the clock's milliseconds), for reaping a subscription nobody reads. */
  lastActivity: number
  constructor(
    readonly capacity: number,
    private readonly clock: Clock.Clock
  ) {
    this.lastActivity = clock.unsafeCurrentTimeMillis()
  }

  size(): number {
    return this.entries.length
  }

  offer(item: Queued): void {
    if (this.endedBy !== undefined || this.closed) return
    // Full: the sliding queue is about to drop its oldest item, the one numbered offered - capacity.
    if (this.entries.length >= this.capacity) {
      this.firstDropped = this.offered - this.capacity
      this.endedBy = "overflow"
      this.entries.shift()
    }
    this.entries.push({ seq: this.offered++, item })
    this.wake()
  }

  end(reason: "reaped" | "draining"): void {
    this.firstDropped = -1
    this.endedBy = reason
    this.close()
  }

  close(): void {
    this.closed = true
    this.wake()
  }

  /**
   * The items waiting (all of them, but none from the first dropped on), or the next ones when there are none. A
   * waiting reader is resumed with `drain` itself: an idle stream's fiber holds no frame for what follows the wait.
   */
  readonly take: Effect.Effect<Taken> = Effect.suspend(() => {
    if (this.firstDropped !== Infinity) return Effect.succeed({ items: [], end: true })
    if (this.entries.length > 0 || this.closed) return this.drain
    return Effect.async<Taken>((resume) => {
      this.waiter = resume
      return Effect.sync(() => {
        if (this.waiter === resume) this.waiter = undefined
      })
    })
  })

  /** Takes the entries waiting: the items before the first dropped one, and whether nothing follows them. */
  private readonly drain: Effect.Effect<Taken> = Effect.sync(() => {
    const entries = this.entries
    this.entries = []
    this.lastActivity = this.clock.unsafeCurrentTimeMillis()
    const items: Array<Queued> = []
    for (const entry of entries) if (entry.seq < this.firstDropped) items.push(entry.item)
    return { items, end: this.closed || this.firstDropped !== Infinity }
  })

  private wake(): void {
    const waiter = this.waiter
    if (waiter === undefined) return
    this.waiter = undefined
    // From a scheduler task, as a Mailbox wakes its takers: the reader runs after the burst of offers in progress.
    Scheduler.defaultScheduler.scheduleTask(() => waiter(this.drain), 0)
  }
}

export const make = (options: Options) =>
  Effect.gen(function*() {
    const backplane = yield* Backplane
    const clock = yield* Effect.clock
    const inactiveMillis = Duration.toMillis(options.inactiveAfter)
    const retryAfter = Duration.decode(options.keepalive)
    const lifecycle = yield* Lifecycle
    const subs = new Set<Sub>()
    let emits = 0

    const reap = () => {
      const now = clock.unsafeCurrentTimeMillis()
      for (const sub of subs) {
        const size = sub.size()
        sub.fullCycles = size >= sub.capacity ? sub.fullCycles + 1 : 0
        // A consumer waiting on an empty queue is alive, however long nothing came.
        if (size === 0) sub.lastActivity = now
        if (sub.fullCycles >= options.fullCyclesBeforeReap || now - sub.lastActivity >= inactiveMillis) {
          sub.end("reaped")
          subs.delete(sub)
        }
      }
    }

    // Every stream of a user gets the same message string from the backplane, one after another: it is decoded,
    // and counted as an emit, once.
    let lastMessage: string | undefined
    let lastItem: Wire.Item | undefined
    const received = (message: string): Wire.Item | undefined => {
      if (message === lastMessage) return lastItem
      lastMessage = message
      lastItem = Wire.decode(message)
      emits++
      if (emits % options.reapEveryEmits === 0) reap()
      return lastItem
    }

    const subscribe = (userId: string) =>
      Effect.gen(function*() {
        if (lifecycle.isDraining()) return yield* new AtCapacity({ retryAfter: Duration.zero })
        if (subs.size >= options.maxSubscribers) return yield* new AtCapacity({ retryAfter })
        const sub = new Sub(options.queueSize, clock)
        yield* Held.acquireRelease(
          Effect.sync(() => subs.add(sub)),
          () =>
            Effect.sync(() => {
              subs.delete(sub)
              sub.close()
            })
        )
        yield* backplane.subscribe(userTopic(userId), {
          onMessage: (message) => {
            const item = received(message)
            if (item !== undefined) sub.offer(item)
          },
          onResync: () => sub.offer(resync)
        })
        return { take: sub.take, endedBy: () => sub.endedBy } satisfies Subscription
      })

    // One timer for every stream: an empty queue gets a keepalive (a queue with items has something to send).
    yield* Effect.forkScoped(
      Effect.repeat(
        Effect.sync(() => {
          for (const sub of subs) if (sub.size() === 0) sub.offer(keepalive)
        }),
        Schedule.spaced(options.keepalive)
      ).pipe(Effect.delay(options.keepalive))
    )
    // Shutdown ends every stream at once, so clients reconnect elsewhere and resume from their last id.
    yield* Effect.forkScoped(
      Effect.zipRight(
        lifecycle.draining,
        Effect.sync(() => {
          for (const sub of subs) sub.end("draining")
        })
      )
    )

    return SseBus.of({
      subscribe,
      emit: (userId, type, data) =>
        Wire.isEventType(type)
          ? backplane.publish(userTopic(userId), Wire.encodeUnlogged(type, JSON.stringify(data)))
          : Effect.dieMessage(`SseBus.emit: invalid event type ${JSON.stringify(type)}`),
      stats: () => {
        let queued = 0
        for (const sub of subs) queued += sub.size()
        return { subscribers: subs.size, queued }
      }
    })
  })

export const layer = (options: Options): Layer.Layer<SseBus, never, Backplane | Lifecycle> =>
  Layer.scoped(SseBus, make(options))
