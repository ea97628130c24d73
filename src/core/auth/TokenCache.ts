/**
 * Bounded, expiring memory of verdicts on bearer tokens (the verifier's positive cache, `Auth`'s negative cache, the
 * provider's accepted tokens). Entries are found by a `TokenKey`, which names a token without holding it, and at most
 * `maxEntries` are kept (the oldest go first), so a flood of distinct tokens cannot grow it. Times come from the
 * caller, who reads them from Effect's `Clock`.
 */
import { hash } from "node:crypto"
import { BoundedMap } from "../runtime/BoundedMap.js"

/**
 * A token's name in the caches: a SHA-256 digest of its last segment (a JWT's signature) and the text before it
 * (what the signature is over). Together they name the token exactly, as a digest of it would; apart from it the
 * text before the signature is no credential, so a cache that keeps it keeps no token. And the digest of the short
 * segment costs a fraction of one of the whole token, which every request with a remembered token pays.
 */
export class TokenKey {
  constructor(readonly digest: string, readonly signed: string) {}

  /** One string for the token, for maps of anything else (work in flight for it). */
  get id(): string {
    return `${this.digest}${this.signed}`
  }
}

export const keyOf = (token: string): TokenKey => {
  const end = token.lastIndexOf(".") + 1
  return new TokenKey(hash("sha256", token.slice(end), "base64url"), token.slice(0, end))
}

/**
 * A copy of `text` that holds no other string: a part cut from a string (the text before a token's signature, cut
 * from the `Authorization` header) keeps the whole string, signature and all, for as long as the part lives. Cutting
 * a joined string makes the engine copy it into one string first, so the cut holds only that copy.
 */
const detached = (text: string): string => ` ${text}`.slice(1)

interface Entry<A> {
  readonly value: A
  readonly expiresAt: number
  readonly signed: string
}

export class TokenCache<A> {
  // One entry per signature digest: another token with the same signature (a forgery) only takes the place.
  private readonly entries: BoundedMap<string, Entry<A>>

  constructor(readonly maxEntries: number) {
    // When full, a sixteenth of the cache goes at once: one pass over the map while a flood keeps it full.
    this.entries = new BoundedMap(maxEntries, maxEntries >> 4)
  }

  /** The value stored for the token `key` names, unless it expired by `now` (ms). */
  get(key: TokenKey, now: number): A | undefined {
    const entry = this.entries.get(key.digest)
    if (entry === undefined || entry.signed !== key.signed) return undefined
    if (entry.expiresAt <= now) {
      this.entries.delete(key.digest)
      return undefined
    }
    return entry.value
  }

  /** Stores `value` for the token `key` names until `expiresAt` (ms). */
  set(key: TokenKey, value: A, expiresAt: number, now: number): void {
    if (expiresAt <= now || this.maxEntries <= 0) return
    this.entries.set(key.digest, { value, expiresAt, signed: detached(key.signed) })
  }

  get size(): number {
    return this.entries.size
  }
}
