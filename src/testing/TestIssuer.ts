/**
 * `TestIssuer`: an in-process Supabase Auth issuer for tests. It holds its own ES256 keys and signs access tokens
 * with the claims Supabase puts in them, stamped with Effect's `Clock`; `forge` makes the tokens a verifier must
 * refuse. Its provider endpoints (the key set, `GET /auth/v1/user`) answer as a handler, for offline HTTP clients:
 * nothing listens.
 */
import { Clock, Context, Duration, Effect, Layer, Option, Schema } from "effect"
import { createLocalJWKSet, type CryptoKey, exportJWK, generateKeyPair, type JWK, jwtVerify, SignJWT } from "jose"
import { randomUUID } from "node:crypto"
import * as Auth from "../core/auth/Auth.js"
import * as Jwks from "../core/auth/Jwks.js"
import * as Lifecycle from "../core/runtime/Lifecycle.js"
import * as Readiness from "../core/runtime/Readiness.js"
import * as OfflineHttpClients from "./OfflineHttpClients.js"

const Email = Schema.String.pipe(Schema.pattern(/^[^\s@]+@[^\s@]+\.[^\s@]+$/)).annotations({
  identifier: "Email",
  arbitrary: () => (fc) => fc.emailAddress()
})

/** An app role in `app_metadata.role`; blank and padded ones are Supabase-possible, and the app trims them. */
const AppRole = Schema.String.annotations({
  arbitrary: () => (fc) => fc.constantFrom("admin", "user", "editor", " editor ", "")
})

/** The Postgres role Supabase signs in `role`; anything else there is read as an app role. */
const Role = Schema.NonEmptyString.annotations({
  arbitrary: () => (fc) => fc.constantFrom("authenticated", "authenticated", "anon", "support")
})

// Values a JSON round trip keeps as they are (a double may be -0, which JSON writes as 0).
const MetadataValue = Schema.Union(Schema.String, Schema.Int, Schema.Boolean, Schema.Null)

/**
 * The claims of an access token a test chooses: who the user is. The issuer adds `iss`, `aud`, `iat` and `exp`.
 * `email` and `phone` are `""` when the user has none, as Supabase signs them.
 */
export const Claims = Schema.Struct({
  sub: Schema.UUID,
  email: Schema.Union(Email, Schema.Literal("")),
  phone: Schema.String,
  role: Role,
  app_metadata: Schema.Struct({
    provider: Schema.optionalWith(Schema.String, { exact: true }),
    providers: Schema.optionalWith(Schema.Array(Schema.String), { exact: true }),
    role: Schema.optionalWith(AppRole, { exact: true })
  }),
  user_metadata: Schema.Record({ key: Schema.String, value: MetadataValue }),
  session_id: Schema.UUID,
  aal: Schema.Literal("aal1", "aal2"),
  is_anonymous: Schema.Boolean
}).annotations({ identifier: "AccessTokenClaims" })
export type Claims = typeof Claims.Type

/** The ways a token can be wrong that a verifier must catch; `forge` makes each. */
export type ForgeKind = "expired" | "wrong-audience" | "wrong-issuer" | "bad-signature" | "unknown-kid"
export const forgeKinds: ReadonlyArray<ForgeKind> = [
  "expired",
  "wrong-audience",
  "wrong-issuer",
  "bad-signature",
  "unknown-kid"
]

export interface MintOptions {
  /** Lifetime of the token (default one hour, Supabase's). */
  readonly expiresIn?: Duration.DurationInput
}

export interface Service {
  /** The provider's base URL, as `SUPABASE_URL` names it (never resolved: nothing listens there). */
  readonly url: string
  /** `iss` of its tokens: `{url}/auth/v1`. */
  readonly issuer: string
  /** `aud` of its tokens. */
  readonly audience: string
  /** Its public keys, as its JWKS endpoint serves them. */
  readonly keySet: Jwks.JsonWebKeySet
  /** A valid access token: `claims` over defaults (a fresh user with an email), issued now by the `Clock`. */
  readonly mint: (claims?: Partial<Claims>, options?: MintOptions) => Effect.Effect<string>
  /** A token the verifier must refuse, for the reason `kind` names; otherwise like `mint`'s. */
  readonly forge: (kind: ForgeKind, claims?: Partial<Claims>) => Effect.Effect<string>
  /**
   * The provider's endpoints the core calls, for offline clients: the key set and `GET /auth/v1/user` (200 with the
   * user of a token it issued and that is still valid, else 403 as Supabase answers); `undefined` for any other URL.
   */
  readonly handle: (request: Request) => Effect.Effect<Response> | undefined
}

