import * as HttpApiClient from "@effect/platform/HttpApiClient"
import * as HttpClient from "@effect/platform/HttpClient"
import * as HttpClientRequest from "@effect/platform/HttpClientRequest"
import { assert, describe, it, layer } from "@effect/vitest"
import { Effect, Either, FastCheck as fc, Layer, Runtime, Schema } from "effect"
import { served } from "../../src/api/Api.js"
import { UserView } from "../../src/api/MeGroup.js"
import * as ApiError from "../../src/core/errors/ApiError.js"
import { appRole } from "../../src/domain/UserRepo.js"
import * as Arbitraries from "../../src/testing/Arbitraries.js"
import * as InMemoryUserRepo from "../../src/testing/InMemoryUserRepo.js"
import * as NoNetwork from "../../src/testing/NoNetwork.js"
import * as SettableClock from "../../src/testing/SettableClock.js"
import * as TestApp from "../../src/testing/TestApp.js"
import * as TestIssuer from "../../src/testing/TestIssuer.js"

/** One generated request to `/me`: a valid token (maybe of a user seen before), a forged one, or none. */
type Case =
  | { readonly _tag: "valid"; readonly claims: TestIssuer.Claims; readonly again: number | undefined }
  | { readonly _tag: "forged"; readonly kind: TestIssuer.ForgeKind; readonly claims: TestIssuer.Claims }
  | { readonly _tag: "anonymous" }

const cases: fc.Arbitrary<Case> = fc.oneof(
  {
    weight: 6,
    arbitrary: fc.record({ claims: Arbitraries.claims, again: fc.option(fc.nat(), { nil: undefined }) }).map((
      { again, claims }
    ): Case => ({ _tag: "valid", claims, again }))
  },
  {
    weight: 3,
    arbitrary: fc.record({ kind: Arbitraries.forgeKind, claims: Arbitraries.claims }).map((
      { claims, kind }
    ): Case => ({ _tag: "forged", kind, claims }))
  },
  { weight: 1, arbitrary: fc.constant<Case>({ _tag: "anonymous" }) }
)

const decodeUser = Schema.decodeUnknownEither(UserView)
const decodeEnvelope = Schema.decodeUnknownEither(ApiError.Envelope)

/** What the users' rows must be after the requests so far: the repository's upsert semantics, per `sub`. */
interface ModelRow {
  readonly id: string | undefined
  readonly role: string
}

const meCases = 1000

describe("TestApp: GET /api/v1/me in-process", () => {
  // The tripwire is set before the app is built and lifted after it is gone.
  it.live(`${meCases} generated cases: valid tokens get their row (one per sub), forged and missing ones a 401`, () =>
    NoNetwork.guard(
      Effect.gen(function*() {
        const run = Runtime.runPromise(yield* Effect.runtime<TestApp.TestApp | TestIssuer.TestIssuer>())
        const rowsBefore = (yield* InMemoryUserRepo.all).length
        const model = new Map<string, ModelRow>()
        const subs: Array<string> = []
        const seen = new Map<string, number>()

        const check = (testCase: Case) =>
          Effect.gen(function*() {
            seen.set(testCase._tag === "forged" ? testCase.kind : testCase._tag, (seen.get(testCase._tag) ?? 0) + 1)
            if (testCase._tag === "valid") {
              const sub = testCase.again !== undefined && subs.length > 0
                ? subs[testCase.again % subs.length]!
                : testCase.claims.sub
              const claims = { ...testCase.claims, sub }
              const reply = yield* TestApp.request("GET", "/api/v1/me", { token: yield* TestIssuer.mint(claims) })
              assert.strictEqual(reply.status, 200, reply.text)
              const user = decodeUser(reply.json)
              assert.isTrue(Either.isRight(user), reply.text)
              const known = model.get(sub)
              const role = appRole(claims) ?? known?.role ?? "user"
              assert.strictEqual(reply.json.supabase_user_id, sub)
              assert.strictEqual(reply.json.email, claims.email === "" ? null : claims.email)
              assert.strictEqual(reply.json.role, role)
              if (known?.id !== undefined) assert.strictEqual(reply.json.id, known.id)
              assert.isUndefined(reply.headers["www-authenticate"])
              assert.isString(reply.headers["x-request-id"])
              if (known === undefined) subs.push(sub)
              model.set(sub, { id: reply.json.id, role })
              return
            }
            const token = testCase._tag === "forged"
              ? yield* TestIssuer.forge(testCase.kind, testCase.claims)
              : undefined
            const reply = yield* TestApp.request("GET", "/api/v1/me", token === undefined ? {} : { token })
            assert.strictEqual(reply.status, 401, `${testCase._tag}: ${reply.text}`)
            assert.isTrue(Either.isRight(decodeEnvelope(reply.json)), reply.text)
            assert.strictEqual(reply.json.error.code, "UNAUTHORIZED")
            assert.strictEqual(reply.headers["www-authenticate"], "Bearer")
            assert.isString(reply.headers["x-request-id"])
          })

        const started = performance.now()
        const cpuStarted = process.cpuUsage()
        yield* Effect.promise(() =>
          fc.assert(fc.asyncProperty(cases, (testCase) => run(check(testCase))), { numRuns: meCases })
        )
        const elapsed = performance.now() - started
        const cpu = process.cpuUsage(cpuStarted)
        console.info(
          `TestApp: ${meCases} generated GET /api/v1/me cases in ${Math.round(elapsed)} ms ` +
            `(${Math.round((cpu.user + cpu.system) / 1000)} ms of CPU), no socket opened`
        )

        // Every kind of case was generated, so none of the checks above went untried.
        for (const kind of ["valid", "anonymous", ...TestIssuer.forgeKinds]) {
          assert.isAbove(seen.get(kind) ?? 0, 0, kind)
        }
        const rows = (yield* InMemoryUserRepo.all).slice(rowsBefore)
        assert.strictEqual(rows.length, model.size)
        assert.deepStrictEqual(new Set(rows.map((row) => row.supabaseUserId)), new Set(model.keys()))
      }).pipe(Effect.provide(TestApp.layer))
    ))
})

