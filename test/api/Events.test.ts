/**
 * `GET /api/v1/events`, stream tickets and notifications on the real server (in-process, on a loopback port) with the
 * shared Redis as its backplane: what a client sees on the wire, with raw reads and with the `eventsource` package.
 */
import { assert, layer } from "@effect/vitest"
import { Effect, Fiber } from "effect"
import { randomUUID } from "node:crypto"
import { EventLog } from "../../src/core/realtime/EventLog.js"
import { SseBus } from "../../src/core/realtime/SseBus.js"
import * as SseClient from "../support/SseClient.js"
import { TestServer } from "../support/TestServer.js"
import * as TestServerLayer from "../support/TestServer.js"

const appName = `t${randomUUID().replaceAll("-", "").slice(0, 12)}`

const token = Effect.flatMap(TestServer, (server) => Effect.promise(() => server.standIn!.signToken()))

const post = (path: string, accessToken: string, body?: unknown) =>
  TestServerLayer.request(path, {
    method: "POST",
    headers: { authorization: `Bearer ${accessToken}`, "content-type": "application/json" },
    ...(body === undefined ? {} : { body: JSON.stringify(body) })
  })

const url = (path: string) => Effect.map(TestServer, (server) => `${server.url}${path}`)

const promise = <A>(f: () => Promise<A>) => Effect.promise(f)

/** The caller's local user id, as `/me` says. */
const userIdOf = (accessToken: string) =>
  Effect.map(
    TestServerLayer.request("/api/v1/me", { headers: { authorization: `Bearer ${accessToken}` } }),
    (reply) => reply.json().id as string
  )

