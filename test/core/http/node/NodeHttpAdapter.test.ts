/**
 * Parity of `NodeHttpAdapter.make` with the platform's `NodeHttpServer.make`: the same apps served through both,
 * called over loopback HTTP, must answer alike (and as expected).
 */
import * as NodeHttpServer from "@effect/platform-node/NodeHttpServer"
import * as NodeHttpServerRequest from "@effect/platform-node/NodeHttpServerRequest"
import * as FileSystem from "@effect/platform/FileSystem"
import * as HttpApi from "@effect/platform/HttpApi"
import * as HttpApiBuilder from "@effect/platform/HttpApiBuilder"
import * as HttpApiEndpoint from "@effect/platform/HttpApiEndpoint"
import * as HttpApiGroup from "@effect/platform/HttpApiGroup"
import * as HttpApp from "@effect/platform/HttpApp"
import * as HttpIncomingMessage from "@effect/platform/HttpIncomingMessage"
import * as HttpLayerRouter from "@effect/platform/HttpLayerRouter"
import * as HttpMiddleware from "@effect/platform/HttpMiddleware"
import * as HttpRouter from "@effect/platform/HttpRouter"
import * as HttpServer from "@effect/platform/HttpServer"
import * as HttpServerError from "@effect/platform/HttpServerError"
import * as HttpServerRequest from "@effect/platform/HttpServerRequest"
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import { assert, describe, expect, it, layer } from "@effect/vitest"
import {
  Chunk,
  Context,
  Deferred,
  Duration,
  Effect,
  Exit,
  FastCheck,
  Fiber,
  FiberRef,
  HashSet,
  Layer,
  Logger,
  Option,
  Queue,
  Schema,
  Scope,
  Stream,
  Tracer
} from "effect"
import * as Http from "node:http"
import { Readable } from "node:stream"
import * as WS from "ws"
import * as NodeHttpAdapter from "../../../../src/core/http/node/NodeHttpAdapter.js"
import * as PullBody from "../../../../src/core/http/PullBody.js"
import * as Router from "../../../../src/core/http/Router.js"
import * as RequestId from "../../../../src/core/runtime/RequestId.js"

// What the routes report to the tests (finalizers, interruptions), in order.
const signals = Effect.runSync(Queue.unbounded<string>())
const nextSignal = Queue.take(signals).pipe(
  Effect.timeoutFail({ duration: Duration.seconds(5), onTimeout: () => new Error("no signal") })
)
const noSignalFor = (millis: number) => Effect.flatMap(Effect.sleep(Duration.millis(millis)), () => Queue.poll(signals))

let ejectedScope: Scope.CloseableScope | undefined

// A stream larger than a socket's buffers, so writing it has to wait for the client.
const bigChunk = new Uint8Array(64 * 1024).fill(97)
const bigChunks = 64
// Far more than the socket buffers on both ends hold: with backpressure, a paused client stops the stream early.
const countedChunks = 512
let pulledChunks = 0

class User extends Schema.Class<User>("User")({ id: Schema.Number, name: Schema.String }) {}

class UsersGroup extends HttpApiGroup.make("users")
  .add(
    HttpApiEndpoint.get("get", "/users/:id").setPath(Schema.Struct({ id: Schema.NumberFromString })).addSuccess(User)
  )
  .add(
    HttpApiEndpoint.post("create", "/users").setPayload(Schema.Struct({ name: Schema.String })).addSuccess(User, {
      status: 201
    })
  )
{}

class TestApi extends HttpApi.make("test").add(UsersGroup).prefix("/api") {}

const UsersLive = HttpApiBuilder.group(TestApi, "users", (handlers) =>
  handlers
    .handle("get", ({ path }) => Effect.succeed(new User({ id: path.id, name: "Ada" })))
    .handle("create", ({ payload }) => Effect.succeed(new User({ id: 1, name: payload.name }))))

const request = HttpServerRequest.HttpServerRequest

const reportBodyError = (error: HttpServerError.RequestError) =>
  Queue.offer(signals, `body:${error.reason}:${error.cause instanceof Error ? error.cause.message : "?"}`)

