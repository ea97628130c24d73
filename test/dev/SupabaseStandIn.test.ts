import { afterAll, beforeAll, describe, expect, it, layer } from "@effect/vitest"
import { Context, Effect, Layer } from "effect"
import { createLocalJWKSet, decodeJwt, decodeProtectedHeader, type JSONWebKeySet, jwtVerify } from "jose"
import { createHash } from "node:crypto"
import { mkdtemp, readFile, rm, stat } from "node:fs/promises"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { Agent, fetch as undiciFetch } from "undici"
import {
  DEFAULT_ANON_KEY,
  DEFAULT_SERVICE_ROLE_KEY,
  type StandInUser,
  startSupabaseStandIn,
  SupabaseStandIn,
  type SupabaseStandInServer
} from "../../src/dev/SupabaseStandIn.js"

// -- helpers --------------------------------------------------------------------------------------

interface Reply {
  readonly status: number
  readonly headers: Headers
  readonly json: any
}

const call = async (
  s: SupabaseStandInServer,
  method: string,
  path: string,
  options: {
    readonly bearer?: string
    readonly apikey?: string | null
    readonly body?: unknown
    readonly headers?: Record<string, string>
  } = {}
): Promise<Reply> => {
  const headers: Record<string, string> = { ...options.headers }
  if (options.apikey !== null) headers["apikey"] = options.apikey ?? s.anonKey
  if (options.bearer !== undefined) headers["authorization"] = `Bearer ${options.bearer}`
  if (options.body !== undefined) headers["content-type"] = "application/json"
  const res = await fetch(`${s.url}${path}`, {
    method,
    headers,
    ...(options.body === undefined ? {} : { body: JSON.stringify(options.body) })
  })
  const text = await res.text()
  return { status: res.status, headers: res.headers, json: text === "" ? undefined : JSON.parse(text) }
}

const admin = (s: SupabaseStandInServer, method: string, path: string, body?: unknown) =>
  call(s, method, `/auth/v1/admin${path}`, {
    bearer: s.serviceRoleKey,
    apikey: s.serviceRoleKey,
    ...(body === undefined ? {} : { body })
  })

const getUser = (s: SupabaseStandInServer, token: string) => call(s, "GET", "/auth/v1/user", { bearer: token })

const fetchJwks = async (s: SupabaseStandInServer): Promise<JSONWebKeySet> =>
  (await (await fetch(`${s.url}/auth/v1/.well-known/jwks.json`)).json()) as JSONWebKeySet

/** The `code` of an error or of any error in its `cause` chain. */
const errorCode = (e: unknown): string | undefined => {
  let current: unknown = e
  for (let i = 0; i < 5 && current !== undefined && current !== null; i++) {
    const code = (current as { code?: unknown }).code
    if (typeof code === "string") return code
    current = (current as { cause?: unknown }).cause
  }
  return undefined
}

/** Fetch on a fresh connection (no pooled keep-alive socket). */
const freshFetch = async (url: string, init: { signal?: AbortSignal } = {}) => {
  const dispatcher = new Agent()
  try {
    const res = await undiciFetch(url, { ...init, dispatcher })
    await res.text()
    return res.status
  } finally {
    await dispatcher.close().catch(() => undefined)
  }
}

const caught = async (p: Promise<unknown>): Promise<unknown> => {
  try {
    await p
  } catch (e) {
    return e
  }
  throw new Error("expected a rejection")
}

const SUPABASE_CLAIMS = [
  "aal",
  "amr",
  "app_metadata",
  "aud",
  "email",
  "exp",
  "iat",
  "is_anonymous",
  "iss",
  "phone",
  "role",
  "session_id",
  "sub",
  "user_metadata"
]

// -- tests ----------------------------------------------------------------------------------------

