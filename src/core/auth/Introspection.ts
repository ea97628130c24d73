/**
 * The introspection fallback of `Auth`: for a token local verification cannot decide, one call to the provider's
 * `GET {url}/auth/v1/user`, shared by every request with the same token, within a budget of calls per minute, and
 * never while the provider is known to be down or has asked us to slow down. Accepted tokens are remembered until
 * their TTL or `exp`.
 */
import type * as HttpClientResponse from "@effect/platform/HttpClientResponse"
import { Clock, Data, Duration, Effect, Option, Redacted, type Scope } from "effect"
import { HttpClients, isTimeout } from "../clients/HttpClients.js"
import * as RetryAfter from "../clients/RetryAfter.js"
import { RateBudget } from "../runtime/RateBudget.js"
import * as SingleFlight from "../runtime/SingleFlight.js"
import { isRecord, type Undecided, type VerifiedUser } from "./JwtClaims.js"
import { unreachableRetryAfterSeconds } from "./ProviderErrors.js"
import { TokenCache, type TokenKey } from "./TokenCache.js"

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

/** The longest the provider is left alone on its own word (a 429's `Retry-After`). */
const maxBackoffSeconds = 3600

export interface Options {
  /** Base URL of the provider, without `/auth/v1`. */
  readonly url: string
  /** Sent as `apikey`, as Supabase's gateway wants. */
  readonly anonKey: Option.Option<Redacted.Redacted>
  /** Provider calls per minute. */
  readonly introspectionBudget: number
  /** Lifetime and size of the memory of tokens the provider accepted. */
  readonly tokenCacheTtl: Duration.Duration
  readonly tokenCacheMax: number
  /** Called when the provider refused the token itself, at `now` (ms), so the caller can remember it. */
  readonly onRefused: (tokenKey: TokenKey, reason: ProviderReason, now: number) => void
}

export interface Introspection {
  /** Whom the provider says the token belongs to; `undecided` is local verification's verdict. */
  readonly ask: (
    token: string,
    tokenKey: TokenKey,
    undecided: Undecided
  ) => Effect.Effect<VerifiedUser, ProviderReason>
}

/** Supabase's error body `{code, error_code, msg}`: the `error_code` only. */
const providerErrorCode = (response: HttpClientResponse.HttpClientResponse) =>
  Effect.orElseSucceed(
    Effect.map(response.json, (body) =>
      isRecord(body) && typeof body["error_code"] === "string" ? ` ${body["error_code"].slice(0, 40)}` : ""),
    () =>
      ""
  )

export const make = (options: Options): Effect.Effect<Introspection, never, HttpClients | Scope.Scope> =>
  Effect.gen(function*() {
    const client = (yield* HttpClients).supabaseAuth
    const flights = SingleFlight.make<string>(yield* Effect.scope)
    const budget = new RateBudget(options.introspectionBudget, Duration.minutes(1))
    const accepted = new TokenCache<VerifiedUser>(options.tokenCacheMax)
    const acceptedTtl = Duration.toMillis(options.tokenCacheTtl)
    const userUrl = `${options.url}/auth/v1/user`
    const apikey = Option.match(options.anonKey, {
      onNone: (): Record<string, string> => ({}),
      onSome: (key) => ({ apikey: Redacted.value(key) })
    })
    // While the provider is known to be down (or asked us to slow down), undecided tokens get 503 without a call.
    let backoff: { readonly until: number; readonly reason: "unreachable" | "rateLimited" } | undefined

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
              : Effect.fail(
                ProviderReason.RejectedByProvider({ detail: "user does not match the token", aboutToken: true })
              )
          )
        )
      }
      if (status === 429) {
        const retryAfter = RetryAfter.parse(response.headers["retry-after"], now) ?? unreachableRetryAfterSeconds
        return Effect.zipRight(
          Effect.ignore(response.text),
          Effect.fail(
            ProviderReason.ProviderRateLimited({ retryAfterSeconds: Math.min(maxBackoffSeconds, retryAfter) })
          )
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
    const introspect = (token: string, tokenKey: TokenKey, unverified: VerifiedUser) =>
      Effect.flatMap(
        Clock.currentTimeMillis,
        (now) =>
          client.get(userUrl, { headers: { authorization: `Bearer ${token}`, accept: "application/json", ...apikey } })
            .pipe(
              Effect.mapError((error) =>
                ProviderReason.ProviderUnreachable({ detail: isTimeout(error) ? "timeout" : "connection failed" })
              ),
              Effect.flatMap((response) => judge(response, unverified, now)),
              Effect.tapBoth({
                onSuccess: (user) =>
                  Effect.sync(() => accepted.set(tokenKey, user, Math.min(now + acceptedTtl, user.exp * 1000), now)),
                onFailure: (reason) =>
                  Effect.flatMap(Clock.currentTimeMillis, (later) =>
                    Effect.sync(() => {
                      if (reason._tag === "ProviderUnreachable") {
                        backoff = { until: later + unreachableRetryAfterSeconds * 1000, reason: "unreachable" }
                      } else if (reason._tag === "ProviderRateLimited") {
                        backoff = { until: later + reason.retryAfterSeconds * 1000, reason: "rateLimited" }
                      } else if (reason._tag === "RejectedByProvider" && reason.aboutToken) {
                        options.onRefused(tokenKey, reason, later)
                      }
                    }))
              })
            )
      )

    const ask = (token: string, tokenKey: TokenKey, undecided: Undecided) =>
      Effect.flatMap(Clock.currentTimeMillis, (now): Effect.Effect<VerifiedUser, ProviderReason> => {
        const known = accepted.get(tokenKey, now)
        if (known !== undefined) return Effect.succeed(known)
        if (undecided._tag !== "LegacyUnverifiable" && undecided.providerUnreachable) {
          backoff = { until: now + unreachableRetryAfterSeconds * 1000, reason: "unreachable" }
          return Effect.fail(ProviderReason.ProviderUnreachable({ detail: "key set download failed" }))
        }
        if (backoff !== undefined && now < backoff.until) {
          return Effect.fail(
            backoff.reason === "unreachable"
              ? ProviderReason.ProviderUnreachable({ detail: "unreachable moments ago" })
              : ProviderReason.ProviderRateLimited({ retryAfterSeconds: Math.ceil((backoff.until - now) / 1000) })
          )
        }
        if (!flights.isRunning(tokenKey.id) && !budget.tryTake(now)) {
          return Effect.fail(ProviderReason.IntrospectionBudgetExhausted())
        }
        return flights.run(tokenKey.id, introspect(token, tokenKey, undecided.unverified))
      })

    return { ask }
  })
