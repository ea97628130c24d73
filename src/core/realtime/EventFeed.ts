/**
 * A user's live feed with replay, for any transport (the SSE stream, a WebSocket): subscribe first, then send what
 * the event log holds after the client's cursor, then live events, skipping ids already sent, so nothing is
 * duplicated or missed at the seam. A live event whose predecessor was not sent, or word that the backplane may have
 * lost messages, sends the feed back to the table for what is missing. Reading the table is paged and pulled, so a
 * slow client is never sent more than it reads. The feed ends when its queue overflowed or was reaped, right after
 * the last event sent before the first one dropped (the client reconnects from there), and at once when the instance
 * starts draining. The bus's keepalives come through as `Keepalive` items.
 */
import { Chunk, Effect, Option, type Scope, Stream } from "effect"
import type { DbFailure } from "../db/DbResilience.js"
import { EventLog } from "./EventLog.js"
import { type AtCapacity, type Queued, SseBus } from "./SseBus.js"

export type Item =
  /** A logged event: `id` is the cursor a client resumes from. */
  | { readonly _tag: "Event"; readonly id: number; readonly type: string; readonly data: string }
  /** An event that needs no log (no id, never replayed). */
  | { readonly _tag: "Unlogged"; readonly type: string; readonly data: string }
  /** The cursor is older than the log's retention: events after it may be gone. */
  | { readonly _tag: "Reset" }
  /** Nothing to send for `SSE_KEEPALIVE_SECONDS`: a transport writes its keepalive (an SSE comment, a ping). */
  | { readonly _tag: "Keepalive" }

export interface Options {
  /** The id of the last event the client has (`Last-Event-ID`); none: live from now on. */
  readonly cursor: Option.Option<number>
  /** Events read from the table at a time (default 100). */
  readonly pageSize?: number
}

/**
 * Opens `userId`'s feed: the subscription is taken (or refused, `AtCapacity`) and the starting point read when this
 * completes; the stream then runs for as long as the scope lasts.
 */
export const open = (
  userId: string,
  options: Options
): Effect.Effect<Stream.Stream<Item, DbFailure>, AtCapacity | DbFailure, SseBus | EventLog | Scope.Scope> =>
  Effect.flatMap(SseBus, (bus) => Effect.flatMap(EventLog, (log) => opener(bus, log)(userId, options)))

/** `open` on the bus and log given, for a route that holds them (no context to provide per stream). */
export const opener = (bus: SseBus["Type"], log: EventLog["Type"]) => {
  const openPull = pullOpener(bus, log)
  return (
    userId: string,
    options: Options
  ): Effect.Effect<Stream.Stream<Item, DbFailure>, AtCapacity | DbFailure, Scope.Scope> =>
    Effect.map(
      openPull(userId, options),
      (pull) => Stream.repeatEffectChunkOption(Effect.map(pull, Chunk.unsafeFromArray))
    )
}

/**
 * The feed's next items (never none), failing with `None` once it has ended: what `opener`'s stream repeats, for a
 * transport that runs the pull itself rather than a stream per client. An array, not a chunk: a transport turns the
 * items into what it writes in one step, and an idle stream's fiber then holds one frame less.
 */
export type Pull = Effect.Effect<ReadonlyArray<Item>, Option.Option<DbFailure>>

/** `opener`, giving the feed as its pull. */
export const pullOpener = (bus: SseBus["Type"], log: EventLog["Type"]) =>
(
  userId: string,
  options: Options
): Effect.Effect<Pull, AtCapacity | DbFailure, Scope.Scope> =>
  Effect.gen(function*() {
    const pageSize = options.pageSize ?? 100
    const subscription = yield* bus.subscribe(userId)

    const head: Array<Item> = []
    let lastSent: number
    let catchingUp: boolean
    if (Option.isSome(options.cursor)) {
      const cursor = options.cursor.value
      catchingUp = true
      if (cursor < (yield* log.horizon)) head.push({ _tag: "Reset" })
      // A cursor past the user's latest event is none of theirs: taken as is, it would hide their next events.
      lastSent = Math.min(cursor, yield* log.lastId(userId))
    } else {
      lastSent = yield* log.lastId(userId)
      catchingUp = false
    }
    /** Items taken from the queue but not yet looked at, kept while the feed catches up from the table. */
    let carried: ReadonlyArray<Queued> = []
    let ended = false

    const consider = (items: ReadonlyArray<Queued>): Array<Item> => {
      const out: Array<Item> = []
      for (let i = 0; i < items.length; i++) {
        const item = items[i]!
        if (item._tag === "Unlogged" || item._tag === "Keepalive") {
          out.push(item)
          continue
        }
        if (item._tag === "Event") {
          if (item.id <= lastSent) continue
          if (item.prev <= lastSent) {
            out.push(item)
            lastSent = item.id
            continue
          }
        }
        // A resync, or an event after one not sent: the table has it all (events are published after commit).
        catchingUp = true
        carried = items.slice(i + 1)
        break
      }
      return out
    }

    const pull: Pull = Effect.suspend(() => {
      if (subscription.endedBy() === "draining") return Effect.fail(Option.none())
      if (head.length > 0) return Effect.succeed(head.splice(0))
      if (catchingUp) {
        return log.readAfter(userId, lastSent, pageSize).pipe(
          Effect.mapError(Option.some),
          Effect.flatMap((rows) => {
            if (rows.length < pageSize) catchingUp = false
            if (rows.length === 0) return pull
            lastSent = rows[rows.length - 1]!.id
            return Effect.succeed(
              rows.map((row): Item => ({ _tag: "Event", id: row.id, type: row.type, data: row.data }))
            )
          })
        )
      }
      if (carried.length > 0) {
        const items = carried
        carried = []
        const out = consider(items)
        return out.length > 0 ? Effect.succeed(out) : pull
      }
      if (ended) return Effect.fail(Option.none())
      return Effect.flatMap(subscription.take, ({ end, items }) => {
        ended = end
        const out = consider(items)
        return out.length > 0 ? Effect.succeed(out) : pull
      })
    })

    return pull
  })
