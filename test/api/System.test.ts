import { assert, layer } from "@effect/vitest"
import { Effect, Schema } from "effect"
import { Health, Ready } from "../../src/api/SystemGroup.js"
import { Readiness } from "../../src/core/runtime/Readiness.js"
import * as TestServerLayer from "../support/TestServer.js"

const get = (path: string) => TestServerLayer.request(path)

layer(TestServerLayer.layer({ env: { APP_VERSION: "9.9.9" } }), { excludeTestServices: true })(
  "system routes",
  (it) => {
    it.effect("GET /health reports status, version and environment, in the documented shape", () =>
      Effect.gen(function*() {
        const { response, text } = yield* get("/health")
        assert.strictEqual(response.status, 200)
        const body = Schema.decodeUnknownSync(Health)(JSON.parse(text))
        assert.deepStrictEqual(body, { status: "ok", version: "9.9.9", environment: "test" })
      }))

    it.effect("GET /ready is 200 while every check passes and 503 with each check's result otherwise", () =>
      Effect.gen(function*() {
        const healthy = yield* get("/ready")
        assert.strictEqual(healthy.response.status, 200)
        Schema.decodeUnknownSync(Ready)(JSON.parse(healthy.text))

        const readiness = yield* Readiness
        yield* readiness.register("always.fine", Effect.void)
        yield* readiness.register("always.broken", Effect.fail(new Error("connection refused to 10.0.0.7")))
        const { response, text } = yield* get("/ready")
        assert.strictEqual(response.status, 503)
        assert.strictEqual(response.headers.get("retry-after"), "5")
        const body = JSON.parse(text)
        assert.strictEqual(body.error.code, "SERVICE_UNAVAILABLE")
        assert.deepStrictEqual(body.error.details.checks, [
          { name: "database.main", status: "ok" },
          { name: "database.bg", status: "ok" },
          { name: "auth", status: "ok" },
          { name: "always.fine", status: "ok" },
          { name: "always.broken", status: "failed", error: "unavailable" }
        ])
        assert.notInclude(text, "10.0.0.7")
      }))

    it.effect("the OpenAPI document shows the envelope for every declared error", () =>
      Effect.gen(function*() {
        const { response, text } = yield* get("/openapi.json")
        assert.strictEqual(response.status, 200)
        const spec = JSON.parse(text)
        assert.strictEqual(spec.info.version, "9.9.9")
        const envelope = spec.components.schemas.ErrorEnvelope
        assert.deepStrictEqual(envelope.required, ["error"])
        assert.includeMembers(envelope.properties.error.required, ["code", "message"])
        const resolve = (schema: any): any =>
          schema?.$ref
            ? resolve(spec.components.schemas[schema.$ref.split("/").pop()])
            : schema?.allOf?.length === 1
            ? resolve(schema.allOf[0])
            : schema
        const refersToEnvelope = (schema: unknown): boolean => {
          const resolved = resolve(schema)
          const alternatives = resolved?.anyOf ?? resolved?.oneOf
          if (alternatives !== undefined) return alternatives.every(refersToEnvelope)
          return resolved?.required?.includes("error") &&
            ["code", "message"].every((key) => resolved.properties.error.required.includes(key))
        }
        let errorResponses = 0
        for (const [path, operations] of Object.entries<any>(spec.paths)) {
          for (const operation of Object.values<any>(operations)) {
            for (const [status, declared] of Object.entries<any>(operation.responses)) {
              if (Number(status) < 400) continue
              errorResponses++
              assert.isTrue(refersToEnvelope(declared.content["application/json"].schema), `${path} ${status}`)
            }
          }
        }
        assert.isAbove(errorResponses, 0)
        assert.property(spec.paths["/ready"].get.responses, "503")
      }))

    it.effect("GET /docs serves the browsable page with its script inline", () =>
      Effect.gen(function*() {
        const { response, text } = yield* get("/docs")
        assert.strictEqual(response.status, 200)
        assert.include(response.headers.get("content-type") ?? "", "text/html")
        assert.include(text, "Reference API")
        assert.notMatch(text, /<script[^>]+src=["']?https?:/)
      }))
  }
)