describe("SupabaseStandIn: JWKS and tokens", () => {
  let s: SupabaseStandInServer
  beforeAll(async () => {
    s = await startSupabaseStandIn()
  })
  afterAll(() => s.stop())

  it("binds to loopback and exposes url / issuer", () => {
    expect(s.url).toBe(`http://127.0.0.1:${s.port}`)
    expect(s.port).toBeGreaterThan(0)
    expect(s.issuer).toBe(`${s.url}/auth/v1`)
    expect(s.serviceRoleKey).toBe(DEFAULT_SERVICE_ROLE_KEY)
    expect(s.anonKey).toBe(DEFAULT_ANON_KEY)
  })

  it("refuses a non-loopback host", async () => {
    await expect(startSupabaseStandIn({ host: "0.0.0.0" })).rejects.toThrow(/loopback/)
  })

  it("serves public JWKs with Supabase's shape and Cache-Control", async () => {
    const res = await fetch(`${s.url}/auth/v1/.well-known/jwks.json`)
    expect(res.status).toBe(200)
    expect(res.headers.get("cache-control")).toBe("public, max-age=600")
    expect(res.headers.get("content-type")).toBe("application/json")
    const body = (await res.json()) as { keys: Array<Record<string, unknown>> }
    expect(Object.keys(body)).toEqual(["keys"])
    expect(body.keys).toHaveLength(1)
    const key = body.keys[0]!
    expect(key).toMatchObject({
      kid: s.activeKid,
      alg: "ES256",
      use: "sig",
      key_ops: ["verify"],
      kty: "EC",
      crv: "P-256"
    })
    expect(typeof key["x"]).toBe("string")
    expect(typeof key["y"]).toBe("string")
    expect(key).not.toHaveProperty("d")
    expect(Object.keys(key).sort()).toEqual(["alg", "crv", "key_ops", "kid", "kty", "use", "x", "y"])
  })

  it("uses the configured JWKS max-age", async () => {
    const other = await startSupabaseStandIn({ jwksMaxAge: 30 })
    try {
      const res = await fetch(other.jwksUrl)
      expect(res.headers.get("cache-control")).toBe("public, max-age=30")
    } finally {
      await other.stop()
    }
  })

  it("signs tokens that verify against the served JWKS, with exactly Supabase's claims", async () => {
    const user = s.users.create({ email: "Claims@Example.com", password: "secret-pw", appMetadata: { role: "admin" } })
    const before = Math.floor(Date.now() / 1000)
    const { token } = await s.signTokenDetailed({ user })
    const jwks = createLocalJWKSet(await fetchJwks(s))
    const { payload, protectedHeader } = await jwtVerify(token, jwks, { issuer: s.issuer, audience: "authenticated" })
    expect(protectedHeader).toEqual({ alg: "ES256", kid: s.activeKid, typ: "JWT" })
    expect(Object.keys(payload).sort()).toEqual(SUPABASE_CLAIMS)
    expect(payload).not.toHaveProperty("nbf")
    expect(payload).not.toHaveProperty("jti")
    expect(payload.sub).toBe(user.id)
    expect(payload.aud).toBe("authenticated")
    expect(payload.iss).toBe(s.issuer)
    expect(payload["email"]).toBe("claims@example.com")
    expect(payload["phone"]).toBe("")
    expect(payload["role"]).toBe("authenticated")
    expect(payload["aal"]).toBe("aal1")
    expect(payload["is_anonymous"]).toBe(false)
    expect(payload["app_metadata"]).toEqual({ provider: "email", providers: ["email"], role: "admin" })
    expect(payload["user_metadata"]).toEqual({ email_verified: true })
    expect(payload.iat).toBeGreaterThanOrEqual(before)
    expect(payload.exp! - payload.iat!).toBe(3600)
    expect(payload["amr"]).toEqual([{ method: "password", timestamp: payload.iat }])
    expect(payload["session_id"]).toMatch(/^[0-9a-f-]{36}$/)
  })

  it("applies claim / header overrides, removals, expiresIn and iat", async () => {
    const token = await s.signToken({
      claims: { exp: undefined, role: "service_role", custom: 1 },
      header: { typ: undefined, x5u: "https://evil.example" },
      iat: 1_700_000_000
    })
    const header = decodeProtectedHeader(token)
    expect(header).toEqual({ alg: "ES256", kid: s.activeKid, x5u: "https://evil.example" })
    const payload = decodeJwt(token)
    expect(payload).not.toHaveProperty("exp")
    expect(payload.iat).toBe(1_700_000_000)
    expect(payload["role"]).toBe("service_role")
    expect(payload["custom"]).toBe(1)

    const short = decodeJwt(await s.signToken({ expiresIn: 60, iat: 1_700_000_000 }))
    expect(short.exp).toBe(1_700_000_060)
  })

  it("signRaw signs header and payload verbatim, even with a lying alg", async () => {
    const good = await s.signRaw({ alg: "ES256", kid: s.activeKid }, {
      sub: "x",
      exp: Math.floor(Date.now() / 1000) + 60
    })
    const jwks = createLocalJWKSet(await fetchJwks(s))
    await expect(jwtVerify(good, jwks)).resolves.toBeDefined()
    expect(decodeProtectedHeader(good)).toEqual({ alg: "ES256", kid: s.activeKid })

    const lying = await s.signRaw({ alg: "HS256", kid: s.activeKid, typ: "JWT" }, { sub: "x" })
    expect(decodeProtectedHeader(lying)).toEqual({ alg: "HS256", kid: s.activeKid, typ: "JWT" })
    expect(lying.split(".")).toHaveLength(3)
    await expect(jwtVerify(lying, jwks)).rejects.toThrow()

    const text = await s.signRaw({ alg: "ES256", kid: s.activeKid }, "not json")
    expect(Buffer.from(text.split(".")[1]!, "base64url").toString()).toBe("not json")
  })

  it("exposes private key material", () => {
    const jwk = s.privateJwk()
    expect(jwk).toMatchObject({ kid: s.activeKid, alg: "ES256", kty: "EC", crv: "P-256" })
    expect(typeof jwk.d).toBe("string")
    expect(s.publicJwk()).not.toHaveProperty("d")
  })

  it.each(["RS256", "EdDSA"] as const)("supports %s keys", async (alg) => {
    const other = await startSupabaseStandIn({ alg })
    try {
      const jwks = await fetchJwks(other)
      expect(jwks.keys[0]).toMatchObject({ alg, use: "sig", key_ops: ["verify"], kty: alg === "RS256" ? "RSA" : "OKP" })
      expect(jwks.keys[0]).not.toHaveProperty("d")
      const token = await other.signToken()
      const { protectedHeader } = await jwtVerify(token, createLocalJWKSet(jwks), { issuer: other.issuer })
      expect(protectedHeader.alg).toBe(alg)
      expect((await getUser(other, token)).status).toBe(200)
    } finally {
      await other.stop()
    }
  })
})

