/**
 * `Auth`: whom a bearer token belongs to. Local verification first (`JwksVerifier`); the provider
 * (`Introspection`) only when local verification cannot decide. Refused tokens are remembered briefly and
 * provider calls have a budget, so a flood of random tokens cannot become a flood of calls. Failures are typed
 * reasons that map to 401, or to 503 when the provider cannot be asked.
 */
import {
  Clock,
  type ConfigError,
  Context,
  Data,
  Duration,
  Effect,
  Either,
  Layer,
  type Option,
  type Redacted,
  type Scope
} from "effect"
import type { HttpClients } from "../clients/HttpClients.js"
import * as ApiError from "../errors/ApiError.js"
import * as Logging from "../runtime/Logging.js"
import { Readiness } from "../runtime/Readiness.js"
import * as Introspection from "./Introspection.js"
import * as Jwks from "./Jwks.js"
import { type Definitive, isUndecided, Rejection, type VerifiedUser } from "./JwtClaims.js"
import * as ProviderErrors from "./ProviderErrors.js"
import { type ProviderSettings, providerUrl } from "./SupabaseSettings.js"
import { keyOf, TokenCache } from "./TokenCache.js"

export { ProviderReason } from "./Introspection.js"
export type { VerifiedUser } from "./JwtClaims.js"
export { unreachableRetryAfterSeconds } from "./ProviderErrors.js"

export type AuthReason = Definitive | Introspection.ProviderReason

/** The token was refused. Public face: 503 + `Retry-After` when the provider could not be asked, else 401. */
export class AuthError extends Data.TaggedError("AuthError")<{ readonly reason: AuthReason }>
  implements ApiError.Convertible
{
  get status(): 401 | 503 {
    return this.reason._tag === "ProviderUnreachable" || this.reason._tag === "ProviderRateLimited" ? 503 : 401
  }

  [ApiError.ToApiError](): ApiError.ApiError {
    switch (this.reason._tag) {
      case "ProviderUnreachable":
        return ProviderErrors.unavailable()
      case "ProviderRateLimited":
        return ProviderErrors.busy(this.reason.retryAfterSeconds)
      case "Missing":
        return new ApiError.Unauthorized({ message: "Authentication required" })
      default:
        return new ApiError.Unauthorized({ message: "Invalid or expired token" })
    }
  }
}

/** The log fields of a reason: its tag and fixed details, never the token, its claims or its `kid`. */
const describe = (reason: AuthReason): Record<string, unknown> => {
  switch (reason._tag) {
    case "Malformed":
    case "RejectedByProvider":
    case "ProviderUnreachable":
      return { reason: reason._tag, detail: reason.detail }
    case "InvalidClaims":
      return { reason: reason._tag, claim: reason.claim, detail: reason.detail }
    case "AlgorithmNotAllowed":
      return { reason: reason._tag, alg: reason.alg }
    case "ProviderRateLimited":
      return { reason: reason._tag, retry_after: reason.retryAfterSeconds }
    default:
      return { reason: reason._tag }
  }
}

/**
 * The token of an `Authorization` header in the `Bearer` scheme (RFC 6750: the scheme case-insensitive, one or more
 * spaces, a b64token); a missing header is `Missing`, any other scheme or shape `Malformed`.
 */
export const bearerToken = (header: string | undefined): Either.Either<string, Definitive> => {
  if (header === undefined || header === "") return Either.left(Rejection.Missing())
  const start = tokenStart(header)
  return start === -1 || !isB64Token(header, start)
    ? Either.left(Rejection.Malformed({ detail: "not a Bearer credential" }))
    : Either.right(header.slice(start))
}

// What `/^Bearer +([A-Za-z0-9\-._~+/]+=*)$/i` says, written out: on a token of a kilobyte that expression costs as much
// as hashing the token, on every request.
const scheme = "bearer"

