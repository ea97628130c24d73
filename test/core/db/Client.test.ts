import { assert, describe, layer } from "@effect/vitest"
import { Chunk, Duration, Effect, Exit, Fiber, Option, Ref, Stream, Tracer } from "effect"
import { MainDb } from "../../../src/core/db/Database.js"
import {
  adminQuery,
  backends,
  eventually,
  layerPools,
  layerTestDb,
  TestDb,
  uniqueAppName
} from "../../support/DatabaseFixtures.js"
import { ensureSharedPgBouncer } from "../../support/PgBouncer.js"

/** The native tracer, with every span it makes kept for the test to read. */
const recordingTracer = Effect.map(Effect.tracer, (native) => {
  const spans: Array<Tracer.Span> = []
  const tracer = Tracer.make({
    span: (...args) => {
      const span = native.span(...args)
      spans.push(span)
      return span
    },
    context: native.context
  })
  return { tracer, spans }
})

describe("DatabaseClient", () => {
  layer(layerTestDb("dbclient"), { timeout: Duration.seconds(60), excludeTestServices: true })((it) => {
    const variants = [
      { name: "direct, no statement timeout", via: "direct", timeout: Option.none<Duration.DurationInput>() },
      { name: "direct, statement timeout", via: "direct", timeout: Option.some<Duration.DurationInput>("5 seconds") },
      {
        name: "PgBouncer, statement timeout",
        via: "pgbouncer",
        timeout: Option.some<Duration.DurationInput>("5 seconds")
      }
    ] as const
    variants.forEach((variant, i) => {
      it.effect(`a statement on its own keeps the library's API: helpers, fragments, unsafe, values, stream, several statements (${variant.name})`, () =>
        Effect.gen(function*() {
          const db = yield* TestDb
          if (variant.via === "pgbouncer") yield* Effect.promise(() => ensureSharedPgBouncer())
          const items = `client_items_${i}`
          yield* Effect.gen(function*() {
            const sql = yield* MainDb
            // The timeout is in force for the statement (set by its prelude), and only where one is configured.
            assert.deepStrictEqual(
              yield* sql<{ statement_timeout: string }>`show statement_timeout`,
              [{ statement_timeout: Option.isSome(variant.timeout) ? "5s" : "0" }]
            )
            yield* sql`create table ${sql(items)} (id int primary key, label text not null)`
            yield* sql`insert into ${sql(items)} ${sql.insert([{ id: 1, label: "a" }, { id: 2, label: "b" }])}`
            const filter = sql`id in ${sql.in([1, 2])}`
            assert.deepStrictEqual(
              yield* sql`select label from ${sql(items)} where ${filter} order by id`,
              [{ label: "a" }, { label: "b" }]
            )
            assert.deepStrictEqual(yield* sql.unsafe(`select label from ${items} where id = $1`, [2]), [{ label: "b" }])
            assert.deepStrictEqual(yield* sql`select id, label from ${sql(items)} order by id`.values, [[1, "a"], [
              2,
              "b"
            ]])
            assert.deepStrictEqual(
              Chunk.toReadonlyArray(yield* Stream.runCollect(sql`select id from ${sql(items)} order by id`.stream)),
              [{ id: 1 }, { id: 2 }]
            )
            // A text of several statements answers with the rows of each.
            const several: ReadonlyArray<unknown> = yield* sql`select 1 as a; select 2 as b`
            assert.deepStrictEqual(several, [[{ a: 1 }], [{ b: 2 }]])
            // A statement run twice is compiled once and gives the same rows both times.
            const count = sql<{ n: number }>`select count(*)::int as n from ${sql(items)}`
            assert.deepStrictEqual([yield* count, yield* count], [[{ n: 2 }], [{ n: 2 }]])
            // In a transaction every statement runs on the transaction's connection.
            const pids = yield* sql.withTransaction(
              Effect.all([
                sql<{ pid: number }>`select pg_backend_pid() as pid`,
                sql.unsafe<{ pid: number }>("select pg_backend_pid() as pid")
              ])
            )
            assert.strictEqual(pids[0][0]?.pid, pids[1][0]?.pid)
            // Statements that must run outside a transaction still run (without the timeout's prelude).
            yield* sql`create index concurrently ${sql(`${items}_label`)} on ${sql(items)} (label)`
            yield* sql`vacuum ${sql(items)}`
          }).pipe(Effect.provide(layerPools(
            variant.via === "direct" ? db.url : db.urlViaPgBouncer,
            uniqueAppName("api"),
            { main: { statementTimeout: variant.timeout } }
          )))
        }))
    })

    for (const via of ["direct", "pgbouncer"] as const) {
      it.effect(`the statement timeout is ${via === "direct" ? "the direct connection's session setting, with no prelude on its statements" : "set by each statement's prelude through PgBouncer, never as a session setting"}`, () =>
        Effect.gen(function*() {
          const db = yield* TestDb
          if (via === "pgbouncer") yield* Effect.promise(() => ensureSharedPgBouncer())
          const appName = uniqueAppName("where")
          const marker = `select 'timeout_${via}' as marker`
          yield* Effect.gen(function*() {
            const sql = yield* MainDb
            // Without parameters pg sends the simple protocol: a prelude would travel in the same query string.
            yield* sql.unsafe(marker)
            // The backend's last query, as Postgres received it.
            const [backend] = yield* adminQuery<{ query: string }>(
              db.url,
              "select query from pg_stat_activity where datname = $1 and query like $2",
              [db.name, `%timeout_${via}%`]
            )
            assert.isDefined(backend)
            if (via === "direct") {
              assert.strictEqual(backend.query, marker)
              // The setting is the session's: in force with no transaction of the statement's own to hold it.
              assert.deepStrictEqual(yield* sql.unsafe(`show statement_timeout`), [{ statement_timeout: "5s" }])
            } else {
              assert.match(backend.query, /^select set_config\('statement_timeout', '5000', true\);\n/)
              // The server connection PgBouncer lent holds no session setting of ours for its next client.
              const [server] = yield* adminQuery<{ timeout: string }>(
                db.urlViaPgBouncer,
                "select current_setting('statement_timeout') as timeout"
              )
              assert.strictEqual(server?.timeout, "0")
            }
          }).pipe(Effect.provide(layerPools(
            via === "direct" ? db.url : db.urlViaPgBouncer,
            appName,
            { main: { statementTimeout: Option.some("5 seconds") } }
          )))
        }))
    }

    it.effect("interrupted while it runs on a direct connection, a statement is cancelled and its connection closed", () =>
      Effect.gen(function*() {
        const db = yield* TestDb
        const app = uniqueAppName("interrupt")
        yield* Effect.gen(function*() {
          const sql = yield* MainDb
          const before = yield* sql<{ pid: number }>`select pg_backend_pid() as pid`
          const sleeper = yield* Effect.fork(sql`select pg_sleep(30)`)
          yield* eventually(
            backends(db.url, db.name, [`${app}_main`]),
            (rows) => rows.some((row) => row.state === "active")
          )
          yield* Fiber.interrupt(sleeper)
          // One connection, no statement timeout: the next statement gets a connection in seconds rather than 30
          // only because the cancelled statement ended and its connection was closed.
          const [after] = yield* sql<{ pid: number }>`select pg_backend_pid() as pid`.pipe(
            Effect.timeoutFail({
              duration: Duration.seconds(10),
              onTimeout: () => new Error("the statement was not cancelled")
            })
          )
          assert.notStrictEqual(after?.pid, before[0]?.pid)
          assert.deepStrictEqual(
            yield* eventually(backends(db.url, db.name, [`${app}_main`]), (rows) => rows.length === 1),
            [{ application_name: `${app}_main`, state: "idle", pid: after!.pid }]
          )
        }).pipe(Effect.provide(layerPools(db.url, app, { main: { size: 1 } })))
      }))

    it.effect("interrupted while it runs through PgBouncer, a statement is not cancelled (the cancel could reach another client's): it runs on until the statement timeout, then its connection serves the next caller", () =>
      Effect.gen(function*() {
        const db = yield* TestDb
        yield* Effect.promise(() => ensureSharedPgBouncer())
        const app = uniqueAppName("interruptpgb")
        yield* Effect.gen(function*() {
          const sql = yield* MainDb
          const sleeper = yield* Effect.fork(sql`select pg_sleep(30)`)
          yield* eventually(
            backends(db.url, db.name, [`${app}_main`]),
            (rows) => rows.some((row) => row.state === "active")
          )
          yield* Fiber.interrupt(sleeper)
          const [row] = yield* sql<{ n: number }>`select 7 as n`.pipe(
            Effect.timeoutFail({
              duration: Duration.seconds(10),
              onTimeout: () => new Error("the statement outlived its timeout")
            })
          )
          assert.strictEqual(row?.n, 7)
          // The statement timeout ended it on the server: nothing of the app's is left running.
          const left = yield* eventually(
            backends(db.url, db.name, [`${app}_main`]),
            (rows) => rows.every((row) => row.state !== "active")
          )
          assert.deepStrictEqual(left.filter((row) => row.state === "active"), [])
        }).pipe(
          Effect.provide(
            layerPools(db.urlViaPgBouncer, app, { main: { size: 1, statementTimeout: Option.some("1 second") } })
          )
        )
      }))

    for (const via of ["direct", "pgbouncer"] as const) {
      it.effect(`interrupted inside a transaction (${via}), the statement ends (cancelled only directly), the transaction is rolled back, the pool serves on`, () =>
        Effect.gen(function*() {
          const db = yield* TestDb
          if (via === "pgbouncer") yield* Effect.promise(() => ensureSharedPgBouncer())
          const app = uniqueAppName("interrupttx")
          const table = `tx_interrupt_${via}`
          yield* adminQuery(db.url, `create table ${table} (n int not null)`)
          yield* Effect.gen(function*() {
            const sql = yield* MainDb
            const transaction = yield* Effect.fork(sql.withTransaction(Effect.zipRight(
              sql`insert into ${sql(table)} (n) values (1)`,
              sql`select pg_sleep(30)`
            )))
            yield* eventually(
              backends(db.url, db.name, [`${app}_main`]),
              (rows) => rows.some((row) => row.state === "active")
            )
            yield* Fiber.interrupt(transaction)
            // One connection: the library's own cancel (pg_cancel_backend through this pool) would wait for it.
            const rows = yield* sql<{ n: number }>`select count(*)::int as n from ${sql(table)}`.pipe(
              Effect.timeoutFail({
                duration: Duration.seconds(10),
                onTimeout: () => new Error("the pool was not freed")
              })
            )
            assert.deepStrictEqual(rows, [{ n: 0 }])
          }).pipe(
            Effect.provide(layerPools(via === "direct" ? db.url : db.urlViaPgBouncer, app, {
              // Directly nothing but the cancel ends the statement; through PgBouncer only the timeout does.
              main: { size: 1, statementTimeout: via === "direct" ? Option.none() : Option.some("1 second") }
            }))
          )
        }))
    }

    it.effect("interrupted while it waits for a connection, a statement takes none: the next caller gets it", () =>
      Effect.gen(function*() {
        const db = yield* TestDb
        yield* Effect.gen(function*() {
          const sql = yield* MainDb
          const holder = yield* Effect.fork(sql`select pg_sleep(0.5)`)
          const waiter = yield* Effect.fork(sql`select 1`)
          yield* Effect.sleep(Duration.millis(100))
          yield* Fiber.interrupt(waiter)
          yield* Fiber.join(holder)
          // Had the waiter kept the connection handed to it, this would fail at the acquire timeout.
          assert.deepStrictEqual(yield* sql`select 2 as n`, [{ n: 2 }])
        }).pipe(
          Effect.provide(layerPools(db.url, uniqueAppName("wait"), { main: { size: 1, acquireTimeout: "2 seconds" } }))
        )
      }))

    it.effect("a statement keeps its caller's interruptibility: uninterruptible, it runs to its end; restored, it is interrupted", () =>
      Effect.gen(function*() {
        const db = yield* TestDb
        const app = uniqueAppName("mask")
        yield* Effect.gen(function*() {
          const sql = yield* MainDb
          const active = eventually(
            backends(db.url, db.name, [`${app}_main`]),
            (rows) => rows.some((row) => row.state === "active")
          )
          const finished = yield* Ref.make(false)
          const shielded = yield* Effect.fork(
            Effect.uninterruptible(Effect.zipRight(sql`select pg_sleep(0.3)`, Ref.set(finished, true)))
          )
          yield* active
          yield* Fiber.interrupt(shielded)
          assert.isTrue(yield* Ref.get(finished))

          const outcome = yield* Ref.make(Option.none<Exit.Exit<unknown, unknown>>())
          const restored = yield* Effect.fork(
            Effect.uninterruptibleMask((restore) =>
              Effect.exit(restore(sql`select pg_sleep(30)`)).pipe(
                Effect.tap((exit) => Ref.set(outcome, Option.some(exit)))
              )
            )
          )
          yield* active
          yield* Fiber.interrupt(restored)
          assert.isTrue(Option.exists(yield* Ref.get(outcome), Exit.isInterrupted))
          // Cancelled, as any interrupted statement on a direct connection: the one connection serves on at once.
          assert.deepStrictEqual(
            yield* sql`select 2 as n`.pipe(
              Effect.timeoutFail({ duration: Duration.seconds(10), onTimeout: () => new Error("not cancelled") })
            ),
            [{ n: 2 }]
          )
        }).pipe(Effect.provide(layerPools(db.url, app, { main: { size: 1 } })))
      }))

    it.effect("a statement has a `sql.execute` span within a traced operation, and none on its own", () =>
      Effect.gen(function*() {
        const db = yield* TestDb
        const { spans, tracer } = yield* recordingTracer
        yield* Effect.gen(function*() {
          const sql = yield* MainDb
          yield* sql`select 1 as alone`
          yield* Effect.withSpan(sql`select 1 as traced`, "operation")
          yield* Effect.withSpan(sql`select 1 as untraced`, "operation").pipe(Effect.withTracerEnabled(false))
        }).pipe(Effect.provide(layerPools(db.url, uniqueAppName("span"))), Effect.withTracer(tracer))
        const statements = spans.filter((span) => span.name === "sql.execute")
        assert.strictEqual(statements.length, 1)
        const [span] = statements
        assert.isDefined(span)
        assert.strictEqual(span.kind, "client")
        // The traced operation's span: with the tracer disabled, the other is a no-op span the tracer never sees.
        assert.strictEqual(Option.getOrUndefined(span.parent), spans.find((span) => span.name === "operation"))
        assert.deepStrictEqual(Object.fromEntries(span.attributes), {
          "db.system.name": "postgresql",
          "db.namespace": db.name,
          "server.address": "127.0.0.1",
          "server.port": 5432,
          "db.operation.name": "execute",
          "db.query.text": "select 1 as traced"
        })
        assert.strictEqual(span.status._tag, "Ended")
      }))
  })
})
