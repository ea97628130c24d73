/**
 * A local stand-in for Supabase Auth (GoTrue), for tests and as the development issuer.
 *
 * It speaks Supabase Auth's HTTP contract under `/auth/v1` on loopback only, with `node:http` and
 * real JWTs signed by jose (ES256 by default; RS256 and EdDSA per key):
 *
 * - `GET  /auth/v1/.well-known/jwks.json`  public keys (active + standby), `Cache-Control: public, max-age=600`
 * - `GET  /auth/v1/user`                   the user of a bearer access token (401 no header, 403 `bad_jwt`, ...)
 * - `POST /auth/v1/token?grant_type=password|refresh_token`
 * - `GET|POST /auth/v1/admin/users`, `GET|PUT|DELETE /auth/v1/admin/users/{id}`,
 *   `POST /auth/v1/admin/generate_link`, `POST /auth/v1/invite` (service-role bearer)
 * - `GET  /auth/v1/health`
 *
 * Every endpoint but the JWKS and health also wants an `apikey` header (the anon or service-role key),
 * as Supabase's gateway does. Errors use Supabase's body `{"code": <status>, "error_code": "...", "msg": "..."}`.
 *
 * Tests drive it directly: `signToken` / `signRaw` / `unknownKeyToken` craft tokens, `addStandbyKey` /
 * `activateKey` / `revokeKey` rotate keys, `setFailure` / `clearFailure` inject outages (refused
 * connections, hanging requests, error statuses), `counts` / `requests` observe traffic.
 *
 * Plain use: `const s = await startSupabaseStandIn(); ...; await s.stop()`.
 * Effect use: `it.layer(SupabaseStandIn.layer())(...)`, then `yield* SupabaseStandIn`.
 *
 * Persistence: with `keyFile` the signing keys (private JWKs, with their status) are loaded from that
 * JSON file or created and written to it, and every rotation is written back; users, sessions and
 * refresh tokens always stay in memory. A second process started with the same `keyFile` (and
 * `publicUrl` set to the running server's URL) signs tokens the running server's JWKS verifies; to get
 * a token that `/user` also accepts, create the user and use the password grant against the running server.
 */
import { Context, Effect, Layer } from "effect"
import { decodeProtectedHeader, errors as joseErrors, type JWK } from "jose"
import { randomUUID } from "node:crypto"
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http"
import type { Socket } from "node:net"
import {
  adminUserParams,
  defined,
  errorCodeForStatus,
  generateLink,
  groupOf,
  listUsers,
  optString,
  parseJsonBody,
  type PathGroup,
  sendError,
  sendJson,
  setOrDelete
} from "./SupabaseStandInHttp.js"
import { type StandInAlg, type StandInKeyInfo, StandInKeyStore, type StandInPublicJwk } from "./SupabaseStandInKeys.js"
import {
  type CreateUserInput,
  isUuid,
  type StandInUser,
  StandInUserStore,
  SupabaseStandInError,
  type UpdateUserInput
} from "./SupabaseStandInStore.js"

export { StandInKeyStore, SupabaseStandInError }
export type { PathGroup } from "./SupabaseStandInHttp.js"
export type { CreateUserInput, StandInAlg, StandInKeyInfo, StandInPublicJwk, StandInUser, UpdateUserInput }

export const DEFAULT_SERVICE_ROLE_KEY = "stand-in-service-role-key"
export const DEFAULT_ANON_KEY = "stand-in-anon-key"

export interface SupabaseStandInOptions {
  /** Loopback only: "127.0.0.1" (default), "::1" or "localhost". */
  readonly host?: string
  /** 0 (default) picks a free port. */
  readonly port?: number
  /** Algorithm of the first key (ignored when `keyFile` already holds keys). Default ES256. */
  readonly alg?: StandInAlg
  readonly serviceRoleKey?: string
  readonly anonKey?: string
  /** `max-age` of the JWKS `Cache-Control`. Default 600. */
  readonly jwksMaxAge?: number
  /** Access-token lifetime in seconds. Default 3600. */
  readonly tokenTtlSeconds?: number
  /** JSON file holding the private key set (JWK form); created when missing. */
  readonly keyFile?: string
  /** Base URL used in `iss` and action links instead of the bound URL (no trailing slash). */
  readonly publicUrl?: string
  /** Require the `apikey` header on /user, /token and admin endpoints. Default true. */
  readonly requireApiKey?: boolean
  /** How many recent requests `requests` keeps. Default 200. */
  readonly requestLogLimit?: number
}

