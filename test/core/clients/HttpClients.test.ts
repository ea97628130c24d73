import * as HttpClient from "@effect/platform/HttpClient"
import * as HttpClientError from "@effect/platform/HttpClientError"
import * as HttpClientRequest from "@effect/platform/HttpClientRequest"
import type * as HttpClientResponse from "@effect/platform/HttpClientResponse"
import { assert, describe, it, layer } from "@effect/vitest"
import { ConfigProvider, Duration, Effect, Exit, Schedule, Scope } from "effect"
import * as http from "node:http"
import type { Socket } from "node:net"
import * as HttpClients from "../../../src/core/clients/HttpClients.js"
import * as HttpClientsSettings from "../../../src/core/clients/HttpClientsSettings.js"
import { currentRequestId } from "../../../src/core/runtime/RequestId.js"

/** A loopback server that counts its TCP connections. */
interface TestServer {
  readonly url: (path: string) => string
  /** Connections open right now. */
  readonly open: () => number
  /** Connections accepted so far. */
  readonly accepted: () => number
  /** Most connections open at once so far. */
  readonly peak: () => number
  /** The `x-request-id` header of each request, in arrival order. */
  readonly requestIds: Array<string | undefined>
}

const handle = (req: http.IncomingMessage, res: http.ServerResponse) => {
  const path = new URL(req.url ?? "/", "http://localhost").pathname
  switch (path) {
    case "/hold":
      setTimeout(() => res.end("held"), 30)
      return
    case "/slow":
      setTimeout(() => res.end("slow"), 400)
      return
    case "/hang":
      return
    case "/stall-body":
      res.writeHead(200, { "content-type": "text/plain" })
      res.write("first chunk, then nothing")
      return
    default:
      res.end("ok")
  }
}

const serve: Effect.Effect<TestServer, never, Scope.Scope> = Effect.acquireRelease(
  Effect.async<{ server: http.Server; testServer: TestServer }>((resume) => {
    const sockets = new Set<Socket>()
    let accepted = 0
    let peak = 0
    const requestIds: Array<string | undefined> = []
    const server = http.createServer((req, res) => {
      const id = req.headers["x-request-id"]
      requestIds.push(Array.isArray(id) ? id.join(",") : id)
      handle(req, res)
    })
    server.on("connection", (socket: Socket) => {
      accepted++
      sockets.add(socket)
      peak = Math.max(peak, sockets.size)
      socket.on("close", () => sockets.delete(socket))
    })
    server.listen(0, "127.0.0.1", () => {
      const address = server.address()
      const port = typeof address === "object" && address !== null ? address.port : 0
      resume(Effect.succeed({
        server,
        testServer: {
          url: (path) => `http://127.0.0.1:${port}${path}`,
          open: () => sockets.size,
          accepted: () => accepted,
          peak: () => peak,
          requestIds
        }
      }))
    })
  }),
  ({ server }) =>
    Effect.async<void>((resume) => {
      server.closeAllConnections()
      server.close(() => resume(Effect.void))
    })
).pipe(Effect.map(({ testServer }) => testServer))

/** Polls `check` until it holds, at most 100 times 20 ms apart; the caller asserts afterwards. */
const eventually = (check: () => boolean) =>
  Effect.suspend(() => (check() ? Effect.void : Effect.fail("not yet"))).pipe(
    Effect.retry({ schedule: Schedule.spaced("20 millis"), times: 100 }),
    Effect.ignore
  )

/** The client must fail with its own timeout; the 5 s guard only keeps a broken timeout from hanging the run. */
const expectTimeout = <A>(effect: Effect.Effect<A, HttpClientError.HttpClientError>) =>
  Effect.flip(effect).pipe(
    Effect.timeoutFail({ duration: "5 seconds", onTimeout: () => "the client's timeout never fired" }),
    Effect.tap((error) => assert.isTrue(HttpClients.isTimeout(error), `expected a timeout, got ${error.message}`))
  )

const okText = (response: Effect.Effect<HttpClientResponse.HttpClientResponse, HttpClientError.HttpClientError>) =>
  Effect.flatMap(response, (response) => response.text)

const testLimits: HttpClients.Options = {
  blog: { timeout: Duration.millis(200) },
  supabaseAuth: { timeout: Duration.millis(150) }
}