/** Where the credential starts, after the scheme (any case) and one or more spaces; -1 without them. */
const tokenStart = (header: string): number => {
  if (header.length <= scheme.length || header.charCodeAt(scheme.length) !== 0x20) return -1
  // ASCII letters only: `| 0x20` lower-cases them, and makes nothing else one of them.
  for (let i = 0; i < scheme.length; i++) if ((header.charCodeAt(i) | 0x20) !== scheme.charCodeAt(i)) return -1
  let start = scheme.length
  while (start < header.length && header.charCodeAt(start) === 0x20) start++
  return start
}

/** A b64token (RFC 6750) from `start` to the end: one or more of `A-Za-z0-9-._~+/`, then any number of `=`. */
const isB64Token = (header: string, start: number): boolean => {
  let end = header.length
  while (end > start && header.charCodeAt(end - 1) === 0x3d) end--
  if (end === start) return false
  for (let i = start; i < end; i++) {
    const c = header.charCodeAt(i)
    const letterOrDigit = (c >= 0x61 && c <= 0x7a) || (c >= 0x41 && c <= 0x5a) || (c >= 0x30 && c <= 0x39)
    if (!letterOrDigit && c !== 0x2d && c !== 0x2e && c !== 0x5f && c !== 0x7e && c !== 0x2b && c !== 0x2f) return false
  }
  return true
}

export interface Service {
  /** The user of a bearer token (the empty string for a missing one). */
  readonly verifyToken: (token: string) => Effect.Effect<VerifiedUser, AuthError>
  /** The user of an `Authorization` header: only the `Bearer` scheme is accepted (`bearerToken`). */
  readonly verifyAuthorization: (header: string | undefined) => Effect.Effect<VerifiedUser, AuthError>
  /**
   * What `verifyAuthorization` would succeed with at `now` without any work beyond a lookup: the user of a Bearer
   * token verified earlier and still remembered (and not refused since). Undefined for anything else, which
   * `verifyAuthorization` then decides. No effect: the request path calls it before building any.
   */
  readonly remembered: (header: string | undefined, now: number) => VerifiedUser | undefined
  /** For `/ready`: the key set can be fetched, or a last good one is held. */
  readonly ready: Effect.Effect<void, Jwks.JwksUnavailable>
}

export class Auth extends Context.Tag("core/Auth")<Auth, Service>() {}

export interface Tunables {
  readonly verifier: Jwks.Tunables
  readonly negativeCacheTtl: Duration.Duration
  readonly negativeCacheMax: number
  /** Provider calls per minute for tokens local verification cannot decide. */
  readonly introspectionBudget: number
}

export const defaults: Tunables = {
  verifier: Jwks.defaults,
  negativeCacheTtl: Duration.seconds(30),
  negativeCacheMax: 10_000,
  introspectionBudget: 60
}

export interface Options {
  /** Base URL of the provider, without `/auth/v1`. */
  readonly url: string
  /** Sent as `apikey`, as Supabase's gateway wants. */
  readonly anonKey: Option.Option<Redacted.Redacted>
  readonly negativeCacheTtl: Duration.Duration
  readonly negativeCacheMax: number
  readonly introspectionBudget: number
  /** Lifetime and size of the memory of tokens the provider accepted (the verifier's token cache settings). */
  readonly tokenCacheTtl: Duration.Duration
  readonly tokenCacheMax: number
}

