/**
 * Shared in-flight work: concurrent callers asking for the same key wait for one run instead of starting their own
 * (one JWKS download for many `kid` misses, one introspection call for many requests with the same token). The work
 * runs in the owner's scope, so a caller that goes away does not cancel it for the others.
 */
import { Deferred, Effect, FiberId, type Scope } from "effect"

export interface SingleFlight<K> {
  /** Joins the run in flight for `key`, or starts `work` as that run. */
  readonly run: <A, E>(key: K, work: Effect.Effect<A, E>) => Effect.Effect<A, E>
  readonly isRunning: (key: K) => boolean
}

export const make = <K>(scope: Scope.Scope): SingleFlight<K> => {
  const inFlight = new Map<K, Deferred.Deferred<any, any>>()
  return {
    isRunning: (key) => inFlight.has(key),
    run: <A, E>(key: K, work: Effect.Effect<A, E>): Effect.Effect<A, E> =>
      Effect.suspend(() => {
        const running: Deferred.Deferred<A, E> | undefined = inFlight.get(key)
        if (running !== undefined) return Deferred.await(running)
        const done = Deferred.unsafeMake<A, E>(FiberId.none)
        inFlight.set(key, done)
        const shared = Effect.onExit(work, (exit) =>
          Effect.suspend(() => {
            inFlight.delete(key)
            return Deferred.done(done, exit)
          }))
        return Effect.zipRight(Effect.forkIn(shared, scope), Deferred.await(done))
      })
  }
}
