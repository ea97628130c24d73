/**
 * Database failures sorted by what to do about them: a transient one (the connection broke, the server restarted
 * or could not be reached) is retried once after a short jittered delay; pool exhaustion fails at once, never
 * retried, as 503 `DB_POOL_EXHAUSTED`; anything else is permanent and keeps its original `SqlError`.
 */
import * as SqlClient from "@effect/sql/SqlClient"
import { SqlError } from "@effect/sql/SqlError"
import { Cause, Data, Duration, Effect, Metric, Option, Schedule } from "effect"
import { dual } from "effect/Function"
import * as ApiError from "../errors/ApiError.js"
import { isConnectionFailure } from "./SqlState.js"

/** The connection broke or could not be made; worth one more try on a fresh connection. */
export class TransientDbError extends Data.TaggedError("TransientDbError")<{
  readonly message: string
  readonly cause: SqlError
}> implements ApiError.Convertible {
  [ApiError.ToApiError](): ApiError.ApiError {
    return new ApiError.ServiceUnavailable({ message: "The database is temporarily unavailable" })
  }
}

/** No connection could be acquired within the acquire timeout. */
export class PoolExhausted extends Data.TaggedError("PoolExhausted")<{
  readonly message: string
  readonly cause: SqlError
}> implements ApiError.Convertible {
  [ApiError.ToApiError](): ApiError.ApiError {
    return new ApiError.DbPoolExhausted({})
  }
}

/** What a database call can fail with once classified; a permanent failure stays the `SqlError` it was. */
export type DbFailure = TransientDbError | PoolExhausted | SqlError

// Classification ----------------------------------------------------------------------------------------------------

/** Socket-level error codes of a connection that broke or could not be made. */
export const transientErrnos: ReadonlySet<string> = new Set([
  "ECONNREFUSED",
  "ECONNRESET",
  "ECONNABORTED",
  "EPIPE",
  "ETIMEDOUT",
  "EHOSTUNREACH",
  "ENETUNREACH",
  "ENETDOWN",
  "ENOTCONN",
  "EAI_AGAIN"
])

/** Message fragments (lower case) of the same, from `pg`, `pg-pool`, sql-pg and PgBouncer. */
export const transientMessages: ReadonlyArray<string> = [
  "connection terminated", // "... unexpectedly", "... due to connection timeout"
  "connection to database closed",
  "is not queryable", // a client that already saw its connection fail
  "timeout expired", // pg's connect timeout
  "connection timed out",
  "server closed the connection unexpectedly",
  "ssl connection has been closed unexpectedly"
]

/** pg-pool's message when the acquire timeout passes with every connection in use. */
export const poolExhaustedMessage = "timeout exceeded when trying to connect"

const codeOf = (error: object): string | undefined => {
  const code = (error as { readonly code?: unknown }).code
  return typeof code === "string" ? code : undefined
}

const messageOf = (error: object): string => {
  const message = (error as { readonly message?: unknown }).message
  return typeof message === "string" ? message.toLowerCase() : ""
}

/** Far more than any real failure has; only a guard against a pathological one. */
const maxChainLength = 256

/** The error and what it wraps: `cause` chains and `AggregateError`s (both address families refused). */
const chain = (root: unknown): Array<object> => {
  const seen = new Set<object>()
  const pending: Array<unknown> = [root]
  while (pending.length > 0 && seen.size < maxChainLength) {
    const next = pending.shift()
    if (typeof next !== "object" || next === null || seen.has(next)) continue
    seen.add(next)
    pending.push((next as { readonly cause?: unknown }).cause)
    const errors = (next as { readonly errors?: unknown }).errors
    if (Array.isArray(errors)) pending.push(...errors)
  }
  return [...seen]
}

const isTransientLink = (error: object): boolean => {
  const code = codeOf(error)
  if (code !== undefined && (isConnectionFailure(code) || transientErrnos.has(code))) {
    return true
  }
  const message = messageOf(error)
  return transientMessages.some((fragment) => message.includes(fragment))
}

/**
 * Why a connection is refused for good: bad credentials, a missing role or database, a startup parameter the server
 * refuses. Postgres says so with its own SQLSTATEs; PgBouncer answers 08P01 for all of them (and for passing
 * troubles too), so there the message tells.
 */