export class TestIssuer extends Context.Tag("testing/TestIssuer")<TestIssuer, Service>() {}

export interface Options {
  readonly url?: string
  readonly audience?: string
}

/** Where the issuer says it is by default: a name under `.invalid`, which never resolves. */
export const defaultUrl = "http://issuer.invalid"

const algorithm = "ES256"

const keyPair = Effect.promise(async () => {
  const { privateKey, publicKey } = await generateKeyPair(algorithm, { extractable: true })
  return { privateKey, publicJwk: await exportJWK(publicKey) }
})

/** A fresh user: every claim Supabase signs, with an email. */
export const defaultClaims = (): Claims => {
  const sub = randomUUID()
  return {
    sub,
    email: `user-${sub.slice(0, 8)}@example.com`,
    phone: "",
    role: "authenticated",
    app_metadata: { provider: "email", providers: ["email"] },
    user_metadata: {},
    session_id: randomUUID(),
    aal: "aal1",
    is_anonymous: false
  }
}

const supabaseError = (status: number, errorCode: string, msg: string) =>
  Response.json({ code: status, error_code: errorCode, msg }, { status })

export const make = (options: Options = {}): Effect.Effect<Service> =>
  Effect.gen(function*() {
    const url = (options.url ?? defaultUrl).replace(/\/+$/, "")
    const issuer = `${url}/auth/v1`
    const audience = options.audience ?? "authenticated"
    const signing = yield* keyPair
    // Signs under the real kid without being in the key set: what a bad signature and an unknown kid are made with.
    const impostor = yield* keyPair
    const kid = randomUUID()
    const publicJwk: JWK = { ...signing.publicJwk, kid, alg: algorithm, use: "sig" }
    const keySet: Jwks.JsonWebKeySet = { keys: [publicJwk] }
    const localKeys = createLocalJWKSet({ keys: [publicJwk] })
    const jwksPath = "/auth/v1/.well-known/jwks.json"

    const sign = (
      payload: Record<string, unknown>,
      key: CryptoKey,
      keyId: string
    ) =>
      Effect.promise(() =>
        new SignJWT(payload).setProtectedHeader({ alg: algorithm, kid: keyId, typ: "JWT" }).sign(key)
      )

    const payloadAt = (
      nowSeconds: number,
      claims: Partial<Claims> | undefined,
      lifetime: number,
      overrides: Record<string, unknown> = {}
    ): Record<string, unknown> => ({
      iss: issuer,
      aud: audience,
      iat: nowSeconds,
      exp: nowSeconds + lifetime,
      ...defaultClaims(),
      ...claims,
      ...overrides
    })

    const hour = 3600

    const mint = (claims?: Partial<Claims>, mintOptions: MintOptions = {}) =>
      Effect.flatMap(Clock.currentTimeMillis, (now) => {
        const lifetime = Math.floor(Duration.toSeconds(mintOptions.expiresIn ?? Duration.hours(1)))
        return sign(payloadAt(Math.floor(now / 1000), claims, lifetime), signing.privateKey, kid)
      })

    const forge = (kind: ForgeKind, claims?: Partial<Claims>) =>
      Effect.flatMap(Clock.currentTimeMillis, (now) => {
        const seconds = Math.floor(now / 1000)
        switch (kind) {
          case "expired":
            // Expired an hour ago: well past any clock tolerance.
            return sign(payloadAt(seconds - 2 * hour, claims, hour), signing.privateKey, kid)
          case "wrong-audience":
            return sign(payloadAt(seconds, claims, hour, { aud: `not-${audience}` }), signing.privateKey, kid)
          case "wrong-issuer":
            return sign(
              payloadAt(seconds, claims, hour, { iss: "http://attacker.invalid/auth/v1" }),
              signing.privateKey,
              kid
            )
          case "bad-signature":
            return sign(payloadAt(seconds, claims, hour), impostor.privateKey, kid)
          case "unknown-kid":
            return sign(payloadAt(seconds, claims, hour), impostor.privateKey, randomUUID())
        }
      })

    // GoTrue's `GET /user`: the user of a valid token; 401 without a token, 403 for one it cannot verify.
    const user = (request: Request) =>
      Effect.flatMap(Clock.currentTimeMillis, (now) => {
        const match = /^Bearer +(\S+)$/i.exec(request.headers.get("authorization") ?? "")
        if (match === null) {
          return Effect.succeed(supabaseError(401, "no_authorization", "This endpoint requires a Bearer token"))
        }
        return Effect.promise(() =>
          jwtVerify(match[1]!, localKeys, { issuer, audience, algorithms: [algorithm], currentDate: new Date(now) })
            .then(
              ({ payload }) =>
                Response.json({
                  id: payload.sub,
                  aud: audience,
                  role: payload["role"],
                  email: payload["email"],
                  phone: payload["phone"],
                  app_metadata: payload["app_metadata"],
                  user_metadata: payload["user_metadata"],
                  is_anonymous: payload["is_anonymous"]
                }),
              () => supabaseError(403, "bad_jwt", "invalid JWT: unable to parse or verify signature")
            )
        )
      })

    const handle = (request: Request): Effect.Effect<Response> | undefined => {
      const target = new URL(request.url)
      if (target.origin !== new URL(url).origin || request.method !== "GET") return undefined
      if (target.pathname === jwksPath) {
        return Effect.succeed(Response.json(keySet, { headers: { "cache-control": "public, max-age=600" } }))
      }
      if (target.pathname === "/auth/v1/user") return user(request)
      return undefined
    }

    return { url, issuer, audience, keySet, mint, forge, handle }
  })

