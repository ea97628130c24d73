/** Notifications: what the reference API stores for a user and delivers to their streams (`event: notification`). */
import { Context, Effect, Layer } from "effect"
import { MainDb } from "../core/db/Database.js"
import { type DbFailure, withTransientRetry } from "../core/db/DbResilience.js"

export interface Notification {
  readonly id: number
  readonly userId: string
  readonly title: string
  readonly body: string
  readonly createdAt: Date
}

export interface Page {
  /** Newest first. */
  readonly notifications: ReadonlyArray<Notification>
  /** Pass as `before` for the next page; null when there is none. */
  readonly nextBefore: number | null
}

export interface Service {
  /** Stores a notification; on `MainDb`, it joins the transaction it is called in. */
  readonly create: (userId: string, input: { readonly title: string; readonly body: string }) => Effect.Effect<
    Notification,
    DbFailure
  >
  /** The user's notifications with an id below `before` (all when none), newest first, at most `limit`. */
  readonly list: (
    userId: string,
    options: { readonly limit: number; readonly before: number | undefined }
  ) => Effect.Effect<Page, DbFailure>
}

export class NotificationRepo extends Context.Tag("domain/NotificationRepo")<NotificationRepo, Service>() {}

interface Row {
  readonly id: string
  readonly user_id: string
  readonly title: string
  readonly body: string
  readonly created_at: Date
}

const toNotification = (row: Row): Notification => ({
  id: Number(row.id),
  userId: row.user_id,
  title: row.title,
  body: row.body,
  createdAt: row.created_at
})

/** A page of `limit` from rows fetched with one more than that: the extra row says whether another page exists. */
export const pageOf = (rows: ReadonlyArray<Notification>, limit: number): Page => {
  const notifications = rows.slice(0, limit)
  return {
    notifications,
    nextBefore: rows.length > limit ? notifications[notifications.length - 1]!.id : null
  }
}

/** The repository on `MainDb`. */
const make: Effect.Effect<Service, never, MainDb> = Effect.map(MainDb, (sql) => ({
  create: (userId, input) =>
    sql<Row>`insert into notifications (user_id, title, body) values (${userId}, ${input.title}, ${input.body})
returning id, user_id, title, body, created_at`.pipe(
      Effect.map((rows) => toNotification(rows[0]!)),
      withTransientRetry("NotificationRepo.create")
    ),
  list: (userId, { before, limit }) =>
    (before === undefined
      ? sql<Row>`select id, user_id, title, body, created_at from notifications
where user_id = ${userId} order by id desc limit ${limit + 1}`
      : sql<Row>`select id, user_id, title, body, created_at from notifications
where user_id = ${userId} and id < ${before} order by id desc limit ${limit + 1}`).pipe(
        Effect.map((rows) => pageOf(rows.map(toNotification), limit)),
        withTransientRetry("NotificationRepo.list")
      )
}))

export const layer: Layer.Layer<NotificationRepo, never, MainDb> = Layer.effect(NotificationRepo, make)
