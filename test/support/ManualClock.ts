import type { Clock } from "../../src/core/db/PoolClock.js"

/** A clock that moves only when told, running each timer as its time comes. */
export const manualClock = () => {
  let now = 0
  let timers: Array<{ readonly at: number; readonly f: () => void }> = []
  const clock: Clock = {
    now: () => now,
    schedule: (f, millis) => {
      timers.push({ at: now + millis, f })
    }
  }
  /** How many timers are set and have not fired. */
  const pending = () => timers.length
  const advance = (millis: number) => {
    const until = now + millis
    for (;;) {
      const due = timers.filter((timer) => timer.at <= until).sort((a, b) => a.at - b.at)[0]
      if (due === undefined) break
      timers = timers.filter((timer) => timer !== due)
      now = Math.max(now, due.at)
      due.f()
    }
    now = until
  }
  return { clock, advance, pending }
}
