import * as HttpLayerRouter from "@effect/platform/HttpLayerRouter"
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import * as SqlClient from "@effect/sql/SqlClient"
import { SqlError } from "@effect/sql/SqlError"
import { assert, describe, it, layer } from "@effect/vitest"
import { Array as Arr, Duration, Effect, Either, Exit, Fiber, Layer, LogLevel, Option } from "effect"
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"
import * as AppConfig from "../../../src/core/app/AppConfig.js"
import { BgDb, describeUrl, MainDb, optionsFromSettings } from "../../../src/core/db/Database.js"
import * as DbResilience from "../../../src/core/db/DbResilience.js"
import * as Migrations from "../../../src/core/db/Migrations.js"
import * as Server from "../../../src/core/http/Server.js"
import * as Lifecycle from "../../../src/core/runtime/Lifecycle.js"
import * as Logging from "../../../src/core/runtime/Logging.js"
import { Readiness } from "../../../src/core/runtime/Readiness.js"
import * as RequestId from "../../../src/core/runtime/RequestId.js"
import {
  adminQuery,
  backends,
  eventually,
  layerPools,
  layerTestDb,
  quietLogs,
  TestDb,
  uniqueAppName
} from "../../support/DatabaseFixtures.js"
import { ensureSharedPgBouncer } from "../../support/PgBouncer.js"
import { startTcpProxy } from "../../support/TcpProxy.js"

const range = (n: number) => Arr.range(0, n - 1)

const sqlstate = (error: SqlError): string | undefined => (error.cause as { readonly code?: string } | undefined)?.code

const jsonLines = (lines: ReadonlyArray<string>): Array<Record<string, unknown>> =>
  lines.map((line) => JSON.parse(line) as Record<string, unknown>)

const countsDelta = (before: DbResilience.Counts) =>
  Effect.map(DbResilience.counts, (after) => ({
    retries: after.retries - before.retries,
    transientFailures: after.transientFailures - before.transientFailures,
    poolExhausted: after.poolExhausted - before.poolExhausted
  }))

describe("Database settings", () => {
  it.effect("pools from the settings: <app>_main and <app>_bg, sizes and timeouts, the background URL defaulting to the main one", () =>
    Effect.gen(function*() {
      const settings = yield* AppConfig.load({
        environment: {
          APP_ENV: "test",
          APP_NAME: "shop",
          DATABASE_URL: "postgres://app:hunter2@db.internal:6543/shop",
          DB_POOL_SIZE: "7",
          DB_BG_POOL_SIZE: "2",
          DB_POOL_TIMEOUT: "4",
          DB_STATEMENT_TIMEOUT: "12",
          SERVERLESS_ENABLED: "true"
        }
      })
      const url = Option.getOrThrow(settings.database.url)
      const { bg, main } = optionsFromSettings(settings, url)
      assert.deepStrictEqual(
        [main.applicationName, main.size, bg.applicationName, bg.size],
        ["shop_main", 7, "shop_bg", 2]
      )
      assert.strictEqual(bg.url, url)
      for (const pool of [main, bg]) {
        assert.isTrue(pool.serverless)
        assert.strictEqual(Duration.toMillis(pool.acquireTimeout), 4_000)
        assert.deepStrictEqual(Option.map(pool.statementTimeout, Duration.toMillis), Option.some(12_000))
      }
      // Logs name the host, port and database, never the user or password.
      assert.strictEqual(describeUrl(url), "db.internal:6543/shop")
      const withBg = yield* AppConfig.load({
        environment: { APP_ENV: "test", DATABASE_URL: "postgres://a@h1/x", DATABASE_BG_URL: "postgres://b@h2/y" }
      })
      const options = optionsFromSettings(withBg, Option.getOrThrow(withBg.database.url))
      assert.strictEqual(describeUrl(options.bg.url), "h2:5432/y")
      assert.strictEqual(options.main.applicationName, "app_main")
    }))
})

