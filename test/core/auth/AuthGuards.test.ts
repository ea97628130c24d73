/** The small guards behind the auth layers: token cache, rate budget, shared in-flight work. */
import { assert, describe, it } from "@effect/vitest"
import { Deferred, Effect, FastCheck as fc, Fiber } from "effect"
import { digest, TokenCache } from "../../../src/core/auth/TokenCache.js"
import { RateBudget } from "../../../src/core/runtime/RateBudget.js"
import * as SingleFlight from "../../../src/core/runtime/SingleFlight.js"

describe("TokenCache", () => {
  const operations = fc.array(
    fc.record({
      key: fc.integer({ min: 0, max: 30 }).map(String),
      step: fc.integer({ min: 0, max: 50 }),
      lifetime: fc.integer({ min: -10, max: 200 }),
      write: fc.boolean()
    }),
    { maxLength: 300 }
  )

  it.prop("never holds more than its maximum, never answers with an expired entry", [
    operations,
    fc.integer({ min: 0, max: 12 })
  ], ([ops, max]) => {
    const cache = new TokenCache<number>(max)
    const expiries = new Map<string, number>()
    let now = 0
    for (const op of ops) {
      now += op.step
      if (op.write) {
        cache.set(op.key, now + op.lifetime, now + op.lifetime, now)
        if (op.lifetime > 0 && max > 0) expiries.set(op.key, now + op.lifetime)
      } else {
        const value = cache.get(op.key, now)
        if (value !== undefined) {
          assert.isAbove(value, now)
          assert.strictEqual(value, expiries.get(op.key))
        }
      }
      assert.isAtMost(cache.size, max)
    }
  })

  it("keeps the newest entries when full", () => {
    const cache = new TokenCache<string>(3)
    for (const key of ["a", "b", "c", "d"]) cache.set(key, key, 100, 0)
    assert.isUndefined(cache.get("a", 1))
    assert.deepStrictEqual(["b", "c", "d"].map((key) => cache.get(key, 1)), ["b", "c", "d"])
  })

  it("keys are digests: fixed length, no trace of the token", () => {
    const token = "header.payload.signature-with-secret-bits"
    const key = digest(token)
    assert.strictEqual(key.length, 43)
    assert.notInclude(key, "payload")
    assert.strictEqual(digest(token), key)
    assert.notStrictEqual(digest(token + "x"), key)
  })
})

describe("RateBudget", () => {
  it.prop(
    "grants at most `limit` calls in any window, and refuses only when the window's calls are spent",
    [fc.integer({ min: 1, max: 8 }), fc.array(fc.integer({ min: 0, max: 40 }), { maxLength: 200 })],
    ([limit, steps]) => {
      const window = 100
      const budget = new RateBudget(limit, window)
      const granted: Array<number> = []
      let now = 0
      for (const step of steps) {
        now += step
        const recent = granted.filter((t) => now - t < window).length
        assert.strictEqual(budget.remaining(now), limit - recent)
        const ok = budget.tryTake(now)
        assert.strictEqual(ok, recent < limit)
        if (ok) granted.push(now)
      }
    }
  )

  it("a budget of zero grants nothing", () => {
    assert.isFalse(new RateBudget(0, 1000).tryTake(0))
  })
})

describe("SingleFlight", () => {
  it.scoped("concurrent callers with one key share one run; other keys run on their own", () =>
    Effect.gen(function*() {
      const flight = SingleFlight.make<string>(yield* Effect.scope)
      const gate = yield* Deferred.make<void>()
      let runs = 0
      const work = (value: number) => Effect.zipRight(Effect.sync(() => runs++), Effect.as(Deferred.await(gate), value))
      const fibers = yield* Effect.forEach(Array.from({ length: 5 }), (_, i) => Effect.fork(flight.run("a", work(i))))
      const other = yield* Effect.fork(flight.run("b", work(99)))
      yield* Effect.yieldNow()
      assert.isTrue(flight.isRunning("a"))
      yield* Deferred.succeed(gate, undefined)
      const results = yield* Effect.forEach(fibers, Fiber.join)
      assert.deepStrictEqual(results, [0, 0, 0, 0, 0])
      assert.strictEqual(yield* Fiber.join(other), 99)
      assert.strictEqual(runs, 2)
      assert.isFalse(flight.isRunning("a"))
    }))

  it.scoped("a caller that goes away does not cancel the run for the others", () =>
    Effect.gen(function*() {
      const flight = SingleFlight.make<string>(yield* Effect.scope)
      const gate = yield* Deferred.make<void>()
      const work = Effect.as(Deferred.await(gate), "done")
      const leaving = yield* Effect.fork(flight.run("k", work))
      const staying = yield* Effect.fork(flight.run("k", work))
      yield* Effect.yieldNow()
      yield* Fiber.interrupt(leaving)
      yield* Deferred.succeed(gate, undefined)
      assert.strictEqual(yield* Fiber.join(staying), "done")
    }))

  it.scoped("a failure reaches every waiter, and the next call runs again", () =>
    Effect.gen(function*() {
      const flight = SingleFlight.make<string>(yield* Effect.scope)
      let runs = 0
      const failing = Effect.zipRight(Effect.sync(() => runs++), Effect.fail("boom" as const))
      const errors = yield* Effect.forEach(Array.from({ length: 3 }), () => Effect.flip(flight.run("k", failing)), {
        concurrency: "unbounded"
      })
      assert.deepStrictEqual(errors, ["boom", "boom", "boom"])
      assert.strictEqual(runs, 1)
      yield* Effect.flip(flight.run("k", failing))
      assert.strictEqual(runs, 2)
    }))
})
