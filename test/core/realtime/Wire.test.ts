import { assert, describe, it } from "@effect/vitest"
import { FastCheck as fc } from "effect"
import * as Wire from "../../../src/core/realtime/Wire.js"
import * as Arbitraries from "../../../src/testing/Arbitraries.js"

describe("Wire (what travels on a user's topic)", () => {
  it.prop(
    "a logged event decodes to what was encoded; its data stays one line of JSON",
    [Arbitraries.realtimeEvent, fc.nat(), fc.nat()],
    ([event, id, prev]) => {
      const data = JSON.stringify(event.data)
      const decoded = Wire.decode(Wire.encode({ id, prev, userId: "u", type: event.type, data }))
      assert.deepStrictEqual(decoded, { _tag: "Event", id, prev, type: event.type, data })
      assert.notInclude(data, "\n")
    }
  )

  it.prop("an unlogged event decodes to what was encoded", [Arbitraries.realtimeEvent], ([event]) => {
    const data = JSON.stringify(event.data)
    assert.deepStrictEqual(Wire.decode(Wire.encodeUnlogged(event.type, data)), {
      _tag: "Unlogged",
      type: event.type,
      data
    })
  })

  it.prop("anything else is refused, never a frame with a type that could break SSE framing", [fc.string()], ([
    message
  ]) => {
    const decoded = Wire.decode(message)
    if (decoded !== undefined) assert.isTrue(Wire.isEventType(decoded.type))
  })

  it("event types are names: no spaces, no line breaks, at most 64 characters", () => {
    for (const bad of ["", "a b", "a\nb", "a\rb", "x".repeat(65), "é"]) assert.isFalse(Wire.isEventType(bad), bad)
    for (const good of ["notification", "job.progress", "a:b-c_d", "x".repeat(64)]) {
      assert.isTrue(Wire.isEventType(good))
    }
  })
})
