/**
 * The lease on the `jobs` table, on real Postgres, directly and through PgBouncer in transaction mode: claim,
 * renew, expiry and takeover, release, finish; concurrent claimers never share a job.
 */
import { assert, describe, layer } from "@effect/vitest"
import { Duration, Effect, Layer, Option } from "effect"
import { randomUUID } from "node:crypto"
import { BgDb } from "../../../src/core/db/Database.js"
import * as Migrations from "../../../src/core/db/Migrations.js"
import * as JobStore from "../../../src/core/jobs/JobStore.js"
import { adminQuery, layerPools, layerTestDb, TestDb, uniqueAppName } from "../../support/DatabaseFixtures.js"
import { ensureSharedPgBouncer, sharedPgBouncerUrl } from "../../support/PgBouncer.js"

const lease = Duration.seconds(30)
const t0 = Date.parse("2030-01-01T00:00:00Z")

/** A store on pools of their own, on the test database directly or through the shared PgBouncer. */
const withStore = <A, E>(
  via: "direct" | "pgbouncer",
  body: (store: JobStore.JobStore) => Effect.Effect<A, E, TestDb>
) =>
  Effect.gen(function*() {
    const db = yield* TestDb
    if (via === "pgbouncer") yield* Effect.promise(() => ensureSharedPgBouncer())
    const url = via === "direct" ? db.url : sharedPgBouncerUrl(db.name)
    return yield* Effect.flatMap(BgDb, (sql) => body(JobStore.make(sql))).pipe(
      Effect.provide(layerPools(url, uniqueAppName("jobstore"), { bg: { size: 10 } }))
    )
  })

const kindOf = () => `test-${randomUUID()}`

const row = (id: string) =>
  Effect.flatMap(TestDb, (db) =>
    Effect.map(
      adminQuery<{ status: string; step: number; lease_token: string | null; lease_expires_at: Date | null }>(
        db.url,
        "select status, step, lease_token, lease_expires_at from jobs where id = $1",
        [id]
      ),
      (rows) => rows[0]!
    ))

const layerDb = Layer.unwrapEffect(
  Effect.map(TestDb, (db) => Migrations.layer().pipe(Layer.provide(layerPools(db.url, uniqueAppName("jobsmig")))))
).pipe(Layer.provideMerge(layerTestDb("jobstore")))

