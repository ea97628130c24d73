import { afterAll, assert, beforeAll, describe, it } from "@effect/vitest"
import { Cause, ConfigProvider, Duration, Effect, Exit, FastCheck as fc, Option, Redacted, TestClock } from "effect"
import { createHmac, randomUUID } from "node:crypto"
import * as AuthSettings from "../../../src/core/auth/AuthSettings.js"
import * as Jwks from "../../../src/core/auth/Jwks.js"
import {
  type SignTokenOptions,
  startSupabaseStandIn,
  type SupabaseStandInServer
} from "../../../src/dev/SupabaseStandIn.js"
import {
  attackCorpus,
  b64,
  clients,
  clockAtRealTime,
  craft,
  nowSeconds,
  standIn,
  validClaims,
  verifierOptions
} from "../../support/AuthFixtures.js"

/** The reason local verification gave; a defect fails the test. */
const reasonOf = <A>(effect: Effect.Effect<A, Jwks.TokenRejected>) =>
  Effect.flatMap(Effect.exit(effect), (exit) => {
    if (Exit.isSuccess(exit)) return Effect.succeed("accepted")
    const failure = Cause.failureOption(exit.cause)
    assert.isTrue(Option.isSome(failure), `expected a typed failure, got ${Cause.pretty(exit.cause)}`)
    return Effect.succeed(Option.getOrThrow(failure).reason._tag)
  })

/** A stand-in token issued at the `TestClock`'s time. */
const sign = (server: SupabaseStandInServer, options: SignTokenOptions = {}) =>
  Effect.flatMap(nowSeconds, (iat) => Effect.promise(() => server.signToken({ iat, ...options })))

const hs256 = (secret: string, payload: object) => {
  const input = `${b64({ alg: "HS256", typ: "JWT" })}.${b64(payload)}`
  return `${input}.${createHmac("sha256", secret).update(input).digest("base64url")}`
}

/** Everything a test needs: a stand-in, the clock at real time, one user. */
const setup = (options: Parameters<typeof standIn>[0] = {}) =>
  Effect.gen(function*() {
    const server = yield* standIn(options)
    yield* clockAtRealTime
    const user = server.createUser({ email: `u-${randomUUID().slice(0, 8)}@example.com`, password: "secret-123" })
    return { server, user }
  })

