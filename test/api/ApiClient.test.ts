// The README's typed client example, against the real server on loopback.
import * as FetchHttpClient from "@effect/platform/FetchHttpClient"
import * as HttpApiClient from "@effect/platform/HttpApiClient"
import * as HttpClient from "@effect/platform/HttpClient"
import * as HttpClientRequest from "@effect/platform/HttpClientRequest"
import { assert, layer } from "@effect/vitest"
import { Effect } from "effect"
import { randomUUID } from "node:crypto"
import { served } from "../../src/api/Api.js"
import * as ApiError from "../../src/core/errors/ApiError.js"
import { TestServer } from "../support/TestServer.js"
import * as TestServerLayer from "../support/TestServer.js"

layer(TestServerLayer.layer(), { excludeTestServices: true })("the typed client of the API definition", (it) => {
  it.effect("calls /me with a bearer token and decodes the row; a missing token is the declared Unauthorized", () =>
    Effect.gen(function*() {
      const server = yield* TestServer
      const email = `typed-${randomUUID().slice(0, 8)}@example.com`
      const user = server.standIn!.createUser({ email, password: "password-123" })
      const token = yield* Effect.promise(() => server.standIn!.signToken({ user: user.id }))

      const client = yield* HttpApiClient.make(served("/api/v1"), {
        baseUrl: server.url,
        transformClient: HttpClient.mapRequest(HttpClientRequest.bearerToken(token))
      })
      const me = yield* client.me.me()
      assert.strictEqual(me.supabase_user_id, user.id)
      assert.strictEqual(me.email, email)
      assert.instanceOf(me.last_seen_at, Date)

      const anonymous = yield* HttpApiClient.make(served("/api/v1"), { baseUrl: server.url })
      assert.instanceOf(yield* Effect.flip(anonymous.me.me()), ApiError.Unauthorized)
    }).pipe(Effect.provide(FetchHttpClient.layer)))
})
