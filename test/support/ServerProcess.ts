/**
 * The real server as a process of its own (`src/main.ts`, as `npm start` runs it), for tests of several instances,
 * of signals (SIGTERM, SIGKILL) and of restarts (same port, same database): its JSON log lines are kept as they
 * arrive, and every wait is bounded.
 */
import { type ChildProcess, spawn } from "node:child_process"
import * as Net from "node:net"
import type { SupabaseStandInServer } from "../../src/dev/SupabaseStandIn.js"
import { provided } from "./Provided.js"

export interface ServerProcess {
  readonly child: ChildProcess
  readonly url: string
  readonly port: number
  readonly logs: Array<Record<string, unknown>>
  /** What it has written to stderr so far. */
  readonly stderr: () => string
  /** The exit code (null when killed by a signal). */
  readonly exited: Promise<number | null>
  /** SIGKILL if still running; resolves once it has exited. */
  readonly kill: () => Promise<void>
  /** SIGTERM, then SIGKILL if it has not exited within `graceMs`; resolves with the exit code. */
  readonly stop: (graceMs?: number) => Promise<number | null>
}

/**
 * Starts `src/main.ts` (or the `node` arguments `options.entry`) with exactly `env` (plus PATH and JSON logs at info)
 * and resolves once it listens; fails with its stderr if it exits first or does not listen within `startTimeoutMs`.
 */
export const startWithEnv = (
  env: Readonly<Record<string, string>>,
  options: { readonly startTimeoutMs?: number; readonly entry?: ReadonlyArray<string> } = {}
): Promise<ServerProcess> =>
  new Promise((resolve, reject) => {
    const startTimeoutMs = options.startTimeoutMs ?? 60_000
    const child = spawn(process.execPath, options.entry ?? ["--import", "tsx", "src/main.ts"], {
      env: { PATH: process.env.PATH, LOG_FORMAT: "json", LOG_LEVEL: "info", ...env },
      stdio: ["ignore", "pipe", "pipe"]
    })
    const logs: Array<Record<string, unknown>> = []
    let stderr = ""
    const exited = new Promise<number | null>((done) => child.once("exit", (code) => done(code)))
    const running = () => child.exitCode === null && child.signalCode === null
    const kill = async () => {
      if (running()) child.kill("SIGKILL")
      await exited
    }
    const stop = async (graceMs = 10_000) => {
      if (running()) child.kill("SIGTERM")
      const timer = setTimeout(() => child.kill("SIGKILL"), graceMs)
      const code = await exited
      clearTimeout(timer)
      return code
    }
    const timer = setTimeout(() => {
      child.kill("SIGKILL")
      reject(new Error(`the server did not listen within ${startTimeoutMs} ms\n${stderr}`))
    }, startTimeoutMs)
    child.stderr!.on("data", (chunk: Buffer) => {
      stderr += chunk.toString()
      process.stderr.write(chunk)
    })
    let buffer = ""
    child.stdout!.on("data", (chunk: Buffer) => {
      buffer += chunk.toString()
      let newline: number
      while ((newline = buffer.indexOf("\n")) !== -1) {
        const line = buffer.slice(0, newline)
        buffer = buffer.slice(newline + 1)
        let record: Record<string, unknown>
        try {
          record = JSON.parse(line) as Record<string, unknown>
        } catch {
          record = { message: line }
        }
        logs.push(record)
        const listening = /^Listening on (http:\/\/[^:]+:(\d+))$/.exec(String(record.message))
        if (listening) {
          clearTimeout(timer)
          resolve({
            child,
            url: listening[1]!,
            port: Number(listening[2]),
            logs,
            stderr: () => stderr,
            exited,
            kill,
            stop
          })
        }
      }
    })
    void exited.then((code) => {
      clearTimeout(timer)
      reject(new Error(`server exited with ${code} before listening\n${stderr}`))
    })
  })

/** A test-mode server on the run's database, trusting `issuer`; `env` overrides. */
export const start = (issuer: SupabaseStandInServer, env: Record<string, string> = {}): Promise<ServerProcess> =>
  startWithEnv({
    APP_ENV: "test",
    PORT: "0",
    DATABASE_URL: provided("databaseUrl"),
    SUPABASE_URL: issuer.url,
    SUPABASE_ANON_KEY: issuer.anonKey,
    SUPABASE_SERVICE_ROLE_KEY: issuer.serviceRoleKey,
    ...env
  })

/** A port that was free a moment ago (for a server that must come back on the same one). */
export const freePort = (): Promise<number> =>
  new Promise((resolve, reject) => {
    const probe = Net.createServer()
    probe.once("error", reject)
    probe.listen(0, "127.0.0.1", () => {
      const port = (probe.address() as Net.AddressInfo).port
      probe.close(() => resolve(port))
    })
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
