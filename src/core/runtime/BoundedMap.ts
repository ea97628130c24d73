/**
 * A map that holds at most `maxEntries`: when full, the oldest entries (by last `set`) make room for the new one, so
 * a flood of distinct keys cannot grow it.
 */
export class BoundedMap<K, V> {
  private readonly entries = new Map<K, V>()

  /** `evictExtra`: how many more than one to drop when full, so a flood costs one pass per batch, not per insert. */
  constructor(readonly maxEntries: number, private readonly evictExtra = 0) {}

  get(key: K): V | undefined {
    return this.entries.get(key)
  }

  delete(key: K): void {
    this.entries.delete(key)
  }

  /** Stores `value` as the newest entry, evicting the oldest ones first when the map is full. */
  set(key: K, value: V): void {
    this.entries.delete(key)
    if (this.entries.size >= this.maxEntries) {
      let evict = this.entries.size - this.maxEntries + 1 + this.evictExtra
      for (const oldest of this.entries.keys()) {
        if (evict-- <= 0) break
        this.entries.delete(oldest)
      }
    }
    this.entries.set(key, value)
  }

  get size(): number {
    return this.entries.size
  }
}
