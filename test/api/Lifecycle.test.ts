/**
 * The real server process, started as `npm start` starts it, shut down with SIGTERM while a request is in flight
 * (waiting on the auth provider, which the test holds).
 */
import { afterEach, assert, beforeEach, describe, it } from "@effect/vitest"
import { type ChildProcess, spawn } from "node:child_process"
import * as Net from "node:net"
import { startSupabaseStandIn, type SupabaseStandInServer } from "../../src/dev/SupabaseStandIn.js"
import { provided } from "../support/Provided.js"

interface Server {
  readonly child: ChildProcess
  readonly url: string
  readonly port: number
  readonly logs: Array<Record<string, unknown>>
  readonly exited: Promise<number | null>
}

const startServer = (issuer: SupabaseStandInServer, env: Record<string, string> = {}): Promise<Server> =>
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
        if (listening) resolve({ child, url: listening[1]!, port: Number(listening[2]), logs, exited })
      }
    })
    void exited.then((code) => reject(new Error(`server exited with ${code} before listening`)))
  })

const until = async (condition: () => boolean | Promise<boolean>, what: string) => {
  for (let attempt = 0; attempt < 400; attempt++) {
    if (await condition()) return
    await new Promise((resolve) => setTimeout(resolve, 25))
  }
  throw new Error(`gave up waiting for ${what}`)
}

const refusesConnections = (port: number) =>
  new Promise<boolean>((resolve) => {
    const socket = Net.connect(port, "127.0.0.1")
    socket.once("connect", () => {
      socket.destroy()
      resolve(false)
    })
    socket.once("error", (error: NodeJS.ErrnoException) => resolve(error.code === "ECONNREFUSED"))
  })

describe("lifecycle: SIGTERM", () => {
  let issuer: SupabaseStandInServer
  let server: Server | undefined
  beforeEach(async () => {
    issuer = await startSupabaseStandIn()
  })
  afterEach(async () => {
    if (server !== undefined && server.child.exitCode === null) server.child.kill("SIGKILL")
    server = undefined
    await issuer.stop()
  })

  it("stops accepting, lets the in-flight request finish, releases every layer and exits 0", async () => {
    server = await startServer(issuer)
    const user = issuer.createUser({ email: "in-flight@example.com", password: "password-123" })
    const token = await issuer.signToken({ user: user.id })

    // The server has never fetched the key set: its first authenticated request waits on the provider.
    await issuer.setFailure({ _tag: "Hang" }, "jwks")
    const inFlight = fetch(`${server.url}/api/v1/me`, { headers: { authorization: `Bearer ${token}` } })
    await until(() => issuer.counts.jwks >= 1, "the server to ask for the key set")

    server.child.kill("SIGTERM")
    const port = server.port
    await until(() => refusesConnections(port), "the listener to close")
    await issuer.clearFailure("jwks")

    const response = await inFlight
    assert.strictEqual(response.status, 200)
    assert.strictEqual(((await response.json()) as { supabase_user_id: string }).supabase_user_id, user.id)
    assert.strictEqual(await server.exited, 0)

    const messages = server.logs.map((line) => String(line.message))
    const drainedAt = messages.indexOf("HTTP server drained")
    assert.isAbove(drainedAt, messages.findIndex((m) => m.startsWith("Shutting down")))
    const access = server.logs.find((line) => line.message === "request" && line.path === "/api/v1/me")
    assert.strictEqual(access?.status, 200)
  })

  it("a request still running when the grace period ends is cut, and the process still exits 0", async () => {
    server = await startServer(issuer, { SHUTDOWN_GRACE_SECONDS: "0.5" })
    const user = issuer.createUser({ email: "too-slow@example.com", password: "password-123" })
    const token = await issuer.signToken({ user: user.id })
    await issuer.setFailure({ _tag: "Hang" }, "jwks")
    const inFlight = fetch(`${server.url}/api/v1/me`, { headers: { authorization: `Bearer ${token}` } }).then(
      (response) => response.status,
      () => "cut" as const
    )
    await until(() => issuer.counts.jwks >= 1, "the server to ask for the key set")

    server.child.kill("SIGTERM")
    assert.strictEqual(await server.exited, 0)
    assert.strictEqual(await inFlight, "cut")
    assert.isTrue(server.logs.some((line) => String(line.message).startsWith("Grace period over")))
  })
})
