import { assert, layer } from "@effect/vitest"
import { Effect, FastCheck as fc } from "effect"
import { randomUUID } from "node:crypto"
import { userMetadataLimits } from "../../src/api/AdminUsersGroup.js"
import * as RawHttp from "../support/RawHttp.js"
import { TestServer } from "../support/TestServer.js"
import * as TestServerLayer from "../support/TestServer.js"

const call = (path: string, token: string | undefined, init: RequestInit = {}) =>
  TestServerLayer.request(`/api/v1${path}`, {
    ...init,
    headers: {
      "content-type": "application/json",
      ...(token === undefined ? {} : { authorization: `Bearer ${token}` })
    }
  })

/** A token for a fresh user of the stand-in; an admin when `admin` (the role lives in `app_metadata`). */
const tokenFor = (admin: boolean) =>
  Effect.flatMap(TestServer, (server) =>
    Effect.promise(() => {
      const issuer = server.standIn!
      const user = issuer.createUser({
        email: `${admin ? "admin" : "member"}-${randomUUID().slice(0, 8)}@example.com`,
        password: "password-123",
        appMetadata: admin ? { role: "admin" } : {}
      })
      return issuer.signToken({ user: user.id })
    }))

/** `{"a":{"a":...{"a":1}...}}`, `depth` objects deep, as text (no serialiser is asked to make it). */
const nested = (depth: number) => `${"{\"a\":".repeat(depth)}1${"}".repeat(depth)}`

const post = (token: string, body: string) => call("/admin/users", token, { method: "POST", body })