export const make = (options: Options): Effect.Effect<Service, never, Jwks.JwksVerifier | HttpClients | Scope.Scope> =>
  Effect.gen(function*() {
    const verifier = yield* Jwks.JwksVerifier
    const refused = new TokenCache<AuthReason>(options.negativeCacheMax)
    const refusedTtl = Duration.toMillis(options.negativeCacheTtl)
    const provider = yield* Introspection.make({
      url: options.url,
      anonKey: options.anonKey,
      introspectionBudget: options.introspectionBudget,
      tokenCacheTtl: options.tokenCacheTtl,
      tokenCacheMax: options.tokenCacheMax,
      onRefused: (tokenKey, reason, now) => refused.set(tokenKey, reason, now + refusedTtl, now)
    })

    const refuse = (reason: AuthReason, remembered = false) =>
      Effect.zipRight(
        (reason._tag === "ProviderUnreachable" || reason._tag === "ProviderRateLimited"
          ? Effect.logWarning
          : Effect.logInfo)(
            Logging.fields("Token refused", remembered ? { ...describe(reason), remembered } : describe(reason))
          ),
        Effect.fail(new AuthError({ reason }))
      )

    const verifyToken = (token: string): Effect.Effect<VerifiedUser, AuthError> =>
      Effect.flatMap(Clock.currentTimeMillis, (now) => {
        if (token.length === 0) return refuse(Rejection.Missing())
        if (token.length > verifier.maxTokenBytes) return refuse(Rejection.Malformed({ detail: "token too large" }))
        const tokenKey = keyOf(token)
        const remembered = refused.get(tokenKey, now)
        if (remembered !== undefined) return refuse(remembered, true)
        return Effect.catchAll(verifier.verifyAt(token, tokenKey, now), ({ reason }) => {
          if (isUndecided(reason)) {
            return Effect.catchAll(provider.ask(token, tokenKey, reason), (why) => refuse(why))
          }
          refused.set(tokenKey, reason, now + refusedTtl, now)
          return refuse(reason)
        })
      })

    const verifyAuthorization = (header: string | undefined) =>
      Either.match(bearerToken(header), { onLeft: (reason) => refuse(reason), onRight: verifyToken })

    // The token's characters are not checked here: the verifier remembers only tokens that parsed, whose characters
    // are all base64url or dots, so a remembered token passes `bearerToken`; any other is not found.
    const remembered = (header: string | undefined, now: number): VerifiedUser | undefined => {
      if (header === undefined) return undefined
      const start = tokenStart(header)
      if (start === -1 || start === header.length || header.length - start > verifier.maxTokenBytes) return undefined
      const tokenKey = keyOf(header.slice(start))
      return refused.get(tokenKey, now) === undefined ? verifier.cached(tokenKey, now) : undefined
    }

    return { verifyToken, verifyAuthorization, remembered, ready: verifier.ready }
  })

/** `Auth` on a `JwksVerifier` the caller provides; `Auth.ready` is the `auth` check of `/ready`. */
export const layer = (options: Options): Layer.Layer<Auth, never, Jwks.JwksVerifier | HttpClients | Readiness> =>
  Layer.scoped(
    Auth,
    Effect.tap(
      make(options),
      (auth) => Effect.flatMap(Readiness, (readiness) => readiness.register("auth", auth.ready))
    )
  )

// Settings ----------------------------------------------------------------------------------------------------------

export const optionsFromSettings = (
  supabase: ProviderSettings,
  tunables: Tunables
): Either.Either<{ readonly auth: Options; readonly verifier: Jwks.Options }, ConfigError.ConfigError> =>
  Either.all({
    url: providerUrl(supabase),
    verifier: Jwks.optionsFromSettings(supabase, tunables.verifier)
  }).pipe(Either.map(({ url, verifier }) => ({
    verifier,
    auth: {
      url,
      anonKey: supabase.anonKey,
      negativeCacheTtl: tunables.negativeCacheTtl,
      negativeCacheMax: tunables.negativeCacheMax,
      introspectionBudget: tunables.introspectionBudget,
      tokenCacheTtl: tunables.verifier.tokenCacheTtl,
      tokenCacheMax: tunables.verifier.tokenCacheMax
    }
  })))

/** `Auth` and its `JwksVerifier`, from the Supabase settings and the auth settings (`AuthSettings`). */
export const layerFromSettings = (
  supabase: ProviderSettings,
  tunables: Tunables
): Layer.Layer<Auth | Jwks.JwksVerifier, ConfigError.ConfigError, HttpClients | Readiness> =>
  Layer.unwrapEffect(
    Effect.map(optionsFromSettings(supabase, tunables), ({ auth, verifier }) =>
      layer(auth).pipe(Layer.provideMerge(Jwks.layer(verifier))))
  )
