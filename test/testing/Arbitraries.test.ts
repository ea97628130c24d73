import * as HttpLayerRouter from "@effect/platform/HttpLayerRouter"
import { assert, describe, it, layer } from "@effect/vitest"
import { Effect, Either, FastCheck as fc, Schema } from "effect"
import * as ApiError from "../../src/core/errors/ApiError.js"
import * as Arbitraries from "../../src/testing/Arbitraries.js"
import * as TestApp from "../../src/testing/TestApp.js"
import * as TestIssuer from "../../src/testing/TestIssuer.js"

const codes = new Set(ApiError.all.map((errorClass) => errorClass.code))

describe("Arbitraries", () => {
  it.prop("claims decode with TestIssuer.Claims and survive JSON as they are", [Arbitraries.claims], ([claims]) => {
    assert.isTrue(Either.isRight(Schema.decodeUnknownEither(TestIssuer.Claims)(claims)))
    assert.deepStrictEqual(JSON.parse(JSON.stringify(claims)), claims)
  })

  it.prop("error envelopes decode with ApiError.Envelope, with a code of the hierarchy", [Arbitraries.errorEnvelope], (
    [envelope]
  ) => {
    assert.isTrue(Either.isRight(Schema.decodeUnknownEither(ApiError.Envelope)(envelope)))
    assert.isTrue(codes.has(envelope.error.code))
  })

  it("every forged kind is generated", () => {
    assert.deepStrictEqual(new Set(fc.sample(Arbitraries.forgeKind, 500)), new Set(TestIssuer.forgeKinds))
  })
})

// A route failing with whatever error the test puts here, to see how the pipeline renders it.
let failWith: ApiError.ApiError = new ApiError.Internal()
const Failing = HttpLayerRouter.add("GET", "/failing", Effect.suspend(() => Effect.fail(failWith)))

layer(TestApp.layerWith(Failing), { excludeTestServices: true })("errors through TestApp", (it) => {
  it.effect.prop(
    "an error of the hierarchy reaches the client as rendered: its status, its headers, its envelope",
    [Arbitraries.apiError],
    ([error]) =>
      Effect.gen(function*() {
        failWith = error
        const reply = yield* TestApp.request("GET", "/failing")
        const rendered = ApiError.render(error)
        assert.strictEqual(reply.status, rendered.status)
        assert.deepStrictEqual(reply.json, rendered.body)
        for (const [name, value] of Object.entries(rendered.headers)) assert.strictEqual(reply.headers[name], value)
      }),
    { fastCheck: { numRuns: 200 } }
  )
})
