/** The small guards behind the auth layers: token cache, rate budget, shared in-flight work. */
import { assert, describe, it } from "@effect/vitest"
import { Deferred, Effect, FastCheck as fc, Fiber } from "effect"
import { keyOf, TokenCache, TokenKey } from "../../../src/core/auth/TokenCache.js"
import { RateBudget } from "../../../src/core/runtime/RateBudget.js"
import * as SingleFlight from "../../../src/core/runtime/SingleFlight.js"

describe("TokenCache", () => {
  // Keys of tokens that share signatures and signed text in every combination: only the same pair is the same token.
  const tokenOf = (index: number) => `h.p${index % 3}.s${index % 4}`
  const operations = fc.array(
    fc.record({
      key: fc.integer({ min: 0, max: 30 }).map(tokenOf),
      step: fc.integer({ min: 0, max: 50 }),
      lifetime: fc.integer({ min: -10, max: 200 }),
      write: fc.boolean()
    }),
    { maxLength: 300 }
  )

  it.prop("never holds more than its maximum, never answers with an expired entry or another token's", [
    operations,
    fc.integer({ min: 0, max: 12 })
  ], ([ops, max]) => {
    const cache = new TokenCache<{ readonly token: string; readonly expiresAt: number }>(max)
    let now = 0
    for (const op of ops) {
      now += op.step
      if (op.write) {
        cache.set(keyOf(op.key), { token: op.key, expiresAt: now + op.lifetime }, now + op.lifetime, now)
      } else {
        const value = cache.get(keyOf(op.key), now)
        if (value !== undefined) {
          assert.isAbove(value.expiresAt, now)
          assert.strictEqual(value.token, op.key)
        }
      }
      assert.isAtMost(cache.size, max)
    }
  })

  it.prop("answers for a token it holds until it expires", [
    fc.array(fc.integer({ min: 0, max: 11 }).map(tokenOf), { minLength: 1, maxLength: 20 })
  ], ([tokens]) => {
    const cache = new TokenCache<string>(100)
    for (const token of tokens) cache.set(keyOf(token), token, 10, 0)
    // The last token written for each signature is the one remembered for it.
    const last = new Map(tokens.map((token) => [token.slice(token.lastIndexOf(".")), token]))
    for (const token of last.values()) assert.strictEqual(cache.get(keyOf(token), 9), token)
    for (const token of last.values()) assert.isUndefined(cache.get(keyOf(token), 10))
  })

  it("keeps the newest entries when full", () => {
    const cache = new TokenCache<string>(3)
    for (const key of ["a", "b", "c", "d"]) cache.set(keyOf(`x.${key}`), key, 100, 0)
    assert.isUndefined(cache.get(keyOf("x.a"), 1))
    assert.deepStrictEqual(["b", "c", "d"].map((key) => cache.get(keyOf(`x.${key}`), 1)), ["b", "c", "d"])
  })

  it("keys name a token without its signature: a digest of it, fixed length, and the text it signs", () => {
    const token = "header.payload.signature-with-secret-bits"
    const key = keyOf(token)
    assert.strictEqual(key.digest.length, 43)
    assert.notInclude(key.digest, "signature")
    assert.notInclude(key.signed, "signature")
    assert.strictEqual(key.signed, "header.payload.")
    assert.deepStrictEqual(keyOf(token), key)
    for (const other of [token + "x", "header.payload2.signature-with-secret-bits", "signature-with-secret-bits"]) {
      assert.notStrictEqual(keyOf(other).id, key.id)
    }
    assert.instanceOf(key, TokenKey)
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
