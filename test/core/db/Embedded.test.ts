import * as HttpLayerRouter from "@effect/platform/HttpLayerRouter"
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import { assert, describe, it } from "@effect/vitest"
import { Effect, Exit, Layer, LogLevel, Scope } from "effect"
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"
import * as AppConfig from "../../../src/core/app/AppConfig.js"
import * as Database from "../../../src/core/db/Database.js"
import * as DatabaseEmbedded from "../../../src/core/db/Embedded.js"
import * as Migrations from "../../../src/core/db/Migrations.js"
import * as Server from "../../../src/core/http/Server.js"
import * as Lifecycle from "../../../src/core/runtime/Lifecycle.js"
import * as Logging from "../../../src/core/runtime/Logging.js"
import * as Readiness from "../../../src/core/runtime/Readiness.js"

/**
 * The core as the app composes it (database, migrations, readiness, lifecycle) behind the core's HTTP server,
 * answering `/ready` from the readiness checks. The reference API's own routes are left out: they bring concerns
 * of their own (auth, ...) that this test is not about.
 */
const app = (settings: AppConfig.Settings) =>
  Server.serve(
    HttpLayerRouter.add(
      "GET",
      "/ready",
      Effect.flatMap(Readiness.Readiness, (readiness) =>
        Effect.map(readiness.run, (report) =>
          HttpServerResponse.unsafeJson(report, { status: report.ready ? 200 : 503 })))
    ),
    { corsOrigins: [], corsAllowCredentials: false, maxBodyBytes: 1024 }
  ).pipe(
    Layer.provideMerge(Server.layerListen({ host: "127.0.0.1", port: 0 })),
    Layer.provideMerge(Migrations.layer().pipe(Layer.provideMerge(Database.layerFromSettings(settings)))),
    Layer.provideMerge(Readiness.layer()),
    Layer.provideMerge(Lifecycle.layer)
  )

const getReady = Effect.gen(function*() {
  const address = (yield* Server.NodeServer).address()
  const port = typeof address === "object" && address !== null ? address.port : 0
  return yield* Effect.promise(async () => {
    const response = await fetch(`http://127.0.0.1:${port}/ready`)
    return {
      status: response.status,
      body: await response.json() as { checks: Array<{ name: string; status: string }> }
    }
  })
})

describe("embedded database (no DATABASE_URL)", () => {
  it.live(
    "the server starts on PGlite, migrates, answers a database-backed readiness check, and keeps its data",
    () =>
      Effect.gen(function*() {
        const root = yield* Effect.acquireRelease(
          Effect.sync(() => Fs.mkdtempSync(Path.join(Os.tmpdir(), "embedded-db-"))),
          (dir) => Effect.sync(() => Fs.rmSync(dir, { recursive: true, force: true }))
        )
        const dataDir = Path.join(root, "pglite")
        // Exactly the environment of a fresh checkout: no DATABASE_URL anywhere.
        const settings = yield* AppConfig.load({ environment: { APP_ENV: "test", EMBEDDED_DB_DIR: dataDir } })
        assert.isTrue(settings.database.url._tag === "None")
        const { lines, sink } = Logging.memorySink()
        const logger = Logging.layer({ format: "json", level: LogLevel.Info, sink })

        const firstRun = Effect.gen(function*() {
          const ready = yield* getReady
          assert.strictEqual(ready.status, 200)
          const checks = ready.body.checks.filter((check) => check.name.startsWith("database."))
          assert.deepStrictEqual(checks.map((check) => [check.name, check.status]), [
            ["database.main", "ok"],
            ["database.bg", "ok"]
          ])
          const sql = yield* Database.MainDb
          yield* sql`insert into users (supabase_user_id, email) values (${"6b4f8c1e-6a43-4a8e-9d5e-1f2a3b4c5d6e"}, ${"kept@example.com"})`
          // Background work shares the one connection, and sees the same data.
          const bg = yield* Database.BgDb
          assert.deepStrictEqual(yield* bg<{ n: number }>`select count(*)::int as n from users`, [{ n: 1 }])
          // A second process on the same folder would corrupt it: refused while this one runs.
          const second = yield* Effect.exit(Effect.scoped(DatabaseEmbedded.start(dataDir)))
          assert.isTrue(Exit.isFailure(second))
          assert.include(JSON.stringify(second), "in use by process")
        })
        yield* firstRun.pipe(Effect.provide(app(settings)), Effect.provide(logger))

        const messages = lines.map((line) => (JSON.parse(line) as { message: string }).message)
        assert.isTrue(messages.some((m) => m.startsWith(`Database: embedded PGlite in ${dataDir}`)))
        // Every migration of the repository's folder, in order, whatever number of them there is by now.
        const all = Fs.readdirSync(Migrations.defaultDirectory)
          .filter((file) => /^\d+_.+\.sql$/.test(file))
          .sort()
          .map((file) => file.replace(/\.sql$/, ""))
        assert.isTrue(all.includes("0001_users"))
        assert.include(messages, `Migrations: applied ${all.join(", ")}`)
        assert.isFalse(Fs.existsSync(`${dataDir}.lock`), "the lock is released at shutdown")

        // Started again on the same folder: nothing to migrate, and the row is still there.
        lines.length = 0
        const emails = yield* Effect.gen(function*() {
          assert.strictEqual((yield* getReady).status, 200)
          const sql = yield* Database.MainDb
          return yield* sql<{ email: string }>`select email from users`
        }).pipe(Effect.provide(app(settings)), Effect.provide(logger))
        assert.deepStrictEqual(emails, [{ email: "kept@example.com" }])
        assert.include(
          lines.map((line) => (JSON.parse(line) as { message: string }).message),
          "Migrations: schema up to date"
        )
      }).pipe(Effect.scoped),
    { timeout: 120_000 }
  )

  it.live("a lock left by a process that is gone is taken over", () =>
    Effect.gen(function*() {
      const root = yield* Effect.acquireRelease(
        Effect.sync(() => Fs.mkdtempSync(Path.join(Os.tmpdir(), "embedded-lock-"))),
        (dir) => Effect.sync(() => Fs.rmSync(dir, { recursive: true, force: true }))
      )
      const dataDir = Path.join(root, "pglite")
      // A pid far above any pid_max: no such process.
      Fs.writeFileSync(`${dataDir}.lock`, "999999999")
      const scope = yield* Scope.make()
      const embedded = yield* DatabaseEmbedded.start(dataDir).pipe(Scope.extend(scope))
      assert.strictEqual(Fs.readFileSync(`${dataDir}.lock`, "utf8"), String(process.pid))
      assert.strictEqual(embedded.dataDir, dataDir)
      yield* Scope.close(scope, Exit.void)
      assert.isFalse(Fs.existsSync(`${dataDir}.lock`))
    }).pipe(Effect.scoped), { timeout: 60_000 })
})
