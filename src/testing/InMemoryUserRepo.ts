/**
 * `InMemoryUserRepo`: the domain's `UserRepo` in memory, with the Postgres repository's upsert semantics (one row per
 * Supabase user, whatever the case of its uuid; email kept current; the app role replaced only when the claims carry
 * one; `updated_at` moved only by a change; `last_seen_at` by every call), timestamps from Effect's `Clock`.
 */
import { Clock, Context, Effect, Layer, Option, Schema } from "effect"
import { randomUUID } from "node:crypto"
import { appRole, type Service as UserRepoService, type SupabaseClaims, User, UserRepo } from "../domain/UserRepo.js"

export interface Service extends UserRepoService {
  /** Every row, in the order the users were first seen. */
  readonly all: Effect.Effect<ReadonlyArray<User>>
}

export class InMemoryUserRepo extends Context.Tag("testing/InMemoryUserRepo")<InMemoryUserRepo, Service>() {}

const isUuid = Schema.is(Schema.UUID)

export const make: Effect.Effect<Service> = Effect.sync(() => {
  // Keyed as Postgres compares uuids: by value, so by their lower-case text.
  const bySub = new Map<string, User>()
  const byId = new Map<string, User>()

  const getOrCreateFromSupabase = (claims: SupabaseClaims) =>
    isUuid(claims.sub)
      ? Effect.map(Clock.currentTimeMillis, (now) => {
        const at = new Date(now)
        const sub = claims.sub.toLowerCase()
        const email = claims.email ?? null
        const role = appRole(claims)
        const known = bySub.get(sub)
        let user: User
        if (known === undefined) {
          user = new User({
            id: randomUUID(),
            supabaseUserId: sub,
            email,
            role: role ?? "user",
            createdAt: at,
            updatedAt: at,
            lastSeenAt: at
          })
        } else {
          const nextRole = role ?? known.role
          const changed = known.email !== email || known.role !== nextRole
          user = new User({
            ...known,
            email,
            role: nextRole,
            updatedAt: changed ? at : known.updatedAt,
            lastSeenAt: at
          })
        }
        bySub.set(sub, user)
        byId.set(user.id, user)
        return user
      })
      // As the Postgres repository: a sub that is not a uuid is a bug upstream, not a database failure.
      : Effect.dieMessage("UserRepo: the sub of verified claims is not a uuid")

  const findById = (id: string) =>
    Effect.sync(() => (isUuid(id) ? Option.fromNullable(byId.get(id.toLowerCase())) : Option.none()))

  return { getOrCreateFromSupabase, findById, all: Effect.sync(() => [...bySub.values()]) }
})

/** The repository as the domain's `UserRepo`, and as itself to read its rows. */
export const layer: Layer.Layer<InMemoryUserRepo | UserRepo> = Layer.effectContext(
  Effect.map(make, (repo) => Context.make(InMemoryUserRepo, repo).pipe(Context.add(UserRepo, repo)))
)

/** Every row of the `InMemoryUserRepo` in context. */
export const all: Effect.Effect<ReadonlyArray<User>, never, InMemoryUserRepo> = Effect.flatMap(
  InMemoryUserRepo,
  (repo) => repo.all
)
