/**
 * Bounded, expiring memory of verdicts on bearer tokens (the verifier's positive cache, `Auth`'s negative cache).
 * Entries are keyed by a SHA-256 digest of the token, so the cache never holds a token, and at most `maxEntries`
 * are kept (the oldest go first), so a flood of distinct tokens cannot grow it. Times come from the caller, who
 * reads them from Effect's `Clock`.
 */
import { hash } from "node:crypto"
import { BoundedMap } from "../runtime/BoundedMap.js"

/** The cache key of a token. */
export const digest = (token: string): string => hash("sha256", token, "base64url")

interface Entry<A> {
  readonly value: A
  readonly expiresAt: number
}

export class TokenCache<A> {
  private readonly entries: BoundedMap<string, Entry<A>>

  constructor(readonly maxEntries: number) {
    // When full, a sixteenth of the cache goes at once: one pass over the map while a flood keeps it full.
    this.entries = new BoundedMap(maxEntries, maxEntries >> 4)
  }

  /** The value stored under `key`, unless it expired by `now` (ms). */
  get(key: string, now: number): A | undefined {
    const entry = this.entries.get(key)
    if (entry === undefined) return undefined
    if (entry.expiresAt <= now) {
      this.entries.delete(key)
      return undefined
    }
    return entry.value
  }

  /** Stores `value` until `expiresAt` (ms). */
  set(key: string, value: A, expiresAt: number, now: number): void {
    if (expiresAt <= now || this.maxEntries <= 0) return
    this.entries.set(key, { value, expiresAt })
  }

  get size(): number {
    return this.entries.size
  }
}
