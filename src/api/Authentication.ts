/**
 * Bearer authentication for the API: the token is verified by the core's `Auth` (local first, the provider only
 * when local verification cannot decide), then the caller's row is synced, and both are the `CurrentUser`.
 */
import * as HttpApiMiddleware from "@effect/platform/HttpApiMiddleware"
import * as HttpApiSecurity from "@effect/platform/HttpApiSecurity"
import { Context, Effect, Layer, Redacted, Schema } from "effect"
import * as ApiError from "../core/ApiError.js"
import { Auth, type VerifiedUser } from "../core/Auth.js"
import type { User } from "../domain/UserRepo.js"
import { UserSync } from "../domain/UserSync.js"

export interface Caller {
  /** The local row, created on first sight. */
  readonly user: User
  /** The verified token's claims. */
  readonly claims: VerifiedUser
}

export class CurrentUser extends Context.Tag("api/CurrentUser")<CurrentUser, Caller>() {}

export class Authentication extends HttpApiMiddleware.Tag<Authentication>()("api/Authentication", {
  failure: Schema.Union(
    ApiError.Unauthorized.Envelope,
    ApiError.ServiceUnavailable.Envelope,
    ApiError.DbPoolExhausted.Envelope
  ),
  provides: CurrentUser,
  security: { bearer: HttpApiSecurity.bearer }
}) {}

export const AuthenticationLive = Layer.effect(
  Authentication,
  Effect.gen(function*() {
    const auth = yield* Auth
    const users = yield* UserSync
    return {
      // A missing header arrives as an empty token; `Auth` answers it as "missing".
      bearer: (token) =>
        auth.verifyToken(Redacted.value(token)).pipe(
          Effect.flatMap((claims) => Effect.map(users.sync(claims), (user) => ({ user, claims }))),
          ApiError.declared(ApiError.Unauthorized, ApiError.ServiceUnavailable, ApiError.DbPoolExhausted)
        )
    }
  })
)

/** Fails with 403 unless the caller's token carries the admin role (`app_metadata.role`, set by the service role). */
export const requireAdmin: Effect.Effect<Caller, ApiError.Forbidden, CurrentUser> = Effect.flatMap(
  CurrentUser,
  (caller) =>
    caller.claims.isAdmin ? Effect.succeed(caller) : Effect.fail(new ApiError.Forbidden({ message: "Admins only" }))
)
