/**
 * The real server as a separate process, started the way `npm start` starts it, for tests that stop and restart
 * it (same port, same database) or run several instances side by side. Every wait is bounded.
 */
import { type ChildProcess, spawn } from "node:child_process"
import * as Net from "node:net"

export interface ServerProcess {
  readonly child: ChildProcess
  readonly url: string
  readonly port: number
  /** Every JSON log line so far. */
  readonly logs: Array<Record<string, unknown>>
  readonly exited: Promise<number | null>
  /** SIGTERM, then SIGKILL if it has not exited within `graceMs`; resolves with the exit code. */
  readonly stop: (graceMs?: number) => Promise<number | null>
}

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

/** Starts `src/main.ts` with exactly `env` (plus PATH and JSON logs) and resolves once it listens. */
export const startServerProcess = (
  env: Readonly<Record<string, string>>,
  options: { readonly startTimeoutMs?: number } = {}
): Promise<ServerProcess> =>
  new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ["--import", "tsx", "src/main.ts"], {
      env: { PATH: process.env.PATH, LOG_FORMAT: "json", LOG_LEVEL: "info", ...env },
      stdio: ["ignore", "pipe", "pipe"]
    })
    const logs: Array<Record<string, unknown>> = []
    let stderr = ""
    const exited = new Promise<number | null>((done) => child.once("exit", (code) => done(code)))
    const stop = async (graceMs = 10_000) => {
      if (child.exitCode !== null || child.signalCode !== null) return child.exitCode
      child.kill("SIGTERM")
      const timer = setTimeout(() => child.kill("SIGKILL"), graceMs)
      const code = await exited
      clearTimeout(timer)
      return code
    }
    const timer = setTimeout(() => {
      child.kill("SIGKILL")
      reject(new Error(`the server did not listen within ${options.startTimeoutMs ?? 30_000} ms\n${stderr}`))
    }, options.startTimeoutMs ?? 30_000)
    child.stderr!.on("data", (chunk: Buffer) => {
      stderr += chunk.toString()
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
          resolve({ child, url: listening[1]!, port: Number(listening[2]), logs, exited, stop })
        }
      }
    })
    void exited.then((code) => {
      clearTimeout(timer)
      reject(new Error(`the server exited with ${code} before listening\n${stderr}`))
    })
  })
