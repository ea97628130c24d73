/**
 * Bearer authentication for the API: the `Authorization` header must be in the `Bearer` scheme, its token is
 * verified by the core's `Auth` (local first, the provider only when local verification cannot decide), then the
 * caller's row is synced, and both are the `CurrentUser`. Admin routes use `AdminAuthentication`, which also
 * requires the admin role, before anything of the request body is read.
 */
import * as HttpApiMiddleware from "@effect/platform/HttpApiMiddleware"
import * as HttpApiSecurity from "@effect/platform/HttpApiSecurity"
import * as HttpServerRequest from "@effect/platform/HttpServerRequest"
import { Context, Effect, Layer, Schema } from "effect"
import { Auth, type VerifiedUser } from "../core/auth/Auth.js"
import * as ApiError from "../core/errors/ApiError.js"
import type { User } from "../domain/UserRepo.js"
import { UserSync } from "../domain/UserSync.js"

export interface Caller {
  /** The local row, created on first sight. */
  readonly user: User
  /** The verified token's claims. */
  readonly claims: VerifiedUser
}

export class CurrentUser extends Context.Tag("api/CurrentUser")<CurrentUser, Caller>() {}

// `HttpApiSecurity.bearer` documents the scheme; the token it decodes is not used (it is whatever follows the
// header's first seven characters, whatever the scheme): the header is parsed by `Auth.verifyAuthorization`.
const security = { bearer: HttpApiSecurity.bearer }

export class Authentication extends HttpApiMiddleware.Tag<Authentication>()("api/Authentication", {
  failure: Schema.Union(
    ApiError.Unauthorized.Envelope,
    ApiError.ServiceUnavailable.Envelope,
    ApiError.DbPoolExhausted.Envelope
  ),
  provides: CurrentUser,
  security
}) {}

/** `Authentication` for admins only: anyone else gets 403 whatever the request body, which is never read. */
export class AdminAuthentication extends HttpApiMiddleware.Tag<AdminAuthentication>()("api/AdminAuthentication", {
  failure: Schema.Union(
    ApiError.Unauthorized.Envelope,
    ApiError.Forbidden.Envelope,
    ApiError.ServiceUnavailable.Envelope,
    ApiError.DbPoolExhausted.Envelope
  ),
  provides: CurrentUser,
  security
}) {}

/**
 * Verifies the caller's `Authorization` header, lets `admit` (when given) refuse it, then syncs the caller's row. Made
 * once: every request runs the same effect.
 */
const authenticator = <E>(admit?: (claims: VerifiedUser) => Effect.Effect<void, E>) =>
  Effect.gen(function*() {
    const auth = yield* Auth
    const users = yield* UserSync
    const caller = (claims: VerifiedUser) => Effect.map(users.sync(claims), (user): Caller => ({ user, claims }))
    return Effect.flatMap(HttpServerRequest.HttpServerRequest, (request) =>
      Effect.flatMap(
        auth.verifyAuthorization(request.headers.authorization),
        admit === undefined ? caller : (claims) => Effect.zipRight(admit(claims), caller(claims))
      ))
  })

export const AuthenticationLive = Layer.effect(
  Authentication,
  Effect.map(authenticator(), (authenticate) => {
    const authenticated = authenticate.pipe(
      ApiError.declared(ApiError.Unauthorized, ApiError.ServiceUnavailable, ApiError.DbPoolExhausted)
    )
    return { bearer: () => authenticated }
  })
)

const adminsOnly = (claims: VerifiedUser) =>
  claims.isAdmin ? Effect.void : Effect.fail(new ApiError.Forbidden({ message: "Admins only" }))

export const AdminAuthenticationLive = Layer.effect(
  AdminAuthentication,
  Effect.map(authenticator(adminsOnly), (authenticate) => {
    const authenticated = authenticate.pipe(
      ApiError.declared(
        ApiError.Unauthorized,
        ApiError.Forbidden,
        ApiError.ServiceUnavailable,
        ApiError.DbPoolExhausted
      )
    )
    return { bearer: () => authenticated }
  })
)
