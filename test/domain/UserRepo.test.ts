import { assert, describe, layer } from "@effect/vitest"
import { Duration, Effect, Layer, Option } from "effect"
import { randomUUID } from "node:crypto"
import * as Migrations from "../../src/core/db/Migrations.js"
import { appRole, layer as userRepoLayer, UserRepo } from "../../src/domain/UserRepo.js"
import { adminQuery, layerPools, layerTestDb, TestDb, uniqueAppName } from "../support/DatabaseFixtures.js"
import * as UserRepoContract from "../support/UserRepoContract.js"

const layerRepo = Layer.unwrapEffect(
  Effect.map(TestDb, (db) =>
    userRepoLayer.pipe(
      Layer.provideMerge(Migrations.layer()),
      Layer.provideMerge(layerPools(db.url, uniqueAppName("users"), { main: { size: 10 } }))
    ))
).pipe(Layer.provideMerge(layerTestDb("users")))

/** Timestamps compared in the database, to the microsecond (a JS Date keeps milliseconds only). */
const moved = (supabaseUserId: string) =>
  Effect.flatMap(TestDb, (db) =>
    adminQuery<{ updated: boolean; seen: boolean }>(
      db.url,
      "select updated_at > created_at as updated, last_seen_at > created_at as seen from users where supabase_user_id = $1",
      [supabaseUserId]
    ))

const countRows = (supabaseUserId: string) =>
  Effect.flatMap(
    TestDb,
    (db) =>
      adminQuery<{ n: number }>(db.url, "select count(*)::int as n from users where supabase_user_id = $1", [
        supabaseUserId
      ])
  )

describe("UserRepo", () => {
  layer(layerRepo, { timeout: Duration.seconds(60), excludeTestServices: true })((it) => {
    it.effect("getOrCreateFromSupabase called 50 times concurrently for one new user makes one row", () =>
      Effect.gen(function*() {
        const repo = yield* UserRepo
        const sub = randomUUID()
        const users = yield* Effect.forEach(
          Array.from({ length: 50 }, () => ({ sub, email: "first@example.com" })),
          repo.getOrCreateFromSupabase,
          { concurrency: "unbounded" }
        )
        assert.deepStrictEqual(yield* countRows(sub), [{ n: 1 }])
        assert.strictEqual(new Set(users.map((user) => user.id)).size, 1)
        assert.isTrue(users.every((user) => user.supabaseUserId === sub && user.email === "first@example.com"))
      }))

    it.effect("email, role and last-seen are kept current; created_at never moves", () =>
      Effect.gen(function*() {
        const repo = yield* UserRepo
        const sub = randomUUID()
        const first = yield* repo.getOrCreateFromSupabase({ sub, email: "old@example.com", role: "authenticated" })
        assert.strictEqual(first.role, "user")
        assert.strictEqual(first.email, "old@example.com")

        const same = yield* repo.getOrCreateFromSupabase({ sub, email: "old@example.com", role: "authenticated" })
        assert.strictEqual(same.id, first.id)
        assert.isAtLeast(same.lastSeenAt.getTime(), first.lastSeenAt.getTime())
        // Nothing changed but the sighting: last_seen_at moves, updated_at stays.
        assert.deepStrictEqual(yield* moved(sub), [{ updated: false, seen: true }])

        const changed = yield* repo.getOrCreateFromSupabase({
          sub,
          email: "new@example.com",
          role: "authenticated",
          app_metadata: { role: "admin" }
        })
        assert.strictEqual(changed.id, first.id)
        assert.strictEqual(changed.email, "new@example.com")
        assert.strictEqual(changed.role, "admin")
        assert.strictEqual(changed.createdAt.getTime(), first.createdAt.getTime())
        assert.deepStrictEqual(yield* moved(sub), [{ updated: true, seen: true }])
        assert.isAtLeast(changed.lastSeenAt.getTime(), same.lastSeenAt.getTime())

        // A later token without an app role does not demote the user.
        const later = yield* repo.getOrCreateFromSupabase({ sub, email: "new@example.com" })
        assert.strictEqual(later.role, "admin")
        assert.deepStrictEqual(yield* countRows(sub), [{ n: 1 }])
      }))

    it.effect.prop(
      "the upsert semantics the in-memory repository shares: generated sightings of a few users, in both cases",
      [UserRepoContract.sightings],
      ([seen]) => UserRepoContract.check(seen),
      { fastCheck: { numRuns: 40 } }
    )

    it.effect("findById finds the row by its local id; unknown or malformed ids find nothing", () =>
      Effect.gen(function*() {
        const repo = yield* UserRepo
        const created = yield* repo.getOrCreateFromSupabase({ sub: randomUUID(), email: null })
        const found = yield* repo.findById(created.id)
        assert.isTrue(Option.isSome(found))
        assert.deepStrictEqual(Option.map(found, (user) => [user.id, user.email]), Option.some([created.id, null]))
        assert.deepStrictEqual(yield* repo.findById(randomUUID()), Option.none())
        assert.deepStrictEqual(yield* repo.findById("not-a-uuid"), Option.none())
      }))

    it.effect("the app role comes from app_metadata.role, or from role when it is not one of Supabase's own", () =>
      Effect.sync(() => {
        const sub = randomUUID()
        assert.strictEqual(appRole({ sub, role: "authenticated" }), null)
        assert.strictEqual(appRole({ sub, role: "service_role" }), null)
        assert.strictEqual(appRole({ sub, role: "authenticated", app_metadata: { role: "admin" } }), "admin")
        assert.strictEqual(appRole({ sub, role: "editor" }), "editor")
        assert.strictEqual(appRole({ sub, app_metadata: { role: 42 } }), null)
      }))
  })
})
