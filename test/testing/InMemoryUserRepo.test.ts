import { assert, layer } from "@effect/vitest"
import { Effect, Layer } from "effect"
import { randomUUID } from "node:crypto"
import { UserRepo } from "../../src/domain/UserRepo.js"
import * as InMemoryUserRepo from "../../src/testing/InMemoryUserRepo.js"
import * as SettableClock from "../../src/testing/SettableClock.js"
import * as UserRepoContract from "../support/UserRepoContract.js"

layer(Layer.merge(InMemoryUserRepo.layer, SettableClock.layer()), { excludeTestServices: true })(
  "InMemoryUserRepo",
  (it) => {
    it.effect.prop(
      "has the Postgres repository's upsert semantics: generated sightings of a few users, in both cases",
      [UserRepoContract.sightings],
      ([seen]) => UserRepoContract.check(seen, SettableClock.adjust("1 second")),
      { fastCheck: { numRuns: 300 } }
    )

    it.effect("timestamps come from the Clock: last_seen_at moves on every sighting, updated_at only on a change", () =>
      Effect.gen(function*() {
        const repo = yield* UserRepo
        const sub = randomUUID()
        const start = yield* Effect.flatMap(SettableClock.SettableClock, (clock) => clock.now)
        const first = yield* repo.getOrCreateFromSupabase({ sub, email: "a@example.com" })
        assert.strictEqual(first.createdAt.getTime(), start)
        yield* SettableClock.adjust("1 minute")
        const same = yield* repo.getOrCreateFromSupabase({ sub, email: "a@example.com" })
        assert.strictEqual(same.lastSeenAt.getTime(), start + 60_000)
        assert.strictEqual(same.updatedAt.getTime(), start)
        yield* SettableClock.adjust("1 minute")
        const changed = yield* repo.getOrCreateFromSupabase({ sub, email: "b@example.com" })
        assert.strictEqual(changed.updatedAt.getTime(), start + 120_000)
        assert.strictEqual(changed.createdAt.getTime(), start)
      }))

    it.effect("concurrent first sightings of a user make one row; `all` lists each user once", () =>
      Effect.gen(function*() {
        const repo = yield* UserRepo
        const sub = randomUUID()
        const before = (yield* InMemoryUserRepo.all).length
        const users = yield* Effect.forEach(
          Array.from({ length: 50 }, (_, i) => ({ sub: i % 2 === 0 ? sub : sub.toUpperCase(), email: null })),
          repo.getOrCreateFromSupabase,
          { concurrency: "unbounded" }
        )
        assert.strictEqual(new Set(users.map((user) => user.id)).size, 1)
        const all = yield* InMemoryUserRepo.all
        assert.strictEqual(all.length, before + 1)
        assert.strictEqual(all.filter((user) => user.supabaseUserId === sub).length, 1)
      }))

    it.effect("a sub that is not a uuid is a defect, as in the Postgres repository", () =>
      Effect.gen(function*() {
        const repo = yield* UserRepo
        const exit = yield* Effect.exit(repo.getOrCreateFromSupabase({ sub: "not-a-uuid" }))
        assert.isTrue(exit._tag === "Failure" && exit.cause._tag === "Die")
      }))
  }
)
