/**
 * `JwksVerifier`: local verification of Supabase access tokens against the provider's cached key set (keys imported
 * with jose, signatures checked with WebCrypto as jose does), with a short positive cache of verified tokens. Size,
 * shape and header are checked before any key is touched; the claims before any key is downloaded, or, when the
 * key is at hand, while WebCrypto checks the signature. Time is Effect's `Clock`, so tests drive it with `TestClock`.
 * The key set is downloaded from the provider (`make`, `layer`) or held in memory (`layerStatic`, for tests): the
 * verification is the same.
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
  Option,
  Redacted,
  type Scope
} from "effect"
import type { CryptoKey } from "jose"
import { HttpClients } from "../clients/HttpClients.js"
import * as JwksCache from "./JwksCache.js"
import {
  checkClaims,
  decodePayload,
  type ParsedHeader,
  parseHeader,
  Rejection,
  type VerifiedUser
} from "./JwtClaims.js"
import { unreachableRetryAfterSeconds } from "./ProviderErrors.js"
import { type ProviderSettings, providerUrl } from "./SupabaseSettings.js"
import { keyOf, TokenCache, type TokenKey } from "./TokenCache.js"

export type { JsonWebKeySet, JwsAlgorithm } from "./JwksCache.js"
export { JwksUnavailable } from "./JwksCache.js"

/** Local verification refused the token; `reason` says why and whether `Auth` may ask the provider. */
export class TokenRejected extends Data.TaggedError("TokenRejected")<{ readonly reason: Rejection }> {}

/** The settings of local verification that are not Supabase's own (read by `AuthSettings`). */
export interface Tunables {
  readonly algorithms: ReadonlyArray<JwksCache.JwsAlgorithm>
  readonly clockTolerance: Duration.Duration
  readonly maxTokenBytes: number
  readonly maxKidLength: number
  readonly jwksCacheTtl: Duration.Duration
  readonly refreshCooldown: Duration.Duration
  /** JWKS downloads per minute, whatever triggers them. */
  readonly reloadBudget: number
  /** How long past its expiry the last good key set still serves while downloads fail. */
  readonly staleWindow: Duration.Duration
  readonly tokenCacheTtl: Duration.Duration
  readonly tokenCacheMax: number
}

export const defaults: Tunables = {
  algorithms: ["ES256", "RS256", "EdDSA"],
  clockTolerance: Duration.seconds(30),
  maxTokenBytes: 8192,
  // Supabase's kids are UUIDs (36 characters); 128 leaves room for other issuers' schemes.
  maxKidLength: 128,
  jwksCacheTtl: Duration.hours(1),
  refreshCooldown: Duration.seconds(30),
  reloadBudget: 10,
  // The default access-token lifetime: a token issued just before an outage stays usable for its whole life.
  staleWindow: Duration.hours(1),
  tokenCacheTtl: Duration.seconds(60),
  tokenCacheMax: 5000
}

/** What a token must carry and how it is checked, whatever the key source. */
export interface VerificationOptions extends Tunables {
  readonly issuer: string
  readonly audience: string
  /** `SUPABASE_JWT_SECRET`: enables the legacy HS256 path; without it HS256 tokens are left to the provider. */
  readonly legacySecret: Option.Option<Redacted.Redacted>
}

export interface Options extends VerificationOptions {
  readonly jwksUrl: string
}

export interface Status {
  readonly cachedTokens: number
  readonly keySet: JwksCache.KeySetStatus
}

export interface Service {
  readonly verify: (token: string) => Effect.Effect<VerifiedUser, TokenRejected>
  /** `verify` for a caller that already read the clock and made the token's cache key (`Auth`). */
  readonly verifyAt: (token: string, tokenKey: TokenKey, now: number) => Effect.Effect<VerifiedUser, TokenRejected>
  /**
   * The user of a token this verifier checked and still remembers at `now`, by its key; undefined otherwise. Only a
   * token that parsed (three base64url segments) and whose signature held is remembered.
   */
  readonly cached: (tokenKey: TokenKey, now: number) => VerifiedUser | undefined
  readonly maxTokenBytes: number
  /** For `/ready`: a key set can be fetched, or a last good one is held. */
  readonly ready: Effect.Effect<void, JwksCache.JwksUnavailable>
  readonly status: Effect.Effect<Status>
}

export class JwksVerifier extends Context.Tag("core/JwksVerifier")<JwksVerifier, Service>() {}

const reject = (reason: Rejection) => Effect.fail(new TokenRejected({ reason }))