export type FailureScope = "jwks" | "user" | "admin" | "token" | "all"

export type FailureMode =
  | { readonly _tag: "Refuse" }
  | { readonly _tag: "Hang" }
  | { readonly _tag: "Status"; readonly status: number; readonly retryAfter?: number; readonly body?: string }

export interface RecordedRequest {
  readonly at: number
  readonly method: string
  /** Path without the query string. */
  readonly path: string
  readonly query: string
  readonly group: PathGroup
  readonly headers: Readonly<Record<string, string>>
  readonly requestId: string | undefined
}

export interface SignTokenOptions {
  /** The user (an object from `users`, or an id in the store). Default: a new random confirmed user. */
  readonly user?: StandInUser | string
  /** Claim overrides; a key set to `undefined` removes the claim. */
  readonly claims?: Readonly<Record<string, unknown>>
  /** Header overrides / extra fields; a key set to `undefined` removes it. */
  readonly header?: Readonly<Record<string, unknown>>
  /** Key to sign with (any key, even revoked). Default: the active key. */
  readonly kid?: string
  /** Lifetime in seconds (exp = iat + expiresIn). Default `tokenTtlSeconds`. */
  readonly expiresIn?: number
  /** Issued-at, seconds since the epoch. Default now. */
  readonly iat?: number
  /** Session id claim. Default a new UUID (registered as a live session). */
  readonly sessionId?: string
}

export interface SignedToken {
  readonly token: string
  readonly header: Readonly<Record<string, unknown>>
  readonly payload: Readonly<Record<string, unknown>>
  readonly user: StandInUser
}

export interface StandInCounts {
  jwks: number
  user: number
  admin: number
  token: number
  other: number
}

const LOOPBACK = new Set(["127.0.0.1", "::1", "localhost"])
const BEARER_RE = /^(?:B|b)earer (\S+$)/
const NIL_UUID = "00000000-0000-0000-0000-000000000000"

// -------------------------------------------------------------------------------------------------

export class SupabaseStandInServer {
  /** Requests received per path group since start or the last `resetCounts()` (live object). */
  readonly counts: StandInCounts = { jwks: 0, user: 0, admin: 0, token: 0, other: 0 }
  readonly users: {
    /** Creates a user directly (like the admin API, but `emailConfirm` defaults to true). */
    readonly create: (input: CreateUserInput) => StandInUser
    readonly update: (id: string, input: UpdateUserInput) => StandInUser
    readonly delete: (id: string) => void
    readonly get: (id: string) => StandInUser | undefined
    readonly getByEmail: (email: string) => StandInUser | undefined
    readonly list: () => Array<StandInUser>
    readonly clear: () => void
  }

  private readonly server: Server
  private readonly sockets = new Set<Socket>()
  private readonly log: Array<RecordedRequest> = []
  private readonly failures = new Map<FailureScope, Exclude<FailureMode, { _tag: "Refuse" }>>()
  private readonly hung = new Set<{ readonly group: PathGroup; readonly release: () => void }>()
  private refusedScope: FailureScope | undefined
  private listening = false
  private stopped = false
  private boundPort = 0

  private constructor(
    private readonly options: SupabaseStandInOptions,
    private readonly keys: StandInKeyStore,
    private readonly store: StandInUserStore
  ) {
    this.server = createServer((req, res) => void this.handle(req, res))
    this.server.requestTimeout = 0 // a "Hang" failure must hang until cleared
    this.server.on("connection", (socket) => {
      this.sockets.add(socket)
      socket.on("close", () => this.sockets.delete(socket))
    })
    this.users = {
      create: (input) => store.create({ emailConfirm: true, ...input }),
      update: (id, input) => store.update(id, input),
      delete: (id) => store.delete(id),
      get: (id) => store.get(id),
      getByEmail: (email) => store.getByEmail(email),
      list: () => store.list(),
      clear: () => store.clear()
    }
  }

