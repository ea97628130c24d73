/**
 * The real server process (`src/main.ts`, as `npm run dev` runs it), shut down with SIGTERM while a request is in flight
 * (waiting on the auth provider, which the test holds).
 */
import { afterEach, assert, beforeEach, describe, it } from "@effect/vitest"
import * as Net from "node:net"
import { startSupabaseStandIn, type SupabaseStandInServer } from "../../src/dev/SupabaseStandIn.js"
import * as ServerProcess from "../support/ServerProcess.js"

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
  let server: ServerProcess.ServerProcess | undefined
  beforeEach(async () => {
    issuer = await startSupabaseStandIn()
  })
  afterEach(async () => {
    await server?.kill()
    server = undefined
    await issuer.stop()
  })

  it("stops accepting, lets the in-flight request finish, releases every layer and exits 0", async () => {
    server = await ServerProcess.start(issuer)
    const user = issuer.createUser({ email: "in-flight@example.com", password: "password-123" })
    const token = await issuer.signToken({ user: user.id })

    // The server has never fetched the key set: its first authenticated request waits on the provider.
    await issuer.setFailure({ _tag: "Hang" }, "jwks")
    const inFlight = fetch(`${server.url}/api/v1/me`, { headers: { authorization: `Bearer ${token}` } })
    await ServerProcess.until(() => issuer.counts.jwks >= 1, "the server to ask for the key set")

    server.child.kill("SIGTERM")
    const port = server.port
    await ServerProcess.until(() => refusesConnections(port), "the listener to close")
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
    server = await ServerProcess.start(issuer, { SHUTDOWN_GRACE_SECONDS: "0.5" })
    const user = issuer.createUser({ email: "too-slow@example.com", password: "password-123" })
    const token = await issuer.signToken({ user: user.id })
    await issuer.setFailure({ _tag: "Hang" }, "jwks")
    const inFlight = fetch(`${server.url}/api/v1/me`, { headers: { authorization: `Bearer ${token}` } }).then(
      (response) => response.status,
      () => "cut" as const
    )
    await ServerProcess.until(() => issuer.counts.jwks >= 1, "the server to ask for the key set")

    server.child.kill("SIGTERM")
    assert.strictEqual(await server.exited, 0)
    assert.strictEqual(await inFlight, "cut")
    assert.isTrue(server.logs.some((line) => String(line.message).startsWith("Grace period over")))
  })
})
