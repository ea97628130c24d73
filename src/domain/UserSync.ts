/**
 * Keeps the local user row in step with verified tokens, cheaply: a user seen within the last minute with the same
 * claims costs no database round trip, so `last_seen_at` stays current to the minute without a write per request.
 */
import { Clock, Context, Duration, Effect, Layer } from "effect"
import type { DbFailure } from "../core/db/DbResilience.js"
import { BoundedMap } from "../core/runtime/BoundedMap.js"
import { appRole, type SupabaseClaims, type User, UserRepo } from "./UserRepo.js"

export interface Options {
  /** How long a synced row is reused for the same claims. */
  readonly freshFor: Duration.DurationInput
  /** Most users remembered at once; the oldest are forgotten first. */
  readonly maxEntries: number
}

export const defaults: Options = { freshFor: Duration.minutes(1), maxEntries: 10_000 }

interface Entry {
  readonly user: User
  /** The claims it was synced for: the same object again (a remembered token's) has the same fingerprint. */
  readonly claims: SupabaseClaims
  readonly fingerprint: string
  readonly syncedAt: number
}

/** What, in the claims, the row depends on: a change makes the next request write. */
const fingerprint = (claims: SupabaseClaims) => `${claims.email ?? ""}\u0000${appRole(claims) ?? ""}`

export interface Service {
  /** The caller's row: from memory when fresh and unchanged, else upserted (created on first sight). */
  readonly sync: (claims: SupabaseClaims) => Effect.Effect<User, DbFailure>
  /** What `sync` would give at `now` from memory alone; undefined when it would go to the database. */
  readonly remembered: (claims: SupabaseClaims, now: number) => User | undefined
}

export class UserSync extends Context.Tag("domain/UserSync")<UserSync, Service>() {}

export const make = (options: Options = defaults): Effect.Effect<Service, never, UserRepo> =>
  Effect.gen(function*() {
    const repo = yield* UserRepo
    const freshMillis = Duration.toMillis(options.freshFor)
    const entries = new BoundedMap<string, Entry>(options.maxEntries)

    const remembered = (claims: SupabaseClaims, now: number, print?: string): User | undefined => {
      const known = entries.get(claims.sub)
      return known !== undefined && now - known.syncedAt < freshMillis &&
          (known.claims === claims || known.fingerprint === (print ?? fingerprint(claims)))
        ? known.user
        : undefined
    }

    return {
      remembered: (claims, now) => remembered(claims, now),
      sync: (claims) =>
        Effect.flatMap(Clock.currentTimeMillis, (now) => {
          const print = fingerprint(claims)
          const known = remembered(claims, now, print)
          if (known !== undefined) return Effect.succeed(known)
          return Effect.tap(
            repo.getOrCreateFromSupabase(claims),
            (user) => Effect.sync(() => entries.set(claims.sub, { user, claims, fingerprint: print, syncedAt: now }))
          )
        })
    }
  })

export const layer = (options: Options = defaults): Layer.Layer<UserSync, never, UserRepo> =>
  Layer.effect(UserSync, make(options))