const routes = HttpLayerRouter.addAll([
  HttpLayerRouter.route("GET", "/json", HttpServerResponse.json({ hello: "world", n: 1 })),
  HttpLayerRouter.route("GET", "/text", Effect.succeed(HttpServerResponse.text("plain text", { status: 201 }))),
  HttpLayerRouter.route(
    "GET",
    "/bytes",
    Effect.succeed(HttpServerResponse.uint8Array(new Uint8Array([1, 2, 3, 4]), { contentType: "application/x-test" }))
  ),
  // The request's bytes as a byte body (every byte value, any size around the single-write limit).
  HttpLayerRouter.route(
    "POST",
    "/echo/raw",
    Effect.flatMap(
      request,
      (req) => Effect.map(req.arrayBuffer, (buffer) => HttpServerResponse.uint8Array(new Uint8Array(buffer)))
    )
  ),
  HttpLayerRouter.route(
    "GET",
    "/big-bytes",
    Effect.succeed(HttpServerResponse.uint8Array(new Uint8Array(200 * 1024).fill(98)))
  ),
  HttpLayerRouter.route(
    "GET",
    "/stream",
    Effect.succeed(HttpServerResponse.stream(Stream.range(1, bigChunks).pipe(Stream.map(() => bigChunk))))
  ),
  HttpLayerRouter.route(
    "GET",
    "/stream-counted",
    Effect.sync(() => {
      pulledChunks = 0
      return HttpServerResponse.stream(
        Stream.range(1, countedChunks).pipe(
          Stream.map(() => bigChunk),
          Stream.tap(() => Effect.sync(() => pulledChunks++))
        )
      )
    })
  ),
  HttpLayerRouter.route(
    "GET",
    "/form-data",
    Effect.sync(() => {
      const form = new FormData()
      form.append("a", "1")
      form.append("file", new Blob(["content"], { type: "text/plain" }), "f.txt")
      return HttpServerResponse.formData(form)
    })
  ),
  HttpLayerRouter.route(
    "GET",
    "/readable",
    Effect.sync(() => HttpServerResponse.raw(Readable.from(["a", "b", "c"]), { contentType: "text/plain" }))
  ),
  HttpLayerRouter.route(
    "GET",
    "/cookies",
    Effect.map(request, (req) =>
      HttpServerResponse.unsafeJson(req.cookies).pipe(
        HttpServerResponse.setHeader("set-cookie", "manual=1"),
        HttpServerResponse.unsafeSetCookie("session", "abc", { httpOnly: true, path: "/" }),
        HttpServerResponse.unsafeSetCookie("theme", "dark")
      ))
  ),
  HttpLayerRouter.route(
    "GET",
    "/request",
    Effect.map(request, (req) =>
      HttpServerResponse.unsafeJson({
        url: req.url,
        originalUrl: req.originalUrl,
        method: req.method,
        host: req.headers.host,
        remoteAddress: Option.getOrNull(req.remoteAddress),
        modified: req.modify({ url: "/elsewhere", remoteAddress: "10.0.0.1" }).url,
        modifiedAddress: Option.getOrNull(req.modify({ remoteAddress: "10.0.0.1" }).remoteAddress),
        modifiedHeader: req.modify({ headers: { ...req.headers, "x-extra": "1" } }).headers["x-extra"],
        incomingMessage: NodeHttpServerRequest.toIncomingMessage(req).url,
        text: String(req)
      }))
  ),
  HttpLayerRouter.route(
    "POST",
    "/echo/json",
    Effect.flatMap(request, (req) => Effect.map(req.json, (body) => HttpServerResponse.unsafeJson({ body })))
  ),
  HttpLayerRouter.route(
    "POST",
    "/echo/text",
    Effect.flatMap(request, (req) =>
      // Read twice: the body is read once and shared.
      Effect.zipWith(req.text, req.text, (a, b) => HttpServerResponse.text(`${a.length}:${a === b}:${a.slice(0, 20)}`))
        .pipe(
          Effect.tapError(reportBodyError)
        ))
  ),
  HttpLayerRouter.route(
    "POST",
    "/echo/form",
    Effect.flatMap(request, (req) => Effect.map(req.urlParamsBody, (params) => HttpServerResponse.unsafeJson(params)))
  ),
  HttpLayerRouter.route(
    "POST",
    "/echo/bytes",
    Effect.flatMap(
      request,
      (req) =>
        Effect.map(
          req.arrayBuffer,
          (buffer) => HttpServerResponse.text(`${buffer.byteLength}:${new Uint8Array(buffer)[0]}`)
        ).pipe(
          Effect.tapError(reportBodyError)
        )
    )
  ),
  HttpLayerRouter.route(
    "POST",
    "/echo/stream",
    Effect.flatMap(request, (req) =>
      Effect.map(
        Stream.runFold(req.stream, 0, (total, chunk) => total + chunk.length),
        (total) => HttpServerResponse.text(String(total))
      ))
  ),
  HttpLayerRouter.route(
    "POST",
    "/upload",
    Effect.gen(function*() {
      const req = yield* request
      const form = yield* req.multipart
      const fs = yield* FileSystem.FileSystem
      const file = (form.file as ReadonlyArray<{ readonly name: string; readonly path: string }>)[0]!
      const content = yield* fs.readFileString(file.path)
      return HttpServerResponse.unsafeJson({ field: form.field, name: file.name, content })
    })
  ),
  HttpLayerRouter.route(
    "GET",
    "/pre-response",
    Effect.as(
      HttpApp.appendPreResponseHandler((_req, response) =>
        Effect.succeed(HttpServerResponse.setHeader(response, "x-pre", "1"))
      ),
      HttpServerResponse.text("with pre-response handler")
    )
  ),
  HttpLayerRouter.route(
    "GET",
    "/pre-response-fail",
    Effect.zipRight(
      HttpApp.appendPreResponseHandler((_req, response) =>
        Effect.succeed(HttpServerResponse.setHeader(response, "x-pre", "on-error"))
      ),
      Effect.fail(new Error("after handler"))
    )
  ),
  HttpLayerRouter.route(
    "GET",
    "/pull",
    Effect.sync(() => {
      pulledChunks = 0
      return HttpServerResponse.stream(PullBody.stream(Effect.suspend(() => {
        if (pulledChunks === countedChunks) return Effect.fail(Option.none())
        pulledChunks++
        return Effect.succeed(pulledChunks % 2 === 0 ? Chunk.of(bigChunk) : Chunk.make(bigChunk.subarray(1), bigChunk))
      })))
    })
  ),
  HttpLayerRouter.route(
    "GET",
    "/pull-fails",
    Effect.sync(() => {
      let pulled = 0
      return HttpServerResponse.stream(
        PullBody.stream(
          Effect.suspend(() =>
            pulled++ < 2 ? Effect.succeed(Chunk.of(new Uint8Array([97, 98]))) : Effect.fail(Option.some("pull failed"))
          )
        )
      )
    })
  ),
  HttpLayerRouter.route("GET", "/fail", Effect.fail(new Error("boom"))),
  HttpLayerRouter.route("GET", "/die", Effect.die("defect")),
  HttpLayerRouter.route("GET", "/die-response", Effect.die(HttpServerResponse.text("teapot", { status: 418 }))),
  HttpLayerRouter.route(
    "GET",
    "/slow",
    Effect.zipRight(Queue.offer(signals, "slow:started"), Effect.never).pipe(
      Effect.onInterrupt((interruptors) =>
        Queue.offer(signals, `slow:interrupted:${HashSet.has(interruptors, HttpServerError.clientAbortFiberId)}`)
      )
    )
  ),
  HttpLayerRouter.route(
    "GET",
    "/scope",
    Effect.gen(function*() {
      const nodeResponse = NodeHttpServerRequest.toServerResponse(yield* request)
      yield* Effect.addFinalizer((exit) =>
        Queue.offer(signals, `scope:closed:ended=${nodeResponse.writableEnded}:${exit._tag}`)
      )
      return HttpServerResponse.text("scoped")
    })
  ),
  HttpLayerRouter.route(
    "GET",
    "/eject",
    Effect.gen(function*() {
      const scope = yield* Effect.scope
      HttpApp.ejectDefaultScopeClose(scope)
      ejectedScope = scope as Scope.CloseableScope
      yield* Effect.addFinalizer(() => Queue.offer(signals, "eject:closed"))
      return HttpServerResponse.text("ejected")
    })
  ),
  HttpLayerRouter.route(
    "GET",
    "/eject-stream",
    Effect.gen(function*() {
      yield* Effect.addFinalizer(() => Queue.offer(signals, "eject-stream:closed"))
      const body = Stream.make("a", "b").pipe(
        Stream.tap(() => Effect.sleep(Duration.millis(20))),
        Stream.encodeText,
        Stream.ensuring(Queue.offer(signals, "eject-stream:body-done"))
      )
      return yield* Effect.sync(() => HttpApp.unsafeEjectStreamScope(HttpServerResponse.stream(body)))
    })
  ),
  HttpLayerRouter.route(
    "GET",
    "/ws",
    Effect.gen(function*() {
      const socket = yield* HttpServerRequest.upgrade
      const write = yield* socket.writer
      yield* socket.runRaw((data) => write(typeof data === "string" ? `echo:${data}` : data))
      return HttpServerResponse.empty()
    })
  ),
  HttpLayerRouter.route(
    "GET",
    "/span",
    Effect.map(Effect.option(Effect.currentSpan), (span) =>
      HttpServerResponse.unsafeJson(
        Option.match(span, {
          onNone: () => ({ traced: false }),
          onSome: (span) => ({
            traced: true,
            traceId: span.traceId,
            parent: Option.getOrNull(Option.map(span.parent, (parent) => parent.spanId)),
            name: span.name,
            kind: span.kind
          })
        })
      ))
  )
])