layer(
  TestServerLayer.layer({
    env: { REDIS_URL: "redis://127.0.0.1:6379", APP_NAME: appName, LOG_LEVEL: "info" }
  }),
  { excludeTestServices: true }
)("GET /api/v1/events", (it) => {
  it.effect("answers at once with the SSE headers and the preamble, before any event", () =>
    Effect.gen(function*() {
      const accessToken = yield* token
      const events = yield* url("/api/v1/events")
      const raw = yield* promise(() => SseClient.raw(events, { authorization: `Bearer ${accessToken}` }))
      assert.strictEqual(raw.response.status, 200)
      assert.strictEqual(raw.response.headers.get("content-type"), "text/event-stream")
      assert.strictEqual(raw.response.headers.get("cache-control"), "no-cache")
      assert.strictEqual(raw.response.headers.get("x-accel-buffering"), "no")
      assert.isNull(raw.response.headers.get("content-encoding"))
      yield* promise(() => raw.waitFor(() => raw.comments.includes("connected"), "the preamble"))
      assert.match(raw.text(), /^retry: \d+\n: connected\n\n$/)
      raw.close()
    }))

  it.effect("the OpenAPI document describes the stream, the tickets and the notifications", () =>
    Effect.gen(function*() {
      const spec = (yield* TestServerLayer.request("/openapi.json")).json()
      const stream = spec.paths["/api/v1/events"].get
      assert.deepStrictEqual(Object.keys(stream.responses["200"].content), ["text/event-stream"])
      assert.deepStrictEqual(stream.security, [{ bearer: [] }, { ticket: [] }])
      assert.includeMembers(Object.keys(stream.responses), ["401", "503"])
      assert.isDefined(spec.paths["/api/v1/stream-tickets"].post.responses["201"])
      assert.isDefined(spec.paths["/api/v1/notifications"].post.responses["201"])
      assert.isDefined(spec.paths["/api/v1/notifications"].get.responses["200"])
    }))

  it.effect("no credentials, a bad token or a bad ticket: the 401 envelope with WWW-Authenticate, nothing streamed", () =>
    Effect.gen(function*() {
      for (
        const [path, headers] of [
          ["/api/v1/events", {}],
          ["/api/v1/events", { authorization: "Bearer not-a-token" }],
          ["/api/v1/events?ticket=forged", {}],
          ["/api/v1/events?ticket=", {}]
        ] as const
      ) {
        const reply = yield* TestServerLayer.request(path, { headers })
        assert.strictEqual(reply.status, 401, path)
        assert.strictEqual(reply.response.headers.get("www-authenticate"), "Bearer")
        assert.strictEqual(reply.json().error.code, "UNAUTHORIZED")
        assert.notStrictEqual(reply.response.headers.get("content-type"), "text/event-stream")
      }
    }))

  it.effect("a stream ticket: bearer only, 201, redeemed once, and never written to the access log", () =>
    Effect.gen(function*() {
      const server = yield* TestServer
      const accessToken = yield* token
      const refused = yield* TestServerLayer.request("/api/v1/stream-tickets", { method: "POST" })
      assert.strictEqual(refused.status, 401)
      const issued = yield* post("/api/v1/stream-tickets", accessToken)
      assert.strictEqual(issued.status, 201)
      const { expires_in, ticket } = issued.json() as { ticket: string; expires_in: number }
      assert.strictEqual(expires_in, 30)
      assert.isAtLeast(ticket.length, 40)

      const events = yield* url(`/api/v1/events?ticket=${encodeURIComponent(ticket)}`)
      const first = yield* promise(() => SseClient.raw(events))
      assert.strictEqual(first.response.status, 200)
      // The stream is the ticket owner's: a notification of theirs arrives.
      yield* post("/api/v1/notifications", accessToken, { title: "via ticket", body: "b" })
      yield* promise(() => first.waitFor(() => first.messages.length === 1, "the notification"))
      assert.strictEqual(JSON.parse(first.messages[0]!.data).title, "via ticket")
      first.close()

      const second = yield* TestServerLayer.request(`/api/v1/events?ticket=${encodeURIComponent(ticket)}`)
      assert.strictEqual(second.status, 401)
      assert.strictEqual(second.json().error.message, "Invalid or expired stream ticket")
      assert.isFalse(server.lines().some((line) => line.includes(ticket)), "the ticket is in a log line")
      assert.isTrue(server.logs().some((log) => log.path === "/api/v1/events" && log.status === 200))
    }))

  it.effect("a notification: 201 with the stored notification, delivered to the caller's stream as its data", () =>
    Effect.gen(function*() {
      const accessToken = yield* token
      const events = yield* url("/api/v1/events")
      const client = yield* promise(() => SseClient.raw(events, { authorization: `Bearer ${accessToken}` }))
      yield* promise(() => client.waitFor(() => client.comments.includes("connected"), "the preamble"))
      const created = yield* post("/api/v1/notifications", accessToken, { title: "Hello", body: "World" })
      assert.strictEqual(created.status, 201)
      const notification = created.json()
      assert.deepStrictEqual(Object.keys(notification).sort(), ["body", "created_at", "id", "title"])
      assert.strictEqual(notification.title, "Hello")
      yield* promise(() => client.waitFor(() => client.messages.length === 1, "the frame"))
      const message = client.messages[0]!
      assert.strictEqual(message.event, "notification")
      assert.match(message.id!, /^\d+$/)
      assert.deepStrictEqual(JSON.parse(message.data), notification)
      client.close()
    }))

  it.effect("GET /notifications: newest first, paged with limit and before; bad paging is a 422", () =>
    Effect.gen(function*() {
      const accessToken = yield* token
      for (let i = 0; i < 5; i++) yield* post("/api/v1/notifications", accessToken, { title: `n${i}`, body: "" })
      const auth = { headers: { authorization: `Bearer ${accessToken}` } }
      const first = (yield* TestServerLayer.request("/api/v1/notifications?limit=2", auth)).json()
      assert.deepStrictEqual(first.notifications.map((n: { title: string }) => n.title), ["n4", "n3"])
      assert.isNumber(first.next_before)
      const second = (yield* TestServerLayer.request(
        `/api/v1/notifications?limit=2&before=${first.next_before}`,
        auth
      )).json()
      assert.deepStrictEqual(second.notifications.map((n: { title: string }) => n.title), ["n2", "n1"])
      const last = (yield* TestServerLayer.request(
        `/api/v1/notifications?limit=2&before=${second.next_before}`,
        auth
      )).json()
      assert.deepStrictEqual(last.notifications.map((n: { title: string }) => n.title), ["n0"])
      assert.isNull(last.next_before)
      // Another user sees none of them.
      const other = yield* token
      const theirs = (yield* TestServerLayer.request("/api/v1/notifications", {
        headers: { authorization: `Bearer ${other}` }
      })).json()
      assert.deepStrictEqual(theirs, { notifications: [], next_before: null })
      for (const query of ["limit=0", "limit=101", "limit=x", "before=-1", "before=1.5"]) {
        const bad = yield* TestServerLayer.request(`/api/v1/notifications?${query}`, auth)
        assert.strictEqual(bad.status, 422, query)
        assert.strictEqual(bad.json().error.code, "VALIDATION_ERROR")
      }
      for (const body of [{ title: " ", body: "" }, { title: "x".repeat(201), body: "" }, { title: "t" }]) {
        const bad = yield* post("/api/v1/notifications", accessToken, body)
        assert.strictEqual(bad.status, 422, JSON.stringify(body))
      }
    }))

  it.effect("replay: Last-Event-ID and ?last_event_id= send the same missed events; a malformed one is no cursor", () =>
    Effect.gen(function*() {
      const accessToken = yield* token
      const ids: Array<number> = []
      for (let i = 0; i < 6; i++) {
        ids.push((yield* post("/api/v1/notifications", accessToken, { title: `r${i}`, body: "" })).json().id)
      }
      const log = yield* EventLog
      const userId = yield* userIdOf(accessToken)
      const logged = yield* log.readAfter(userId, 0, 10)
      assert.strictEqual(logged.length, 6)
      const cursor = String(logged[2]!.id)
      const events = yield* url("/api/v1/events")
      const byHeader = yield* promise(() =>
        SseClient.raw(events, { authorization: `Bearer ${accessToken}`, "last-event-id": cursor })
      )
      const byQuery = yield* promise(() =>
        SseClient.raw(`${events}?last_event_id=${cursor}`, { authorization: `Bearer ${accessToken}` })
      )
      for (const client of [byHeader, byQuery]) {
        yield* promise(() => client.waitFor(() => client.messages.length === 3, "the replay"))
        assert.deepStrictEqual(client.messages.map((m) => JSON.parse(m.data).title), ["r3", "r4", "r5"])
        assert.deepStrictEqual(client.messages.map((m) => m.id), logged.slice(3).map((e) => String(e.id)))
      }
      const malformed = yield* promise(() =>
        SseClient.raw(`${events}?last_event_id=abc`, {
          authorization: `Bearer ${accessToken}`,
          "last-event-id": "12abc"
        })
      )
      assert.strictEqual(malformed.response.status, 200)
      yield* post("/api/v1/notifications", accessToken, { title: "live", body: "" })
      yield* promise(() => malformed.waitFor(() => malformed.messages.length === 1, "the live event"))
      assert.strictEqual(JSON.parse(malformed.messages[0]!.data).title, "live")
      for (const client of [byHeader, byQuery, malformed]) client.close()
    }))

  it.effect("events created while a client reconnects arrive exactly once, in order", () =>
    Effect.gen(function*() {
      const accessToken = yield* token
      const userId = yield* userIdOf(accessToken)
      const log = yield* EventLog
      const events = yield* url("/api/v1/events")
      const total = 300
      const received: Array<{ id: string; n: number }> = []
      let cursor: string | undefined
      let writer: Fiber.RuntimeFiber<void, unknown> | undefined
      // Reconnect after every few events, the way an EventSource does, while the writer goes on.
      while (received.length < total) {
        const headers: Record<string, string> = { authorization: `Bearer ${accessToken}` }
        if (cursor !== undefined) headers["last-event-id"] = cursor
        const client = yield* promise(() => SseClient.raw(events, headers))
        if (writer === undefined) {
          // The first stream has no cursor: it starts from the events made after it opened.
          yield* promise(() => client.waitFor(() => client.comments.includes("connected"), "the preamble"))
          writer = yield* Effect.fork(
            Effect.forEach(
              Array.from({ length: total }, (_, n) => n),
              (n) => log.transaction(log.append(userId, "test", { n })),
              { discard: true }
            )
          )
        }
        const want = Math.min(total, received.length + 17)
        const before = received.length
        yield* promise(() => client.waitFor(() => before + client.messages.length >= want, "some events"))
        client.close()
        for (const message of client.messages) received.push({ id: message.id!, n: JSON.parse(message.data).n })
        cursor = received[received.length - 1]?.id
      }
      yield* Fiber.join(writer!)
      assert.deepStrictEqual(received.map((r) => r.n), Array.from({ length: received.length }, (_, n) => n))
      assert.strictEqual(new Set(received.map((r) => r.id)).size, received.length)
    }))

  it.effect(
    "a slow EventSource (paused while 12 MiB are emitted) ends up with every event once, in order; others keep up",
    () =>
      Effect.gen(function*() {
        const accessToken = yield* token
        const userId = yield* userIdOf(accessToken)
        const log = yield* EventLog
        const bus = yield* SseBus
        const events = yield* url("/api/v1/events")
        const slow = SseClient.open(events, { token: accessToken })
        const fast = SseClient.open(events, { token: accessToken })
        yield* promise(() => SseClient.waitFor(() => slow.opens() === 1 && fast.opens() === 1, "both open"))
        yield* Effect.sleep("200 millis")
        slow.pause()
        const total = 6000
        const padding = "x".repeat(2048)
        let maxQueued = 0
        for (let batch = 0; batch < total; batch += 50) {
          yield* log.transaction(
            Effect.forEach(Array.from({ length: 50 }, (_, i) => batch + i), (n) =>
              log.append(userId, "test", { n, padding }), { discard: true })
          )
          maxQueued = Math.max(maxQueued, bus.stats().queued)
        }
        // The emitter finished while the slow client read nothing: it never waited for it.
        yield* promise(() =>
          fast.until(total, "the fast client's events")
        )
        const { subscribers } = bus.stats()
        assert.isAtMost(maxQueued, 100 * Math.max(subscribers, 2) + 100)
        slow.resume()
        yield* promise(() => slow.until(total, "the slow client's events"))
        for (const client of [slow, fast]) {
          const numbers = client.events.map((event) => (JSON.parse(event.data) as { n: number }).n)
          assert.deepStrictEqual(numbers, Array.from({ length: total }, (_, n) => n))
        }
        // The slow stream overflowed, ended, and its client resumed from its last id.
        assert.isAtLeast(slow.opens(), 2)
        assert.strictEqual(fast.opens(), 1)
        slow.close()
        fast.close()
      }),
    { timeout: 120_000 }
  )
})
