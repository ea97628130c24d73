/**
 * `Logging.logNow` writes our loggers' lines directly, without the fiber's refs: whatever is logged, the line must be
 * the one the same logger writes when Effect logs it the ordinary way. A logger of someone else's still gets the refs.
 */
import { afterEach, assert, beforeEach, describe, it, vi } from "@effect/vitest"
import {
  Cause,
  Effect,
  FastCheck as fc,
  FiberRef,
  FiberRefs,
  HashMap,
  HashSet,
  List,
  Logger,
  LogLevel,
  LogSpan,
  Option
} from "effect"
import * as Logging from "../../../src/core/runtime/Logging.js"
import * as RequestId from "../../../src/core/runtime/RequestId.js"
import { cause, key, level, now, part, spans, text, value } from "../../support/LogArbitraries.js"

const format = fc.constantFrom(
  { format: "json", colour: false } as const,
  { format: "pretty", colour: false } as const,
  { format: "pretty", colour: true } as const
)

beforeEach(() => void vi.useFakeTimers({ toFake: ["Date"] }))
afterEach(() => void vi.useRealTimers())

describe("Logging.logNow", () => {
  it.prop(
    "writes the line the same logger writes through Effect.log, for any message, request id, context and cause",
    {
      options: format,
      level,
      parts: fc.array(part, { minLength: 1, maxLength: 3 }),
      single: fc.boolean(),
      requestId: fc.oneof(fc.constant(""), text, fc.uuid()),
      annotations: fc.array(fc.tuple(key, value), { maxLength: 4 }),
      spans,
      cause,
      now
    },
    ({ annotations, cause, level, now, options, parts, requestId, single, spans }) => {
      vi.setSystemTime(now)
      const memory = Logging.memorySink()
      const logger = Logging.make({ ...options, sink: memory.sink })
      // A lone part is logged as it is by `logNow`, and as a one-part array by `Effect.log`.
      const message = single ? parts[0] : parts
      Effect.runSync(
        Effect.withFiberRuntime<void>((fiber) => Effect.succeed(Logging.logNow(fiber, level, message, cause))).pipe(
          Effect.zipRight(Effect.logWithLevel(level, ...(single ? [parts[0]] : parts), cause)),
          Effect.locally(FiberRef.currentLoggers, HashSet.make(logger)),
          Effect.locally(FiberRef.currentMinimumLogLevel, LogLevel.All),
          Effect.locally(FiberRef.currentLogAnnotations, HashMap.fromIterable(annotations)),
          Effect.locally(
            FiberRef.currentLogSpan,
            List.fromIterable(spans.map(([label, startTime]) => LogSpan.make(label, startTime)))
          ),
          RequestId.withRequestId(requestId)
        )
      )
      assert.strictEqual(memory.lines.length, 2)
      assert.strictEqual(memory.lines[0], memory.lines[1])
    }
  )

  it.prop("every line carries its own moment, however close to the last", [
    fc.array(now, { minLength: 1, maxLength: 6 })
  ], (
    [moments]
  ) => {
    const json = Logging.memorySink()
    const pretty = Logging.memorySink()
    const loggers = HashSet.make<Array<Logger.Logger<unknown, void>>>(
      Logging.make({ format: "json", sink: json.sink }),
      Logging.make({ format: "pretty", sink: pretty.sink })
    )
    Effect.runSync(
      Effect.withFiberRuntime<void>((fiber) => {
        for (const moment of moments) {
          vi.setSystemTime(moment)
          Logging.logNow(fiber, LogLevel.Info, "tick")
        }
        return Effect.void
      }).pipe(Effect.locally(FiberRef.currentLoggers, loggers))
    )
    const times = moments.map((moment) => new Date(moment).toISOString())
    assert.deepStrictEqual(json.lines.map((line) => JSON.parse(line).time), times)
    assert.deepStrictEqual(pretty.lines.map((line) => line.slice(0, 24)), times)
  })

  it("a logger of someone else's beside ours still gets the request id, annotations and spans from the refs", () => {
    const memory = Logging.memorySink()
    const seen: Array<Logger.Logger.Options<unknown>> = []
    const foreign = Logger.make<unknown, void>((options) => void seen.push(options))
    Effect.runSync(
      Effect.withFiberRuntime<void>((fiber) =>
        Effect.succeed(Logging.logNow(fiber, LogLevel.Warning, "hello", Cause.fail("boom")))
      ).pipe(
        Effect.annotateLogs("user", "u1"),
        Effect.withLogSpan("work"),
        Effect.locally(
          FiberRef.currentLoggers,
          HashSet.make(Logging.make({ format: "json", sink: memory.sink }), foreign)
        ),
        RequestId.withRequestId("req-1")
      )
    )
    const ours = JSON.parse(memory.lines[0]!)
    assert.strictEqual(ours.request_id, "req-1")
    assert.strictEqual(ours.user, "u1")
    assert.strictEqual(seen.length, 1)
    const options = seen[0]!
    assert.strictEqual(FiberRefs.getOrDefault(options.context, RequestId.currentRequestId), "req-1")
    assert.strictEqual(options.message, "hello")
    assert.strictEqual(options.logLevel, LogLevel.Warning)
    assert.deepStrictEqual([...Cause.failures(options.cause)], ["boom"])
    assert.strictEqual(Option.getOrUndefined(HashMap.get(options.annotations, "user")), "u1")
    assert.deepStrictEqual([...options.spans].map((span) => span.label), ["work"])
  })

  it("below the minimum level, no logger is called", () => {
    const memory = Logging.memorySink()
    const seen: Array<unknown> = []
    Effect.runSync(
      Effect.withFiberRuntime<void>((fiber) => Effect.succeed(Logging.logNow(fiber, LogLevel.Debug, "quiet"))).pipe(
        Effect.locally(
          FiberRef.currentLoggers,
          HashSet.make(
            Logging.make({ format: "json", sink: memory.sink }),
            Logger.make<unknown, void>(({ message }) => void seen.push(message))
          )
        ),
        Effect.locally(FiberRef.currentMinimumLogLevel, LogLevel.Info)
      )
    )
    assert.deepStrictEqual([memory.lines, seen], [[], []])
  })
})
