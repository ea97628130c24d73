/**
 * A context overlay stands for the copy it saves: for any parent, own entries and deletes, every way of reading
 * it (lookups, size, iteration in every form, copying, Effect's context operations) gives what the copy gives, and
 * the parent is never touched.
 */
import { assert, describe, it } from "@effect/vitest"
import { Context, Effect, Equal, FastCheck as fc } from "effect"
import * as ContextOverlay from "../../../src/core/runtime/ContextOverlay.js"

// Few keys, so that own entries, parent entries and deletes overlap often.
const key = fc.constantFrom("a", "b", "c", "d", "e", "f")
const entries = fc.array(fc.tuple(key, fc.integer()), { maxLength: 8 })
const step = fc.oneof(
  fc.record({ op: fc.constant("set" as const), key, value: fc.integer() }),
  fc.record({ op: fc.constant("delete" as const), key }),
  fc.record({ op: fc.constant("clear" as const) })
)
const steps = fc.array(step, { maxLength: 10 })

type Step = { op: "set"; key: string; value: number } | { op: "delete"; key: string } | { op: "clear" }

/** Takes the same steps on the overlay and on the copy it stands for, comparing each step's result on the way. */
const apply = (overlay: Map<string, number>, copy: Map<string, number>, steps: ReadonlyArray<Step>) => {
  for (const step of steps) {
    if (step.op === "set") {
      overlay.set(step.key, step.value)
      copy.set(step.key, step.value)
    } else if (step.op === "delete") {
      assert.strictEqual(overlay.delete(step.key), copy.delete(step.key))
    } else {
      overlay.clear()
      copy.clear()
    }
  }
}

/** The overlay and the copy it stands for, after the same steps. */
const build = (parentEntries: ReadonlyArray<[string, number]>, steps: ReadonlyArray<Step>) => {
  const parent = new Map(parentEntries)
  const overlay = new ContextOverlay.OverlayMap<string, number>(parent)
  const copy = new Map(parent)
  apply(overlay, copy, steps)
  return { parent, overlay, copy }
}

const entriesOf = (map: Map<string, number>) => {
  const forEach: Array<[string, number]> = []
  map.forEach((value, key, self) => {
    assert.strictEqual(self, map)
    forEach.push([key, value])
  })
  return {
    size: map.size,
    entries: [...map.entries()].sort(),
    iterated: [...map].sort(),
    keys: [...map.keys()].sort(),
    values: [...map.values()].sort(),
    forEach: forEach.sort(),
    copied: [...new Map(map)].sort()
  }
}

class A extends Context.Tag("a")<A, number>() {}
class B extends Context.Tag("b")<B, number>() {}
class G extends Context.Tag("g")<G, number>() {}

describe("ContextOverlay", () => {
  it.prop(
    "an overlay reads, iterates and copies as the copy it stands for",
    [entries, steps],
    ([parentEntries, steps]) => {
      const { copy, overlay, parent } = build(parentEntries, steps)
      const parentBefore = [...new Map(parentEntries)]
      for (const candidate of ["a", "b", "c", "d", "e", "f", "z"]) {
        assert.strictEqual(overlay.has(candidate), copy.has(candidate), candidate)
        assert.strictEqual(overlay.get(candidate), copy.get(candidate), candidate)
      }
      assert.deepStrictEqual(entriesOf(overlay), entriesOf(copy))
      assert.deepStrictEqual([...parent], parentBefore)
    }
  )

  it.prop(
    "an overlay rebased on an overlay of its parent reads as if it had set what that one adds, where it had nothing",
    [
      entries,
      fc.array(fc.tuple(key, fc.integer()), { maxLength: 5 }),
      fc.array(fc.tuple(fc.constantFrom("d", "e", "f", "g", "h"), fc.integer()), { maxLength: 5 }),
      steps
    ],
    ([parentEntries, own, added, after]) => {
      const { copy, overlay, parent } = build(parentEntries, own.map(([key, value]) => ({ op: "set", key, value })))
      // What the overlay stands on is what it adds over the same parent: keys the parent lacks.
      const extension = new ContextOverlay.OverlayMap<string, number>(parent)
      for (const [key, value] of added) if (!parent.has(key)) extension.set(key, value)
      for (const [key, value] of Map.prototype.entries.call(extension)) if (!copy.has(key)) copy.set(key, value)
      assert.isTrue(overlay.rebase(extension))
      assert.strictEqual(overlay.parent, extension)
      apply(overlay, copy, after)
      for (const candidate of ["a", "b", "c", "d", "e", "f", "g", "h", "z"]) {
        assert.strictEqual(overlay.get(candidate), copy.get(candidate), candidate)
      }
      assert.deepStrictEqual(entriesOf(overlay), entriesOf(copy))
    }
  )

  it("an overlay is rebased only on an overlay of its own parent, when neither hides any of it", () => {
    const parent = new Map([["a", 1]])
    const other = new ContextOverlay.OverlayMap<string, number>(new Map(parent))
    assert.isFalse(new ContextOverlay.OverlayMap(parent).rebase(other))
    const hiding = new ContextOverlay.OverlayMap<string, number>(parent)
    hiding.delete("a")
    assert.isFalse(new ContextOverlay.OverlayMap(parent).rebase(hiding))
    const overlay = new ContextOverlay.OverlayMap<string, number>(parent)
    overlay.delete("a")
    assert.isFalse(overlay.rebase(new ContextOverlay.OverlayMap(parent)))
    assert.strictEqual(overlay.parent, parent)
  })

  it.prop(
    "Effect's context operations on an overlay give what they give on a copy",
    [entries, fc.array(fc.tuple(key, fc.integer()), { maxLength: 4 })],
    ([parentEntries, ownEntries]) => {
      const parent = Context.unsafeMake<never>(new Map(parentEntries))
      const overlay = ContextOverlay.make(parent, ownEntries)
      const copy = Context.unsafeMake<never>(new Map([...parentEntries, ...ownEntries]))
      assert.isTrue(Equal.equals(overlay, copy))
      for (const tag of [A, B]) {
        assert.deepStrictEqual(Context.getOption(overlay, tag as any), Context.getOption(copy, tag as any))
      }
      const added = Context.add(overlay, G, 1)
      assert.isTrue(Equal.equals(added, Context.add(copy, G, 1)))
      assert.isTrue(Equal.equals(Context.merge(parent, overlay), Context.merge(parent, copy)))
      assert.isTrue(Equal.equals(Context.merge(overlay, Context.make(A, 7)), Context.merge(copy, Context.make(A, 7))))
      assert.isTrue(Equal.equals(Context.omit(A)(overlay as any), Context.omit(A)(copy as any)))
      // An effect run in the overlay reads the services the copy holds.
      const read = Effect.runSync(Effect.provide(Effect.serviceOption(B), overlay as Context.Context<unknown>))
      assert.deepStrictEqual(read, Context.getOption(copy, B as any))
    }
  )
})