export const misconfigurationCodes: ReadonlySet<string> = new Set(["28000", "28P01", "3D000", "42501"])
export const misconfigurationMessages: ReadonlyArray<string> = [
  "unsupported startup parameter",
  "does not exist",
  "authentication failed",
  "no such database",
  "no such user",
  "permission denied"
]

const isMisconfigurationLink = (error: object): boolean => {
  const code = codeOf(error)
  if (code !== undefined && misconfigurationCodes.has(code)) return true
  const message = messageOf(error)
  return code === "08P01" && misconfigurationMessages.some((fragment) => message.includes(fragment))
}

/** Whether the failure is a connection refused for a reason no retry can change (see `misconfigurationCodes`). */
export const isMisconfiguration = (error: unknown): boolean => chain(error).some(isMisconfigurationLink)

export type Kind = "transient" | "poolExhausted" | "permanent"

/** The kind of a database failure, from its codes and messages anywhere in its cause chain. */
export const kindOf = (error: unknown): Kind => {
  const links = chain(error)
  if (links.some((link) => messageOf(link).includes(poolExhaustedMessage))) return "poolExhausted"
  if (links.some(isMisconfigurationLink)) return "permanent"
  if (links.some(isTransientLink)) return "transient"
  return "permanent"
}

/** Wraps a `SqlError` in the class its kind calls for; a permanent one is returned as it is. */
export const classify = (error: SqlError): DbFailure => {
  switch (kindOf(error)) {
    case "poolExhausted":
      return new PoolExhausted({ message: "No database connection free within the acquire timeout", cause: error })
    case "transient":
      return new TransientDbError({ message: `Transient database error: ${describe(error)}`, cause: error })
    case "permanent":
      return error
  }
}

/** A short description for logs: the innermost message and its SQLSTATE or errno (never a connection string). */
export const describe = (error: unknown): string => {
  const links = chain(error)
  const innermost = links[links.length - 1]
  if (innermost === undefined) return String(error)
  const code = codeOf(innermost)
  const message = (innermost as { readonly message?: unknown }).message
  const text = typeof message === "string" && message !== "" ? message : String(innermost)
  return code === undefined ? text : `${code} ${text}`
}

export const isTransientDbError = (u: unknown): u is TransientDbError => u instanceof TransientDbError
export const isPoolExhausted = (u: unknown): u is PoolExhausted => u instanceof PoolExhausted

// Retry -------------------------------------------------------------------------------------------------------------

/** One retry after 50-150 ms: long enough for a dead connection to be dropped, short enough to go unnoticed. */
export const transientRetry = Schedule.spaced(Duration.millis(100)).pipe(
  Schedule.jitteredWith({ min: 0.5, max: 1.5 }),
  Schedule.intersect(Schedule.recurs(1))
)

export const metrics = {
  /** Transient failures that were retried. */
  retries: Metric.counter("db_transient_retries_total", { incremental: true }),
  /** Transient failures that failed again on their retry. */
  transientFailures: Metric.counter("db_transient_failures_total", { incremental: true }),
  /** Operations that found no free connection within the acquire timeout. */
  poolExhausted: Metric.counter("db_pool_exhausted_total", { incremental: true })
}

export interface Counts {
  readonly retries: number
  readonly transientFailures: number
  readonly poolExhausted: number
}

/** The counters' current values (for `/metrics`-style reporting and for tests, which compare before and after). */
export const counts: Effect.Effect<Counts> = Effect.all({
  retries: Effect.map(Metric.value(metrics.retries), (state) => state.count),
  transientFailures: Effect.map(Metric.value(metrics.transientFailures), (state) => state.count),
  poolExhausted: Effect.map(Metric.value(metrics.poolExhausted), (state) => state.count)
})

const isSqlError = (u: unknown): u is SqlError => u instanceof SqlError

/**
 * The failure of one attempt, classified. A transaction's COMMIT or ROLLBACK that fails is a defect in
 * @effect/sql; on a broken connection that is the expected outcome of a transient failure, so such a defect is
 * turned back into a failure and classified like any other. Other causes (interruption, other defects) stay.
 */
