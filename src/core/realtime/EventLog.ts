/**
 * The event log: each user's events in the `events` table, appended in the same transaction as the change that
 * causes them and published on the backplane only after that transaction commits, so a stream that reconnects can
 * replay exactly what it missed. Appends of one user are serialised (a transaction-scoped advisory lock), so a
 * user's events commit in id order, and each published event carries the id of the user's event before it: a
 * stream that has not sent that one knows it missed something and reads the table instead.
 */
import type { SqlError } from "@effect/sql/SqlError"
import { Clock, Context, Duration, Effect, Layer, Schedule } from "effect"
import { BgDb, MainDb } from "../db/Database.js"
import { type DbFailure, withTransientRetry } from "../db/DbResilience.js"
import * as Logging from "../runtime/Logging.js"
import { Backplane } from "./Backplane.js"
import * as Wire from "./Wire.js"

/** An event as stored. `data` is its JSON text, written into frames as it is. */
export interface LoggedEvent {
  readonly id: number
  readonly userId: string
  readonly type: string
  readonly data: string
  readonly createdAt: Date
}

/** The events appended in the current `transaction`, published once it commits. */
export class PendingEvents extends Context.Tag("core/EventLog/PendingEvents")<PendingEvents, Array<Wire.Logged>>() {}

export interface Service {
  /**
   * Runs `self` in a transaction on `MainDb` (the caller's statements on `MainDb` inside it join it) and publishes the
   * events it appended after the commit; nothing is published if it fails. Nested inside another, it joins the
   * outer one, which publishes.
   */
  readonly transaction: <A, E, R>(
    self: Effect.Effect<A, E, R>
  ) => Effect.Effect<A, E | DbFailure, Exclude<R, PendingEvents>>
  /** Appends an event for `userId`; `type` must be a `Wire.isEventType` name, `data` anything JSON can write. */
  readonly append: (
    userId: string,
    type: string,
    data: unknown
  ) => Effect.Effect<LoggedEvent, DbFailure, PendingEvents>
  /** The user's events after `afterId`, oldest first, at most `limit`. */
  readonly readAfter: (
    userId: string,
    afterId: number,
    limit: number
  ) => Effect.Effect<ReadonlyArray<LoggedEvent>, DbFailure>
  /** The id of the user's latest event (0 when none): where a stream without a cursor starts. */
  readonly lastId: (userId: string) => Effect.Effect<number, DbFailure>
  /** The highest id retention deleted: a cursor below it may have missed events. */
  readonly horizon: Effect.Effect<number, DbFailure>
  /** Deletes events older than `retention`, in batches; returns how many. */
  readonly prune: (retention: Duration.DurationInput) => Effect.Effect<number, DbFailure>
}

export class EventLog extends Context.Tag("core/EventLog")<EventLog, Service>() {}

/** A user's topic on the backplane: their logged and unlogged events. */
export const userTopic = (userId: string): string => `user:${userId}`

const pruneBatch = 5_000

interface Row {
  readonly id: string
  readonly user_id: string
  readonly type: string
  readonly data: string
  readonly created_at: Date
  readonly prev?: string
}

const toEvent = (row: Row): LoggedEvent => ({
  id: Number(row.id),
  userId: row.user_id,
  type: row.type,
  data: row.data,
  createdAt: row.created_at
})

const invalidType = (type: string) =>
  Effect.dieMessage(`EventLog.append: invalid event type ${JSON.stringify(type)} (letters, digits, _ . : -)`)

/** Publishes events appended by `self` once it has succeeded; shared by the Postgres and in-memory logs. */
const publishing = (
  backplane: Backplane["Type"],
  run: <A, E, R>(self: Effect.Effect<A, E, R>) => Effect.Effect<A, E | DbFailure, R>
): Service["transaction"] =>
<A, E, R>(self: Effect.Effect<A, E, R>) =>
  Effect.flatMap(Effect.serviceOption(PendingEvents), (outer) => {
    if (outer._tag === "Some") return Effect.provideService(self, PendingEvents, outer.value)
    const pending: Array<Wire.Logged> = []
    return run(Effect.suspend(() => {
      // A retried transaction starts over.
      pending.length = 0
      return Effect.provideService(self, PendingEvents, pending)
    })).pipe(
      Effect.tap(() =>
        Effect.forEach(pending, (event) => backplane.publish(userTopic(event.userId), Wire.encode(event)), {
          discard: true
        })
      )
    )
  })

