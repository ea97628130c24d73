/** The clock that keeps a pool's acquire and idle timeouts (tests pass one they move by hand). */
export interface Clock {
  /** Milliseconds, never going back (`performance.now`). */
  readonly now: () => number
  /** Calls `f` once, in `millis`, with a timer that does not keep the process alive. */
  readonly schedule: (f: () => void, millis: number) => void
}

/** `performance.now` and unref'd `setTimeout`. */
export const systemClock: Clock = {
  now: () => performance.now(),
  schedule: (f, millis) => {
    setTimeout(f, millis).unref()
  }
}
