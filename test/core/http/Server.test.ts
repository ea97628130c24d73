/**
 * The server against hostile and careless clients, over raw sockets where a client library would refuse to send
 * the thing: slow heads and bodies, handlers that never answer, too many connections, and requests Node answers
 * before the app (no `Host`, an odd `Expect`, `CONNECT`, malformed heads). Long-lived responses (a stream, an
 * upgraded WebSocket) must outlive the request timeout.
 */
import * as HttpLayerRouter from "@effect/platform/HttpLayerRouter"
import * as HttpServerRequest from "@effect/platform/HttpServerRequest"
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import { assert, layer } from "@effect/vitest"
import { Deferred, Duration, Effect, Fiber, Schedule, Stream } from "effect"
import * as WS from "ws"
import * as RawHttp from "../../support/RawHttp.js"
import { TestServer } from "../../support/TestServer.js"
import * as TestServerLayer from "../../support/TestServer.js"

const uuid = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/

// Opened by a test once it knows the request timeout has passed.
let gate = Deferred.unsafeMake<void>(Effect.runSync(Effect.fiberId))

const routes = HttpLayerRouter.addAll([
  HttpLayerRouter.route("GET", "/test/slow", Effect.as(Effect.never, HttpServerResponse.empty())),
  HttpLayerRouter.route(
    "POST",
    "/test/echo",
    Effect.flatMap(HttpServerRequest.HttpServerRequest, (request) => Effect.map(request.text, HttpServerResponse.text))
  ),
  HttpLayerRouter.route(
    "GET",
    "/test/stream",
    Effect.sync(() =>
      HttpServerResponse.stream(
        Stream.concat(Stream.make("first\n"), Stream.fromEffect(Effect.as(Deferred.await(gate), "second\n"))).pipe(
          Stream.encodeText
        ),
        { contentType: "text/plain" }
      )
    )
  ),
  HttpLayerRouter.route(
    "GET",
    "/test/ws",
    Effect.gen(function*() {
      const socket = yield* HttpServerRequest.upgrade
      const write = yield* socket.writer
      yield* socket.runRaw((data) => write(`echo:${typeof data === "string" ? data : new TextDecoder().decode(data)}`))
      return HttpServerResponse.empty()
    })
  ),
  HttpLayerRouter.route(
    "GET",
    "/test/ws-late",
    Effect.zipRight(Effect.never, Effect.as(HttpServerRequest.upgrade, HttpServerResponse.empty()))
  )
])

const timeouts = { REQUEST_HEADERS_TIMEOUT_SECONDS: "0.5", REQUEST_TIMEOUT_SECONDS: "1" }

const port = Effect.map(TestServer, (server) => RawHttp.portOf(server.url))

const assertEnvelope = (response: RawHttp.RawResponse, status: number, code: string, requestId: RegExp = uuid) => {
  assert.strictEqual(response.status, status, response.body)
  assert.strictEqual(response.headers["content-type"], "application/json")
  assert.deepStrictEqual(Object.keys(response.json()), ["error"])
  assert.strictEqual(response.json().error.code, code)
  assert.match(response.headers["x-request-id"] ?? "", requestId)
}

/** A request that the server cuts for taking too long: once it is answered, the request timeout has passed. */
const timedOutRequest = Effect.flatMap(
  port,
  (port) => RawHttp.exchange(port, "GET /test/slow HTTP/1.1\r\nHost: t\r\n\r\n")
)

const openWebSocket = (url: string) =>
  Effect.acquireRelease(
    Effect.async<{ readonly ws: WS.WebSocket; readonly next: Effect.Effect<string> }, Error>((resume) => {
      const ws = new WS.WebSocket(url)
      const messages: Array<string> = []
      const waiting: Array<(message: string) => void> = []
      ws.on("message", (data) => {
        const waiter = waiting.shift()
        if (waiter !== undefined) waiter(String(data))
        else messages.push(String(data))
      })
      ws.once("open", () => {
        const next = Effect.async<string>((resume) => {
          const message = messages.shift()
          if (message !== undefined) resume(Effect.succeed(message))
          else waiting.push((message) => resume(Effect.succeed(message)))
        })
        resume(Effect.succeed({ ws, next }))
      })
      ws.once("error", (error) => resume(Effect.fail(error)))
    }),
    ({ ws }) => Effect.sync(() => ws.close(1000))
  )

