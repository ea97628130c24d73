/**
 * The demo job's handler on `TestClock`: one step per `step_ms` of the clock, each recorded; resumed after the step
 * it was claimed at; failing at `fail_at_step` with the steps before it recorded; the input's bounds.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect, Exit, FastCheck, Fiber, Option, Schema, TestClock } from "effect"
import { Job } from "../../src/core/jobs/Jobs.js"
import * as DemoJob from "../../src/domain/DemoJob.js"

const jobWith = (input: unknown, step = 0) =>
  new Job({
    id: "00000000-0000-4000-8000-000000000001",
    kind: DemoJob.kind,
    ownerId: null,
    status: "running",
    step,
    input,
    error: null,
    leaseExpiresAt: null,
    attempts: 1,
    createdAt: new Date(0),
    updatedAt: new Date(0)
  })

const run = (input: unknown, step = 0) =>
  Effect.gen(function*() {
    const recorded: Array<number> = []
    const fiber = yield* Effect.fork(
      DemoJob.handler({ job: jobWith(input, step), recordStep: (n) => Effect.sync(() => void recorded.push(n)) })
    )
    return { recorded, fiber }
  })

describe("DemoJob", () => {
  it.effect("one step per step_ms of the clock, each recorded, then done", () =>
    Effect.gen(function*() {
      const { fiber, recorded } = yield* run({ steps: 3, step_ms: 1000, fail_at_step: null })
      yield* TestClock.adjust("999 millis")
      assert.deepStrictEqual(recorded, [])
      yield* TestClock.adjust("1 millis")
      assert.deepStrictEqual(recorded, [1])
      yield* TestClock.adjust("2 seconds")
      assert.deepStrictEqual(recorded, [1, 2, 3])
      assert.isTrue(Exit.isSuccess(yield* Fiber.await(fiber)))
    }))

  it.effect("a job taken over resumes after the step it was claimed at", () =>
    Effect.gen(function*() {
      const { fiber, recorded } = yield* run({ steps: 5, step_ms: 10, fail_at_step: null }, 3)
      yield* TestClock.adjust("20 millis")
      assert.deepStrictEqual(recorded, [4, 5])
      assert.isTrue(Exit.isSuccess(yield* Fiber.await(fiber)))
    }))

  it.effect("fail_at_step: the steps before it recorded, then JobFailed with the step", () =>
    Effect.gen(function*() {
      const { fiber, recorded } = yield* run({ steps: 5, step_ms: 10, fail_at_step: 3 })
      yield* TestClock.adjust("1 second")
      const exit = yield* Fiber.await(fiber)
      assert.deepStrictEqual(recorded, [1, 2])
      assert.deepStrictEqual(
        Exit.match(exit, { onFailure: (cause) => String(cause), onSuccess: () => "success" }).includes(
          "Failed at step 3"
        ),
        true
      )
    }))

  it.prop(
    "the input: steps 1-1000, step_ms 0-60000, fail_at_step at most steps",
    [
      FastCheck.integer({ min: -2, max: 1002 }),
      FastCheck.integer({ min: -2, max: 60_002 }),
      FastCheck.option(FastCheck.integer({ min: -2, max: 1002 }), { nil: null })
    ],
    ([steps, stepMs, failAt]) => {
      const valid = steps >= 1 && steps <= 1000 && stepMs >= 0 && stepMs <= 60_000 &&
        (failAt === null || (failAt >= 1 && failAt <= steps))
      const decoded = Schema.decodeUnknownOption(DemoJob.Input)({ steps, step_ms: stepMs, fail_at_step: failAt })
      assert.strictEqual(Option.isSome(decoded), valid)
    }
  )
})
