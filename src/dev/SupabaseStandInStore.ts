/**
 * In-memory users, sessions and refresh tokens of the Supabase Auth stand-in (see `SupabaseStandIn.ts`).
 * Validation rules and error codes follow GoTrue (supabase/auth): emails are lower-cased and checked,
 * phones are E.164 digits without `+`, passwords need 6 characters, `app_metadata` starts as
 * `{provider, providers}` and updates merge key by key (a `null` value deletes the key).
 */
import { randomBytes, randomUUID, scryptSync, timingSafeEqual } from "node:crypto"

/** An error answered with Supabase's body `{code, error_code, msg}`. */
export class SupabaseStandInError extends Error {
  override readonly name = "SupabaseStandInError"
  constructor(
    readonly status: number,
    readonly errorCode: string,
    message: string,
    readonly extra: Readonly<Record<string, unknown>> = {}
  ) {
    super(message)
  }
  get body(): Record<string, unknown> {
    return { code: this.status, error_code: this.errorCode, msg: this.message, ...this.extra }
  }
}

export interface StandInIdentity {
  readonly identity_id: string
  readonly id: string
  readonly user_id: string
  readonly identity_data: Readonly<Record<string, unknown>>
  readonly provider: string
  readonly last_sign_in_at: string
  readonly created_at: string
  readonly updated_at: string
  readonly email?: string
}

/** A user as GoTrue serialises it (admin API, `/user`, token responses). */
export interface StandInUser {
  readonly id: string
  readonly aud: string
  readonly role: string
  readonly email: string
  readonly email_confirmed_at?: string
  readonly invited_at?: string
  readonly phone: string
  readonly phone_confirmed_at?: string
  readonly confirmation_sent_at?: string
  readonly confirmed_at?: string
  readonly recovery_sent_at?: string
  readonly last_sign_in_at?: string
  readonly app_metadata: Readonly<Record<string, unknown>>
  readonly user_metadata: Readonly<Record<string, unknown>>
  readonly identities: ReadonlyArray<StandInIdentity>
  readonly created_at: string
  readonly updated_at: string
  readonly banned_until?: string
  readonly is_anonymous: boolean
}

export interface CreateUserInput {
  /** A UUID to use as the id (GoTrue accepts `id` on admin create). */
  readonly id?: string
  readonly email?: string
  readonly phone?: string
  /** When omitted the user gets a random password nobody knows (as GoTrue does). */
  readonly password?: string
  readonly emailConfirm?: boolean
  readonly phoneConfirm?: boolean
  /** Defaults to "authenticated". */
  readonly role?: string
  readonly appMetadata?: Readonly<Record<string, unknown>>
  readonly userMetadata?: Readonly<Record<string, unknown>>
  /** Go duration ("24h", "30m", "1h30m") or "none". */
  readonly banDuration?: string
}

export interface UpdateUserInput {
  readonly email?: string
  readonly phone?: string
  readonly password?: string
  readonly emailConfirm?: boolean
  readonly phoneConfirm?: boolean
  readonly role?: string
  readonly appMetadata?: Readonly<Record<string, unknown>>
  readonly userMetadata?: Readonly<Record<string, unknown>>
  readonly banDuration?: string
}

interface UserRecord {
  readonly id: string
  readonly seq: number
  aud: string
  role: string
  email: string
  phone: string
  passwordHash: string | undefined
  emailConfirmedAt: string | undefined
  phoneConfirmedAt: string | undefined
  invitedAt: string | undefined
  confirmationSentAt: string | undefined
  recoverySentAt: string | undefined
  lastSignInAt: string | undefined
  bannedUntil: string | undefined
  appMetadata: Record<string, unknown>
  userMetadata: Record<string, unknown>
  identities: Array<StandInIdentity>
  readonly createdAt: string
  updatedAt: string
}

interface SessionRecord {
  readonly id: string
  readonly userId: string
  readonly amr: ReadonlyArray<{ readonly method: string; readonly timestamp: number }>
}

interface RefreshRecord {
  readonly sessionId: string
  readonly userId: string
  used: boolean
}

