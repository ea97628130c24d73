import { assert, layer } from "@effect/vitest"
import { Clock, Duration, Effect, FastCheck as fc, Fiber } from "effect"
import * as SettableClock from "../../src/testing/SettableClock.js"

layer(SettableClock.layer(), { excludeTestServices: true })("SettableClock", (it) => {
  it.effect("starts at its fixed instant and is the Clock of whoever uses the layer", () =>
    Effect.gen(function*() {
      const clock = yield* SettableClock.SettableClock
      assert.strictEqual(yield* Clock.currentTimeMillis, yield* clock.now)
      assert.isAtLeast(yield* Clock.currentTimeMillis, SettableClock.defaultStart.getTime())
    }))

  it.effect.prop(
    "sleeps end when the clock passes their deadline, not before, in deadline order",
    [fc.array(fc.integer({ min: 1, max: 10_000 }), { maxLength: 20 }), fc.array(fc.integer({ min: 1, max: 4000 }))],
    ([sleeps, steps]) =>
      Effect.gen(function*() {
        const woken: Array<number> = []
        const fibers = yield* Effect.forEach(
          sleeps.map((millis, index) => ({ millis, index })),
          ({ index, millis }) =>
            Effect.fork(Effect.zipRight(Effect.sleep(Duration.millis(millis)), Effect.sync(() => woken.push(index))))
        )
        yield* SettableClock.awaitSleeps(sleeps.length)
        let elapsed = 0
        for (const step of [...steps, 10_000]) {
          yield* SettableClock.adjust(Duration.millis(step))
          elapsed += step
          const due = sleeps.map((millis, index) => ({ millis, index })).filter(({ millis }) => millis <= elapsed)
          assert.deepStrictEqual(
            [...woken].sort((a, b) => a - b),
            due.map(({ index }) => index).sort((a, b) => a - b)
          )
        }
        // Woken in deadline order (ties in any order).
        for (let i = 1; i < woken.length; i++) assert.isAtLeast(sleeps[woken[i]!]!, sleeps[woken[i - 1]!]!)
        yield* Fiber.joinAll(fibers)
      }),
    { fastCheck: { numRuns: 100 } }
  )

  it.effect("set moves forward only; an interrupted sleep is forgotten", () =>
    Effect.gen(function*() {
      const clock = yield* SettableClock.SettableClock
      const now = yield* clock.now
      yield* SettableClock.set(now - 1000)
      assert.strictEqual(yield* clock.now, now)
      yield* SettableClock.set(new Date(now + 5000))
      assert.strictEqual(yield* clock.now, now + 5000)

      const timedOut = yield* Effect.fork(Effect.timeout(Effect.never, "1 second"))
      yield* SettableClock.awaitSleeps(1)
      yield* SettableClock.adjust("1 second")
      const exit = yield* Fiber.await(timedOut)
      assert.isTrue(exit._tag === "Failure")
      const raced = yield* Effect.timeout(Effect.succeed("fast"), "1 hour")
      assert.strictEqual(raced, "fast")
      assert.deepStrictEqual(yield* clock.sleeps, [])
    }))
})
