/**
 * The auth provider's key set (JWKS), from a key source (downloaded with the shared `supabaseAuth` client, or held in
 * memory) and cached for the shorter of its `Cache-Control: max-age` and the configured TTL. A `kid` miss refetches
 * it at most once per cooldown and within a reload budget; concurrent misses share one download; when a download
 * fails, the last good set keeps serving for a bounded stale window. A download that failed because the provider was unreachable may be tried
 * again once `retryAfterUnreachable` has passed, whatever the cooldown and the budget say: that is the `Retry-After`
 * clients are given meanwhile, so a client that honours it finds the provider asked again. Only asymmetric keys of
 * the allowed algorithms are imported.
 */
import type * as HttpClient from "@effect/platform/HttpClient"
import type * as HttpClientError from "@effect/platform/HttpClientError"
import { Clock, Data, Duration, Effect, type Scope } from "effect"
import { type CryptoKey, importJWK, type JWK } from "jose"
import { isTimeout } from "../clients/HttpClients.js"
import * as Logging from "../runtime/Logging.js"
import { RateBudget } from "../runtime/RateBudget.js"
import * as SingleFlight from "../runtime/SingleFlight.js"
import { isRecord } from "./JwtClaims.js"

/** The signing algorithms Supabase uses for asymmetric keys. */
export type JwsAlgorithm = "ES256" | "ES512" | "RS256" | "RS512" | "EdDSA"
export const jwsAlgorithms: ReadonlyArray<JwsAlgorithm> = ["ES256", "ES512", "RS256", "RS512", "EdDSA"]

export const isJwsAlgorithm = (s: string): s is JwsAlgorithm => jwsAlgorithms.some((alg) => alg === s)

export interface VerificationKey {
  readonly kid: string
  /** One imported key per algorithm the JWK may be used with. */
  readonly byAlgorithm: ReadonlyMap<string, CryptoKey>
}

/**
 * Where key sets come from: each run is one download (`remoteSource`), or one read of a set held in memory
 * (`staticSource`), giving the JWK set document and for how long it may be cached (seconds). Whatever the source,
 * the cache's rules (TTL, cooldown, budget, stale window) are the same.
 */
export type KeySource = Effect.Effect<
  { readonly body: unknown; readonly maxAge: number | undefined },
  JwksUnavailable
>

export interface KeySetOptions {
  readonly source: KeySource
  readonly algorithms: ReadonlySet<string>
  readonly maxKidLength: number
  readonly ttl: Duration.Duration
  readonly refreshCooldown: Duration.Duration
  /** Downloads allowed per minute, retries after an unreachable provider aside. */
  readonly reloadBudget: number
  readonly staleWindow: Duration.Duration
  /**
   * After a download failed because the provider was unreachable, the next may start this long after it did (the
   * `Retry-After` of the 503s meanwhile). Such retries are paced by this delay alone: at most one per delay.
   */
  readonly retryAfterUnreachable: Duration.Duration
}

/** Why a download brought no key set: `unreachable` for refused, timed out, 408/429/5xx; else a bad answer. */
export class JwksUnavailable extends Data.TaggedError("JwksUnavailable")<{
  readonly unreachable: boolean
  readonly detail: string
}> {}

/** A `kid` with no key: the set holds none for it, or no usable set is held at all. */
interface KeyMiss {
  readonly _tag: "Missing" | "NoKeySet"
  /** A download this lookup waited for failed because the provider is unreachable. */
  readonly providerUnreachable: boolean
}

export interface KeySetStatus {
  readonly kids: ReadonlyArray<string>
  readonly fetchedAt: number | undefined
  readonly freshUntil: number | undefined
  readonly usableUntil: number | undefined
  readonly lastFailure: JwksUnavailable | undefined
  readonly downloads: number
}

export interface KeySetCache {
  /** The key for `kid` when a fresh set holds it: the hot path, no effect. */
  readonly fresh: (kid: string, now: number) => VerificationKey | undefined
  /** The key for `kid` in the usable set (fresh or stale); downloads only when no usable set is held. */
  readonly held: (kid: string) => Effect.Effect<VerificationKey | undefined>
  /** The key for `kid`, downloading the set when it is missing, expired, or lacks the `kid` (within the limits). */
  readonly lookup: (kid: string) => Effect.Effect<VerificationKey, KeyMiss>
  /** Succeeds when a usable set is held or can be downloaded now. */
  readonly ready: Effect.Effect<void, JwksUnavailable>
  readonly status: Effect.Effect<KeySetStatus>
}

interface KeySet {
  readonly keys: ReadonlyMap<string, VerificationKey>
  readonly fetchedAt: number
  readonly freshUntil: number
  readonly usableUntil: number
}

const maxKeysPerSet = 64
const privateMembers = ["d", "p", "q", "dp", "dq", "qi", "oth", "k"]

