/**
 * Signing keys of the Supabase Auth stand-in (see `SupabaseStandIn.ts`).
 *
 * Asymmetric keys only (ES256 default, RS256, EdDSA/Ed25519). Each key has a status:
 * - `active`: signs new tokens, published in the JWKS (exactly one, unless none exist yet);
 * - `standby`: published in the JWKS, accepted by `/user`, not used for signing by default;
 * - `revoked`: not published, rejected by `/user`, still usable by tests to craft tokens;
 * - `unpublished`: a key the server never publishes nor accepts (for "unknown key" tokens).
 *
 * With a key file the published/revoked key set is loaded from and persisted to a JSON file
 * `{"keys":[<private JWK + kid, alg, use, status, created_at>...]}` (written with mode 0600).
 */
import {
  CompactSign,
  type CryptoKey,
  exportJWK,
  generateKeyPair,
  importJWK,
  type JWK,
  type JWTPayload,
  jwtVerify,
  type JWTVerifyResult
} from "jose"
import { createPrivateKey, type JsonWebKey as NodeJwk, type KeyObject, randomUUID, sign as nodeSign } from "node:crypto"
import { mkdir, readFile, rename, writeFile } from "node:fs/promises"
import { dirname } from "node:path"

export type StandInAlg = "ES256" | "RS256" | "EdDSA"
type StandInKeyStatus = "active" | "standby" | "revoked" | "unpublished"

/** A public JWK as served by `/.well-known/jwks.json`. */
export interface StandInPublicJwk extends JWK {
  readonly kid: string
  readonly alg: StandInAlg
  readonly use: "sig"
  readonly key_ops: Array<string>
}

export interface StandInKeyInfo {
  readonly kid: string
  readonly alg: StandInAlg
  readonly status: StandInKeyStatus
  readonly createdAt: string
  readonly publicJwk: StandInPublicJwk
}

interface KeyRecord {
  readonly kid: string
  readonly alg: StandInAlg
  status: StandInKeyStatus
  readonly createdAt: string
  readonly privateKey: CryptoKey
  readonly publicKey: CryptoKey
  /** node:crypto form, for signing arbitrary (even malformed) headers. */
  readonly nodeKey: KeyObject
  readonly privateJwk: JWK
  readonly publicJwk: StandInPublicJwk
}

const ALGS: ReadonlyArray<StandInAlg> = ["ES256", "RS256", "EdDSA"]
const PRIVATE_MEMBERS = ["d", "p", "q", "dp", "dq", "qi", "oth", "k", "priv"]

const isStandInAlg = (u: unknown): u is StandInAlg =>
  typeof u === "string" && (ALGS as ReadonlyArray<string>).includes(u)

const base64url = (data: Uint8Array | string): string => Buffer.from(data).toString("base64url")

const toPublicJwk = (jwk: JWK, kid: string, alg: StandInAlg): StandInPublicJwk => {
  const pub: Record<string, unknown> = {}
  for (const [k, v] of Object.entries(jwk)) {
    if (!PRIVATE_MEMBERS.includes(k) && k !== "ext" && k !== "key_ops" && k !== "use" && k !== "alg" && k !== "kid") {
      pub[k] = v
    }
  }
  return { ...pub, kid, alg, use: "sig", key_ops: ["verify"] } as StandInPublicJwk
}

const buildRecord = async (
  kid: string,
  alg: StandInAlg,
  status: StandInKeyStatus,
  createdAt: string,
  privateKey: CryptoKey,
  privateJwk: JWK
): Promise<KeyRecord> => {
  const publicJwk = toPublicJwk(privateJwk, kid, alg)
  const publicKey = (await importJWK(publicJwk, alg)) as CryptoKey
  const { kid: _k, alg: _a, use: _u, key_ops: _o, ext: _e, ...bare } = privateJwk
  const nodeKey = createPrivateKey({ key: bare as NodeJwk, format: "jwk" })
  return { kid, alg, status, createdAt, privateKey, publicKey, nodeKey, privateJwk: { ...bare, kid, alg }, publicJwk }
}

