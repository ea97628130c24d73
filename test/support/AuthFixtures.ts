/** Shared pieces of the auth tests: a stand-in per test, verifier and `Auth` options for it, crafted tokens. */
import { Clock, Duration, Effect, Layer, Logger, LogLevel, Option, Redacted, TestClock } from "effect"
import { CompactSign, exportJWK, generateKeyPair, importJWK } from "jose"
import { createHmac, KeyObject, randomBytes, randomUUID } from "node:crypto"
import * as Auth from "../../src/core/auth/Auth.js"
import * as Jwks from "../../src/core/auth/Jwks.js"
import * as HttpClients from "../../src/core/clients/HttpClients.js"
import * as Logging from "../../src/core/runtime/Logging.js"
import {
  startSupabaseStandIn,
  type SupabaseStandInOptions,
  type SupabaseStandInServer
} from "../../src/dev/SupabaseStandIn.js"

/** The client timeout of these tests: short, so a hanging provider is found out quickly. */
export const clientTimeout = Duration.millis(300)

export const clients = HttpClients.layer({ supabaseAuth: { timeout: clientTimeout } })

/** A stand-in for the test's scope. */
export const standIn = (options: SupabaseStandInOptions = {}) =>
  Effect.acquireRelease(
    Effect.promise(() => startSupabaseStandIn(options)),
    (server) => Effect.promise(() => server.stop())
  )

export const verifierOptions = (
  server: SupabaseStandInServer,
  overrides: Partial<Jwks.Options> = {}
): Jwks.Options => ({
  ...Jwks.defaults,
  jwksUrl: server.jwksUrl,
  issuer: server.issuer,
  audience: "authenticated",
  legacySecret: Option.none(),
  ...overrides
})

const authOptions = (server: SupabaseStandInServer, overrides: Partial<Auth.Options> = {}): Auth.Options => ({
  url: server.url,
  anonKey: Option.some(Redacted.make(server.anonKey)),
  negativeCacheTtl: Auth.defaults.negativeCacheTtl,
  negativeCacheMax: Auth.defaults.negativeCacheMax,
  introspectionBudget: Auth.defaults.introspectionBudget,
  tokenCacheTtl: Jwks.defaults.tokenCacheTtl,
  tokenCacheMax: Jwks.defaults.tokenCacheMax,
  ...overrides
})

/** A verifier and `Auth` on the stand-in, for the test's scope. */
export const makeAuth = (
  server: SupabaseStandInServer,
  overrides: { readonly verifier?: Partial<Jwks.Options>; readonly auth?: Partial<Auth.Options> } = {}
) =>
  Effect.gen(function*() {
    const verifier = yield* Jwks.make(verifierOptions(server, overrides.verifier))
    const auth = yield* Auth.make(authOptions(server, overrides.auth)).pipe(
      Effect.provideService(Jwks.JwksVerifier, verifier)
    )
    return { verifier, auth }
  })

/** Puts the `TestClock` at the real time: the stand-in stamps its tokens with `Date.now()`. */
export const clockAtRealTime = Effect.suspend(() => TestClock.setTime(Date.now()))

export const nowSeconds = Effect.map(Clock.currentTimeMillis, (ms) => Math.floor(ms / 1000))

export const b64 = (value: unknown): string =>
  Buffer.from(typeof value === "string" ? value : JSON.stringify(value)).toString("base64url")

/** A well-formed token whose signature is random bytes (never checked when the kid is unknown). */
export const craft = (header: object, payload: object | string, signature = randomBytes(64).toString("base64url")) =>
  `${b64(header)}.${b64(payload)}.${signature}`

/** Claims that pass every rule at `now` (seconds). */
export const validClaims = (server: SupabaseStandInServer, now: number, overrides: Record<string, unknown> = {}) => ({
  iss: server.issuer,
  sub: randomUUID(),
  aud: "authenticated",
  exp: now + 3600,
  iat: now,
  email: "someone@example.com",
  phone: "",
  app_metadata: { provider: "email", providers: ["email"] },
  user_metadata: {},
  role: "authenticated",
  aal: "aal1",
  amr: [{ method: "password", timestamp: now }],
  session_id: randomUUID(),
  is_anonymous: false,
  ...overrides
})