describe("SupabaseStandIn: GET /auth/v1/user", () => {
  let s: SupabaseStandInServer
  beforeAll(async () => {
    s = await startSupabaseStandIn()
  })
  afterAll(() => s.stop())

  it("returns the user of a valid token", async () => {
    const user = s.users.create({ email: "u1@example.com", userMetadata: { name: "U1" } })
    const res = await getUser(s, await s.signToken({ user }))
    expect(res.status).toBe(200)
    expect(res.json).toMatchObject({
      id: user.id,
      aud: "authenticated",
      role: "authenticated",
      email: "u1@example.com",
      phone: "",
      app_metadata: { provider: "email", providers: ["email"] },
      user_metadata: { name: "U1", email_verified: true },
      is_anonymous: false
    })
    expect(typeof res.json.created_at).toBe("string")
    expect(typeof res.json.updated_at).toBe("string")
    expect(res.json.identities[0]).toMatchObject({ provider: "email", user_id: user.id })
  })

  it("401 without Authorization, in Supabase's error shape", async () => {
    const res = await call(s, "GET", "/auth/v1/user")
    expect(res.status).toBe(401)
    expect(res.json).toEqual({
      code: 401,
      error_code: "no_authorization",
      msg: "This endpoint requires a Bearer token"
    })
    expect(res.headers.get("x-sb-error-code")).toBe("no_authorization")
  })

  it("401 without or with a wrong apikey", async () => {
    const token = await s.signToken()
    expect((await call(s, "GET", "/auth/v1/user", { bearer: token, apikey: null })).json).toMatchObject({
      code: 401,
      error_code: "no_api_key"
    })
    expect((await call(s, "GET", "/auth/v1/user", { bearer: token, apikey: "nope" })).json).toMatchObject({
      code: 401,
      error_code: "invalid_api_key"
    })
  })

  it("403 bad_jwt for expired, tampered, unknown-key, kid-less and garbage tokens", async () => {
    const expired = await s.signToken({ iat: Math.floor(Date.now() / 1000) - 7200, expiresIn: 3600 })
    const valid = await s.signToken()
    const [h, p] = valid.split(".")
    const tampered = `${h}.${p}.${Buffer.from("x".repeat(64)).toString("base64url")}`
    const kidless = await s.signToken({ header: { kid: undefined } })
    const unknown = await s.unknownKeyToken()
    const kidCollision = await s.unknownKeyToken({ header: { kid: s.activeKid } })
    for (const token of [expired, tampered, kidless, unknown, kidCollision, "garbage"]) {
      const res = await getUser(s, token)
      expect(res.status, token).toBe(403)
      expect(res.json).toMatchObject({ code: 403, error_code: "bad_jwt" })
      expect(res.json.msg).toMatch(/^invalid JWT/)
    }
    expect((await getUser(s, expired)).json.msg).toMatch(/expired/)
  })

  it("403 for a deleted user and for a revoked session", async () => {
    const user = s.users.create({ email: "gone@example.com" })
    const token = await s.signToken({ user })
    s.users.delete(user.id)
    expect((await getUser(s, token)).json).toMatchObject({ code: 403, error_code: "user_not_found" })

    const { token: t2, payload } = await s.signTokenDetailed()
    expect((await getUser(s, t2)).status).toBe(200)
    expect(s.revokeSession(payload["session_id"] as string)).toBe(true)
    expect((await getUser(s, t2)).json).toMatchObject({ code: 403, error_code: "session_not_found" })
  })
})