const generateRecord = async (alg: StandInAlg, status: StandInKeyStatus): Promise<KeyRecord> => {
  const { privateKey } = await generateKeyPair(alg, { extractable: true })
  const privateJwk = await exportJWK(privateKey)
  return buildRecord(randomUUID(), alg, status, new Date().toISOString(), privateKey, privateJwk)
}

/** Signs `signingInput` with the real algorithm of the key, whatever the header says. */
const rawSignature = (record: KeyRecord, signingInput: string): string => {
  const data = Buffer.from(signingInput, "ascii")
  switch (record.alg) {
    case "ES256":
      return base64url(nodeSign("sha256", data, { key: record.nodeKey, dsaEncoding: "ieee-p1363" }))
    case "RS256":
      return base64url(nodeSign("sha256", data, record.nodeKey))
    case "EdDSA":
      return base64url(nodeSign(null, data, record.nodeKey))
  }
}

class StandInKeyError extends Error {
  override readonly name = "StandInKeyError"
}

export class StandInKeyStore {
  private readonly records: Array<KeyRecord> = []
  private readonly unpublishedByAlg = new Map<StandInAlg, KeyRecord>()

  private constructor(private readonly keyFile: string | undefined) {}

  /** Loads the key set from `keyFile` when it exists, otherwise generates one active key (and persists it). */
  static async make(
    options: { readonly alg: StandInAlg; readonly keyFile?: string | undefined }
  ): Promise<StandInKeyStore> {
    const store = new StandInKeyStore(options.keyFile)
    if (options.keyFile !== undefined) {
      const loaded = await store.load(options.keyFile)
      if (loaded) return store
    }
    store.records.push(await generateRecord(options.alg, "active"))
    await store.persist()
    return store
  }

