/**
 * Log hygiene: whatever a client sends, a log line stays one line with no control characters (in the pretty and
 * JSON formats alike), no credentials of a URL, and no unbounded path; a failing readiness check is one line per
 * poll, while a 500 keeps its cause's stack.
 */
import { assert, describe, it, layer } from "@effect/vitest"
import { Cause, Effect, FastCheck as fc, Logger } from "effect"
import { randomUUID } from "node:crypto"
import { loggedPath, maxLoggedPathLength } from "../../../src/core/http/RequestPipeline.js"
import * as Logging from "../../../src/core/runtime/Logging.js"
import { Readiness } from "../../../src/core/runtime/Readiness.js"
import * as RawHttp from "../../support/RawHttp.js"
import { TestServer } from "../../support/TestServer.js"
import * as TestServerLayer from "../../support/TestServer.js"

// Anything that could forge a line or drive a terminal: C0 and C1 controls, DEL, separators, bidi overrides.
// eslint-disable-next-line no-control-regex
const unsafe = /[\u0000-\u0009\u000b-\u001f\u007f-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069]/
const hostile = fc.string({ unit: "binary", maxLength: 40 }).map((text) => `\u001b[31m${text}\u009b\n\u202e`)

/** What a logger of `format` writes for one message with fields, an annotation and a cause. */
const written = (format: Logging.LogFormat, text: string) => {
  const memory = Logging.memorySink()
  const logger = Logging.make({ format, sink: memory.sink })
  Effect.runSync(
    Effect.logWarning(Logging.fields(text, { field: text, nested: { value: text } }), Cause.fail(new Error(text))).pipe(
      Effect.annotateLogs("annotation", text),
      Effect.provide(Logger.replace(Logger.defaultLogger, logger))
    )
  )
  return memory.lines
}

describe("Logging", () => {
  it.prop("pretty lines: control characters escaped everywhere; a cause's lines indented", [hostile], ([text]) => {
    const [line] = written("pretty", text)
    const [first, ...causeLines] = line!.split("\n")
    assert.notMatch(first!, unsafe)
    assert.include(first!, "\\u001b[31m")
    assert.isAbove(causeLines.length, 0)
    for (const causeLine of causeLines) {
      assert.notMatch(causeLine, unsafe)
      assert.match(causeLine, /^ {2}/)
    }
  })

  it.prop("JSON lines: one line, no control character, and the text still round-trips", [hostile], ([text]) => {
    const [line] = written("json", text)
    assert.notMatch(line!, unsafe)
    const record = JSON.parse(line!)
    assert.strictEqual(record.message, text)
    assert.strictEqual(record.field, text)
    assert.strictEqual(record.annotation, text)
  })

  it("a field or annotation named __proto__ is logged as a field, whatever its value", () => {
    const memory = Logging.memorySink()
    const logger = Logging.make({ format: "json", sink: memory.sink })
    const fields = JSON.parse("{\"__proto__\": {\"nested\": 1}, \"after\": 2}") as Record<string, unknown>
    Effect.runSync(
      Effect.logInfo(Logging.fields("odd keys", fields)).pipe(
        Effect.annotateLogs("__proto__", new Date(0)),
        Effect.provide(Logger.replace(Logger.defaultLogger, logger))
      )
    )
    const record = JSON.parse(memory.lines[0]!, (key, value) => key === "__proto__" ? { kept: value } : value)
    assert.deepStrictEqual(Object.getOwnPropertyDescriptor(record, "__proto__")?.value, { kept: { nested: 1 } })
    assert.strictEqual(record.after, 2)
    assert.include(memory.lines[0]!, "\"__proto__\":{\"nested\":1}")
  })

  it("loggedPath: no query, no userinfo, cut (and marked) past the limit", () => {
    assert.strictEqual(loggedPath("/a/b?ticket=secret"), "/a/b")
    assert.strictEqual(loggedPath("http://user:pass@example.com/x?y=1"), "http://example.com/x")
    assert.strictEqual(loggedPath("HTTPS://only-user@example.com"), "HTTPS://example.com")
    const long = loggedPath(`/${"a".repeat(5000)}`)
    assert.strictEqual(
      long,
      `/${"a".repeat(maxLoggedPathLength - 1)}...[${5001 - maxLoggedPathLength} more characters]`
    )
  })
})

layer(TestServerLayer.layer(), { excludeTestServices: true })("logs of a running server", (it) => {
  it.effect("an absolute-form target's credentials and a huge path never reach the access log", () =>
    Effect.gen(function*() {
      const server = yield* TestServer
      const port = RawHttp.portOf(server.url)
      server.clearLogs()
      const absolute = yield* RawHttp.exchange(
        port,
        "GET http://admin:hunter2@example.com/health HTTP/1.1\r\nHost: example.com\r\n\r\n"
      )
      const long = yield* RawHttp.exchange(port, `GET /${"p".repeat(100 * 1024)} HTTP/1.1\r\nHost: t\r\n\r\n`)
      assert.deepStrictEqual([absolute.status, long.status], [200, 404])
      const paths = server.logs().filter((line) => line.message === "request").map((line) => String(line.path))
      assert.strictEqual(paths[0], "http://example.com/health")
      assert.isAtMost(paths[1]!.length, maxLoggedPathLength + 40)
      assert.match(paths[1]!, /\.\.\.\[\d+ more characters\]$/)
      const everything = server.lines().join("\n")
      assert.notInclude(everything, "hunter2")
      assert.notInclude(everything, "admin:")
    }))

  it.effect("a failing readiness check logs one line per poll, without a stack", () =>
    Effect.gen(function*() {
      const server = yield* TestServer
      const readiness = yield* Readiness
      const name = `flaky-${randomUUID().slice(0, 8)}`
      yield* readiness.register(
        name,
        Effect.fail(new Error("connection refused", { cause: new Error("ECONNREFUSED") }))
      )
      server.clearLogs()
      for (let poll = 0; poll < 3; poll++) assert.strictEqual((yield* TestServerLayer.request("/ready")).status, 503)
      const failures = server.logs().filter((line) => line.check === name)
      assert.strictEqual(failures.length, 3)
      for (const failure of failures) {
        assert.strictEqual(failure.message, "Readiness check failed")
        assert.strictEqual(failure.error, "Error: connection refused <- Error: ECONNREFUSED")
        assert.notProperty(failure, "cause")
      }
      const lines = server.lines().filter((line) => line.includes(name))
      for (const line of lines) assert.notInclude(line, "    at ")
    }))
})

layer(TestServerLayer.layer({ logFormat: "pretty" }), { excludeTestServices: true })(
  "pretty logs of a running server",
  (it) => {
    it.effect("a control character in a token's header is escaped in the pretty log", () =>
      Effect.gen(function*() {
        const server = yield* TestServer
        const part = (value: unknown) => Buffer.from(JSON.stringify(value)).toString("base64url")
        const header = part({ alg: "\u001b[2J\u001b[31mES256\u009b", typ: "JWT", kid: "k" })
        const token = `${header}.${part({ sub: randomUUID(), exp: 4102444800 })}.${"s".repeat(43)}`
        server.clearLogs()
        const refused = yield* TestServerLayer.request("/api/v1/me", { headers: { authorization: `Bearer ${token}` } })
        assert.strictEqual(refused.status, 401)
        const lines = server.lines()
        const refusal = lines.find((line) => line.includes("Token refused"))
        assert.isDefined(refusal)
        assert.include(refusal!, "\\u001b[2J")
        for (const line of lines) assert.notMatch(line, unsafe)
      }))
  }
)
