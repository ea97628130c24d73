import * as HttpApi from "@effect/platform/HttpApi"
import * as HttpApiBuilder from "@effect/platform/HttpApiBuilder"
import * as HttpApiEndpoint from "@effect/platform/HttpApiEndpoint"
import * as HttpApiGroup from "@effect/platform/HttpApiGroup"
import * as HttpApiMiddleware from "@effect/platform/HttpApiMiddleware"
import * as HttpApiSchema from "@effect/platform/HttpApiSchema"
import * as HttpApiSecurity from "@effect/platform/HttpApiSecurity"
import * as HttpLayerRouter from "@effect/platform/HttpLayerRouter"
import * as HttpServer from "@effect/platform/HttpServer"
import * as HttpServerRequest from "@effect/platform/HttpServerRequest"
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import { assert, describe, it } from "@effect/vitest"
import { Cause, Context, Effect, Exit, Layer, Redacted, Schema } from "effect"
import * as ApiError from "../../../src/core/errors/ApiError.js"
import * as ApiContract from "../../../src/core/http/ApiContract.js"
import * as HttpApiHandlers from "../../../src/core/http/HttpApiHandlers.js"
import * as HttpApiRoutes from "../../../src/core/http/HttpApiRoutes.js"

const Item = Schema.Struct({ name: Schema.NonEmptyString, count: Schema.Int.pipe(Schema.positive()) })

class Greeter extends Context.Tag("test/Greeter")<Greeter, { readonly greet: (id: number) => string }>() {}
class Caller extends Context.Tag("test/Caller")<Caller, string>() {}

class Authenticated extends HttpApiMiddleware.Tag<Authenticated>()("test/Authenticated", {
  failure: ApiError.Unauthorized.Envelope,
  provides: Caller,
  security: { bearer: HttpApiSecurity.bearer }
}) {}

class Items extends HttpApiGroup.make("items")
  .add(
    HttpApiEndpoint.get("get", "/items/:id")
      .setPath(Schema.Struct({ id: Schema.NumberFromString }))
      .addSuccess(Item)
      .addError(ApiError.NotFound.Envelope)
  )
  .add(
    HttpApiEndpoint.post("create", "/items").setPayload(ApiContract.validated(Item)).addSuccess(Item, { status: 201 })
  )
  .add(HttpApiEndpoint.get("whoami", "/whoami").addSuccess(Schema.String).middleware(Authenticated))
{}

class Trace extends Context.Tag("test/Trace")<Trace, string>() {}

/** A middleware that is not a security scheme, provides a service, and sees what the group's middleware provided. */
class Traced extends HttpApiMiddleware.Tag<Traced>()("test/Traced", {
  failure: ApiError.Forbidden.Envelope,
  provides: Trace
}) {}

/** An optional one: when it fails, the endpoint runs without what it provides. */
class Tenant extends Context.Tag("test/Tenant")<Tenant, string>() {}
class MaybeTenant extends HttpApiMiddleware.Tag<MaybeTenant>()("test/MaybeTenant", {
  optional: true,
  provides: Tenant
}) {}

/** The rest of what an endpoint can declare: URL parameters, headers, an empty success, text, a raw response. */
class Misc extends HttpApiGroup.make("misc")
  .add(
    HttpApiEndpoint.get("search", "/search")
      .setUrlParams(Schema.Struct({ tag: Schema.Array(Schema.String), q: Schema.optional(Schema.String) }))
      .addSuccess(Schema.Struct({ tag: Schema.Array(Schema.String), q: Schema.optional(Schema.String) }))
  )
  .add(
    HttpApiEndpoint.get("flag", "/flag").setHeaders(Schema.Struct({ "x-flag": Schema.Literal("on") })).addSuccess(
      Schema.String
    )
  )
  .add(HttpApiEndpoint.del("remove", "/items/:id").setPath(Schema.Struct({ id: Schema.NumberFromString })))
  .add(HttpApiEndpoint.get("text", "/text").addSuccess(HttpApiSchema.Text()))
  .add(HttpApiEndpoint.get("raw", "/raw").addSuccess(Schema.String))
  .add(HttpApiEndpoint.get("traced", "/traced").addSuccess(Schema.String).middleware(Traced).middleware(MaybeTenant))
  .add(HttpApiEndpoint.post("form", "/form").setPayload(Schema.Struct({ a: Schema.String })).addSuccess(Schema.String))
  .middleware(Authenticated)
{}

class TestApi extends ApiContract.make("test").add(Items).add(Misc) {}

