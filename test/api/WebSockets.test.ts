/**
 * The WebSocket routes on one real server with real `ws` clients: a job watched from its snapshot to its end (every
 * step after the snapshot once, in order, then close 1000), a finished job, a failing job, refused upgrades as plain
 * envelopes with no socket opened (no credentials, a bad ticket, another user's job, an unknown one), a stream
 * ticket, and the caller's notifications with replay from `?last_event_id=`.
 */
import { assert, layer } from "@effect/vitest"
import { Duration, Effect, FastCheck } from "effect"
import { randomUUID } from "node:crypto"
import { EventLog } from "../../src/core/realtime/EventLog.js"
import { WebSocketHub } from "../../src/core/realtime/WebSocketHub.js"
import { TestServer } from "../support/TestServer.js"
import * as TestServerLayer from "../support/TestServer.js"
import * as WsClient from "../support/WsClient.js"

const call = TestServerLayer.request

const newUser = Effect.gen(function*() {
  const server = yield* TestServer
  const issuer = server.standIn!
  const user = issuer.createUser({ email: `ws-${randomUUID().slice(0, 8)}@example.com`, password: "password-123" })
  const token = yield* Effect.promise(() => issuer.signToken({ user: user.id }))
  const me = (yield* call("/api/v1/me", { headers: { authorization: `Bearer ${token}` } })).json()
  return { token, userId: me.id as string }
})

const createJob = (token: string, body: unknown) =>
  Effect.map(
    call("/api/v1/jobs", {
      method: "POST",
      headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
      body: JSON.stringify(body)
    }),
    (reply) => reply.json() as { id: string; status: string; step: number }
  )

const ws = (path: string, options: Parameters<typeof WsClient.open>[1] = {}) =>
  Effect.flatMap(TestServer, (server) => Effect.promise(() => WsClient.open(WsClient.wsUrl(server.url, path), options)))

/** Opens `path` and waits for the server to close it: the close code and every message. */
const watch = (path: string, options: Parameters<typeof WsClient.open>[1] = {}) =>
  Effect.flatMap(ws(path, options), (result) =>
    Effect.promise(async () => {
      if (result._tag !== "Opened") throw new Error(`refused: ${result.status} ${JSON.stringify(result.body)}`)
      return { code: await result.closed, messages: result.messages }
    }))

const refusedAt = (path: string, options: Parameters<typeof WsClient.open>[1] = {}) =>
  Effect.flatMap(ws(path, options), (result) => Effect.promise(() => WsClient.refused(Promise.resolve(result))))

const openAt = (path: string, options: Parameters<typeof WsClient.open>[1] = {}) =>
  Effect.flatMap(ws(path, options), (result) => Effect.promise(() => WsClient.opened(Promise.resolve(result))))

const untilStatus = (token: string, id: string, status: string) =>
  Effect.gen(function*() {
    for (let attempt = 0; attempt < 400; attempt++) {
      const job = (yield* call(`/api/v1/jobs/${id}`, { headers: { authorization: `Bearer ${token}` } })).json()
      if (job.status === status) return
      yield* Effect.sleep(Duration.millis(20))
    }
    assert.fail(`job ${id} never ${status}`)
  })

/** Asserts the job protocol: a snapshot, each later step once in order, the end, and returns them. */
const assertJobStream = (
  messages: ReadonlyArray<any>,
  id: string,
  steps: number,
  end: "job.completed" | "job.failed"
) => {
  assert.strictEqual(messages[0].type, "job.snapshot")
  assert.strictEqual(messages[0].job.id, id)
  const from = messages[0].job.step as number
  const progress = messages.slice(1, -1)
  const last = messages[messages.length - 1]
  assert.deepStrictEqual(
    progress.map((message) => [message.type, message.job_id, message.steps]),
    progress.map(() => ["job.progress", id, steps])
  )
  assert.deepStrictEqual(
    progress.map((message) => message.step),
    Array.from({ length: progress.length }, (_, index) => from + index + 1)
  )
  assert.strictEqual(last.type, end)
  assert.strictEqual(last.job_id, id)
  return { from, progress, last }
}

