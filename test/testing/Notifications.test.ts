import { assert, describe, layer } from "@effect/vitest"
import { Chunk, Effect, FastCheck as fc, Option, Stream } from "effect"
import * as EventFeed from "../../src/core/realtime/EventFeed.js"
import { EventLog } from "../../src/core/realtime/EventLog.js"
import * as Wire from "../../src/core/realtime/Wire.js"
import * as Arbitraries from "../../src/testing/Arbitraries.js"
import * as TestApp from "../../src/testing/TestApp.js"
import * as TestIssuer from "../../src/testing/TestIssuer.js"

describe("TestApp: notifications and realtime in memory", () => {
  layer(TestApp.layer, { excludeTestServices: true })((it) => {
    it.effect.prop(
      "generated notifications: 201 as sent, listed newest first, each user seeing only their own",
      [fc.array(fc.tuple(fc.nat(1), Arbitraries.notificationInput), { maxLength: 30 })],
      ([inputs]) =>
        Effect.gen(function*() {
          const issuer = yield* TestIssuer.TestIssuer
          const tokens = [yield* issuer.mint(), yield* issuer.mint()]
          const sent: Array<Array<string>> = [[], []]
          for (const [who, input] of inputs) {
            const reply = yield* TestApp.request("POST", "/api/v1/notifications", { token: tokens[who]!, body: input })
            assert.strictEqual(reply.status, 201)
            assert.strictEqual(reply.json.title, input.title)
            assert.strictEqual(reply.json.body, input.body)
            sent[who]!.push(input.title)
          }
          for (const [who, token] of tokens.entries()) {
            const listed = yield* TestApp.request("GET", "/api/v1/notifications?limit=100", { token })
            assert.deepStrictEqual(
              listed.json.notifications.map((n: { title: string }) => n.title),
              [...sent[who]!].reverse()
            )
            assert.isNull(listed.json.next_before)
          }
        }),
      { fastCheck: { numRuns: 30 } }
    )

    it.effect.prop(
      "generated events: appended in a transaction, replayed from a cursor by the in-memory event log",
      [fc.array(Arbitraries.realtimeEvent, { minLength: 1, maxLength: 20 })],
      ([events]) =>
        Effect.gen(function*() {
          const log = yield* EventLog
          const user = crypto.randomUUID()
          const appended = yield* log.transaction(Effect.forEach(events, (e) => log.append(user, e.type, e.data)))
          assert.isTrue(events.every((e) => Wire.isEventType(e.type)))
          const feed = yield* EventFeed.open(user, { cursor: Option.some(0) })
          const items = Chunk.toReadonlyArray(yield* Stream.runCollect(Stream.take(feed, events.length)))
          assert.deepStrictEqual(items.map((item) => item._tag === "Event" ? item.id : -1), appended.map((e) => e.id))
          assert.deepStrictEqual(
            items.map((item) => item._tag === "Event" ? JSON.parse(item.data) : undefined),
            events.map((e) => e.data)
          )
        }).pipe(Effect.scoped),
      { fastCheck: { numRuns: 30 } }
    )
  })
})
