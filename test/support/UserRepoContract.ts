/**
 * The upsert semantics every `UserRepo` must have, as a property over sequences of sightings of a few users: run
 * against the Postgres repository (test/domain/UserRepo.test.ts) and the in-memory one of the testing kit
 * (test/testing/InMemoryUserRepo.test.ts), so both behave alike.
 */
import { assert } from "@effect/vitest"
import { Effect, FastCheck as fc, Option } from "effect"
import { randomUUID } from "node:crypto"
import { appRole, type SupabaseClaims, type User, UserRepo } from "../../src/domain/UserRepo.js"

/** One sighting: which of a few users, the case of its uuid, and the claims it came with. */
export interface Sighting {
  readonly user: number
  readonly upperCase: boolean
  readonly email: string | null
  readonly role: string | undefined
  readonly appMetadataRole: unknown
}

const sighting: fc.Arbitrary<Sighting> = fc.record({
  user: fc.nat(3),
  upperCase: fc.boolean(),
  email: fc.constantFrom(null, "a@example.com", "b@example.com", "A@example.com"),
  role: fc.constantFrom(undefined, "authenticated", "anon", "editor", " support "),
  appMetadataRole: fc.constantFrom(undefined, "admin", "user", " admin ", "", 42)
})

export const sightings: fc.Arbitrary<ReadonlyArray<Sighting>> = fc.array(sighting, { minLength: 1, maxLength: 12 })

const claimsOf = (sub: string, seen: Sighting): SupabaseClaims => ({
  sub: seen.upperCase ? sub.toUpperCase() : sub,
  email: seen.email,
  ...(seen.role === undefined ? {} : { role: seen.role }),
  ...(seen.appMetadataRole === undefined ? {} : { app_metadata: { role: seen.appMetadataRole } })
})

const time = (date: Date) => date.getTime()

/**
 * Runs the sightings against the `UserRepo` in context (fresh users each run), `between` after each, and checks each
 * row against the previous one of its user: one row per user whatever the case of its uuid, `created_at` fixed,
 * email replaced, the app role replaced only when the claims carry one, `updated_at` moved exactly when email or
 * role changed (to the sighting's time, which `last_seen_at` always takes), and `findById` seeing the latest row.
 */
export const check = <E, R>(seen: ReadonlyArray<Sighting>, between: Effect.Effect<void, E, R> = Effect.void) =>
  Effect.gen(function*() {
    const repo = yield* UserRepo
    const subs = Array.from({ length: 4 }, () => randomUUID())
    const rows = new Map<number, User>()
    for (const sighting of seen) {
      const sub = subs[sighting.user]!
      const claims = claimsOf(sub, sighting)
      const row = yield* repo.getOrCreateFromSupabase(claims)
      const previous = rows.get(sighting.user)
      const expectedRole = appRole(claims) ?? previous?.role ?? "user"
      assert.strictEqual(row.supabaseUserId, sub)
      assert.strictEqual(row.email, sighting.email)
      assert.strictEqual(row.role, expectedRole)
      if (previous === undefined) {
        assert.strictEqual(time(row.updatedAt), time(row.createdAt))
        assert.strictEqual(time(row.lastSeenAt), time(row.createdAt))
      } else {
        assert.strictEqual(row.id, previous.id)
        assert.strictEqual(time(row.createdAt), time(previous.createdAt))
        assert.isAtLeast(time(row.lastSeenAt), time(previous.lastSeenAt))
        const changed = previous.email !== row.email || previous.role !== row.role
        assert.strictEqual(time(row.updatedAt), changed ? time(row.lastSeenAt) : time(previous.updatedAt))
      }
      rows.set(sighting.user, row)
      yield* between
    }
    for (const row of rows.values()) {
      const found = yield* repo.findById(row.id.toUpperCase())
      assert.deepStrictEqual(
        Option.map(found, (user) => [user.id, user.email, user.role, time(user.updatedAt)]),
        Option.some([row.id, row.email, row.role, time(row.updatedAt)])
      )
    }
    assert.strictEqual(new Set([...rows.values()].map((row) => row.id)).size, rows.size)
  })
