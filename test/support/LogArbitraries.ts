/** Arbitraries for log lines: text that could trip an escape, awkward keys, values of every kind, levels, causes. */
import { Cause, FastCheck as fc, LogLevel } from "effect"
import * as Logging from "../../src/core/runtime/Logging.js"

// Text that could trip an escape or a quote: controls, separators, bidi overrides, quotes, `=`, astral characters.
export const text = fc.oneof(
  fc.string({ unit: "binary", maxLength: 20 }),
  fc.constantFrom("", "\u001b[31mred\u009b", "a\nb\r\tc", "\u2028\u202e\u2066", "k=\"v\" w", "é😀\u0000")
)
// Integer-like keys (a record puts them first) and keys the line itself uses, beside arbitrary ones. Not `__proto__`:
// as a record's key it sets the prototype, so a JSON line with it is neither meaningful nor always writable.
export const key = fc.oneof(
  fc.string({ maxLength: 8 }),
  fc.constantFrom("time", "level", "message", "request_id", "cause", "span.s_ms", "0", "42")
)
export const value: fc.Arbitrary<unknown> = fc.oneof(
  text,
  fc.double(),
  fc.integer(),
  fc.boolean(),
  fc.constant(null),
  fc.constant(undefined),
  fc.jsonValue({ maxDepth: 2 }),
  fc.date({ noInvalidDate: true }),
  fc.dictionary(key, text, { maxKeys: 3 })
)
const entries = fc.array(fc.tuple(key, value), { maxLength: 5 })
export const part = fc.oneof(
  text,
  fc.integer(),
  entries.chain((fields) => text.map((message) => Logging.fields(message, Object.fromEntries(fields))))
)
export const level = fc.constantFrom(
  LogLevel.Trace,
  LogLevel.Debug,
  LogLevel.Info,
  LogLevel.Warning,
  LogLevel.Error,
  LogLevel.Fatal
)
export const cause = fc.oneof(
  fc.constant(Cause.empty),
  text.map((message) => Cause.fail(new Error(message))),
  text.map((message) => Cause.die(message)),
  fc.tuple(text, text).map(([a, b]) => Cause.sequential(Cause.fail(a), Cause.die(new Error(b))))
)
export const now = fc.integer({ min: 0, max: 4102444800000 })
export const spans = fc.array(fc.tuple(text, fc.integer({ min: -1000, max: 4102444800000 })), { maxLength: 3 })
