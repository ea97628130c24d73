/**
 * The auth settings beyond Supabase's own: local verification (`JWT_*`, `JWKS_*`, `TOKEN_CACHE_*`) and the
 * introspection fallback (`AUTH_*`), with the defaults of `Jwks.defaults` and `Auth.defaults`.
 */
import { Config, ConfigError, Either } from "effect"
import { atLeast, seconds } from "../config/ConfigReaders.js"
import * as Auth from "./Auth.js"
import * as Jwks from "./Jwks.js"
import { isJwsAlgorithm, jwsAlgorithms } from "./JwksCache.js"

const algorithmList = Config.string("JWT_ALGORITHMS").pipe(
  Config.mapOrFail((raw) => {
    const list = raw.split(",").map((s) => s.trim()).filter((s) => s !== "")
    const known = list.filter(isJwsAlgorithm)
    return list.length === 0 || known.length < list.length
      ? Either.left(ConfigError.InvalidData(["JWT_ALGORITHMS"], `must list some of ${jwsAlgorithms.join(", ")}`))
      : Either.right(known)
  }),
  Config.withDefault(Jwks.defaults.algorithms)
)

/**
 * `JWT_ALGORITHMS` (comma list of ES256, ES512, RS256, RS512, EdDSA; default ES256,RS256,EdDSA),
 * `JWT_CLOCK_TOLERANCE` (s, 30), `JWT_MAX_TOKEN_BYTES` (8192), `JWT_MAX_KID_LENGTH` (128), `JWKS_CACHE_TTL` (s, 3600),
 * `JWKS_REFRESH_COOLDOWN` (s, 30), `JWKS_RELOAD_BUDGET` (per minute, 10), `JWKS_STALE_WINDOW` (s, 3600),
 * `TOKEN_CACHE_TTL` (s, 60), `TOKEN_CACHE_MAX` (5000; 0 disables the cache).
 */
export const verifierConfig: Config.Config<Jwks.Tunables> = Config.all({
  algorithms: algorithmList,
  clockTolerance: seconds("JWT_CLOCK_TOLERANCE", { allowZero: true }).pipe(
    Config.withDefault(Jwks.defaults.clockTolerance)
  ),
  maxTokenBytes: atLeast("JWT_MAX_TOKEN_BYTES", 512).pipe(Config.withDefault(Jwks.defaults.maxTokenBytes)),
  maxKidLength: atLeast("JWT_MAX_KID_LENGTH", 1).pipe(Config.withDefault(Jwks.defaults.maxKidLength)),
  jwksCacheTtl: seconds("JWKS_CACHE_TTL").pipe(Config.withDefault(Jwks.defaults.jwksCacheTtl)),
  refreshCooldown: seconds("JWKS_REFRESH_COOLDOWN", { allowZero: true }).pipe(
    Config.withDefault(Jwks.defaults.refreshCooldown)
  ),
  reloadBudget: atLeast("JWKS_RELOAD_BUDGET", 1).pipe(Config.withDefault(Jwks.defaults.reloadBudget)),
  staleWindow: seconds("JWKS_STALE_WINDOW", { allowZero: true }).pipe(Config.withDefault(Jwks.defaults.staleWindow)),
  tokenCacheTtl: seconds("TOKEN_CACHE_TTL", { allowZero: true }).pipe(Config.withDefault(Jwks.defaults.tokenCacheTtl)),
  tokenCacheMax: atLeast("TOKEN_CACHE_MAX", 0).pipe(Config.withDefault(Jwks.defaults.tokenCacheMax))
})

/**
 * `verifierConfig`, plus `AUTH_NEGATIVE_CACHE_TTL` (s, 30), `AUTH_NEGATIVE_CACHE_MAX` (10000; 0 disables it) and
 * `AUTH_INTROSPECTION_BUDGET` (provider calls per minute, 60).
 */
export const config: Config.Config<Auth.Tunables> = Config.all({
  verifier: verifierConfig,
  negativeCacheTtl: seconds("AUTH_NEGATIVE_CACHE_TTL", { allowZero: true }).pipe(
    Config.withDefault(Auth.defaults.negativeCacheTtl)
  ),
  negativeCacheMax: atLeast("AUTH_NEGATIVE_CACHE_MAX", 0).pipe(Config.withDefault(Auth.defaults.negativeCacheMax)),
  introspectionBudget: atLeast("AUTH_INTROSPECTION_BUDGET", 0).pipe(
    Config.withDefault(Auth.defaults.introspectionBudget)
  )
})