layer(TestServerLayer.layer({ routes, env: timeouts }), { excludeTestServices: true })("request timeouts", (it) => {
  it.effect("a head dribbled byte by byte (slowloris) is cut: 408 envelope, connection closed", () =>
    Effect.gen(function*() {
      const connection = yield* RawHttp.connect(yield* port)
      yield* connection.write("GET /health HTTP/1.1\r\nHost: t\r\n")
      const drip = yield* Effect.fork(
        Effect.repeat(connection.write("X-Drip: 1\r\n"), Schedule.spaced(Duration.millis(100)))
      )
      const response = yield* connection.response
      yield* Fiber.interrupt(drip)
      assertEnvelope(response, 408, "REQUEST_TIMEOUT")
      yield* connection.closed
    }).pipe(Effect.scoped))

  it.effect("a body that never finishes is 408 with the request's own id and access log line; the connection closes", () =>
    Effect.gen(function*() {
      const server = yield* TestServer
      server.clearLogs()
      const connection = yield* RawHttp.connect(yield* port)
      yield* connection.write(
        "POST /test/echo HTTP/1.1\r\nHost: t\r\nContent-Length: 100\r\nX-Request-ID: slow-body-1\r\n\r\nhello"
      )
      const response = yield* connection.response
      assertEnvelope(response, 408, "REQUEST_TIMEOUT", /^slow-body-1$/)
      assert.strictEqual(response.headers["connection"], "close")
      yield* connection.closed
      const access = server.logs().filter((line) => line.message === "request" && line.request_id === "slow-body-1")
      assert.deepStrictEqual(access.map((line) => [line.path, line.status]), [["/test/echo", 408]])
    }).pipe(Effect.scoped))

  it.effect("a handler that never answers is 503 with Retry-After; the connection stays usable", () =>
    Effect.gen(function*() {
      const connection = yield* RawHttp.connect(yield* port)
      yield* connection.write("GET /test/slow HTTP/1.1\r\nHost: t\r\n\r\n")
      const response = yield* connection.response
      assertEnvelope(response, 503, "SERVICE_UNAVAILABLE")
      assert.strictEqual(response.json().error.message, "The request took too long")
      assert.strictEqual(response.headers["retry-after"], "5")
      yield* connection.write("GET /health HTTP/1.1\r\nHost: t\r\n\r\n")
      assert.strictEqual((yield* connection.response).status, 200)
    }).pipe(Effect.scoped))

  it.effect("a body still dribbling in after its response was written is not waited for: the connection closes", () =>
    Effect.gen(function*() {
      const connection = yield* RawHttp.connect(yield* port)
      yield* connection.write("GET /health HTTP/1.1\r\nHost: t\r\nContent-Length: 5000\r\n\r\nabc")
      assert.strictEqual((yield* connection.response).status, 200)
      // Never idle, so no keep-alive timeout closes it: only the request timeout can.
      yield* Effect.fork(Effect.repeat(connection.write("x"), Schedule.spaced(Duration.millis(100))))
      yield* connection.closed
    }).pipe(Effect.scoped))

  it.effect("a streaming response outlives the request timeout", () =>
    Effect.gen(function*() {
      const server = yield* TestServer
      gate = yield* Deferred.make<void>()
      const response = yield* Effect.promise(() => fetch(`${server.url}/test/stream`))
      assert.strictEqual(response.status, 200)
      const reader = response.body!.getReader()
      const first = yield* Effect.promise(() => reader.read())
      assert.strictEqual(new TextDecoder().decode(first.value), "first\n")
      // Started after the stream, answered once the timeout has passed for it: the stream is older than that.
      assert.strictEqual((yield* timedOutRequest).status, 503)
      yield* Deferred.succeed(gate, undefined)
      let rest = ""
      for (
        let chunk = yield* Effect.promise(() => reader.read());
        !chunk.done;
        chunk = yield* Effect.promise(() => reader.read())
      ) {
        rest += new TextDecoder().decode(chunk.value)
      }
      assert.strictEqual(rest, "second\n")
    }))

  it.effect("an upgraded WebSocket outlives the request timeout", () =>
    Effect.gen(function*() {
      const server = yield* TestServer
      const { next, ws } = yield* openWebSocket(`${server.url.replace("http", "ws")}/test/ws`)
      ws.send("one")
      assert.strictEqual(yield* next, "echo:one")
      assert.strictEqual((yield* timedOutRequest).status, 503)
      ws.send("two")
      assert.strictEqual(yield* next, "echo:two")
      assert.strictEqual(ws.readyState, WS.WebSocket.OPEN)
    }).pipe(Effect.scoped))

  it.effect("an upgrade request whose handler never upgrades gets the 503 envelope", () =>
    Effect.gen(function*() {
      const server = yield* TestServer
      const refused = yield* Effect.async<{ status: number; body: string }>((resume) => {
        const ws = new WS.WebSocket(`${server.url.replace("http", "ws")}/test/ws-late`)
        ws.on("unexpected-response", (_request, response) => {
          let body = ""
          response.on("data", (chunk: Buffer) => (body += chunk))
          response.on("end", () => resume(Effect.succeed({ status: response.statusCode!, body })))
        })
        ws.on("error", () => {})
      })
      assert.strictEqual(refused.status, 503)
      assert.strictEqual(JSON.parse(refused.body).error.code, "SERVICE_UNAVAILABLE")
    }))
})