const apiRoutes = HttpLayerRouter.addHttpApi(TestApi).pipe(Layer.provide(UsersLive))

/** What routing hands a handler: the route, its parameters, the query, the request as the handler sees it. */
const routeReport = Effect.gen(function*() {
  const route = yield* HttpRouter.RouteContext
  const search = yield* HttpServerRequest.ParsedSearchParams
  const request = yield* HttpServerRequest.HttpServerRequest
  return HttpServerResponse.unsafeJson({
    path: route.route.path,
    params: route.params,
    search,
    url: request.url,
    method: request.method
  })
})

const addHeader =
  (name: string, value: string) => <E, R>(effect: Effect.Effect<HttpServerResponse.HttpServerResponse, E, R>) =>
    Effect.map(effect, HttpServerResponse.setHeader(name, value))

/** Routing's own features: parameters, queries, any method, prefixes, route middleware, global middleware. */
const routingRoutes = Layer.mergeAll(
  HttpLayerRouter.addAll([
    HttpLayerRouter.route("GET", "/routing/:a/:b", routeReport),
    HttpLayerRouter.route("GET", "/routing/fixed/path", routeReport),
    HttpLayerRouter.route("*", "/routing-any", routeReport),
    HttpLayerRouter.route("GET", "/routing-wild/*", routeReport)
  ]),
  HttpLayerRouter.addAll([HttpLayerRouter.route("GET", "/inner/:id", routeReport)], { prefix: "/prefixed" }),
  HttpLayerRouter.use((router) => router.prefixed("/outer").prefixed("/nested").add("GET", "/:id", routeReport)),
  HttpLayerRouter.add("GET", "/routing-mw", routeReport).pipe(
    Layer.provide(HttpLayerRouter.middleware(addHeader("x-route-middleware", "inner")).layer),
    Layer.provide(HttpLayerRouter.middleware(addHeader("x-route-middleware-2", "outer")).layer)
  ),
  // Global: sees every request with its whole URL, around the route's own middleware.
  HttpLayerRouter.middleware(
    (effect) =>
      Effect.flatMap(HttpServerRequest.HttpServerRequest, (request) =>
        Effect.map(
          effect,
          HttpServerResponse.setHeader("x-global-saw", `${request.method} ${request.url}`)
        )),
    { global: true }
  )
)

const maxBodySize = Layer.succeed(HttpIncomingMessage.MaxBodySize, Option.some(FileSystem.Size(64 * 1024)))

interface Ports {
  readonly platform: number
  readonly lean: number
}
class Servers extends Context.Tag("test/NodeHttpAdapter/Servers")<Servers, Ports>() {}

const listen = { port: 0, host: "127.0.0.1" }
const serverLayers = {
  platform: NodeHttpServer.layer(() => Http.createServer(), listen),
  lean: NodeHttpAdapter.layer(() => Http.createServer(), listen)
}

const portOf = (context: Context.Context<HttpServer.HttpServer>) =>
  (Context.get(context, HttpServer.HttpServer).address as HttpServer.TcpAddress).port

type Served = Layer.Layer<
  never,
  unknown,
  HttpServer.HttpServer | Layer.Layer.Success<typeof NodeHttpServer.layerContext>
>
type Setup = Served | { readonly platform: Served; readonly lean: Served }

/** Serves `app` (a layer that needs an `HttpServer`) once on each adapter, or each side's own app on its adapter. */
const serveBoth = (app: Setup): Effect.Effect<Ports, unknown, Scope.Scope> =>
  Effect.gen(function*() {
    const apps = "platform" in app ? app : { platform: app, lean: app }
    const portFor = (app: Served, server: typeof serverLayers.lean) =>
      Effect.map(Layer.build(Layer.provideMerge(app, server)), portOf)
    return {
      platform: yield* portFor(apps.platform, serverLayers.platform),
      lean: yield* portFor(apps.lean, serverLayers.lean)
    }
  })

const app = Layer.mergeAll(routes, apiRoutes, routingRoutes)
const fast = { disableLogger: true, disableListenLog: true } as const

/**
 * The setups each test runs in: the platform's router served by both adapters (production-like and with the
 * platform's defaults), and the platform's router on its own server beside the core's `Router` on the lean adapter.
 */
const setups = {
  // Ours: no logger middleware, tracer off (the fast path).
  ours: HttpLayerRouter.serve(app, fast).pipe(
    Layer.provide(maxBodySize),
    HttpMiddleware.withTracerDisabledWhen(() => true)
  ),
  // The platform's defaults: the logger middleware and the tracer (its lines are dropped).
  defaults: HttpLayerRouter.serve(app, { disableListenLog: true }).pipe(
    Layer.provide(maxBodySize),
    Layer.provide(Logger.replace(Logger.defaultLogger, Logger.none))
  ),
  // The core's router (routed by the adapter ahead of the fiber) against the platform's router and server.
  router: {
    platform: HttpLayerRouter.serve(app, fast).pipe(
      Layer.provide(maxBodySize),
      HttpMiddleware.withTracerDisabledWhen(() => true)
    ),
    lean: Router.serve(app, fast).pipe(Layer.provide(maxBodySize), HttpMiddleware.withTracerDisabledWhen(() => true))
  },
  // The core's router with the tracer and the platform's logger: the adapter leaves routing to the fiber.
  "router, traced": {
    platform: HttpLayerRouter.serve(app, { disableListenLog: true }).pipe(
      Layer.provide(maxBodySize),
      Layer.provide(Logger.replace(Logger.defaultLogger, Logger.none))
    ),
    lean: Router.serve(app, { disableListenLog: true }).pipe(
      Layer.provide(maxBodySize),
      Layer.provide(Logger.replace(Logger.defaultLogger, Logger.none))
    )
  }
} satisfies Record<string, Setup>