export const layer = (options: Options = {}): Layer.Layer<TestIssuer> => Layer.effect(TestIssuer, make(options))

/** A valid access token from the `TestIssuer` in context (see `Service.mint`). */
export const mint = (claims?: Partial<Claims>, options?: MintOptions): Effect.Effect<string, never, TestIssuer> =>
  Effect.flatMap(TestIssuer, (issuer) => issuer.mint(claims, options))

/** A token the verifier must refuse (see `Service.forge`). */
export const forge = (kind: ForgeKind, claims?: Partial<Claims>): Effect.Effect<string, never, TestIssuer> =>
  Effect.flatMap(TestIssuer, (issuer) => issuer.forge(kind, claims))

/**
 * The core's `Auth` and `JwksVerifier` (default settings) trusting the `TestIssuer` in context, with no app around
 * them: its key set held in memory, its provider endpoints answered offline. For tests of code that verifies tokens.
 */
export const layerAuth: Layer.Layer<Auth.Auth | Jwks.JwksVerifier, never, TestIssuer> = Layer.unwrapEffect(
  Effect.map(TestIssuer, (issuer) =>
    Auth.layer({
      url: issuer.url,
      anonKey: Option.none(),
      negativeCacheTtl: Auth.defaults.negativeCacheTtl,
      negativeCacheMax: Auth.defaults.negativeCacheMax,
      introspectionBudget: Auth.defaults.introspectionBudget,
      tokenCacheTtl: Jwks.defaults.tokenCacheTtl,
      tokenCacheMax: Jwks.defaults.tokenCacheMax
    }).pipe(
      Layer.provideMerge(
        Jwks.layerStatic(issuer.keySet, {
          ...Jwks.defaults,
          issuer: issuer.issuer,
          audience: issuer.audience,
          legacySecret: Option.none()
        })
      ),
      Layer.provide([OfflineHttpClients.layer(issuer.handle), Readiness.layer().pipe(Layer.provide(Lifecycle.layer))])
    ))
)
