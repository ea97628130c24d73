/**
 * Realtime across instances: two server processes sharing Postgres and a Redis this file starts on its own port;
 * a third process for the cap and for shutdown. Real clients over loopback.
 */
import { afterAll, assert, beforeAll, describe, it } from "@effect/vitest"
import { FastCheck as fc } from "effect"
import { randomUUID } from "node:crypto"
import { startSupabaseStandIn, type SupabaseStandInServer } from "../../src/dev/SupabaseStandIn.js"
import * as RedisServer from "../support/RedisServer.js"
import * as ServerProcess from "../support/ServerProcess.js"
import * as SseClient from "../support/SseClient.js"

let issuer: SupabaseStandInServer
let redis: RedisServer.RedisServer
let a: ServerProcess.ServerProcess
let b: ServerProcess.ServerProcess

const appName = `t${randomUUID().replaceAll("-", "").slice(0, 12)}`

beforeAll(async () => {
  issuer = await startSupabaseStandIn()
  redis = await RedisServer.make()
  const env = { REDIS_URL: redis.url, APP_NAME: appName }
  ;[a, b] = await Promise.all([ServerProcess.start(issuer, env), ServerProcess.start(issuer, env)])
}, 60_000)

afterAll(async () => {
  a?.kill()
  b?.kill()
  await redis?.stop()
  await issuer?.stop()
})

const bearer = (token: string) => ({ authorization: `Bearer ${token}` })

const notify = async (server: ServerProcess.ServerProcess, token: string, title: string) => {
  const response = await fetch(`${server.url}/api/v1/notifications`, {
    method: "POST",
    headers: { ...bearer(token), "content-type": "application/json" },
    body: JSON.stringify({ title, body: "" })
  })
  assert.strictEqual(response.status, 201, await response.clone().text())
  return (await response.json()) as { id: number; title: string }
}

const stream = async (server: ServerProcess.ServerProcess, headers: Record<string, string>, query = "") => {
  const client = await SseClient.raw(`${server.url}/api/v1/events${query}`, headers)
  assert.strictEqual(client.response.status, 200)
  await client.waitFor(() => client.comments.includes("connected"), "the preamble")
  return client
}

const titles = (client: SseClient.RawStream) => client.messages.map((m) => JSON.parse(m.data).title as string)

