/**
 * What a Supabase access token must be before any key is involved: its shape (size, three base64url segments of
 * JSON), its header (an allowed algorithm, a bounded `kid`, no `crit`) and its claims (`exp`, `iat`, `sub`, `aud`,
 * `iss`, `role`, `session_id`), with the typed reasons a token is refused for. Pure functions: the caller passes the
 * time, read from Effect's `Clock`.
 */
import { Data, Either } from "effect"

/** The identity a verified token carries (Supabase's claim names), plus `isAdmin` from `app_metadata.role`. */
export interface VerifiedUser {
  readonly sub: string
  readonly email?: string
  readonly phone?: string
  readonly role: string
  readonly aud: ReadonlyArray<string>
  readonly iss: string
  /** Seconds since the epoch. */
  readonly iat: number
  /** Seconds since the epoch. */
  readonly exp: number
  readonly session_id: string
  readonly app_metadata: Readonly<Record<string, unknown>>
  readonly user_metadata: Readonly<Record<string, unknown>>
  readonly aal?: string
  readonly is_anonymous: boolean
  /** `app_metadata.role === "admin"`: `app_metadata` is set by the service role only, never by the user. */
  readonly isAdmin: boolean
}

/**
 * Why a token was refused by local verification. The first six are definitive; the last three mean local
 * verification cannot decide (`Auth` then asks the provider) and carry the token's claims, which passed every
 * claim rule but whose signature is not checked yet.
 */
export type Rejection = Data.TaggedEnum<{
  Missing: {}
  Malformed: { readonly detail: string }
  AlgorithmNotAllowed: { readonly alg: string }
  Expired: {}
  InvalidClaims: { readonly claim: string; readonly detail: string }
  InvalidSignature: {}
  /** No key for the `kid`, even after a refetch (or the refetch was not allowed yet). */
  UnknownKey: { readonly unverified: VerifiedUser; readonly providerUnreachable: boolean }
  /** A legacy HS256 token, and no `SUPABASE_JWT_SECRET` is configured. */
  LegacyUnverifiable: { readonly unverified: VerifiedUser }
  /** No key set could be fetched, and no last good one is held. */
  KeySetUnavailable: { readonly unverified: VerifiedUser; readonly providerUnreachable: boolean }
}>
export const Rejection = Data.taggedEnum<Rejection>()

export type Undecided = Extract<Rejection, { readonly _tag: "UnknownKey" | "LegacyUnverifiable" | "KeySetUnavailable" }>
export type Definitive = Exclude<Rejection, Undecided>

export const isUndecided = (reason: Rejection): reason is Undecided =>
  reason._tag === "UnknownKey" || reason._tag === "LegacyUnverifiable" || reason._tag === "KeySetUnavailable"

// Shape and header ------------------------------------------------------------------------------------------------

export interface ShapeLimits {
  /** Longer tokens are refused before anything is decoded. */
  readonly maxTokenBytes: number
  readonly maxKidLength: number
  /** Asymmetric algorithms accepted with JWKS keys; HS256 is let through to the legacy path. */
  readonly algorithms: ReadonlySet<string>
}

/** A token whose header passed; the payload is still undecoded. */
export interface ParsedHeader {
  readonly alg: string
  readonly kid: string | undefined
  /** `header.payload`, the bytes the signature covers. */
  readonly signingInput: string
  readonly payloadPart: string
  readonly signaturePart: string
}

const base64url = /^[A-Za-z0-9_-]+$/
const strictUtf8 = new TextDecoder("utf-8", { fatal: true })

export const isRecord = (u: unknown): u is Readonly<Record<string, unknown>> =>
  typeof u === "object" && u !== null && !Array.isArray(u)

const decodeJsonObject = (part: string): Readonly<Record<string, unknown>> | undefined => {
  if (part.length % 4 === 1 || !base64url.test(part)) return undefined
  try {
    const value: unknown = JSON.parse(strictUtf8.decode(Buffer.from(part, "base64url")))
    return isRecord(value) ? value : undefined
  } catch {
    return undefined
  }
}

const malformed = (detail: string) => Either.left(Rejection.Malformed({ detail }))

/**
 * Checks the size, the three segments and the header of a compact JWS without touching a key. `jku`, `x5u`, `jwk`
 * and `x5c` are never read: keys come from the JWKS by `kid` only. A `crit` header is refused, since no extension
 * is understood.
 */
