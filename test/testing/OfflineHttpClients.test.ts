import * as HttpBody from "@effect/platform/HttpBody"
import { assert, layer } from "@effect/vitest"
import { Duration, Effect, Fiber, Layer } from "effect"
import { HttpClients, isTimeout } from "../../src/core/clients/HttpClients.js"
import * as RequestId from "../../src/core/runtime/RequestId.js"
import * as OfflineHttpClients from "../../src/testing/OfflineHttpClients.js"
import * as SettableClock from "../../src/testing/SettableClock.js"

const seen: Array<{ method: string; url: string; headers: Record<string, string>; body: string }> = []

const handler: OfflineHttpClients.Handler = (request) => {
  const url = new URL(request.url)
  if (url.host !== "api.example") return undefined
  if (url.pathname === "/slow") return Effect.never
  return Effect.promise(async () => {
    seen.push({
      method: request.method,
      url: request.url,
      headers: Object.fromEntries(request.headers),
      body: await request.text()
    })
    return Response.json({ ok: true }, { status: 201 })
  })
}

const Clients = OfflineHttpClients.layer(handler, { general: { timeout: Duration.seconds(5) } }).pipe(
  Layer.provideMerge(SettableClock.layer())
)

layer(Clients, { excludeTestServices: true })("OfflineHttpClients", (it) => {
  it.effect("a request reaches the handler whole (method, URL, headers, body) with the request id forwarded", () =>
    Effect.gen(function*() {
      const clients = yield* HttpClients
      const response = yield* clients.general.post("http://api.example/items?x=1", {
        headers: { "x-custom": "yes" },
        body: HttpBody.unsafeJson({ name: "widget" })
      }).pipe(RequestId.withRequestId("req-7"))
      assert.strictEqual(response.status, 201)
      assert.deepStrictEqual(yield* response.json, { ok: true })
      const request = seen.at(-1)!
      assert.strictEqual(request.method, "POST")
      assert.strictEqual(request.url, "http://api.example/items?x=1")
      assert.strictEqual(request.headers["x-custom"], "yes")
      assert.strictEqual(request.headers["x-request-id"], "req-7")
      assert.strictEqual(request.body, "{\"name\":\"widget\"}")
    }))

  it.effect("a request the handler does not answer fails as a failed connection", () =>
    Effect.gen(function*() {
      const clients = yield* HttpClients
      const error = yield* Effect.flip(clients.supabaseAuth.get("http://elsewhere.example/"))
      assert.strictEqual(error._tag, "RequestError")
      assert.isTrue(error._tag === "RequestError" && error.reason === "Transport")
      assert.include(error.message, "offline")
    }))

  it.effect("the client's default timeout holds, by the clock", () =>
    Effect.gen(function*() {
      const clients = yield* HttpClients
      const pending = yield* Effect.fork(Effect.flip(clients.general.get("http://api.example/slow")))
      yield* SettableClock.awaitSleeps(1)
      yield* SettableClock.adjust("4 seconds")
      assert.isTrue((yield* Fiber.poll(pending))._tag === "None")
      yield* SettableClock.adjust("1 second")
      const error = yield* Fiber.join(pending)
      assert.isTrue(isTimeout(error))
    }))
})
