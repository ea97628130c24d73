import * as HttpApiBuilder from "@effect/platform/HttpApiBuilder"
import * as HttpApiEndpoint from "@effect/platform/HttpApiEndpoint"
import * as HttpApiGroup from "@effect/platform/HttpApiGroup"
import * as HttpLayerRouter from "@effect/platform/HttpLayerRouter"
import * as HttpServerRequest from "@effect/platform/HttpServerRequest"
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import { assert, layer } from "@effect/vitest"
import { Effect, FastCheck as fc, Fiber, Layer, Schema } from "effect"
import { UserNotFound } from "../../../src/core/auth/AuthAdminError.js"
import * as ApiError from "../../../src/core/errors/ApiError.js"
import * as ApiContract from "../../../src/core/http/ApiContract.js"
import * as DomainErrors from "../../../src/domain/DomainErrors.js"
import { TestServer } from "../../support/TestServer.js"
import * as TestServerLayer from "../../support/TestServer.js"

// Routes only this test mounts, behind the same pipeline as the app's.

/** The core's hierarchy and the errors made with its class factory elsewhere. */
const all = [
  ...ApiError.all,
  UserNotFound,
  DomainErrors.PropertyNotFound,
  DomainErrors.JobNotFound,
  DomainErrors.BookingConflict
] as const

const ErrorRequest = Schema.Struct({
  index: Schema.Int,
  message: Schema.String,
  details: Schema.optional(Schema.Unknown)
})

const raise = (input: typeof ErrorRequest.Type) => {
  const cls = all[input.index]!
  return new cls({ message: input.message, ...(input.details === undefined ? {} : { details: input.details }) })
}

const rawRoutes = HttpLayerRouter.addAll([
  HttpLayerRouter.route(
    "GET",
    "/test/log",
    Effect.gen(function*() {
      yield* Effect.logInfo("handler says hello")
      yield* Effect.logWarning("handler warns")
      const child = yield* Effect.fork(Effect.logInfo("a forked fiber logs too"))
      yield* Fiber.join(child)
      return HttpServerResponse.text("logged")
    })
  ),
  HttpLayerRouter.route(
    "POST",
    "/test/raise",
    Effect.flatMap(HttpServerRequest.schemaBodyJson(ErrorRequest), (input) => Effect.fail(raise(input))).pipe(
      Effect.orDie
    )
  ),
  HttpLayerRouter.route(
    "GET",
    "/test/defect",
    Effect.flatMap(
      HttpServerRequest.HttpServerRequest,
      (request) => Effect.die(new Error(new URL(request.url, "http://x").searchParams.get("secret") ?? ""))
    )
  ),
  HttpLayerRouter.route(
    "POST",
    "/test/echo",
    Effect.map(
      Effect.flatMap(HttpServerRequest.HttpServerRequest, (request) => request.text),
      (text) => HttpServerResponse.text(String(text.length))
    ).pipe(Effect.orDie)
  )
])

const Item = Schema.Struct({ name: Schema.NonEmptyString, count: Schema.Int.pipe(Schema.positive()) })

class Items extends HttpApiGroup.make("items")
  .add(
    HttpApiEndpoint.post("create", "/test/api/items").setPayload(ApiContract.validated(Item)).addSuccess(Item, {
      status: 201
    })
  )
  .add(
    HttpApiEndpoint.post("raise", "/test/api/raise")
      .setPayload(ErrorRequest)
      .addError(ApiError.BadRequest.Envelope)
      .addError(ApiError.Unauthorized.Envelope)
      .addError(ApiError.Forbidden.Envelope)
      .addError(ApiError.NotFound.Envelope)
      .addError(ApiError.MethodNotAllowed.Envelope)
      .addError(ApiError.RequestTimeout.Envelope)
      .addError(ApiError.Conflict.Envelope)
      .addError(ApiError.PayloadTooLarge.Envelope)
      .addError(ApiError.ExpectationFailed.Envelope)
      .addError(ApiError.Validation.Envelope)
      .addError(ApiError.RateLimit.Envelope)
      .addError(ApiError.HeadersTooLarge.Envelope)
      .addError(ApiError.Internal.Envelope)
      .addError(ApiError.Storage.Envelope)
      .addError(ApiError.ExternalService.Envelope)
      .addError(ApiError.ServiceUnavailable.Envelope)
      .addError(ApiError.DbPoolExhausted.Envelope)
      .addError(UserNotFound.Envelope)
      .addError(DomainErrors.PropertyNotFound.Envelope)
      .addError(DomainErrors.JobNotFound.Envelope)
      .addError(DomainErrors.BookingConflict.Envelope)
  )
{}

