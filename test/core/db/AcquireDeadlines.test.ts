import { assert, describe, it } from "@effect/vitest"
import { FastCheck } from "effect"
import { AcquireDeadlines, type Wait } from "../../../src/core/db/AcquireDeadlines.js"
import { manualClock } from "../../support/ManualClock.js"

type Step =
  | { readonly _tag: "begin" }
  | { readonly _tag: "serve"; readonly pick: number }
  | { readonly _tag: "advance"; readonly millis: number }

const step: FastCheck.Arbitrary<Step> = FastCheck.oneof(
  FastCheck.constant({ _tag: "begin" } as const),
  FastCheck.record({ _tag: FastCheck.constant("serve" as const), pick: FastCheck.nat(1_000) }),
  FastCheck.record({ _tag: FastCheck.constant("advance" as const), millis: FastCheck.integer({ min: 0, max: 400 }) })
)

describe("AcquireDeadlines", () => {
  it.prop(
    "a wait times out exactly when it is not served before its deadline; callers are told once each, oldest first; one timer at most",
    [FastCheck.array(step, { maxLength: 120 }), FastCheck.integer({ min: 1, max: 500 })],
    ([steps, timeout]) => {
      const { advance, clock, pending } = manualClock()
      const told: Array<number> = []
      const deadlines = new AcquireDeadlines<number>(timeout, (waits) => {
        for (const wait of waits) told.push(wait.payload)
      }, clock)
      const waits: Array<Wait<number>> = []
      // The model: when each wait began and, if it was, when it was served.
      const began: Array<number> = []
      const served = new Map<number, number>()
      for (const each of steps) {
        if (each._tag === "begin") {
          began.push(clock.now())
          waits.push(deadlines.begin(waits.length))
        } else if (each._tag === "serve") {
          if (waits.length === 0) continue
          const index = each.pick % waits.length
          const wasOpen = !served.has(index) && clock.now() < began[index]! + timeout
          assert.strictEqual(deadlines.serve(waits[index]!), wasOpen)
          if (wasOpen) served.set(index, clock.now())
        } else {
          advance(each.millis)
        }
        assert.isAtMost(pending(), 1)
        // Every wait still open has a timer coming for it.
        if (deadlines.open > 0) assert.strictEqual(pending(), 1)
      }
      const now = clock.now()
      const expectedTold = began.flatMap((at, index) => !served.has(index) && at + timeout <= now ? [index] : [])
      assert.deepStrictEqual(told, expectedTold)
      for (const [index, wait] of waits.entries()) {
        assert.strictEqual(wait.timedOut, expectedTold.includes(index))
        assert.strictEqual(wait.ended, served.has(index) || wait.timedOut)
      }
      assert.strictEqual(deadlines.open, waits.filter((wait) => !wait.ended).length)
    }
  )
})
