import { assert, layer } from "@effect/vitest"
import { Effect, Either, Layer, Logger, LogLevel } from "effect"
import { decodeJwt, decodeProtectedHeader } from "jose"
import { Auth } from "../../src/core/auth/Auth.js"
import { JwksVerifier } from "../../src/core/auth/Jwks.js"
import * as Arbitraries from "../../src/testing/Arbitraries.js"
import * as SettableClock from "../../src/testing/SettableClock.js"
import * as TestIssuer from "../../src/testing/TestIssuer.js"

const Issuer = TestIssuer.layerAuth.pipe(
  Layer.provideMerge(TestIssuer.layer()),
  Layer.provideMerge(SettableClock.layer()),
  // Refused tokens are logged at info.
  Layer.provide(Logger.minimumLogLevel(LogLevel.Warning))
)

/** Why local verification refuses each forged kind. */
const expectedReason: Record<TestIssuer.ForgeKind, string> = {
  expired: "Expired",
  "wrong-audience": "InvalidClaims",
  "wrong-issuer": "InvalidClaims",
  "bad-signature": "InvalidSignature",
  "unknown-kid": "UnknownKey"
}

/** A GET to the issuer's endpoints, answered in this fiber (its clock). */
const get = (issuer: TestIssuer.Service, path: string, headers: Record<string, string> = {}) => {
  const answer = issuer.handle(new Request(`${issuer.url}${path}`, { headers }))
  return answer === undefined
    ? Effect.succeed(undefined)
    : Effect.flatMap(
      answer,
      (response) => Effect.promise(async () => ({ status: response.status, body: (await response.json()) as any }))
    )
}

layer(Issuer, { excludeTestServices: true })("TestIssuer", (it) => {
  it.effect.prop(
    "minted tokens carry the claims given, are issued by the clock, and the core's verifier accepts them",
    [Arbitraries.claims],
    ([claims]) =>
      Effect.gen(function*() {
        const token = yield* TestIssuer.mint(claims)
        const now = Math.floor((yield* Effect.flatMap(SettableClock.SettableClock, (clock) => clock.now)) / 1000)
        const issuer = yield* TestIssuer.TestIssuer
        assert.deepStrictEqual(decodeProtectedHeader(token), {
          alg: "ES256",
          kid: issuer.keySet.keys[0]!.kid!,
          typ: "JWT"
        })
        assert.deepStrictEqual(decodeJwt(token), {
          iss: issuer.issuer,
          aud: "authenticated",
          iat: now,
          exp: now + 3600,
          ...claims
        })
        const user = yield* Effect.flatMap(Auth, (auth) => auth.verifyToken(token))
        assert.strictEqual(user.sub, claims.sub)
        assert.strictEqual(user.email, claims.email === "" ? undefined : claims.email)
        assert.strictEqual(user.isAdmin, claims.app_metadata.role === "admin")
        assert.deepStrictEqual(user.user_metadata, claims.user_metadata)
        yield* SettableClock.adjust("1 second")
      }),
    { fastCheck: { numRuns: 200 } }
  )

  it.effect.prop(
    "forged tokens are refused by local verification for their reason, and by Auth with a 401",
    [Arbitraries.forgeKind, Arbitraries.claims],
    ([kind, claims]) =>
      Effect.gen(function*() {
        const token = yield* TestIssuer.forge(kind, claims)
        const local = yield* Effect.either(Effect.flatMap(JwksVerifier, (verifier) => verifier.verify(token)))
        assert.isTrue(Either.isLeft(local))
        if (Either.isLeft(local)) assert.strictEqual(local.left.reason._tag, expectedReason[kind])
        const refused = yield* Effect.flip(Effect.flatMap(Auth, (auth) => auth.verifyToken(token)))
        assert.strictEqual(refused.status, 401)
      }),
    { fastCheck: { numRuns: 100 } }
  )

  it.effect("the provider endpoints, offline: key set, and the user of a token as GoTrue answers", () =>
    Effect.gen(function*() {
      const issuer = yield* TestIssuer.TestIssuer
      const keys = yield* get(issuer, "/auth/v1/.well-known/jwks.json")
      assert.deepStrictEqual(keys, { status: 200, body: issuer.keySet })
      assert.isUndefined(keys?.body.keys[0].d)

      const token = yield* TestIssuer.mint({ email: "who@example.com" })
      const user = yield* get(issuer, "/auth/v1/user", { authorization: `Bearer ${token}` })
      assert.strictEqual(user?.status, 200)
      assert.strictEqual(user?.body.id, decodeJwt(token).sub)
      assert.strictEqual(user?.body.email, "who@example.com")

      for (const kind of TestIssuer.forgeKinds) {
        const forged = yield* get(issuer, "/auth/v1/user", { authorization: `Bearer ${yield* TestIssuer.forge(kind)}` })
        assert.deepStrictEqual(forged?.status, 403, kind)
        assert.strictEqual(forged?.body.error_code, "bad_jwt")
      }
      assert.strictEqual((yield* get(issuer, "/auth/v1/user"))?.status, 401)
      assert.isUndefined(yield* get(issuer, "/auth/v1/admin/users"))
    }))

  it.effect("a token expires by the clock: accepted, then refused once the clock passes its exp", () =>
    Effect.gen(function*() {
      const verifier = yield* JwksVerifier
      const token = yield* TestIssuer.mint({}, { expiresIn: "5 minutes" })
      assert.isTrue(Either.isRight(yield* Effect.either(verifier.verify(token))))
      yield* SettableClock.adjust("6 minutes")
      const later = yield* Effect.either(verifier.verify(token))
      assert.isTrue(Either.isLeft(later) && later.left.reason._tag === "Expired")
    }))
})