class TestApi extends ApiContract.make("test").add(Items) {}

const ItemsLive = HttpApiBuilder.group(TestApi, "items", (handlers) =>
  handlers
    .handle("create", ({ payload }) => Effect.succeed(payload))
    .handle("raise", ({ payload }) => Effect.fail(raise(payload))))

const routes = Layer.mergeAll(rawRoutes, HttpLayerRouter.addHttpApi(TestApi).pipe(Layer.provide(ItemsLive)))

const ServerLive = TestServerLayer.layer({
  routes,
  env: { MAX_BODY_BYTES: "1024", CORS_ORIGINS: "https://app.example" }
})

const { request } = TestServerLayer

// What a request to `/test/log` logs, in order. The whole app runs beside it at debug level: a background fiber (a
// job poller, a readiness check) may log meanwhile, with no request id, and is not what these tests are about.
const logRouteMessages = ["handler says hello", "handler warns", "a forked fiber logs too", "request"]
const ofTheLogRoute = (lines: ReadonlyArray<Record<string, unknown>>) =>
  lines.filter((line) => logRouteMessages.includes(line.message as string))

const safeId = fc.stringMatching(/^[A-Za-z0-9._-]{1,128}$/)
const printable = fc.string({ unit: fc.integer({ min: 0x20, max: 0x7e }).map((c) => String.fromCharCode(c)) })
const unsafeId = fc.oneof(
  printable.filter((s) => s.trim() === s && s.length > 0 && !/^[A-Za-z0-9._-]{1,128}$/.test(s)),
  fc.stringMatching(/^[A-Za-z0-9]{129,200}$/)
)
const uuid = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/

/** Keys of an envelope, recursively, so the body shape is checked exactly and nothing extra slips in. */
const assertEnvelope = (body: any, code: string, message: string, details?: unknown) => {
  assert.deepStrictEqual(Object.keys(body), ["error"])
  const expected: Record<string, unknown> = { code, message }
  if (details !== undefined) expected.details = details
  assert.deepStrictEqual(body.error, expected)
}

const jsonValue = fc.jsonValue().map((value) => JSON.parse(JSON.stringify(value)) as unknown)
const errorInput = fc.record(
  {
    index: fc.integer({ min: 0, max: all.length - 1 }),
    message: fc.string({ maxLength: 200 }),
    details: jsonValue
  },
  { requiredKeys: ["index", "message"] }
)

