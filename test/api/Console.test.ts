/**
 * The console's routes without a browser: the page and its assets served same-origin only, and the development
 * sign-in absent when the local issuer is not running (the browser test covers it present).
 */
import { assert, layer } from "@effect/vitest"
import { Effect } from "effect"
import * as Vm from "node:vm"
import { script } from "../../src/api/console/ConsoleScript.js"
import * as TestServerLayer from "../support/TestServer.js"

const call = TestServerLayer.request

layer(TestServerLayer.layer(), { excludeTestServices: true })("GET /console", (it) => {
  it.effect("serves the page, its script and styles, allowing requests to this server only", () =>
    Effect.gen(function*() {
      const page = yield* call("/console")
      assert.strictEqual(page.status, 200)
      assert.strictEqual(page.response.headers.get("content-type"), "text/html; charset=utf-8")
      const policy = page.response.headers.get("content-security-policy") ?? ""
      for (const directive of ["default-src 'none'", "script-src 'self'", "connect-src 'self'"]) {
        assert.include(policy, directive)
      }
      assert.include(page.text, `data-api-prefix="/api/v1"`)
      // Every resource the page names is served here: no CDN, no other origin.
      const references = [...page.text.matchAll(/(?:src|href)="([^"]+)"/g)].map((match) => match[1]!)
      assert.deepStrictEqual(references, ["data:,", "/console/console.css", "/console/console.js"])
      const styles = yield* call("/console/console.css")
      assert.strictEqual(styles.response.headers.get("content-type"), "text/css; charset=utf-8")
      const code = yield* call("/console/console.js")
      assert.strictEqual(code.response.headers.get("content-type"), "text/javascript; charset=utf-8")
      assert.strictEqual(code.text, script)
      assert.doesNotThrow(() => new Vm.Script(code.text))
    }))

  it.effect("offers no development sign-in when the local issuer is not the issuer", () =>
    Effect.gen(function*() {
      const page = yield* call("/console")
      assert.include(page.text, `data-dev-sign-in="false"`)
      const signIn = yield* call("/console/dev-sign-in", { method: "POST" })
      assert.strictEqual(signIn.status, 404)
      assert.strictEqual(signIn.json().error.code, "NOT_FOUND")
    }))
})
