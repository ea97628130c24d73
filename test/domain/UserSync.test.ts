import { assert, describe, it } from "@effect/vitest"
import { Effect, FastCheck as fc, Layer, Option, TestClock } from "effect"
import { randomUUID } from "node:crypto"
import { type SupabaseClaims, User, UserRepo } from "../../src/domain/UserRepo.js"
import * as UserSync from "../../src/domain/UserSync.js"

/** A repository that counts its round trips and answers a row built from the claims. */
const countingRepo = () => {
  const calls: Array<SupabaseClaims> = []
  const layer = Layer.succeed(
    UserRepo,
    UserRepo.of({
      getOrCreateFromSupabase: (claims) =>
        Effect.sync(() => {
          calls.push(claims)
          const now = new Date()
          return new User({
            id: claims.sub,
            supabaseUserId: claims.sub,
            email: claims.email ?? null,
            role: "user",
            createdAt: now,
            updatedAt: now,
            lastSeenAt: now
          })
        }),
      findById: () => Effect.succeed(Option.none())
    })
  )
  return { calls, layer }
}

const withSync = <A, E>(
  options: UserSync.Options,
  body: (sync: UserSync.Service, calls: ReadonlyArray<SupabaseClaims>) => Effect.Effect<A, E>
) => {
  const repo = countingRepo()
  return Effect.flatMap(UserSync.make(options), (sync) => body(sync, repo.calls)).pipe(Effect.provide(repo.layer))
}

describe("UserSync", () => {
  it.effect("a user seen within the last minute with unchanged claims costs no database round trip", () =>
    withSync(UserSync.defaults, (sync, calls) =>
      Effect.gen(function*() {
        const claims = { sub: randomUUID(), email: "a@example.com" }
        yield* sync.sync(claims)
        yield* TestClock.adjust("59 seconds")
        yield* sync.sync(claims)
        assert.strictEqual(calls.length, 1)
        // A minute on, the row is written again, so last_seen_at stays current to the minute.
        yield* TestClock.adjust("1 second")
        yield* sync.sync(claims)
        assert.strictEqual(calls.length, 2)
      })))

  it.effect("changed claims (email, app role) are written at once", () =>
    withSync(UserSync.defaults, (sync, calls) =>
      Effect.gen(function*() {
        const sub = randomUUID()
        yield* sync.sync({ sub, email: "a@example.com" })
        yield* sync.sync({ sub, email: "b@example.com" })
        yield* sync.sync({ sub, email: "b@example.com", app_metadata: { role: "admin" } })
        yield* sync.sync({ sub, email: "b@example.com", app_metadata: { role: "admin" } })
        assert.deepStrictEqual(calls.map((c) => c.email), ["a@example.com", "b@example.com", "b@example.com"])
      })))

  it.effect.prop(
    "a bounded memory: within capacity each user costs one round trip, beyond it never more than one per request",
    [fc.array(fc.integer({ min: 0, max: 30 }), { minLength: 1, maxLength: 200 })],
    ([visits]) =>
      withSync({ freshFor: "1 minute", maxEntries: 8 }, (sync, calls) =>
        Effect.gen(function*() {
          const subs = Array.from({ length: 31 }, () => randomUUID())
          for (const visit of visits) yield* sync.sync({ sub: subs[visit]!, email: null })
          // Each distinct user costs at least one call; with room for 8, a user evicted and seen again costs more.
          assert.isAtLeast(calls.length, new Set(visits).size)
          assert.isAtMost(calls.length, visits.length)
          if (new Set(visits).size <= 8) assert.strictEqual(calls.length, new Set(visits).size)
        }))
  )
})