type GroupBuilder = typeof HttpApiBuilder.group

/** The same handlers, built by the platform's `HttpApiBuilder.group` or by `HttpApiHandlers.group`. */
const handlersWith = (group: GroupBuilder) =>
  Layer.merge(
    group(TestApi, "items", (handlers) =>
      handlers
        .handle("get", ({ path }) =>
          path.id === 0
            ? Effect.die("a bug")
            : path.id === 1
            ? Effect.map(Greeter, (greeter) => ({ name: greeter.greet(path.id), count: 1 }))
            : Effect.fail(new ApiError.NotFound({ message: "No such item" })))
        .handle("create", ({ payload }) => Effect.succeed(payload))
        .handle("whoami", () => Caller)),
    group(TestApi, "misc", (handlers) =>
      handlers
        .handle("search", ({ urlParams }) => Effect.succeed(urlParams))
        .handle("flag", ({ headers }) => Effect.succeed(headers["x-flag"]))
        .handle("remove", () => Effect.void)
        .handle("text", () => Effect.succeed("plain text"))
        .handleRaw("raw", () => Effect.succeed(HttpServerResponse.text("raw", { headers: { "x-raw": "yes" } })))
        .handle("traced", () =>
          Effect.gen(function*() {
            const tenant = yield* Effect.serviceOption(Tenant)
            return `${yield* Caller} ${yield* Trace} ${tenant._tag === "Some" ? tenant.value : "-"}`
          }))
        .handle("form", ({ payload }) => Effect.succeed(payload.a)))
  )

const ItemsLive = handlersWith(HttpApiBuilder.group)

const AuthenticatedLive = Layer.succeed(Authenticated, {
  bearer: (token) =>
    Redacted.value(token) === "secret"
      ? Effect.succeed("alice")
      : Redacted.value(token) === "other"
      ? Effect.succeed("mallory")
      : Effect.fail(new ApiError.Unauthorized())
})

const TracedLive = Layer.succeed(
  Traced,
  Effect.flatMap(HttpServerRequest.HttpServerRequest, (request) =>
    request.headers["x-deny"] === undefined
      ? Effect.succeed(`trace-${request.method}`)
      : Effect.fail(new ApiError.Forbidden({ message: "Not you" })))
)

const MaybeTenantLive = Layer.succeed(
  MaybeTenant,
  Effect.flatMap(HttpServerRequest.HttpServerRequest, (request) =>
    request.headers["x-tenant"] === undefined
      ? Effect.fail(new ApiError.BadRequest({ message: "no tenant" }))
      : Effect.succeed(request.headers["x-tenant"]))
)

const middleware = Layer.mergeAll(AuthenticatedLive, TracedLive, MaybeTenantLive)
const ItemsWithMiddleware = ItemsLive.pipe(Layer.provide(middleware))
const LeanWithMiddleware = handlersWith(HttpApiHandlers.group).pipe(Layer.provide(middleware))
const PlatformRoutes = HttpLayerRouter.addHttpApi(TestApi).pipe(Layer.provide(ItemsWithMiddleware))
const OurRoutes = HttpApiRoutes.layer(TestApi).pipe(Layer.provide(ItemsWithMiddleware))
const LeanRoutes = HttpApiRoutes.layer(TestApi).pipe(Layer.provide(LeanWithMiddleware))
const GreeterLive = Layer.succeed(Greeter, { greet: (id) => `item ${id}` })

/** The platform's services and the `Greeter` the handlers use, for routes served in-process. */
const withServices = <A, E, R>(routes: Layer.Layer<A, E, R>) =>
  routes.pipe(Layer.provide(GreeterLive), Layer.provideMerge(HttpServer.layerContext))

interface WebHandler {
  readonly handler: (request: Request) => Promise<Response>
  readonly dispose: () => Promise<void>
}

const webHandler = (make: () => WebHandler) =>
  Effect.acquireRelease(Effect.sync(make), ({ dispose }) => Effect.promise(dispose))

interface Answer {
  readonly status: number
  readonly headers: ReadonlyArray<readonly [string, string]>
  readonly body: string
}

const answer = (handler: (request: Request) => Promise<Response>, path: string, init?: RequestInit) =>
  Effect.promise(async (): Promise<Answer> => {
    const response = await handler(new Request(`http://localhost${path}`, init))
    return { status: response.status, headers: [...response.headers].sort(), body: await response.text() }
  })

