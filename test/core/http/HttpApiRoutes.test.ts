import * as HttpApi from "@effect/platform/HttpApi"
import * as HttpApiBuilder from "@effect/platform/HttpApiBuilder"
import * as HttpApiEndpoint from "@effect/platform/HttpApiEndpoint"
import * as HttpApiGroup from "@effect/platform/HttpApiGroup"
import * as HttpApiMiddleware from "@effect/platform/HttpApiMiddleware"
import * as HttpApiSecurity from "@effect/platform/HttpApiSecurity"
import * as HttpLayerRouter from "@effect/platform/HttpLayerRouter"
import * as HttpServer from "@effect/platform/HttpServer"
import { assert, describe, it } from "@effect/vitest"
import { Cause, Context, Effect, Exit, Layer, Redacted, Schema } from "effect"
import * as ApiError from "../../../src/core/errors/ApiError.js"
import * as ApiContract from "../../../src/core/http/ApiContract.js"
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

class TestApi extends ApiContract.make("test").add(Items) {}

const ItemsLive = HttpApiBuilder.group(TestApi, "items", (handlers) =>
  handlers
    .handle("get", ({ path }) =>
      path.id === 0
        ? Effect.die("a bug")
        : path.id === 1
        ? Effect.map(Greeter, (greeter) => ({ name: greeter.greet(path.id), count: 1 }))
        : Effect.fail(new ApiError.NotFound({ message: "No such item" })))
    .handle("create", ({ payload }) => Effect.succeed(payload))
    .handle("whoami", () => Caller))

const AuthenticatedLive = Layer.succeed(Authenticated, {
  bearer: (token) =>
    Redacted.value(token) === "secret" ? Effect.succeed("alice") : Effect.fail(new ApiError.Unauthorized())
})

const ItemsWithMiddleware = ItemsLive.pipe(Layer.provide(AuthenticatedLive))
const PlatformRoutes = HttpLayerRouter.addHttpApi(TestApi).pipe(Layer.provide(ItemsWithMiddleware))
const OurRoutes = HttpApiRoutes.layer(TestApi).pipe(Layer.provide(ItemsWithMiddleware))
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

  it.scoped("handlers see the services of the context their group was built in", () =>
    Effect.gen(function*() {
      const { handler } = yield* webHandler(() => HttpLayerRouter.toWebHandler(withServices(OurRoutes)))
      const { body, status } = yield* answer(handler, "/items/1")
      assert.strictEqual(status, 200)
      assert.deepStrictEqual(JSON.parse(body), { name: "item 1", count: 1 })
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
      const Guarded = TestApi.middleware(Authenticated)
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
