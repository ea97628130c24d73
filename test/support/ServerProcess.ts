/**
 * The real server as its own process (`node --import tsx src/main.ts`, as `npm start` runs it), on a free port,
 * its JSON log lines collected, for tests across instances and of shutdown.
 */
import { type ChildProcess, spawn } from "node:child_process"
import type { SupabaseStandInServer } from "../../src/dev/SupabaseStandIn.js"
import { provided } from "./Provided.js"

export interface ServerProcess {
  readonly child: ChildProcess
  readonly url: string
  readonly logs: Array<Record<string, unknown>>
  readonly exited: Promise<number | null>
  /** SIGKILL if still running. */
  readonly kill: () => void
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
    const kill = () => {
      if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL")
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
        const listening = /^Listening on (http:\/\/[^:]+:\d+)$/.exec(String(record.message))
        if (listening) resolve({ child, url: listening[1]!, logs, exited, kill })
      }
    })
    void exited.then((code) => reject(new Error(`server exited with ${code} before listening`)))
  })
