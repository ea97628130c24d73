/**
 * `Effect.acquireRelease` for the many small resources a long-lived request holds (a stream's subscriptions): the
 * release goes straight onto the scope, without `acquireRelease`'s capture of the acquiring fiber's refs and flags,
 * which each open stream would otherwise keep (a copy of every fiber ref per resource) until it ends. The release
 * therefore runs with the closing fiber's refs: use it for releases that read none.
 */
import { Effect, Scope } from "effect"

export const acquireRelease = <A, E, R>(
  acquire: Effect.Effect<A, E, R>,
  release: (a: A) => Effect.Effect<unknown>
): Effect.Effect<A, E, R | Scope.Scope> =>
  Effect.flatMap(
    Effect.scope,
    (scope) => Effect.uninterruptible(Effect.tap(acquire, (a) => Scope.addFinalizer(scope, release(a))))
  )
