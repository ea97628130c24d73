/**
 * WebSockets across server processes sharing Postgres and Redis, with real `ws` clients: a job made on A (which
 * runs it) watched from B, every step after the snapshot once and in order, close 1000; the instance running a job
 * killed mid-job, and the watcher on the other instance sees it finished there; notifications made on A reach a
 * socket on B, and a socket reopened with `?last_event_id=` gets exactly what followed.
 */
import { afterAll, afterEach, assert, beforeAll, describe, it } from "@effect/vitest"
import { randomUUID } from "node:crypto"
import pg from "pg"
import { startSupabaseStandIn, type SupabaseStandInServer } from "../../src/dev/SupabaseStandIn.js"
import { provided } from "../support/Provided.js"
import { sharedRedisUrl } from "../support/Realtime.js"
import * as ServerProcess from "../support/ServerProcess.js"
import * as WsClient from "../support/WsClient.js"

/** One app name for the processes of this file: their Redis channels, apart from everyone else's. */
const appName = `t${randomUUID().replaceAll("-", "").slice(0, 12)}`

const jobRow = async (id: string) => {
  const client = new pg.Client({ connectionString: provided("databaseUrl") })
  await client.connect()
  try {
    return (await client.query<{ status: string; step: number }>("select status, step from jobs where id = $1", [id]))
      .rows[0]!
  } finally {
    await client.end()
  }
}

/** Asserts the job protocol on a watcher's messages: snapshot, each later step once in order, the end. */
const assertJobStream = (messages: ReadonlyArray<any>, id: string, steps: number) => {
  assert.strictEqual(messages[0]?.type, "job.snapshot")
  const from = messages[0].job.step as number
  const progress = messages.slice(1, -1)
  assert.deepStrictEqual(
    progress.map((message) => `${message.type}:${message.job_id}:${message.step}/${message.steps}`),
    Array.from({ length: steps - from }, (_, index) => `job.progress:${id}:${from + index + 1}/${steps}`)
  )
  const last = messages[messages.length - 1]
  assert.strictEqual(last.type, "job.completed")
  assert.strictEqual(last.job.step, steps)
  return from
}