describe("SupabaseStandIn: admin API", () => {
  let s: SupabaseStandInServer
  beforeAll(async () => {
    s = await startSupabaseStandIn({ serviceRoleKey: "svc-secret", anonKey: "anon-public" })
  })
  afterAll(() => s.stop())

  it("creates, gets, updates and deletes a user", async () => {
    const created = await admin(s, "POST", "/users", {
      email: "Admin.Created@Example.com",
      password: "pw-123456",
      email_confirm: true,
      user_metadata: { name: "A" },
      app_metadata: { role: "admin" }
    })
    expect(created.status).toBe(200)
    const user = created.json as StandInUser
    expect(user.id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/)
    expect(user).toMatchObject({
      email: "admin.created@example.com",
      aud: "authenticated",
      role: "authenticated",
      app_metadata: { provider: "email", providers: ["email"], role: "admin" },
      user_metadata: { name: "A", email_verified: true }
    })
    expect(typeof user.email_confirmed_at).toBe("string")
    expect(user).not.toHaveProperty("password")

    const got = await admin(s, "GET", `/users/${user.id}`)
    expect(got.status).toBe(200)
    expect(got.json).toEqual(user)

    const updated = await admin(s, "PUT", `/users/${user.id}`, {
      email: "renamed@example.com",
      app_metadata: { role: null, tier: "gold" },
      user_metadata: { name: "B" },
      ban_duration: "none"
    })
    expect(updated.status).toBe(200)
    expect(updated.json).toMatchObject({
      id: user.id,
      email: "renamed@example.com",
      app_metadata: { provider: "email", providers: ["email"], tier: "gold" },
      user_metadata: { name: "B", email_verified: true }
    })
    expect(updated.json.app_metadata).not.toHaveProperty("role")

    const deleted = await admin(s, "DELETE", `/users/${user.id}`)
    expect(deleted.status).toBe(200)
    expect(deleted.json).toEqual({})
    expect((await admin(s, "GET", `/users/${user.id}`)).json).toMatchObject({ code: 404, error_code: "user_not_found" })
    expect((await admin(s, "DELETE", `/users/${user.id}`)).status).toBe(404)
  })

  it("404 for a malformed or unknown id", async () => {
    const malformed = await admin(s, "GET", "/users/not-a-uuid")
    expect(malformed.status).toBe(404)
    expect(malformed.json).toMatchObject({ code: 404, msg: "user_id must be an UUID" })
    expect((await admin(s, "PUT", "/users/8c3f3a4e-2f27-4b55-9d39-3f4e0d8f0b11", { email: "x@example.com" })).json)
      .toMatchObject({
        code: 404,
        error_code: "user_not_found"
      })
  })

  it("rejects duplicate and invalid emails", async () => {
    expect((await admin(s, "POST", "/users", { email: "dup@example.com" })).status).toBe(200)
    const dup = await admin(s, "POST", "/users", { email: "DUP@example.com" })
    expect(dup.status).toBe(422)
    expect(dup.json).toEqual({
      code: 422,
      error_code: "email_exists",
      msg: "A user with this email address has already been registered"
    })
    const invalid = await admin(s, "POST", "/users", { email: "not-an-email" })
    expect(invalid.status).toBe(400)
    expect(invalid.json).toMatchObject({ code: 400, error_code: "validation_failed" })
    const weak = await admin(s, "POST", "/users", { email: "weak@example.com", password: "123" })
    expect(weak.json).toMatchObject({ code: 422, error_code: "weak_password" })
    const notJson = await admin(s, "POST", "/users", { email: 42 })
    expect(notJson.json).toMatchObject({ code: 400, error_code: "bad_json" })
  })

  it("refuses a body nested deeper than it can keep (400 bad_json), and every later answer still works", async () => {
    const post = (body: string) =>
      fetch(`${s.url}/auth/v1/admin/users`, {
        method: "POST",
        headers: {
          authorization: `Bearer ${s.serviceRoleKey}`,
          apikey: s.serviceRoleKey,
          "content-type": "application/json"
        },
        body
      })
    const nested = (email: string, depth: number) =>
      `{"email":"${email}","user_metadata":${"{\"a\":".repeat(depth)}1${"}".repeat(depth)}}`
    for (const depth of [600, 3000, 20_000]) {
      const deep = await post(nested(`deep-${depth}@example.com`, depth))
      expect(deep.status).toBe(400)
      expect(await deep.json()).toMatchObject({ code: 400, error_code: "bad_json" })
    }
    // Deep but within the limit: stored, and every later list can still serialise it.
    expect((await post(nested("deep-ok@example.com", 500))).status).toBe(200)
    const listed = await admin(s, "GET", "/users?per_page=1000")
    expect(listed.status).toBe(200)
    expect(listed.json.users.map((u: StandInUser) => u.email)).toContain("deep-ok@example.com")
  })

  it("answers a body over its size limit with a readable 413, not a reset connection", async () => {
    const big = await admin(s, "POST", "/users", {
      email: "big@example.com",
      user_metadata: { a: "x".repeat(1100 * 1024) }
    })
    expect(big.status).toBe(413)
    expect(big.json).toMatchObject({ code: 413, error_code: "request_too_large" })
  })

  it("rejects missing, wrong and non-admin credentials", async () => {
    const missing = await call(s, "GET", "/auth/v1/admin/users", { apikey: "anon-public" })
    expect(missing.status).toBe(401)
    expect(missing.json).toMatchObject({ code: 401, error_code: "no_authorization" })
    const wrong = await call(s, "GET", "/auth/v1/admin/users", { bearer: "not-the-key", apikey: "anon-public" })
    expect(wrong.status).toBe(403)
    expect(wrong.json).toMatchObject({ code: 403, error_code: "bad_jwt" })
    const userToken = await s.signToken()
    const notAdmin = await call(s, "GET", "/auth/v1/admin/users", { bearer: userToken, apikey: "anon-public" })
    expect(notAdmin.json).toMatchObject({ code: 403, error_code: "not_admin", msg: "User not allowed" })
    const defaultKey = await call(s, "GET", "/auth/v1/admin/users", {
      bearer: DEFAULT_SERVICE_ROLE_KEY,
      apikey: "anon-public"
    })
    expect(defaultKey.status).toBe(403)
    const serviceJwt = await s.signToken({ claims: { role: "service_role" } })
    expect((await call(s, "GET", "/auth/v1/admin/users", { bearer: serviceJwt, apikey: "anon-public" })).status).toBe(
      200
    )
    expect((await call(s, "GET", "/auth/v1/admin/users", { bearer: "svc-secret", apikey: null })).status).toBe(401)
  })

  it("paginates like GoTrue: X-Total-Count and Link next/last", async () => {
    const p = await startSupabaseStandIn()
    try {
      const emails = Array.from({ length: 7 }, (_, i) => `page${i + 1}@example.com`)
      for (const email of emails) expect((await admin(p, "POST", "/users", { email })).status).toBe(200)

      const page1 = await admin(p, "GET", "/users?page=1&per_page=3")
      expect(page1.status).toBe(200)
      expect(page1.json.aud).toBe("authenticated")
      expect(page1.headers.get("x-total-count")).toBe("7")
      expect(page1.headers.get("link")).toBe(
        "</auth/v1/admin/users?page=2&per_page=3>; rel=\"next\", </auth/v1/admin/users?page=3&per_page=3>; rel=\"last\""
      )
      // newest first (created_at desc)
      expect(page1.json.users.map((u: StandInUser) => u.email)).toEqual([
        "page7@example.com",
        "page6@example.com",
        "page5@example.com"
      ])

      const page3 = await admin(p, "GET", "/users?per_page=3&page=3")
      expect(page3.json.users.map((u: StandInUser) => u.email)).toEqual(["page1@example.com"])
      expect(page3.headers.get("link")).toBe("</auth/v1/admin/users?page=3&per_page=3>; rel=\"last\"")

      const all = await admin(p, "GET", "/users")
      expect(all.json.users).toHaveLength(7)
      expect(all.headers.get("link")).toBe("</auth/v1/admin/users?page=1>; rel=\"last\"")

      const beyond = await admin(p, "GET", "/users?page=9&per_page=3")
      expect(beyond.json.users).toEqual([])
      expect((await admin(p, "GET", "/users?per_page=0")).json).toMatchObject({
        code: 400,
        error_code: "validation_failed"
      })
    } finally {
      await p.stop()
    }
  })

  it("generate_link returns the user with action_link, email_otp, hashed_token, redirect_to, verification_type", async () => {
    const signup = await admin(s, "POST", "/generate_link", {
      type: "signup",
      email: "Link@Example.com",
      password: "pw-123456"
    })
    expect(signup.status).toBe(200)
    const body = signup.json
    expect(body.email).toBe("link@example.com")
    expect(body.id).toMatch(/^[0-9a-f-]{36}$/)
    expect(body.verification_type).toBe("signup")
    expect(body.email_otp).toMatch(/^\d{6}$/)
    expect(body.hashed_token).toBe(createHash("sha224").update(`link@example.com${body.email_otp}`).digest("hex"))
    expect(body.redirect_to).toBe(s.url)
    const action = new URL(body.action_link)
    expect(`${action.origin}${action.pathname}`).toBe(`${s.issuer}/verify`)
    expect(action.searchParams.get("token")).toBe(body.hashed_token)
    expect(action.searchParams.get("type")).toBe("signup")
    expect(typeof body.confirmation_sent_at).toBe("string")

    const recovery = await admin(s, "POST", "/generate_link", {
      type: "recovery",
      email: "link@example.com",
      redirect_to: "http://app.local/cb"
    })
    expect(recovery.json).toMatchObject({
      id: body.id,
      verification_type: "recovery",
      redirect_to: "http://app.local/cb"
    })
    expect((await admin(s, "POST", "/generate_link", { type: "recovery", email: "nobody@example.com" })).json)
      .toMatchObject({
        code: 404,
        error_code: "user_not_found"
      })
    const magic = await admin(s, "POST", "/generate_link", { type: "magiclink", email: "new-magic@example.com" })
    expect(magic.json.verification_type).toBe("signup")
    const invite = await admin(s, "POST", "/generate_link", { type: "invite", email: "invitee@example.com" })
    expect(invite.json.verification_type).toBe("invite")
    expect(typeof invite.json.invited_at).toBe("string")
    expect((await admin(s, "POST", "/generate_link", { type: "bogus", email: "a@example.com" })).status).toBe(400)
  })
})