const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i
// github.com/badoux/checkmail ValidateFormat, as used by GoTrue.
const EMAIL_RE =
  /^[a-zA-Z0-9.!#$%&'*+/=?^_`{|}~-]+@[a-zA-Z0-9](?:[a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?)*$/
const PHONE_RE = /^[1-9][0-9]{1,14}$/
const MIN_PASSWORD_LENGTH = 6

export const isUuid = (s: string): boolean => UUID_RE.test(s)

const nowIso = (): string => new Date().toISOString()

export const validateEmail = (email: string): string => {
  if (email === "") throw new SupabaseStandInError(400, "validation_failed", "An email address is required")
  if (email.length > 255) throw new SupabaseStandInError(400, "validation_failed", "An email address is too long")
  if (!EMAIL_RE.test(email)) {
    throw new SupabaseStandInError(400, "validation_failed", "Unable to validate email address: invalid format")
  }
  return email.toLowerCase()
}

const validatePhone = (phone: string): string => {
  const digits = phone.replace(/[\s+\-()]/g, "")
  if (!PHONE_RE.test(digits)) {
    throw new SupabaseStandInError(400, "validation_failed", "Invalid phone number format (E.164 required)")
  }
  return digits
}

const checkPassword = (password: string): void => {
  if (password.length < MIN_PASSWORD_LENGTH) {
    throw new SupabaseStandInError(
      422,
      "weak_password",
      `Password should be at least ${MIN_PASSWORD_LENGTH} characters.`,
      {
        weak_password: { reasons: ["length"] }
      }
    )
  }
}

const GO_UNITS: Record<string, number> = { ns: 1e-6, us: 1e-3, "µs": 1e-3, ms: 1, s: 1000, m: 60_000, h: 3_600_000 }

/** Go's time.ParseDuration, in milliseconds. */
const parseGoDuration = (text: string): number => {
  const m = /^([+-]?)((?:\d+(?:\.\d*)?|\.\d+)(?:ns|us|µs|ms|s|m|h))+$/.exec(text)
  if (text === "0") return 0
  if (m === null) {
    throw new SupabaseStandInError(
      400,
      "validation_failed",
      `invalid format for ban duration: time: invalid duration "${text}"`
    )
  }
  let total = 0
  for (const part of text.matchAll(/(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h)/g)) {
    total += Number(part[1]) * (GO_UNITS[part[2] ?? "ms"] ?? 1)
  }
  return m[1] === "-" ? -total : total
}

const hashPassword = (password: string): string => {
  const salt = randomBytes(16)
  const hash = scryptSync(password, salt, 32, { N: 1024 })
  return `${salt.toString("base64")}$${hash.toString("base64")}`
}

const passwordMatches = (stored: string | undefined, password: string): boolean => {
  if (stored === undefined) return false
  const [salt, hash] = stored.split("$")
  if (salt === undefined || hash === undefined) return false
  const expected = Buffer.from(hash, "base64")
  const actual = scryptSync(password, Buffer.from(salt, "base64"), expected.length, { N: 1024 })
  return timingSafeEqual(expected, actual)
}

const mergeMetadata = (target: Record<string, unknown>, updates: Readonly<Record<string, unknown>>): void => {
  for (const [key, value] of Object.entries(updates)) {
    if (value === null || value === undefined) delete target[key]
    else target[key] = value
  }
}

const clone = <A>(a: A): A => structuredClone(a)

export class StandInUserStore {
  private readonly users = new Map<string, UserRecord>()
  private readonly sessions = new Map<string, SessionRecord>()
  private readonly refreshTokens = new Map<string, RefreshRecord>()
  private seq = 0

  get size(): number {
    return this.users.size
  }

  toJSON(record: UserRecord): StandInUser {
    const confirmedAt =
      [record.emailConfirmedAt, record.phoneConfirmedAt].filter((t): t is string => t !== undefined).sort()[0]
    const optional = (key: string, value: string | undefined) => (value === undefined ? {} : { [key]: value })
    return {
      id: record.id,
      aud: record.aud,
      role: record.role,
      email: record.email,
      ...optional("email_confirmed_at", record.emailConfirmedAt),
      ...optional("invited_at", record.invitedAt),
      phone: record.phone,
      ...optional("phone_confirmed_at", record.phoneConfirmedAt),
      ...optional("confirmation_sent_at", record.confirmationSentAt),
      ...optional("confirmed_at", confirmedAt),
      ...optional("recovery_sent_at", record.recoverySentAt),
      ...optional("last_sign_in_at", record.lastSignInAt),
      app_metadata: clone(record.appMetadata),
      user_metadata: clone(record.userMetadata),
      identities: clone(record.identities),
      created_at: record.createdAt,
      updated_at: record.updatedAt,
      ...optional("banned_until", record.bannedUntil),
      is_anonymous: false
    } as StandInUser
  }

  private record(id: string): UserRecord {
    const record = this.users.get(id)
    if (record === undefined) throw new SupabaseStandInError(404, "user_not_found", "User not found")
    return record
  }

  private emailTaken(email: string, except?: string): boolean {
    for (const u of this.users.values()) if (u.email === email && u.id !== except) return true
    return false
  }

  private phoneTaken(phone: string, except?: string): boolean {
    for (const u of this.users.values()) if (u.phone === phone && u.id !== except) return true
    return false
  }

  private identity(userId: string, provider: "email" | "phone", value: string, verified: boolean): StandInIdentity {
    const now = nowIso()
    return {
      identity_id: randomUUID(),
      id: userId,
      user_id: userId,
      identity_data: provider === "email"
        ? { email: value, email_verified: verified, phone_verified: false, sub: userId }
        : { phone: value, email_verified: false, phone_verified: verified, sub: userId },
      provider,
      last_sign_in_at: now,
      created_at: now,
      updated_at: now,
      ...(provider === "email" ? { email: value } : {})
    }
  }

  private applyBan(record: UserRecord, banDuration: string | undefined): void {
    if (banDuration === undefined || banDuration === "") return
    const ms = banDuration === "none" ? 0 : parseGoDuration(banDuration)
    record.bannedUntil = ms === 0 ? undefined : new Date(Date.now() + ms).toISOString()
  }

  private confirmEmail(record: UserRecord): void {
    record.emailConfirmedAt = nowIso()
    mergeMetadata(record.userMetadata, { email_verified: true })
  }

  /** GoTrue's admin create (POST /admin/users). */
  create(input: CreateUserInput): StandInUser {
    const email = input.email === undefined || input.email === "" ? "" : validateEmail(input.email)
    const phone = input.phone === undefined || input.phone === "" ? "" : validatePhone(input.phone)
    if (email === "" && phone === "") {
      throw new SupabaseStandInError(400, "validation_failed", "Cannot create a user without either an email or phone")
    }
    if (email !== "" && this.emailTaken(email)) {
      throw new SupabaseStandInError(422, "email_exists", "A user with this email address has already been registered")
    }
    if (phone !== "" && this.phoneTaken(phone)) {
      throw new SupabaseStandInError(422, "phone_exists", "Phone number already registered by another user")
    }
    if (input.password !== undefined && input.password !== "") checkPassword(input.password)
    let id: string = randomUUID()
    if (input.id !== undefined && input.id !== "") {
      if (!isUuid(input.id)) {
        throw new SupabaseStandInError(400, "validation_failed", "ID must conform to the uuid v4 format")
      }
      if (/^0{8}-0{4}-0{4}-0{4}-0{12}$/.test(input.id)) {
        throw new SupabaseStandInError(400, "validation_failed", "ID cannot be a nil uuid")
      }
      id = input.id.toLowerCase()
      if (this.users.has(id)) throw new SupabaseStandInError(422, "user_already_exists", "User already registered")
    }
    const providers = [...(email !== "" ? ["email"] : []), ...(phone !== "" ? ["phone"] : [])]
    const now = nowIso()
    const record: UserRecord = {
      id,
      seq: ++this.seq,
      aud: "authenticated",
      role: input.role !== undefined && input.role.trim() !== "" ? input.role.trim() : "authenticated",
      email,
      phone,
      passwordHash: hashPassword(
        input.password !== undefined && input.password !== "" ? input.password : randomBytes(32).toString("base64")
      ),
      emailConfirmedAt: undefined,
      phoneConfirmedAt: undefined,
      invitedAt: undefined,
      confirmationSentAt: undefined,
      recoverySentAt: undefined,
      lastSignInAt: undefined,
      bannedUntil: undefined,
      appMetadata: { provider: providers[0], providers },
      userMetadata: clone({ ...(input.userMetadata ?? {}) }),
      identities: [],
      createdAt: now,
      updatedAt: now
    }
    if (email !== "") record.identities.push(this.identity(id, "email", email, false))
    if (phone !== "") record.identities.push(this.identity(id, "phone", phone, false))
    if (input.appMetadata !== undefined) mergeMetadata(record.appMetadata, clone(input.appMetadata))
    if (input.emailConfirm === true && email !== "") this.confirmEmail(record)
    if (input.phoneConfirm === true && phone !== "") record.phoneConfirmedAt = nowIso()
    this.applyBan(record, input.banDuration)
    this.users.set(id, record)
    return this.toJSON(record)
  }

  /** GoTrue's admin update (PUT /admin/users/{id}). Changing the password ends every session of the user. */
  update(id: string, input: UpdateUserInput): StandInUser {
    const record = this.record(id)
    const email = input.email === undefined || input.email === "" ? undefined : validateEmail(input.email)
    const phone = input.phone === undefined || input.phone === "" ? undefined : validatePhone(input.phone)
    if (email !== undefined && this.emailTaken(email, id)) {
      throw new SupabaseStandInError(422, "email_exists", "A user with this email address has already been registered")
    }
    if (phone !== undefined && this.phoneTaken(phone, id)) {
      throw new SupabaseStandInError(422, "phone_exists", "Phone number already registered by another user")
    }
    if (input.password !== undefined) checkPassword(input.password)
    if (input.banDuration !== undefined && input.banDuration !== "" && input.banDuration !== "none") {
      parseGoDuration(input.banDuration)
    }

    if (input.role !== undefined && input.role.trim() !== "") record.role = input.role.trim()
    if (input.emailConfirm === true) this.confirmEmail(record)
    if (input.phoneConfirm === true) record.phoneConfirmedAt = nowIso()
    if (input.password !== undefined) {
      record.passwordHash = hashPassword(input.password)
      this.revokeUserSessions(id)
    }
    if (email !== undefined) {
      record.email = email
      const i = record.identities.findIndex((x) => x.provider === "email")
      const identity = this.identity(id, "email", email, input.emailConfirm === true)
      if (i >= 0) record.identities[i] = { ...identity, identity_id: record.identities[i]!.identity_id }
      else record.identities.push(identity)
    }
    if (phone !== undefined) {
      record.phone = phone
      const i = record.identities.findIndex((x) => x.provider === "phone")
      const identity = this.identity(id, "phone", phone, input.phoneConfirm === true)
      if (i >= 0) record.identities[i] = { ...identity, identity_id: record.identities[i]!.identity_id }
      else record.identities.push(identity)
    }
    if (input.appMetadata !== undefined) mergeMetadata(record.appMetadata, clone(input.appMetadata))
    if (input.userMetadata !== undefined) mergeMetadata(record.userMetadata, clone(input.userMetadata))
    this.applyBan(record, input.banDuration)
    record.updatedAt = nowIso()
    return this.toJSON(record)
  }

  delete(id: string): void {
    this.record(id)
    this.users.delete(id)
    this.revokeUserSessions(id)
  }

  get(id: string): StandInUser | undefined {
    const record = this.users.get(id.toLowerCase())
    return record === undefined ? undefined : this.toJSON(record)
  }

  getByEmail(email: string): StandInUser | undefined {
    const lower = email.toLowerCase()
    for (const u of this.users.values()) if (u.email === lower) return this.toJSON(u)
    return undefined
  }

  /** Newest first, like GoTrue's default `created_at desc`. */
  list(): Array<StandInUser> {
    return [...this.users.values()].sort((a, b) => b.seq - a.seq).map((u) => this.toJSON(u))
  }

  clear(): void {
    this.users.clear()
    this.sessions.clear()
    this.refreshTokens.clear()
  }

  /** Generate-link bookkeeping (timestamps GoTrue sets). */
  markLinkSent(id: string, type: "signup" | "invite" | "magiclink" | "recovery"): StandInUser {
    const record = this.record(id)
    const now = nowIso()
    if (type === "invite") {
      record.invitedAt = now
      record.confirmationSentAt = now
    } else if (type === "signup") {
      record.confirmationSentAt = now
    } else {
      record.recoverySentAt = now
    }
    record.updatedAt = now
    return this.toJSON(record)
  }

  mergeUserMetadata(id: string, data: Readonly<Record<string, unknown>>): void {
    mergeMetadata(this.record(id).userMetadata, clone(data))
  }

  isConfirmed(id: string): boolean {
    return this.record(id).emailConfirmedAt !== undefined
  }

  /** Password grant checks, in GoTrue's order. Returns the user id. */
  authenticate(params: { readonly email?: string; readonly phone?: string; readonly password: string }): string {
    const invalid = () => new SupabaseStandInError(400, "invalid_credentials", "Invalid login credentials")
    let record: UserRecord | undefined
    if (params.email !== undefined && params.email !== "") {
      const lower = params.email.toLowerCase()
      record = [...this.users.values()].find((u) => u.email === lower)
    } else if (params.phone !== undefined && params.phone !== "") {
      const digits = params.phone.replace(/[\s+\-()]/g, "")
      record = [...this.users.values()].find((u) => u.phone === digits)
    }
    if (record === undefined) throw invalid()
    if (record.bannedUntil !== undefined && Date.parse(record.bannedUntil) > Date.now()) {
      throw new SupabaseStandInError(400, "user_banned", "User is banned")
    }
    if (!passwordMatches(record.passwordHash, params.password)) throw invalid()
    if (params.email !== undefined && params.email !== "" && record.emailConfirmedAt === undefined) {
      throw new SupabaseStandInError(400, "email_not_confirmed", "Email not confirmed")
    }
    if ((params.email === undefined || params.email === "") && record.phoneConfirmedAt === undefined) {
      throw new SupabaseStandInError(400, "phone_not_confirmed", "Phone not confirmed")
    }
    return record.id
  }

  touchSignIn(id: string): StandInUser {
    const record = this.record(id)
    record.lastSignInAt = nowIso()
    record.updatedAt = record.lastSignInAt
    return this.toJSON(record)
  }

  // -- sessions ---------------------------------------------------------------------------------

  registerSession(sessionId: string, userId: string, amr: SessionRecord["amr"]): void {
    if (!this.sessions.has(sessionId)) this.sessions.set(sessionId, { id: sessionId, userId, amr })
  }

  session(sessionId: string): SessionRecord | undefined {
    return this.sessions.get(sessionId)
  }

  revokeSession(sessionId: string): boolean {
    for (const [token, r] of this.refreshTokens) if (r.sessionId === sessionId) this.refreshTokens.delete(token)
    return this.sessions.delete(sessionId)
  }

  revokeUserSessions(userId: string): void {
    for (const s of [...this.sessions.values()]) if (s.userId === userId) this.revokeSession(s.id)
  }

  issueRefreshToken(sessionId: string, userId: string): string {
    const token = randomBytes(9).toString("base64url")
    this.refreshTokens.set(token, { sessionId, userId, used: false })
    return token
  }

  /** Refresh token rotation: a token can be exchanged once. */
  useRefreshToken(token: string): { readonly sessionId: string; readonly userId: string } {
    const record = this.refreshTokens.get(token)
    if (record === undefined || !this.sessions.has(record.sessionId) || !this.users.has(record.userId)) {
      throw new SupabaseStandInError(400, "refresh_token_not_found", "Invalid Refresh Token: Refresh Token Not Found")
    }
    if (record.used) {
      throw new SupabaseStandInError(400, "refresh_token_already_used", "Invalid Refresh Token: Already Used")
    }
    record.used = true
    return { sessionId: record.sessionId, userId: record.userId }
  }
}
