/** Request ids: a client's safe id is kept, anything else replaced by a fresh random UUID, never the same twice. */
import { assert, describe, it } from "@effect/vitest"
import { FastCheck as fc } from "effect"
import * as RequestId from "../../../src/core/runtime/RequestId.js"

const uuidV4 = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/

describe("RequestId", () => {
  it("generates version 4 UUIDs, all different, across many refills of its random bytes", () => {
    const ids = Array.from({ length: 5000 }, RequestId.generate)
    for (const id of ids) assert.match(id, uuidV4)
    assert.strictEqual(new Set(ids).size, ids.length)
    // Every random digit position takes every value: the bytes are used, not a fixed pattern.
    for (let position = 0; position < 36; position++) {
      if ([8, 13, 14, 18, 19, 23].includes(position)) continue
      assert.strictEqual(new Set(ids.map((id) => id[position])).size, 16, `position ${position}`)
    }
  })

  it.prop("keeps a safe id from the client and replaces anything else", [
    fc.oneof(fc.string({ maxLength: 140 }), fc.stringMatching(/^[A-Za-z0-9._-]{1,128}$/), fc.constant(undefined))
  ], ([incoming]) => {
    const id = RequestId.fromHeader(incoming)
    if (incoming !== undefined && RequestId.isSafe(incoming)) assert.strictEqual(id, incoming)
    else assert.match(id, uuidV4)
    assert.isTrue(RequestId.isSafe(id))
  })
})
