import { assert, describe, it } from "@effect/vitest"
import { Cause, Effect, Exit, Layer, Option, Redacted } from "effect"
import { randomUUID } from "node:crypto"
import * as AuthAdmin from "../../../src/core/auth/AuthAdmin.js"
import * as ApiError from "../../../src/core/errors/ApiError.js"
import type { SupabaseStandInServer } from "../../../src/dev/SupabaseStandIn.js"
import { clients, memoryLogger, standIn } from "../../support/AuthFixtures.js"

const adminFor = (server: SupabaseStandInServer, key: Option.Option<string> = Option.some(server.serviceRoleKey)) =>
  AuthAdmin.make({ url: server.url, serviceRoleKey: Option.map(key, Redacted.make) })

/** The typed failure of an admin call and the response it becomes; a defect fails the test. */
const failureOf = <A>(effect: Effect.Effect<A, AuthAdmin.AuthAdminError>) =>
  Effect.map(Effect.exit(effect), (exit) => {
    assert.isTrue(Exit.isFailure(exit), "expected a failure")
    const failure = Exit.isFailure(exit) ? Cause.failureOption(exit.cause) : Option.none()
    assert.isTrue(Option.isSome(failure), Exit.isFailure(exit) ? Cause.pretty(exit.cause) : "")
    const error = Option.getOrThrow(failure)
    return { error, response: ApiError.render(error[ApiError.ToApiError]()) }
  })

const setup = Effect.gen(function*() {
  const server = yield* standIn()
  return { server, admin: yield* adminFor(server) }
})

