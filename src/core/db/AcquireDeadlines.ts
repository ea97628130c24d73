/**
 * The acquire timeout of a pool's waiting callers, kept with one timer for all of them. `pg-pool` gives each
 * checkout that waits a timer of its own, set and cleared every time: under load nearly every checkout waits, and
 * the timer costs more than a short statement's own work on the client. Every wait here has the same length, so the
 * earliest deadline is always the oldest open wait's: one timer, set for it, is enough. When it fires, the waits
 * that are over are told so, oldest first, and the timer is set again for the oldest one still open.
 */
import { type Clock, systemClock } from "./PoolClock.js"

/** One caller's wait for a connection, with what its pool keeps for it. */
export class Wait<A> {
  /** Whether the wait ended: served, or timed out. */
  ended = false
  timedOut = false
  /** @internal The next wait, in the order they began. */
  next: Wait<A> | undefined = undefined

  constructor(readonly deadline: number, readonly payload: A) {}
}

export class AcquireDeadlines<A> {
  /** The oldest wait not yet known to have ended; the later ones follow through `next`. */
  private first: Wait<A> | undefined = undefined
  private last: Wait<A> | undefined = undefined
  /** Whether a timer is set (it fires at the deadline of the oldest wait open when it was set, or earlier). */
  private armed = false
  private readonly fire = (): void => this.expire()

  /**
   * @param timeoutMillis how long each wait may last (more than 0)
   * @param onTimeout told of the waits that are over, oldest first, once each
   */
  constructor(
    private readonly timeoutMillis: number,
    private readonly onTimeout: (waits: ReadonlyArray<Wait<A>>) => void,
    private readonly clock: Clock = systemClock
  ) {}

  /** A wait that begins now. */
  begin(payload: A): Wait<A> {
    const wait = new Wait(this.clock.now() + this.timeoutMillis, payload)
    if (this.last === undefined) this.first = wait
    else this.last.next = wait
    this.last = wait
    if (!this.armed) this.arm(wait.deadline)
    return wait
  }

  /** Ends `wait` as served: true, unless it had already timed out (its caller was told so then). */
  serve(wait: Wait<A>): boolean {
    if (wait.ended) return false
    wait.ended = true
    this.dropEnded()
    return true
  }

  /** How many waits are still open (for tests; walks the list). */
  get open(): number {
    let count = 0
    for (let wait = this.first; wait !== undefined; wait = wait.next) if (!wait.ended) count++
    return count
  }

  private arm(deadline: number): void {
    this.armed = true
    this.clock.schedule(this.fire, Math.max(0, deadline - this.clock.now()))
  }

  /**
   * Forgets the ended waits at the head of the list, so that served waits are not kept until a timer fires. Each is
   * unlinked as it goes: a forgotten wait that outlived a young collection would otherwise hold every later one, and
   * the list would drag all of them into the old generation.
   */
  private dropEnded(): void {
    let wait = this.first
    while (wait !== undefined && wait.ended) wait = this.unlink(wait)
    this.first = wait
    if (wait === undefined) this.last = undefined
  }

  /** The wait after `wait`, which is cut off from it. */
  private unlink(wait: Wait<A>): Wait<A> | undefined {
    const next = wait.next
    wait.next = undefined
    return next
  }

  private expire(): void {
    this.armed = false
    const now = this.clock.now()
    const over: Array<Wait<A>> = []
    let wait = this.first
    // Deadlines grow in the order waits begin: the ones that are over are at the head.
    while (wait !== undefined && (wait.ended || wait.deadline <= now)) {
      if (!wait.ended) {
        wait.ended = true
        wait.timedOut = true
        over.push(wait)
      }
      wait = this.unlink(wait)
    }
    this.first = wait
    if (wait === undefined) this.last = undefined
    else this.arm(wait.deadline)
    if (over.length > 0) this.onTimeout(over)
  }
}
