import * as SqlClient from "@effect/sql/SqlClient"
import { assert, describe, it } from "@effect/vitest"
import { Array as Arr, Deferred, Duration, Effect, Option } from "effect"
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"
import { MainDb } from "../../../src/core/db/Database.js"
import * as Migrations from "../../../src/core/db/Migrations.js"
import { Readiness } from "../../../src/core/runtime/Readiness.js"
import { adminQuery, layerPools, quietLogs, uniqueAppName } from "../../support/DatabaseFixtures.js"
import { ensureSharedPgBouncer } from "../../support/PgBouncer.js"
import { createTestDatabase } from "../../support/TestDatabase.js"

/** Migrations that fail if applied twice (a second `create table`, a duplicate key), one of them slow. */
const migrationFiles: Record<string, string> = {
  "0001_counter.sql": "create table mig_counter (id int primary key);\ninsert into mig_counter values (1);",
  "0002_slow.sql": "select pg_sleep(0.3);\ninsert into mig_counter values (2);",
  "0003_more.sql": "create table mig_more (id int primary key);\ninsert into mig_counter values (3);"
}

const instances = 5

describe("Migrations", () => {
  for (const via of ["direct", "pgbouncer"] as const) {
    it.live(
      `${instances} instances starting at the same moment on an empty database (${via}) all become ready, each migration applied exactly once`,
      () =>
        Effect.gen(function*() {
          const db = yield* Effect.acquireRelease(
            Effect.promise(() => createTestDatabase("migrace")),
            (db) => Effect.promise(() => db.drop())
          )
          if (via === "pgbouncer") yield* Effect.promise(() => ensureSharedPgBouncer())
          const url = via === "direct" ? db.url : db.urlViaPgBouncer
          const directory = yield* Effect.acquireRelease(
            Effect.sync(() => Fs.mkdtempSync(Path.join(Os.tmpdir(), "migrace-"))),
            (dir) => Effect.sync(() => Fs.rmSync(dir, { recursive: true, force: true }))
          )
          for (const [name, text] of Object.entries(migrationFiles)) Fs.writeFileSync(Path.join(directory, name), text)

          const go = yield* Deferred.make<void>()
          // Each instance as the app starts: its own pools (with the app's statement timeout), then the migrations,
          // then readiness. Connections are opened first, so that the instances' first statements arrive together.
          const instance = (i: number) =>
            Effect.gen(function*() {
              const sql = yield* MainDb
              yield* sql`select 1`
              yield* Deferred.await(go)
              const applied = yield* Effect.provideService(Migrations.run({ directory }), SqlClient.SqlClient, sql)
              const report = yield* Effect.flatMap(Readiness, (readiness) => readiness.run)
              return { applied, ready: report.ready }
            }).pipe(
              Effect.provide(
                layerPools(url, uniqueAppName(`mig${i}`), { main: { statementTimeout: Option.some("30 seconds") } })
              ),
              Effect.either
            )
          const started = Effect.all(Arr.makeBy(instances, instance), { concurrency: "unbounded" })
          const [results] = yield* Effect.all([
            started,
            Effect.delay(Deferred.succeed(go, void 0), Duration.millis(300))
          ], {
            concurrency: "unbounded"
          })

          // Every instance started and is ready.
          assert.deepStrictEqual(results.filter((result) => result._tag === "Left"), [])
          const outcomes = results.flatMap((result) => (result._tag === "Right" ? [result.right] : []))
          assert.deepStrictEqual(outcomes.map((outcome) => outcome.ready), Arr.makeBy(instances, () => true))
          // One of them applied the migrations, in order; the others found them applied.
          const appliers = outcomes.filter((outcome) => outcome.applied.length > 0)
          assert.strictEqual(appliers.length, 1)
          assert.deepStrictEqual(appliers[0]?.applied, [[1, "counter"], [2, "slow"], [3, "more"]])
          // Each migration ran exactly once and is recorded once.
          assert.deepStrictEqual(
            yield* adminQuery<{ id: number }>(db.url, "select id from mig_counter order by id"),
            [{ id: 1 }, { id: 2 }, { id: 3 }]
          )
          assert.deepStrictEqual(
            yield* adminQuery<{ migration_id: number }>(
              db.url,
              "select migration_id from effect_sql_migrations order by migration_id"
            ),
            [{ migration_id: 1 }, { migration_id: 2 }, { migration_id: 3 }]
          )
        }).pipe(Effect.scoped, Effect.provide(quietLogs)),
      { timeout: 60_000 }
    )
  }
})