  static async start(options: SupabaseStandInOptions = {}): Promise<SupabaseStandInServer> {
    const host = options.host ?? "127.0.0.1"
    if (!LOOPBACK.has(host)) throw new Error(`Supabase stand-in binds to loopback only, not ${host}`)
    const keys = await StandInKeyStore.make({ alg: options.alg ?? "ES256", keyFile: options.keyFile })
    const server = new SupabaseStandInServer(options, keys, new StandInUserStore())
    await server.listen(options.port ?? 0)
    return server
  }

  // -- addresses -----------------------------------------------------------------------------------

  get host(): string {
    return this.options.host ?? "127.0.0.1"
  }
  get port(): number {
    return this.boundPort
  }
  /** Bound base URL, e.g. `http://127.0.0.1:54321` (no trailing slash). */
  get url(): string {
    return `http://${this.host.includes(":") ? `[${this.host}]` : this.host}:${this.boundPort}`
  }
  /** `{publicUrl ?? url}/auth/v1`: the `iss` of every token. */
  get issuer(): string {
    return `${this.options.publicUrl ?? this.url}/auth/v1`
  }
  private get linkUrls(): { readonly issuer: string; readonly siteUrl: string } {
    return { issuer: this.issuer, siteUrl: this.options.publicUrl ?? this.url }
  }
  get jwksUrl(): string {
    return `${this.url}/auth/v1/.well-known/jwks.json`
  }
  get serviceRoleKey(): string {
    return this.options.serviceRoleKey ?? DEFAULT_SERVICE_ROLE_KEY
  }
  get anonKey(): string {
    return this.options.anonKey ?? DEFAULT_ANON_KEY
  }
  get tokenTtlSeconds(): number {
    return this.options.tokenTtlSeconds ?? 3600
  }

  // -- lifecycle -----------------------------------------------------------------------------------

  private listen(port: number): Promise<void> {
    return new Promise((resolve, reject) => {
      const onError = (e: Error) => reject(e)
      this.server.once("error", onError)
      this.server.listen(port, this.host, () => {
        this.server.off("error", onError)
        const address = this.server.address()
        if (address !== null && typeof address === "object") this.boundPort = address.port
        this.listening = true
        resolve()
      })
    })
  }

  private async closeListener(): Promise<void> {
    const closed = this.listening
      ? new Promise<void>((resolve) => this.server.close(() => resolve()))
      : Promise.resolve()
    this.listening = false
    for (const socket of this.sockets) socket.destroy()
    await closed
  }

  /** Closes the listening socket and every open connection. Idempotent. */
  async stop(): Promise<void> {
    if (this.stopped) return
    this.stopped = true
    this.hung.clear()
    await this.closeListener()
  }

  // -- keys ----------------------------------------------------------------------------------------

  get activeKid(): string {
    return this.keys.activeKid
  }
  /** The JWKS document as served. */
  jwks(): { keys: Array<StandInPublicJwk> } {
    return this.keys.jwks()
  }
  keyInfo(): Array<StandInKeyInfo> {
    return this.keys.list()
  }
  /** Private key material (JWK with kid and alg) of any key, default the active one. */
  privateJwk(kid: string = this.keys.activeKid): JWK {
    return this.keys.privateJwk(kid)
  }
  publicJwk(kid: string = this.keys.activeKid): StandInPublicJwk {
    return this.keys.publicJwk(kid)
  }
  /** A new key published in the JWKS but not used for signing. Returns its kid. */
  addStandbyKey(alg: StandInAlg = this.options.alg ?? "ES256"): Promise<string> {
    return this.keys.addStandbyKey(alg)
  }
  /** New tokens are signed with `kid`; the previous active key stays published as standby. */
  activateKey(kid: string): Promise<void> {
    return this.keys.activateKey(kid)
  }
  /** Removes `kid` from the JWKS; `/user` rejects its tokens. The active key cannot be revoked. */
  revokeKey(kid: string): Promise<void> {
    return this.keys.revokeKey(kid)
  }