describe("JwksVerifier", () => {
  it.scoped("accepts stand-in tokens (ES256, RS256, EdDSA) and returns the identity they carry", () =>
    Effect.gen(function*() {
      for (const alg of ["ES256", "RS256", "EdDSA"] as const) {
        const { server } = yield* setup({ alg })
        const verifier = yield* Jwks.make(verifierOptions(server))
        const admin = server.createUser({
          email: "admin@example.com",
          password: "secret-123",
          appMetadata: { role: "admin" }
        })
        const { payload, token } = yield* Effect.promise(() => server.signTokenDetailed({ user: admin.id }))
        const user = yield* verifier.verify(token)
        assert.strictEqual(user.sub, admin.id)
        assert.strictEqual(user.email, "admin@example.com")
        assert.strictEqual(user.role, "authenticated")
        assert.strictEqual(user.session_id, payload["session_id"])
        assert.strictEqual(user.exp, payload["exp"])
        assert.deepStrictEqual(user.aud, ["authenticated"])
        assert.strictEqual(user.app_metadata["role"], "admin")
        assert.isTrue(user.isAdmin, alg)
        const plain = yield* verifier.verify(yield* sign(server))
        assert.isFalse(plain.isAdmin)
      }
    }).pipe(Effect.provide(clients)))

  it.scoped("refuses every token of the attack corpus with its reason, as a typed failure", () =>
    Effect.gen(function*() {
      const { server } = yield* setup()
      const verifier = yield* Jwks.make(verifierOptions(server))
      const corpus = yield* Effect.promise(async () => attackCorpus(server, Math.floor(Date.now() / 1000)))
      assert.isAtLeast(corpus.length, 20)
      for (const attack of corpus) {
        const reason = yield* reasonOf(verifier.verify(attack.token))
        assert.include(attack.local, reason, attack.name)
      }
      assert.strictEqual(yield* reasonOf(verifier.verify("")), "Missing")
    }).pipe(Effect.provide(clients)))

  it.scoped("checks size, shape, header and claims before any key is looked up", () =>
    Effect.gen(function*() {
      const { server, user } = yield* setup()
      const verifier = yield* Jwks.make(verifierOptions(server))
      const now = yield* nowSeconds
      const kid = server.activeKid
      const header = { alg: "ES256", kid, typ: "JWT" }
      const cases: ReadonlyArray<readonly [string, string]> = [
        [craft(header, { ...validClaims(server, now), pad: "x".repeat(9000) }), "Malformed"],
        [craft({ ...header, kid: "k".repeat(129) }, validClaims(server, now)), "Malformed"],
        [craft({ ...header, crit: ["b64"], b64: false }, validClaims(server, now)), "Malformed"],
        [craft({ ...header, alg: "PS256" }, validClaims(server, now)), "AlgorithmNotAllowed"],
        [craft({ ...header, alg: "HS512" }, validClaims(server, now)), "AlgorithmNotAllowed"],
        [craft(header, validClaims(server, now, { exp: now - 31 })), "Expired"],
        [craft(header, validClaims(server, now, { sub: "not-a-uuid" })), "InvalidClaims"],
        [craft({ alg: "ES256", typ: "JWT" }, validClaims(server, now)), "Malformed"],
        [yield* sign(server, { user: user.id, claims: { aud: ["anon"] } }), "InvalidClaims"]
      ]
      for (const [token, expected] of cases) assert.strictEqual(yield* reasonOf(verifier.verify(token)), expected)
      assert.strictEqual(server.counts.jwks, 0)
    }).pipe(Effect.provide(clients)))

  it.scoped("applies the clock tolerance exactly at its edges (exp, iat, nbf)", () =>
    Effect.gen(function*() {
      const { server } = yield* setup()
      const now = 1_750_000_000
      yield* TestClock.setTime(now * 1000 + 999)
      const at = (tolerance: number, claims: Record<string, unknown>) =>
        Effect.flatMap(
          Jwks.make(verifierOptions(server, { clockTolerance: Duration.seconds(tolerance), tokenCacheMax: 0 })),
          (verifier) =>
            Effect.flatMap(
              Effect.promise(() =>
                server.signRaw({ alg: "ES256", kid: server.activeKid, typ: "JWT" }, validClaims(server, now, claims))
              ),
              (token) => reasonOf(verifier.verify(token))
            )
        )
      assert.strictEqual(yield* at(30, { exp: now - 30 }), "Expired")
      assert.strictEqual(yield* at(30, { exp: now - 29 }), "accepted")
      assert.strictEqual(yield* at(0, { exp: now }), "Expired")
      assert.strictEqual(yield* at(0, { exp: now + 1 }), "accepted")
      assert.strictEqual(yield* at(30, { iat: now + 30 }), "accepted")
      assert.strictEqual(yield* at(30, { iat: now + 31 }), "InvalidClaims")
      assert.strictEqual(yield* at(0, { iat: now + 1 }), "InvalidClaims")
      assert.strictEqual(yield* at(30, { nbf: now + 30 }), "accepted")
      assert.strictEqual(yield* at(30, { nbf: now + 31 }), "InvalidClaims")
    }).pipe(Effect.provide(clients)))

  it.scoped("accepts only the configured algorithms, and imports only keys of those algorithms", () =>
    Effect.gen(function*() {
      const { server, user } = yield* setup({ alg: "RS256" })
      const edKid = yield* Effect.promise(() => server.addStandbyKey("EdDSA"))
      const onlyEs = yield* Jwks.make(verifierOptions(server, { algorithms: ["ES256", "EdDSA"] }))
      assert.strictEqual(yield* reasonOf(onlyEs.verify(yield* sign(server, { user: user.id }))), "AlgorithmNotAllowed")
      assert.strictEqual(yield* reasonOf(onlyEs.verify(yield* sign(server, { user: user.id, kid: edKid }))), "accepted")
      assert.deepStrictEqual((yield* onlyEs.status).keySet.kids, [edKid])
      const rsa = yield* Jwks.make(verifierOptions(server, { algorithms: ["RS256"] }))
      assert.strictEqual(yield* reasonOf(rsa.verify(yield* sign(server, { user: user.id }))), "accepted")
      // An EdDSA header on the RSA key's kid: that key does not do that algorithm.
      const both = yield* Jwks.make(verifierOptions(server, { algorithms: ["RS256", "EdDSA"] }))
      const confused = yield* Effect.promise(() =>
        server.signRaw(
          { alg: "EdDSA", kid: server.activeKid, typ: "JWT" },
          validClaims(server, Math.floor(Date.now() / 1000))
        )
      )
      assert.strictEqual(yield* reasonOf(both.verify(confused)), "AlgorithmNotAllowed")
    }).pipe(Effect.provide(clients)))

  it.scoped("legacy HS256: verified with the configured secret, left undecided without one", () =>
    Effect.gen(function*() {
      const { server } = yield* setup()
      const secret = "super-secret-jwt-token-with-at-least-32-characters"
      const claims = validClaims(server, yield* nowSeconds)
      const legacy = yield* Jwks.make(verifierOptions(server, { legacySecret: Option.some(Redacted.make(secret)) }))
      assert.strictEqual(yield* reasonOf(legacy.verify(hs256(secret, claims))), "accepted")
      assert.strictEqual(yield* reasonOf(legacy.verify(hs256("another-secret", claims))), "InvalidSignature")
      const modern = yield* Jwks.make(verifierOptions(server))
      assert.strictEqual(yield* reasonOf(modern.verify(hs256(secret, claims))), "LegacyUnverifiable")
      assert.strictEqual(server.counts.jwks, 0)
    }).pipe(Effect.provide(clients)))

  describe("key set cache", () => {
    it.scoped("downloads once, then keeps the set for the shorter of max-age and the TTL", () =>
      Effect.gen(function*() {
        const { server, user } = yield* setup({ jwksMaxAge: 600 })
        const verifier = yield* Jwks.make(verifierOptions(server, { jwksCacheTtl: Duration.hours(1) }))
        for (let i = 0; i < 5; i++) yield* verifier.verify(yield* sign(server, { user: user.id }))
        assert.strictEqual(server.counts.jwks, 1)
        yield* TestClock.adjust(Duration.seconds(599))
        yield* verifier.verify(yield* sign(server, { user: user.id }))
        assert.strictEqual(server.counts.jwks, 1)
        yield* TestClock.adjust(Duration.seconds(2))
        yield* verifier.verify(yield* sign(server, { user: user.id }))
        assert.strictEqual(server.counts.jwks, 2)

        const shortTtl = yield* Jwks.make(verifierOptions(server, { jwksCacheTtl: Duration.seconds(100) }))
        yield* shortTtl.verify(yield* sign(server, { user: user.id }))
        assert.strictEqual(server.counts.jwks, 3)
        yield* TestClock.adjust(Duration.seconds(99))
        yield* shortTtl.verify(yield* sign(server, { user: user.id }))
        assert.strictEqual(server.counts.jwks, 3)
        yield* TestClock.adjust(Duration.seconds(2))
        yield* shortTtl.verify(yield* sign(server, { user: user.id }))
        assert.strictEqual(server.counts.jwks, 4)
      }).pipe(Effect.provide(clients)))

    it.scoped("refetches on a kid miss at most once per cooldown; a newly activated key is accepted on its first request after it", () =>
      Effect.gen(function*() {
        const { server, user } = yield* setup()
        const verifier = yield* Jwks.make(verifierOptions(server))
        yield* verifier.verify(yield* sign(server, { user: user.id }))
        const next = yield* Effect.promise(() => server.addStandbyKey())
        yield* Effect.promise(() => server.activateKey(next))
        const rotated = yield* sign(server, { user: user.id })
        assert.strictEqual(yield* reasonOf(verifier.verify(rotated)), "UnknownKey")
        yield* TestClock.adjust(Duration.seconds(29))
        assert.strictEqual(yield* reasonOf(verifier.verify(yield* sign(server, { user: user.id }))), "UnknownKey")
        assert.strictEqual(server.counts.jwks, 1)
        yield* TestClock.adjust(Duration.seconds(1))
        const first = yield* sign(server, { user: user.id })
        assert.strictEqual(yield* reasonOf(verifier.verify(first)), "accepted")
        assert.strictEqual(server.counts.jwks, 2)
        // A kid nobody publishes: the refetch it triggers is spent, the next miss waits for the cooldown.
        yield* TestClock.adjust(Duration.seconds(30))
        const unknown = yield* Effect.promise(() => server.unknownKeyToken({ user: user.id }))
        assert.strictEqual(yield* reasonOf(verifier.verify(unknown)), "UnknownKey")
        assert.strictEqual(yield* reasonOf(verifier.verify(unknown)), "UnknownKey")
        assert.strictEqual(server.counts.jwks, 3)
      }).pipe(Effect.provide(clients)))

    it.scoped("a key published as standby before its activation needs no refetch", () =>
      Effect.gen(function*() {
        const { server, user } = yield* setup()
        const next = yield* Effect.promise(() => server.addStandbyKey())
        const verifier = yield* Jwks.make(verifierOptions(server))
        yield* verifier.verify(yield* sign(server, { user: user.id }))
        yield* Effect.promise(() => server.activateKey(next))
        assert.strictEqual(yield* reasonOf(verifier.verify(yield* sign(server, { user: user.id }))), "accepted")
        assert.strictEqual(server.counts.jwks, 1)
      }).pipe(Effect.provide(clients)))

    it.scoped("a revoked key is refused once the cached key set has expired", () =>
      Effect.gen(function*() {
        const { server, user } = yield* setup({ jwksMaxAge: 600 })
        const old = server.activeKid
        const next = yield* Effect.promise(() => server.addStandbyKey())
        yield* Effect.promise(() => server.activateKey(next))
        const verifier = yield* Jwks.make(verifierOptions(server))
        assert.strictEqual(
          yield* reasonOf(verifier.verify(yield* sign(server, { user: user.id, kid: old }))),
          "accepted"
        )
        yield* Effect.promise(() => server.revokeKey(old))
        // Until the set expires, the revocation is not known here (the provider's own max-age).
        assert.strictEqual(
          yield* reasonOf(verifier.verify(yield* sign(server, { user: user.id, kid: old }))),
          "accepted"
        )
        yield* TestClock.adjust(Duration.seconds(601))
        assert.strictEqual(
          yield* reasonOf(verifier.verify(yield* sign(server, { user: user.id, kid: old }))),
          "UnknownKey"
        )
        assert.strictEqual(yield* reasonOf(verifier.verify(yield* sign(server, { user: user.id }))), "accepted")
        assert.strictEqual(server.counts.jwks, 2)
      }).pipe(Effect.provide(clients)))

    it.scoped("concurrent misses share one download", () =>
      Effect.gen(function*() {
        const { server, user } = yield* setup()
        const verifier = yield* Jwks.make(verifierOptions(server))
        const first = yield* Effect.forEach(Array.from({ length: 20 }), () => sign(server, { user: user.id }))
        yield* Effect.forEach(first, verifier.verify, { concurrency: "unbounded", discard: true })
        assert.strictEqual(server.counts.jwks, 1)
        const next = yield* Effect.promise(() => server.addStandbyKey())
        yield* Effect.promise(() => server.activateKey(next))
        yield* TestClock.adjust(Duration.seconds(31))
        const rotated = yield* Effect.forEach(Array.from({ length: 20 }), () => sign(server, { user: user.id }))
        const reasons = yield* Effect.forEach(rotated, (token) => reasonOf(verifier.verify(token)), {
          concurrency: "unbounded"
        })
        assert.deepStrictEqual(new Set(reasons), new Set(["accepted"]))
        assert.strictEqual(server.counts.jwks, 2)
      }).pipe(Effect.provide(clients)))

    it.scoped("never downloads more than the reload budget in a minute", () =>
      Effect.gen(function*() {
        const { server } = yield* setup()
        const verifier = yield* Jwks.make(verifierOptions(server, { refreshCooldown: Duration.zero, reloadBudget: 3 }))
        const randomKid = Effect.map(nowSeconds, (now) =>
          craft({ alg: "ES256", kid: randomUUID(), typ: "JWT" }, validClaims(server, now)))
        for (let i = 0; i < 10; i++) {
          assert.strictEqual(yield* reasonOf(verifier.verify(yield* randomKid)), "UnknownKey")
        }
        assert.strictEqual(server.counts.jwks, 3)
        yield* TestClock.adjust(Duration.seconds(59))
        for (let i = 0; i < 10; i++) {
          yield* reasonOf(verifier.verify(yield* randomKid))
        }
        assert.strictEqual(server.counts.jwks, 3)
        yield* TestClock.adjust(Duration.seconds(1))
        for (let i = 0; i < 10; i++) {
          yield* reasonOf(verifier.verify(yield* randomKid))
        }
        assert.strictEqual(server.counts.jwks, 6)
      }).pipe(Effect.provide(clients)))

    it.scoped("serves the last good key set for the stale window while the provider is unreachable", () =>
      Effect.gen(function*() {
        const { server, user } = yield* setup({ jwksMaxAge: 600 })
        const verifier = yield* Jwks.make(verifierOptions(server, { staleWindow: Duration.hours(1) }))
        yield* verifier.verify(yield* sign(server, { user: user.id }))
        yield* Effect.promise(() => server.setFailure({ _tag: "Refuse" }))
        yield* TestClock.adjust(Duration.seconds(601))
        assert.strictEqual(yield* reasonOf(verifier.verify(yield* sign(server, { user: user.id }))), "accepted")
        const status = yield* verifier.status
        assert.isTrue(status.keySet.lastFailure?.unreachable)
        yield* verifier.ready
        // Past the stale window nothing is left to verify with.
        yield* TestClock.adjust(Duration.seconds(3600))
        const late = yield* sign(server, { user: user.id })
        const failure = yield* Effect.flip(verifier.verify(late))
        assert.strictEqual(failure.reason._tag, "KeySetUnavailable")
        assert.isTrue(failure.reason._tag === "KeySetUnavailable" && failure.reason.providerUnreachable)
        const notReady = yield* Effect.flip(verifier.ready)
        assert.isTrue(notReady.unreachable)
        yield* Effect.promise(() => server.clearFailure())
        yield* TestClock.adjust(Duration.seconds(30))
        assert.strictEqual(yield* reasonOf(verifier.verify(late)), "accepted")
        yield* verifier.ready
      }).pipe(Effect.provide(clients)))

    it.scoped("ready fails when no key set was ever fetched and the provider is down", () =>
      Effect.gen(function*() {
        const { server, user } = yield* setup()
        yield* Effect.promise(() => server.setFailure({ _tag: "Status", status: 503 }, "jwks"))
        const verifier = yield* Jwks.make(verifierOptions(server))
        const failure = yield* Effect.flip(verifier.ready)
        assert.isTrue(failure.unreachable)
        assert.strictEqual(failure.detail, "status 503")
        const reason = yield* Effect.flip(verifier.verify(yield* sign(server, { user: user.id })))
        // Within the cooldown no new download: the failure is a memory, not news.
        assert.deepStrictEqual(
          reason.reason._tag === "KeySetUnavailable" ? reason.reason.providerUnreachable : undefined,
          false
        )
        yield* Effect.promise(() => server.clearFailure())
        yield* TestClock.adjust(Duration.seconds(30))
        yield* verifier.ready
      }).pipe(Effect.provide(clients)))
  })

  describe("token cache", () => {
    it.scoped("a verified token is remembered for the TTL, without its key", () =>
      Effect.gen(function*() {
        const { server, user } = yield* setup()
        const verifier = yield* Jwks.make(
          verifierOptions(server, { jwksCacheTtl: Duration.seconds(5), staleWindow: Duration.zero })
        )
        const token = yield* sign(server, { user: user.id })
        yield* verifier.verify(token)
        assert.strictEqual((yield* verifier.status).cachedTokens, 1)
        yield* Effect.promise(() => server.setFailure({ _tag: "Refuse" }))
        yield* TestClock.adjust(Duration.seconds(30))
        // The key set is gone; the remembered token still passes, a new one cannot.
        assert.strictEqual(yield* reasonOf(verifier.verify(token)), "accepted")
        assert.strictEqual(
          yield* reasonOf(verifier.verify(yield* sign(server, { user: user.id }))),
          "KeySetUnavailable"
        )
        yield* TestClock.adjust(Duration.seconds(30))
        assert.strictEqual(yield* reasonOf(verifier.verify(token)), "KeySetUnavailable")
      }).pipe(Effect.provide(clients)))

    it.scoped("an entry never outlives the token's exp", () =>
      Effect.gen(function*() {
        const { server, user } = yield* setup()
        const verifier = yield* Jwks.make(verifierOptions(server, { clockTolerance: Duration.zero }))
        const token = yield* sign(server, { user: user.id, expiresIn: 20 })
        assert.strictEqual(yield* reasonOf(verifier.verify(token)), "accepted")
        yield* TestClock.adjust(Duration.seconds(19))
        assert.strictEqual(yield* reasonOf(verifier.verify(token)), "accepted")
        yield* TestClock.adjust(Duration.seconds(1))
        assert.strictEqual(yield* reasonOf(verifier.verify(token)), "Expired")
      }).pipe(Effect.provide(clients)))

    it.scoped("holds at most its maximum number of entries", () =>
      Effect.gen(function*() {
        const { server, user } = yield* setup()
        const verifier = yield* Jwks.make(verifierOptions(server, { tokenCacheMax: 10 }))
        for (let i = 0; i < 30; i++) yield* verifier.verify(yield* sign(server, { user: user.id }))
        assert.strictEqual((yield* verifier.status).cachedTokens, 10)
      }).pipe(Effect.provide(clients)))
  })

  describe("claim rules (property)", () => {
    let server: SupabaseStandInServer
    beforeAll(async () => {
      server = await startSupabaseStandIn()
    })
    afterAll(() => server.stop())

    const now = 1_750_000_000
    const tolerance = 30
    const absent = Symbol("absent")
    type Claim = { readonly ok: boolean; readonly value: unknown }
    const claim = (valid: fc.Arbitrary<unknown>, invalid: fc.Arbitrary<unknown>): fc.Arbitrary<Claim> =>
      fc.oneof(
        { weight: 6, arbitrary: valid.map((value) => ({ ok: true, value })) },
        { weight: 1, arbitrary: invalid.map((value) => ({ ok: false, value })) }
      )
    const nonUuid = fc.string().filter((s) =>
      !/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(s)
    )
    const issuer = () => server.issuer
    // Offsets from now, with the edges of the tolerance drawn often.
    const offset = (min: number, max: number, edge: number) =>
      fc.oneof(fc.constant(edge), fc.integer({ min, max })).map((d) => now + d)
    const claimSet = fc.record({
      exp: claim(
        offset(-tolerance + 1, 7200, -tolerance + 1),
        fc.oneof(offset(-100_000, -tolerance, -tolerance), fc.constant(absent), fc.string(), fc.constant(null))
      ),
      iat: claim(
        offset(-7200, tolerance, tolerance),
        fc.oneof(offset(tolerance + 1, 100_000, tolerance + 1), fc.constant(absent), fc.string())
      ),
      nbf: claim(
        fc.oneof(fc.constant(absent), offset(-7200, tolerance, tolerance)),
        fc.oneof(offset(tolerance + 1, 100_000, tolerance + 1), fc.string())
      ),
      iss: claim(
        fc.constant("issuer"),
        fc.oneof(fc.constant(absent), fc.constant("issuer/"), fc.constant("ISSUER"), fc.string(), fc.integer())
      ),
      aud: claim(
        fc.oneof(
          fc.constant("authenticated"),
          fc.array(fc.string().filter((s) => s !== "authenticated"), { maxLength: 3 }).map((others) =>
            [...others, "authenticated"].reverse()
          )
        ),
        fc.oneof(
          fc.constant(absent),
          fc.constant("anon"),
          fc.array(fc.string().filter((s) => s !== "authenticated"), { maxLength: 3 }),
          fc.constant(["authenticated", 5]),
          fc.integer()
        )
      ),
      sub: claim(fc.uuid(), fc.oneof(fc.constant(absent), nonUuid, fc.integer())),
      role: claim(
        fc.oneof(fc.constant("authenticated"), fc.string({ minLength: 1 })),
        fc.oneof(fc.constant(absent), fc.constant(""), fc.integer())
      ),
      session_id: claim(fc.uuid(), fc.oneof(fc.constant(absent), nonUuid, fc.integer())),
      app_metadata: claim(
        fc.oneof(
          fc.constant(absent),
          fc.constant(null),
          fc.dictionary(fc.string(), fc.string()),
          fc.constant({ role: "admin" })
        ),
        fc.oneof(fc.string(), fc.array(fc.integer()), fc.integer())
      )
    })

    const isAdminMetadata = (u: unknown) => typeof u === "object" && u !== null && "role" in u && u.role === "admin"

    it.effect.prop("the verifier accepts a claim set exactly when every rule holds", {
      claims: claimSet,
      millis: fc.integer({ min: 0, max: 999 })
    }, ({ claims, millis }) =>
      Effect.gen(function*() {
        yield* TestClock.setTime(now * 1000 + millis)
        const payload: Record<string, unknown> = {}
        for (const [name, { value }] of Object.entries(claims)) {
          if (value === absent) continue
          payload[name] = name === "iss" && typeof value === "string"
            ? value.replace(/issuer/i, (m) => m === "issuer" ? issuer() : issuer().toUpperCase())
            : value
        }
        const token = yield* Effect.promise(() =>
          server.signRaw({ alg: "ES256", kid: server.activeKid, typ: "JWT" }, payload)
        )
        const verifier = yield* Jwks.make(verifierOptions(server))
        const expected = Object.values(claims).every((c) => c.ok)
        const result = yield* Effect.either(verifier.verify(token))
        assert.strictEqual(result._tag === "Right", expected, JSON.stringify(payload))
        if (result._tag === "Right") {
          assert.strictEqual(result.right.sub, payload["sub"])
          assert.strictEqual(result.right.session_id, payload["session_id"])
          assert.strictEqual(result.right.isAdmin, isAdminMetadata(payload["app_metadata"]))
        } else {
          assert.notStrictEqual(result.left.reason._tag, "InvalidSignature")
        }
      }).pipe(Effect.scoped, Effect.provide(clients)), { fastCheck: { numRuns: 200 } })
  })

  describe("config", () => {
    const read = (entries: Record<string, string>) =>
      Effect.withConfigProvider(AuthSettings.verifierConfig, ConfigProvider.fromMap(new Map(Object.entries(entries))))

    it.effect("defaults to the documented values", () =>
      Effect.gen(function*() {
        const tunables = yield* read({})
        assert.deepStrictEqual(tunables, Jwks.defaults)
        assert.deepStrictEqual(tunables.algorithms, ["ES256", "RS256", "EdDSA"])
        assert.strictEqual(Duration.toSeconds(tunables.jwksCacheTtl), 3600)
        assert.strictEqual(Duration.toSeconds(tunables.refreshCooldown), 30)
        assert.strictEqual(tunables.reloadBudget, 10)
        assert.strictEqual(Duration.toSeconds(tunables.clockTolerance), 30)
        assert.strictEqual(tunables.maxTokenBytes, 8192)
        assert.strictEqual(Duration.toSeconds(tunables.tokenCacheTtl), 60)
        assert.strictEqual(tunables.tokenCacheMax, 5000)
      }))

    it.effect("reads every setting from its variable", () =>
      Effect.gen(function*() {
        const tunables = yield* read({
          JWT_ALGORITHMS: "ES256, ES512,RS512",
          JWT_CLOCK_TOLERANCE: "5",
          JWT_MAX_TOKEN_BYTES: "4096",
          JWT_MAX_KID_LENGTH: "64",
          JWKS_CACHE_TTL: "120",
          JWKS_REFRESH_COOLDOWN: "0",
          JWKS_RELOAD_BUDGET: "4",
          JWKS_STALE_WINDOW: "900",
          TOKEN_CACHE_TTL: "15",
          TOKEN_CACHE_MAX: "100"
        })
        assert.deepStrictEqual(tunables.algorithms, ["ES256", "ES512", "RS512"])
        assert.strictEqual(Duration.toSeconds(tunables.clockTolerance), 5)
        assert.strictEqual(tunables.maxTokenBytes, 4096)
        assert.strictEqual(tunables.maxKidLength, 64)
        assert.strictEqual(Duration.toSeconds(tunables.jwksCacheTtl), 120)
        assert.strictEqual(Duration.toMillis(tunables.refreshCooldown), 0)
        assert.strictEqual(tunables.reloadBudget, 4)
        assert.strictEqual(Duration.toSeconds(tunables.staleWindow), 900)
        assert.strictEqual(Duration.toSeconds(tunables.tokenCacheTtl), 15)
        assert.strictEqual(tunables.tokenCacheMax, 100)
      }))

    it.effect("refuses symmetric or unknown algorithms and nonsensical limits", () =>
      Effect.gen(function*() {
        for (
          const entries of [
            { JWT_ALGORITHMS: "HS256" },
            { JWT_ALGORITHMS: "ES256,none" },
            { JWT_ALGORITHMS: " , " },
            { JWKS_RELOAD_BUDGET: "0" },
            { JWKS_CACHE_TTL: "0" },
            { JWT_MAX_TOKEN_BYTES: "10" },
            { TOKEN_CACHE_MAX: "-1" }
          ]
        ) {
          const exit = yield* Effect.exit(read(entries))
          assert.isTrue(Exit.isFailure(exit), JSON.stringify(entries))
        }
      }))

    it.effect("derives the JWKS URL and issuer from the Supabase settings", () =>
      Effect.gen(function*() {
        const supabase = {
          url: Option.some("https://project.supabase.co"),
          anonKey: Option.none(),
          serviceRoleKey: Option.none(),
          jwtSecret: Option.none(),
          audience: "authenticated",
          issuer: Option.none<string>()
        }
        const options = yield* Jwks.optionsFromSettings(supabase, Jwks.defaults)
        assert.strictEqual(options.jwksUrl, "https://project.supabase.co/auth/v1/.well-known/jwks.json")
        assert.strictEqual(options.issuer, "https://project.supabase.co/auth/v1")
        const custom = yield* Jwks.optionsFromSettings(
          { ...supabase, issuer: Option.some("https://auth.example.com") },
          Jwks.defaults
        )
        assert.strictEqual(custom.issuer, "https://auth.example.com")
        const missing = yield* Effect.flip(Jwks.optionsFromSettings({ ...supabase, url: Option.none() }, Jwks.defaults))
        assert.include(String(missing), "SUPABASE_URL")
      }))
  })
})
