/**
 * The `jobs` table and the lease on it: a job is claimed by one worker at a time (`FOR UPDATE SKIP LOCKED`), under
 * a lease token and an expiry the worker pushes forward as the job progresses; a lease that ran out may be claimed
 * by another worker, which resumes from the last recorded step. Every statement stands alone (no session state, no
 * advisory lock, no `LISTEN`), so it all works through PgBouncer in transaction mode and on the embedded database.
 *
 * Lease times come from Effect's `Clock` (`now` parameters), not the database's, so tests move them with
 * `TestClock`; instances are expected to agree on the time to well within a lease.
 */
import type * as SqlClient from "@effect/sql/SqlClient"
import { Duration, Effect, Option, Schema } from "effect"
import { type DbFailure, withTransientRetry } from "../db/DbResilience.js"

export const JobStatus = Schema.Literal("queued", "running", "completed", "failed")
export type JobStatus = typeof JobStatus.Type

/** A job as stored; the lease token never leaves the worker that holds it. */
export class Job extends Schema.Class<Job>("Job")({
  id: Schema.UUID,
  kind: Schema.String,
  ownerId: Schema.propertySignature(Schema.NullOr(Schema.UUID)).pipe(Schema.fromKey("owner_id")),
  status: JobStatus,
  /** Steps recorded so far: a job taken over resumes after this one. */
  step: Schema.Number,
  input: Schema.Unknown,
  error: Schema.NullOr(Schema.String),
  leaseExpiresAt: Schema.propertySignature(Schema.NullOr(Schema.DateFromSelf)).pipe(
    Schema.fromKey("lease_expires_at")
  ),
  /** How many times a worker has claimed it (more than once: it was taken over or handed back). */
  attempts: Schema.Number,
  createdAt: Schema.propertySignature(Schema.DateFromSelf).pipe(Schema.fromKey("created_at")),
  updatedAt: Schema.propertySignature(Schema.DateFromSelf).pipe(Schema.fromKey("updated_at"))
}) {}

/** A job claimed by a worker, with the token that proves the lease is still its own. */
export interface Claimed {
  readonly job: Job
  readonly token: string
}

const columns = "id, kind, owner_id, status, step, input, error, lease_expires_at, attempts, created_at, updated_at"

const decodeJob = Schema.decodeUnknown(Job)
const decodeRows = (rows: ReadonlyArray<unknown>): Effect.Effect<Option.Option<Job>> =>
  rows.length === 0 ? Effect.succeed(Option.none()) : Effect.map(Effect.orDie(decodeJob(rows[0])), Option.some)

const expiry = (now: number, lease: Duration.Duration) => new Date(now + Duration.toMillis(lease))

/** The statements on the table, through `sql` (the request pool to enqueue and read, the background pool to run). */
export const make = (sql: SqlClient.SqlClient) => {
  const one = (operation: string) => <E, R>(query: Effect.Effect<ReadonlyArray<unknown>, E, R>) =>
    query.pipe(Effect.flatMap(decodeRows), withTransientRetry(operation))

  /** A new queued job. */
  const enqueue = (
    job: { readonly kind: string; readonly ownerId: string | null; readonly input: unknown }
  ): Effect.Effect<Job, DbFailure> =>
    sql`insert into jobs (kind, owner_id, input)
        values (${job.kind}, ${job.ownerId}, ${JSON.stringify(job.input)}::jsonb)
        returning ${sql.literal(columns)}`.pipe(
      one("JobStore.enqueue"),
      Effect.map(Option.getOrThrow)
    )

  const find = (id: string): Effect.Effect<Option.Option<Job>, DbFailure> =>
    Schema.is(Schema.UUID)(id)
      ? sql`select ${sql.literal(columns)} from jobs where id = ${id}`.pipe(one("JobStore.find"))
      : Effect.succeed(Option.none())

  /**
   * The oldest job of `kinds` that is queued or whose lease ran out before `now`, now held by `token` until
   * `now + lease`; none when there is no such job or every such job is being claimed by someone else.
   */
  const claim = (
    options: {
      readonly kinds: ReadonlyArray<string>
      readonly token: string
      readonly now: number
      readonly lease: Duration.Duration
    }
  ): Effect.Effect<Option.Option<Claimed>, DbFailure> =>
    sql`update jobs set
          status = 'running',
          lease_token = ${options.token},
          lease_expires_at = ${expiry(options.now, options.lease)},
          attempts = attempts + 1,
          updated_at = now()
        where id = (
          select id from jobs
          where kind in ${sql.in(options.kinds)}
            and (status = 'queued' or (status = 'running' and lease_expires_at < ${new Date(options.now)}))
          order by created_at
          limit 1
          for update skip locked
        )
        returning ${sql.literal(columns)}`.pipe(
      one("JobStore.claim"),
      Effect.map(Option.map((job) => ({ job, token: options.token })))
    )

  /**
   * Pushes the lease to `now + lease`, recording `step` when given. None: the lease is no longer this token's (the
   * job was taken over after the lease ran out, or finished).
   */
  const renew = (
    claimed: Claimed,
    options: { readonly now: number; readonly lease: Duration.Duration; readonly step?: number | undefined }
  ): Effect.Effect<Option.Option<Job>, DbFailure> =>
    sql`update jobs set
          step = coalesce(${options.step ?? null}::integer, step),
          lease_expires_at = ${expiry(options.now, options.lease)},
          updated_at = now()
        where id = ${claimed.job.id} and lease_token = ${claimed.token} and status = 'running'
        returning ${sql.literal(columns)}`.pipe(one("JobStore.renew"))

  /** Ends the job (completed, or failed with `error`) if the lease is still this token's. */
  const finish = (
    claimed: Claimed,
    outcome: { readonly status: "completed" } | { readonly status: "failed"; readonly error: string }
  ): Effect.Effect<Option.Option<Job>, DbFailure> =>
    sql`update jobs set
          status = ${outcome.status},
          error = ${outcome.status === "failed" ? outcome.error : null},
          lease_token = null,
          lease_expires_at = null,
          updated_at = now()
        where id = ${claimed.job.id} and lease_token = ${claimed.token} and status = 'running'
        returning ${sql.literal(columns)}`.pipe(one("JobStore.finish"))

  /** Gives the lease back at once: the job is queued again, for any worker, from its last recorded step. */
  const release = (claimed: Claimed): Effect.Effect<Option.Option<Job>, DbFailure> =>
    sql`update jobs set status = 'queued', lease_token = null, lease_expires_at = null, updated_at = now()
        where id = ${claimed.job.id} and lease_token = ${claimed.token} and status = 'running'
        returning ${sql.literal(columns)}`.pipe(one("JobStore.release"))

  return { enqueue, find, claim, renew, finish, release } as const
}

export type JobStore = ReturnType<typeof make>