layer(ServerLive, { excludeTestServices: true })("request pipeline", (it) => {
  it.effect.prop(
    "a safe incoming X-Request-ID is echoed and carried by every log line of its request",
    [safeId],
    ([id]) =>
      Effect.gen(function*() {
        const server = yield* TestServer
        server.clearLogs()
        const { response } = yield* request("/test/log", { headers: { "x-request-id": id } })
        assert.strictEqual(response.status, 200)
        assert.strictEqual(response.headers.get("x-request-id"), id)
        const lines = ofTheLogRoute(server.logs())
        assert.deepStrictEqual(lines.map((line) => line.message), logRouteMessages)
        for (const line of lines) assert.strictEqual(line.request_id, id)
      }),
    { fastCheck: { numRuns: 60 } }
  )

  it.effect.prop(
    "an unsafe incoming X-Request-ID is replaced by a generated one",
    [unsafeId],
    ([id]) =>
      Effect.gen(function*() {
        const server = yield* TestServer
        server.clearLogs()
        const { response } = yield* request("/test/log", { headers: { "x-request-id": id } })
        const echoed = response.headers.get("x-request-id") ?? ""
        assert.notStrictEqual(echoed, id)
        assert.match(echoed, uuid)
        const lines = ofTheLogRoute(server.logs())
        assert.deepStrictEqual(lines.map((line) => line.message), logRouteMessages)
        for (const line of lines) assert.strictEqual(line.request_id, echoed)
      }),
    { fastCheck: { numRuns: 60 } }
  )

  it.effect("one access log line per request: method, path (no query), status, duration, request id", () =>
    Effect.gen(function*() {
      const server = yield* TestServer
      server.clearLogs()
      const { response } = yield* request("/health?ticket=should-not-be-logged")
      const access = server.logs().filter((line) => line.message === "request")
      assert.strictEqual(access.length, 1)
      const line = access[0]!
      assert.strictEqual(line.method, "GET")
      assert.strictEqual(line.path, "/health")
      assert.strictEqual(line.status, 200)
      assert.isNumber(line.duration_ms)
      assert.strictEqual(line.request_id, response.headers.get("x-request-id"))
      assert.notInclude(JSON.stringify(server.logs()), "should-not-be-logged")
    }))

  it.effect.prop(
    "every error of the hierarchy has its status, code, headers and envelope",
    [errorInput],
    ([input]) =>
      Effect.gen(function*() {
        const cls = all[input.index]!
        // Raised from a plain route (rendered by the pipeline) and declared by an HttpApi endpoint (encoded by it).
        for (const path of ["/test/raise", "/test/api/raise"]) {
          const { json, response } = yield* request(path, {
            method: "POST",
            headers: { "content-type": "application/json" },
            body: JSON.stringify(input)
          })
          assert.strictEqual(response.status, cls.status, path)
          assertEnvelope(json(), cls.code, input.message, input.details)
          assert.match(response.headers.get("x-request-id") ?? "", uuid)
          assert.strictEqual(response.headers.get("www-authenticate"), cls.status === 401 ? "Bearer" : null)
          const retryAfter = response.headers.get("retry-after")
          if (cls.status === 429 || cls.status === 503) assert.match(retryAfter ?? "", /^\d+$/)
          else assert.isNull(retryAfter)
        }
      }),
    { fastCheck: { numRuns: 40 } }
  )

  it.effect("a request that fails schema decoding is 422 VALIDATION_ERROR listing the offending fields", () =>
    Effect.gen(function*() {
      const { json, response } = yield* request("/test/api/items", {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ name: "", count: -2 })
      })
      assert.strictEqual(response.status, 422)
      const body = json()
      assert.deepStrictEqual(Object.keys(body), ["error"])
      assert.strictEqual(body.error.code, "VALIDATION_ERROR")
      const paths = (body.error.details as Array<{ path: string }>).map((detail) => detail.path).sort()
      assert.deepStrictEqual(paths, ["count", "name"])

      const ok = yield* request("/test/api/items", {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ name: "bolt", count: 2 })
      })
      assert.strictEqual(ok.response.status, 201)
      assert.deepStrictEqual(ok.json(), { name: "bolt", count: 2 })
    }))

  it.effect("malformed JSON is 400 BAD_REQUEST, not a 500", () =>
    Effect.gen(function*() {
      const { json, response } = yield* request("/test/api/items", {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: "{not json"
      })
      assert.strictEqual(response.status, 400)
      assert.strictEqual(json().error.code, "BAD_REQUEST")
    }))

  it.effect("an unknown route is a 404 envelope with a request id", () =>
    Effect.gen(function*() {
      for (const [method, path] of [["GET", "/nope"], ["DELETE", "/api/v1/nothing/here"], ["POST", "/health"]]) {
        const { json, response } = yield* request(path!, { method: method! })
        assert.strictEqual(response.status, 404)
        assertEnvelope(json(), "NOT_FOUND", "Route not found")
        assert.match(response.headers.get("x-request-id") ?? "", uuid)
      }
    }))

  it.effect("a body over the limit is 413, whether announced by Content-Length or streamed", () =>
    Effect.gen(function*() {
      const announced = yield* request("/test/echo", { method: "POST", body: "x".repeat(4096) })
      assert.strictEqual(announced.response.status, 413)
      assertEnvelope(announced.json(), "PAYLOAD_TOO_LARGE", "Request body too large")

      const chunks = new ReadableStream<Uint8Array>({
        start(controller) {
          for (let i = 0; i < 8; i++) controller.enqueue(new TextEncoder().encode("y".repeat(512)))
          controller.close()
        }
      })
      const streamed = yield* request("/test/echo", { method: "POST", body: chunks, duplex: "half" } as RequestInit)
      assert.strictEqual(streamed.response.status, 413)
      assert.strictEqual(streamed.json().error.code, "PAYLOAD_TOO_LARGE")

      const small = yield* request("/test/echo", { method: "POST", body: "z".repeat(1000) })
      assert.strictEqual(small.response.status, 200)
      assert.strictEqual(small.text, "1000")
    }))

  it.effect.prop(
    "a defect is a generic 500 whose message never reaches the client, logged with its cause and request id",
    [fc.stringMatching(/^[A-Za-z0-9]{8,40}$/)],
    ([secret]) =>
      Effect.gen(function*() {
        const server = yield* TestServer
        server.clearLogs()
        const { json, response, text } = yield* request(`/test/defect?secret=${secret}`)
        assert.strictEqual(response.status, 500)
        assertEnvelope(json(), "INTERNAL_ERROR", "Internal server error")
        assert.notInclude(text, secret)
        const id = response.headers.get("x-request-id")
        const errors = server.logs().filter((line) => line.level === "ERROR")
        assert.strictEqual(errors.length, 1)
        assert.strictEqual(errors[0]!.request_id, id)
        assert.include(String(errors[0]!.cause), secret)
        // Unlike a failed readiness check, a 500 keeps the stack of its cause.
        assert.match(String(errors[0]!.cause), /\n\s+at /)
      }),
    { fastCheck: { numRuns: 20 } }
  )

  it.effect("CORS: configured origins get the headers, others do not; preflight answered", () =>
    Effect.gen(function*() {
      const allowed = yield* request("/health", { headers: { origin: "https://app.example" } })
      assert.strictEqual(allowed.response.headers.get("access-control-allow-origin"), "https://app.example")
      assert.strictEqual(allowed.response.headers.get("access-control-allow-credentials"), "true")
      assert.include(allowed.response.headers.get("access-control-expose-headers") ?? "", "x-request-id")

      const other = yield* request("/health", { headers: { origin: "https://evil.example" } })
      assert.isNull(other.response.headers.get("access-control-allow-origin"))

      const preflight = yield* request("/api/v1/anything", {
        method: "OPTIONS",
        headers: {
          origin: "https://app.example",
          "access-control-request-method": "POST",
          "access-control-request-headers": "authorization, content-type"
        }
      })
      assert.strictEqual(preflight.response.status, 204)
      assert.strictEqual(preflight.response.headers.get("access-control-allow-origin"), "https://app.example")
      assert.include(preflight.response.headers.get("access-control-allow-methods") ?? "", "POST")
      assert.strictEqual(preflight.response.headers.get("access-control-allow-headers"), "authorization, content-type")

      const refused = yield* request("/api/v1/anything", {
        method: "OPTIONS",
        headers: { origin: "https://evil.example", "access-control-request-method": "POST" }
      })
      assert.strictEqual(refused.response.status, 403)
      assert.strictEqual(refused.json().error.code, "FORBIDDEN")
    }))
})

layer(TestServerLayer.layer({ env: { CORS_ORIGINS: "*" } }), { excludeTestServices: true })(
  "CORS for any origin",
  (it) => {
    it.effect("`*` answers any origin, without credentials", () =>
      Effect.gen(function*() {
        const { response } = yield* request("/health", { headers: { origin: "https://anywhere.example" } })
        assert.strictEqual(response.headers.get("access-control-allow-origin"), "*")
        assert.isNull(response.headers.get("access-control-allow-credentials"))
      }))
  }
)
