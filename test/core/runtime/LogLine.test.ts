/**
 * JSON lines written out directly (a request's line: plain fields, no annotation, span or cause) are the very text
 * of the record-and-`JSON.stringify` way, whatever the fields hold; any other line is made that way.
 */
import { assert, describe, it } from "@effect/vitest"
import { Cause, FastCheck as fc, HashMap, List, LogLevel, LogSpan } from "effect"
import * as Logging from "../../../src/core/runtime/Logging.js"
import { formatter, recordLine } from "../../../src/core/runtime/LogLine.js"
import { cause, key, level, now, part, spans, text, value } from "../../support/LogArbitraries.js"

const json = formatter("json", false)

// Keys a request's line uses, and keys that look plain but are not (reserved, indices, escapes), side by side.
const fieldKey = fc.oneof(
  fc.constantFrom("method", "path", "status", "duration_ms", "user_id", "a.b-c", "$x", "_y", "Z9"),
  key,
  fc.constantFrom("__proto__", "time", "level", "message", "request_id", "1", "x y", "\"q\"", "é")
)
const fieldValue = fc.oneof(
  text,
  fc.string({ maxLength: 200 }),
  fc.double(),
  fc.constantFrom(Number.NaN, Number.POSITIVE_INFINITY, -0, 1e21, 5e-7),
  fc.integer(),
  fc.boolean(),
  fc.constant(null),
  fc.constant(undefined),
  value
)
const fields = fc.array(fc.tuple(fieldKey, fieldValue), { maxLength: 6 }).map((entries) => {
  const record: Record<string, unknown> = {}
  // As a caller writes a record: `__proto__` as an own field, not the prototype.
  for (const [name, field] of entries) {
    Object.defineProperty(record, name, { value: field, enumerable: true, configurable: true, writable: true })
  }
  return record
})
const message = fc.oneof(
  fc.tuple(text, fields).map(([message, values]) => Logging.fields(message, values)),
  fc.array(fc.oneof(part, fc.tuple(text, fields).map(([m, values]) => Logging.fields(m, values))), {
    minLength: 1,
    maxLength: 3
  }),
  text
)
// Mostly nothing (the direct way), sometimes something (the record's way).
const sometimes = <A>(arbitrary: fc.Arbitrary<A>, none: A) =>
  fc.oneof({ weight: 3, arbitrary: fc.constant(none) }, arbitrary)

describe("LogLine, JSON", () => {
  it.prop(
    "every line is the record's line, character for character",
    {
      level,
      message,
      requestId: fc.oneof(fc.constant(""), text, fc.uuid(), fc.string({ maxLength: 140 })),
      annotations: sometimes(fc.array(fc.tuple(key, value), { minLength: 1, maxLength: 3 }), []),
      spans: sometimes(spans.filter((all) => all.length > 0), []),
      cause: sometimes(cause, Cause.empty),
      now
    },
    ({ annotations, cause, level, message, now, requestId, spans }) => {
      const args = [
        requestId,
        level,
        message,
        HashMap.fromIterable(annotations),
        List.fromIterable(spans.map(([label, startTime]) => LogSpan.make(label, startTime))),
        cause,
        new Date(now)
      ] as const
      assert.strictEqual(json(...args), recordLine(...args))
    },
    { fastCheck: { numRuns: 400 } }
  )

  it("a request's line, written out", () => {
    const line = json(
      "req-1",
      LogLevel.Info,
      Logging.fields("request", { method: "GET", path: "/a\u202eb\"c", status: 200, duration_ms: 0.25 }),
      HashMap.empty(),
      List.nil(),
      Cause.empty,
      new Date(0)
    )
    assert.strictEqual(
      line,
      "{\"time\":\"1970-01-01T00:00:00.000Z\",\"level\":\"INFO\",\"message\":\"request\",\"request_id\":\"req-1\"," +
        "\"method\":\"GET\",\"path\":\"/a\\u202eb\\\"c\",\"status\":200,\"duration_ms\":0.25}"
    )
  })
})
