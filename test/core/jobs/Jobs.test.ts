/**
 * The job runner on real Postgres with time on `TestClock`: steps recorded and published in order, the lease
 * renewed while a long step runs, a dead worker's job taken over once its lease ran out (from its last recorded
 * step), jobs handed back at once on drain, failures, a lost lease, and the cap on concurrent jobs.
 */
import { assert, describe, layer } from "@effect/vitest"
import { Duration, Effect, Layer, Option, Ref, TestClock, TestServices } from "effect"
import { randomUUID } from "node:crypto"
import { BgDb, MainDb } from "../../../src/core/db/Database.js"
import * as Migrations from "../../../src/core/db/Migrations.js"
import * as Jobs from "../../../src/core/jobs/Jobs.js"
import * as JobStore from "../../../src/core/jobs/JobStore.js"
import * as Lifecycle from "../../../src/core/runtime/Lifecycle.js"
import {
  adminQuery,
  layerPools,
  layerTestDb,
  quietLogs,
  TestDb,
  uniqueAppName
} from "../../support/DatabaseFixtures.js"

const lease = Duration.seconds(30)

const layerDb = Layer.unwrapEffect(
  Effect.map(
    TestDb,
    (db) => Migrations.layer().pipe(Layer.provideMerge(layerPools(db.url, uniqueAppName("jobs"), { bg: { size: 6 } })))
  )
).pipe(Layer.provideMerge(layerTestDb("jobs")), Layer.provide(quietLogs))

type Row = {
  readonly status: string
  readonly step: number
  readonly lease_token: string | null
  readonly lease_expires_at: Date | null
  readonly attempts: number
  readonly error: string | null
}

const row = (id: string) =>
  Effect.flatMap(TestDb, (db) =>
    Effect.map(
      adminQuery<Row>(
        db.url,
        "select status, step, lease_token, lease_expires_at, attempts, error from jobs where id = $1",
        [id]
      ),
      (rows) => rows[0]!
    ))

/** Real time passes (database round trips) while the test clock stands still. */
const liveSleep = (millis: number) => TestServices.provideLive(Effect.sleep(Duration.millis(millis)))

/** Polls in real time until `check` holds; fails the test after 10 s. */
const settled = <A, E, R>(get: Effect.Effect<A, E, R>, check: (a: A) => boolean, what: string) =>
  Effect.gen(function*() {
    for (let attempt = 0; attempt < 500; attempt++) {
      const value = yield* get
      if (check(value)) return value
      yield* liveSleep(20)
    }
    return assert.fail(`gave up waiting for ${what}`)
  })

/** Moves the test clock by `tick` at a time, letting real time pass between ticks, until `check` holds. */
const driveUntil = <A, E, R>(
  tick: Duration.DurationInput,
  get: Effect.Effect<A, E, R>,
  check: (a: A) => boolean,
  what: string
) =>
  Effect.gen(function*() {
    for (let attempt = 0; attempt < 400; attempt++) {
      const value = yield* get
      if (check(value)) return value
      yield* TestClock.adjust(tick)
      yield* liveSleep(15)
    }
    return assert.fail(`gave up waiting for ${what}`)
  })

type Seen = { readonly tag: Jobs.JobEvent["_tag"]; readonly step: number; readonly error: string | null }

/** A runner of its own kind of job (so tests never take each other's jobs), with its events recorded. */
const runner = (
  handler: Jobs.Handler,
  options: { readonly concurrency?: number; readonly kind?: string } = {}
) =>
  Effect.gen(function*() {
    const kind = options.kind ?? `test-${randomUUID()}`
    const events = yield* Ref.make<ReadonlyArray<Seen & { readonly id: string }>>([])
    const lifecycle = yield* Lifecycle.make
    const jobs = yield* Jobs.make({
      concurrency: options.concurrency ?? 2,
      lease,
      pollInterval: Duration.seconds(1),
      handlers: { [kind]: handler },
      publish: (event) =>
        Ref.update(events, (seen) => [...seen, {
          id: event.job.id,
          tag: event._tag,
          step: event.job.step,
          error: event.job.error
        }])
    }).pipe(Effect.provideService(Lifecycle.Lifecycle, lifecycle))
    const eventsOf = (id: string) =>
      Effect.map(Ref.get(events), (seen) => seen.filter((event) => event.id === id).map(({ id: _, ...rest }) => rest))
    return { kind, jobs, lifecycle, eventsOf }
  })

/** `steps` steps of `stepMs`, each recorded; the handler's view of where it resumed is kept in `resumedFrom`. */
const stepping = (steps: number, stepMs: number, resumedFrom?: Ref.Ref<ReadonlyArray<number>>): Jobs.Handler => (run) =>
  Effect.gen(function*() {
    if (resumedFrom !== undefined) yield* Ref.update(resumedFrom, (all) => [...all, run.job.step])
    for (let step = run.job.step + 1; step <= steps; step++) {
      yield* Effect.sleep(Duration.millis(stepMs))
      yield* run.recordStep(step)
    }
  })