  // -- tokens --------------------------------------------------------------------------------------

  private resolveUser(user: StandInUser | string | undefined): StandInUser {
    if (user === undefined) {
      return this.users.create({ email: `user-${randomUUID().slice(0, 8)}@stand-in.test`, password: randomUUID() })
    }
    if (typeof user === "string") {
      const found = this.store.get(user)
      if (found === undefined) throw new SupabaseStandInError(404, "user_not_found", `No stand-in user ${user}`)
      return found
    }
    return user
  }

  /** Signs an access token with Supabase's claims; see `SignTokenOptions`. */
  async signTokenDetailed(options: SignTokenOptions = {}): Promise<SignedToken> {
    const user = this.resolveUser(options.user)
    const kid = options.kid ?? this.keys.activeKid
    const iat = options.iat ?? Math.floor(Date.now() / 1000)
    const sessionId = options.sessionId ?? randomUUID()
    const payload: Record<string, unknown> = {
      iss: this.issuer,
      sub: user.id,
      aud: user.aud,
      exp: iat + (options.expiresIn ?? this.tokenTtlSeconds),
      iat,
      email: user.email,
      phone: user.phone,
      app_metadata: user.app_metadata,
      user_metadata: user.user_metadata,
      role: user.role,
      aal: "aal1",
      amr: [{ method: "password", timestamp: iat }],
      session_id: sessionId,
      is_anonymous: false
    }
    setOrDelete(payload, options.claims)
    const header: Record<string, unknown> = { alg: this.keys.keyAlg(kid), kid, typ: "JWT" }
    setOrDelete(header, options.header)
    if (typeof payload["session_id"] === "string" && typeof payload["sub"] === "string") {
      const amr = Array.isArray(payload["amr"]) ? (payload["amr"] as Array<{ method: string; timestamp: number }>) : []
      this.store.registerSession(payload["session_id"], payload["sub"], amr)
    }
    const token = await this.keys.sign(header, payload, kid)
    return { token, header, payload, user }
  }

  async signToken(options: SignTokenOptions = {}): Promise<string> {
    return (await this.signTokenDetailed(options)).token
  }

  /** Signs `header` and `payload` verbatim (no defaults added) with key `kid` (default active). */
  signRaw(
    header: Readonly<Record<string, unknown>>,
    payload: Readonly<Record<string, unknown>> | string | Uint8Array,
    kid?: string
  ): Promise<string> {
    return this.keys.sign(
      { ...header },
      typeof payload === "object" && !(payload instanceof Uint8Array) ? { ...payload } : payload,
      kid ?? this.keys.activeKid
    )
  }

  /** A well-formed token signed by a key this server never publishes (header kid = that key's kid unless overridden). */
  async unknownKeyToken(options: Omit<SignTokenOptions, "kid"> & { readonly alg?: StandInAlg } = {}): Promise<string> {
    const kid = await this.keys.unpublishedKid(options.alg ?? this.keys.keyAlg(this.keys.activeKid))
    return this.signToken({ ...options, kid })
  }

  /** Ends a session: `/user` then rejects its tokens with 403 `session_not_found`. */
  revokeSession(sessionId: string): boolean {
    return this.store.revokeSession(sessionId)
  }

  createUser(input: CreateUserInput): StandInUser {
    return this.users.create(input)
  }

  // -- failure injection ---------------------------------------------------------------------------

  /**
   * Injects a failure for a path group (default "all"). `Refuse` always applies to the whole server:
   * the listening socket is closed and open connections destroyed, so clients get ECONNREFUSED.
   */
  async setFailure(mode: FailureMode, scope: FailureScope = "all"): Promise<void> {
    if (this.stopped) return
    if (mode._tag === "Refuse") {
      this.refusedScope = scope
      await this.closeListener()
      return
    }
    this.failures.set(scope, mode)
  }