export const parseHeader = (token: string, limits: ShapeLimits): Either.Either<ParsedHeader, Rejection> => {
  if (token.length === 0) return Either.left(Rejection.Missing())
  if (token.length > limits.maxTokenBytes) return malformed("token too large")
  const first = token.indexOf(".")
  const second = first < 0 ? -1 : token.indexOf(".", first + 1)
  if (second < 0 || token.indexOf(".", second + 1) >= 0) return malformed("not three segments")
  const header = decodeJsonObject(token.slice(0, first))
  if (header === undefined) return malformed("header is not base64url JSON")
  const alg = header["alg"]
  if (typeof alg !== "string") return malformed("no alg")
  if (alg !== "HS256" && !limits.algorithms.has(alg)) {
    return Either.left(Rejection.AlgorithmNotAllowed({ alg: alg.slice(0, 16) }))
  }
  if (header["crit"] !== undefined) return malformed("unsupported crit header")
  const kid = header["kid"]
  if (kid !== undefined && (typeof kid !== "string" || kid.length === 0 || kid.length > limits.maxKidLength)) {
    return malformed("invalid kid")
  }
  const signaturePart = token.slice(second + 1)
  if (signaturePart.length === 0 || signaturePart.length % 4 === 1 || !base64url.test(signaturePart)) {
    return malformed("signature is not base64url")
  }
  return Either.right({
    alg,
    kid,
    signingInput: token.slice(0, second),
    payloadPart: token.slice(first + 1, second),
    signaturePart
  })
}

/** The claims set of a token whose header passed. */
export const decodePayload = (header: ParsedHeader): Either.Either<Readonly<Record<string, unknown>>, Rejection> => {
  const payload = decodeJsonObject(header.payloadPart)
  return payload === undefined ? malformed("payload is not base64url JSON") : Either.right(payload)
}

// Claims ----------------------------------------------------------------------------------------------------------

export interface ClaimRules {
  readonly issuer: string
  readonly audience: string
  readonly clockToleranceSeconds: number
}

const uuid = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i

export const isUuid = (u: unknown): u is string => typeof u === "string" && uuid.test(u)

const isStringList = (u: unknown): u is ReadonlyArray<string> =>
  Array.isArray(u) && u.every((item) => typeof item === "string")

const isNumericDate = (u: unknown): u is number => typeof u === "number" && Number.isFinite(u)

const invalid = (claim: string, detail: string) => Either.left(Rejection.InvalidClaims({ claim, detail }))

const optionalString = (u: unknown): string | undefined => (typeof u === "string" && u !== "" ? u : undefined)

/**
 * Checks every claim rule at `nowSeconds` (whole seconds, like jose): `exp` required and more than the tolerance
 * ahead of expiry (`exp > now - tolerance`), `iat` required and not beyond the tolerance in the future, `nbf` if
 * present likewise, `iss` equal to the issuer, `aud` (string or list) containing the audience, `sub` and
 * `session_id` UUIDs (the legacy anon and service-role keys have neither), `role` a non-empty string, and the
 * metadata claims objects when present.
 */
export const checkClaims = (
  payload: Readonly<Record<string, unknown>>,
  rules: ClaimRules,
  nowSeconds: number
): Either.Either<VerifiedUser, Rejection> => {
  const tolerance = rules.clockToleranceSeconds
  const exp = payload["exp"]
  if (!isNumericDate(exp)) return invalid("exp", "missing or not a number")
  if (exp <= nowSeconds - tolerance) return Either.left(Rejection.Expired())
  const iat = payload["iat"]
  if (!isNumericDate(iat)) return invalid("iat", "missing or not a number")
  if (iat > nowSeconds + tolerance) return invalid("iat", "in the future")
  const nbf = payload["nbf"]
  if (nbf !== undefined && (!isNumericDate(nbf) || nbf > nowSeconds + tolerance)) return invalid("nbf", "not yet valid")
  const iss = payload["iss"]
  if (iss !== rules.issuer) return invalid("iss", "unexpected issuer")
  const aud = payload["aud"]
  const audiences = typeof aud === "string" ? [aud] : aud
  if (!isStringList(audiences)) return invalid("aud", "missing or not a string list")
  if (!audiences.includes(rules.audience)) return invalid("aud", "audience not accepted")
  const sub = payload["sub"]
  if (!isUuid(sub)) return invalid("sub", "missing or not a UUID")
  const role = payload["role"]
  if (typeof role !== "string" || role === "") return invalid("role", "missing")
  const sessionId = payload["session_id"]
  if (!isUuid(sessionId)) return invalid("session_id", "missing or not a UUID")
  const appMetadata = payload["app_metadata"] ?? {}
  if (!isRecord(appMetadata)) return invalid("app_metadata", "not an object")
  const userMetadata = payload["user_metadata"] ?? {}
  if (!isRecord(userMetadata)) return invalid("user_metadata", "not an object")
  const email = optionalString(payload["email"])
  const phone = optionalString(payload["phone"])
  const aal = optionalString(payload["aal"])
  return Either.right({
    sub,
    ...(email === undefined ? {} : { email }),
    ...(phone === undefined ? {} : { phone }),
    role,
    aud: audiences,
    iss: rules.issuer,
    iat,
    exp,
    session_id: sessionId,
    app_metadata: appMetadata,
    user_metadata: userMetadata,
    ...(aal === undefined ? {} : { aal }),
    is_anonymous: payload["is_anonymous"] === true,
    isAdmin: appMetadata["role"] === "admin"
  })
}