describe("Jobs", () => {
  layer(layerDb, { timeout: Duration.seconds(120) })((it) => {
    it.scoped("a job runs to its end: each step recorded and published once, in order, then Completed", () =>
      Effect.gen(function*() {
        const { eventsOf, jobs, kind } = yield* runner(stepping(5, 1000))
        const job = yield* jobs.enqueue({ kind, ownerId: null, input: {} })
        const events = yield* driveUntil(
          "1 second",
          eventsOf(job.id),
          (events) => events.some((event) => event.tag === "Completed"),
          "the job to complete"
        )
        assert.deepStrictEqual(events, [
          ...[1, 2, 3, 4, 5].map((step) => ({ tag: "Progress" as const, step, error: null })),
          { tag: "Completed", step: 5, error: null }
        ])
        const stored = yield* row(job.id)
        assert.strictEqual(stored.status, "completed")
        assert.strictEqual(stored.step, 5)
        assert.isNull(stored.lease_token)
        assert.strictEqual(stored.attempts, 1)
      }).pipe(Effect.provide(quietLogs)))

    it.scoped("a long step keeps its lease: renewed on the clock, never run out, never taken while its worker lives", () =>
      Effect.gen(function*() {
        const { eventsOf, jobs, kind } = yield* runner(stepping(1, 100_000))
        const job = yield* jobs.enqueue({ kind, ownerId: null, input: {} })
        yield* settled(row(job.id), (row) => row.status === "running", "the claim")
        const store = JobStore.make(yield* BgDb)
        const claimedAt = (yield* row(job.id)).lease_expires_at!.getTime()
        // 95 s of a 100 s step, more than three leases: at every moment the lease is live and nobody can take it.
        for (let elapsed = 5; elapsed <= 95; elapsed += 5) {
          yield* TestClock.adjust("5 seconds")
          yield* liveSleep(30)
          const now = yield* TestClock.currentTimeMillis
          const current = yield* settled(
            row(job.id),
            (row) => row.lease_expires_at!.getTime() > now,
            `a live lease at ${elapsed} s`
          )
          assert.strictEqual(current.status, "running")
          const rival = yield* store.claim({ kinds: [kind], token: randomUUID(), now, lease })
          assert.isTrue(Option.isNone(rival), `taken at ${elapsed} s`)
        }
        assert.isAbove((yield* row(job.id)).lease_expires_at!.getTime(), claimedAt + 60_000)
        yield* driveUntil("5 seconds", eventsOf(job.id), (events) => events.length === 2, "the end")
        assert.strictEqual((yield* row(job.id)).status, "completed")
        assert.strictEqual((yield* row(job.id)).attempts, 1)
      }).pipe(Effect.provide(quietLogs)))

    it.scoped("a dead worker's job is taken over once its lease ran out, and resumes after its last recorded step", () =>
      Effect.gen(function*() {
        const resumedFrom = yield* Ref.make<ReadonlyArray<number>>([])
        // The dead worker: claimed the job, recorded two steps, then vanished (no renewal, no release).
        const kind = `test-${randomUUID()}`
        const store = JobStore.make(yield* MainDb)
        const job = yield* store.enqueue({ kind, ownerId: null, input: {} })
        const now = yield* TestClock.currentTimeMillis
        const dead = Option.getOrThrow(yield* store.claim({ kinds: [kind], token: randomUUID(), now, lease }))
        yield* store.renew(dead, { now, lease, step: 2 })
        const { eventsOf } = yield* runner(stepping(5, 1000, resumedFrom), { concurrency: 1, kind })

        // Until the lease runs out, the live runner (polling every second) leaves the job alone.
        for (let second = 1; second <= 29; second++) {
          yield* TestClock.adjust("1 second")
          yield* liveSleep(15)
        }
        assert.strictEqual((yield* row(job.id)).lease_token, dead.token)
        const events = yield* driveUntil(
          "1 second",
          eventsOf(job.id),
          (events) => events.some((event) => event.tag === "Completed"),
          "the takeover to complete the job"
        )
        assert.deepStrictEqual(yield* Ref.get(resumedFrom), [2])
        assert.deepStrictEqual(events.map((event) => `${event.tag}:${event.step}`), [
          "Progress:3",
          "Progress:4",
          "Progress:5",
          "Completed:5"
        ])
        assert.strictEqual((yield* row(job.id)).attempts, 2)
      }).pipe(Effect.provide(quietLogs)))

    it.scoped("on drain a running job gives its lease back at once: queued again, its step kept, no clock moved", () =>
      Effect.gen(function*() {
        const { jobs, kind, lifecycle } = yield* runner((run) => Effect.zipRight(run.recordStep(1), Effect.never))
        const job = yield* jobs.enqueue({ kind, ownerId: null, input: {} })
        yield* settled(row(job.id), (row) => row.step === 1, "the first step")
        yield* lifecycle.beginDrain
        const released = yield* settled(row(job.id), (row) => row.status === "queued", "the lease given back")
        assert.strictEqual(released.step, 1)
        assert.isNull(released.lease_token)
        assert.isNull(released.lease_expires_at)
        // Drained workers claim nothing more.
        const next = yield* jobs.enqueue({ kind, ownerId: null, input: {} })
        yield* TestClock.adjust("5 seconds")
        yield* liveSleep(100)
        assert.strictEqual((yield* row(next.id)).status, "queued")
      }).pipe(Effect.provide(quietLogs)))

    it.scoped("closing the runner's scope gives running jobs back at once too", () =>
      Effect.gen(function*() {
        const { jobs, kind } = yield* runner((run) => Effect.zipRight(run.recordStep(1), Effect.never))
        const job = yield* jobs.enqueue({ kind, ownerId: null, input: {} })
        yield* settled(row(job.id), (row) => row.step === 1, "the first step")
        return job
      }).pipe(
        Effect.scoped,
        Effect.flatMap((job) => row(job.id)),
        Effect.map((stored) => {
          assert.strictEqual(stored.status, "queued")
          assert.isNull(stored.lease_token)
        }),
        Effect.provide(quietLogs)
      ))

    it.scoped("a job that fails ends failed with its message; one that dies ends failed without internals", () =>
      Effect.gen(function*() {
        const { eventsOf, jobs, kind } = yield* runner((run) =>
          run.job.input && (run.job.input as { readonly die?: boolean }).die === true
            ? Effect.dieMessage("secret internals")
            : Effect.zipRight(run.recordStep(1), new Jobs.JobFailed({ message: "Failed at step 2" }))
        )
        const failing = yield* jobs.enqueue({ kind, ownerId: null, input: {} })
        const dying = yield* jobs.enqueue({ kind, ownerId: null, input: { die: true } })
        yield* settled(eventsOf(failing.id), (events) => events.length === 2, "the failure")
        yield* settled(eventsOf(dying.id), (events) => events.length === 1, "the defect")
        assert.deepStrictEqual(yield* eventsOf(failing.id), [
          { tag: "Progress", step: 1, error: null },
          { tag: "Failed", step: 1, error: "Failed at step 2" }
        ])
        assert.deepStrictEqual(yield* eventsOf(dying.id), [{ tag: "Failed", step: 0, error: "Internal error" }])
        assert.strictEqual((yield* row(failing.id)).status, "failed")
        assert.isNull((yield* row(failing.id)).lease_token)
      }).pipe(Effect.provide(quietLogs)))

    it.scoped("a worker whose lease was taken over stops at its next step, without finishing the job", () =>
      Effect.gen(function*() {
        const { eventsOf, jobs, kind } = yield* runner(stepping(3, 1000))
        const job = yield* jobs.enqueue({ kind, ownerId: null, input: {} })
        yield* driveUntil("1 second", row(job.id), (row) => row.step === 1, "the first step")
        const db = yield* TestDb
        const thief = randomUUID()
        yield* adminQuery(db.url, "update jobs set lease_token = $2 where id = $1", [job.id, thief])
        for (let second = 0; second < 5; second++) {
          yield* TestClock.adjust("1 second")
          yield* liveSleep(30)
        }
        const stored = yield* row(job.id)
        assert.strictEqual(stored.status, "running")
        assert.strictEqual(stored.lease_token, thief)
        assert.strictEqual(stored.step, 1)
        assert.deepStrictEqual((yield* eventsOf(job.id)).map((event) => event.tag), ["Progress"])
      }).pipe(Effect.provide(quietLogs)))

    it.scoped("an instance runs at most its concurrency of jobs at once; the rest wait queued", () =>
      Effect.gen(function*() {
        const { jobs, kind } = yield* runner(() => Effect.never, { concurrency: 4 })
        const all = yield* Effect.forEach(
          Array.from({ length: 6 }),
          () => jobs.enqueue({ kind, ownerId: null, input: {} })
        )
        const statuses = Effect.forEach(all, (job) => Effect.map(row(job.id), (row) => row.status))
        yield* settled(statuses, (s) => s.filter((status) => status === "running").length === 4, "four running")
        yield* TestClock.adjust("10 seconds")
        yield* liveSleep(100)
        const after = yield* statuses
        assert.strictEqual(after.filter((status) => status === "running").length, 4)
        assert.strictEqual(after.filter((status) => status === "queued").length, 2)
      }).pipe(Effect.provide(quietLogs)))
  })
})