layer(TestServerLayer.layer({ env: { MAX_CONNECTIONS: "3" } }), { excludeTestServices: true })(
  "connection limit",
  (it) => {
    it.effect("past MAX_CONNECTIONS a new connection is closed at once, unanswered; a freed slot takes the next", () =>
      Effect.gen(function*() {
        const server = yield* TestServer
        const target = yield* port
        const health = "GET /health HTTP/1.1\r\nHost: t\r\n\r\n"
        const open = yield* Effect.forEach([1, 2, 3], () =>
          Effect.gen(function*() {
            const connection = yield* RawHttp.connect(target)
            yield* connection.write(health)
            assert.strictEqual((yield* connection.response).status, 200)
            return connection
          }))

        const refused = yield* RawHttp.connect(target)
        yield* refused.write(health)
        yield* refused.closed
        assert.strictEqual(refused.received(), "")
        assert.isTrue(
          server.logs().some((line) => line.message === "Connection limit reached: new connections refused")
        )

        open[0]!.socket.destroy()
        // The server counts the freed slot once it has seen the close: until then new connections are still refused.
        const admitted = yield* RawHttp.exchange(target, health).pipe(
          Effect.retry({ schedule: Schedule.spaced(Duration.millis(20)), times: 100 })
        )
        assert.strictEqual(admitted.status, 200)
      }).pipe(Effect.scoped))
  }
)

layer(TestServerLayer.layer(), { excludeTestServices: true })("answers Node would give without the envelope", (it) => {
  it.effect("HTTP/1.1 without Host: 400 envelope with a request id, connection closed; HTTP/1.0 needs none", () =>
    Effect.gen(function*() {
      const connection = yield* RawHttp.connect(yield* port)
      yield* connection.write("GET /health HTTP/1.1\r\n\r\n")
      const response = yield* connection.response
      assertEnvelope(response, 400, "BAD_REQUEST")
      assert.strictEqual(response.json().error.message, "Missing Host header")
      assert.strictEqual(response.headers["connection"], "close")
      yield* connection.closed

      const old = yield* RawHttp.exchange(yield* port, "GET /health HTTP/1.0\r\n\r\n")
      assert.strictEqual(old.status, 200)
    }).pipe(Effect.scoped))

  it.effect("an expectation other than 100-continue is 417 with the envelope; 100-continue still works", () =>
    Effect.gen(function*() {
      const refused = yield* RawHttp.exchange(yield* port, "GET /health HTTP/1.1\r\nHost: t\r\nExpect: 200-ok\r\n\r\n")
      assertEnvelope(refused, 417, "EXPECTATION_FAILED")

      const connection = yield* RawHttp.connect(yield* port)
      yield* connection.write("GET /health HTTP/1.1\r\nHost: t\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\n")
      assert.strictEqual((yield* connection.response).status, 100)
      yield* connection.write("{}")
      assert.strictEqual((yield* connection.response).status, 200)
    }).pipe(Effect.scoped))

  it.effect("CONNECT is 405 with the envelope, not a closed socket", () =>
    Effect.gen(function*() {
      const response = yield* RawHttp.exchange(
        yield* port,
        "CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n"
      )
      assertEnvelope(response, 405, "METHOD_NOT_ALLOWED")
    }))

  it.effect("malformed heads and smuggling shapes are 400 envelopes", () =>
    Effect.gen(function*() {
      const heads = [
        "GET /health HTTP/1.1\r\nHost: t\r\nBad Header\r\n\r\n",
        "POST /health HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        "POST /health HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd",
        "GET /health HTTP/9.9\r\nHost: t\r\n\r\n",
        "GET\r\n\r\n"
      ]
      for (const head of heads) assertEnvelope(yield* RawHttp.exchange(yield* port, head), 400, "BAD_REQUEST")
    }))
})