interface Reply {
  readonly status: number
  readonly headers: Record<string, string | Array<string> | undefined>
  readonly body: Buffer
}

interface Call {
  readonly method?: string
  readonly path: string
  readonly headers?: Record<string, string>
  readonly body?: string | Uint8Array
}

const call = (port: number, options: Call): Effect.Effect<Reply, Error> =>
  Effect.async<Reply, Error>((resume) => {
    const req = Http.request(
      {
        host: "127.0.0.1",
        port,
        method: options.method ?? "GET",
        path: options.path,
        headers: options.headers,
        agent: false
      },
      (res) => {
        const chunks: Array<Buffer> = []
        res.on("data", (chunk: Buffer) => chunks.push(chunk))
        res.on("end", () => {
          const { date: _date, ...headers } = res.headers
          resume(Effect.succeed({ status: res.statusCode!, headers, body: Buffer.concat(chunks) }))
        })
        res.on("error", (error) => resume(Effect.fail(error)))
      }
    )
    req.on("error", (error) => resume(Effect.fail(error)))
    req.end(options.body)
  })

/** Calls both servers the same way; their replies must be equal. Returns the (lean) reply for further checks. */
const compare = (ports: Ports, options: Call) =>
  Effect.gen(function*() {
    const platform = yield* Effect.either(call(ports.platform, options))
    const lean = yield* Effect.either(call(ports.lean, options))
    if (platform._tag === "Left" || lean._tag === "Left") {
      assert.strictEqual(
        String(lean._tag === "Left" ? lean.left : "ok"),
        String(platform._tag === "Left" ? platform.left : "ok")
      )
      return yield* Effect.fail(lean._tag === "Left" ? lean.left : new Error("the platform failed"))
    }
    expect({ ...lean.right, body: lean.right.body.toString("latin1") }).toEqual({
      ...platform.right,
      body: platform.right.body.toString("latin1")
    })
    return lean.right
  })

const bodyText = (reply: Reply) => reply.body.toString("utf8")
const bodyJson = (reply: Reply) => JSON.parse(bodyText(reply)) as unknown

