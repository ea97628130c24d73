import { assert, describe, it } from "@effect/vitest"
import {
  Cause,
  Clock,
  ConfigProvider,
  Duration,
  Effect,
  Either,
  Exit,
  FastCheck as fc,
  Fiber,
  Layer,
  Option,
  Redacted,
  Runtime,
  TestClock
} from "effect"
import { randomUUID } from "node:crypto"
import * as Auth from "../../../src/core/auth/Auth.js"
import * as AuthSettings from "../../../src/core/auth/AuthSettings.js"
import * as HttpClients from "../../../src/core/clients/HttpClients.js"
import * as ApiError from "../../../src/core/errors/ApiError.js"
import * as Lifecycle from "../../../src/core/runtime/Lifecycle.js"
import * as Readiness from "../../../src/core/runtime/Readiness.js"
import type { SignTokenOptions, SupabaseStandInServer } from "../../../src/dev/SupabaseStandIn.js"
import {
  attackCorpus,
  clients,
  clientTimeout,
  clockAtRealTime,
  craft,
  eventually,
  makeAuth,
  memoryLogger,
  nowSeconds,
  standIn,
  validClaims
} from "../../support/AuthFixtures.js"

/** The failure of `verifyToken`, with its public face; a defect fails the test. */
const refusal = (effect: Effect.Effect<unknown, Auth.AuthError>) =>
  Effect.flatMap(Effect.exit(effect), (exit) => {
    assert.isTrue(Exit.isFailure(exit), "expected the token to be refused")
    const failure = Exit.isFailure(exit) ? Cause.failureOption(exit.cause) : Option.none()
    assert.isTrue(
      Option.isSome(failure),
      Exit.isFailure(exit) ? `not a typed failure: ${Cause.pretty(exit.cause)}` : ""
    )
    const error = Option.getOrThrow(failure)
    return Effect.succeed({ error, reason: error.reason._tag, response: ApiError.render(error[ApiError.ToApiError]()) })
  })

const sign = (server: SupabaseStandInServer, options: SignTokenOptions = {}) =>
  Effect.flatMap(nowSeconds, (iat) => Effect.promise(() => server.signToken({ iat, ...options })))

/** A token signed by a key activated after the verifier loaded its set: local verification cannot decide it yet. */
const rotatedToken = (server: SupabaseStandInServer, user: string) =>
  Effect.gen(function*() {
    const next = yield* Effect.promise(() => server.addStandbyKey())
    yield* Effect.promise(() => server.activateKey(next))
    return yield* sign(server, { user })
  })

const setup = (
  overrides: Parameters<typeof makeAuth>[1] = {},
  options: Parameters<typeof standIn>[0] = {},
  clock: "test" | "live" = "test"
) =>
  Effect.gen(function*() {
    const server = yield* standIn(options)
    if (clock === "test") yield* clockAtRealTime
    const user = server.createUser({ email: `u-${randomUUID().slice(0, 8)}@example.com`, password: "secret-123" })
    const { auth, verifier } = yield* makeAuth(server, overrides)
    return { server, user, auth, verifier }
  })

/** Loads the key set (one good token) so later tests start from a warm verifier. */
const warm = (server: SupabaseStandInServer, auth: Auth.Service, user: string) =>
  Effect.flatMap(sign(server, { user }), auth.verifyToken)