describe("AuthAdmin", () => {
  it.scoped("creates, gets, updates and deletes a user with the service-role key", () =>
    Effect.gen(function*() {
      const { admin, server } = yield* setup
      const created = yield* admin.createUser({
        email: "New.User@Example.com",
        password: "secret-123",
        email_confirm: true,
        app_metadata: { role: "admin" },
        user_metadata: { name: "New" }
      })
      assert.strictEqual(created.email, "new.user@example.com")
      assert.strictEqual(created.app_metadata["role"], "admin")
      assert.strictEqual(created.user_metadata["name"], "New")
      assert.isDefined(created.email_confirmed_at)
      const request = server.requests.at(-1)
      assert.strictEqual(request?.headers["authorization"], `Bearer ${server.serviceRoleKey}`)
      assert.strictEqual(request?.headers["apikey"], server.serviceRoleKey)

      assert.strictEqual((yield* admin.getUser(created.id)).email, "new.user@example.com")
      const updated = yield* admin.updateUser(created.id, {
        user_metadata: { name: "Renamed" },
        app_metadata: { role: null }
      })
      assert.strictEqual(updated.user_metadata["name"], "Renamed")
      assert.isUndefined(updated.app_metadata["role"])
      yield* admin.deleteUser(created.id)
      assert.isUndefined(server.users.get(created.id))
      const gone = yield* failureOf(admin.getUser(created.id))
      assert.strictEqual(gone.response.status, 404)
      assert.strictEqual(gone.response.body.error.code, "USER_NOT_FOUND")
    }).pipe(Effect.provide(clients)))

  it.scoped("lists every user, following the Link header page by page", () =>
    Effect.gen(function*() {
      const { admin, server } = yield* setup
      for (let i = 0; i < 25; i++) server.createUser({ email: `list-${i}@example.com`, password: "secret-123" })
      server.resetCounts()
      const users = yield* admin.listUsers({ perPage: 10 })
      assert.strictEqual(users.length, 25)
      assert.strictEqual(new Set(users.map((u) => u.id)).size, 25)
      assert.strictEqual(server.counts.admin, 3)
      assert.deepStrictEqual(server.requests.map((r) => r.query), [
        "?page=1&per_page=10",
        "?page=2&per_page=10",
        "?page=3&per_page=10"
      ])
      const page = yield* admin.listUsersPage({ page: 2, perPage: 10 })
      assert.strictEqual(page.users.length, 10)
      assert.strictEqual(page.total, 25)
      assert.strictEqual(page.nextPage, 3)
      assert.isUndefined((yield* admin.listUsersPage({ page: 3, perPage: 10 })).nextPage)
      // A provider that keeps paging past the guard is an upstream failure, not a silently cut list.
      const guarded = yield* AuthAdmin.make({
        url: server.url,
        serviceRoleKey: Option.some(Redacted.make(server.serviceRoleKey)),
        maxPages: 2
      })
      const cut = yield* failureOf(guarded.listUsers({ perPage: 10 }))
      assert.strictEqual(cut.response.status, 502)
      // Exactly one full page: no empty extra request.
      server.users.clear()
      for (let i = 0; i < 10; i++) server.createUser({ email: `one-${i}@example.com`, password: "secret-123" })
      server.resetCounts()
      assert.strictEqual((yield* admin.listUsers({ perPage: 10 })).length, 10)
      assert.strictEqual(server.counts.admin, 1)
    }).pipe(Effect.provide(clients)))

  it("reads the next page from a Link header", () => {
    assert.strictEqual(
      AuthAdmin.nextPageOf(
        `</admin/users?page=3&per_page=50>; rel="next", </admin/users?page=9&per_page=50>; rel="last"`
      ),
      3
    )
    assert.isUndefined(AuthAdmin.nextPageOf(`</admin/users?page=9&per_page=50>; rel="last"`))
    assert.isUndefined(AuthAdmin.nextPageOf(undefined))
    assert.isUndefined(AuthAdmin.nextPageOf("garbage"))
  })

  it.scoped("generates links", () =>
    Effect.gen(function*() {
      const { admin, server } = yield* setup
      const user = server.createUser({ email: "link@example.com", password: "secret-123" })
      const link = yield* admin.generateLink({
        type: "magiclink",
        email: "link@example.com",
        redirect_to: "http://localhost:3000/welcome"
      })
      assert.strictEqual(link.user.id, user.id)
      assert.include(link.properties.action_link, `${server.issuer}/verify?`)
      assert.strictEqual(link.properties.verification_type, "magiclink")
      assert.strictEqual(link.properties.redirect_to, "http://localhost:3000/welcome")
      const missing = yield* failureOf(admin.generateLink({ type: "recovery", email: "nobody@example.com" }))
      assert.strictEqual(missing.response.status, 404)
    }).pipe(Effect.provide(clients)))

  it.scoped("maps the provider's client errors: 404, conflicts, validation, bad requests", () =>
    Effect.gen(function*() {
      const { admin, server } = yield* setup
      server.createUser({ email: "taken@example.com", password: "secret-123" })
      server.resetCounts()

      const unknown = yield* failureOf(admin.getUser(randomUUID()))
      assert.strictEqual(unknown.response.body.error.code, "USER_NOT_FOUND")
      // Not a UUID: no user has that id, and it never goes into a URL.
      for (const id of ["not-a-uuid", "..", "../users", "%2e%2e"]) {
        const bad = yield* failureOf(admin.deleteUser(id))
        assert.strictEqual(bad.response.status, 404, id)
      }
      assert.strictEqual(server.counts.admin, 1)

      const duplicate = yield* failureOf(admin.createUser({ email: "taken@example.com", password: "secret-123" }))
      assert.strictEqual(duplicate.response.status, 409)
      assert.strictEqual(duplicate.response.body.error.code, "CONFLICT")
      assert.strictEqual(duplicate.error.errorCode, "email_exists")

      const weak = yield* failureOf(admin.createUser({ email: "weak@example.com", password: "123" }))
      assert.strictEqual(weak.response.status, 422)
      assert.strictEqual(weak.response.body.error.code, "VALIDATION_ERROR")
      assert.deepStrictEqual(weak.response.body.error.details, [{ path: "password", message: weak.error.message }])

      const invalid = yield* failureOf(admin.createUser({ email: "not an email", password: "secret-123" }))
      assert.strictEqual(invalid.response.status, 400)
      assert.strictEqual(invalid.response.body.error.code, "BAD_REQUEST")
      assert.include(invalid.response.body.error.message, "email")
    }).pipe(Effect.provide(clients)))

  it.scoped("a request too large or too deep for the provider is the caller's mistake (422, 400), never an outage", () =>
    Effect.gen(function*() {
      const { admin, server } = yield* setup
      const big = yield* failureOf(
        admin.createUser({ email: "big@example.com", user_metadata: { a: "x".repeat(1100 * 1024) } })
      )
      assert.strictEqual(big.response.status, 422)
      assert.strictEqual(big.response.body.error.code, "VALIDATION_ERROR")
      yield* Effect.promise(() => server.setFailure({ _tag: "Status", status: 413 }, "admin"))
      const refused = yield* failureOf(admin.createUser({ email: "small@example.com" }))
      assert.strictEqual(refused.response.status, 422)
      yield* Effect.promise(() => server.clearFailure())

      let deep: Record<string, unknown> = { leaf: true }
      for (let level = 0; level < 3000; level++) deep = { a: deep }
      const tooDeep = yield* failureOf(admin.createUser({ email: "deep@example.com", user_metadata: deep }))
      assert.strictEqual(tooDeep.response.status, 400)
      assert.strictEqual(tooDeep.response.body.error.code, "BAD_REQUEST")
      // Nothing of it was kept: the provider still lists its users.
      assert.isArray(yield* admin.listUsers())
    }).pipe(Effect.provide(clients)))

  it.scoped("maps an unavailable provider to 503 and a refused key to 502", () =>
    Effect.gen(function*() {
      const { admin, server } = yield* setup
      for (const status of [500, 503, 522]) {
        yield* Effect.promise(() => server.setFailure({ _tag: "Status", status }, "admin"))
        const failed = yield* failureOf(admin.listUsers())
        assert.strictEqual(failed.response.status, 503, String(status))
        assert.strictEqual(failed.response.headers["retry-after"], "5")
      }
      yield* Effect.promise(() => server.setFailure({ _tag: "Status", status: 429, retryAfter: 9 }, "admin"))
      const limited = yield* failureOf(admin.getUser(randomUUID()))
      assert.strictEqual(limited.response.status, 503)
      assert.strictEqual(limited.response.headers["retry-after"], "9")
      yield* Effect.promise(() => server.clearFailure())

      yield* Effect.promise(() => server.setFailure({ _tag: "Refuse" }))
      const refused = yield* failureOf(admin.createUser({ email: "x@example.com" }))
      assert.strictEqual(refused.response.status, 503)
      yield* Effect.promise(() => server.clearFailure())

      const wrongKey = yield* adminFor(server, Option.some("not-the-service-role-key"))
      const rejected = yield* failureOf(wrongKey.listUsers())
      assert.strictEqual(rejected.response.status, 502)
      assert.strictEqual(rejected.response.body.error.code, "EXTERNAL_SERVICE_ERROR")

      const unconfigured = yield* adminFor(server, Option.none())
      const none = yield* failureOf(unconfigured.getUser(randomUUID()))
      assert.strictEqual(none.response.status, 500)
      assert.strictEqual(none.error.kind, "NotConfigured")
    }).pipe(Effect.provide(clients)))

  it.scopedLive("a hanging provider is 503 after the client's timeout", () =>
    Effect.gen(function*() {
      const { admin, server } = yield* setup
      yield* Effect.promise(() => server.setFailure({ _tag: "Hang" }, "admin"))
      const hung = yield* failureOf(admin.listUsers())
      assert.strictEqual(hung.response.status, 503)
      assert.strictEqual(hung.error.message, "timeout")
    }).pipe(Effect.provide(clients), Effect.provide(memoryLogger().layer)))

  it.scoped("layerFromSettings needs SUPABASE_URL and works with the stand-in", () =>
    Effect.gen(function*() {
      const server = yield* standIn()
      const settings = {
        url: Option.some(server.url),
        anonKey: Option.none(),
        serviceRoleKey: Option.some(Redacted.make(server.serviceRoleKey)),
        jwtSecret: Option.none(),
        audience: "authenticated",
        issuer: Option.none<string>()
      }
      const users = yield* Effect.flatMap(AuthAdmin.AuthAdmin, (admin) => admin.listUsers()).pipe(
        Effect.provide(AuthAdmin.layerFromSettings(settings).pipe(Layer.provide(clients)))
      )
      assert.deepStrictEqual(users, [])
      const exit = yield* Effect.exit(
        Layer.build(AuthAdmin.layerFromSettings({ ...settings, url: Option.none() }).pipe(Layer.provide(clients)))
      )
      assert.isTrue(Exit.isFailure(exit))
    }))
})