for (const [setupName, setup] of Object.entries(setups)) {
  // Real clock: the routes run on the servers' runtime, built here.
  layer(Layer.scoped(Servers, serveBoth(setup)), { excludeTestServices: true })(`parity (${setupName})`, (it) => {
    it.effect("JSON, text and byte bodies", () =>
      Effect.gen(function*() {
        const ports = yield* Servers
        const json = yield* compare(ports, { path: "/json" })
        assert.strictEqual(json.status, 200)
        assert.strictEqual(json.headers["content-type"], "application/json")
        assert.deepStrictEqual(bodyJson(json), { hello: "world", n: 1 })
        const text = yield* compare(ports, { path: "/text" })
        assert.strictEqual(text.status, 201)
        assert.strictEqual(bodyText(text), "plain text")
        const bytes = yield* compare(ports, { path: "/bytes" })
        assert.strictEqual(bytes.headers["content-type"], "application/x-test")
        assert.deepStrictEqual([...bytes.body], [1, 2, 3, 4])
        const big = yield* compare(ports, { path: "/big-bytes" })
        assert.strictEqual(big.body.length, 200 * 1024)
      }))

    it.effect.prop(
      "a byte body comes back byte for byte, small or large, as the platform sends it",
      [FastCheck.uint8Array({ minLength: 0, maxLength: 6 * 1024 })],
      ([body]) =>
        Effect.gen(function*() {
          const ports = yield* Servers
          const reply = yield* compare(ports, { method: "POST", path: "/echo/raw", body })
          assert.strictEqual(reply.status, 200)
          if (body.length > 0) assert.strictEqual(reply.headers["content-length"], String(body.length))
          assert.deepStrictEqual(new Uint8Array(reply.body), body)
        }),
      { fastCheck: { numRuns: 40 } }
    )

    it.effect("stream bodies, larger than the socket buffer", () =>
      Effect.gen(function*() {
        const ports = yield* Servers
        const reply = yield* compare(ports, { path: "/stream" })
        assert.strictEqual(reply.headers["transfer-encoding"], "chunked")
        assert.strictEqual(reply.body.length, bigChunk.length * bigChunks)
        assert.isTrue(reply.body.every((byte) => byte === 97))
        const readable = yield* compare(ports, { path: "/readable" })
        assert.strictEqual(bodyText(readable), "abc")
      }))

    /** Reads `path` after holding the response paused for a while: how many chunks the server pulled meanwhile. */
    const readAfterPause = (port: number, path: string) =>
      Effect.async<{ pulled: number; received: number }, Error>((resume) => {
        Http.get({ host: "127.0.0.1", port, path, agent: false }, (res) => {
          res.pause()
          setTimeout(() => {
            const pulled = pulledChunks
            let received = 0
            res.on("data", (chunk: Buffer) => (received += chunk.length))
            res.on("end", () => resume(Effect.succeed({ pulled, received })))
            res.resume()
          }, 300)
        }).on("error", (error) => resume(Effect.fail(error)))
      })

    it.effect("a pull body (PullBody) is served as its stream is, with backpressure, and ends on a failed pull", () =>
      Effect.gen(function*() {
        const ports = yield* Servers
        const failed = yield* compare(ports, { path: "/pull-fails" })
        assert.strictEqual(bodyText(failed), "abab")
        for (const port of [ports.platform, ports.lean]) {
          const { pulled, received } = yield* readAfterPause(port, "/pull")
          assert.isBelow(pulled, countedChunks / 2)
          assert.strictEqual(received, bigChunk.length * countedChunks * 1.5 - countedChunks / 2)
        }
      }))

    it.effect("FormData bodies", () =>
      Effect.gen(function*() {
        const ports = yield* Servers
        for (const port of [ports.platform, ports.lean]) {
          const reply = yield* call(port, { path: "/form-data" })
          const form = yield* Effect.promise(() =>
            new Response(reply.body, { headers: { "content-type": String(reply.headers["content-type"]) } }).formData()
          )
          assert.strictEqual(form.get("a"), "1")
          const file = form.get("file") as File
          assert.strictEqual(file.name, "f.txt")
          assert.strictEqual(yield* Effect.promise(() => file.text()), "content")
        }
      }))

    it.effect("a slow reader gets the whole stream (backpressure)", () =>
      Effect.gen(function*() {
        const ports = yield* Servers
        for (const port of [ports.platform, ports.lean]) {
          const received = yield* Effect.async<number, Error>((resume) => {
            Http.get({ host: "127.0.0.1", port, path: "/stream", agent: false }, (res) => {
              let total = 0
              res.pause()
              setTimeout(() => {
                res.on("data", (chunk: Buffer) => {
                  total += chunk.length
                  // Read slowly so the server's writes have to wait for `drain`.
                  res.pause()
                  setTimeout(() => res.resume(), 1)
                })
                res.on("end", () => resume(Effect.succeed(total)))
                res.resume()
              }, 100)
            }).on("error", (error) => resume(Effect.fail(error)))
          })
          assert.strictEqual(received, bigChunk.length * bigChunks)
        }
      }))

    it.effect("a client that stops reading stops the stream (backpressure)", () =>
      Effect.gen(function*() {
        const ports = yield* Servers
        for (const port of [ports.platform, ports.lean]) {
          const { pulled, received } = yield* readAfterPause(port, "/stream-counted")
          assert.isBelow(pulled, countedChunks / 2)
          assert.strictEqual(received, bigChunk.length * countedChunks)
        }
      }))

    it.effect("HEAD has the headers and no body", () =>
      Effect.gen(function*() {
        const ports = yield* Servers
        const reply = yield* compare(ports, { method: "HEAD", path: "/text" })
        assert.strictEqual(reply.status, 201)
        assert.strictEqual(reply.headers["content-length"], "10")
        assert.strictEqual(reply.body.length, 0)
        const json = yield* compare(ports, { method: "HEAD", path: "/json" })
        assert.strictEqual(json.body.length, 0)
      }))

    it.effect("routing: parameters, queries, any method, prefixes, route and global middleware", () =>
      Effect.gen(function*() {
        const ports = yield* Servers
        const report = (reply: Reply) => bodyJson(reply) as Record<string, unknown>
        const params = yield* compare(ports, { path: "/routing/one/two%20three?q=1&q=2&r=x" })
        assert.deepStrictEqual(report(params), {
          path: "/routing/:a/:b",
          params: { a: "one", b: "two three" },
          search: { q: ["1", "2"], r: "x" },
          url: "/routing/one/two%20three?q=1&q=2&r=x",
          method: "GET"
        })
        assert.strictEqual(params.headers["x-global-saw"], "GET /routing/one/two%20three?q=1&q=2&r=x")
        const fixed = yield* compare(ports, { path: "//routing/fixed/path" })
        assert.strictEqual(report(fixed).path, "/routing/fixed/path")
        for (const method of ["GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"]) {
          const any = yield* compare(ports, {
            method,
            path: "/routing-any?m=1",
            ...(method === "GET" ? {} : { body: "" })
          })
          assert.strictEqual(report(any).method, method)
        }
        const wild = yield* compare(ports, { path: "/routing-wild/a/b/c" })
        assert.deepStrictEqual(report(wild).params, { "*": "a/b/c" })
        // Under a prefix the handler sees the URL without it; global middleware sees it whole.
        const prefixed = yield* compare(ports, { path: "/prefixed/inner/7?x=1" })
        assert.deepStrictEqual(report(prefixed), {
          path: "/prefixed/inner/:id",
          params: { id: "7" },
          search: { x: "1" },
          url: "/inner/7?x=1",
          method: "GET"
        })
        assert.strictEqual(prefixed.headers["x-global-saw"], "GET /prefixed/inner/7?x=1")
        // The platform joins nested prefixes innermost first: routed alike, whichever order that is.
        const nested = [
          yield* compare(ports, { path: "/outer/nested/9" }),
          yield* compare(ports, { path: "/nested/outer/9" })
        ]
        assert.deepStrictEqual(nested.map((reply) => reply.status).sort(), [200, 404])
        const middleware = yield* compare(ports, { path: "/routing-mw" })
        assert.strictEqual(middleware.headers["x-route-middleware"], "inner")
        assert.strictEqual(middleware.headers["x-route-middleware-2"], "outer")
        assert.strictEqual(middleware.headers["x-global-saw"], "GET /routing-mw")
        const head = yield* compare(ports, { method: "HEAD", path: "/routing/a/b" })
        assert.strictEqual(head.status, 200)
        assert.strictEqual(head.body.length, 0)
        const unknown = yield* compare(ports, { path: "/routing/only-one" })
        assert.strictEqual(unknown.status, 404)
        const wrongMethod = yield* compare(ports, { method: "POST", path: "/routing/a/b", body: "" })
        assert.strictEqual(wrongMethod.status, 404)
      }))

    it.effect("cookies in, set-cookie out", () =>
      Effect.gen(function*() {
        const ports = yield* Servers
        const reply = yield* compare(ports, { path: "/cookies", headers: { cookie: "a=1; b=two%20words" } })
        assert.deepStrictEqual(bodyJson(reply), { a: "1", b: "two words" })
        assert.deepStrictEqual(reply.headers["set-cookie"], ["session=abc; Path=/; HttpOnly", "theme=dark", "manual=1"])
      }))

    it.effect("request url, method, headers, remote address, modify", () =>
      Effect.gen(function*() {
        const ports = yield* Servers
        const reply = yield* call(ports.lean, { path: "/request?x=1" })
        const platform = yield* call(ports.platform, { path: "/request?x=1" })
        const body = bodyJson(reply) as Record<string, unknown>
        assert.deepStrictEqual(body, {
          ...(bodyJson(platform) as Record<string, unknown>),
          host: `127.0.0.1:${ports.lean}`
        })
        assert.deepStrictEqual(body, {
          url: "/request?x=1",
          originalUrl: "/request?x=1",
          method: "GET",
          host: `127.0.0.1:${ports.lean}`,
          remoteAddress: "127.0.0.1",
          modified: "/elsewhere",
          modifiedAddress: "10.0.0.1",
          modifiedHeader: "1",
          incomingMessage: "/request?x=1",
          text: "ServerRequest(GET /request?x=1)"
        })
      }))

    it.effect("request bodies: json, text, urlencoded, bytes, stream", () =>
      Effect.gen(function*() {
        const ports = yield* Servers
        const json = yield* compare(ports, {
          method: "POST",
          path: "/echo/json",
          headers: { "content-type": "application/json" },
          body: JSON.stringify({ a: [1, 2], b: "c" })
        })
        assert.deepStrictEqual(bodyJson(json), { body: { a: [1, 2], b: "c" } })
        const empty = yield* compare(ports, { method: "POST", path: "/echo/json", body: "" })
        assert.deepStrictEqual(bodyJson(empty), { body: null })
        const malformed = yield* compare(ports, { method: "POST", path: "/echo/json", body: "{nope" })
        assert.strictEqual(malformed.status, 400)
        const text = yield* compare(ports, { method: "POST", path: "/echo/text", body: "hello body" })
        assert.strictEqual(bodyText(text), "10:true:hello body")
        const form = yield* compare(ports, {
          method: "POST",
          path: "/echo/form",
          headers: { "content-type": "application/x-www-form-urlencoded" },
          body: "a=1&b=x%20y&a=2"
        })
        assert.deepStrictEqual(bodyJson(form), [["a", "1"], ["b", "x y"], ["a", "2"]])
        const bytes = yield* compare(ports, { method: "POST", path: "/echo/bytes", body: new Uint8Array([7, 8, 9]) })
        assert.strictEqual(bodyText(bytes), "3:7")
        const streamed = yield* compare(ports, { method: "POST", path: "/echo/stream", body: "x".repeat(100_000) })
        assert.strictEqual(bodyText(streamed), "100000")
      }))

    it.effect("a body over MaxBodySize fails; ours answers where the platform resets the connection", () =>
      Effect.gen(function*() {
        const ports = yield* Servers
        const big = "x".repeat(100 * 1024)
        for (const path of ["/echo/text", "/echo/bytes"]) {
          const outcomes: Array<string> = []
          for (const port of [ports.platform, ports.lean]) {
            const reply = yield* Effect.either(call(port, { method: "POST", path, body: big }))
            outcomes.push(reply._tag === "Right" ? String(reply.right.status) : "reset")
            assert.strictEqual(yield* nextSignal, "body:Decode:maxBytes exceeded")
          }
          // The platform destroys the request stream at the limit, so its client sees a reset; ours drops the rest
          // of the body and the client reads the error response.
          assert.deepStrictEqual(outcomes, ["reset", "400"])
        }
      }))

    it.effect("multipart upload", () =>
      Effect.gen(function*() {
        const ports = yield* Servers
        const form = new FormData()
        form.append("field", "value")
        form.append("file", new Blob(["file content"], { type: "text/plain" }), "notes.txt")
        const encoded = new Response(form)
        const body = new Uint8Array(yield* Effect.promise(() => encoded.arrayBuffer()))
        const reply = yield* compare(ports, {
          method: "POST",
          path: "/upload",
          headers: { "content-type": encoded.headers.get("content-type")! },
          body
        })
        assert.deepStrictEqual(bodyJson(reply), { field: "value", name: "notes.txt", content: "file content" })
      }))

    it.effect("pre-response handlers add headers, on success and on failure", () =>
      Effect.gen(function*() {
        const ports = yield* Servers
        const ok = yield* compare(ports, { path: "/pre-response" })
        assert.strictEqual(ok.headers["x-pre"], "1")
        const failed = yield* compare(ports, { path: "/pre-response-fail" })
        assert.strictEqual(failed.status, 500)
        assert.strictEqual(failed.headers["x-pre"], "on-error")
      }))

    it.effect("failures, defects, responses as defects, unknown routes, HttpApi", () =>
      Effect.gen(function*() {
        const ports = yield* Servers
        assert.strictEqual((yield* compare(ports, { path: "/fail" })).status, 500)
        assert.strictEqual((yield* compare(ports, { path: "/die" })).status, 500)
        const teapot = yield* compare(ports, { path: "/die-response" })
        assert.strictEqual(teapot.status, 418)
        assert.strictEqual(bodyText(teapot), "teapot")
        assert.strictEqual((yield* compare(ports, { path: "/nowhere" })).status, 404)
        const user = yield* compare(ports, { path: "/api/users/7" })
        assert.deepStrictEqual(bodyJson(user), { id: 7, name: "Ada" })
        const created = yield* compare(ports, {
          method: "POST",
          path: "/api/users",
          headers: { "content-type": "application/json" },
          body: JSON.stringify({ name: "Grace" })
        })
        assert.strictEqual(created.status, 201)
        assert.deepStrictEqual(bodyJson(created), { id: 1, name: "Grace" })
        const invalid = yield* compare(ports, { path: "/api/users/seven" })
        assert.strictEqual(invalid.status, 400)
      }))

    it.effect("a client that goes away interrupts the handler, whose finalizers run", () =>
      Effect.gen(function*() {
        const ports = yield* Servers
        for (const port of [ports.platform, ports.lean]) {
          const req = Http.get({ host: "127.0.0.1", port, path: "/slow", agent: false })
          req.on("error", () => {})
          assert.strictEqual(yield* nextSignal, "slow:started")
          req.destroy()
          assert.strictEqual(yield* nextSignal, "slow:interrupted:true")
        }
      }))

    it.effect("the request scope closes after the response is written", () =>
      Effect.gen(function*() {
        const ports = yield* Servers
        for (const port of [ports.platform, ports.lean]) {
          assert.strictEqual(bodyText(yield* call(port, { path: "/scope" })), "scoped")
          assert.strictEqual(yield* nextSignal, "scope:closed:ended=true:Success")
        }
      }))

    it.effect("an ejected scope stays open; an ejected stream scope closes after the body", () =>
      Effect.gen(function*() {
        const ports = yield* Servers
        for (const port of [ports.platform, ports.lean]) {
          ejectedScope = undefined
          assert.strictEqual(bodyText(yield* call(port, { path: "/eject" })), "ejected")
          assert.isTrue(Option.isNone(yield* noSignalFor(50)))
          yield* Scope.close(ejectedScope!, Exit.void)
          assert.strictEqual(yield* nextSignal, "eject:closed")

          assert.strictEqual(bodyText(yield* call(port, { path: "/eject-stream" })), "ab")
          assert.strictEqual(yield* nextSignal, "eject-stream:body-done")
          assert.strictEqual(yield* nextSignal, "eject-stream:closed")
        }
      }))

    it.effect("WebSocket echo through HttpServerRequest.upgrade", () =>
      Effect.gen(function*() {
        const ports = yield* Servers
        for (const port of [ports.platform, ports.lean]) {
          const echoed = yield* Effect.async<string, Error>((resume) => {
            const ws = new WS.WebSocket(`ws://127.0.0.1:${port}/ws`)
            ws.on("open", () => ws.send("hi"))
            ws.on("message", (data) => {
              ws.close(1000)
              resume(Effect.succeed(String(data)))
            })
            ws.on("error", (error) => resume(Effect.fail(error)))
          })
          assert.strictEqual(echoed, "echo:hi")
        }
      }))

    it.effect("an upgrade request answered with a plain response", () =>
      Effect.gen(function*() {
        const ports = yield* Servers
        const outcomes: Array<string> = []
        for (const port of [ports.platform, ports.lean]) {
          outcomes.push(
            yield* Effect.async<string>((resume) => {
              const ws = new WS.WebSocket(`ws://127.0.0.1:${port}/text`)
              ws.on("unexpected-response", (_req, res) => {
                let body = ""
                res.on("data", (chunk: Buffer) => (body += chunk))
                res.on("end", () => resume(Effect.succeed(`${res.statusCode}:${body}`)))
              })
              ws.on("error", (error) => resume(Effect.succeed(`error:${error.message}`)))
            })
          )
        }
        assert.deepStrictEqual(outcomes, ["201:plain text", "201:plain text"])
      }))
  })
}