layer(TestApp.layer, { excludeTestServices: true })("TestApp", (it) => {
  it.effect("the request pipeline answers in-process: request ids, the envelope for unknown routes", () =>
    Effect.gen(function*() {
      const echoed = yield* TestApp.request("GET", "/health", { headers: { "x-request-id": "trace-42" } })
      assert.strictEqual(echoed.status, 200)
      assert.strictEqual(echoed.headers["x-request-id"], "trace-42")
      const unsafe = yield* TestApp.request("GET", "/health", { headers: { "x-request-id": "no spaces allowed" } })
      assert.notStrictEqual(unsafe.headers["x-request-id"], "no spaces allowed")
      const missing = yield* TestApp.request("GET", "/api/v1/nothing-here")
      assert.strictEqual(missing.status, 404)
      assert.strictEqual(missing.json.error.code, "NOT_FOUND")
      assert.isString(missing.headers["x-request-id"])
    }))

  it.effect("/ready is ready with the issuer's key set held in memory", () =>
    Effect.gen(function*() {
      const ready = yield* TestApp.request("GET", "/ready")
      assert.strictEqual(ready.status, 200, ready.text)
      assert.deepStrictEqual(ready.json.checks.map((check: { name: string }) => check.name), ["auth"])
    }))

  it.effect("time is the SettableClock's: a token is accepted until the clock passes its expiry", () =>
    Effect.gen(function*() {
      const token = yield* TestIssuer.mint({}, { expiresIn: "10 minutes" })
      assert.strictEqual((yield* TestApp.request("GET", "/api/v1/me", { token })).status, 200)
      yield* SettableClock.adjust("9 minutes")
      assert.strictEqual((yield* TestApp.request("GET", "/api/v1/me", { token })).status, 200)
      // Past the expiry and the verifier's 30 s tolerance.
      yield* SettableClock.adjust("2 minutes")
      const expired = yield* TestApp.request("GET", "/api/v1/me", { token })
      assert.strictEqual(expired.status, 401)
      assert.strictEqual(expired.json.error.code, "UNAUTHORIZED")
    }))

  it.effect("the typed client of the API definition works against it", () =>
    Effect.gen(function*() {
      const token = yield* TestIssuer.mint({ email: "typed@example.com" })
      const api = served("/api/v1")
      const client = yield* HttpApiClient.make(api, {
        baseUrl: TestApp.origin,
        transformClient: HttpClient.mapRequest(HttpClientRequest.bearerToken(token))
      })
      const me = yield* client.me.me()
      assert.strictEqual(me.email, "typed@example.com")
      assert.instanceOf(me.created_at, Date)

      const anonymous = yield* HttpApiClient.make(api, { baseUrl: TestApp.origin })
      const refused = yield* Effect.flip(anonymous.me.me())
      assert.instanceOf(refused, ApiError.Unauthorized)
    }).pipe(Effect.provide(TestApp.layerHttpClient)))
})

layer(
  TestApp.layerWith(Layer.empty, { env: { CORS_ORIGINS: "https://app.example", MAX_BODY_BYTES: "1024" } }),
  { excludeTestServices: true }
)("TestApp with settings of the test's", (it) => {
  it.effect("CORS: an allowed origin's preflight and responses carry its headers; another origin is refused", () =>
    Effect.gen(function*() {
      const preflight = yield* TestApp.request("OPTIONS", "/api/v1/me", {
        headers: { origin: "https://app.example", "access-control-request-method": "GET" }
      })
      assert.strictEqual(preflight.status, 204)
      assert.strictEqual(preflight.headers["access-control-allow-origin"], "https://app.example")
      const refused = yield* TestApp.request("OPTIONS", "/api/v1/me", {
        headers: { origin: "https://evil.example", "access-control-request-method": "GET" }
      })
      assert.strictEqual(refused.status, 403)
      assert.strictEqual(refused.json.error.code, "FORBIDDEN")
      const answered = yield* TestApp.request("GET", "/health", { headers: { origin: "https://app.example" } })
      assert.strictEqual(answered.headers["access-control-allow-origin"], "https://app.example")
    }))

  it.effect("a body over MAX_BODY_BYTES is a 413 envelope, before any route runs", () =>
    Effect.gen(function*() {
      const token = yield* TestIssuer.mint()
      const tooLarge = yield* TestApp.request("POST", "/api/v1/admin/users", {
        token,
        body: { email: "x@example.com", user_metadata: { pad: "p".repeat(2048) } }
      })
      assert.strictEqual(tooLarge.status, 413)
      assert.strictEqual(tooLarge.json.error.code, "PAYLOAD_TOO_LARGE")
    }))

  it.effect("a request that failed leaves nothing behind: the next one has its own id and no queued header", () =>
    Effect.gen(function*() {
      const token = yield* TestIssuer.mint()
      const replies = []
      for (let i = 0; i < 20; i++) {
        replies.push(yield* TestApp.request("GET", "/api/v1/me", i % 2 === 0 ? {} : { token }))
      }
      assert.strictEqual(new Set(replies.map((reply) => reply.headers["x-request-id"])).size, replies.length)
      for (const [i, reply] of replies.entries()) {
        assert.strictEqual(reply.status, i % 2 === 0 ? 401 : 200)
        assert.strictEqual(reply.headers["www-authenticate"], i % 2 === 0 ? "Bearer" : undefined)
      }
    }))
})
