/**
 * `Auth`: whom a bearer token belongs to. Local verification first (`JwksVerifier`); the provider
 * (`GET {url}/auth/v1/user`) only when local verification cannot decide. Refused tokens are remembered briefly and
 * provider calls have a budget, so a flood of random tokens cannot become a flood of calls. Failures are typed
 * reasons that map to 401, or to 503 when the provider cannot be asked.
 */
import type * as HttpClientResponse from "@effect/platform/HttpClientResponse"
import {
  Clock,
  Config,
  type ConfigError,
  Context,
  Data,
  Duration,
  Effect,
  Either,
  Layer,
  Option,
  Redacted,
  type Scope
} from "effect"
import * as ApiError from "../errors/ApiError.js"
import { HttpClients, isTimeout } from "../clients/HttpClients.js"
import * as Jwks from "./Jwks.js"
import { type Definitive, isRecord, isUndecided, Rejection, type Undecided, type VerifiedUser } from "./JwtClaims.js"
import * as Logging from "../runtime/Logging.js"
import { RateBudget } from "../runtime/RateBudget.js"
import { Readiness } from "../runtime/Readiness.js"
import * as SingleFlight from "../runtime/SingleFlight.js"
import { digest, TokenCache } from "./TokenCache.js"

export type { VerifiedUser } from "./JwtClaims.js"

/** What the provider said (or could not say) about a token local verification left undecided. */
export type ProviderReason = Data.TaggedEnum<{
  /** `aboutToken` is false when the provider refused our API key (401), not the token. */
  RejectedByProvider: { readonly detail: string; readonly aboutToken: boolean }
  /** Connection refused, timeout, 5xx (520-530 included), or an answer that cannot be read. */
  ProviderUnreachable: { readonly detail: string }
  ProviderRateLimited: { readonly retryAfterSeconds: number }
  /** The introspection budget is spent: the token is refused rather than sent to the provider. */
  IntrospectionBudgetExhausted: {}
}>
export const ProviderReason = Data.taggedEnum<ProviderReason>()

export type AuthReason = Definitive | ProviderReason

/** Seconds a client is told to wait when the provider is unreachable; the provider is not asked again meanwhile. */
export const unreachableRetryAfterSeconds = Jwks.unreachableRetryAfterSeconds

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
        return new ApiError.ServiceUnavailable({
          message: "The authentication provider is unavailable; retry shortly",
          retryAfterSeconds: unreachableRetryAfterSeconds
        })
      case "ProviderRateLimited":
        return new ApiError.ServiceUnavailable({
          message: "The authentication provider is busy; retry shortly",
          retryAfterSeconds: this.reason.retryAfterSeconds
        })
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
  const match = bearerCredential.exec(header)
  return match === null
    ? Either.left(Rejection.Malformed({ detail: "not a Bearer credential" }))
    : Either.right(match[1]!)
}
const bearerCredential = /^Bearer +([A-Za-z0-9\-._~+/]+=*)$/i