describe("NodeHttpAdapter", () => {
  it.scoped("spans: off when disabled; on by default, continuing the caller's trace", () =>
    Effect.gen(function*() {
      const off = yield* serveBoth(setups.ours)
      const untraced = yield* compare(off, { path: "/span" })
      assert.deepStrictEqual(bodyJson(untraced), { traced: false })

      const on = yield* serveBoth(setups.defaults)
      const traceId = "0af7651916cd43dd8448eb211c80319c"
      const parent = "b7ad6b7169203331"
      const headers = { traceparent: `00-${traceId}-${parent}-01` }
      const replies = [
        yield* call(on.platform, { path: "/span", headers }),
        yield* call(on.lean, { path: "/span", headers })
      ]
      for (const reply of replies) {
        assert.deepStrictEqual(bodyJson(reply), {
          traced: true,
          traceId,
          parent,
          name: "http.server GET",
          kind: "server"
        })
      }
    }))

  it.scoped("spans record the request and the response", () =>
    Effect.gen(function*() {
      const spans: Array<Tracer.Span> = []
      const recording = Tracer.make({
        span: (name, parent, context, links, startTime, kind, options) => {
          const span = Effect.runSync(
            Effect.map(Effect.tracer, (tracer) => tracer.span(name, parent, context, links, startTime, kind, options))
          )
          spans.push(span)
          return span
        },
        context: (f) => f()
      })
      const ports = yield* serveBoth(setups.defaults.pipe(Layer.provide(Layer.setTracer(recording))))
      for (const port of [ports.platform, ports.lean]) {
        spans.length = 0
        yield* call(port, { path: "/text?q=1", headers: { "user-agent": "parity", authorization: "secret" } })
        const server = spans.find((span) => span.kind === "server")!
        const attributes = Object.fromEntries(server.attributes)
        assert.strictEqual(attributes["http.request.method"], "GET")
        assert.strictEqual(attributes["url.path"], "/text")
        assert.strictEqual(attributes["url.query"], "q=1")
        assert.strictEqual(attributes["user_agent.original"], "parity")
        assert.strictEqual(attributes["http.request.header.authorization"], "<redacted>")
        assert.strictEqual(attributes["http.response.status_code"], 201)
        assert.strictEqual(attributes["http.route"], "/text")
      }
    }))

  it.scoped("middleware given to serve runs after the response; a header it sets is lost", () =>
    Effect.gen(function*() {
      const seen = yield* Deferred.make<number>()
      const lateHeader: HttpMiddleware.HttpMiddleware = (app) =>
        Effect.tap(
          Effect.map(app, HttpServerResponse.setHeader("x-late", "1")),
          (response) => Deferred.succeed(seen, response.status)
        )
      const app = HttpServer.serve(Effect.succeed(HttpServerResponse.text("app")), lateHeader)
      const ports = yield* serveBoth(app.pipe(HttpMiddleware.withTracerDisabledWhen(() => true)))
      const reply = yield* compare(ports, { path: "/" })
      assert.strictEqual(bodyText(reply), "app")
      assert.isUndefined(reply.headers["x-late"])
      assert.strictEqual(yield* Deferred.await(seen), 200)
    }))

  it.scoped("the core's Router is routed by the adapter ahead of the fiber, unless the request is traced", () =>
    Effect.gen(function*() {
      // Only on the adapter's path does a global middleware find the route already in its context.
      const routedAhead = HttpLayerRouter.middleware(
        (effect) =>
          Effect.flatMap(
            Effect.serviceOption(HttpRouter.RouteContext),
            (route) => Effect.map(effect, HttpServerResponse.setHeader("x-routed-ahead", String(Option.isSome(route))))
          ),
        { global: true }
      )
      const app = Layer.mergeAll(HttpLayerRouter.add("GET", "/here/:id", routeReport), routedAhead)
      const ahead = yield* serveBoth(Router.serve(app, fast).pipe(HttpMiddleware.withTracerDisabledWhen(() => true)))
      const reply = yield* call(ahead.lean, { path: "/here/1" })
      assert.strictEqual(reply.headers["x-routed-ahead"], "true")
      assert.deepStrictEqual((bodyJson(reply) as { params: unknown }).params, { id: "1" })
      // Any other server runs the router's own effect, as the platform's does.
      assert.strictEqual((yield* call(ahead.platform, { path: "/here/1" })).headers["x-routed-ahead"], "false")
      const traced = yield* serveBoth(Router.serve(app, fast))
      assert.strictEqual((yield* call(traced.lean, { path: "/here/1" })).headers["x-routed-ahead"], "false")
    }))

  it.scoped("a request's fiber holds the server's refs, forked as any fiber forks them", () =>
    Effect.gen(function*() {
      const plain = FiberRef.unsafeMake("unset")
      // A ref with a fork of its own: the request's fiber gets the value forked once, as from `Runtime.runFork`.
      const forking = FiberRef.unsafeMake(0, { fork: (n) => n + 1 })
      const report = HttpServer.serve(Effect.gen(function*() {
        return HttpServerResponse.text(`${yield* FiberRef.get(plain)} ${yield* FiberRef.get(forking)}`)
      })).pipe(HttpMiddleware.withTracerDisabledWhen(() => true))
      const plainOnly = yield* serveBoth(report.pipe(Layer.provide(Layer.locallyScoped(plain, "server"))))
      const both = yield* serveBoth(
        report.pipe(Layer.provide(Layer.merge(Layer.locallyScoped(plain, "server"), Layer.locallyScoped(forking, 10))))
      )
      assert.strictEqual(bodyText(yield* compare(plainOnly, { path: "/" })), "server 0")
      assert.strictEqual(bodyText(yield* compare(both, { path: "/" })), "server 11")
    }))

  it.scoped("asked to, the adapter gives each request its id as its fiber is made, as the request pipeline would", () =>
    Effect.gen(function*() {
      // What the handler and a fiber it forks see, and what the request says it was given.
      const report = HttpServer.serve(Effect.gen(function*() {
        const request = yield* HttpServerRequest.HttpServerRequest
        const child = yield* Effect.fork(FiberRef.get(RequestId.currentRequestId))
        return yield* HttpServerResponse.json({
          ref: yield* FiberRef.get(RequestId.currentRequestId),
          child: yield* Fiber.join(child),
          preset: (request as unknown as { exchange: { requestId?: string } }).exchange.requestId ?? null
        })
      })).pipe(HttpMiddleware.withTracerDisabledWhen(() => true))
      const portWith = (options: NodeHttpAdapter.Options) =>
        Effect.map(
          Layer.build(Layer.provideMerge(report, NodeHttpAdapter.layer(() => Http.createServer(), listen, options))),
          portOf
        )
      const withIds = yield* portWith({ requestIds: true })
      const without = yield* portWith({})
      const seen = (port: number, headers: Record<string, string>) =>
        Effect.map(call(port, { path: "/", headers }), (reply) => bodyJson(reply) as Record<string, string | null>)
      assert.deepStrictEqual(yield* seen(withIds, { "x-request-id": "abc-1" }), {
        ref: "abc-1",
        child: "abc-1",
        preset: "abc-1"
      })
      const fresh = yield* seen(withIds, { "x-request-id": "not safe!" })
      const id = fresh.ref ?? ""
      assert.match(id, /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/)
      assert.deepStrictEqual(fresh, { ref: id, child: id, preset: id })
      assert.deepStrictEqual(yield* seen(without, { "x-request-id": "abc-1" }), { ref: "", child: "", preset: null })
    }))

  it.scoped("a preroute that throws leaves the request to the app, and the server keeps serving", () =>
    Effect.gen(function*() {
      const app = NodeHttpAdapter.withPreroute(
        Effect.succeed(HttpServerResponse.text("the app's own")),
        (request) => {
          if (request.url === "/throw") throw new URIError("URI malformed")
          return Effect.succeed(HttpServerResponse.text("routed ahead"))
        }
      )
      const ports = yield* serveBoth(HttpServer.serve(app).pipe(HttpMiddleware.withTracerDisabledWhen(() => true)))
      assert.strictEqual(bodyText(yield* call(ports.lean, { path: "/throw" })), "the app's own")
      assert.strictEqual(bodyText(yield* call(ports.lean, { path: "/other" })), "routed ahead")
      assert.strictEqual(bodyText(yield* call(ports.platform, { path: "/other" })), "the app's own")
    }))

  it.live("a plain HttpServer.serve app is uninterruptible: a client abort does not interrupt it", () =>
    Effect.gen(function*() {
      const app = HttpServer.serve(
        Effect.zipRight(
          Queue.offer(signals, "plain:started"),
          Effect.as(Effect.sleep(Duration.millis(100)), HttpServerResponse.text("done"))
        ).pipe(Effect.onExit((exit) => Queue.offer(signals, `plain:${exit._tag}`)))
      )
      const ports = yield* serveBoth(app.pipe(HttpMiddleware.withTracerDisabledWhen(() => true)))
      for (const port of [ports.platform, ports.lean]) {
        const req = Http.get({ host: "127.0.0.1", port, path: "/", agent: false })
        req.on("error", () => {})
        assert.strictEqual(yield* nextSignal, "plain:started")
        req.destroy()
        assert.strictEqual(yield* nextSignal, "plain:Success")
      }
    }).pipe(Effect.scoped))

  it.effect("closing the server's scope closes the listener", () =>
    Effect.gen(function*() {
      const scope = yield* Scope.make()
      const nodeServer = Http.createServer()
      const server = yield* NodeHttpAdapter.make(() => nodeServer, { port: 0, host: "127.0.0.1" }).pipe(
        Scope.extend(scope)
      )
      const port = (server.address as HttpServer.TcpAddress).port
      assert.isTrue(nodeServer.listening)
      yield* server.serve(Effect.succeed(HttpServerResponse.text("up"))).pipe(Scope.extend(scope))
      assert.strictEqual(bodyText(yield* call(port, { path: "/" })), "up")
      yield* Scope.close(scope, Exit.void)
      assert.isFalse(nodeServer.listening)
      const after = yield* Effect.either(call(port, { path: "/" }))
      assert.isTrue(after._tag === "Left" && (after.left as NodeJS.ErrnoException).code === "ECONNREFUSED")
    }))

  it.effect("a port in use fails with ServeError", () =>
    Effect.gen(function*() {
      const first = yield* NodeHttpAdapter.make(() => Http.createServer(), { port: 0, host: "127.0.0.1" })
      const port = (first.address as HttpServer.TcpAddress).port
      const second = yield* Effect.flip(NodeHttpAdapter.make(() => Http.createServer(), { port, host: "127.0.0.1" }))
      assert.strictEqual(second._tag, "ServeError")
    }).pipe(Effect.scoped))
})
