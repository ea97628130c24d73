import { assert, describe, it } from "@effect/vitest"
import { Effect, FastCheck as fc, Option, TestClock } from "effect"
import * as Constants from "../../../src/core/config/Constants.js"
import * as Time from "../../../src/core/runtime/Time.js"

describe("Time", () => {
  it.effect("utcNow reads Effect's Clock, so TestClock moves it", () =>
    Effect.gen(function*() {
      assert.strictEqual((yield* Time.utcNow).toISOString(), "1970-01-01T00:00:00.000Z")
      yield* TestClock.adjust("90 minutes")
      assert.strictEqual((yield* Time.utcNow).toISOString(), "1970-01-01T01:30:00.000Z")
    }))

  it("makeTzAware reads naive timestamps as UTC and keeps explicit zones", () => {
    const iso = (value: Date | string) => Option.map(Time.makeTzAware(value), (d) => d.toISOString())
    assert.deepStrictEqual(iso("2024-05-01T10:00:00"), Option.some("2024-05-01T10:00:00.000Z"))
    assert.deepStrictEqual(iso("2024-05-01 10:00:00.123456"), Option.some("2024-05-01T10:00:00.123Z"))
    assert.deepStrictEqual(iso("2024-05-01T10:00:00+02:00"), Option.some("2024-05-01T08:00:00.000Z"))
    assert.deepStrictEqual(iso("2024-05-01T10:00:00Z"), Option.some("2024-05-01T10:00:00.000Z"))
    assert.deepStrictEqual(iso("2024-05-01"), Option.some("2024-05-01T00:00:00.000Z"))
    assert.deepStrictEqual(iso("yesterday-ish"), Option.none())
    assert.deepStrictEqual(iso(new Date(Number.NaN)), Option.none())
  })

  it.prop("an instant survives makeTzAware, as a Date or as its naive UTC text", [
    fc.date({ noInvalidDate: true, min: new Date("1900-01-01"), max: new Date("2999-12-31") })
  ], ([date]) => {
    assert.strictEqual(Option.getOrThrow(Time.makeTzAware(date)).getTime(), date.getTime())
    const naive = date.toISOString().slice(0, -1)
    assert.strictEqual(Option.getOrThrow(Time.makeTzAware(naive)).getTime(), date.getTime())
  })
})

describe("Constants", () => {
  it("the default vision provider is a valid one and every provider has a default model", () => {
    assert.isTrue(Constants.isVisionProvider(Constants.defaultVisionProvider))
    for (const provider of Constants.visionProviders) assert.isString(Constants.defaultVisionModels[provider])
    assert.isFalse(Constants.isVisionProvider("mystery"))
  })
})