describe("JobStore", () => {
  layer(layerDb, { timeout: Duration.seconds(60), excludeTestServices: true })((it) => {
    for (const via of ["direct", "pgbouncer"] as const) {
      it.effect(`${via}: a claim takes the oldest queued job under a lease; a held job is not claimed again`, () =>
        withStore(via, (store) =>
          Effect.gen(function*() {
            const kind = kindOf()
            const first = yield* store.enqueue({ kind, ownerId: null, input: { n: 1 } })
            const second = yield* store.enqueue({ kind, ownerId: null, input: { n: 2 } })
            assert.strictEqual(first.status, "queued")
            assert.deepStrictEqual(first.input, { n: 1 })

            const a = Option.getOrThrow(yield* store.claim({ kinds: [kind], token: randomUUID(), now: t0, lease }))
            assert.strictEqual(a.job.id, first.id)
            assert.strictEqual(a.job.status, "running")
            assert.strictEqual(a.job.attempts, 1)
            assert.strictEqual(a.job.leaseExpiresAt?.getTime(), t0 + 30_000)
            const b = Option.getOrThrow(yield* store.claim({ kinds: [kind], token: randomUUID(), now: t0, lease }))
            assert.strictEqual(b.job.id, second.id)
            // Both held, neither expired: nothing to claim, even a second before the leases end.
            const none = yield* store.claim({ kinds: [kind], token: randomUUID(), now: t0 + 29_999, lease })
            assert.isTrue(Option.isNone(none))
            // Other kinds are not seen.
            const other = yield* store.claim({ kinds: [kindOf()], token: randomUUID(), now: t0 + 60_000, lease })
            assert.isTrue(Option.isNone(other))
          })))

      it.effect(`${via}: renewing records the step and moves the lease; a lease that ran out is taken over`, () =>
        withStore(via, (store) =>
          Effect.gen(function*() {
            const kind = kindOf()
            const job = yield* store.enqueue({ kind, ownerId: null, input: {} })
            const first = Option.getOrThrow(yield* store.claim({ kinds: [kind], token: randomUUID(), now: t0, lease }))
            const renewed = Option.getOrThrow(yield* store.renew(first, { now: t0 + 20_000, lease, step: 3 }))
            assert.strictEqual(renewed.step, 3)
            assert.strictEqual(renewed.leaseExpiresAt?.getTime(), t0 + 50_000)
            // A renewal without a step keeps the step.
            const kept = Option.getOrThrow(yield* store.renew(first, { now: t0 + 25_000, lease }))
            assert.strictEqual(kept.step, 3)

            // Still held at its new expiry; taken over just after.
            const early = yield* store.claim({ kinds: [kind], token: randomUUID(), now: t0 + 55_000, lease })
            assert.isTrue(Option.isNone(early))
            const second = Option.getOrThrow(
              yield* store.claim({ kinds: [kind], token: randomUUID(), now: t0 + 55_001, lease })
            )
            assert.strictEqual(second.job.id, job.id)
            assert.strictEqual(second.job.step, 3, "resumed from the last recorded step")
            assert.strictEqual(second.job.attempts, 2)

            // The first worker's lease is gone: it can neither renew, nor finish, nor release.
            assert.isTrue(Option.isNone(yield* store.renew(first, { now: t0 + 56_000, lease, step: 4 })))
            assert.isTrue(Option.isNone(yield* store.finish(first, { status: "completed" })))
            assert.isTrue(Option.isNone(yield* store.release(first)))
            assert.strictEqual((yield* row(job.id)).step, 3)
            assert.strictEqual((yield* row(job.id)).lease_token, second.token)
          })))

      it.effect(`${via}: a released job is queued again at once, its step kept`, () =>
        withStore(via, (store) =>
          Effect.gen(function*() {
            const kind = kindOf()
            const job = yield* store.enqueue({ kind, ownerId: null, input: {} })
            const first = Option.getOrThrow(yield* store.claim({ kinds: [kind], token: randomUUID(), now: t0, lease }))
            yield* store.renew(first, { now: t0, lease, step: 7 })
            const released = Option.getOrThrow(yield* store.release(first))
            assert.strictEqual(released.status, "queued")
            assert.isNull(released.leaseExpiresAt)
            assert.isNull((yield* row(job.id)).lease_token)
            // Claimable by another worker at the same instant, with no lease to wait out.
            const next = Option.getOrThrow(yield* store.claim({ kinds: [kind], token: randomUUID(), now: t0, lease }))
            assert.strictEqual(next.job.id, job.id)
            assert.strictEqual(next.job.step, 7)
          })))

      it.effect(`${via}: a finished job holds no lease and is never claimed again`, () =>
        withStore(via, (store) =>
          Effect.gen(function*() {
            const kind = kindOf()
            const done = yield* store.enqueue({ kind, ownerId: null, input: {} })
            const failed = yield* store.enqueue({ kind, ownerId: null, input: {} })
            const a = Option.getOrThrow(yield* store.claim({ kinds: [kind], token: randomUUID(), now: t0, lease }))
            const b = Option.getOrThrow(yield* store.claim({ kinds: [kind], token: randomUUID(), now: t0, lease }))
            const completed = Option.getOrThrow(yield* store.finish(a, { status: "completed" }))
            const failure = Option.getOrThrow(yield* store.finish(b, { status: "failed", error: "boom" }))
            assert.strictEqual(completed.id, done.id)
            assert.strictEqual(completed.status, "completed")
            assert.strictEqual(failure.id, failed.id)
            assert.strictEqual(failure.status, "failed")
            assert.strictEqual(failure.error, "boom")
            assert.isNull((yield* row(done.id)).lease_token)
            const later = yield* store.claim({ kinds: [kind], token: randomUUID(), now: t0 + 3_600_000, lease })
            assert.isTrue(Option.isNone(later))
          })))

      it.effect(`${via}: 30 jobs and 60 concurrent claimers: each job is claimed exactly once`, () =>
        withStore(via, (store) =>
          Effect.gen(function*() {
            const kind = kindOf()
            const jobs = yield* Effect.forEach(
              Array.from({ length: 30 }, (_, n) => n),
              (n) => store.enqueue({ kind, ownerId: null, input: { n } })
            )
            const claims = yield* Effect.forEach(
              Array.from({ length: 60 }),
              () => store.claim({ kinds: [kind], token: randomUUID(), now: t0, lease }),
              { concurrency: "unbounded" }
            )
            const claimed = claims.flatMap((claim) => Option.isSome(claim) ? [claim.value.job.id] : [])
            assert.strictEqual(claimed.length, 30)
            assert.deepStrictEqual(new Set(claimed), new Set(jobs.map((job) => job.id)))
          })))
    }

    it.effect("a running job without a lease cannot be stored", () =>
      Effect.gen(function*() {
        const db = yield* TestDb
        const error = yield* Effect.flatMap(BgDb, (sql) => sql`insert into jobs (kind, status) values ('x', 'running')`)
          .pipe(Effect.flip, Effect.provide(layerPools(db.url, uniqueAppName("jobscheck"))))
        assert.include(String(error.cause), "check constraint")
      }))
  })
})