const requests: ReadonlyArray<readonly [string, RequestInit?]> = [
  ["/items/1"],
  ["/items/2"],
  ["/items/0"],
  ["/items/one"],
  ["/items", { method: "POST", headers: { "content-type": "application/json" }, body: `{"name":"x","count":2}` }],
  ["/items", { method: "POST", headers: { "content-type": "application/json" }, body: `{"name":"","count":0}` }],
  ["/items", { method: "POST", headers: { "content-type": "application/json" }, body: "{" }],
  ["/whoami", { headers: { authorization: "Bearer secret" } }],
  ["/whoami", { headers: { authorization: "Bearer wrong" } }],
  ["/whoami"],
  ["/nowhere"]
]

const bearer = { authorization: "Bearer secret" }

/** Requests to the endpoints of the rest of what an endpoint can declare. */
const moreRequests: ReadonlyArray<readonly [string, RequestInit?]> = [
  ["/search?tag=a&q=x", { headers: bearer }],
  ["/search?tag=a&tag=b", { headers: bearer }],
  ["/search", { headers: bearer }],
  ["/search?tag=a"],
  ["/flag", { headers: { ...bearer, "x-flag": "on" } }],
  ["/flag", { headers: { ...bearer, "x-flag": "off" } }],
  ["/items/3", { method: "DELETE", headers: bearer }],
  ["/items/x", { method: "DELETE", headers: bearer }],
  ["/text", { headers: bearer }],
  ["/raw", { headers: bearer }],
  ["/traced", { headers: bearer }],
  ["/traced", { headers: { ...bearer, "x-tenant": "acme" } }],
  ["/traced", { headers: { ...bearer, "x-deny": "1" } }],
  ["/traced", { headers: { authorization: "Bearer other" } }],
  ["/traced", { headers: { authorization: "Bearer nope" } }],
  // Which middleware refuses first: the order they run in.
  ["/traced", { headers: { authorization: "Bearer nope", "x-deny": "1" } }],
  ["/traced", { headers: { "x-deny": "1" } }],
  ["/form", {
    method: "POST",
    headers: { ...bearer, "content-type": "application/x-www-form-urlencoded" },
    body: "a=1"
  }],
  ["/form", { method: "POST", headers: { ...bearer, "content-type": "text/plain" }, body: "a=1" }],
  ["/form", { method: "POST", headers: { ...bearer, "content-type": "application/json" }, body: `{"a":2}` }]
]

