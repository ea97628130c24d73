/** The instance's lifecycle: whether shutdown has begun, so readiness, responses and long-lived streams can act on it. */
import { Context, Deferred, Effect, Layer } from "effect"

export class Lifecycle extends Context.Tag("core/Lifecycle")<Lifecycle, {
  /** Cheap enough for every request. */
  readonly isDraining: () => boolean
  readonly beginDrain: Effect.Effect<void>
  /** Completes when shutdown begins: long-lived streams race it to end cleanly instead of being cut. */
  readonly draining: Effect.Effect<void>
}>() {}

export const make = Effect.gen(function*() {
  const signal = yield* Deferred.make<void>()
  let draining = false
  return Lifecycle.of({
    isDraining: () => draining,
    beginDrain: Effect.suspend(() => {
      draining = true
      return Deferred.succeed(signal, undefined)
    }),
    draining: Deferred.await(signal)
  })
})

export const layer: Layer.Layer<Lifecycle> = Layer.effect(Lifecycle, make)