describe("SupabaseStandIn: password grant", () => {
  let s: SupabaseStandInServer
  beforeAll(async () => {
    s = await startSupabaseStandIn({ tokenTtlSeconds: 900 })
  })
  afterAll(() => s.stop())

  it("mints a session whose token the JWKS verifies and /user accepts; refresh rotates", async () => {
    const created = await admin(s, "POST", "/users", {
      email: "login@example.com",
      password: "pw-123456",
      email_confirm: true
    })
    const res = await call(s, "POST", "/auth/v1/token?grant_type=password", {
      body: { email: "login@example.com", password: "pw-123456" }
    })
    expect(res.status).toBe(200)
    expect(Object.keys(res.json).sort()).toEqual([
      "access_token",
      "expires_at",
      "expires_in",
      "refresh_token",
      "token_type",
      "user"
    ])
    expect(res.json.token_type).toBe("bearer")
    expect(res.json.expires_in).toBe(900)
    expect(res.json.user.id).toBe(created.json.id)
    expect(typeof res.json.user.last_sign_in_at).toBe("string")
    const { payload } = await jwtVerify(res.json.access_token, createLocalJWKSet(await fetchJwks(s)), {
      issuer: s.issuer
    })
    expect(payload.sub).toBe(created.json.id)
    expect(payload.exp).toBe(res.json.expires_at)
    expect(payload.exp! - payload.iat!).toBe(900)
    expect(payload["amr"]).toEqual([{ method: "password", timestamp: payload.iat }])
    expect((await getUser(s, res.json.access_token)).json.id).toBe(created.json.id)

    const refreshed = await call(s, "POST", "/auth/v1/token?grant_type=refresh_token", {
      body: { refresh_token: res.json.refresh_token }
    })
    expect(refreshed.status).toBe(200)
    expect(decodeJwt(refreshed.json.access_token)["session_id"]).toBe(payload["session_id"])
    expect(refreshed.json.refresh_token).not.toBe(res.json.refresh_token)
    const reused = await call(s, "POST", "/auth/v1/token?grant_type=refresh_token", {
      body: { refresh_token: res.json.refresh_token }
    })
    expect(reused.json).toMatchObject({ code: 400, error_code: "refresh_token_already_used" })

    // an admin password change ends the user's sessions
    await admin(s, "PUT", `/users/${created.json.id}`, { password: "new-pw-123" })
    expect((await getUser(s, res.json.access_token)).json).toMatchObject({ code: 403, error_code: "session_not_found" })
  })

  it("400 invalid_credentials / email_not_confirmed", async () => {
    s.users.create({ email: "pw@example.com", password: "right-pw" })
    const wrong = await call(s, "POST", "/auth/v1/token?grant_type=password", {
      body: { email: "pw@example.com", password: "wrong-pw" }
    })
    expect(wrong.status).toBe(400)
    expect(wrong.json).toEqual({ code: 400, error_code: "invalid_credentials", msg: "Invalid login credentials" })
    const unknown = await call(s, "POST", "/auth/v1/token?grant_type=password", {
      body: { email: "who@example.com", password: "x" }
    })
    expect(unknown.json).toMatchObject({ error_code: "invalid_credentials" })
    s.users.create({ email: "unconfirmed@example.com", password: "right-pw", emailConfirm: false })
    const unconfirmed = await call(s, "POST", "/auth/v1/token?grant_type=password", {
      body: { email: "unconfirmed@example.com", password: "right-pw" }
    })
    expect(unconfirmed.json).toMatchObject({ code: 400, error_code: "email_not_confirmed" })
    const unsupported = await call(s, "POST", "/auth/v1/token?grant_type=magic", { body: {} })
    expect(unsupported.status).toBe(400)
  })
})