describe("Auth", () => {
  it.scoped("accepts a valid token locally, with no call to the provider", () =>
    Effect.gen(function*() {
      const { auth, server, user } = yield* setup()
      const token = yield* sign(server, { user: user.id })
      const verified = yield* auth.verifyToken(token)
      assert.strictEqual(verified.sub, user.id)
      assert.strictEqual(verified.email, user.email)
      assert.isFalse(verified.isAdmin)
      assert.deepStrictEqual(yield* auth.verifyToken(token), verified)
      assert.strictEqual(server.counts.user, 0)
    }).pipe(Effect.provide(clients)))

  it.scoped("refuses the whole attack corpus with 401, never a 500, and asks the provider only what it cannot decide", () => {
    const logs = memoryLogger()
    return Effect.gen(function*() {
      const { auth, server } = yield* setup()
      const corpus = yield* Effect.promise(() => attackCorpus(server, Math.floor(Date.now() / 1000)))
      for (const attack of corpus) {
        const { response } = yield* refusal(auth.verifyToken(attack.token))
        assert.strictEqual(response.status, 401, attack.name)
        assert.strictEqual(response.body.error.code, "UNAUTHORIZED")
        assert.strictEqual(response.headers["www-authenticate"], "Bearer")
      }
      const undecided = corpus.filter((attack) =>
        attack.local.some((r) => r === "UnknownKey" || r === "LegacyUnverifiable")
      )
      assert.strictEqual(server.counts.user, undecided.length)
      const missing = yield* refusal(auth.verifyToken(""))
      assert.strictEqual(missing.response.status, 401)
      assert.strictEqual(missing.response.body.error.message, "Authentication required")
      // Reasons are logged; tokens (and what they carry) are not.
      assert.isAtLeast(logs.lines.filter((line) => line.includes("Token refused")).length, corpus.length)
      const secrets = corpus.flatMap((attack) => attack.token.split(".").filter((part) => part.length >= 16))
      for (const line of logs.lines) {
        for (const secret of secrets) assert.notInclude(line, secret.slice(0, 64))
        assert.notInclude(line, "DROP TABLE")
        assert.notInclude(line, "etc/passwd")
      }
    }).pipe(Effect.provide(clients), Effect.provide(logs.layer))
  })

  it.scoped("a token signed by a newly activated key is accepted on its first request, through the provider", () =>
    Effect.gen(function*() {
      const { auth, server, user } = yield* setup()
      yield* warm(server, auth, user.id)
      const token = yield* rotatedToken(server, user.id)
      const verified = yield* auth.verifyToken(token)
      assert.strictEqual(verified.sub, user.id)
      assert.strictEqual(server.counts.user, 1)
      // Remembered: the provider is not asked twice about the same token.
      yield* auth.verifyToken(token)
      assert.strictEqual(server.counts.user, 1)
    }).pipe(Effect.provide(clients)))

  it.scoped("a token signed with a revoked key is refused with 401 once the cached key set has expired", () =>
    Effect.gen(function*() {
      const { auth, server, user } = yield* setup({}, { jwksMaxAge: 600 })
      const old = server.activeKid
      yield* warm(server, auth, user.id)
      const next = yield* Effect.promise(() => server.addStandbyKey())
      yield* Effect.promise(() => server.activateKey(next))
      yield* Effect.promise(() => server.revokeKey(old))
      yield* TestClock.adjust(Duration.seconds(601))
      const { reason, response } = yield* refusal(auth.verifyToken(yield* sign(server, { user: user.id, kid: old })))
      assert.strictEqual(reason, "RejectedByProvider")
      assert.strictEqual(response.status, 401)
      assert.strictEqual((yield* auth.verifyToken(yield* sign(server, { user: user.id }))).sub, user.id)
    }).pipe(Effect.provide(clients)))

  it.scoped("requests with the same undecided token share one provider call", () =>
    Effect.gen(function*() {
      const { auth, server, user } = yield* setup()
      yield* warm(server, auth, user.id)
      const token = yield* rotatedToken(server, user.id)
      const results = yield* Effect.forEach(Array.from({ length: 10 }), () => auth.verifyToken(token), {
        concurrency: "unbounded"
      })
      assert.isTrue(results.every((r) => r.sub === user.id))
      assert.strictEqual(server.counts.user, 1)
    }).pipe(Effect.provide(clients)))

  // The request path asks `remembered` first and builds no effect when it answers: it must answer only what
  // `verifyAuthorization` would, and answer for every remembered token, in any header that carries one.
  it.scoped("remembered answers only what verifyAuthorization would succeed with, and for every token it verified", () =>
    Effect.gen(function*() {
      const { auth, server, user } = yield* setup()
      const tokens = yield* Effect.all([sign(server, { user: user.id }), sign(server, { user: user.id })])
      const verified = new Set<string>()
      const runtime = yield* Effect.runtime<never>()
      const anyCase = fc.array(fc.boolean(), { minLength: 6, maxLength: 6 }).map((upper) =>
        [..."bearer"].map((c, i) => (upper[i] ? c.toUpperCase() : c)).join("")
      )
      const token = fc.oneof(
        fc.constantFrom(...tokens),
        fc.constantFrom(...tokens).map((t) => `${t}=`),
        fc.constantFrom(...tokens).map((t) => `${t}!`),
        fc.constantFrom(...tokens).map((t) => t.slice(0, -1)),
        fc.constantFrom(...tokens).map((t) => t.replace(".", "..")),
        fc.string({ maxLength: 12 })
      )
      const header = fc.oneof(
        fc.tuple(anyCase, fc.constantFrom(" ", "  ", "\t", ""), token).map(([scheme, gap, t]) => `${scheme}${gap}${t}`),
        fc.tuple(fc.string({ maxLength: 8 }), token).map(([prefix, t]) => `${prefix}${t}`)
      )
      const grammar = /^Bearer +([A-Za-z0-9\-._~+/]+=*)$/i
      yield* Effect.promise(() =>
        fc.assert(
          fc.asyncProperty(header, (value) =>
            Runtime.runPromise(runtime)(Effect.gen(function*() {
              const now = yield* Clock.currentTimeMillis
              const remembered = auth.remembered(value, now)
              const match = grammar.exec(value)
              if (match !== null && verified.has(match[1]!)) assert.isDefined(remembered, value.slice(0, 12))
              const exit = yield* Effect.exit(auth.verifyAuthorization(value))
              if (Exit.isSuccess(exit)) verified.add(match![1]!)
              if (remembered !== undefined) {
                assert.isTrue(Exit.isSuccess(exit), value.slice(0, 12))
                assert.deepStrictEqual(Exit.isSuccess(exit) ? exit.value : undefined, remembered)
              }
            }))),
          { numRuns: 400 }
        )
      )
      assert.strictEqual(verified.size, 2)
      // Remembered for the token cache's lifetime, no longer.
      yield* TestClock.adjust(Duration.seconds(61))
      assert.isUndefined(auth.remembered(`Bearer ${tokens[0]}`, yield* Clock.currentTimeMillis))
    }).pipe(Effect.provide(clients)))

  it.scoped("remembers refused tokens for the negative cache TTL", () =>
    Effect.gen(function*() {
      const { auth, server, user } = yield* setup({ auth: { negativeCacheTtl: Duration.seconds(30) } })
      const unknown = yield* Effect.promise(() => server.unknownKeyToken({ user: user.id }))
      assert.strictEqual((yield* refusal(auth.verifyToken(unknown))).reason, "RejectedByProvider")
      assert.strictEqual((yield* refusal(auth.verifyToken(unknown))).reason, "RejectedByProvider")
      assert.strictEqual(server.counts.user, 1)
      yield* TestClock.adjust(Duration.seconds(29))
      yield* refusal(auth.verifyToken(unknown))
      assert.strictEqual(server.counts.user, 1)
      yield* TestClock.adjust(Duration.seconds(1))
      yield* refusal(auth.verifyToken(unknown))
      assert.strictEqual(server.counts.user, 2)
    }).pipe(Effect.provide(clients)))

  it.scoped("spends at most the introspection budget per minute; over it, undecided tokens get 401", () =>
    Effect.gen(function*() {
      const { auth, server, user } = yield* setup({ auth: { introspectionBudget: 3 } })
      const reasons: Array<string> = []
      for (let i = 0; i < 10; i++) {
        const token = yield* Effect.promise(() => server.unknownKeyToken({ user: user.id }))
        const { reason, response } = yield* refusal(auth.verifyToken(token))
        assert.strictEqual(response.status, 401)
        reasons.push(reason)
      }
      assert.strictEqual(server.counts.user, 3)
      assert.deepStrictEqual(reasons, [
        ...Array(3).fill("RejectedByProvider"),
        ...Array(7).fill("IntrospectionBudgetExhausted")
      ])
      yield* TestClock.adjust(Duration.seconds(59))
      yield* refusal(auth.verifyToken(yield* Effect.promise(() => server.unknownKeyToken({ user: user.id }))))
      assert.strictEqual(server.counts.user, 3)
      yield* TestClock.adjust(Duration.seconds(1))
      yield* refusal(auth.verifyToken(yield* Effect.promise(() => server.unknownKeyToken({ user: user.id }))))
      assert.strictEqual(server.counts.user, 4)
    }).pipe(Effect.provide(clients)))

  it.scopedLive("a flood of 10 000 tokens with random kids: every one 401, provider calls within the budgets", () => {
    const logs = memoryLogger()
    return Effect.gen(function*() {
      // No cooldown, so the reload budget alone bounds the JWKS downloads.
      const { auth, server } = yield* setup({ verifier: { refreshCooldown: Duration.zero } }, {}, "live")
      const now = yield* nowSeconds
      const payload = validClaims(server, now)
      const flood = Array.from(
        { length: 10_000 },
        () => craft({ alg: "ES256", kid: randomUUID(), typ: "JWT" }, payload)
      )
      const statuses = yield* Effect.forEach(
        flood,
        (token) => Effect.map(refusal(auth.verifyToken(token)), ({ response }) => response.status),
        { concurrency: 64 }
      )
      assert.strictEqual(statuses.length, 10_000)
      assert.isTrue(statuses.every((status) => status === 401))
      assert.isAtMost(server.counts.jwks, Auth.defaults.verifier.reloadBudget)
      assert.isAtMost(server.counts.user, Auth.defaults.introspectionBudget)
      assert.isAtLeast(server.counts.user, 1)
    }).pipe(
      // Real time, and the stand-in shares the CPU with the flood: the default client timeout, not the short one.
      Effect.provide(HttpClients.layer()),
      Effect.provide(logs.layer)
    )
  })

  describe("provider outage", () => {
    it.scoped("refused connections: a token that needs the provider gets 503 with Retry-After 5", () =>
      Effect.gen(function*() {
        // No key set fetched yet.
        const cold = yield* setup()
        yield* Effect.promise(() => cold.server.setFailure({ _tag: "Refuse" }))
        const first = yield* refusal(cold.auth.verifyToken(yield* sign(cold.server, { user: cold.user.id })))
        assert.strictEqual(first.reason, "ProviderUnreachable")
        assert.strictEqual(first.response.status, 503)
        assert.strictEqual(first.response.body.error.code, "SERVICE_UNAVAILABLE")
        assert.strictEqual(first.response.headers["retry-after"], "5")

        // Its key not known yet, within the cooldown and after it.
        const warmOne = yield* setup()
        yield* warm(warmOne.server, warmOne.auth, warmOne.user.id)
        const rotated = yield* rotatedToken(warmOne.server, warmOne.user.id)
        yield* Effect.promise(() => warmOne.server.setFailure({ _tag: "Refuse" }))
        const within = yield* refusal(warmOne.auth.verifyToken(rotated))
        assert.strictEqual(within.response.status, 503)
        assert.strictEqual(within.response.headers["retry-after"], "5")
        yield* TestClock.adjust(Duration.seconds(31))
        const after = yield* refusal(warmOne.auth.verifyToken(yield* rotatedToken(warmOne.server, warmOne.user.id)))
        assert.strictEqual(after.response.status, 503)
      }).pipe(Effect.provide(clients)))

    it.scoped("Retry-After is kept: once the provider is back, by the time the 503 said a new key is accepted and a random kid is refused with 401", () =>
      Effect.gen(function*() {
        const { auth, server, user } = yield* setup()
        yield* warm(server, auth, user.id)
        // Past the refresh cooldown: the unknown kid makes the verifier download the key set, which fails.
        yield* TestClock.adjust(Duration.seconds(31))
        yield* Effect.promise(() => server.setFailure({ _tag: "Refuse" }))
        const during = yield* refusal(auth.verifyToken(yield* rotatedToken(server, user.id)))
        assert.strictEqual(during.response.status, 503)
        const retryAfter = Number(during.response.headers["retry-after"])
        assert.strictEqual(retryAfter, Auth.unreachableRetryAfterSeconds)
        // Asked again before the promised time, the answer is the same 503, without a call.
        const early = yield* refusal(auth.verifyToken(yield* rotatedToken(server, user.id)))
        assert.strictEqual(early.response.status, 503)
        assert.isAtMost(Number(early.response.headers["retry-after"]), retryAfter)

        yield* Effect.promise(() => server.clearFailure())
        const before = { ...server.counts }
        // The promised time, well within the 30 s refresh cooldown.
        yield* TestClock.adjust(Duration.seconds(retryAfter))
        const published = yield* rotatedToken(server, user.id)
        assert.strictEqual((yield* auth.verifyToken(published)).sub, user.id)
        // Decided locally, from a new download of the key set: not by asking the provider about the token.
        assert.strictEqual(server.counts.jwks - before.jwks, 1)
        assert.strictEqual(server.counts.user - before.user, 0)
        const random = craft({ alg: "ES256", kid: randomUUID(), typ: "JWT" }, validClaims(server, yield* nowSeconds))
        const refused = yield* refusal(auth.verifyToken(random))
        assert.strictEqual(refused.response.status, 401)
        assert.strictEqual(refused.reason, "RejectedByProvider")
        // And the key set is not downloaded again for it: the cooldown holds once the provider answers.
        assert.strictEqual(server.counts.jwks - before.jwks, 1)
      }).pipe(Effect.provide(clients)))

    it.scoped("a flood of 2000 random kids when clients come back after an outage: every one 401, at most 5 downloads, introspection for at most 10%", () =>
      Effect.gen(function*() {
        const { auth, server, user } = yield* setup()
        yield* warm(server, auth, user.id)
        yield* TestClock.adjust(Duration.seconds(31))
        yield* Effect.promise(() => server.setFailure({ _tag: "Refuse" }))
        const payload = validClaims(server, yield* nowSeconds)
        const randomKid = () => craft({ alg: "ES256", kid: randomUUID(), typ: "JWT" }, payload)
        const during = yield* refusal(auth.verifyToken(randomKid()))
        assert.strictEqual(during.response.status, 503)
        yield* Effect.promise(() => server.clearFailure())
        const before = { ...server.counts }
        yield* TestClock.adjust(Duration.seconds(Number(during.response.headers["retry-after"])))
        const statuses = yield* Effect.forEach(
          Array.from({ length: 2000 }, randomKid),
          (token) => Effect.map(refusal(auth.verifyToken(token)), ({ response }) => response.status),
          { concurrency: 64 }
        )
        assert.strictEqual(statuses.length, 2000)
        assert.deepStrictEqual(statuses.filter((status) => status !== 401), [])
        const downloads = server.counts.jwks - before.jwks
        assert.isAtLeast(downloads, 1)
        assert.isAtMost(downloads, 5)
        assert.isAtMost(server.counts.user - before.user, 200)
        // A valid token of a key published meanwhile is still accepted, and locally.
        const userCalls = server.counts.user
        assert.strictEqual((yield* auth.verifyToken(yield* sign(server, { user: user.id }))).sub, user.id)
        assert.strictEqual(server.counts.user, userCalls)
      }).pipe(Effect.provide(clients)))

    it.scoped("refused connections: cached tokens and new tokens from known keys pass, garbage is still 401", () =>
      Effect.gen(function*() {
        const { auth, server, user } = yield* setup({}, { jwksMaxAge: 600 })
        const cached = yield* sign(server, { user: user.id })
        yield* auth.verifyToken(cached)
        yield* Effect.promise(() => server.setFailure({ _tag: "Refuse" }))
        assert.strictEqual((yield* auth.verifyToken(cached)).sub, user.id)
        assert.strictEqual((yield* auth.verifyToken(yield* sign(server, { user: user.id }))).sub, user.id)
        for (
          const garbage of [
            "garbage",
            "a.b.c",
            yield* sign(server, { user: user.id, iat: (yield* nowSeconds) - 7200, expiresIn: 60 })
          ]
        ) {
          assert.strictEqual((yield* refusal(auth.verifyToken(garbage))).response.status, 401)
        }
        // Past the key set's max-age the last good set still serves (stale window).
        yield* TestClock.adjust(Duration.seconds(601))
        assert.strictEqual((yield* auth.verifyToken(yield* sign(server, { user: user.id }))).sub, user.id)
        assert.strictEqual(server.counts.user, 0)
      }).pipe(Effect.provide(clients)))

    it.scoped("a hanging provider: 503 as soon as the client's timeout passes, not before", () =>
      Effect.gen(function*() {
        const { auth, server, user } = yield* setup()
        yield* Effect.promise(() => server.setFailure({ _tag: "Hang" }))
        const token = yield* sign(server, { user: user.id })
        const fiber = yield* Effect.fork(refusal(auth.verifyToken(token)))
        yield* eventually(Effect.map(TestClock.sleeps(), (sleeps) => sleeps.length > 0))
        yield* TestClock.adjust(Duration.subtract(clientTimeout, Duration.millis(1)))
        assert.isNull(fiber.unsafePoll())
        yield* TestClock.adjust(Duration.millis(1))
        const { reason, response } = yield* Fiber.join(fiber)
        assert.strictEqual(reason, "ProviderUnreachable")
        assert.strictEqual(response.status, 503)
        assert.strictEqual(response.headers["retry-after"], "5")
        assert.strictEqual(server.counts.jwks, 1)
      }).pipe(Effect.provide(clients)))

    it.scoped("a hanging /user: 503 after one client timeout, then no call while the provider is known down", () =>
      Effect.gen(function*() {
        const { auth, server, user } = yield* setup()
        yield* warm(server, auth, user.id)
        yield* Effect.promise(() => server.setFailure({ _tag: "Hang" }, "user"))
        const fiber = yield* Effect.fork(refusal(auth.verifyToken(yield* rotatedToken(server, user.id))))
        yield* eventually(Effect.map(TestClock.sleeps(), (sleeps) => sleeps.length > 0))
        yield* TestClock.adjust(clientTimeout)
        assert.strictEqual((yield* Fiber.join(fiber)).response.status, 503)
        assert.strictEqual(server.counts.user, 1)
        const again = yield* refusal(auth.verifyToken(yield* rotatedToken(server, user.id)))
        assert.strictEqual(again.response.status, 503)
        assert.strictEqual(server.counts.user, 1)
        // Once the provider answers again and the back-off is over, undecided tokens are asked about again.
        yield* Effect.promise(() => server.clearFailure())
        yield* TestClock.adjust(Duration.seconds(Auth.unreachableRetryAfterSeconds))
        assert.strictEqual((yield* auth.verifyToken(yield* rotatedToken(server, user.id))).sub, user.id)
      }).pipe(Effect.provide(clients)))

    it.scoped("5xx and 520-530 from /user are 503 with Retry-After 5", () =>
      Effect.gen(function*() {
        for (const status of [500, 502, 503, 504, 520, 522, 530]) {
          const { auth, server, user } = yield* setup()
          yield* warm(server, auth, user.id)
          yield* Effect.promise(() => server.setFailure({ _tag: "Status", status }, "user"))
          const { reason, response } = yield* refusal(auth.verifyToken(yield* rotatedToken(server, user.id)))
          assert.strictEqual(reason, "ProviderUnreachable", String(status))
          assert.strictEqual(response.status, 503)
          assert.strictEqual(response.headers["retry-after"], "5")
        }
      }).pipe(Effect.provide(clients)))

    it.scoped("429 from /user is 503 with the provider's Retry-After, and the provider is left alone meanwhile", () =>
      Effect.gen(function*() {
        const { auth, server, user } = yield* setup()
        yield* warm(server, auth, user.id)
        yield* Effect.promise(() => server.setFailure({ _tag: "Status", status: 429, retryAfter: 17 }, "user"))
        const limited = yield* refusal(auth.verifyToken(yield* rotatedToken(server, user.id)))
        assert.strictEqual(limited.reason, "ProviderRateLimited")
        assert.strictEqual(limited.response.status, 503)
        assert.strictEqual(limited.response.headers["retry-after"], "17")
        yield* TestClock.adjust(Duration.seconds(7))
        const later = yield* refusal(auth.verifyToken(yield* rotatedToken(server, user.id)))
        assert.strictEqual(later.response.headers["retry-after"], "10")
        assert.strictEqual(server.counts.user, 1)
      }).pipe(Effect.provide(clients)))

    it.scoped("a refused API key is a 401 for the token but is not remembered against it", () =>
      Effect.gen(function*() {
        const { auth, server, user } = yield* setup({ auth: { anonKey: Option.some(Redacted.make("wrong-key")) } })
        yield* warm(server, auth, user.id)
        const token = yield* rotatedToken(server, user.id)
        const first = yield* refusal(auth.verifyToken(token))
        assert.strictEqual(first.reason, "RejectedByProvider")
        yield* refusal(auth.verifyToken(token))
        assert.strictEqual(server.counts.user, 2)
      }).pipe(Effect.provide(clients)))
  })

  describe("public face", () => {
    it("maps every reason to 401, or 503 with Retry-After when the provider could not be asked", () => {
      const face = (reason: Auth.AuthReason) => ApiError.render(new Auth.AuthError({ reason })[ApiError.ToApiError]())
      assert.deepStrictEqual(face(Auth.ProviderReason.ProviderUnreachable({ detail: "timeout" })).headers, {
        "retry-after": "5"
      })
      assert.strictEqual(face(Auth.ProviderReason.ProviderUnreachable({ detail: "timeout" })).status, 503)
      assert.deepStrictEqual(face(Auth.ProviderReason.ProviderRateLimited({ retryAfterSeconds: 12 })).headers, {
        "retry-after": "12"
      })
      for (
        const reason of [
          Auth.ProviderReason.RejectedByProvider({ detail: "status 403 bad_jwt", aboutToken: true }),
          Auth.ProviderReason.IntrospectionBudgetExhausted()
        ]
      ) {
        assert.strictEqual(face(reason).status, 401)
        assert.deepStrictEqual(face(reason).body, {
          error: { code: "UNAUTHORIZED", message: "Invalid or expired token" }
        })
      }
      const expired = new Auth.AuthError({ reason: { _tag: "Expired" } })
      assert.strictEqual(expired.status, 401)
      assert.strictEqual(
        ApiError.render(ApiError.isConvertible(expired) ? expired[ApiError.ToApiError]() : new ApiError.Internal())
          .status,
        401
      )
    })
  })

  describe("wiring", () => {
    const supabaseFor = (server: Pick<SupabaseStandInServer, "url" | "anonKey" | "serviceRoleKey">) => ({
      url: Option.some(server.url),
      anonKey: Option.some(Redacted.make(server.anonKey)),
      serviceRoleKey: Option.some(Redacted.make(server.serviceRoleKey)),
      jwtSecret: Option.none(),
      audience: "authenticated",
      issuer: Option.none<string>()
    })

    it.scoped("layerFromSettings builds Auth on the stand-in, with the auth check of /ready", () =>
      Effect.gen(function*() {
        const server = yield* standIn()
        yield* clockAtRealTime
        const user = server.createUser({ email: "wired@example.com", password: "secret-123" })
        const live = Auth.layerFromSettings(supabaseFor(server), Auth.defaults).pipe(
          Layer.provideMerge(Readiness.layer()),
          Layer.provide(Lifecycle.layer),
          Layer.provide(clients)
        )
        yield* Effect.gen(function*() {
          const auth = yield* Auth.Auth
          assert.strictEqual((yield* auth.verifyToken(yield* sign(server, { user: user.id }))).sub, user.id)
          const report = yield* (yield* Readiness.Readiness).run
          assert.deepStrictEqual(report.checks, [{ name: "auth", status: "ok" }])
        }).pipe(Effect.provide(live))

        const down = yield* standIn()
        yield* Effect.promise(() => down.setFailure({ _tag: "Refuse" }))
        const report = yield* Effect.flatMap(Readiness.Readiness, (readiness) => readiness.run).pipe(
          Effect.provide(
            Auth.layerFromSettings(supabaseFor(down), Auth.defaults).pipe(
              Layer.provideMerge(Readiness.layer()),
              Layer.provide(Lifecycle.layer),
              Layer.provide(clients)
            )
          )
        )
        assert.isFalse(report.ready)
        assert.deepStrictEqual(report.checks, [{ name: "auth", status: "failed", error: "unavailable" }])
      }))

    it.effect("layerFromSettings without SUPABASE_URL is a config error naming it", () =>
      Effect.gen(function*() {
        const settings = {
          ...supabaseFor({ url: "http://127.0.0.1:9", anonKey: "a", serviceRoleKey: "s" }),
          url: Option.none()
        }
        const exit = yield* Effect.exit(
          Layer.build(
            Auth.layerFromSettings(settings, Auth.defaults).pipe(
              Layer.provide(clients),
              Layer.provide(Readiness.layer()),
              Layer.provide(Lifecycle.layer)
            )
          ).pipe(Effect.scoped)
        )
        assert.isTrue(Exit.isFailure(exit))
        assert.include(Exit.isFailure(exit) ? Cause.pretty(exit.cause) : "", "SUPABASE_URL")
      }))

    it.effect("AuthSettings.config reads its variables with the documented defaults", () =>
      Effect.gen(function*() {
        const read = (entries: Record<string, string>) =>
          Effect.withConfigProvider(AuthSettings.config, ConfigProvider.fromMap(new Map(Object.entries(entries))))
        assert.deepStrictEqual(yield* read({}), Auth.defaults)
        const custom = yield* read({
          AUTH_NEGATIVE_CACHE_TTL: "10",
          AUTH_NEGATIVE_CACHE_MAX: "50",
          AUTH_INTROSPECTION_BUDGET: "5",
          JWKS_RELOAD_BUDGET: "2"
        })
        assert.strictEqual(Duration.toSeconds(custom.negativeCacheTtl), 10)
        assert.strictEqual(custom.negativeCacheMax, 50)
        assert.strictEqual(custom.introspectionBudget, 5)
        assert.strictEqual(custom.verifier.reloadBudget, 2)
        assert.isTrue(Exit.isFailure(yield* Effect.exit(read({ AUTH_INTROSPECTION_BUDGET: "-1" }))))
      }))
  })
})

