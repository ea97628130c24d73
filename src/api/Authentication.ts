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
import * as HttpApiHandlers from "../core/http/HttpApiHandlers.js"
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
 * Verifies the caller's `Authorization` header, lets `admit` (when given) refuse it, then syncs the caller's row; what
 * fails is `declare`d. Made once: every request runs the same effect. An admitted caller whose token and row are both
 * still remembered is found with a few lookups (`remembered`), the middleware's shortcut: `HttpApiHandlers` asks it
 * first, so such a request (most are) runs no effect; the effect is for everyone else.
 */
const authenticator = <E>(
  declare: <A, R>(effect: Effect.Effect<A, unknown, R>) => Effect.Effect<A, E, R>,
  admit?: (claims: VerifiedUser) => E | undefined
) =>
  Effect.gen(function*() {
    const auth = yield* Auth
    const users = yield* UserSync
    const caller = (claims: VerifiedUser): Effect.Effect<Caller, unknown> => {
      const refusal = admit?.(claims)
      return refusal === undefined
        ? Effect.map(users.sync(claims), (user): Caller => ({ user, claims }))
        : Effect.fail(refusal)
    }
    const authenticated = Effect.flatMap(
      HttpServerRequest.HttpServerRequest,
      (request) => declare(Effect.flatMap(auth.verifyAuthorization(request.headers.authorization), caller))
    )
    // Anyone `admit` refuses is not remembered: the refusal comes the whole way, as the first time.
    const remembered = (request: HttpServerRequest.HttpServerRequest, now: number): Caller | undefined => {
      const claims = auth.remembered(request.headers.authorization, now)
      const user = claims === undefined ? undefined : users.remembered(claims, now)
      return user === undefined || admit?.(claims!) !== undefined ? undefined : { user, claims: claims! }
    }
    return HttpApiHandlers.withShortcut({ bearer: () => authenticated }, remembered)
  })

export const AuthenticationLive = Layer.effect(
  Authentication,
  authenticator(ApiError.declared(ApiError.Unauthorized, ApiError.ServiceUnavailable, ApiError.DbPoolExhausted))
)

const adminsOnly = (claims: VerifiedUser) =>
  claims.isAdmin ? undefined : new ApiError.Forbidden({ message: "Admins only" })

export const AdminAuthenticationLive = Layer.effect(
  AdminAuthentication,
  authenticator(
    ApiError.declared(
      ApiError.Unauthorized,
      ApiError.Forbidden,
      ApiError.ServiceUnavailable,
      ApiError.DbPoolExhausted
    ),
    adminsOnly
  )
)