const classifyCause = <E>(cause: Cause.Cause<E>): Cause.Cause<Exclude<E, SqlError> | DbFailure> => {
  // An interrupted operation is left alone: nothing about it is worth a retry.
  if (Cause.isInterrupted(cause)) return cause as Cause.Cause<never>
  const failure = Cause.failureOption(cause)
  if (Option.isSome(failure)) {
    const error = failure.value
    return isSqlError(error) ? Cause.fail(classify(error)) : cause as Cause.Cause<Exclude<E, SqlError>>
  }
  const defect = Cause.dieOption(cause)
  if (Option.isSome(defect) && isSqlError(defect.value)) {
    return Cause.fail(classify(defect.value))
  }
  return cause as Cause.Cause<never>
}

const errorOf = <E>(cause: Cause.Cause<E>): E | undefined => Option.getOrUndefined(Cause.failureOption(cause))

const report = (operation: string, error: unknown, attempt: number, retrying: boolean): Effect.Effect<void> => {
  if (isPoolExhausted(error)) {
    return Effect.zipRight(
      Metric.increment(metrics.poolExhausted),
      Effect.logWarning("Database pool exhausted: failing fast, not retried").pipe(
        Effect.annotateLogs({ db_operation: operation })
      )
    )
  }
  if (!isTransientDbError(error)) return Effect.void
  const detail = { db_operation: operation, db_error: describe(error.cause), attempt }
  return retrying
    ? Effect.zipRight(
      Metric.increment(metrics.retries),
      Effect.logWarning("Transient database error: retrying once").pipe(Effect.annotateLogs(detail))
    )
    : Effect.zipRight(
      Metric.increment(metrics.transientFailures),
      Effect.logError("Transient database error: giving up").pipe(Effect.annotateLogs(detail))
    )
}

const inTransaction: Effect.Effect<boolean> = Effect.map(
  Effect.serviceOption(SqlClient.TransactionConnection),
  Option.isSome
)

/**
 * Runs a database operation, classifying its failures; a transient one is retried once, after the delay of
 * `transientRetry`, on a fresh connection (the pool destroys the broken one). Pool exhaustion and permanent errors
 * fail at once. Inside an open transaction nothing is retried (the transaction is lost with its connection): the
 * failure goes up to the retry around the whole transaction. Writes of more than one statement should use
 * `transactionWithTransientRetry`, so the retry replays all of them. A COMMIT lost with its connection may or may
 * not have been applied: retried writes should be idempotent (upserts are).
 *
 * The success path costs one extra step; everything else happens only when the operation fails.
 */
export const withTransientRetry: {
  (operation: string): <A, E, R>(self: Effect.Effect<A, E, R>) => Effect.Effect<A, Exclude<E, SqlError> | DbFailure, R>
  <A, E, R>(self: Effect.Effect<A, E, R>, operation: string): Effect.Effect<A, Exclude<E, SqlError> | DbFailure, R>
} = dual(2, <A, E, R>(self: Effect.Effect<A, E, R>, operation: string) => {
  const attempt = Effect.catchAllCause(self, (cause) => Effect.failCause(classifyCause(cause)))
  return Effect.catchAllCause(self, (cause) => {
    const classified = classifyCause(cause)
    const error = errorOf(classified)
    if (!isTransientDbError(error)) {
      return Effect.zipRight(report(operation, error, 1, false), Effect.failCause(classified))
    }
    return Effect.flatMap(inTransaction, (open) =>
      open
        ? Effect.zipRight(
          Effect.logDebug("Transient database error inside a transaction: left to the retry around it").pipe(
            Effect.annotateLogs({ db_operation: operation, db_error: describe(error.cause) })
          ),
          Effect.failCause(classified)
        )
        : report(operation, error, 1, true).pipe(
          // The schedule's first step always continues (recurs(1)); it sleeps the jittered delay.
          Effect.zipRight(
            Effect.ignore(Effect.flatMap(Schedule.driver(transientRetry), (driver) => driver.next(error)))
          ),
          Effect.zipRight(attempt),
          Effect.tapError((again) => report(operation, again, 2, false))
        ))
  })
})

/** `operation` in a transaction of `sql`, the whole transaction retried once on a transient failure. */
export const transactionWithTransientRetry = <A, E, R>(
  sql: SqlClient.SqlClient,
  operation: Effect.Effect<A, E, R>,
  name: string
): Effect.Effect<A, Exclude<E, SqlError> | DbFailure, R> => withTransientRetry(sql.withTransaction(operation), name)