const realPause = Effect.promise(() => new Promise<void>((resolve) => setTimeout(resolve, 10)))

/** Polls, pausing in real time (the `TestClock` does not move), until `check` holds; the caller asserts afterwards. */
export const eventually = (check: Effect.Effect<boolean>) =>
  Effect.gen(function*() {
    for (let attempt = 0; attempt < 300 && !(yield* check); attempt++) yield* realPause
  })

/** Records every log line (JSON) so tests can read what was logged. */
export const memoryLogger = () => {
  const memory = Logging.memorySink()
  const layer = Layer.merge(
    Logger.replace(Logger.defaultLogger, Logging.make({ format: "json", sink: memory.sink })),
    Logger.minimumLogLevel(LogLevel.Debug)
  )
  return { lines: memory.lines, layer }
}

export interface AttackCase {
  readonly name: string
  readonly token: string
  /** The reasons local verification may give. */
  readonly local: ReadonlyArray<string>
}

/**
 * The attack corpus of the issue, as tokens against `server` at `now` (seconds). Every one must be refused with
 * 401 and never a 500.
 */
export const attackCorpus = async (server: SupabaseStandInServer, now: number): Promise<ReadonlyArray<AttackCase>> => {
  const kid = server.activeKid
  const header = { alg: "ES256", kid, typ: "JWT" }
  const claims = validClaims(server, now)
  const user = server.createUser({ email: `victim-${randomUUID().slice(0, 8)}@example.com`, password: "secret-123" })
  const userClaims = { sub: user.id, email: user.email }

  const publicJwk = server.publicJwk()
  const publicKey = await importJWK(publicJwk, "ES256")
  const publicPem = publicKey instanceof Uint8Array
    ? ""
    : KeyObject.from(publicKey).export({ type: "spki", format: "pem" })
  const hmacWith = (secret: string | Buffer, head: object, payload: object) => {
    const input = `${b64(head)}.${b64(payload)}`
    return `${input}.${createHmac("sha256", secret).update(input).digest("base64url")}`
  }
  const attacker = await generateKeyPair("ES256", { extractable: true })
  const attackerJwk = { ...(await exportJWK(attacker.publicKey)), kid: "attacker-key", alg: "ES256" }
  const signedByAttacker = (head: Record<string, unknown>) =>
    new CompactSign(Buffer.from(JSON.stringify(claims))).setProtectedHeader(head as { alg: string }).sign(
      attacker.privateKey
    )
  const foreignHeaders = {
    jku: "https://attacker.example/.well-known/jwks.json",
    x5u: "https://attacker.example/cert.pem",
    jwk: attackerJwk
  }
  const legacyAnon = {
    iss: "supabase",
    ref: "abcdefghijklmnopqrst",
    role: "anon",
    iat: now - 100,
    exp: now + 10 * 365 * 86400
  }
  const legacyServiceRole = { ...legacyAnon, role: "service_role" }
  const valid = await server.signToken({ user: user.id })
  const [validHeader, validPayload] = valid.split(".")

  return [
    { name: "alg none", token: `${b64({ alg: "none", typ: "JWT" })}.${b64(claims)}.`, local: ["AlgorithmNotAllowed"] },
    {
      name: "HS256 signed with the public JWK as the secret, the JWKS kid",
      token: hmacWith(JSON.stringify(publicJwk), { alg: "HS256", kid, typ: "JWT" }, claims),
      local: ["AlgorithmNotAllowed"]
    },
    {
      name: "HS256 signed with the public key PEM as the secret, no kid",
      token: hmacWith(publicPem, { alg: "HS256", typ: "JWT" }, { ...claims, ...userClaims }),
      local: ["LegacyUnverifiable"]
    },
    { name: "signed by an unknown key", token: await server.unknownKeyToken({ user: user.id }), local: ["UnknownKey"] },
    {
      name: "expired",
      token: await server.signToken({ user: user.id, iat: now - 7200, expiresIn: 3600 }),
      local: ["Expired"]
    },
    {
      name: "iat in the future beyond tolerance",
      token: await server.signToken({ user: user.id, iat: now + 120 }),
      local: ["InvalidClaims"]
    },
    {
      name: "wrong iss",
      token: await server.signToken({ user: user.id, claims: { iss: "https://attacker.example/auth/v1" } }),
      local: ["InvalidClaims"]
    },
    {
      name: "wrong aud",
      token: await server.signToken({ user: user.id, claims: { aud: "service" } }),
      local: ["InvalidClaims"]
    },
    {
      name: "legacy anon key (HS256)",
      token: hmacWith("some-legacy-secret", { alg: "HS256", typ: "JWT" }, legacyAnon),
      local: ["InvalidClaims"]
    },
    {
      name: "legacy service-role key (HS256)",
      token: hmacWith("some-legacy-secret", { alg: "HS256", typ: "JWT" }, legacyServiceRole),
      local: ["InvalidClaims"]
    },
    {
      name: "missing sub, legacy-key shaped, signed by the real key",
      token: await server.signRaw(header, { ...legacyAnon, iss: server.issuer, aud: "authenticated", exp: now + 3600 }),
      local: ["InvalidClaims"]
    },
    {
      name: "missing session_id, signed by the real key",
      token: await server.signToken({ user: user.id, claims: { session_id: undefined } }),
      local: ["InvalidClaims"]
    },
    {
      name: "kid with path traversal",
      token: await server.signRaw({ ...header, kid: "../../../../etc/passwd" }, claims),
      local: ["UnknownKey"]
    },
    {
      name: "kid with SQL",
      token: await server.signRaw({ ...header, kid: "' OR 1=1; DROP TABLE users; --" }, claims),
      local: ["UnknownKey"]
    },
    {
      name: "kid of 10 KB",
      token: await server.signRaw({ ...header, kid: "x".repeat(10 * 1024) }, claims),
      local: ["Malformed"]
    },
    {
      name: "kid over the length limit",
      token: await server.signRaw({ ...header, kid: "k".repeat(200) }, claims),
      local: ["Malformed"]
    },
    {
      name: "jku / x5u / jwk naming the attacker's key, attacker's kid",
      token: await signedByAttacker({ alg: "ES256", kid: "attacker-key", ...foreignHeaders }),
      local: ["UnknownKey"]
    },
    {
      name: "jku / x5u / jwk naming the attacker's key, the real kid",
      token: await signedByAttacker({ alg: "ES256", kid, ...foreignHeaders }),
      local: ["InvalidSignature"]
    },
    {
      name: "unknown crit header",
      token: await server.signRaw({
        ...header,
        crit: ["urn:example:must-understand"],
        "urn:example:must-understand": true
      }, claims),
      local: ["Malformed"]
    },
    // 100 KiB in all: base64url makes the padding 4/3 longer.
    {
      name: "100 KB token",
      token: `${validHeader}.${b64({ ...claims, pad: "p".repeat(75 * 1024) })}.${"s".repeat(86)}`,
      local: ["Malformed"]
    },
    {
      name: "malformed base64 header",
      token: `${validHeader!.slice(0, 10)}!!${validHeader!.slice(12)}.${validPayload}.abc`,
      local: ["Malformed"]
    },
    { name: "malformed base64 payload", token: `${validHeader}.%%%${validPayload}.abc`, local: ["Malformed"] },
    { name: "two segments", token: `${validHeader}.${validPayload}`, local: ["Malformed"] },
    { name: "four segments", token: `${valid}.${validPayload}`, local: ["Malformed"] },
    {
      name: "signature tampered",
      token: `${validHeader}.${validPayload}.${b64(randomBytes(64))}`,
      local: ["InvalidSignature"]
    },
    {
      name: "payload swapped under a valid signature",
      token: `${validHeader}.${b64({ ...claims, ...userClaims, role: "service_role" })}.${valid.split(".")[2]}`,
      local: ["InvalidSignature"]
    }
  ]
}