  /** Clears the failure of `scope`, or every failure when omitted. Listens again on the same port after `Refuse`. */
  async clearFailure(scope?: FailureScope): Promise<void> {
    if (scope === undefined) this.failures.clear()
    else this.failures.delete(scope)
    for (const waiter of [...this.hung]) {
      if (this.failureFor(waiter.group)?._tag !== "Hang") {
        this.hung.delete(waiter)
        waiter.release()
      }
    }
    if (this.refusedScope !== undefined && (scope === undefined || scope === "all" || scope === this.refusedScope)) {
      this.refusedScope = undefined
      if (!this.stopped && !this.listening) await this.listen(this.boundPort)
    }
  }

  private failureFor(group: PathGroup): Exclude<FailureMode, { _tag: "Refuse" }> | undefined {
    return (group === "other" ? undefined : this.failures.get(group)) ?? this.failures.get("all")
  }

  // -- observability -------------------------------------------------------------------------------

  /** The most recent requests, oldest first (bounded by `requestLogLimit`). */
  get requests(): ReadonlyArray<RecordedRequest> {
    return [...this.log]
  }

  resetCounts(): void {
    this.counts.jwks = 0
    this.counts.user = 0
    this.counts.admin = 0
    this.counts.token = 0
    this.counts.other = 0
    this.log.length = 0
  }

