import { assert, layer } from "@effect/vitest"
import { Effect } from "effect"
import { randomUUID } from "node:crypto"
import { TestServer } from "../support/TestServer.js"
import * as TestServerLayer from "../support/TestServer.js"

const call = (path: string, token: string | undefined, init: RequestInit = {}) =>
  TestServerLayer.request(`/api/v1${path}`, {
    ...init,
    headers: { "content-type": "application/json", ...(token === undefined ? {} : { authorization: `Bearer ${token}` }) }
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

  it.effect("bad input is a 422 listing the fields", () =>
    Effect.gen(function*() {
      const admin = yield* tokenFor(true)
      const bad = yield* call("/admin/users", admin, {
        method: "POST",
        body: JSON.stringify({ email: "not-an-email", password: "short" })
      })
      assert.strictEqual(bad.status, 422)
      assert.deepStrictEqual(bad.json().error.details.map((d: { path: string }) => d.path).sort(), ["email", "password"])
      const badId = yield* call("/admin/users/not-a-uuid", admin)
      assert.strictEqual(badId.status, 422)
    }))
})