describe("realtime across two instances", () => {
  it("a notification made on A reaches the user's streams on B and A, and never another user's", async () => {
    let run = 0
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 2, max: 4 }),
        fc.array(fc.nat(), { minLength: 1, maxLength: 12 }),
        async (userCount, picks) => {
          run++
          const tokens = await Promise.all(Array.from({ length: userCount }, () => issuer.signToken()))
          const onB = await Promise.all(tokens.map((token) => stream(b, bearer(token))))
          const onA = await stream(a, bearer(tokens[0]!))
          const expected: Array<Array<string>> = tokens.map(() => [])
          for (const [i, pick] of picks.entries()) {
            const user = pick % userCount
            const title = `r${run}-e${i}-u${user}`
            expected[user]!.push(title)
            await notify(i % 2 === 0 ? a : b, tokens[user]!, title)
          }
          // A last one per user: once it arrives, everything before it has (a user's events come in order).
          for (const [user, token] of tokens.entries()) {
            const title = `r${run}-end-u${user}`
            expected[user]!.push(title)
            await notify(a, token, title)
          }
          for (const [user, client] of onB.entries()) {
            await client.waitFor(() => titles(client).includes(`r${run}-end-u${user}`), "the last event")
            assert.deepStrictEqual(titles(client), expected[user])
          }
          await onA.waitFor(() => titles(onA).includes(`r${run}-end-u0`), "the last event on A")
          assert.deepStrictEqual(titles(onA), expected[0])
          for (const client of [...onB, onA]) client.close()
        }
      ),
      { numRuns: 8 }
    )
  }, 120_000)

  it("a ticket issued on A is redeemed on B, once; a second use on either is 401", async () => {
    const token = await issuer.signToken()
    const issued = await fetch(`${a.url}/api/v1/stream-tickets`, { method: "POST", headers: bearer(token) })
    assert.strictEqual(issued.status, 201)
    const { ticket } = (await issued.json()) as { ticket: string }
    const client = await stream(b, {}, `?ticket=${encodeURIComponent(ticket)}`)
    await notify(a, token, "for the ticket holder")
    await client.waitFor(() => client.messages.length === 1, "the notification")
    assert.deepStrictEqual(titles(client), ["for the ticket holder"])
    client.close()
    for (const server of [a, b]) {
      const again = await fetch(`${server.url}/api/v1/events?ticket=${encodeURIComponent(ticket)}`)
      assert.strictEqual(again.status, 401)
      assert.strictEqual(again.headers.get("www-authenticate"), "Bearer")
    }
    assert.isFalse([...a.logs, ...b.logs].some((log) => JSON.stringify(log).includes(ticket)))
  }, 30_000)

  it(
    "Redis stopped and restarted mid-stream: /ready degrades, events go on, the stream on B misses nothing",
    async () => {
      const token = await issuer.signToken()
      const client = await stream(b, bearer(token))
      const sent: Array<string> = []
      const send = async (title: string) => {
        sent.push(title)
        await notify(a, token, title)
      }
      for (let i = 0; i < 3; i++) await send(`before-${i}`)
      await client.waitFor(() => client.messages.length === 3, "the events before the outage")

      await redis.stop()
      let ready: Response | undefined
      for (let i = 0; i < 200; i++) {
        ready = await fetch(`${a.url}/ready`)
        const body = (await ready.clone().json()) as { checks: Array<{ name: string; status: string }> }
        if (body.checks.some((check) => check.name === "redis" && check.status === "degraded")) break
        await new Promise((resolve) => setTimeout(resolve, 50))
      }
      assert.strictEqual(ready!.status, 200)
      const report = (await ready!.json()) as { status: string; checks: Array<{ name: string; status: string }> }
      assert.strictEqual(report.status, "ready")
      assert.deepInclude(report.checks.map(({ name, status }) => ({ name, status })), {
        name: "redis",
        status: "degraded"
      })

      for (let i = 0; i < 5; i++) await send(`during-${i}`)
      await redis.start()
      for (let i = 0; i < 2; i++) await send(`after-${i}`)
      await client.waitFor(() => client.messages.length >= sent.length, "every event after the restart")
      // A moment for any duplicate to show.
      await new Promise((resolve) => setTimeout(resolve, 300))
      assert.deepStrictEqual(titles(client), sent)
      const ids = client.messages.map((m) => Number(m.id))
      assert.deepStrictEqual(ids, [...ids].sort((x, y) => x - y))
      client.close()
    },
    60_000
  )
})

describe("one instance: the subscriber cap and shutdown", () => {
  it("past SSE_MAX_SUBSCRIBERS a stream gets 503 with Retry-After; a closed one gives its place back", async () => {
    const server = await ServerProcess.start(issuer, { SSE_MAX_SUBSCRIBERS: "2", APP_NAME: `${appName}c` })
    try {
      const token = await issuer.signToken()
      const first = await stream(server, bearer(token))
      const second = await stream(server, bearer(token))
      const refused = await fetch(`${server.url}/api/v1/events`, { headers: bearer(token) })
      assert.strictEqual(refused.status, 503)
      assert.strictEqual(refused.headers.get("retry-after"), "30")
      assert.strictEqual(((await refused.json()) as { error: { code: string } }).error.code, "SERVICE_UNAVAILABLE")
      first.close()
      let admitted: SseClient.RawStream | undefined
      for (let i = 0; i < 100 && admitted === undefined; i++) {
        const attempt = await SseClient.raw(`${server.url}/api/v1/events`, bearer(token))
        if (attempt.response.status === 200) admitted = attempt
        else await new Promise((resolve) => setTimeout(resolve, 20))
      }
      assert.isDefined(admitted)
      admitted!.close()
      second.close()
    } finally {
      server.kill()
    }
  }, 30_000)

  it("on SIGTERM every open stream ends at once (not after the grace period) and the process exits 0", async () => {
    // A grace period longer than the test's timeout: only streams that end by themselves let it pass.
    const server = await ServerProcess.start(issuer, { SHUTDOWN_GRACE_SECONDS: "120", APP_NAME: `${appName}d` })
    try {
      const tokens = await Promise.all([issuer.signToken(), issuer.signToken()])
      const clients = await Promise.all([...tokens, tokens[0]!].map((token) => stream(server, bearer(token))))
      server.child.kill("SIGTERM")
      await Promise.all(clients.map((client) => client.ended))
      assert.strictEqual(await server.exited, 0)
      assert.isFalse(server.logs.some((log) => String(log.message).startsWith("Grace period over")))
    } finally {
      server.kill()
    }
  }, 60_000)
})
