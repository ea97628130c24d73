import { assert, describe, it } from "@effect/vitest"
import { Effect, Exit, Inspectable, LogLevel, Option, Redacted } from "effect"
import { execFile } from "node:child_process"
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"
import * as AppConfig from "../../../src/core/app/AppConfig.js"
import * as Logging from "../../../src/core/runtime/Logging.js"

const tempDir = (files: Record<string, string>) => {
  const dir = Fs.mkdtempSync(Path.join(Os.tmpdir(), "appconfig-"))
  for (const [name, content] of Object.entries(files)) Fs.writeFileSync(Path.join(dir, name), content)
  return dir
}

const load = (files: Record<string, string>, environment: Record<string, string>) =>
  AppConfig.load({ directory: tempDir(files), environment })

const problems = (files: Record<string, string>, environment: Record<string, string>) =>
  Effect.flip(load(files, environment)).pipe(Effect.map((error) => error.problems))

const devSecret = "SECRET_KEY=dev-secret-key-change-me-0123456789abcdef\n"

describe("AppConfig", () => {
  it.effect("APP_ENV picks the file and the process environment overrides it", () =>
    Effect.gen(function*() {
      const files = {
        ".env.dev": `${devSecret}PORT=7000\nAPI_PREFIX=/dev/api\nLOG_FORMAT=pretty\n`,
        ".env.test": "SECRET_KEY=test-secret-key-not-secret-0123456789abcdef\nPORT=7100\nAPI_PREFIX=/test/api\n"
      }
      const dev = yield* load(files, {})
      assert.strictEqual(dev.core.env, "dev")
      assert.strictEqual(dev.server.port, 7000)
      assert.strictEqual(dev.core.apiPrefix, "/dev/api")
      assert.strictEqual(dev.logging.format, "pretty")

      const test = yield* load(files, { APP_ENV: "test" })
      assert.strictEqual(test.server.port, 7100)
      assert.strictEqual(test.core.apiPrefix, "/test/api")

      const overridden = yield* load(files, { APP_ENV: "test", PORT: "7200" })
      assert.strictEqual(overridden.server.port, 7200, "environment wins over the file")
      assert.strictEqual(overridden.core.apiPrefix, "/test/api", "the file still fills what the environment leaves")

      const unset = yield* load(files, { API_PREFIX: "" })
      assert.strictEqual(unset.core.apiPrefix, "/api/v1", "an empty variable counts as unset")
    }))

  it.effect("fromEnvironment reads no file: the environment alone, whatever the working folder holds", () =>
    Effect.gen(function*() {
      // This repository's .env.test sets SECRET_KEY and PORT=0; neither is read.
      const missing = yield* Effect.flip(AppConfig.fromEnvironment({ APP_ENV: "test" }))
      assert.deepStrictEqual(missing.problems.map((p) => p.split(" ")[0]), ["SECRET_KEY"])
      const settings = yield* AppConfig.fromEnvironment({ APP_ENV: "test", SECRET_KEY: "k".repeat(40) })
      assert.strictEqual(settings.core.env, "test")
      assert.strictEqual(settings.server.port, 8000)
    }))

  it.effect("an invalid environment value is an error, never hidden by the file's valid one", () =>
    Effect.gen(function*() {
      const found = yield* problems({ ".env.dev": `${devSecret}PORT=7000\n` }, { PORT: "not-a-port" })
      assert.deepStrictEqual(found.map((p) => p.split(" ")[0]), ["PORT"])
    }))

  it.effect("CORS_ORIGINS takes a list; CORS_ORIGINS_STR overrides it", () =>
    Effect.gen(function*() {
      const files = { ".env.dev": `${devSecret}CORS_ORIGINS=["https://a.example","https://b.example/"]\n` }
      const fromList = yield* load(files, {})
      assert.deepStrictEqual(fromList.cors.origins, ["https://a.example", "https://b.example"])
      const fromCsv = yield* load(files, { CORS_ORIGINS: "https://c.example, http://localhost:3000" })
      assert.deepStrictEqual(fromCsv.cors.origins, ["https://c.example", "http://localhost:3000"])
      const overridden = yield* load(files, { CORS_ORIGINS_STR: "https://d.example,https://e.example" })
      assert.deepStrictEqual(overridden.cors.origins, ["https://d.example", "https://e.example"])
      const bad = yield* problems(files, { CORS_ORIGINS_STR: "not an origin" })
      assert.match(bad[0] ?? "", /^CORS_ORIGINS_STR is invalid/)
    }))

  it.effect("secrets are Redacted: not in logs, JSON or error messages", () =>
    Effect.gen(function*() {
      const secret = "s3cr3t-value-that-must-not-leak-0123456789"
      const settings = yield* load({ ".env.dev": devSecret }, {
        SECRET_KEY: secret,
        DATABASE_URL: `postgres://app:${secret}@db.internal:5432/app`,
        SUPABASE_SERVICE_ROLE_KEY: secret,
        OPENAI_API_KEY: secret
      })
      assert.strictEqual(Redacted.value(settings.core.secretKey), secret)
      assert.isTrue(Option.isSome(settings.database.url))
      assert.notInclude(JSON.stringify(settings), secret)
      assert.notInclude(String(settings.core.secretKey), secret)
      assert.notInclude(Inspectable.format(settings), secret)

      for (const format of ["json", "pretty"] as const) {
        const memory = Logging.memorySink()
        yield* Effect.logInfo("loaded settings", settings, settings.core.secretKey).pipe(
          Effect.annotateLogs("key", settings.core.secretKey),
          Effect.provide(Logging.layer({ format, sink: memory.sink, level: LogLevel.Info }))
        )
        assert.strictEqual(memory.lines.length, 1)
        assert.include(memory.lines[0], "loaded settings")
        assert.notInclude(memory.lines[0], secret)
      }
    }))

  it.effect("every bad variable is reported at once, by name and why, without echoing secrets", () =>
    Effect.gen(function*() {
      const found = yield* problems({}, {
        PORT: "eighty",
        LOG_LEVEL: "loud",
        DB_POOL_SIZE: "0",
        SUPABASE_URL: "ftp://nope",
        CORS_ORIGINS: "*, nope"
      })
      const names = found.map((problem) => problem.split(" ")[0]).sort()
      assert.deepStrictEqual(names, ["CORS_ORIGINS", "DB_POOL_SIZE", "LOG_LEVEL", "PORT", "SECRET_KEY", "SUPABASE_URL"])
      assert.isTrue(found.every((problem) => / is (invalid|required)/.test(problem)))
    }))

  it.effect("production requires its settings and refuses development defaults", () =>
    Effect.gen(function*() {
      const found = yield* problems({ ".env.dev": devSecret }, {
        APP_ENV: "prod",
        SECRET_KEY: "dev-secret-key-change-me-0123456789abcdef"
      })
      const names = found.map((problem) => problem.split(" ")[0]).sort()
      assert.includeMembers(names, [
        "DATABASE_URL",
        "PUBLIC_API_URL",
        "PUBLIC_APP_URL",
        "SECRET_KEY",
        "SUPABASE_ANON_KEY",
        "SUPABASE_SERVICE_ROLE_KEY",
        "SUPABASE_URL"
      ])
      assert.notInclude(found.join("\n"), "dev-secret-key-change-me")

      const prod = yield* load(
        { ".env.prod": "PUBLIC_API_URL=https://api.example\nPUBLIC_APP_URL=https://example\n" },
        {
          APP_ENV: "prod",
          SECRET_KEY: "a-real-production-secret-of-plenty-of-characters",
          DATABASE_URL: "postgres://app@db.internal/app",
          SUPABASE_URL: "https://project.supabase.co",
          SUPABASE_ANON_KEY: "anon",
          SUPABASE_SERVICE_ROLE_KEY: "service"
        }
      )
      assert.strictEqual(prod.core.env, "prod")
      assert.strictEqual(prod.publicUrls.api, "https://api.example")
    }))

  it.effect("an unknown APP_ENV is refused", () =>
    Effect.gen(function*() {
      const exit = yield* Effect.exit(load({}, { APP_ENV: "staging" }))
      assert.isTrue(Exit.isFailure(exit))
    }))

  it.live(
    "the server refuses to start on bad settings: exit code 1 and one message naming each variable",
    () =>
      Effect.async<{ code: number | null; stderr: string }>((resume) => {
        execFile(
          process.execPath,
          ["--import", "tsx", "src/main.ts"],
          {
            env: { PATH: process.env.PATH, APP_ENV: "test", PORT: "-1", LOG_LEVEL: "chatty", SECRET_KEY: "" },
            timeout: 30_000
          },
          (error, _stdout, stderr) => resume(Effect.succeed({ code: error ? (error.code as number) : 0, stderr }))
        )
      }).pipe(Effect.map(({ code, stderr }) => {
        assert.strictEqual(code, 1)
        assert.match(stderr, /Invalid configuration/)
        for (const name of ["PORT", "LOG_LEVEL", "SECRET_KEY"]) assert.match(stderr, new RegExp(`- ${name} is`))
      })),
    40_000
  )
})
