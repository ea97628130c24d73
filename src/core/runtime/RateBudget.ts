/** A sliding-window call budget: at most `limit` calls in any `window`, so a flood cannot become a flood of calls. */
import { Duration } from "effect"

export class RateBudget {
  /** Ring of the times (ms) of the last `limit` grants; once full, `next` points at the oldest. */
  private readonly grants: Array<number>
  private next = 0
  private count = 0
  private readonly windowMillis: number

  constructor(readonly limit: number, window: Duration.DurationInput) {
    this.grants = new Array<number>(Math.max(0, limit)).fill(0)
    this.windowMillis = Duration.toMillis(window)
  }

  /** Takes one call at `now` (ms since the epoch, from the `Clock`); false when the window's calls are used up. */
  tryTake(now: number): boolean {
    if (this.limit <= 0) return false
    if (this.count < this.limit) {
      this.count++
    } else if (now - this.grants[this.next]! < this.windowMillis) {
      return false
    }
    this.grants[this.next] = now
    this.next = (this.next + 1) % this.limit
    return true
  }

  /** Calls still allowed at `now`. */
  remaining(now: number): number {
    let used = 0
    for (let i = 0; i < this.count; i++) if (now - this.grants[i]! < this.windowMillis) used++
    return this.limit - used
  }
}