/** The algorithms a JWK may verify, from its `alg` or else its key type and curve, limited to the allowed ones. */
const algorithmsOf = (jwk: Readonly<Record<string, unknown>>, allowed: ReadonlySet<string>): ReadonlyArray<string> => {
  const declared = jwk["alg"]
  const candidates = typeof declared === "string"
    ? [declared]
    : jwk["kty"] === "EC"
    ? jwk["crv"] === "P-256" ? ["ES256"] : jwk["crv"] === "P-521" ? ["ES512"] : []
    : jwk["kty"] === "RSA"
    ? ["RS256", "RS512"]
    : jwk["kty"] === "OKP" && jwk["crv"] === "Ed25519"
    ? ["EdDSA"]
    : []
  return candidates.filter((alg) => allowed.has(alg))
}

/** Why a JWK is left out of the set, or undefined when it is a public signing key we may use. */
const unusable = (jwk: Readonly<Record<string, unknown>>, maxKidLength: number): string | undefined => {
  const kid = jwk["kid"]
  if (typeof kid !== "string" || kid === "" || kid.length > maxKidLength) return "no usable kid"
  if (jwk["kty"] !== "EC" && jwk["kty"] !== "RSA" && jwk["kty"] !== "OKP") return "not an asymmetric key"
  if (privateMembers.some((member) => member in jwk)) return "holds private key material"
  if (jwk["use"] !== undefined && jwk["use"] !== "sig") return "not a signing key"
  const ops = jwk["key_ops"]
  if (ops !== undefined && !(Array.isArray(ops) && ops.includes("verify"))) return "not a verification key"
  return undefined
}

const publicMembers = ["kty", "crv", "x", "y", "n", "e"] as const

/** The JWK reduced to its public members: `alg`, `use`, `key_ops` and the rest play no part in the import. */
const publicPart = (jwk: Readonly<Record<string, unknown>>): JWK => {
  const part: Record<string, string> = {}
  for (const member of publicMembers) {
    const value = jwk[member]
    if (typeof value === "string") part[member] = value
  }
  return part
}

const importKeySet = (body: unknown, options: KeySetOptions) =>
  Effect.gen(function*() {
    if (!isRecord(body) || !Array.isArray(body["keys"])) {
      return yield* new JwksUnavailable({ unreachable: false, detail: "not a JWK set" })
    }
    const keys = new Map<string, VerificationKey>()
    for (const jwk of body["keys"].slice(0, maxKeysPerSet)) {
      if (!isRecord(jwk)) continue
      const kid = jwk["kid"]
      const skip = typeof kid !== "string" ? "no kid" : unusable(jwk, options.maxKidLength)
      const algorithms = skip === undefined ? algorithmsOf(jwk, options.algorithms) : []
      const byAlgorithm = new Map<string, CryptoKey>()
      for (const alg of algorithms) {
        const key = yield* Effect.promise(() =>
          importJWK(publicPart(jwk), alg).then((k) => (k instanceof Uint8Array ? undefined : k), () => undefined)
        )
        // Short RSA keys are refused, as jose does (RFC 7518 asks for 2048 bits).
        const bits = key !== undefined && "modulusLength" in key.algorithm ? key.algorithm.modulusLength : undefined
        if (key !== undefined && (typeof bits !== "number" || bits >= 2048)) byAlgorithm.set(alg, key)
      }
      if (typeof kid === "string" && byAlgorithm.size > 0) keys.set(kid, { kid, byAlgorithm })
      else yield* Effect.logDebug(Logging.fields("JWKS key skipped", { reason: skip ?? "no allowed algorithm" }))
    }
    return keys
  })

const maxAgeOf = (cacheControl: string | undefined): number | undefined => {
  if (cacheControl === undefined) return undefined
  if (/(?:^|,)\s*(?:no-store|no-cache)\b/i.test(cacheControl)) return 0
  const match = /(?:^|,)\s*max-age\s*=\s*"?(\d+)/i.exec(cacheControl)
  return match === null ? undefined : Number(match[1])
}

/** Statuses that mean "try again later" rather than "wrong answer". */
const isUnavailableStatus = (status: number): boolean => status === 408 || status === 429 || status >= 500

const transportFailure = (error: HttpClientError.HttpClientError) =>
  new JwksUnavailable({
    unreachable: error._tag === "RequestError" || isTimeout(error),
    detail: isTimeout(error) ? "timeout" : error._tag === "RequestError" ? "connection failed" : "unreadable response"
  })

/** The provider's key set at `jwksUrl`, downloaded with `client` (the shared `supabaseAuth` client). */
export const remoteSource = (client: HttpClient.HttpClient, jwksUrl: string): KeySource =>
  client.get(jwksUrl, { headers: { accept: "application/json" } }).pipe(
    Effect.mapError(transportFailure),
    Effect.flatMap((response) => {
      if (response.status !== 200) {
        return Effect.zipRight(
          Effect.ignore(response.text),
          new JwksUnavailable({
            unreachable: isUnavailableStatus(response.status),
            detail: `status ${response.status}`
          })
        )
      }
      return response.json.pipe(
        Effect.mapError(transportFailure),
        Effect.map((body) => ({ body, maxAge: maxAgeOf(response.headers["cache-control"]) }))
      )
    })
  )