export const make = Effect.gen(function*() {
  const main = yield* MainDb
  const bg = yield* BgDb
  const backplane = yield* Backplane
  return EventLog.of({
    transaction: publishing(
      backplane,
      (self) => main.withTransaction(self).pipe(withTransientRetry("events.transaction"))
    ),
    append: (userId, type, data) =>
      Wire.isEventType(type)
        ? Effect.gen(function*() {
          const pending = yield* PendingEvents
          const json = JSON.stringify(data)
          yield* main`select pg_advisory_xact_lock(hashtext(${`events:${userId}`}))`
          // The subquery sees the table as it was before this insert: the user's previous event.
          const rows = yield* main<Row>`insert into events (user_id, type, data)
values (${userId}, ${type}, ${json}::jsonb)
returning id, user_id, type, data::text as data, created_at,
  (select coalesce(max(e.id), 0) from events e where e.user_id = ${userId}) as prev`
          const row = rows[0]!
          const event = toEvent(row)
          pending.push({ ...event, prev: Number(row.prev) })
          return event
        }).pipe(withTransientRetry("events.append"))
        : invalidType(type),
    readAfter: (userId, afterId, limit) =>
      bg<Row>`select id, user_id, type, data::text as data, created_at from events
where user_id = ${userId} and id > ${afterId} order by id limit ${limit}`.pipe(
        Effect.map((rows) => rows.map(toEvent)),
        withTransientRetry("events.readAfter")
      ),
    lastId: (userId) =>
      bg<{ readonly id: string | null }>`select max(id) as id from events where user_id = ${userId}`.pipe(
        Effect.map((rows) => Number(rows[0]?.id ?? 0)),
        withTransientRetry("events.lastId")
      ),
    horizon: bg<{ readonly id: string }>`select last_deleted_id as id from events_horizon`.pipe(
      Effect.map((rows) => Number(rows[0]?.id ?? 0)),
      withTransientRetry("events.horizon")
    ),
    prune: (retention) =>
      Effect.gen(function*() {
        const cutoff = new Date((yield* Clock.currentTimeMillis) - Duration.toMillis(retention))
        let total = 0
        while (true) {
          // A data-modifying CTE runs whether or not the query reads it.
          const rows = yield* bg<{ readonly deleted: string }>`
with deleted as (
  delete from events where id in (
    select id from events where created_at < ${cutoff} order by id limit ${pruneBatch}
  ) returning id
), horizon as (
  update events_horizon set last_deleted_id = greatest(last_deleted_id, (select coalesce(max(id), 0) from deleted))
)
select count(*) as deleted from deleted`
          const deleted = Number(rows[0]?.deleted ?? 0)
          total += deleted
          if (deleted < pruneBatch) return total
        }
      }).pipe(withTransientRetry("events.prune"))
  })
})

export const layer: Layer.Layer<EventLog, never, MainDb | BgDb | Backplane> = Layer.effect(EventLog, make)

/** Events in this instance's memory, for tests and apps without a database: `transaction` only defers publication. */
export const makeMemory = Effect.gen(function*() {
  const backplane = yield* Backplane
  const events: Array<LoggedEvent> = []
  let horizon = 0
  const latest = (userId: string) => {
    for (let i = events.length - 1; i >= 0; i--) if (events[i]!.userId === userId) return events[i]!.id
    return 0
  }
  return EventLog.of({
    transaction: publishing(backplane, (self) => self),
    append: (userId, type, data) =>
      Wire.isEventType(type)
        ? Effect.gen(function*() {
          const pending = yield* PendingEvents
          const now = yield* Clock.currentTimeMillis
          const prev = latest(userId)
          const event: LoggedEvent = {
            id: (events.at(-1)?.id ?? horizon) + 1,
            userId,
            type,
            data: JSON.stringify(data),
            createdAt: new Date(now)
          }
          events.push(event)
          pending.push({ ...event, prev })
          return event
        })
        : invalidType(type),
    readAfter: (userId, afterId, limit) =>
      Effect.sync(() => events.filter((event) => event.userId === userId && event.id > afterId).slice(0, limit)),
    lastId: (userId) => Effect.sync(() => latest(userId)),
    horizon: Effect.sync(() => horizon),
    prune: (retention) =>
      Effect.map(Clock.currentTimeMillis, (now) => {
        const cutoff = now - Duration.toMillis(retention)
        const kept = events.filter((event) => event.createdAt.getTime() >= cutoff)
        const removed = events.length - kept.length
        for (const event of events) if (event.createdAt.getTime() < cutoff) horizon = Math.max(horizon, event.id)
        events.splice(0, events.length, ...kept)
        return removed
      })
  })
})

export const layerMemory: Layer.Layer<EventLog, never, Backplane> = Layer.effect(EventLog, makeMemory)

/** How often the retention job runs. */
const retentionEvery = Duration.hours(1)

/**
 * The retention job: deletes events older than `retention` now and every hour, on the background pool; a failed
 * run is logged and tried again at the next.
 */
export const layerRetention = (retention: Duration.DurationInput): Layer.Layer<never, never, EventLog> =>
  Layer.scopedDiscard(Effect.gen(function*() {
    const log = yield* EventLog
    const run = log.prune(retention).pipe(
      Effect.tap((deleted) =>
        deleted > 0 ? Effect.logInfo(Logging.fields("Event log: old events deleted", { deleted })) : Effect.void
      ),
      Effect.catchAll((error) =>
        Effect.logWarning(Logging.fields("Event log: retention run failed", { error: String(error) }))
      )
    )
    yield* Effect.forkScoped(Effect.repeat(run, Schedule.spaced(retentionEvery)))
  }))

export type { SqlError }
