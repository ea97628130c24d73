/** Shared pieces of the database tests: a throw-away database as a layer, pool options, and an admin connection. */
import { Context, Duration, Effect, Layer, LogLevel, Option, Redacted } from "effect"
import pg from "pg"
import * as Database from "../../src/core/db/Database.js"
import * as Lifecycle from "../../src/core/runtime/Lifecycle.js"
import * as Logging from "../../src/core/runtime/Logging.js"
import * as Readiness from "../../src/core/runtime/Readiness.js"
import { createTestDatabase, type TestDatabase } from "./TestDatabase.js"

export class TestDb extends Context.Tag("test/TestDb")<TestDb, TestDatabase>() {}

/** A fresh database for the layer's lifetime, dropped afterwards. */
export const layerTestDb = (tag: string): Layer.Layer<TestDb> =>
  Layer.scoped(
    TestDb,
    Effect.acquireRelease(
      Effect.promise(() => createTestDatabase(tag)),
      (db) => Effect.promise(() => db.drop())
    )
  )

let counter = 0
/** An application name no other test uses, so pg_stat_activity can be filtered by it. */
export const uniqueAppName = (prefix: string): string =>
  `${prefix}${process.pid}x${(counter++).toString(36)}${Math.random().toString(36).slice(2, 6)}`

const poolOptions = (
  url: string,
  applicationName: string,
  overrides: Partial<Database.PoolOptions> = {}
): Database.PoolOptions => ({
  url: Redacted.make(url),
  applicationName,
  size: 5,
  acquireTimeout: Duration.seconds(10),
  statementTimeout: Option.none(),
  idleTimeout: Duration.seconds(30),
  serverless: false,
  ...overrides
})

/** Both pools (`<app>_main`, `<app>_bg`) on `url`, with readiness. */
export const layerPools = (
  url: string,
  app: string,
  overrides: { readonly main?: Partial<Database.PoolOptions>; readonly bg?: Partial<Database.PoolOptions> } = {}
) =>
  Database.layer({
    main: poolOptions(url, `${app}_main`, overrides.main),
    bg: poolOptions(url, `${app}_bg`, overrides.bg)
  }).pipe(Layer.provideMerge(Readiness.layer()), Layer.provide(Lifecycle.layer))

/** One query on a connection of its own, outside the pools under test. */
export const adminQuery = <Row extends Record<string, unknown>>(
  url: string,
  text: string,
  values: ReadonlyArray<unknown> = []
): Effect.Effect<ReadonlyArray<Row>> =>
  Effect.promise(async () => {
    const client = new pg.Client({ connectionString: url, application_name: "test_admin" })
    client.on("error", () => {})
    await client.connect()
    try {
      return (await client.query<Row>(text, [...values])).rows
    } finally {
      await client.end().catch(() => {})
    }
  })

/** Backends of these application names on the database, by state. */
export const backends = (url: string, database: string, applicationNames: ReadonlyArray<string>) =>
  adminQuery<{ application_name: string; state: string | null; pid: number }>(
    url,
    "select application_name, state, pid from pg_stat_activity where datname = $1 and application_name = any($2)",
    [database, applicationNames]
  )

/** Polls until `check` holds (backends take a moment to go after their client closes); the last value either way. */
export const eventually = <A>(
  get: Effect.Effect<A>,
  check: (a: A) => boolean,
  timeout: Duration.DurationInput = Duration.seconds(10)
): Effect.Effect<A> =>
  Effect.gen(function*() {
    const deadline = Date.now() + Duration.toMillis(timeout)
    for (;;) {
      const value = yield* get
      if (check(value) || Date.now() > deadline) return value
      yield* Effect.sleep(Duration.millis(100))
    }
  })

/** For tests that provoke warnings on purpose and do not read them: keeps the test output readable. */
export const quietLogs = Logging.layer({ format: "json", level: LogLevel.None, sink: () => {} })