/** A JWK set (`{"keys":[...]}`, public keys only), as a provider serves it. */
export interface JsonWebKeySet {
  readonly keys: ReadonlyArray<JWK>
}

/** A key set held in memory: every read gives it, with no download and no expiry of its own. */
export const staticSource = (keySet: JsonWebKeySet): KeySource => Effect.succeed({ body: keySet, maxAge: undefined })

/** One read of the key source, its keys imported. */
const readSource = (options: KeySetOptions) =>
  Effect.gen(function*() {
    const { body, maxAge } = yield* options.source
    return { keys: yield* importKeySet(body, options), maxAge }
  })

export const make = (options: KeySetOptions): Effect.Effect<KeySetCache, never, Scope.Scope> =>
  Effect.gen(function*() {
    const scope = yield* Effect.scope
    const flight = SingleFlight.make<"jwks">(scope)
    const budget = new RateBudget(options.reloadBudget, Duration.minutes(1))
    const ttl = Duration.toMillis(options.ttl)
    const cooldown = Duration.toMillis(options.refreshCooldown)
    const stale = Duration.toMillis(options.staleWindow)
    const retryAfterUnreachable = Duration.toMillis(options.retryAfterUnreachable)

    let current: KeySet | undefined
    let lastAttempt: number | undefined
    let lastFailure: JwksUnavailable | undefined
    let downloads = 0

    const fetchKeySet = Effect.gen(function*() {
      downloads++
      const result = yield* Effect.either(readSource(options))
      const now = yield* Clock.currentTimeMillis
      if (result._tag === "Left") {
        lastFailure = result.left
        yield* Effect.logWarning(
          Logging.fields("JWKS download failed", { unreachable: result.left.unreachable, detail: result.left.detail })
        )
        return
      }
      const freshFor = Math.min(ttl, (result.right.maxAge ?? Infinity) * 1000)
      current = {
        keys: result.right.keys,
        fetchedAt: now,
        freshUntil: now + freshFor,
        usableUntil: now + freshFor + stale
      }
      lastFailure = undefined
      yield* Effect.logDebug(Logging.fields("JWKS loaded", { keys: result.right.keys.size }))
    })

    /**
     * Joins the download in flight, or starts one when the cooldown and the budget allow; true when this call saw a
     * download finish, so a failure it reports is news rather than a memory.
     */
    const refresh = (now: number): Effect.Effect<boolean> => {
      if (flight.isRunning("jwks")) return Effect.as(flight.run("jwks", fetchKeySet), true)
      const sinceLast = lastAttempt === undefined ? Infinity : now - lastAttempt
      const retryDue = lastFailure?.unreachable === true && sinceLast >= retryAfterUnreachable
      if (!retryDue && (sinceLast < cooldown || !budget.tryTake(now))) return Effect.succeed(false)
      lastAttempt = now
      return Effect.as(flight.run("jwks", fetchKeySet), true)
    }

    const usable = (now: number): KeySet | undefined =>
      current !== undefined && now < current.usableUntil ? current : undefined

    const afterRefresh = (kid: string, downloaded: boolean) =>
      Effect.flatMap(Clock.currentTimeMillis, (now): Effect.Effect<VerificationKey, KeyMiss> => {
        const providerUnreachable = downloaded && lastFailure?.unreachable === true
        const set = usable(now)
        if (set === undefined) return Effect.fail({ _tag: "NoKeySet", providerUnreachable })
        const key = set.keys.get(kid)
        return key === undefined ? Effect.fail({ _tag: "Missing", providerUnreachable }) : Effect.succeed(key)
      })

    const fresh = (kid: string, now: number) =>
      current !== undefined && now < current.freshUntil ? current.keys.get(kid) : undefined

    return {
      fresh,
      held: (kid) =>
        Effect.flatMap(Clock.currentTimeMillis, (now) =>
          usable(now) !== undefined
            ? Effect.succeed(usable(now)?.keys.get(kid))
            : Effect.zipRight(
              refresh(now),
              Effect.map(Clock.currentTimeMillis, (later) => usable(later)?.keys.get(kid))
            )),
      lookup: (kid) =>
        Effect.flatMap(Clock.currentTimeMillis, (now) => {
          const key = fresh(kid, now)
          return key !== undefined
            ? Effect.succeed(key)
            : Effect.flatMap(refresh(now), (downloaded) => afterRefresh(kid, downloaded))
        }),
      ready: Effect.flatMap(Clock.currentTimeMillis, (now) =>
        current !== undefined && now < current.freshUntil
          ? Effect.void
          : Effect.zipRight(
            refresh(now),
            Effect.flatMap(Clock.currentTimeMillis, (later) =>
              usable(later) !== undefined
                ? Effect.void
                : Effect.fail(lastFailure ?? new JwksUnavailable({ unreachable: false, detail: "no key set yet" })))
          )),
      status: Effect.sync(() => ({
        kids: current === undefined ? [] : [...current.keys.keys()],
        fetchedAt: current?.fetchedAt,
        freshUntil: current?.freshUntil,
        usableUntil: current?.usableUntil,
        lastFailure,
        downloads
      }))
    }
  })