describe("SupabaseStandIn: key rotation", () => {
  let s: SupabaseStandInServer
  beforeAll(async () => {
    s = await startSupabaseStandIn()
  })
  afterAll(() => s.stop())

  it("standby is published, activation switches signing, revocation unpublishes and rejects", async () => {
    const first = s.activeKid
    const oldToken = await s.signToken()

    const second = await s.addStandbyKey("RS256")
    let jwks = await fetchJwks(s)
    expect(jwks.keys.map((k) => k.kid)).toEqual([first, second])
    expect(jwks.keys[1]).toMatchObject({ alg: "RS256", use: "sig", key_ops: ["verify"] })
    expect(decodeProtectedHeader(await s.signToken()).kid).toBe(first)

    await s.activateKey(second)
    expect(s.activeKid).toBe(second)
    const newToken = await s.signToken()
    expect(decodeProtectedHeader(newToken)).toMatchObject({ kid: second, alg: "RS256" })
    jwks = await fetchJwks(s)
    expect(jwks.keys.map((k) => k.kid)).toEqual([second, first])
    expect((await getUser(s, oldToken)).status).toBe(200)
    expect((await getUser(s, newToken)).status).toBe(200)
    expect(s.keyInfo().find((k) => k.kid === first)?.status).toBe("standby")

    await s.revokeKey(first)
    jwks = await fetchJwks(s)
    expect(jwks.keys.map((k) => k.kid)).toEqual([second])
    const rejected = await getUser(s, oldToken)
    expect(rejected.status).toBe(403)
    expect(rejected.json.error_code).toBe("bad_jwt")
    // tests may still sign with the revoked key
    const revokedSigned = await s.signToken({ kid: first })
    expect(decodeProtectedHeader(revokedSigned).kid).toBe(first)
    expect((await getUser(s, revokedSigned)).status).toBe(403)
    await expect(jwtVerify(revokedSigned, createLocalJWKSet(jwks))).rejects.toThrow()

    await expect(s.revokeKey(second)).rejects.toThrow(/active/)
    await expect(s.activateKey(first)).rejects.toThrow(/revoked/)
  })

  it("unknownKeyToken uses a key that never appears in the JWKS", async () => {
    const token = await s.unknownKeyToken()
    const kid = decodeProtectedHeader(token).kid
    const jwks = await fetchJwks(s)
    expect(jwks.keys.map((k) => k.kid)).not.toContain(kid)
    await expect(jwtVerify(token, createLocalJWKSet(jwks))).rejects.toThrow()
  })
})