describe("Auth.bearerToken", () => {
  const b64token = fc.stringMatching(/^[A-Za-z0-9\-._~+/]+=*$/)
  const anyCase = (word: string) =>
    fc.array(fc.boolean(), { minLength: word.length, maxLength: word.length }).map((upper) =>
      [...word].map((c, i) => (upper[i] ? c.toUpperCase() : c)).join("")
    )

  it.prop("the Bearer scheme in any case, one or more spaces, a b64token: the token", [
    anyCase("bearer"),
    fc.integer({ min: 1, max: 4 }),
    b64token
  ], ([scheme, spaces, token]) => {
    assert.deepStrictEqual(Auth.bearerToken(`${scheme}${" ".repeat(spaces)}${token}`), Either.right(token))
  })

  it.prop("any other seven characters before a token are refused as malformed", [
    fc.string({ minLength: 7, maxLength: 7 }).filter((prefix) => !/^bearer/i.test(prefix)),
    b64token
  ], ([prefix, token]) => {
    const refused = Auth.bearerToken(`${prefix}${token}`)
    assert.isTrue(Either.isLeft(refused) && refused.left._tag === "Malformed", prefix)
  })

  // The grammar as one regular expression: the parser must accept exactly what it accepts, with the same token.
  const grammar = /^Bearer +([A-Za-z0-9\-._~+/]+=*)$/i
  const pieces = fc.oneof(
    anyCase("bearer"),
    fc.constantFrom(" ", "  ", "=", "==", "\t", "-._~+/", "\u017f", "\u212a", "\u0130", "\u00e9", ":", ","),
    b64token,
    fc.string({ maxLength: 3 })
  )

  it.prop("accepts exactly what the RFC 6750 grammar accepts, with the same token", [
    fc.array(pieces, { maxLength: 6 }).map((parts) => parts.join(""))
  ], ([header]) => {
    const match = grammar.exec(header)
    const parsed = Auth.bearerToken(header)
    if (header === "") assert.isTrue(Either.isLeft(parsed) && parsed.left._tag === "Missing")
    else if (match === null) {
      assert.isTrue(Either.isLeft(parsed) && parsed.left._tag === "Malformed", JSON.stringify(header))
    } else assert.deepStrictEqual(parsed, Either.right(match[1]!), JSON.stringify(header))
  }, { fastCheck: { numRuns: 2000 } })

  it("refuses odd shapes of the scheme; a missing header is Missing", () => {
    for (
      const header of [
        "Digest abc",
        "Token: abc",
        "Basic abc",
        "Bearer",
        "Bearer ",
        "Bearerabc",
        "Bearer\tabc",
        "Bearer a b",
        "Bearer a=b"
      ]
    ) {
      const refused = Auth.bearerToken(header)
      assert.isTrue(Either.isLeft(refused) && refused.left._tag === "Malformed", JSON.stringify(header))
    }
    for (const header of [undefined, ""]) {
      const missing = Auth.bearerToken(header)
      assert.isTrue(Either.isLeft(missing) && missing.left._tag === "Missing")
    }
  })
})