/** WebCrypto's parameters for each JWS algorithm (RFC 7518); curve and hash of RSA keys are bound at import. */
const webCryptoParams: Readonly<Record<string, { readonly name: string; readonly hash?: string }>> = {
  ES256: { name: "ECDSA", hash: "SHA-256" },
  ES512: { name: "ECDSA", hash: "SHA-512" },
  RS256: { name: "RSASSA-PKCS1-v1_5" },
  RS512: { name: "RSASSA-PKCS1-v1_5" },
  EdDSA: { name: "Ed25519" },
  HS256: { name: "HMAC" }
}

/**
 * Starts checking the signature of `header` with `key` (WebCrypto, off the main thread, as jose does); the caller
 * checks the claims while it runs. Resolves true only for a valid signature; never rejects.
 */
const startSignatureCheck = (header: ParsedHeader, key: CryptoKey): Promise<boolean | "unverifiable"> => {
  const params = webCryptoParams[header.alg]
  if (params === undefined) return Promise.resolve("unverifiable")
  try {
    return crypto.subtle.verify(
      params,
      key,
      Buffer.from(header.signaturePart, "base64url"),
      Buffer.from(header.signingInput, "latin1")
    ).catch(() => "unverifiable" as const)
  } catch {
    return Promise.resolve("unverifiable")
  }
}

/** The verifier on the key sets of `source`. */
export const makeWithSource = (
  source: JwksCache.KeySource,
  options: VerificationOptions
): Effect.Effect<Service, never, Scope.Scope> =>
  Effect.gen(function*() {
    const algorithms = new Set<string>(options.algorithms)
    const keySets = yield* JwksCache.make({
      source,
      algorithms,
      maxKidLength: options.maxKidLength,
      ttl: options.jwksCacheTtl,
      refreshCooldown: options.refreshCooldown,
      reloadBudget: options.reloadBudget,
      staleWindow: options.staleWindow,
      retryAfterUnreachable: Duration.seconds(unreachableRetryAfterSeconds)
    })
    const verified = new TokenCache<VerifiedUser>(options.tokenCacheMax)
    const cacheTtl = Duration.toMillis(options.tokenCacheTtl)
    const limits = { maxTokenBytes: options.maxTokenBytes, maxKidLength: options.maxKidLength, algorithms }
    const rules = {
      issuer: options.issuer,
      audience: options.audience,
      clockToleranceSeconds: Duration.toSeconds(options.clockTolerance)
    }
    const legacySecret = Option.getOrUndefined(options.legacySecret)
    const legacyKey = legacySecret === undefined ? undefined : yield* Effect.promise(() =>
      crypto.subtle.importKey(
        "raw",
        new TextEncoder().encode(Redacted.value(legacySecret)),
        { name: "HMAC", hash: "SHA-256" },
        false,
        ["verify"]
      )
    )

    /** Waits for the signature check, then remembers the token until its TTL or its `exp`, whichever is first. */
    const finish = (check: Promise<boolean | "unverifiable">, tokenKey: TokenKey, user: VerifiedUser, now: number) =>
      Effect.async<VerifiedUser, TokenRejected>((resume) => {
        check.then((valid) => {
          if (valid === true) {
            verified.set(tokenKey, user, Math.min(now + cacheTtl, user.exp * 1000), now)
            resume(Effect.succeed(user))
          } else {
            resume(
              reject(
                valid === false
                  ? Rejection.InvalidSignature()
                  : Rejection.Malformed({ detail: "unverifiable signature" })
              )
            )
          }
        })
      })

    const claimsOf = (header: ParsedHeader, now: number) =>
      Either.flatMap(decodePayload(header), (payload) => checkClaims(payload, rules, Math.floor(now / 1000)))

    /**
     * With the key at hand the signature check starts first and the payload is decoded and checked while it runs
     * (the main thread's work hides behind WebCrypto's); a claim failure still wins over the signature's verdict.
     */
    const verifyWith = (header: ParsedHeader, key: CryptoKey, tokenKey: TokenKey, now: number) => {
      const check = startSignatureCheck(header, key)
      const claims = claimsOf(header, now)
      return Either.isLeft(claims) ? reject(claims.left) : finish(check, tokenKey, claims.right, now)
    }

    const withKey = (header: ParsedHeader, key: JwksCache.VerificationKey, tokenKey: TokenKey, now: number) => {
      const cryptoKey = key.byAlgorithm.get(header.alg)
      return cryptoKey === undefined
        ? reject(Rejection.AlgorithmNotAllowed({ alg: header.alg }))
        : verifyWith(header, cryptoKey, tokenKey, now)
    }

    const legacy = (header: ParsedHeader, tokenKey: TokenKey, now: number) => {
      if (legacyKey !== undefined) return verifyWith(header, legacyKey, tokenKey, now)
      const claims = claimsOf(header, now)
      return Either.isLeft(claims)
        ? reject(claims.left)
        : reject(Rejection.LegacyUnverifiable({ unverified: claims.right }))
    }

    const verifyAt = (token: string, tokenKey: TokenKey, now: number): Effect.Effect<VerifiedUser, TokenRejected> => {
      const cached = verified.get(tokenKey, now)
      if (cached !== undefined) return Effect.succeed(cached)
      const parsed = parseHeader(token, limits)
      if (Either.isLeft(parsed)) return reject(parsed.left)
      const header = parsed.right
      const kid = header.kid
      if (header.alg === "HS256") {
        // A JWKS key's kid on an HMAC token is the algorithm-confusion attack: refused, never worth asking anyone.
        return kid === undefined ? legacy(header, tokenKey, now) : Effect.flatMap(
          keySets.held(kid),
          (key) =>
            key === undefined
              ? legacy(header, tokenKey, now)
              : reject(Rejection.AlgorithmNotAllowed({ alg: "HS256" }))
        )
      }
      if (kid === undefined) return reject(Rejection.Malformed({ detail: "no kid" }))
      const key = keySets.fresh(kid, now)
      if (key !== undefined) return withKey(header, key, tokenKey, now)
      // No key at hand: definitive claim failures first, so they never cost a download or a provider call.
      const claims = claimsOf(header, now)
      if (Either.isLeft(claims)) return reject(claims.left)
      const unverified = claims.right
      return Effect.matchEffect(keySets.lookup(kid), {
        onSuccess: (found) => withKey(header, found, tokenKey, now),
        onFailure: (miss) =>
          reject(
            miss._tag === "Missing"
              ? Rejection.UnknownKey({ unverified, providerUnreachable: miss.providerUnreachable })
              : Rejection.KeySetUnavailable({ unverified, providerUnreachable: miss.providerUnreachable })
          )
      })
    }

    return {
      verify: (token) =>
        Effect.flatMap(Clock.currentTimeMillis, (now) =>
          token.length > options.maxTokenBytes
            ? reject(Rejection.Malformed({ detail: "token too large" }))
            : verifyAt(token, keyOf(token), now)),
      verifyAt,
      cached: (tokenKey, now) => verified.get(tokenKey, now),
      maxTokenBytes: options.maxTokenBytes,
      ready: keySets.ready,
      status: Effect.map(keySets.status, (keySet) => ({ cachedTokens: verified.size, keySet }))
    }
  })

