/**
 * The real server as a process of its own (`src/main.ts`, as `npm start` runs it) on the run's database, for tests
 * of several instances and of signals (SIGTERM, SIGKILL): its JSON log lines are kept as they arrive.
 */
import { type ChildProcess, spawn } from "node:child_process"
import type { SupabaseStandInServer } from "../../src/dev/SupabaseStandIn.js"
import { provided } from "./Provided.js"

export interface ServerProcess {
  readonly child: ChildProcess
  readonly url: string
  readonly port: number
  readonly logs: Array<Record<string, unknown>>
  /** The exit code (null when killed by a signal). */
  readonly exited: Promise<number | null>
  /** SIGKILL if still running; resolves once it has exited. */
  readonly kill: () => Promise<void>
}

export const start = (issuer: SupabaseStandInServer, env: Record<string, string> = {}): Promise<ServerProcess> =>
  new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ["--import", "tsx", "src/main.ts"], {
      env: {
        PATH: process.env.PATH,
        APP_ENV: "test",
        PORT: "0",
        LOG_FORMAT: "json",
        LOG_LEVEL: "info",
        DATABASE_URL: provided("databaseUrl"),
        SUPABASE_URL: issuer.url,
        SUPABASE_ANON_KEY: issuer.anonKey,
        SUPABASE_SERVICE_ROLE_KEY: issuer.serviceRoleKey,
        ...env
      },
      stdio: ["ignore", "pipe", "inherit"]
    })
    const logs: Array<Record<string, unknown>> = []
    const exited = new Promise<number | null>((done) => child.once("exit", (code) => done(code)))
    const kill = async () => {
      if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL")
      await exited
    }
    let buffer = ""
    child.stdout!.on("data", (chunk: Buffer) => {
      buffer += chunk.toString()
      let newline: number
      while ((newline = buffer.indexOf("\n")) !== -1) {
        const line = buffer.slice(0, newline)
        buffer = buffer.slice(newline + 1)
        const record = JSON.parse(line) as Record<string, unknown>
        logs.push(record)
        const listening = /^Listening on (http:\/\/[^:]+:(\d+))$/.exec(String(record.message))
        if (listening) resolve({ child, url: listening[1]!, port: Number(listening[2]), logs, exited, kill })
      }
    })
    void exited.then((code) => reject(new Error(`server exited with ${code} before listening`)))
  })

/** Polls (every 25 ms, up to `attempts` times) until `condition` holds. */
export const until = async (
  condition: () => boolean | Promise<boolean>,
  what: string,
  attempts = 800
): Promise<void> => {
  for (let attempt = 0; attempt < attempts; attempt++) {
    if (await condition()) return
    await new Promise((resolve) => setTimeout(resolve, 25))
  }
  throw new Error(`gave up waiting for ${what}`)
}