describe("HttpClients", () => {
  // Live clock: the timeouts under test run on real time.
  layer(HttpClients.layer(testLimits), { excludeTestServices: true })((it) => {
    it.scoped("never opens more connections to a host than the client's limit", () =>
      Effect.gen(function*() {
        const server = yield* serve
        const { scraper } = yield* HttpClients.HttpClients
        const bodies = yield* Effect.forEach(
          Array.from({ length: 50 }, () => server.url("/hold")),
          (url) => okText(scraper.get(url)),
          { concurrency: "unbounded" }
        )
        assert.strictEqual(bodies.length, 50)
        assert.isTrue(bodies.every((body) => body === "held"))
        assert.strictEqual(server.peak(), HttpClients.defaults.scraper.maxConnections)
        assert.strictEqual(server.accepted(), HttpClients.defaults.scraper.maxConnections)
      }))

    it.scoped("reuses an idle connection for sequential requests", () =>
      Effect.gen(function*() {
        const server = yield* serve
        const { general } = yield* HttpClients.HttpClients
        for (let i = 0; i < 5; i++) {
          assert.strictEqual(yield* okText(general.get(server.url("/"))), "ok")
        }
        assert.strictEqual(server.accepted(), 1)
      }))

    it.scoped("keeps at most maxKeepAlive idle connections open after a burst", () =>
      Effect.gen(function*() {
        const server = yield* serve
        const { general } = yield* HttpClients.HttpClients
        const { maxConnections, maxKeepAlive } = HttpClients.defaults.general
        yield* Effect.forEach(
          Array.from({ length: 20 }, () => server.url("/hold")),
          (url) => okText(general.get(url)),
          { concurrency: "unbounded", discard: true }
        )
        assert.strictEqual(server.peak(), maxConnections)
        yield* eventually(() => server.open() <= maxKeepAlive)
        assert.strictEqual(server.open(), maxKeepAlive)
        // The kept connections are the ones used next: no new connection for a follow-up burst of that size.
        yield* Effect.forEach(
          Array.from({ length: maxKeepAlive }, () => server.url("/")),
          (url) => okText(general.get(url)),
          { concurrency: "unbounded", discard: true }
        )
        assert.strictEqual(server.accepted(), maxConnections)
      }))

    it.scoped("fails with a typed timeout when the response is later than the client's default", () =>
      Effect.gen(function*() {
        const server = yield* serve
        const { blog } = yield* HttpClients.HttpClients
        const error = yield* expectTimeout(blog.get(server.url("/hang")))
        assert.instanceOf(error, HttpClientError.RequestError)
        assert.strictEqual(error.reason, "Transport")
      }))

    it.scoped("fails with a typed timeout when the body stalls", () =>
      Effect.gen(function*() {
        const server = yield* serve
        const { blog } = yield* HttpClients.HttpClients
        const response = yield* blog.get(server.url("/stall-body"))
        assert.strictEqual(response.status, 200)
        const error = yield* expectTimeout(response.text)
        assert.instanceOf(error, HttpClientError.ResponseError)
      }))

    it.scoped("a shorter per-request timeout overrides a long default", () =>
      Effect.gen(function*() {
        const server = yield* serve
        const { general } = yield* HttpClients.HttpClients
        const error = yield* expectTimeout(general.get(server.url("/hang")).pipe(HttpClients.withTimeout("200 millis")))
        assert.instanceOf(error, HttpClientError.RequestError)
        assert.strictEqual(error.reason, "Transport")
      }))

    it.scoped("a longer per-request timeout lets a slow response through", () =>
      Effect.gen(function*() {
        const server = yield* serve
        const { supabaseAuth } = yield* HttpClients.HttpClients
        const patient = HttpClient.transformResponse(supabaseAuth, HttpClients.withTimeout("10 seconds"))
        const [, body, derived] = yield* Effect.all([
          expectTimeout(supabaseAuth.get(server.url("/slow"))),
          okText(supabaseAuth.get(server.url("/slow"))).pipe(HttpClients.withTimeout("10 seconds")),
          // The same combinator applied to a client gives it another default.
          okText(patient.get(server.url("/slow")))
        ], { concurrency: "unbounded" })
        assert.strictEqual(body, "slow")
        assert.strictEqual(derived, "slow")
      }))

    it.scoped("sends the current request id as X-Request-ID, and none outside a request", () =>
      Effect.gen(function*() {
        const server = yield* serve
        const { general } = yield* HttpClients.HttpClients
        yield* okText(general.get(server.url("/"))).pipe(Effect.locally(currentRequestId, "abc"))
        yield* okText(general.get(server.url("/")))
        const explicit = HttpClientRequest.get(server.url("/")).pipe(
          HttpClientRequest.setHeader("X-Request-ID", "mine")
        )
        yield* okText(general.execute(explicit)).pipe(Effect.locally(currentRequestId, "abc"))
        assert.deepStrictEqual(server.requestIds, ["abc", undefined, "mine"])
      }))

    it.effect("get returns the named client", () =>
      Effect.gen(function*() {
        const clients = yield* HttpClients.HttpClients
        for (const name of HttpClients.names) {
          assert.strictEqual(clients.get(name), clients[name])
        }
      }))
  })

  it.scopedLive("closes every connection when the layer's scope closes", () =>
    Effect.gen(function*() {
      const server = yield* serve
      const scope = yield* Scope.make()
      const clients = yield* HttpClients.make().pipe(Scope.extend(scope))
      for (const name of HttpClients.names) {
        yield* Effect.forEach(
          Array.from({ length: 3 }, () => server.url("/hold")),
          (url) => okText(clients[name].get(url)),
          { concurrency: "unbounded", discard: true }
        )
      }
      assert.isAbove(server.open(), 0)
      yield* Scope.close(scope, Exit.void)
      yield* eventually(() => server.open() === 0)
      assert.strictEqual(server.open(), 0)
    }))

  it.effect("reads limits from HTTP_<NAME>_* with the default limits", () =>
    Effect.gen(function*() {
      const limits = yield* HttpClientsSettings.config.pipe(
        Effect.withConfigProvider(ConfigProvider.fromMap(
          new Map([
            ["HTTP_BLOG_TIMEOUT", "1.5"],
            ["HTTP_SUPABASE_AUTH_MAX_CONNECTIONS", "20"],
            ["HTTP_SCRAPER_MAX_KEEPALIVE", "0"]
          ])
        ))
      )
      assert.isTrue(Duration.equals(limits.blog.timeout, Duration.millis(1500)))
      assert.strictEqual(limits.supabaseAuth.maxConnections, 20)
      assert.strictEqual(limits.scraper.maxKeepAlive, 0)
      assert.deepStrictEqual(limits.general, HttpClients.defaults.general)

      const invalid = yield* Effect.flip(HttpClientsSettings.config.pipe(
        Effect.withConfigProvider(ConfigProvider.fromMap(new Map([["HTTP_GENERAL_MAX_CONNECTIONS", "0"]])))
      ))
      assert.include(String(invalid), "HTTP_GENERAL_MAX_CONNECTIONS")
    }))
})
