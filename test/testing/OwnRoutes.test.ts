/**
 * How a team tests endpoints of its own with the kit: its `HttpApi` group, behind the reference API's
 * `Authentication`, mounted with `TestApp.layerWith`, driven by generated claims and payloads.
 */
import * as HttpApiBuilder from "@effect/platform/HttpApiBuilder"
import * as HttpApiEndpoint from "@effect/platform/HttpApiEndpoint"
import * as HttpApiGroup from "@effect/platform/HttpApiGroup"
import { assert, layer } from "@effect/vitest"
import { Effect, FastCheck as fc, Layer, Schema } from "effect"
import { Authentication, AuthenticationLive, CurrentUser } from "../../src/api/Authentication.js"
import * as ApiContract from "../../src/core/http/ApiContract.js"
import * as HttpApiRoutes from "../../src/core/http/HttpApiRoutes.js"
import * as UserSync from "../../src/domain/UserSync.js"
import * as Arbitraries from "../../src/testing/Arbitraries.js"
import * as TestApp from "../../src/testing/TestApp.js"
import * as TestIssuer from "../../src/testing/TestIssuer.js"

// The team's endpoint: `POST /api/v1/greetings {name}` greets the caller's `name`, signed with the caller's email.
const Greeting = Schema.Struct({ message: Schema.String, from: Schema.NullOr(Schema.String) })

class GreetingsGroup extends HttpApiGroup.make("greetings")
  .add(
    HttpApiEndpoint.post("greet", "/greetings")
      .setPayload(ApiContract.validated(Schema.Struct({ name: Schema.NonEmptyString.pipe(Schema.maxLength(40)) })))
      .addSuccess(Greeting, { status: 201 })
  )
  .middleware(Authentication)
{}

class TeamApi extends ApiContract.make("team").add(GreetingsGroup).prefix("/api/v1") {}

const GreetingsLive = HttpApiBuilder.group(
  TeamApi,
  "greetings",
  (handlers) =>
    handlers.handle(
      "greet",
      ({ payload }) => Effect.map(CurrentUser, ({ user }) => ({ message: `Hello, ${payload.name}!`, from: user.email }))
    )
)

// Its routes, on what `TestApp` provides (the core's `Auth`, the users' `UserRepo`).
const TeamRoutes = HttpApiRoutes.layer(TeamApi).pipe(
  Layer.provide(GreetingsLive),
  Layer.provide(AuthenticationLive),
  Layer.provide(UserSync.layer())
)

layer(TestApp.layerWith(TeamRoutes), { excludeTestServices: true })(
  "a team's own route with TestApp.layerWith",
  (it) => {
    it.effect.prop(
      "any caller, any name: 201 with the greeting, from the caller's email",
      [Arbitraries.claims, fc.string({ minLength: 1, maxLength: 40 })],
      ([claims, name]) =>
        Effect.gen(function*() {
          const token = yield* TestIssuer.mint(claims)
          const reply = yield* TestApp.request("POST", "/api/v1/greetings", { token, body: { name } })
          assert.strictEqual(reply.status, 201, reply.text)
          assert.deepStrictEqual(reply.json, {
            message: `Hello, ${name}!`,
            from: claims.email === "" ? null : claims.email
          })
        }),
      { fastCheck: { numRuns: 200 } }
    )

    it.effect.prop(
      "a payload without a valid name is a 422 envelope naming the field",
      [fc.oneof(
        fc.constant({}),
        fc.record({ name: fc.oneof(fc.constant(""), fc.string({ minLength: 41 }), fc.nat()) })
      )],
      ([body]) =>
        Effect.gen(function*() {
          const reply = yield* TestApp.request("POST", "/api/v1/greetings", { token: yield* TestIssuer.mint(), body })
          assert.strictEqual(reply.status, 422, reply.text)
          assert.strictEqual(reply.json.error.code, "VALIDATION_ERROR")
          assert.deepStrictEqual(reply.json.error.details.map((detail: { path: string }) => detail.path), ["name"])
        }),
      { fastCheck: { numRuns: 50 } }
    )

    it.effect("no token, or a forged one, is a 401 before the payload is looked at", () =>
      Effect.gen(function*() {
        for (
          const token of [
            undefined,
            ...yield* Effect.forEach(TestIssuer.forgeKinds, (kind) => TestIssuer.forge(kind))
          ]
        ) {
          const reply = yield* TestApp.request("POST", "/api/v1/greetings", {
            ...(token === undefined ? {} : { token }),
            body: { name: "" }
          })
          assert.strictEqual(reply.status, 401, reply.text)
          assert.strictEqual(reply.headers["www-authenticate"], "Bearer")
        }
      }))

    it.effect("the reference API is still served beside it", () =>
      Effect.gen(function*() {
        const reply = yield* TestApp.request("GET", "/api/v1/me", { token: yield* TestIssuer.mint() })
        assert.strictEqual(reply.status, 200)
      }))
  }
)
