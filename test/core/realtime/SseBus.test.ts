import { assert, describe, it } from "@effect/vitest"
import { Chunk, Duration, Effect, Exit, Fiber, Layer, Schema, Scope, Stream, TestClock } from "effect"
import * as Events from "../../../src/api/Events.js"
import * as ApiError from "../../../src/core/errors/ApiError.js"
import * as Backplane from "../../../src/core/realtime/Backplane.js"
import { userTopic } from "../../../src/core/realtime/EventLog.js"
import * as SseBus from "../../../src/core/realtime/SseBus.js"
import * as Wire from "../../../src/core/realtime/Wire.js"
import * as Lifecycle from "../../../src/core/runtime/Lifecycle.js"

const options: SseBus.Options = {
  queueSize: 3,
  reapEveryEmits: 1,
  fullCyclesBeforeReap: 3,
  inactiveAfter: Duration.minutes(30),
  maxSubscribers: 4,
  keepalive: Duration.seconds(30)
}

const busLayer = (overrides: Partial<SseBus.Options> = {}) =>
  SseBus.layer({ ...options, ...overrides }).pipe(
    Layer.provideMerge(Backplane.layerMemory),
    Layer.provideMerge(Lifecycle.layer)
  )

/** A logged event `id` for `user`, as the event log publishes it. */
const publish = (user: string, id: number) =>
  Effect.flatMap(
    Backplane.Backplane,
    (backplane) =>
      backplane.publish(userTopic(user), Wire.encode({ id, prev: id - 1, userId: user, type: "test", data: `${id}` }))
  )

const ids = (taken: SseBus.Taken) => taken.items.map((item) => item._tag === "Event" ? item.id : -1)