  private async load(file: string): Promise<boolean> {
    let text: string
    try {
      text = await readFile(file, "utf8")
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === "ENOENT") return false
      throw e
    }
    let parsed: unknown
    try {
      parsed = JSON.parse(text)
    } catch (e) {
      throw new StandInKeyError(`Supabase stand-in key file ${file} is not valid JSON: ${String(e)}`)
    }
    const keys = (parsed as { keys?: unknown }).keys
    if (!Array.isArray(keys)) throw new StandInKeyError(`Supabase stand-in key file ${file} has no "keys" array`)
    for (const entry of keys as Array<Record<string, unknown>>) {
      const { kid, alg, status, created_at, use: _use, ...jwk } = entry
      if (typeof kid !== "string" || !isStandInAlg(alg)) {
        throw new StandInKeyError(
          `Supabase stand-in key file ${file}: every key needs a string kid and alg ES256|RS256|EdDSA`
        )
      }
      const st: StandInKeyStatus = status === "active" || status === "revoked" ? status : "standby"
      const privateKey = (await importJWK(jwk as JWK, alg, { extractable: true })) as CryptoKey
      this.records.push(
        await buildRecord(
          kid,
          alg,
          st,
          typeof created_at === "string" ? created_at : new Date().toISOString(),
          privateKey,
          jwk as JWK
        )
      )
    }
    const active = this.records.filter((r) => r.status === "active")
    if (active.length === 0) {
      const firstStandby = this.records.find((r) => r.status === "standby")
      if (firstStandby === undefined) throw new StandInKeyError(`Supabase stand-in key file ${file} has no usable key`)
      firstStandby.status = "active"
    } else {
      for (const extra of active.slice(1)) extra.status = "standby"
    }
    return true
  }

  private async persist(): Promise<void> {
    if (this.keyFile === undefined) return
    const body = {
      keys: this.records.map((r) => ({
        ...r.privateJwk,
        kid: r.kid,
        alg: r.alg,
        use: "sig",
        status: r.status,
        created_at: r.createdAt
      }))
    }
    await mkdir(dirname(this.keyFile), { recursive: true })
    const tmp = `${this.keyFile}.${process.pid}.${randomUUID()}.tmp`
    await writeFile(tmp, JSON.stringify(body, null, 2) + "\n", { mode: 0o600 })
    await rename(tmp, this.keyFile)
  }

  private find(kid: string): KeyRecord {
    const record = this.records.find((r) => r.kid === kid) ??
      [...this.unpublishedByAlg.values()].find((r) => r.kid === kid)
    if (record === undefined) throw new StandInKeyError(`Unknown key id ${kid}`)
    return record
  }

  get activeKid(): string {
    const active = this.records.find((r) => r.status === "active")
    if (active === undefined) throw new StandInKeyError("The stand-in has no active signing key")
    return active.kid
  }

  keyAlg(kid: string): StandInAlg {
    return this.find(kid).alg
  }

  /** Public JWKs served by the JWKS endpoint: the active key first, then standby keys. */
  jwks(): { keys: Array<StandInPublicJwk> } {
    const active = this.records.filter((r) => r.status === "active")
    const standby = this.records.filter((r) => r.status === "standby")
    return { keys: [...active, ...standby].map((r) => ({ ...r.publicJwk, key_ops: [...r.publicJwk.key_ops] })) }
  }

  list(): Array<StandInKeyInfo> {
    return [...this.records, ...this.unpublishedByAlg.values()].map((r) => ({
      kid: r.kid,
      alg: r.alg,
      status: r.status,
      createdAt: r.createdAt,
      publicJwk: r.publicJwk
    }))
  }

  privateJwk(kid: string): JWK {
    return { ...this.find(kid).privateJwk }
  }

  publicJwk(kid: string): StandInPublicJwk {
    return this.find(kid).publicJwk
  }

  async addStandbyKey(alg: StandInAlg): Promise<string> {
    const record = await generateRecord(alg, "standby")
    this.records.push(record)
    await this.persist()
    return record.kid
  }

  async activateKey(kid: string): Promise<void> {
    const record = this.find(kid)
    if (record.status === "revoked" || record.status === "unpublished") {
      throw new StandInKeyError(`Key ${kid} is ${record.status} and cannot be activated`)
    }
    for (const r of this.records) if (r.status === "active") r.status = "standby"
    record.status = "active"
    await this.persist()
  }

  async revokeKey(kid: string): Promise<void> {
    const record = this.find(kid)
    if (record.status === "active") {
      throw new StandInKeyError(`Key ${kid} is the active key: activate another key before revoking it`)
    }
    if (record.status === "unpublished") throw new StandInKeyError(`Key ${kid} is not published`)
    record.status = "revoked"
    await this.persist()
  }

  /** A key (one per algorithm) that is never published nor accepted. */
  async unpublishedKid(alg: StandInAlg): Promise<string> {
    const existing = this.unpublishedByAlg.get(alg)
    if (existing !== undefined) return existing.kid
    const record = await generateRecord(alg, "unpublished")
    this.unpublishedByAlg.set(alg, record)
    return record.kid
  }

  /**
   * Signs a JWS compact token. With a standard header (its `alg` equal to the key's) jose signs it;
   * any other header (wrong or missing `alg`, `crit`, `b64`...) is used verbatim and signed with the
   * key's real algorithm through node:crypto, so tests can craft malformed or confusing tokens.
   */
  async sign(
    header: Record<string, unknown>,
    payload: Record<string, unknown> | string | Uint8Array,
    kid: string
  ): Promise<string> {
    const record = this.find(kid)
    const payloadBytes = typeof payload === "string"
      ? Buffer.from(payload, "utf8")
      : payload instanceof Uint8Array
      ? payload
      : Buffer.from(JSON.stringify(payload), "utf8")
    const standard = header["alg"] === record.alg && !("crit" in header) && !("b64" in header)
    if (standard) {
      return new CompactSign(payloadBytes).setProtectedHeader(header as { alg: string }).sign(record.privateKey)
    }
    const signingInput = `${base64url(JSON.stringify(header))}.${base64url(payloadBytes)}`
    return `${signingInput}.${rawSignature(record, signingInput)}`
  }

  /** Verifies a token the way GoTrue does: a `kid` naming an active or standby key, its algorithm, `exp`/`nbf` when present. */
  async verify(token: string, kid: string): Promise<JWTVerifyResult<JWTPayload>> {
    const record = this.records.find((r) => r.kid === kid && (r.status === "active" || r.status === "standby"))
    if (record === undefined) throw new StandInKeyError(`no published key for kid ${kid}`)
    return jwtVerify(token, record.publicKey, { algorithms: [record.alg] })
  }
}
