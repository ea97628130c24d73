import { assert, describe, layer } from "@effect/vitest"
import { Chunk, Duration, Effect, Fiber, Option, Stream } from "effect"
import { randomUUID } from "node:crypto"
import { MainDb } from "../../../src/core/db/Database.js"
import * as EventFeed from "../../../src/core/realtime/EventFeed.js"
import { EventLog } from "../../../src/core/realtime/EventLog.js"
import { SseBus } from "../../../src/core/realtime/SseBus.js"
import * as RealtimeFixtures from "../../support/Realtime.js"

const appendMany = (userId: string, count: number, from = 0) =>
  Effect.flatMap(EventLog, (log) =>
    Effect.forEach(
      Array.from({ length: count }, (_, i) => from + i),
      (n) => log.transaction(log.append(userId, "test", { n })),
      { discard: true }
    ))

const numbers = (items: ReadonlyArray<EventFeed.Item>) =>
  items.flatMap((item) => item._tag === "Event" ? [(JSON.parse(item.data) as { n: number }).n] : [])

describe("EventLog and EventFeed (Postgres, Redis backplane)", () => {
  layer(RealtimeFixtures.layer("feed", { redisUrl: RealtimeFixtures.sharedRedisUrl }), {
    timeout: Duration.seconds(60),
    excludeTestServices: true
  })((it) => {
    it.scoped("an event appended in a transaction that fails is neither stored nor published", () =>
      Effect.gen(function*() {
        const log = yield* EventLog
        const sql = yield* MainDb
        const userId = randomUUID()
        const feed = yield* EventFeed.open(userId, { cursor: Option.none() })
        const received = yield* Stream.runCollect(Stream.take(feed, 1)).pipe(Effect.fork)
        const failed = yield* log.transaction(
          Effect.zipRight(log.append(userId, "test", { n: -1 }), Effect.fail("rolled back" as const))
        ).pipe(Effect.flip)
        assert.strictEqual(failed, "rolled back")
        yield* log.transaction(Effect.zipRight(sql`select 1`, log.append(userId, "test", { n: 1 })))
        const items = Chunk.toReadonlyArray(yield* Fiber.join(received))
        assert.deepStrictEqual(numbers(items), [1])
        assert.strictEqual((yield* log.readAfter(userId, 0, 10)).length, 1)
      }))

    it.scoped("replay from a cursor, then live: every event once, in order, across the seam", () =>
      Effect.gen(function*() {
        const log = yield* EventLog
        const userId = randomUUID()
        yield* appendMany(userId, 30)
        const all = yield* log.readAfter(userId, 0, 100)
        const cursor = all[9]!.id
        // Appends race the feed's opening and its replay.
        const writer = yield* Effect.fork(appendMany(userId, 200, 30))
        const feed = yield* EventFeed.open(userId, { cursor: Option.some(cursor), pageSize: 7 })
        const items = Chunk.toReadonlyArray(yield* Stream.runCollect(Stream.take(feed, 220)))
        yield* Fiber.join(writer)
        assert.deepStrictEqual(numbers(items), Array.from({ length: 220 }, (_, i) => i + 10))
        const ids = items.map((item) => item._tag === "Event" ? item.id : 0)
        assert.deepStrictEqual(ids, [...ids].sort((a, b) => a - b))
      }))

    it.scoped("another user's events never reach a feed", () =>
      Effect.gen(function*() {
        const mine = randomUUID()
        const theirs = randomUUID()
        const feed = yield* EventFeed.open(mine, { cursor: Option.none() })
        const received = yield* Stream.runCollect(Stream.take(feed, 5)).pipe(Effect.fork)
        yield* appendMany(theirs, 20)
        yield* appendMany(mine, 5, 100)
        assert.deepStrictEqual(numbers(Chunk.toReadonlyArray(yield* Fiber.join(received))), [100, 101, 102, 103, 104])
      }))

    it.scoped("a cursor below the retention horizon gets a reset first, then what is left", () =>
      Effect.gen(function*() {
        const log = yield* EventLog
        const sql = yield* MainDb
        const userId = randomUUID()
        yield* appendMany(userId, 5)
        const first = (yield* log.readAfter(userId, 0, 1))[0]!
        yield* sql`update events set created_at = now() - interval '8 days' where user_id = ${userId} and id <= ${
          first.id + 1
        }`
        assert.isAtLeast(yield* log.prune(Duration.days(7)), 1)
        const feed = yield* EventFeed.open(userId, { cursor: Option.some(first.id - 1) })
        const items = Chunk.toReadonlyArray(yield* Stream.runCollect(Stream.take(feed, 4)))
        assert.strictEqual(items[0]!._tag, "Reset")
        assert.deepStrictEqual(numbers(items), [2, 3, 4])
      }))

    it.scoped("a cursor past the user's latest event (none of theirs) hides none of their next events", () =>
      Effect.gen(function*() {
        const userId = randomUUID()
        yield* appendMany(userId, 2)
        const feed = yield* EventFeed.open(userId, { cursor: Option.some(Number.MAX_SAFE_INTEGER) })
        const received = yield* Stream.runCollect(Stream.take(feed, 2)).pipe(Effect.fork)
        yield* appendMany(userId, 2, 2)
        assert.deepStrictEqual(numbers(Chunk.toReadonlyArray(yield* Fiber.join(received))), [2, 3])
      }))

    it.scoped("unlogged events reach the user's feeds with no id", () =>
      Effect.gen(function*() {
        const bus = yield* SseBus
        const userId = randomUUID()
        const feed = yield* EventFeed.open(userId, { cursor: Option.none() })
        const received = yield* Stream.runCollect(Stream.take(feed, 1)).pipe(Effect.fork)
        yield* bus.emit(userId, "progress", { done: 1 })
        assert.deepStrictEqual(Chunk.toReadonlyArray(yield* Fiber.join(received)), [
          { _tag: "Unlogged", type: "progress", data: "{\"done\":1}" }
        ])
      }))
  })
})