describe("SseBus", () => {
  it.effect.prop(
    "never more open subscriptions than the cap; past it 503 with Retry-After; a closed one gives its place back",
    { max: Schema.Int.pipe(Schema.between(1, 6)), ops: Schema.Array(Schema.Boolean).pipe(Schema.maxItems(30)) },
    ({ max, ops }) =>
      Effect.gen(function*() {
        const bus = yield* SseBus.SseBus
        const open: Array<Scope.CloseableScope> = []
        for (const opening of ops) {
          if (opening || open.length === 0) {
            const scope = yield* Scope.make()
            const exit = yield* Effect.exit(Scope.extend(bus.subscribe("u"), scope))
            if (open.length < max) {
              assert.isTrue(Exit.isSuccess(exit))
              open.push(scope)
            } else {
              assert.isTrue(Exit.isFailure(exit))
              const error = yield* Effect.flip(Scope.extend(bus.subscribe("u"), scope))
              const rendered = ApiError.render(error[ApiError.ToApiError]())
              assert.strictEqual(rendered.status, 503)
              assert.strictEqual(rendered.body.error.code, "SERVICE_UNAVAILABLE")
              assert.strictEqual(rendered.headers["retry-after"], "30")
              yield* Scope.close(scope, Exit.void)
            }
          } else {
            yield* Scope.close(open.pop()!, Exit.void)
          }
          assert.strictEqual(bus.stats().subscribers, open.length)
          assert.isAtMost(bus.stats().subscribers, max)
        }
        for (const scope of open) yield* Scope.close(scope, Exit.void)
      }).pipe(Effect.provide(busLayer({ maxSubscribers: max, reapEveryEmits: 1000 })))
  )

  it.effect.prop(
    "a full queue drops its oldest; the subscription then ends after the items before the dropped one: no gap",
    {
      capacity: Schema.Int.pipe(Schema.between(1, 5)),
      steps: Schema.Array(Schema.Int.pipe(Schema.between(0, 8))).pipe(Schema.maxItems(12))
    },
    ({ capacity, steps }) =>
      Effect.scoped(Effect.gen(function*() {
        const bus = yield* SseBus.SseBus
        const subscription = yield* bus.subscribe("u")
        const delivered: Array<number> = []
        let next = 1
        let ended = false
        for (const burst of steps) {
          for (let i = 0; i < burst; i++) yield* publish("u", next++)
          const taken = burst === 0 && delivered.length === next - 1 ? undefined : yield* subscription.take
          if (taken === undefined) continue
          delivered.push(...ids(taken))
          if (taken.end) {
            ended = true
            break
          }
        }
        // Whatever was delivered is 1..k, in order: the client resumes from k and replays the rest.
        assert.deepStrictEqual(delivered, Array.from({ length: delivered.length }, (_, i) => i + 1))
        if (ended) assert.strictEqual(subscription.endedBy(), "overflow")
        assert.isAtMost(bus.stats().queued, capacity)
      })).pipe(Effect.provide(busLayer({ queueSize: capacity, reapEveryEmits: 1000 })))
  )

  it.effect("a queue full at 3 reaps in a row is reaped: its place is given back and its stream ends", () =>
    Effect.scoped(Effect.gen(function*() {
      const bus = yield* SseBus.SseBus
      const stuck = yield* bus.subscribe("stuck")
      const reading = yield* bus.subscribe("reading")
      // Every emit is a reap (reapEveryEmits 1), before it is delivered. The stuck queue (size 3) is full once its
      // third item is in: the next three reaps find it full.
      for (let id = 1; id <= 3; id++) yield* publish("stuck", id)
      for (let id = 1; id <= 2; id++) {
        yield* publish("reading", id)
        yield* reading.take
      }
      assert.isUndefined(stuck.endedBy())
      assert.strictEqual(bus.stats().subscribers, 2)
      yield* publish("reading", 3)
      yield* reading.take
      assert.strictEqual(stuck.endedBy(), "reaped")
      assert.strictEqual(bus.stats().subscribers, 1)
      assert.deepStrictEqual(yield* stuck.take, { items: [], end: true })
      assert.isUndefined(reading.endedBy())
    })).pipe(Effect.provide(busLayer())))

  it.effect("a subscription that read nothing from a waiting queue for SSE_INACTIVE_SECONDS is reaped", () =>
    Effect.scoped(Effect.gen(function*() {
      const bus = yield* SseBus.SseBus
      const idle = yield* bus.subscribe("idle")
      const quiet = yield* bus.subscribe("quiet")
      // A live client: it takes whatever comes (here, only keepalives).
      yield* Effect.forkScoped(Effect.forever(quiet.take))
      const reader = yield* bus.subscribe("reader")
      yield* publish("idle", 1)
      yield* TestClock.adjust(Duration.minutes(29))
      yield* publish("reader", 1)
      yield* reader.take
      assert.isUndefined(idle.endedBy())
      yield* TestClock.adjust(Duration.minutes(1))
      yield* publish("reader", 2)
      yield* reader.take
      assert.strictEqual(idle.endedBy(), "reaped")
      // A consumer waiting on an empty queue is alive, however long nothing came.
      assert.isUndefined(quiet.endedBy())
      assert.strictEqual(bus.stats().subscribers, 2)
    })).pipe(Effect.provide(busLayer({ queueSize: 10 }))))

  it.effect("an idle subscription gets a keepalive every SSE_KEEPALIVE_SECONDS; one with items waiting does not", () =>
    Effect.scoped(Effect.gen(function*() {
      const bus = yield* SseBus.SseBus
      const idle = yield* bus.subscribe("idle")
      const busy = yield* bus.subscribe("busy")
      yield* publish("busy", 1)
      yield* TestClock.adjust(Duration.seconds(29))
      assert.strictEqual(bus.stats().queued, 1)
      yield* TestClock.adjust(Duration.seconds(1))
      assert.deepStrictEqual(yield* idle.take, { items: [{ _tag: "Keepalive" }], end: false })
      assert.deepStrictEqual(ids(yield* busy.take), [1])
      yield* TestClock.adjust(Duration.seconds(30))
      assert.deepStrictEqual((yield* idle.take).items, [{ _tag: "Keepalive" }])
      assert.deepStrictEqual((yield* busy.take).items, [{ _tag: "Keepalive" }])
    })).pipe(Effect.provide(busLayer())))

  it.effect("drain ends every subscription at once, and refuses new ones", () =>
    Effect.scoped(Effect.gen(function*() {
      const bus = yield* SseBus.SseBus
      const lifecycle = yield* Lifecycle.Lifecycle
      const waiting = yield* bus.subscribe("a")
      const withItems = yield* bus.subscribe("b")
      yield* publish("b", 1)
      const taker = yield* Effect.fork(waiting.take)
      yield* lifecycle.beginDrain
      yield* Effect.yieldNow()
      assert.deepStrictEqual(yield* Fiber.join(taker), { items: [], end: true })
      assert.deepStrictEqual(yield* withItems.take, { items: [], end: true })
      assert.strictEqual(withItems.endedBy(), "draining")
      assert.isTrue(Exit.isFailure(yield* Effect.exit(bus.subscribe("c"))))
    })).pipe(Effect.provide(busLayer())))

  it.effect("the stream body starts with the preamble; keepalives are comment frames", () =>
    Effect.gen(function*() {
      const decoder = new TextDecoder()
      const received = yield* Events.body(Stream.make(new TextEncoder().encode(": keepalive\n\n"))).pipe(
        Stream.map((bytes) => decoder.decode(bytes)),
        Stream.runCollect
      )
      assert.deepStrictEqual(Chunk.toReadonlyArray(received), ["retry: 1000\n: connected\n\n", ": keepalive\n\n"])
    }))

  it.effect("unlogged events reach the user's subscriptions only", () =>
    Effect.scoped(Effect.gen(function*() {
      const bus = yield* SseBus.SseBus
      const mine = yield* bus.subscribe("me")
      const theirs = yield* bus.subscribe("them")
      yield* bus.emit("me", "progress", { done: 1 })
      assert.deepStrictEqual(yield* mine.take, {
        items: [{ _tag: "Unlogged", type: "progress", data: "{\"done\":1}" }],
        end: false
      })
      assert.strictEqual(bus.stats().queued, 0)
      assert.strictEqual(theirs.endedBy(), undefined)
    })).pipe(Effect.provide(busLayer())))
})