describe("HttpApiRoutes", () => {
  it.scoped("answers every request as HttpLayerRouter.addHttpApi does", () =>
    Effect.gen(function*() {
      const platform = yield* webHandler(() => HttpLayerRouter.toWebHandler(withServices(PlatformRoutes)))
      const ours = yield* webHandler(() => HttpLayerRouter.toWebHandler(withServices(OurRoutes)))
      const statuses = new Set<number>()
      for (const [path, init] of requests) {
        const expected = yield* answer(platform.handler, path, init)
        assert.deepStrictEqual(yield* answer(ours.handler, path, init), expected, path)
        statuses.add(expected.status)
      }
      assert.deepStrictEqual([...statuses].sort(), [200, 201, 400, 401, 404, 422, 500])
    }))

  it.scoped("groups built by HttpApiHandlers.group answer every request as the platform's HttpApiBuilder.group", () =>
    Effect.gen(function*() {
      const platform = yield* webHandler(() => HttpLayerRouter.toWebHandler(withServices(PlatformRoutes)))
      const lean = yield* webHandler(() => HttpLayerRouter.toWebHandler(withServices(LeanRoutes)))
      const statuses = new Set<number>()
      for (const [path, init] of [...requests, ...moreRequests]) {
        const expected = yield* answer(platform.handler, path, init)
        assert.deepStrictEqual(yield* answer(lean.handler, path, init), expected, `${init?.method ?? "GET"} ${path}`)
        statuses.add(expected.status)
      }
      assert.deepStrictEqual([...statuses].sort(), [200, 201, 204, 400, 401, 403, 404, 422, 500])
      // What the middleware provided, in order, optional middleware included.
      assert.strictEqual((yield* answer(lean.handler, "/traced", { headers: bearer })).body, `"alice trace-GET -"`)
      assert.strictEqual(
        (yield* answer(lean.handler, "/traced", { headers: { ...bearer, "x-tenant": "acme" } })).body,
        `"alice trace-GET acme"`
      )
    }))

  it.scoped("a middleware's shortcut answers in place of its effect, which answers whatever the shortcut cannot", () =>
    Effect.gen(function*() {
      let runs = 0
      // Only alice's header is remembered; everyone else is left to the effect.
      const remembered = (request: HttpServerRequest.HttpServerRequest) =>
        request.headers.authorization === "Bearer secret" ? "alice" : undefined
      const counted = Layer.succeed(
        Authenticated,
        HttpApiHandlers.withShortcut({
          bearer: (token: Redacted.Redacted<string>) => {
            runs++
            return Redacted.value(token) === "secret"
              ? Effect.succeed("alice")
              : Redacted.value(token) === "other"
              ? Effect.succeed("mallory")
              : Effect.fail(new ApiError.Unauthorized())
          }
        }, remembered)
      )
      const routes = HttpApiRoutes.layer(TestApi).pipe(
        Layer.provide(handlersWith(HttpApiHandlers.group)),
        Layer.provide(Layer.mergeAll(counted, TracedLive, MaybeTenantLive))
      )
      const platform = yield* webHandler(() => HttpLayerRouter.toWebHandler(withServices(PlatformRoutes)))
      const lean = yield* webHandler(() => HttpLayerRouter.toWebHandler(withServices(routes)))
      for (const [path, init] of [...requests, ...moreRequests]) {
        const expected = yield* answer(platform.handler, path, init)
        assert.deepStrictEqual(yield* answer(lean.handler, path, init), expected, `${init?.method ?? "GET"} ${path}`)
      }
      const count = (path: string, authorization: string) =>
        Effect.gen(function*() {
          const before = runs
          const { body } = yield* answer(lean.handler, path, { headers: { authorization } })
          return { body, runs: runs - before }
        })
      // Remembered: the answer without the effect. Not remembered: the effect.
      assert.deepStrictEqual(yield* count("/whoami", "Bearer secret"), { body: `"alice"`, runs: 0 })
      assert.deepStrictEqual(yield* count("/whoami", "Bearer other"), { body: `"mallory"`, runs: 1 })
      // A route with any middleware that has no shortcut runs every middleware's effect, as it always did.
      assert.deepStrictEqual(yield* count("/traced", "Bearer secret"), { body: `"alice trace-GET -"`, runs: 1 })
    }))

  it.scoped("handlers see the services of the context their group was built in", () =>
    Effect.gen(function*() {
      for (const routes of [OurRoutes, LeanRoutes]) {
        const { handler } = yield* webHandler(() => HttpLayerRouter.toWebHandler(withServices(routes)))
        const { body, status } = yield* answer(handler, "/items/1")
        assert.strictEqual(status, 200)
        assert.deepStrictEqual(JSON.parse(body), { name: "item 1", count: 1 })
      }
    }))

  it.scoped("serves only its own API's endpoints, so two APIs can share the router", () =>
    Effect.gen(function*() {
      class Other extends HttpApi.make("other").add(
        HttpApiGroup.make("pings").add(HttpApiEndpoint.get("ping", "/ping").addSuccess(Schema.String))
      ) {}
      const PingsLive = HttpApiBuilder.group(Other, "pings", (handlers) =>
        handlers.handle("ping", () =>
          Effect.succeed("pong")))
      const { handler } = yield* webHandler(() =>
        HttpLayerRouter.toWebHandler(
          withServices(Layer.merge(OurRoutes, HttpApiRoutes.layer(Other).pipe(Layer.provide(PingsLive))))
        )
      )
      assert.strictEqual((yield* answer(handler, "/ping")).body, `"pong"`)
      assert.strictEqual((yield* answer(handler, "/items/1")).status, 200)
    }))

  it.scoped("refuses API-level middleware, which it would not apply", () =>
    Effect.gen(function*() {
      const Guarded = ApiContract.make("guarded").add(Items).middleware(Authenticated)
      const GuardedItemsLive = HttpApiBuilder.group(Guarded, "items", (handlers) =>
        handlers
          .handle("get", () => Effect.die("unused"))
          .handle("create", ({ payload }) => Effect.succeed(payload))
          .handle("whoami", () => Caller))
      const routes = HttpApiRoutes.layer(Guarded).pipe(
        Layer.provide(GuardedItemsLive),
        Layer.provide(AuthenticatedLive)
      )
      const exit = yield* Effect.exit(HttpLayerRouter.toHttpEffect(withServices(routes)))
      assert.isTrue(Exit.isFailure(exit))
      if (Exit.isFailure(exit)) assert.include(Cause.pretty(exit.cause), "put middleware on groups")
    }))
})
