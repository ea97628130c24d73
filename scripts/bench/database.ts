/**
 * Benchmark: `select 1` and a one-row upsert through `MainDb` with `withTransientRetry`, against a raw `pg` pool of
 * the same size, in alternating rounds of the same run (so both see the same machine load). Each case is measured
 * twice: operations per second, and CPU time of this process per operation, which a loaded machine disturbs less.
 * Creates and drops a database of its own on the Postgres at TEST_POSTGRES_ADMIN_URL (default
 * postgres://postgres@127.0.0.1:5432).
 *
 *   node --import tsx scripts/bench/database.ts
 */
import { Duration, Effect, Layer, ManagedRuntime, Option, Redacted } from "effect"
import { pathToFileURL } from "node:url"
import pg from "pg"
import * as Database from "../../src/core/db/Database.js"
import * as DbResilience from "../../src/core/db/DbResilience.js"
import * as Lifecycle from "../../src/core/runtime/Lifecycle.js"
import * as Readiness from "../../src/core/runtime/Readiness.js"
import { createTestDatabase } from "../../test/support/TestDatabase.js"
import type { Row } from "./load.js"

// Rows: ours through MainDb + withTransientRetry, the baseline through a raw pg pool of the same size; operations
// per second (ratio ours / baseline) or CPU microseconds per operation (ratio baseline / ours): higher is better.

export interface Options {
  readonly poolSize?: number
  /** Callers issuing operations back to back. */
  readonly concurrency?: number
  /** Rounds per side and case; the sides alternate. */
  readonly rounds?: number
  readonly roundMillis?: number
}

const upsertText =
  "insert into bench_items (id, n) values ($1, 1) on conflict (id) do update set n = bench_items.n + 1, updated_at = now()"
const keys = 1_000

/** Calls `op` back to back from `concurrency` fibers until `millis` pass; returns how many completed. */
const closedLoopEffect = <A, E>(
  concurrency: number,
  millis: number,
  op: Effect.Effect<A, E>
): Effect.Effect<number, E> =>
  Effect.suspend(() => {
    const deadline = performance.now() + millis
    const caller = Effect.gen(function*() {
      let n = 0
      while (performance.now() < deadline) {
        yield* op
        n++
      }
      return n
    })
    return Effect.map(
      Effect.all(Array.from({ length: concurrency }, () => caller), { concurrency: "unbounded" }),
      (counts) => counts.reduce((a, b) => a + b, 0)
    )
  })

/** Calls `op` back to back from `concurrency` callers until `millis` pass; returns how many completed. */
const closedLoop = async (concurrency: number, millis: number, op: () => Promise<unknown>): Promise<number> => {
  const deadline = performance.now() + millis
  const counts = await Promise.all(Array.from({ length: concurrency }, async () => {
    let n = 0
    while (performance.now() < deadline) {
      await op()
      n++
    }
    return n
  }))
  return counts.reduce((a, b) => a + b, 0)
}

