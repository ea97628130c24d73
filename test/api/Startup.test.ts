/**
 * `npm start` against a database that refuses the connection for good: one clear line, exit code 1, no retries.
 * The real entry point, in a process of its own.
 */
import { spawn } from "node:child_process"
import { fileURLToPath } from "node:url"
import { describe, expect, it } from "vitest"
import { ensureSharedPgBouncer, withDatabase } from "../support/PgBouncer.js"
import { provided } from "../support/Provided.js"

const root = fileURLToPath(new URL("../..", import.meta.url))

interface Run {
  readonly code: number | null
  readonly lines: ReadonlyArray<Record<string, unknown>>
}

/** Runs `src/main.ts` with the test settings and `env` until it exits (or a minute has passed). */
const start = (env: Record<string, string>): Promise<Run> =>
  new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ["--import", "tsx", "src/main.ts"], {
      cwd: root,
      env: {
        PATH: process.env["PATH"] ?? "",
        APP_ENV: "test",
        LOG_FORMAT: "json",
        LOG_LEVEL: "info",
        PORT: "0",
        // Nothing listens there: the auth provider plays no part in this.
        SUPABASE_URL: "http://127.0.0.1:9",
        ...env
      },
      stdio: ["ignore", "pipe", "pipe"]
    })
    let output = ""
    child.stdout.on("data", (chunk: Buffer) => (output += chunk.toString("utf8")))
    child.stderr.on("data", (chunk: Buffer) => (output += chunk.toString("utf8")))
    const timer = setTimeout(() => {
      child.kill("SIGKILL")
      reject(new Error(`still running after a minute:\n${output}`))
    }, 60_000)
    child.on("exit", (code) => {
      clearTimeout(timer)
      const lines = output.split("\n").filter((line) => line.trim() !== "").map((line) => {
        try {
          return JSON.parse(line) as Record<string, unknown>
        } catch {
          return { unparsed: line }
        }
      })
      resolve({ code, lines })
    })
  })

const errors = (run: Run) => run.lines.filter((line) => line["level"] === "ERROR" || "unparsed" in line)

describe("startup against a database that refuses the connection for good", () => {
  it(
    "a startup parameter PgBouncer refuses, a missing database, an unknown role: one error line each, exit code 1, no retry",
    async () => {
      const viaPgBouncer = await ensureSharedPgBouncer()
      const direct = provided("databaseUrl")
      const withOptions = new URL(withDatabase(viaPgBouncer, new URL(direct).pathname.slice(1)))
      withOptions.searchParams.set("options", "-c search_path=public")
      const unknownRole = new URL(direct)
      unknownRole.username = "no_such_role"
      const cases = [
        { url: withOptions.toString(), says: "unsupported startup parameter" },
        { url: withDatabase(direct, "no_such_database_for_startup"), says: "does not exist" },
        { url: unknownRole.toString(), says: "no_such_role" }
      ]
      const runs = await Promise.all(cases.map(({ url }) => start({ DATABASE_URL: url })))
      runs.forEach((run, i) => {
        const expected = cases[i]!
        expect(run.code, JSON.stringify(run.lines)).toBe(1)
        const reported = errors(run)
        expect(reported, JSON.stringify(run.lines)).toHaveLength(1)
        const message = String(reported[0]?.["message"])
        expect(message).toContain("Database refused the connection")
        expect(message).toContain(expected.says)
        expect(message).toContain("The app cannot start")
        // Told once, at once: never "retrying", and the server never listened.
        expect(run.lines.filter((line) => /not reachable yet|Listening/i.test(String(line["message"])))).toEqual([])
      })
    },
    90_000
  )
})