describe("Database", () => {
  layer(layerTestDb("dbcore"), { timeout: Duration.seconds(60), excludeTestServices: true })((it) => {
    it.effect("migrations apply once, in order, and a second run applies nothing", () =>
      Effect.gen(function*() {
        const db = yield* TestDb
        const runTwice = Effect.gen(function*() {
          const sql = yield* MainDb
          const run = Effect.provideService(Migrations.run(), SqlClient.SqlClient, sql)
          return [yield* run, yield* run] as const
        })
        const [first, second] = yield* runTwice.pipe(Effect.provide(layerPools(db.url, uniqueAppName("mig"))))
        // Every migration of the repository's folder, in id order, whatever number of them there is by now.
        const expected = Fs.readdirSync(Migrations.defaultDirectory)
          .flatMap((file) => {
            const match = /^(\d+)_([^.]+)\.sql$/.exec(file)
            return match === null ? [] : [[Number(match[1]), match[2]!] as const]
          })
          .sort(([a], [b]) => a - b)
        assert.deepStrictEqual(expected[0], [1, "users"])
        assert.deepStrictEqual(first, expected)
        assert.deepStrictEqual(second, [])
        const columns = yield* adminQuery<{ column_name: string }>(
          db.url,
          "select column_name from information_schema.columns where table_name = 'users' order by ordinal_position"
        )
        assert.deepStrictEqual(columns.map((row) => row.column_name), [
          "id",
          "supabase_user_id",
          "email",
          "role",
          "created_at",
          "updated_at",
          "last_seen_at"
        ])
      }))

    it.effect("migrations run in id order, skip other files, and a failing one stops startup with nothing recorded", () =>
      Effect.gen(function*() {
        const db = yield* TestDb
        const dir = yield* Effect.acquireRelease(
          Effect.sync(() => Fs.mkdtempSync(Path.join(Os.tmpdir(), "migrations-"))),
          (dir) => Effect.sync(() => Fs.rmSync(dir, { recursive: true, force: true }))
        )
        Fs.writeFileSync(Path.join(dir, "0010_second.sql"), "insert into mig_order (step) values ('second');")
        Fs.writeFileSync(
          Path.join(dir, "0002_first.sql"),
          "create table mig_order (step text not null);\ninsert into mig_order (step) values ('first');"
        )
        Fs.writeFileSync(Path.join(dir, "README.md"), "not a migration")
        const { lines, sink } = Logging.memorySink()
        const pools = layerPools(db.url, uniqueAppName("migdir"))
        const applied = yield* Effect.gen(function*() {
          const sql = yield* MainDb
          return yield* Effect.provideService(
            Migrations.run({ directory: dir, table: "mig_dir_a" }),
            SqlClient.SqlClient,
            sql
          )
        }).pipe(Effect.provide(pools))
        assert.deepStrictEqual(applied, [[2, "first"], [10, "second"]])
        assert.deepStrictEqual(yield* adminQuery(db.url, "select step from mig_order"), [{ step: "first" }, {
          step: "second"
        }])

        Fs.writeFileSync(
          Path.join(dir, "0011_broken.sql"),
          "create table mig_broken (x int); insert into no_such_table values (1);"
        )
        const exit = yield* Layer.build(Migrations.layer({ directory: dir, table: "mig_dir_a" })).pipe(
          Effect.provide(pools),
          Effect.provide(Logging.layer({ format: "json", level: LogLevel.Info, sink })),
          Effect.scoped,
          Effect.exit
        )
        assert.isTrue(Exit.isFailure(exit))
        assert.isTrue(lines.some((line) => line.includes("Migrations failed: the app cannot start")))
        // One transaction: the broken migration's first statement is rolled back, and it is not recorded as done.
        assert.deepStrictEqual(yield* adminQuery(db.url, "select to_regclass('mig_broken') is null as absent"), [{
          absent: true
        }])
        assert.deepStrictEqual(
          yield* adminQuery(db.url, "select migration_id from mig_dir_a order by migration_id"),
          [{ migration_id: 2 }, { migration_id: 10 }]
        )
      }).pipe(Effect.scoped))

    it.effect("each pool has its own application name and size, is a readiness check, and is closed at shutdown", () =>
      Effect.gen(function*() {
        const db = yield* TestDb
        const app = uniqueAppName("pools")
        const names = [`${app}_main`, `${app}_bg`]
        const byName = (rows: ReadonlyArray<{ application_name: string }>, name: string) =>
          rows.filter((row) => row.application_name === name).length
        const peak = yield* Effect.gen(function*() {
          const main = yield* MainDb
          const bg = yield* BgDb
          const sleepers = Effect.all([
            Effect.forEach(range(8), () => main`select pg_sleep(1.5)`, { concurrency: "unbounded" }),
            Effect.forEach(range(8), () => bg`select pg_sleep(1.5)`, { concurrency: "unbounded" })
          ], { concurrency: 2 })
          const fiber = yield* Effect.fork(sleepers)
          const seen = yield* eventually(
            backends(db.url, db.name, names),
            (rows) => byName(rows, names[0]!) === 3 && byName(rows, names[1]!) === 2
          )
          yield* Fiber.join(fiber)
          const report = yield* Effect.flatMap(Readiness, (readiness) => readiness.run)
          assert.isTrue(report.ready)
          assert.deepStrictEqual(
            report.checks.map((check) => [check.name, check.status]),
            [["database.main", "ok"], ["database.bg", "ok"]]
          )
          return { main: byName(seen, names[0]!), bg: byName(seen, names[1]!) }
        }).pipe(Effect.provide(layerPools(db.url, app, { main: { size: 3 }, bg: { size: 2 } })))
        // 8 concurrent queries per pool, but never more connections than the pool's size.
        assert.deepStrictEqual(peak, { main: 3, bg: 2 })
        const left = yield* eventually(backends(db.url, db.name, names), (rows) => rows.length === 0)
        assert.deepStrictEqual(left, [])
      }))

    it.effect("through PgBouncer in transaction mode: 200 concurrent parameterised queries and 50 concurrent transactions, no error", () =>
      Effect.gen(function*() {
        const db = yield* TestDb
        yield* Effect.promise(() => ensureSharedPgBouncer())
        yield* adminQuery(
          db.url,
          "create table pgb_items (id serial primary key, worker int not null, label text not null)"
        )
        const before = yield* DbResilience.counts
        const { queries, transactions } = yield* Effect.gen(function*() {
          const sql = yield* MainDb
          const queries = yield* Effect.forEach(
            range(200),
            (i) =>
              sql<{ n: number; s: string }>`select ${i}::int as n, ${`q-${i}`}::text as s`.pipe(
                DbResilience.withTransientRetry("pgbouncer.query"),
                Effect.either
              ),
            { concurrency: "unbounded" }
          )
          const transactions = yield* Effect.forEach(
            range(50),
            (i) =>
              DbResilience.transactionWithTransientRetry(
                sql,
                Effect.gen(function*() {
                  yield* sql`insert into pgb_items (worker, label) values (${i}, ${`tx-${i}-a`})`
                  yield* sql`insert into pgb_items (worker, label) values (${i}, ${`tx-${i}-b`})`
                  return yield* sql<{ n: number }>`select count(*)::int as n from pgb_items where worker = ${i}`
                }),
                "pgbouncer.transaction"
              ).pipe(Effect.either),
            { concurrency: "unbounded" }
          )
          return { queries, transactions }
        }).pipe(Effect.provide(layerPools(db.urlViaPgBouncer, uniqueAppName("pgb"), { main: { size: 10 } })))

        assert.deepStrictEqual(queries.filter(Either.isLeft), [])
        queries.forEach((result, i) => assert.deepStrictEqual(result, Either.right([{ n: i, s: `q-${i}` }])))
        assert.deepStrictEqual(transactions.filter(Either.isLeft), [])
        // Inside its transaction each one saw its own two rows.
        transactions.forEach((result) => assert.deepStrictEqual(result, Either.right([{ n: 2 }])))
        const totals = yield* adminQuery<{ workers: number; total: number }>(
          db.url,
          "select count(distinct worker)::int as workers, count(*)::int as total from pgb_items"
        )
        assert.deepStrictEqual(totals, [{ workers: 50, total: 100 }])
        assert.deepStrictEqual(yield* countsDelta(before), { retries: 0, transientFailures: 0, poolExhausted: 0 })
      }))

    for (const via of ["direct", "pgbouncer"] as const) {
      it.effect(`a statement over the statement timeout is cancelled (${via}), in and out of a transaction`, () =>
        Effect.gen(function*() {
          const db = yield* TestDb
          if (via === "pgbouncer") yield* Effect.promise(() => ensureSharedPgBouncer())
          const url = via === "direct" ? db.url : db.urlViaPgBouncer
          yield* Effect.gen(function*() {
            const sql = yield* MainDb
            const alone = yield* Effect.flip(sql`select pg_sleep(20)`)
            const inTransaction = yield* Effect.flip(sql.withTransaction(sql`select pg_sleep(20)`))
            for (const error of [alone, inTransaction]) {
              assert.instanceOf(error, SqlError)
              assert.strictEqual(sqlstate(error), "57014")
              assert.strictEqual(DbResilience.kindOf(error), "permanent")
            }
            // Postgres itself cancelled them, on the timeout each transaction set (PgBouncer refuses it at startup).
            for (const error of [alone, inTransaction]) {
              assert.include(String((error.cause as Error).message), "statement timeout")
            }
            // A statement within the timeout runs to its end, and the pool is still usable.
            assert.deepStrictEqual(yield* sql`select pg_sleep(0.2)::text as slept, ${7}::int as n`, [{
              slept: "",
              n: 7
            }])
          }).pipe(
            Effect.provide(
              layerPools(url, uniqueAppName("stmt"), { main: { size: 2, statementTimeout: Option.some("500 millis") } })
            )
          )
        }))
    }

    it.effect("a connection broken mid-query is not handed to the next caller", () =>
      Effect.gen(function*() {
        const db = yield* TestDb
        const app = uniqueAppName("broken")
        yield* Effect.gen(function*() {
          const sql = yield* MainDb
          // One connection: the waiter queues behind the victim and gets whatever the victim leaves behind.
          const victim = yield* Effect.fork(Effect.either(sql`select pg_sleep(30)`))
          const running = yield* eventually(
            backends(db.url, db.name, [`${app}_main`]),
            (rows) => rows.some((row) => row.state === "active")
          )
          const victimPid = running.find((row) => row.state === "active")!.pid
          const waiter = yield* Effect.fork(sql<{ pid: number }>`select pg_backend_pid() as pid`)
          yield* Effect.sleep(Duration.millis(300))
          yield* adminQuery(db.url, "select pg_terminate_backend($1)", [victimPid])
          const failed = yield* Fiber.join(victim)
          assert.isTrue(Either.isLeft(failed))
          if (Either.isLeft(failed)) {
            assert.strictEqual(sqlstate(failed.left), "57P01")
            assert.strictEqual(DbResilience.kindOf(failed.left), "transient")
          }
          // No retry here: the waiter succeeds because it got a fresh connection, not the dead one.
          const [row] = yield* Fiber.join(waiter)
          assert.notStrictEqual(row?.pid, victimPid)
        }).pipe(Effect.provide(layerPools(db.url, app, { main: { size: 1 } })))
      }))

    it.effect("a transaction whose connection dies is rolled back and retried once as a whole", () =>
      Effect.gen(function*() {
        const db = yield* TestDb
        yield* adminQuery(db.url, "create table tx_items (label text not null)")
        const { sink, lines } = Logging.memorySink()
        let attempts = 0
        yield* Effect.gen(function*() {
          const sql = yield* MainDb
          const body = Effect.gen(function*() {
            attempts++
            yield* sql`insert into tx_items (label) values (${`attempt-${attempts}`})`
            // The first attempt's connection is terminated by the server mid-transaction (57P01).
            if (attempts === 1) yield* sql`select pg_terminate_backend(pg_backend_pid())`
          })
          // The inner retry sees an open transaction and leaves the retry to the one around the transaction.
          yield* DbResilience.transactionWithTransientRetry(
            sql,
            DbResilience.withTransientRetry(body, "drill.inner"),
            "drill.transaction"
          )
        }).pipe(
          Effect.provide(layerPools(db.url, uniqueAppName("tx"))),
          Effect.provide(Logging.layer({ format: "json", level: LogLevel.Info, sink }))
        )
        assert.strictEqual(attempts, 2)
        const rows = yield* adminQuery<{ label: string }>(db.url, "select label from tx_items")
        assert.deepStrictEqual(rows, [{ label: "attempt-2" }])
        const retries = jsonLines(lines).filter((line) => line.message === "Transient database error: retrying once")
        assert.deepStrictEqual(retries.map((line) => line.db_operation), ["drill.transaction"])
      }))

    it.effect(
      "fault: 500 operations all succeed while the app's backends are terminated five times, one second apart",
      () =>
        Effect.gen(function*() {
          const db = yield* TestDb
          const app = uniqueAppName("kill")
          const { sink, lines } = Logging.memorySink()
          const before = yield* DbResilience.counts
          const { killed, results } = yield* Effect.gen(function*() {
            const sql = yield* MainDb
            // Each operation takes at least 80 ms, so 500 of them five at a time outlast the five terminations.
            const operation = (i: number) =>
              sql<{ n: number }>`select ${i}::int as n, pg_sleep(0.08)::text as slept`.pipe(
                Effect.map((rows) => rows[0]?.n),
                DbResilience.withTransientRetry("drill.select"),
                Effect.either
              )
            const loop = Effect.forEach(range(500), operation, { concurrency: 5 })
            const terminate = adminQuery<{ n: number }>(
              db.url,
              "select count(pg_terminate_backend(pid))::int as n from pg_stat_activity where datname = $1 and application_name = $2",
              [db.name, `${app}_main`]
            )
            const killer = Effect.forEach(
              range(5),
              () => Effect.zipRight(Effect.sleep(Duration.seconds(1)), Effect.map(terminate, (rows) => rows[0]?.n ?? 0))
            )
            const [results, killed] = yield* Effect.all([loop, killer], { concurrency: 2 })
            return { results, killed }
          }).pipe(
            RequestId.withRequestId("drill-request"),
            Effect.provide(layerPools(db.url, app, { main: { size: 5 } })),
            Effect.provide(Logging.layer({ format: "json", level: LogLevel.Info, sink }))
          )

          assert.deepStrictEqual(results.filter(Either.isLeft), [])
          results.forEach((result, i) => assert.deepStrictEqual(result, Either.right(i)))
          assert.strictEqual(killed.length, 5)
          for (const n of killed) assert.isAtLeast(n, 1)
          const delta = yield* countsDelta(before)
          assert.isAtLeast(delta.retries, 1)
          assert.strictEqual(delta.transientFailures, 0)
          const retryLines = jsonLines(lines).filter((line) =>
            line.message === "Transient database error: retrying once"
          )
          assert.strictEqual(retryLines.length, delta.retries)
          for (const line of retryLines) {
            assert.strictEqual(line.db_operation, "drill.select")
            assert.strictEqual(line.request_id, "drill-request")
            assert.strictEqual(line.level, "WARN")
          }
        }),
      { timeout: 120_000 }
    )

    it.effect("fault: the database unreachable fails fast as TransientDbError after one retry, and the next operation after the path is back succeeds", () =>
      Effect.gen(function*() {
        const db = yield* TestDb
        const proxy = yield* Effect.acquireRelease(
          Effect.promise(() => startTcpProxy({ targetHost: "127.0.0.1", targetPort: 5432 })),
          (proxy) => Effect.promise(() => proxy.stop())
        )
        const viaProxy = new URL(db.url)
        viaProxy.port = String(proxy.port)
        const acquireTimeout = Duration.seconds(3)
        yield* Effect.gen(function*() {
          const sql = yield* MainDb
          let attempts = 0
          const operation = Effect.suspend(() => {
            attempts++
            return sql<{ ok: number }>`select 1 as ok`
          }).pipe(DbResilience.withTransientRetry("drill.unreachable"))

          assert.deepStrictEqual(yield* operation, [{ ok: 1 }])
          yield* Effect.promise(() => proxy.cut())
          attempts = 0
          const started = Date.now()
          const error = yield* Effect.flip(operation)
          const elapsed = Date.now() - started
          assert.strictEqual(error._tag, "TransientDbError")
          assert.strictEqual(attempts, 2)
          // Not a hang: bounded by two acquire timeouts, with room for a loaded machine.
          assert.isBelow(elapsed, 2 * Duration.toMillis(acquireTimeout) + 10_000)

          yield* Effect.promise(() => proxy.restore())
          attempts = 0
          assert.deepStrictEqual(yield* operation, [{ ok: 1 }])
        }).pipe(
          Effect.provide(layerPools(viaProxy.toString(), uniqueAppName("cut"), { main: { size: 2, acquireTimeout } })),
          Effect.provide(quietLogs)
        )
      }).pipe(Effect.scoped))

    it.effect("pool exhaustion: pool of 2, 20 concurrent slow operations; the excess fail at once with PoolExhausted, each attempted once", () =>
      Effect.gen(function*() {
        const db = yield* TestDb
        const acquireTimeout = Duration.seconds(1)
        const before = yield* DbResilience.counts
        const attempts = Arr.makeBy(20, () => 0)
        const results = yield* Effect.gen(function*() {
          const sql = yield* MainDb
          return yield* Effect.forEach(
            range(20),
            (i) =>
              Effect.suspend(() => {
                attempts[i]!++
                return sql`select pg_sleep(5)`
              }).pipe(
                DbResilience.withTransientRetry("drill.slow"),
                Effect.either,
                Effect.timed
              ),
            { concurrency: "unbounded" }
          )
        }).pipe(
          Effect.provide(layerPools(db.url, uniqueAppName("full"), { main: { size: 2, acquireTimeout } })),
          Effect.provide(quietLogs)
        )

        const succeeded = results.filter(([, result]) => Either.isRight(result))
        const exhausted = results.filter(([, result]) => Either.isLeft(result) && result.left._tag === "PoolExhausted")
        assert.strictEqual(succeeded.length, 2)
        assert.strictEqual(exhausted.length, 18)
        assert.deepStrictEqual(attempts, Arr.makeBy(20, () => 1))
        // They did not wait for the slow ones (5 s): they gave up at the acquire timeout (1 s), with a margin.
        for (const [elapsed] of exhausted) assert.isBelow(Duration.toMillis(elapsed), 4_000)
        assert.deepStrictEqual(yield* countsDelta(before), { retries: 0, transientFailures: 0, poolExhausted: 18 })
      }))

    it.effect("pool exhaustion reaches the client as 503 DB_POOL_EXHAUSTED with Retry-After", () =>
      Effect.gen(function*() {
        const db = yield* TestDb
        const route = HttpLayerRouter.add(
          "GET",
          "/slow",
          Effect.flatMap(MainDb, (sql) =>
            sql`select pg_sleep(3)`.pipe(
              DbResilience.withTransientRetry("http.slow"),
              Effect.as(HttpServerResponse.text("done"))
            ))
        )
        const server = Server.serve(route, { corsOrigins: [], corsAllowCredentials: false, maxBodyBytes: 1024 }).pipe(
          Layer.provideMerge(Server.layerListen({ host: "127.0.0.1", port: 0 })),
          Layer.provide(layerPools(db.url, uniqueAppName("http"), { main: { size: 1, acquireTimeout: "1 second" } })),
          Layer.provideMerge(Lifecycle.layer)
        )
        const responses = yield* Effect.gen(function*() {
          const address = (yield* Server.NodeServer).address()
          const port = typeof address === "object" && address !== null ? address.port : 0
          const get = Effect.promise(async () => {
            const response = await fetch(`http://127.0.0.1:${port}/slow`)
            return {
              status: response.status,
              retryAfter: response.headers.get("retry-after"),
              body: await response.text()
            }
          })
          return yield* Effect.all([get, get, get], { concurrency: "unbounded" })
        }).pipe(Effect.provide(server), Effect.provide(quietLogs))
        const rejected = responses.filter((response) => response.status === 503)
        assert.strictEqual(responses.filter((response) => response.status === 200).length, 1)
        assert.strictEqual(rejected.length, 2)
        for (const response of rejected) {
          assert.strictEqual(JSON.parse(response.body).error.code, "DB_POOL_EXHAUSTED")
          assert.isNotNull(response.retryAfter)
          assert.isAbove(Number(response.retryAfter), 0)
        }
      }))

    it.effect("serverless mode keeps no idle connection after a burst (and pooled mode does)", () =>
      Effect.gen(function*() {
        const db = yield* TestDb
        const burst = Effect.gen(function*() {
          const main = yield* MainDb
          const bg = yield* BgDb
          yield* Effect.all([
            Effect.forEach(range(40), (i) => main`select ${i}::int as n`, { concurrency: 8 }),
            Effect.forEach(range(20), (i) => bg`select ${i}::int as n`, { concurrency: 4 })
          ], { concurrency: 2 })
        })
        const idleAfterBurst = (serverless: boolean) => {
          const app = uniqueAppName(serverless ? "nopool" : "pool")
          const names = [`${app}_main`, `${app}_bg`]
          return Effect.gen(function*() {
            yield* burst
            // Backends take a moment to exit after their client closes: poll (while the pools are still open).
            return yield* eventually(
              backends(db.url, db.name, names),
              (rows) => serverless ? rows.length === 0 : rows.length > 0,
              "5 seconds"
            )
          }).pipe(
            Effect.provide(layerPools(db.url, app, { main: { serverless, size: 4 }, bg: { serverless, size: 2 } }))
          )
        }
        assert.deepStrictEqual(yield* idleAfterBurst(true), [])
        const pooled = yield* idleAfterBurst(false)
        assert.isAbove(pooled.length, 0)
        assert.isTrue(pooled.every((row) => row.state === "idle"))
      }))
  })
})