export interface Service {
  /** The user of a bearer token (the empty string for a missing one). */
  readonly verifyToken: (token: string) => Effect.Effect<VerifiedUser, AuthError>
  /** The user of an `Authorization` header: only the `Bearer` scheme is accepted (`bearerToken`). */
  readonly verifyAuthorization: (header: string | undefined) => Effect.Effect<VerifiedUser, AuthError>
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

const retryAfterSeconds = (header: string | undefined, now: number): number => {
  const value = header?.trim() ?? ""
  const seconds = /^\d+$/.test(value) ? Number(value) : (Date.parse(value) - now) / 1000
  return Number.isFinite(seconds) ? Math.min(3600, Math.max(1, Math.ceil(seconds))) : unreachableRetryAfterSeconds
}

/** Supabase's error body `{code, error_code, msg}`: the `error_code` only. */
const providerErrorCode = (response: HttpClientResponse.HttpClientResponse) =>
  Effect.orElseSucceed(
    Effect.map(response.json, (body) =>
      isRecord(body) && typeof body["error_code"] === "string" ? ` ${body["error_code"].slice(0, 40)}` : ""),
    () => ""
  )

export const make = (options: Options): Effect.Effect<Service, never, Jwks.JwksVerifier | HttpClients | Scope.Scope> =>
  Effect.gen(function*() {
    const verifier = yield* Jwks.JwksVerifier
    const client = (yield* HttpClients).supabaseAuth
    const flights = SingleFlight.make<string>(yield* Effect.scope)
    const budget = new RateBudget(options.introspectionBudget, Duration.minutes(1))
    const refused = new TokenCache<AuthReason>(options.negativeCacheMax)
    const accepted = new TokenCache<VerifiedUser>(options.tokenCacheMax)
    const refusedTtl = Duration.toMillis(options.negativeCacheTtl)
    const acceptedTtl = Duration.toMillis(options.tokenCacheTtl)
    const userUrl = `${options.url}/auth/v1/user`
    const apikey = Option.match(options.anonKey, {
      onNone: (): Record<string, string> => ({}),
      onSome: (key) => ({ apikey: Redacted.value(key) })
    })
    // While the provider is known to be down (or asked us to slow down), undecided tokens get 503 without a call.
    let backoff: { readonly until: number; readonly reason: "unreachable" | "rateLimited" } | undefined

    const refuse = (reason: AuthReason, remembered = false) =>
      Effect.zipRight(
        (reason._tag === "ProviderUnreachable" || reason._tag === "ProviderRateLimited" ? Effect.logWarning : Effect.logInfo)(
          Logging.fields("Token refused", remembered ? { ...describe(reason), remembered } : describe(reason))
        ),
        Effect.fail(new AuthError({ reason }))
      )

    const judge = (
      response: HttpClientResponse.HttpClientResponse,
      unverified: VerifiedUser,
      now: number
    ): Effect.Effect<VerifiedUser, ProviderReason> => {
      const status = response.status
      if (status === 200) {
        return response.json.pipe(
          Effect.mapError(() => ProviderReason.ProviderUnreachable({ detail: "unreadable answer" })),
          Effect.flatMap((body) =>
            isRecord(body) && body["id"] === unverified.sub
              ? Effect.succeed(unverified)
              : Effect.fail(ProviderReason.RejectedByProvider({ detail: "user does not match the token", aboutToken: true }))
          )
        )
      }
      if (status === 429) {
        return Effect.zipRight(
          Effect.ignore(response.text),
          Effect.fail(ProviderReason.ProviderRateLimited({
            retryAfterSeconds: retryAfterSeconds(response.headers["retry-after"], now)
          }))
        )
      }
      return Effect.flatMap(providerErrorCode(response), (code): Effect.Effect<never, ProviderReason> => {
        const detail = `status ${status}${code}`
        if (status >= 500 || status === 408) return Effect.fail(ProviderReason.ProviderUnreachable({ detail }))
        // Supabase answers 403 for bad tokens; a 401 comes from its gateway refusing our key.
        return status === 401
          ? Effect.zipRight(
            Effect.logError("The auth provider refused the anon key (check SUPABASE_ANON_KEY)"),
            Effect.fail(ProviderReason.RejectedByProvider({ detail, aboutToken: false }))
          )
          : Effect.fail(ProviderReason.RejectedByProvider({ detail, aboutToken: true }))
      })
    }

    /** One call to the provider and its bookkeeping; shared by every request with the same token. */
    const introspect = (token: string, tokenDigest: string, unverified: VerifiedUser) =>
      Effect.flatMap(Clock.currentTimeMillis, (now) =>
        client.get(userUrl, { headers: { authorization: `Bearer ${token}`, accept: "application/json", ...apikey } }).pipe(
          Effect.mapError((error) =>
            ProviderReason.ProviderUnreachable({ detail: isTimeout(error) ? "timeout" : "connection failed" })
          ),
          Effect.flatMap((response) => judge(response, unverified, now)),
          Effect.tapBoth({
            onSuccess: (user) =>
              Effect.sync(() => accepted.set(tokenDigest, user, Math.min(now + acceptedTtl, user.exp * 1000), now)),
            onFailure: (reason) =>
              Effect.flatMap(Clock.currentTimeMillis, (later) =>
                Effect.sync(() => {
                  if (reason._tag === "ProviderUnreachable") {
                    backoff = { until: later + unreachableRetryAfterSeconds * 1000, reason: "unreachable" }
                  } else if (reason._tag === "ProviderRateLimited") {
                    backoff = { until: later + reason.retryAfterSeconds * 1000, reason: "rateLimited" }
                  } else if (reason._tag === "RejectedByProvider" && reason.aboutToken) {
                    refused.set(tokenDigest, reason, later + refusedTtl, later)
                  }
                }))
          })
        ))

    const askProvider = (token: string, tokenDigest: string, undecided: Undecided) =>
      Effect.flatMap(Clock.currentTimeMillis, (now): Effect.Effect<VerifiedUser, AuthError> => {
        const known = accepted.get(tokenDigest, now)
        if (known !== undefined) return Effect.succeed(known)
        if (undecided._tag !== "LegacyUnverifiable" && undecided.providerUnreachable) {
          backoff = { until: now + unreachableRetryAfterSeconds * 1000, reason: "unreachable" }
          return refuse(ProviderReason.ProviderUnreachable({ detail: "key set download failed" }))
        }
        if (backoff !== undefined && now < backoff.until) {
          return refuse(
            backoff.reason === "unreachable"
              ? ProviderReason.ProviderUnreachable({ detail: "unreachable moments ago" })
              : ProviderReason.ProviderRateLimited({ retryAfterSeconds: Math.ceil((backoff.until - now) / 1000) })
          )
        }
        if (!flights.isRunning(tokenDigest) && !budget.tryTake(now)) {
          return refuse(ProviderReason.IntrospectionBudgetExhausted())
        }
        return Effect.catchAll(flights.run(tokenDigest, introspect(token, tokenDigest, undecided.unverified)), refuse)
      })

    const verifyToken = (token: string): Effect.Effect<VerifiedUser, AuthError> =>
      Effect.flatMap(Clock.currentTimeMillis, (now) => {
        if (token.length === 0) return refuse(Rejection.Missing())
        if (token.length > verifier.maxTokenBytes) return refuse(Rejection.Malformed({ detail: "token too large" }))
        const tokenDigest = digest(token)
        const remembered = refused.get(tokenDigest, now)
        if (remembered !== undefined) return refuse(remembered, true)
        return Effect.catchAll(verifier.verifyAt(token, tokenDigest, now), ({ reason }) => {
          if (isUndecided(reason)) return askProvider(token, tokenDigest, reason)
          refused.set(tokenDigest, reason, now + refusedTtl, now)
          return refuse(reason)
        })
      })

    const verifyAuthorization = (header: string | undefined) =>
      Either.match(bearerToken(header), { onLeft: (reason) => refuse(reason), onRight: verifyToken })

    return { verifyToken, verifyAuthorization, ready: verifier.ready }
  })

/** `Auth` on a `JwksVerifier` the caller provides. */
export const layer = (options: Options): Layer.Layer<Auth, never, Jwks.JwksVerifier | HttpClients> =>
  Layer.scoped(Auth, make(options))

/** Registers `Auth.ready` as the `auth` check of `/ready`. */
export const layerReadiness: Layer.Layer<never, never, Auth | Readiness> = Layer.effectDiscard(
  Effect.gen(function*() {
    const auth = yield* Auth
    const readiness = yield* Readiness
    yield* readiness.register("auth", auth.ready)
  })
)

// Configuration -----------------------------------------------------------------------------------------------------

export const optionsFromSettings = (
  supabase: Jwks.SupabaseSettings,
  tunables: Tunables
): Either.Either<{ readonly auth: Options; readonly verifier: Jwks.Options }, ConfigError.ConfigError> =>
  Either.all({
    url: Jwks.supabaseUrl(supabase),
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

/** `Auth` and its `JwksVerifier`, from the Supabase settings and `config`. */
export const layerFromSettings = (
  supabase: Jwks.SupabaseSettings,
  tunables: Tunables
): Layer.Layer<Auth | Jwks.JwksVerifier, ConfigError.ConfigError, HttpClients> =>
  Layer.unwrapEffect(
    Effect.map(optionsFromSettings(supabase, tunables), ({ auth, verifier }) =>
      layer(auth).pipe(Layer.provideMerge(Jwks.layer(verifier))))
  )

/**
 * `Jwks.config`, plus `AUTH_NEGATIVE_CACHE_TTL` (s, 30), `AUTH_NEGATIVE_CACHE_MAX` (10000; 0 disables it) and
 * `AUTH_INTROSPECTION_BUDGET` (provider calls per minute, 60).
 */
export const config: Config.Config<Tunables> = Config.all({
  verifier: Jwks.config,
  negativeCacheTtl: Config.number("AUTH_NEGATIVE_CACHE_TTL").pipe(
    Config.validate({ message: "must be 0 or more seconds", validation: (s) => s >= 0 }),
    Config.map(Duration.seconds),
    Config.withDefault(defaults.negativeCacheTtl)
  ),
  negativeCacheMax: Config.integer("AUTH_NEGATIVE_CACHE_MAX").pipe(
    Config.validate({ message: "must be an integer of at least 0", validation: (n) => n >= 0 }),
    Config.withDefault(defaults.negativeCacheMax)
  ),
  introspectionBudget: Config.integer("AUTH_INTROSPECTION_BUDGET").pipe(
    Config.validate({ message: "must be an integer of at least 0", validation: (n) => n >= 0 }),
    Config.withDefault(defaults.introspectionBudget)
  )
})
