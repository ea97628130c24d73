/** Users: the local row of each Supabase user, created the first time the user is seen and kept current after. */
import * as SqlSchema from "@effect/sql/SqlSchema"
import { Context, Effect, Layer, Option, Schema } from "effect"
import { MainDb } from "../core/db/Database.js"
import { type DbFailure, withTransientRetry } from "../core/db/DbResilience.js"

export class User extends Schema.Class<User>("User")({
  id: Schema.UUID,
  supabaseUserId: Schema.propertySignature(Schema.UUID).pipe(Schema.fromKey("supabase_user_id")),
  email: Schema.NullOr(Schema.String),
  role: Schema.String,
  createdAt: Schema.propertySignature(Schema.DateFromSelf).pipe(Schema.fromKey("created_at")),
  updatedAt: Schema.propertySignature(Schema.DateFromSelf).pipe(Schema.fromKey("updated_at")),
  lastSeenAt: Schema.propertySignature(Schema.DateFromSelf).pipe(Schema.fromKey("last_seen_at"))
}) {}

/** The access-token claims the row is built from (a verified Supabase token). */
export interface SupabaseClaims {
  /** The Supabase user id (a uuid). */
  readonly sub: string
  readonly email?: string | null | undefined
  /** Supabase's Postgres role ("authenticated", ...); an app role only when it is none of those. */
  readonly role?: string | undefined
  /** `app_metadata.role` is the app role: only the service role can set it. */
  readonly app_metadata?: { readonly role?: unknown } | null | undefined
}

/** Roles Supabase itself puts in `role`; they say how the token was issued, not what the user may do in the app. */
const supabaseRoles: ReadonlySet<string> = new Set(["authenticated", "anon", "service_role", "supabase_admin"])

/** The app role the claims carry, if any; the row keeps its role (default `user`) when they carry none. */
export const appRole = (claims: SupabaseClaims): string | null => {
  const fromMetadata = claims.app_metadata?.role
  if (typeof fromMetadata === "string" && fromMetadata.trim() !== "") return fromMetadata.trim()
  if (claims.role !== undefined && claims.role.trim() !== "" && !supabaseRoles.has(claims.role)) {
    return claims.role.trim()
  }
  return null
}

const UpsertRequest = Schema.Struct({
  sub: Schema.UUID,
  email: Schema.NullOr(Schema.String),
  role: Schema.NullOr(Schema.String)
})

const columns = "id, supabase_user_id, email, role, created_at, updated_at, last_seen_at"

export interface Service {
  /** The user's row, created if this is the first time the user is seen; email, role and last-seen updated. */
  readonly getOrCreateFromSupabase: (claims: SupabaseClaims) => Effect.Effect<User, DbFailure>
  /** The user with this id (the local id, not the Supabase one). */
  readonly findById: (id: string) => Effect.Effect<Option.Option<User>, DbFailure>
}

export class UserRepo extends Context.Tag("domain/UserRepo")<UserRepo, Service>() {}

/**
 * The repository on `MainDb`.
 * @public
 */
export const make: Effect.Effect<Service, never, MainDb> = Effect.gen(function*() {
  const sql = yield* MainDb

  // One statement, atomic on the unique key: concurrent first requests of a user all get the same row.
  // updated_at moves only when the email or role changes; last_seen_at moves on every call.
  const upsert = SqlSchema.single({
    Request: UpsertRequest,
    Result: User,
    execute: ({ email, role, sub }) =>
      sql`insert into users (supabase_user_id, email, role)
          values (${sub}, ${email}, coalesce(${role}::text, 'user'))
          on conflict (supabase_user_id) do update set
            email = excluded.email,
            role = coalesce(${role}::text, users.role),
            last_seen_at = now(),
            updated_at = case
              when users.email is distinct from excluded.email or users.role <> coalesce(${role}::text, users.role)
              then now() else users.updated_at end
          returning ${sql.literal(columns)}`
  })

  const byId = SqlSchema.findOne({
    Request: Schema.UUID,
    Result: User,
    execute: (id) => sql`select ${sql.literal(columns)} from users where id = ${id}`
  })

  const getOrCreateFromSupabase = Effect.fn("UserRepo.getOrCreateFromSupabase")(
    (claims: SupabaseClaims): Effect.Effect<User, DbFailure> =>
      upsert({ sub: claims.sub, email: claims.email ?? null, role: appRole(claims) }).pipe(
        withTransientRetry("UserRepo.getOrCreateFromSupabase"),
        // A sub that is not a uuid is a bug upstream (verified tokens always carry one), not a database failure.
        Effect.catchTag("ParseError", Effect.die),
        Effect.catchTag("NoSuchElementException", Effect.die)
      )
  )

  const findById = Effect.fn("UserRepo.findById")(
    (id: string): Effect.Effect<Option.Option<User>, DbFailure> =>
      Schema.is(Schema.UUID)(id)
        ? byId(id).pipe(withTransientRetry("UserRepo.findById"), Effect.catchTag("ParseError", Effect.die))
        : Effect.succeed(Option.none())
  )

  return { getOrCreateFromSupabase, findById }
})

export const layer: Layer.Layer<UserRepo, never, MainDb> = Layer.effect(UserRepo, make)