layer(TestServerLayer.layer(), { excludeTestServices: true })("admin users routes", (it) => {
  it.effect("an admin creates, gets, lists and deletes users through the Supabase admin API", () =>
    Effect.gen(function*() {
      const admin = yield* tokenFor(true)
      const email = `new-${randomUUID().slice(0, 8)}@example.com`

      const created = yield* call("/admin/users", admin, {
        method: "POST",
        body: JSON.stringify({ email, password: "long-enough-password", admin: false })
      })
      assert.strictEqual(created.status, 201, created.text)
      const user = created.json()
      assert.strictEqual(user.email, email)

      const got = yield* call(`/admin/users/${user.id}`, admin)
      assert.strictEqual(got.status, 200)
      assert.strictEqual(got.json().id, user.id)

      const listed = yield* call("/admin/users", admin)
      assert.strictEqual(listed.status, 200)
      assert.include(listed.json().users.map((u: { id: string }) => u.id), user.id)

      const duplicate = yield* call("/admin/users", admin, { method: "POST", body: JSON.stringify({ email }) })
      assert.strictEqual(duplicate.status, 409)
      assert.strictEqual(duplicate.json().error.code, "CONFLICT")

      const deleted = yield* call(`/admin/users/${user.id}`, admin, { method: "DELETE" })
      assert.strictEqual(deleted.status, 204)

      const gone = yield* call(`/admin/users/${user.id}`, admin)
      assert.strictEqual(gone.status, 404)
      assert.strictEqual(gone.json().error.code, "USER_NOT_FOUND")
    }))

  it.effect("lists every user across the provider's pages", () =>
    Effect.gen(function*() {
      const server = yield* TestServer
      const admin = yield* tokenFor(true)
      const emails = Array.from({ length: 120 }, (_, i) => `page-${i}-${randomUUID().slice(0, 6)}@example.com`)
      for (const email of emails) server.standIn!.createUser({ email, password: "password-123" })
      const listed = yield* call("/admin/users", admin)
      assert.strictEqual(listed.status, 200)
      const seen = new Set(listed.json().users.map((u: { email: string }) => u.email))
      for (const email of emails) assert.isTrue(seen.has(email), email)
    }))

  it.effect("a caller without the admin role gets 403 on every admin route; no token gets 401", () =>
    Effect.gen(function*() {
      const member = yield* tokenFor(false)
      const id = randomUUID()
      const routes: ReadonlyArray<readonly [string, RequestInit]> = [
        ["/admin/users", { method: "POST", body: JSON.stringify({ email: "x@example.com" }) }],
        ["/admin/users", {}],
        [`/admin/users/${id}`, {}],
        [`/admin/users/${id}`, { method: "DELETE" }]
      ]
      for (const [path, init] of routes) {
        const forbidden = yield* call(path, member, init)
        assert.strictEqual(forbidden.status, 403, `${init.method ?? "GET"} ${path}`)
        assert.strictEqual(forbidden.json().error.code, "FORBIDDEN")
        const anonymous = yield* call(path, undefined, init)
        assert.strictEqual(anonymous.status, 401)
      }
    }))

  it.effect("a non-admin gets 403 whatever the body: deep, invalid or carrying a password, none of it echoed", () =>
    Effect.gen(function*() {
      const member = yield* tokenFor(false)
      const bodies = [
        nested(3000),
        `{"email":"x@example.com","user_metadata":${nested(5000)}}`,
        JSON.stringify({ email: "not-an-email", password: "tiny-pw" }),
        "{not json",
        JSON.stringify({ email: `ok-${randomUUID()}@example.com`, password: "long-enough-password" })
      ]
      for (const body of bodies) {
        const refused = yield* post(member, body)
        assert.strictEqual(refused.status, 403, body.slice(0, 40))
        assert.deepStrictEqual(refused.json(), { error: { code: "FORBIDDEN", message: "Admins only" } })
      }
    }))

  it.effect("a non-admin's 403 comes before the body is read: the server answers with the body still unsent", () =>
    Effect.gen(function*() {
      const server = yield* TestServer
      const member = yield* tokenFor(false)
      const connection = yield* RawHttp.connect(RawHttp.portOf(server.url))
      yield* connection.write(
        `POST /api/v1/admin/users HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer ${member}\r\n` +
          `Content-Type: application/json\r\nContent-Length: 900000\r\n\r\n{"email":`
      )
      const refused = yield* connection.response
      assert.strictEqual(refused.status, 403)
      assert.strictEqual(refused.json().error.code, "FORBIDDEN")
    }).pipe(Effect.scoped))

  it.effect("a JSON body nested past the limit is a 400 envelope, never a 500, whoever sends it", () =>
    Effect.gen(function*() {
      const admin = yield* tokenFor(true)
      for (const body of [nested(65), nested(3000), `{"email":"x@example.com","user_metadata":${nested(5000)}}`]) {
        const refused = yield* post(admin, body)
        assert.strictEqual(refused.status, 400)
        assert.deepStrictEqual(refused.json(), {
          error: { code: "BAD_REQUEST", message: "JSON nested deeper than 64 levels" }
        })
      }
      const anonymous = yield* call("/admin/users", undefined, { method: "POST", body: nested(3000) })
      assert.strictEqual(anonymous.status, 401)
      assert.strictEqual(anonymous.response.headers.get("www-authenticate"), "Bearer")
    }))

  it.effect("user_metadata has its own depth and size limits (422), checked before the provider is asked", () =>
    Effect.gen(function*() {
      const server = yield* TestServer
      const admin = yield* tokenFor(true)
      const email = () => `meta-${randomUUID().slice(0, 8)}@example.com`
      const within = `{"email":"${email()}","user_metadata":${nested(userMetadataLimits.maxDepth)}}`
      assert.strictEqual((yield* post(admin, within)).status, 201)

      server.standIn!.resetCounts()
      const tooDeep = `{"email":"${email()}","user_metadata":${nested(userMetadataLimits.maxDepth + 1)}}`
      const tooLarge = JSON.stringify({ email: email(), user_metadata: { a: "x".repeat(userMetadataLimits.maxBytes) } })
      const nearBodyLimit = JSON.stringify({ email: email(), user_metadata: { a: "x".repeat(1000 * 1024) } })
      for (const body of [tooDeep, tooLarge, nearBodyLimit]) {
        const refused = yield* post(admin, body)
        assert.strictEqual(refused.status, 422)
        assert.strictEqual(refused.json().error.code, "VALIDATION_ERROR")
        assert.deepStrictEqual(refused.json().error.details.map((d: { path: string }) => d.path), ["user_metadata"])
      }
      assert.strictEqual(server.standIn!.counts.admin, 0)
    }))

  it.effect("a 422 names the fields but never echoes what was sent", () =>
    Effect.gen(function*() {
      const admin = yield* tokenFor(true)
      const secret = "tiny-pw"
      const refused = yield* post(
        admin,
        JSON.stringify({ email: { sneaky: "echo-me-not" }, password: secret, admin: "echo-me-neither" })
      )
      assert.strictEqual(refused.status, 422)
      assert.deepStrictEqual(refused.json().error.details.map((d: { path: string }) => d.path).sort(), [
        "admin",
        "email",
        "password"
      ])
      for (const sent of [secret, "echo-me-not", "echo-me-neither"]) assert.notInclude(refused.text, sent)
    }))

  it.effect.prop(
    "no body makes a 500: any JSON value or text is answered 201, 400, 409 or 422",
    [fc.oneof(fc.jsonValue({ maxDepth: 70 }).map((value) => JSON.stringify(value)), fc.string({ maxLength: 200 }))],
    ([body]) =>
      Effect.gen(function*() {
        const server = yield* TestServer
        const admin = yield* Effect.promise(() =>
          server.standIn!.signToken({
            user: server.standIn!.createUser({
              email: `prop-${randomUUID().slice(0, 8)}@example.com`,
              password: "password-123",
              appMetadata: { role: "admin" }
            }).id
          })
        )
        const answered = yield* post(admin, body)
        assert.include([201, 400, 409, 422], answered.status, `${answered.status}: ${body.slice(0, 80)}`)
        if (answered.status !== 201) assert.deepStrictEqual(Object.keys(answered.json()), ["error"])
      }),
    { fastCheck: { numRuns: 60 } }
  )

  it.effect("bad input is a 422 listing the fields", () =>
    Effect.gen(function*() {
      const admin = yield* tokenFor(true)
      const bad = yield* call("/admin/users", admin, {
        method: "POST",
        body: JSON.stringify({ email: "not-an-email", password: "short" })
      })
      assert.strictEqual(bad.status, 422)
      assert.deepStrictEqual(bad.json().error.details.map((d: { path: string }) => d.path).sort(), [
        "email",
        "password"
      ])
      const badId = yield* call("/admin/users/not-a-uuid", admin)
      assert.strictEqual(badId.status, 422)
    }))
})