describe("SupabaseStandIn: failure injection", () => {
  let s: SupabaseStandInServer
  beforeAll(async () => {
    s = await startSupabaseStandIn()
  })
  afterAll(() => s.stop())

  it("Refuse gives ECONNREFUSED and recovers on the same port", async () => {
    const port = s.port
    expect(await freshFetch(s.jwksUrl)).toBe(200)
    await s.setFailure({ _tag: "Refuse" })
    const error = await caught(freshFetch(s.jwksUrl))
    expect(errorCode(error)).toBe("ECONNREFUSED")
    const viaGlobalFetch = await caught(fetch(s.jwksUrl))
    expect(errorCode(viaGlobalFetch)).toMatch(/ECONNREFUSED|UND_ERR_SOCKET|ECONNRESET/)
    await s.clearFailure()
    expect(s.port).toBe(port)
    expect(await freshFetch(s.jwksUrl)).toBe(200)
    expect((await fetch(s.jwksUrl)).status).toBe(200)
  })

  it("Hang never answers (client timeout) and releases pending requests when cleared", async () => {
    await s.setFailure({ _tag: "Hang" }, "user")
    const timedOut = await caught(
      fetch(`${s.url}/auth/v1/user`, { signal: AbortSignal.timeout(300), headers: { apikey: s.anonKey } })
    )
    expect((timedOut as Error).name).toBe("TimeoutError")
    // other groups are unaffected by a scoped failure
    expect((await fetch(s.jwksUrl)).status).toBe(200)
    const pending = fetch(`${s.url}/auth/v1/user`, { headers: { apikey: s.anonKey } })
    await new Promise((r) => setTimeout(r, 50))
    await s.clearFailure("user")
    const released = await pending
    expect(released.status).toBe(401)
    await released.text()
  })

  it("Status answers the status with Retry-After and Supabase's body", async () => {
    await s.setFailure({ _tag: "Status", status: 503, retryAfter: 7 }, "jwks")
    const res = await fetch(s.jwksUrl)
    expect(res.status).toBe(503)
    expect(res.headers.get("retry-after")).toBe("7")
    expect(await res.json()).toEqual({ code: 503, error_code: "unexpected_failure", msg: "Stand-in injected failure" })
    // scoped: the user group still answers normally
    expect((await call(s, "GET", "/auth/v1/user")).status).toBe(401)

    await s.setFailure({ _tag: "Status", status: 429 })
    const limited = await call(s, "GET", "/auth/v1/user", { bearer: await s.signToken() })
    expect(limited.status).toBe(429)
    expect(limited.headers.get("retry-after")).toBeNull()
    expect(limited.json).toMatchObject({ code: 429, error_code: "over_request_rate_limit" })
    await s.setFailure({ _tag: "Status", status: 520, body: "<html>cloudflare</html>" }, "admin")
    const html = await admin(s, "GET", "/users").catch((e: unknown) => e)
    expect(html).toBeInstanceOf(SyntaxError)

    await s.clearFailure()
    expect((await fetch(s.jwksUrl)).status).toBe(200)
    expect((await admin(s, "GET", "/users")).status).toBe(200)
  })

  it("stop() closes hung requests and the server", async () => {
    const other = await startSupabaseStandIn()
    await other.setFailure({ _tag: "Hang" })
    const pending = caught(fetch(other.jwksUrl))
    await new Promise((r) => setTimeout(r, 50))
    expect(other.counts.jwks).toBe(1)
    await other.stop()
    expect(await pending).toBeInstanceOf(Error)
    expect(errorCode(await caught(freshFetch(other.jwksUrl)))).toBe("ECONNREFUSED")
  })
})

