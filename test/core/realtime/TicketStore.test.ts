import { assert, describe, it } from "@effect/vitest"
import { Duration, Effect, Layer, Option, Redacted, Schema, TestClock } from "effect"
import { Redis as IORedis } from "ioredis"
import { randomUUID } from "node:crypto"
import * as Redis from "../../../src/core/realtime/Redis.js"
import * as TicketStore from "../../../src/core/realtime/TicketStore.js"
import * as Lifecycle from "../../../src/core/runtime/Lifecycle.js"
import * as Readiness from "../../../src/core/runtime/Readiness.js"

const ttl = Duration.seconds(30)

describe("TicketStore in memory (expiry on Effect's Clock)", () => {
  it.effect.prop(
    "a ticket redeems to its own subject, once, until it expires",
    { subjects: Schema.Array(Schema.String).pipe(Schema.minItems(1), Schema.maxItems(10)) },
    ({ subjects }) =>
      Effect.gen(function*() {
        const store = yield* TicketStore.TicketStore
        const issued = yield* Effect.forEach(subjects, (subject) => store.issue(subject))
        assert.strictEqual(new Set(issued.map((i) => i.ticket)).size, issued.length)
        assert.isTrue(issued.every((i) => Duration.equals(i.expiresIn, ttl)))
        for (const [index, { ticket }] of issued.entries()) {
          assert.deepStrictEqual(yield* store.redeem(ticket), Option.some(subjects[index]!))
          assert.deepStrictEqual(yield* store.redeem(ticket), Option.none())
        }
      }).pipe(Effect.provide(TicketStore.layerMemory(ttl)))
  )

  it.effect("valid until its time to live is over on the clock, then refused", () =>
    Effect.gen(function*() {
      const store = yield* TicketStore.TicketStore
      const early = yield* store.issue("a")
      const late = yield* store.issue("b")
      yield* TestClock.adjust(Duration.millis(29_999))
      assert.deepStrictEqual(yield* store.redeem(early.ticket), Option.some("a"))
      yield* TestClock.adjust(Duration.millis(1))
      assert.deepStrictEqual(yield* store.redeem(late.ticket), Option.none())
      assert.deepStrictEqual(yield* store.redeem("x".repeat(10_000)), Option.none())
    }).pipe(Effect.provide(TicketStore.layerMemory(ttl))))
})

describe("TicketStore in Redis", () => {
  const prefix = `t${randomUUID().slice(0, 8)}:ticket:`
  const url = "redis://127.0.0.1:6379"
  const layer = TicketStore.layerRedis(ttl, prefix).pipe(
    Layer.provide(Redis.layer(Redacted.make(url))),
    Layer.provide(Readiness.layer()),
    Layer.provide(Lifecycle.layer)
  )

  it.live("stored under its hash with Redis's own expiry; redeemed once across connections", () =>
    Effect.gen(function*() {
      const store = yield* TicketStore.TicketStore
      const { ticket } = yield* store.issue("subject")
      const other = new IORedis(url)
      try {
        const keys = yield* Effect.promise(() => other.keys(`${prefix}*`))
        assert.strictEqual(keys.length, 1)
        assert.notInclude(keys[0]!, ticket)
        const pttl = yield* Effect.promise(() => other.pttl(keys[0]!))
        assert.isAbove(pttl, 0)
        assert.isAtMost(pttl, 30_000)
      } finally {
        other.disconnect()
      }
      // Two redemptions racing: exactly one gets the subject.
      const both = yield* Effect.all([store.redeem(ticket), store.redeem(ticket)], { concurrency: 2 })
      assert.strictEqual(both.filter(Option.isSome).length, 1)
    }).pipe(Effect.provide(layer)))
})
