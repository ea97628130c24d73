import { assert, layer } from "@effect/vitest"
import { Effect, FastCheck as fc, Schema } from "effect"
import { randomUUID } from "node:crypto"
import pg from "pg"
import { UserView } from "../../src/api/MeGroup.js"
import { attackCorpus } from "../support/AuthFixtures.js"
import { provided } from "../support/Provided.js"
import { TestServer } from "../support/TestServer.js"
import * as TestServerLayer from "../support/TestServer.js"

const call = TestServerLayer.request

const bearer = (token: string): RequestInit => ({ headers: { authorization: `Bearer ${token}` } })

const rowsFor = (supabaseUserId: string) =>
  Effect.acquireUseRelease(
    Effect.promise(async () => {
      const client = new pg.Client({ connectionString: provided("databaseUrl") })
      await client.connect()
      return client
    }),
    (client) =>
      Effect.promise(() =>
        client.query("select id, email, last_seen_at from users where supabase_user_id = $1", [supabaseUserId])
      ),
    (client) => Effect.promise(() => client.end())
  ).pipe(Effect.map((result) => result.rows))

const standIn = Effect.map(TestServer, (server) => server.standIn!)

layer(TestServerLayer.layer(), { excludeTestServices: true })("GET /api/v1/me", (it) => {
  it.effect("a stand-in token gets the caller's row, created once and returned after", () =>
    Effect.gen(function*() {
      const issuer = yield* standIn
      const email = `me-${randomUUID().slice(0, 8)}@example.com`
      const user = issuer.createUser({ email, password: "password-123" })
      const token = yield* Effect.promise(() => issuer.signToken({ user: user.id }))

      const first = yield* call("/api/v1/me", bearer(token))
      assert.strictEqual(first.response.status, 200)
      assert.strictEqual(first.response.headers.get("content-type"), "application/json")
      const body = first.json()
      // The body is encoded once per row and reused: it must still be the documented `User`.
      Schema.decodeUnknownSync(UserView)(body)
      assert.strictEqual(body.supabase_user_id, user.id)
      assert.strictEqual(body.email, email)
      assert.strictEqual(body.role, "user")
      assert.isString(body.created_at)

      const second = yield* call("/api/v1/me", bearer(token))
      assert.strictEqual(second.json().id, body.id)
      assert.strictEqual((yield* rowsFor(user.id)).length, 1)
    }))

  it.effect("concurrent first requests of a new user make exactly one row", () =>
    Effect.gen(function*() {
      const issuer = yield* standIn
      const user = issuer.createUser({
        email: `burst-${randomUUID().slice(0, 8)}@example.com`,
        password: "password-123"
      })
      const token = yield* Effect.promise(() => issuer.signToken({ user: user.id }))
      const responses = yield* Effect.all(Array.from({ length: 50 }, () => call("/api/v1/me", bearer(token))), {
        concurrency: "unbounded"
      })
      assert.deepStrictEqual([...new Set(responses.map((r) => r.response.status))], [200])
      assert.strictEqual(new Set(responses.map((r) => r.json().id)).size, 1)
      assert.strictEqual((yield* rowsFor(user.id)).length, 1)
    }))

  // A caller's services go into the request's own context: concurrent callers, remembered or new, never see
  // another's row, in whatever order their requests interleave.
  it.effect.prop(
    "concurrent callers each get their own row, whether their token and row are remembered or not",
    [fc.array(fc.integer({ min: 0, max: 3 }), { minLength: 1, maxLength: 40 })],
    ([picks]) =>
      Effect.gen(function*() {
        const issuer = yield* standIn
        const callers = yield* Effect.forEach(Array.from({ length: 4 }), () => {
          const user = issuer.createUser({
            email: `iso-${randomUUID().slice(0, 8)}@example.com`,
            password: "password-123"
          })
          return Effect.map(Effect.promise(() => issuer.signToken({ user: user.id })), (token) => ({ user, token }))
        })
        // Some callers are remembered before the burst, the others are seen for the first time in it.
        for (const caller of callers.slice(0, 2)) {
          assert.strictEqual((yield* call("/api/v1/me", bearer(caller.token))).response.status, 200)
        }
        const responses = yield* Effect.forEach(
          picks,
          (pick) => Effect.map(call("/api/v1/me", bearer(callers[pick]!.token)), (result) => ({ pick, result })),
          { concurrency: "unbounded" }
        )
        for (const { pick, result } of responses) {
          assert.strictEqual(result.response.status, 200)
          assert.strictEqual(result.json().supabase_user_id, callers[pick]!.user.id)
          assert.strictEqual(result.json().email, callers[pick]!.user.email)
        }
      }),
    { fastCheck: { numRuns: 15 } }
  )

  it.effect("no token, or a bad one, is a 401 envelope with WWW-Authenticate: Bearer", () =>
    Effect.gen(function*() {
      for (const init of [{}, bearer(""), bearer("garbage"), { headers: { authorization: "Basic dXNlcjpwYXNz" } }]) {
        const { json, response } = yield* call("/api/v1/me", init)
        assert.strictEqual(response.status, 401)
        assert.strictEqual(response.headers.get("www-authenticate"), "Bearer")
        assert.strictEqual(json().error.code, "UNAUTHORIZED")
      }
    }))

  it.effect("every token of the attack corpus is refused with 401 over HTTP, never a 500", () =>
    Effect.gen(function*() {
      const issuer = yield* standIn
      const corpus = yield* Effect.promise(() => attackCorpus(issuer, Math.floor(Date.now() / 1000)))
      assert.isAbove(corpus.length, 20)
      for (const attack of corpus) {
        const { json, response, text } = yield* call("/api/v1/me", bearer(attack.token))
        assert.strictEqual(response.status, 401, `${attack.name}: ${text}`)
        assert.strictEqual(json().error.code, "UNAUTHORIZED", attack.name)
      }
    }))

  it.effect("a provider outage: tokens that need the provider get 503 + Retry-After 5, known ones still work", () =>
    Effect.gen(function*() {
      const issuer = yield* standIn
      const user = issuer.createUser({
        email: `outage-${randomUUID().slice(0, 8)}@example.com`,
        password: "password-123"
      })
      const cached = yield* Effect.promise(() => issuer.signToken({ user: user.id }))
      assert.strictEqual((yield* call("/api/v1/me", bearer(cached))).response.status, 200)

      yield* Effect.promise(() => issuer.setFailure({ _tag: "Refuse" }))
      try {
        const needsProvider = yield* Effect.promise(() => issuer.unknownKeyToken({ user: user.id }))
        const outage = yield* call("/api/v1/me", bearer(needsProvider))
        assert.strictEqual(outage.response.status, 503)
        assert.strictEqual(outage.response.headers.get("retry-after"), "5")
        assert.strictEqual(outage.json().error.code, "SERVICE_UNAVAILABLE")

        const knownKey = yield* Effect.promise(() => issuer.signToken({ user: user.id }))
        assert.strictEqual((yield* call("/api/v1/me", bearer(cached))).response.status, 200)
        assert.strictEqual((yield* call("/api/v1/me", bearer(knownKey))).response.status, 200)
        assert.strictEqual((yield* call("/api/v1/me", bearer("not.a.token"))).response.status, 401)
      } finally {
        yield* Effect.promise(() => issuer.clearFailure())
      }
    }))

  it.effect("only the Bearer scheme is accepted (any case, one or more spaces); any other is 401 with WWW-Authenticate", () =>
    Effect.gen(function*() {
      const issuer = yield* standIn
      const user = issuer.createUser({
        email: `scheme-${randomUUID().slice(0, 8)}@example.com`,
        password: "password-123"
      })
      const token = yield* Effect.promise(() => issuer.signToken({ user: user.id }))
      const as = (authorization: string) => call("/api/v1/me", { headers: { authorization } })
      for (const authorization of [`Bearer ${token}`, `bearer ${token}`, `BEARER  ${token}`, `bEaReR   ${token}`]) {
        assert.strictEqual((yield* as(authorization)).response.status, 200, authorization.slice(0, 10))
      }
      for (const scheme of ["Digest ", "Token: ", "Basic: ", "xxxxxx ", "Bearer\t", "Bearer:", "JWT    "]) {
        const refused = yield* as(`${scheme}${token}`)
        assert.strictEqual(refused.response.status, 401, JSON.stringify(scheme))
        assert.strictEqual(refused.response.headers.get("www-authenticate"), "Bearer")
        assert.strictEqual(refused.json().error.code, "UNAUTHORIZED")
      }
    }))

  it.effect("a request head over the limit is a 431 envelope, not a dropped connection", () =>
    Effect.gen(function*() {
      const { json, response } = yield* call("/api/v1/me", bearer("x".repeat(200 * 1024)))
      assert.strictEqual(response.status, 431)
      assert.strictEqual(json().error.code, "HEADERS_TOO_LARGE")
    }))
})