layer(TestServerLayer.layer({ env: { JOB_POLL_SECONDS: "0.2" } }), { excludeTestServices: true })(
  "WebSockets",
  (it) => {
    it.effect("a job watched live: the snapshot, every later step once and in order, job.completed, close 1000", () =>
      Effect.gen(function*() {
        const { token } = yield* newUser
        const job = yield* createJob(token, { steps: 20, step_ms: 20 })
        const { code, messages } = yield* watch(`/api/v1/ws/jobs/${job.id}`, { token })
        assert.strictEqual(code, 1000)
        const { from, last } = assertJobStream(messages, job.id, 20, "job.completed")
        assert.strictEqual(messages.length, 1 + (20 - from) + 1)
        assert.strictEqual(last.job.status, "completed")
        assert.strictEqual(last.job.step, 20)
        assert.strictEqual((yield* TestServer).logs().filter((line) => line.level === "ERROR").length, 0)
      }))

    it.effect("a finished job: the snapshot, the end, close 1000; a failing job ends with job.failed", () =>
      Effect.gen(function*() {
        const { token } = yield* newUser
        const done = yield* createJob(token, { steps: 2, step_ms: 0 })
        yield* untilStatus(token, done.id, "completed")
        const finished = yield* watch(`/api/v1/ws/jobs/${done.id}`, { token })
        assert.strictEqual(finished.code, 1000)
        assertJobStream(finished.messages, done.id, 2, "job.completed")

        const failing = yield* createJob(token, { steps: 10, step_ms: 20, fail_at_step: 6 })
        const failed = yield* watch(`/api/v1/ws/jobs/${failing.id}`, { token })
        assert.strictEqual(failed.code, 1000)
        const { from, progress, last } = assertJobStream(failed.messages, failing.id, 10, "job.failed")
        assert.strictEqual(last.error, "Failed at step 6")
        assert.strictEqual(from + progress.length, 5)
        assert.deepStrictEqual(Object.keys(last).sort(), ["error", "job_id", "type"])
      }))

    it.effect("refused upgrades are plain envelopes and open no socket: none or bad credentials 401, another's job 404", () =>
      Effect.gen(function*() {
        const owner = yield* newUser
        const other = yield* newUser
        const job = yield* createJob(owner.token, { steps: 1, step_ms: 0 })
        const hub = yield* WebSocketHub
        const before = hub.stats().sockets
        const cases = [
          { path: `/api/v1/ws/jobs/${job.id}`, options: {}, status: 401, code: "UNAUTHORIZED" },
          { path: `/api/v1/ws/jobs/${job.id}`, options: { token: "not-a-token" }, status: 401, code: "UNAUTHORIZED" },
          { path: `/api/v1/ws/jobs/${job.id}?ticket=forged`, options: {}, status: 401, code: "UNAUTHORIZED" },
          { path: `/api/v1/ws/jobs/${job.id}`, options: { token: other.token }, status: 404, code: "JOB_NOT_FOUND" },
          {
            path: `/api/v1/ws/jobs/${randomUUID()}`,
            options: { token: owner.token },
            status: 404,
            code: "JOB_NOT_FOUND"
          },
          { path: `/api/v1/ws/jobs/nope`, options: { token: owner.token }, status: 404, code: "JOB_NOT_FOUND" },
          { path: `/api/v1/ws/notifications`, options: {}, status: 401, code: "UNAUTHORIZED" }
        ]
        for (const { code, options, path, status } of cases) {
          const reply = yield* refusedAt(path, options)
          assert.strictEqual(reply.status, status, path)
          assert.strictEqual(reply.body.error.code, code, path)
          if (status === 401) assert.strictEqual(reply.headers["www-authenticate"], "Bearer")
        }
        assert.strictEqual(hub.stats().sockets, before)
        // A plain GET (no upgrade) is a 400, not a socket.
        const plain = yield* call(`/api/v1/ws/jobs/${job.id}`, { headers: { authorization: `Bearer ${owner.token}` } })
        assert.strictEqual(plain.status, 400)
        assert.strictEqual(plain.json().error.code, "BAD_REQUEST")
      }))

    it.effect.prop(
      "a job's socket is its owner's only: any other user is refused 404 before an upgrade, the owner gets the snapshot",
      [FastCheck.integer({ min: 2, max: 4 })],
      ([users]) =>
        Effect.gen(function*() {
          const all = yield* Effect.all(Array.from({ length: users }, () => newUser))
          const jobs = yield* Effect.forEach(all, (user) => createJob(user.token, { steps: 1, step_ms: 0 }))
          for (const [owner, job] of jobs.entries()) {
            for (const [reader, user] of all.entries()) {
              if (reader === owner) {
                const watched = yield* watch(`/api/v1/ws/jobs/${job.id}`, { token: user.token })
                assert.strictEqual(watched.messages[0].type, "job.snapshot")
                assert.strictEqual(watched.messages[0].job.id, job.id)
              } else {
                const reply = yield* refusedAt(`/api/v1/ws/jobs/${job.id}`, { token: user.token })
                assert.strictEqual(reply.status, 404)
                assert.deepStrictEqual(reply.body, { error: { code: "JOB_NOT_FOUND", message: "Job not found" } })
              }
            }
          }
        }),
      { fastCheck: { numRuns: 5 } }
    )

    it.effect("a stream ticket opens the socket once; used again it is 401", () =>
      Effect.gen(function*() {
        const { token } = yield* newUser
        const job = yield* createJob(token, { steps: 1, step_ms: 0 })
        const ticket = (yield* call("/api/v1/stream-tickets", {
          method: "POST",
          headers: { authorization: `Bearer ${token}` }
        })).json().ticket as string
        const first = yield* watch(`/api/v1/ws/jobs/${job.id}?ticket=${ticket}`)
        assert.strictEqual(first.code, 1000)
        assert.strictEqual(first.messages[0].type, "job.snapshot")
        const again = yield* refusedAt(`/api/v1/ws/jobs/${job.id}?ticket=${ticket}`)
        assert.strictEqual(again.status, 401)
      }))

    it.effect("notifications: the caller's events live, and after ?last_event_id= exactly what followed it", () =>
      Effect.gen(function*() {
        const me = yield* newUser
        const stranger = yield* newUser
        const log = yield* EventLog
        const append = (userId: string, n: number) =>
          log.transaction(log.append(userId, "notification", { title: `n${n}`, body: "b" }))
        const first = yield* append(me.userId, 1)
        yield* append(me.userId, 2)

        const live = yield* openAt("/api/v1/ws/notifications", { token: me.token })
        // Well after the upgrade's request is over: the socket still hears what comes.
        yield* Effect.sleep(Duration.millis(300))
        const third = yield* append(me.userId, 3)
        yield* append(stranger.userId, 99)
        const fourth = yield* append(me.userId, 4)
        yield* Effect.promise(() => waitFor(() => live.messages.length >= 2))
        assert.deepStrictEqual(live.messages, [
          { type: "notification", id: third.id, data: { title: "n3", body: "b" } },
          { type: "notification", id: fourth.id, data: { title: "n4", body: "b" } }
        ])

        const replay = yield* openAt(`/api/v1/ws/notifications?last_event_id=${first.id}`, { token: me.token })
        yield* Effect.promise(() => waitFor(() => replay.messages.length >= 3))
        assert.deepStrictEqual(replay.messages.map((message) => message.data.title), ["n2", "n3", "n4"])
        live.socket.close(1000)
        replay.socket.close(1001)
        yield* Effect.promise(() => Promise.all([live.closed, replay.closed]))
        const server = yield* TestServer
        assert.strictEqual(server.logs().filter((line) => line.level === "ERROR").length, 0)
      }))
  }
)

const waitFor = async (condition: () => boolean) => {
  for (let attempt = 0; attempt < 400 && !condition(); attempt++) {
    await new Promise((resolve) => setTimeout(resolve, 10))
  }
}