export const run = async (options: Options = {}): Promise<ReadonlyArray<Row>> => {
  const poolSize = options.poolSize ?? 10
  const concurrency = options.concurrency ?? 32
  const rounds = options.rounds ?? 4
  const roundMillis = options.roundMillis ?? 1_200
  const db = await createTestDatabase("bench")
  const raw = new pg.Pool({
    connectionString: db.url,
    max: poolSize,
    application_name: "bench_raw",
    statement_timeout: 30_000
  })
  raw.on("error", () => {})
  const runtime = ManagedRuntime.make(
    Database.layer({
      main: {
        url: Redacted.make(db.url),
        applicationName: "bench_main",
        size: poolSize,
        acquireTimeout: Duration.seconds(10),
        statementTimeout: Option.some(Duration.seconds(30)),
        idleTimeout: Duration.seconds(60),
        serverless: false
      },
      bg: {
        url: Redacted.make(db.url),
        applicationName: "bench_bg",
        size: 1,
        acquireTimeout: Duration.seconds(10),
        statementTimeout: Option.some(Duration.seconds(30)),
        idleTimeout: Duration.seconds(60),
        serverless: false
      }
    }).pipe(
      Layer.provide(Readiness.layer()),
      Layer.provide(Lifecycle.layer),
      // As the server runs it (`CoreLive`): no spans unless tracing is turned on for a tracer that exports them.
      Layer.merge(Layer.setTracerEnabled(false))
    )
  )
  try {
    const sql = await runtime.runPromise(Database.MainDb)
    await raw.query(
      "create table bench_items (id int primary key, n int not null, updated_at timestamptz not null default now())"
    )

    const selectOurs = sql`select 1 as one`.pipe(DbResilience.withTransientRetry("bench.select"))
    const upsertOurs = (id: number) =>
      sql`insert into bench_items (id, n) values (${id}, 1)
          on conflict (id) do update set n = bench_items.n + 1, updated_at = now()`.pipe(
        DbResilience.withTransientRetry("bench.upsert")
      )
    const cases = [
      {
        name: "db select 1",
        ours: (millis: number) => runtime.runPromise(closedLoopEffect(concurrency, millis, selectOurs)),
        baseline: (millis: number) => closedLoop(concurrency, millis, () => raw.query("select 1 as one"))
      },
      {
        name: "db one-row upsert",
        ours: (millis: number) =>
          runtime.runPromise(
            closedLoopEffect(concurrency, millis, Effect.suspend(() => upsertOurs(Math.floor(Math.random() * keys))))
          ),
        baseline: (millis: number) =>
          closedLoop(concurrency, millis, () => raw.query(upsertText, [Math.floor(Math.random() * keys)]))
      }
    ]

    // Warm both: connections open, JIT settled.
    for (const c of cases) {
      await c.ours(500)
      await c.baseline(500)
    }

    const rows: Array<Row> = []
    for (const c of cases) {
      const ours = { operations: 0, cpuMicros: 0 }
      const baseline = { operations: 0, cpuMicros: 0 }
      const measure = async (side: typeof ours, round: (millis: number) => Promise<number>) => {
        const cpu = process.cpuUsage()
        side.operations += await round(roundMillis)
        const used = process.cpuUsage(cpu)
        side.cpuMicros += used.user + used.system
      }
      for (let round = 0; round < rounds; round++) {
        // Alternate which side goes first, so neither always runs on the warmer machine.
        if (round % 2 === 0) {
          await measure(ours, c.ours)
          await measure(baseline, c.baseline)
        } else {
          await measure(baseline, c.baseline)
          await measure(ours, c.ours)
        }
      }
      const seconds = (rounds * roundMillis) / 1000
      const oursRate = ours.operations / seconds
      const baselineRate = baseline.operations / seconds
      const oursCpu = ours.cpuMicros / ours.operations
      const baselineCpu = baseline.cpuMicros / baseline.operations
      rows.push({
        name: c.name,
        ours: Math.round(oursRate),
        baseline: Math.round(baselineRate),
        ratio: Math.round((oursRate / baselineRate) * 100) / 100,
        ...(c.name === "db select 1" ? { goal: { of: "ratio", atLeast: 0.9 } as const } : {})
      }, {
        name: `${c.name} CPU`,
        ours: Math.round(oursCpu * 10) / 10,
        baseline: Math.round(baselineCpu * 10) / 10,
        ratio: Math.round((baselineCpu / oursCpu) * 100) / 100,
        unit: "µs CPU/op; ratio raw/ours"
      })
    }
    return rows
  } finally {
    await runtime.dispose()
    await raw.end()
    await db.drop()
  }
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  run().then(
    (rows) => {
      for (const row of rows) {
        const unit = row.unit === undefined ? "ops/s" : "µs/op"
        console.log(
          `${row.name.padEnd(24)} ours ${String(row.ours).padStart(7)} ${unit}   raw pg ${
            String(row.baseline).padStart(7)
          } ${unit}   ratio ${row.ratio.toFixed(2)}`
        )
      }
    },
    (error) => {
      console.error(error)
      process.exitCode = 1
    }
  )
}
