/**
 * A context made of a few entries over another context, without copying it. Effect keeps a context's services in a
 * `Map` and adds to a context by copying that map whole; a server's context holds every service of the app (about
 * thirty), and copying it for each request costs more than most of what the request then does. An overlay is a
 * `Map` whose own entries shadow its parent's: reading goes to its own entries, then to the parent's; iterating
 * gives the entries of the copy it stands for. Whatever copies it (`Context.add`, `Context.merge`, ...) gets a plain
 * map with the same entries, as from that copy.
 *
 * The parent must not change while an overlay stands on it: a context's map never does (Effect copies, never
 * writes, a context's map once it is made).
 */
import { Context } from "effect"

export class OverlayMap<K, V> extends Map<K, V> {
  /** Keys of the parent deleted from this map (never also own keys); only made by a delete. */
  private hidden: Set<K> | undefined
  /** How many own keys the parent has too, so that `size` costs no walk of the parent (contexts are hashed by it). */
  private shadowed = 0

  constructor(private base: ReadonlyMap<K, V>) {
    super()
  }

  /** The map under this one. */
  get parent(): ReadonlyMap<K, V> {
    return this.base
  }

  /**
   * Puts `parent` under this map in place of its parent, when `parent` is an overlay on that same parent which hides
   * none of it and this map hides none of it either: this map then reads as if it had each entry `parent` adds set
   * on it (its own entries still win), without setting them one by one. False, and nothing changed, otherwise.
   */
  rebase(parent: OverlayMap<K, V>): boolean {
    if (parent.base !== this.base || !parent.inheritsAll || !this.inheritsAll) return false
    // `parent`'s own keys are new to the old parent: any this map has too are shadowed now.
    for (const key of Map.prototype.keys.call(parent)) if (super.has(key)) this.shadowed++
    this.base = parent
    return true
  }

  /** Whether every entry of the parent is an entry of this map, or shadowed by one of its own. */
  get inheritsAll(): boolean {
    return this.hidden === undefined || this.hidden.size === 0
  }

  override get(key: K): V | undefined {
    if (super.has(key)) return super.get(key)
    return this.hidden?.has(key) === true ? undefined : this.base.get(key)
  }

  override has(key: K): boolean {
    return super.has(key) || (this.base.has(key) && this.hidden?.has(key) !== true)
  }

  override set(key: K, value: V): this {
    if (!super.has(key) && this.base.has(key)) {
      this.shadowed++
      this.hidden?.delete(key)
    }
    return super.set(key, value)
  }

  override delete(key: K): boolean {
    const inParent = this.base.has(key)
    if (super.delete(key)) {
      if (inParent) {
        this.shadowed--
        ;(this.hidden ??= new Set()).add(key)
      }
      return true
    }
    if (!inParent || this.hidden?.has(key) === true) return false
    ;(this.hidden ??= new Set()).add(key)
    return true
  }

  override clear(): void {
    super.clear()
    this.shadowed = 0
    this.hidden = new Set(this.base.keys())
  }

  override get size(): number {
    return super.size + this.base.size - this.shadowed - (this.hidden?.size ?? 0)
  }

  override *entries(): MapIterator<[K, V]> {
    yield* super.entries()
    for (const entry of this.base.entries()) {
      if (!super.has(entry[0]) && this.hidden?.has(entry[0]) !== true) yield entry
    }
  }

  override [Symbol.iterator](): MapIterator<[K, V]> {
    return this.entries()
  }

  override *keys(): MapIterator<K> {
    for (const [key] of this.entries()) yield key
  }

  override *values(): MapIterator<V> {
    for (const [, value] of this.entries()) yield value
  }

  override forEach(callback: (value: V, key: K, map: Map<K, V>) => void, thisArg?: unknown): void {
    for (const [key, value] of this.entries()) callback.call(thisArg, value, key, this)
  }
}

/**
 * The map of one request's own context, made by the server for that request's fiber alone: its route may write into
 * it what the rest of the request is to see (an endpoint's middleware's services), where it would otherwise make a
 * context and switch the fiber to it and back. Writing into a context's map is what Effect never does; it is safe
 * here because no other request or fiber outside the request holds this map. One thing Effect computes from a
 * context can go stale: its hash, cached on first use, counts the entries then. Effect compares contexts by hash
 * only to skip setting an equal one, so a stale hash costs at most a set.
 */
export class RequestOverlay<K, V> extends OverlayMap<K, V> {}

/** A context of `parent`'s services and `entries` (which win over the parent's), made without copying `parent`. */
export const make = <Services>(
  parent: Context.Context<Services>,
  entries: Iterable<readonly [string, unknown]>
): Context.Context<Services> => {
  const map = new OverlayMap<string, unknown>(parent.unsafeMap)
  for (const [key, value] of entries) map.set(key, value)
  return Context.unsafeMake(map)
}
