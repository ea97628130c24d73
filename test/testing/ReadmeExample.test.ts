// The README's example ("Testing your endpoints"), as a team writes it: a route of its own, tested in-process.
import * as HttpLayerRouter from "@effect/platform/HttpLayerRouter"
import * as HttpServerRequest from "@effect/platform/HttpServerRequest"
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import { assert, layer } from "@effect/vitest"
import { Effect } from "effect"
import { Auth } from "effect-core"
import { Arbitraries, TestApp, TestIssuer } from "effect-core/testing"

// The team's endpoint: who the caller is, by the verified token.
const WhoAmI = HttpLayerRouter.add(
  "GET",
  "/api/v1/whoami",
  Effect.gen(function*() {
    const request = yield* HttpServerRequest.HttpServerRequest
    const auth = yield* Auth.Auth
    const user = yield* auth.verifyAuthorization(request.headers.authorization)
    return HttpServerResponse.unsafeJson({ sub: user.sub, admin: user.isAdmin })
  })
)

layer(TestApp.layerWith(WhoAmI), { excludeTestServices: true })("GET /api/v1/whoami", (it) => {
  it.effect.prop("a valid token: the caller", [Arbitraries.claims], ([claims]) =>
    Effect.gen(function*() {
      const token = yield* TestIssuer.mint(claims)
      const reply = yield* TestApp.request("GET", "/api/v1/whoami", { token })
      assert.strictEqual(reply.status, 200)
      assert.deepStrictEqual(reply.json, { sub: claims.sub, admin: claims.app_metadata.role === "admin" })
    }), { fastCheck: { numRuns: 500 } })

  it.effect.prop(
    "a forged token: 401, the envelope, WWW-Authenticate",
    [Arbitraries.forgeKind],
    ([kind]) =>
      Effect.gen(function*() {
        const token = yield* TestIssuer.forge(kind)
        const reply = yield* TestApp.request("GET", "/api/v1/whoami", { token })
        assert.strictEqual(reply.status, 401)
        assert.strictEqual(reply.json.error.code, "UNAUTHORIZED")
        assert.strictEqual(reply.headers["www-authenticate"], "Bearer")
      })
  )
})