  // -- HTTP ----------------------------------------------------------------------------------------

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? "/", "http://stand-in.invalid")
    const group = groupOf(url.pathname)
    this.counts[group]++
    const headers: Record<string, string> = {}
    for (const [k, v] of Object.entries(req.headers)) {
      if (v !== undefined) {
        headers[k] = Array.isArray(v)
          ? v.join(", ")
          : v
      }
    }
    this.log.push({
      at: Date.now(),
      method: req.method ?? "GET",
      path: url.pathname,
      query: url.search,
      group,
      headers,
      requestId: headers["x-request-id"]
    })
    const limit = this.options.requestLogLimit ?? 200
    if (this.log.length > limit) this.log.splice(0, this.log.length - limit)

    let failure = this.failureFor(group)
    if (failure?._tag === "Hang") {
      await new Promise<void>((release) => this.hung.add({ group, release }))
      if (this.stopped || res.destroyed) return
      failure = this.failureFor(group)
    }
    if (failure?._tag === "Status") {
      const extra = failure.retryAfter === undefined ? {} : { "Retry-After": String(failure.retryAfter) }
      if (failure.body !== undefined) {
        res.writeHead(failure.status, { "Content-Type": "text/plain; charset=utf-8", ...extra })
        res.end(failure.body)
      } else {
        sendError(
          res,
          new SupabaseStandInError(failure.status, errorCodeForStatus(failure.status), "Stand-in injected failure"),
          extra
        )
      }
      return
    }
    try {
      await this.route(req, res, url, group)
    } catch (e) {
      if (e instanceof SupabaseStandInError) sendError(res, e)
      else sendError(res, new SupabaseStandInError(500, "unexpected_failure", `Unexpected failure: ${String(e)}`))
    }
  }

  private methodNotAllowed(): SupabaseStandInError {
    return new SupabaseStandInError(405, "method_not_allowed", "Method Not Allowed")
  }

  private async route(req: IncomingMessage, res: ServerResponse, url: URL, group: PathGroup): Promise<void> {
    const method = req.method ?? "GET"
    const path = url.pathname
    if (group === "jwks") {
      if (method !== "GET") throw this.methodNotAllowed()
      return sendJson(res, 200, this.keys.jwks(), {
        "Cache-Control": `public, max-age=${this.options.jwksMaxAge ?? 600}`
      })
    }
    if (path === "/auth/v1/health") {
      return sendJson(res, 200, { version: "stand-in", name: "GoTrue", description: "Supabase Auth stand-in" })
    }
    if (group === "other") throw new SupabaseStandInError(404, "not_found", "Not Found")
    this.checkApiKey(req)
    if (group === "user") {
      if (method !== "GET") throw this.methodNotAllowed()
      return sendJson(res, 200, await this.userFromBearer(req))
    }
    if (group === "token") {
      if (method !== "POST") throw this.methodNotAllowed()
      return sendJson(res, 200, await this.tokenGrant(req, url))
    }
    await this.requireAdmin(req)
    if (path === "/auth/v1/admin/users") {
      if (method === "GET") return listUsers(this.store, res, url)
      if (method === "POST") return sendJson(res, 200, this.store.create(adminUserParams(await parseJsonBody(req))))
      throw this.methodNotAllowed()
    }
    const userMatch = /^\/auth\/v1\/admin\/users\/([^/]+)$/.exec(path)
    if (userMatch !== null) {
      const id = decodeURIComponent(userMatch[1] ?? "")
      if (!isUuid(id)) throw new SupabaseStandInError(404, "validation_failed", "user_id must be an UUID")
      const existing = this.store.get(id)
      if (existing === undefined) throw new SupabaseStandInError(404, "user_not_found", "User not found")
      if (method === "GET") return sendJson(res, 200, existing)
      if (method === "PUT") {
        return sendJson(res, 200, this.store.update(existing.id, adminUserParams(await parseJsonBody(req))))
      }
      if (method === "DELETE") {
        await parseJsonBody(req, true)
        this.store.delete(existing.id)
        return sendJson(res, 200, {})
      }
      throw this.methodNotAllowed()
    }
    if (path === "/auth/v1/admin/generate_link") {
      if (method !== "POST") throw this.methodNotAllowed()
      return sendJson(res, 200, generateLink(this.store, await parseJsonBody(req), this.linkUrls))
    }
    if (path === "/auth/v1/invite") {
      if (method !== "POST") throw this.methodNotAllowed()
      const body = await parseJsonBody(req)
      const link = generateLink(
        this.store,
        { type: "invite", email: body["email"] ?? "", data: body["data"] ?? null },
        this.linkUrls
      )
      const { action_link: _a, email_otp: _o, hashed_token: _h, redirect_to: _r, verification_type: _v, ...user } = link
      return sendJson(res, 200, user)
    }
    throw new SupabaseStandInError(404, "not_found", "Not Found")
  }

  private checkApiKey(req: IncomingMessage): void {
    if (this.options.requireApiKey === false) return
    const apikey = req.headers["apikey"]
    if (apikey === undefined || apikey === "") {
      throw new SupabaseStandInError(401, "no_api_key", "No API key found in request")
    }
    if (apikey !== this.anonKey && apikey !== this.serviceRoleKey) {
      throw new SupabaseStandInError(401, "invalid_api_key", "Invalid API key")
    }
  }

  private bearer(req: IncomingMessage): string {
    const match = BEARER_RE.exec(req.headers["authorization"] ?? "")
    if (match === null || match[1] === undefined) {
      throw new SupabaseStandInError(401, "no_authorization", "This endpoint requires a Bearer token")
    }
    return match[1]
  }

  /** GoTrue's parseJWTClaims: a kid naming a published key, its algorithm, exp/nbf when present. */
  private async verifyJwt(token: string): Promise<Record<string, unknown>> {
    const invalid = (detail: string) =>
      new SupabaseStandInError(403, "bad_jwt", `invalid JWT: unable to parse or verify signature, ${detail}`)
    let kid: unknown
    try {
      kid = decodeProtectedHeader(token).kid
    } catch {
      throw invalid("token is malformed: could not decode the token header")
    }
    if (typeof kid !== "string") throw invalid("token is unverifiable: error while executing keyfunc: missing kid")
    try {
      return (await this.keys.verify(token, kid)).payload as Record<string, unknown>
    } catch (e) {
      if (e instanceof joseErrors.JWTExpired) throw invalid("token has invalid claims: token is expired")
      if (e instanceof joseErrors.JWTClaimValidationFailed) throw invalid(`token has invalid claims: ${e.message}`)
      if (e instanceof joseErrors.JWSSignatureVerificationFailed) throw invalid("token signature is invalid")
      throw invalid(`token is unverifiable: ${(e as Error).message}`)
    }
  }

  /** GoTrue's requireAuthentication + maybeLoadUserOrSession. */
  private async userFromBearer(req: IncomingMessage): Promise<StandInUser> {
    const claims = await this.verifyJwt(this.bearer(req))
    const sub = claims["sub"]
    if (typeof sub !== "string" || sub === "") {
      throw new SupabaseStandInError(403, "bad_jwt", "invalid claim: missing sub claim")
    }
    if (!isUuid(sub)) throw new SupabaseStandInError(400, "bad_jwt", "invalid claim: sub claim must be a UUID")
    const user = this.store.get(sub)
    if (user === undefined) {
      throw new SupabaseStandInError(403, "user_not_found", "User from sub claim in JWT does not exist")
    }
    const sessionId = claims["session_id"]
    if (typeof sessionId === "string" && sessionId !== "" && sessionId !== NIL_UUID) {
      if (!isUuid(sessionId)) {
        throw new SupabaseStandInError(403, "bad_jwt", "invalid claim: session_id claim must be a UUID")
      }
      if (this.store.session(sessionId) === undefined) {
        throw new SupabaseStandInError(403, "session_not_found", "Session from session_id claim in JWT does not exist")
      }
    }
    return user
  }

  private async requireAdmin(req: IncomingMessage): Promise<void> {
    const token = this.bearer(req)
    if (token === this.serviceRoleKey) return
    const claims = await this.verifyJwt(token)
    if (claims["role"] === "service_role" || claims["role"] === "supabase_admin") return
    throw new SupabaseStandInError(403, "not_admin", "User not allowed")
  }

  private async tokenGrant(req: IncomingMessage, url: URL): Promise<Record<string, unknown>> {
    const grantType = url.searchParams.get("grant_type") ?? ""
    const body = await parseJsonBody(req)
    if (grantType === "password") {
      const email = optString(body, "email")
      const phone = optString(body, "phone")
      if (email !== undefined && email !== "" && phone !== undefined && phone !== "") {
        throw new SupabaseStandInError(
          400,
          "validation_failed",
          "Only an email address or phone number should be provided on login."
        )
      }
      const userId = this.store.authenticate(defined({ email, phone, password: optString(body, "password") ?? "" }))
      return this.issueSession(userId, randomUUID(), [{ method: "password", timestamp: Math.floor(Date.now() / 1000) }])
    }
    if (grantType === "refresh_token") {
      const { sessionId, userId } = this.store.useRefreshToken(optString(body, "refresh_token") ?? "")
      return this.issueSession(userId, sessionId, this.store.session(sessionId)?.amr ?? [])
    }
    throw new SupabaseStandInError(400, "validation_failed", "unsupported_grant_type")
  }

  private async issueSession(
    userId: string,
    sessionId: string,
    amr: ReadonlyArray<{ readonly method: string; readonly timestamp: number }>
  ): Promise<Record<string, unknown>> {
    const user = this.store.touchSignIn(userId)
    this.store.registerSession(sessionId, userId, amr)
    const { token, payload } = await this.signTokenDetailed({ user, sessionId, claims: { amr } })
    return {
      access_token: token,
      token_type: "bearer",
      expires_in: this.tokenTtlSeconds,
      expires_at: payload["exp"],
      refresh_token: this.store.issueRefreshToken(sessionId, userId),
      user
    }
  }
}

/** Starts the stand-in on loopback. */
export const startSupabaseStandIn = (options: SupabaseStandInOptions = {}): Promise<SupabaseStandInServer> =>
  SupabaseStandInServer.start(options)

/** Effect service: the running stand-in, started and stopped with the layer's scope. */
export class SupabaseStandIn extends Context.Tag("dev/SupabaseStandIn")<SupabaseStandIn, SupabaseStandInServer>() {
  static readonly layer = (options: SupabaseStandInOptions = {}): Layer.Layer<SupabaseStandIn> =>
    Layer.scoped(
      SupabaseStandIn,
      Effect.acquireRelease(
        Effect.promise(() => startSupabaseStandIn(options)),
        (server) => Effect.promise(() => server.stop())
      )
    )
}