/** The verifier on the provider's key set at `jwksUrl`, downloaded with the shared `supabaseAuth` client. */
export const make = (options: Options): Effect.Effect<Service, never, HttpClients | Scope.Scope> =>
  Effect.flatMap(
    HttpClients,
    (clients) => makeWithSource(JwksCache.remoteSource(clients.supabaseAuth, options.jwksUrl), options)
  )

export const layer = (options: Options): Layer.Layer<JwksVerifier, never, HttpClients> =>
  Layer.scoped(JwksVerifier, make(options))

/** The verifier on a key set held in memory (an in-process issuer's): nothing is ever downloaded. */
export const layerStatic = (
  keySet: JwksCache.JsonWebKeySet,
  options: VerificationOptions
): Layer.Layer<JwksVerifier> => Layer.scoped(JwksVerifier, makeWithSource(JwksCache.staticSource(keySet), options))

// Settings ----------------------------------------------------------------------------------------------------------

/** Options from the settings: the JWKS at `{url}/auth/v1/.well-known/jwks.json`, issuer default `{url}/auth/v1`. */
export const optionsFromSettings = (
  supabase: ProviderSettings,
  tunables: Tunables
): Either.Either<Options, ConfigError.ConfigError> =>
  Either.map(providerUrl(supabase), (url) => ({
    ...tunables,
    jwksUrl: `${url}/auth/v1/.well-known/jwks.json`,
    issuer: Option.getOrElse(supabase.issuer, () => `${url}/auth/v1`),
    audience: supabase.audience,
    legacySecret: supabase.jwtSecret
  }))

export const layerFromSettings = (
  supabase: ProviderSettings,
  tunables: Tunables
): Layer.Layer<JwksVerifier, ConfigError.ConfigError, HttpClients> =>
  Layer.unwrapEffect(Effect.map(optionsFromSettings(supabase, tunables), layer))