describe("SupabaseStandIn: observability", () => {
  it("counts requests per path group and keeps a bounded log with x-request-id", async () => {
    const s = await startSupabaseStandIn({ requestLogLimit: 3 })
    try {
      await fetch(s.jwksUrl)
      s.resetCounts()
      expect(s.counts).toEqual({ jwks: 0, user: 0, admin: 0, token: 0, other: 0 })
      expect(s.requests).toEqual([])

      await fetch(s.jwksUrl)
      await fetch(s.jwksUrl, { headers: { "x-request-id": "req-1" } })
      await call(s, "GET", "/auth/v1/user", { headers: { "x-request-id": "req-2" } })
      await admin(s, "GET", "/users")
      await call(s, "POST", "/auth/v1/token?grant_type=password", { body: { email: "a@example.com", password: "x" } })
      await fetch(`${s.url}/nope`)
      expect(s.counts).toEqual({ jwks: 2, user: 1, admin: 1, token: 1, other: 1 })
      expect(s.requests).toHaveLength(3)
      expect(s.requests.map((r) => r.group)).toEqual(["admin", "token", "other"])

      s.resetCounts()
      await fetch(s.jwksUrl, { headers: { "x-request-id": "req-3" } })
      expect(s.requests).toHaveLength(1)
      expect(s.requests[0]).toMatchObject({
        method: "GET",
        path: "/auth/v1/.well-known/jwks.json",
        group: "jwks",
        requestId: "req-3"
      })
      expect(s.requests[0]!.headers["x-request-id"]).toBe("req-3")
      expect(s.counts.jwks).toBe(1)
    } finally {
      await s.stop()
    }
  })
})

describe("SupabaseStandIn: keyFile persistence", () => {
  let dir: string
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "stand-in-keys-"))
  })
  afterAll(() => rm(dir, { recursive: true, force: true }))

  it("a second instance with the same keyFile signs tokens the first one's JWKS verifies", async () => {
    const keyFile = join(dir, "nested", "keys.json")
    const first = await startSupabaseStandIn({ keyFile })
    try {
      const file = JSON.parse(await readFile(keyFile, "utf8")) as { keys: Array<Record<string, unknown>> }
      expect(file.keys).toHaveLength(1)
      expect(file.keys[0]).toMatchObject({ kid: first.activeKid, alg: "ES256", status: "active", kty: "EC" })
      expect(typeof file.keys[0]!["d"]).toBe("string")
      expect((await stat(keyFile)).mode & 0o777).toBe(0o600)

      const second = await startSupabaseStandIn({ keyFile, publicUrl: first.url, alg: "RS256" })
      try {
        expect(second.activeKid).toBe(first.activeKid)
        const token = await second.signToken()
        const { payload } = await jwtVerify(token, createLocalJWKSet(await fetchJwks(first)), { issuer: first.issuer })
        expect(payload.iss).toBe(first.issuer)
      } finally {
        await second.stop()
      }

      const standby = await first.addStandbyKey("EdDSA")
      await first.activateKey(standby)
      const third = await startSupabaseStandIn({ keyFile })
      try {
        expect(third.activeKid).toBe(standby)
        expect((await fetchJwks(third)).keys.map((k) => k.kid)).toEqual((await fetchJwks(first)).keys.map((k) => k.kid))
        const token = await third.signToken()
        await expect(jwtVerify(token, createLocalJWKSet(await fetchJwks(first)))).resolves.toBeDefined()
      } finally {
        await third.stop()
      }
    } finally {
      await first.stop()
    }
  })

  it("rejects a corrupt key file", async () => {
    const keyFile = join(dir, "corrupt.json")
    await import("node:fs/promises").then((fs) => fs.writeFile(keyFile, "{not json"))
    await expect(startSupabaseStandIn({ keyFile })).rejects.toThrow(/not valid JSON/)
  })
})

layer(SupabaseStandIn.layer({ alg: "EdDSA" }))("SupabaseStandIn: Effect layer", (it) => {
  it.effect("provides a running stand-in", () =>
    Effect.gen(function*() {
      const s = yield* SupabaseStandIn
      const jwks = yield* Effect.promise(() => fetchJwks(s))
      expect(jwks.keys[0]).toMatchObject({ alg: "EdDSA", kid: s.activeKid })
      const token = yield* Effect.promise(() => s.signToken())
      const res = yield* Effect.promise(() => getUser(s, token))
      expect(res.status).toBe(200)
    }))

  it.effect("stops the server when the layer's scope closes", () =>
    Effect.gen(function*() {
      const url = yield* Effect.scoped(
        Effect.gen(function*() {
          const context = yield* Layer.build(SupabaseStandIn.layer())
          const s = Context.get(context, SupabaseStandIn)
          expect(yield* Effect.promise(() => freshFetch(s.jwksUrl))).toBe(200)
          return s.jwksUrl
        })
      )
      const error = yield* Effect.promise(() => caught(freshFetch(url)))
      expect(errorCode(error)).toBe("ECONNREFUSED")
    }))
})