describe("WebSockets across instances", () => {
  let issuer: SupabaseStandInServer
  const servers: Array<ServerProcess.ServerProcess> = []
  const start = async (env: Record<string, string> = {}) => {
    const server = await ServerProcess.start(issuer, {
      APP_NAME: appName,
      REDIS_URL: sharedRedisUrl,
      JOB_POLL_SECONDS: "0.1",
      ...env
    })
    servers.push(server)
    return server
  }
  beforeAll(async () => {
    issuer = await startSupabaseStandIn()
  })
  afterEach(async () => {
    await Promise.all(servers.splice(0).map((server) => server.kill()))
  })
  afterAll(async () => {
    await issuer.stop()
  })

  const newUser = async (server: ServerProcess.ServerProcess) => {
    const user = issuer.createUser({ email: `x-${randomUUID().slice(0, 8)}@example.com`, password: "password-123" })
    const token = await issuer.signToken({ user: user.id })
    const me = await fetch(`${server.url}/api/v1/me`, { headers: { authorization: `Bearer ${token}` } })
    return { token, userId: ((await me.json()) as { id: string }).id }
  }

  const createJob = async (server: ServerProcess.ServerProcess, token: string, body: unknown) => {
    const response = await fetch(`${server.url}/api/v1/jobs`, {
      method: "POST",
      headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
      body: JSON.stringify(body)
    })
    assert.strictEqual(response.status, 202)
    return ((await response.json()) as { id: string }).id
  }

  it("a job made and run on A, watched from B: every step after the snapshot once and in order, close 1000", async () => {
    // B runs no jobs: everything the watcher on B hears comes from A through Redis.
    const [a, b] = await Promise.all([start(), start({ JOB_CONCURRENCY: "0" })])
    const { token } = await newUser(a)
    const id = await createJob(a, token, { steps: 30, step_ms: 30 })
    const watcher = await WsClient.opened(WsClient.open(WsClient.wsUrl(b.url, `/api/v1/ws/jobs/${id}`), { token }))
    assert.strictEqual(await watcher.closed, 1000)
    const from = assertJobStream(watcher.messages, id, 30)
    assert.isBelow(from, 30, "the watcher saw steps live, not only the end")
    assert.isFalse(b.logs.some((line) => line.message === "Job claimed"))
  })

  it("the instance running a job is killed mid-job: the other finishes it, and the watcher there sees the end", async () => {
    const pair = await Promise.all([start({ JOB_LEASE_SECONDS: "2" }), start({ JOB_LEASE_SECONDS: "2" })])
    const { token } = await newUser(pair[0])
    const id = await createJob(pair[0], token, { steps: 40, step_ms: 100 })
    await ServerProcess.until(
      () => pair.some((server) => server.logs.some((line) => line.message === "Job claimed" && line.job_id === id)),
      "a claim"
    )
    const holder = pair.find((server) => server.logs.some((line) => line.message === "Job claimed"))!
    const other = pair.find((server) => server !== holder)!
    const watcher = await WsClient.opened(WsClient.open(WsClient.wsUrl(other.url, `/api/v1/ws/jobs/${id}`), { token }))
    await ServerProcess.until(() => watcher.messages.length >= 4, "a few steps watched")
    await holder.kill()

    assert.strictEqual(await watcher.closed, 1000)
    assertJobStream(watcher.messages, id, 40)
    assert.deepStrictEqual(await jobRow(id), { status: "completed", step: 40 })
    assert.isTrue(other.logs.some((line) => line.message === "Job claimed" && line.job_id === id))
  })

  it("notifications made on A reach a socket on B; reopened with ?last_event_id=, exactly what followed", async () => {
    const [a, b] = await Promise.all([start(), start()])
    const me = await newUser(a)
    const stranger = await newUser(a)
    const notify = async (token: string, title: string) => {
      const response = await fetch(`${a.url}/api/v1/notifications`, {
        method: "POST",
        headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
        body: JSON.stringify({ title, body: "hello" })
      })
      assert.strictEqual(response.status, 201)
    }
    const live = await WsClient.opened(
      WsClient.open(WsClient.wsUrl(b.url, "/api/v1/ws/notifications"), { token: me.token })
    )
    for (let n = 1; n <= 5; n++) {
      await notify(me.token, `n${n}`)
      await notify(stranger.token, `stranger${n}`)
    }
    await ServerProcess.until(() => live.messages.length >= 5, "five notifications")
    await new Promise((resolve) => setTimeout(resolve, 200))
    assert.deepStrictEqual(live.messages.map((message) => [message.type, message.data.title]), [
      ["notification", "n1"],
      ["notification", "n2"],
      ["notification", "n3"],
      ["notification", "n4"],
      ["notification", "n5"]
    ])
    const ids = live.messages.map((message) => message.id as number)
    assert.deepStrictEqual([...ids].sort((x, y) => x - y), ids)
    live.socket.close(1000)
    assert.strictEqual(await live.closed, 1000)

    // Reopened from the second: the three after it, then a live one, each once.
    const resumed = await WsClient.opened(
      WsClient.open(WsClient.wsUrl(b.url, `/api/v1/ws/notifications?last_event_id=${ids[1]}`), { token: me.token })
    )
    await ServerProcess.until(() => resumed.messages.length >= 3, "the replay")
    await notify(me.token, "n6")
    await ServerProcess.until(() => resumed.messages.length >= 4, "the live one after the replay")
    await new Promise((resolve) => setTimeout(resolve, 200))
    assert.deepStrictEqual(resumed.messages.map((message) => message.data.title), ["n3", "n4", "n5", "n6"])
    assert.deepStrictEqual(resumed.messages.slice(0, 3).map((message) => message.id), ids.slice(2))
    resumed.socket.close(1001)
    await resumed.closed
    assert.isFalse(b.logs.some((line) => line.level === "ERROR"))
  })

  it("SIGTERM: every socket is closed with 1001 at once, not after the grace period, and the process exits 0", async () => {
    // A grace period far longer than the test: the sockets must not be what shutdown waits for.
    const a = await start({ SHUTDOWN_GRACE_SECONDS: "3600" })
    const { token } = await newUser(a)
    const id = await createJob(a, token, { steps: 1000, step_ms: 1000 })
    const watcher = await WsClient.opened(WsClient.open(WsClient.wsUrl(a.url, `/api/v1/ws/jobs/${id}`), { token }))
    const notifications = await WsClient.opened(
      WsClient.open(WsClient.wsUrl(a.url, "/api/v1/ws/notifications"), { token })
    )
    a.child.kill("SIGTERM")
    assert.deepStrictEqual(await Promise.all([watcher.closed, notifications.closed]), [1001, 1001])
    assert.strictEqual(await a.exited, 0)
    assert.isFalse(a.logs.some((line) => String(line.message).startsWith("Grace period over")))
    assert.isFalse(a.logs.some((line) => line.level === "ERROR"))
  })
})
