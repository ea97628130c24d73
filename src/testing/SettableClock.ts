/**
 * `SettableClock`: a `Clock` that stands still until told to move, for in-process tests that want deterministic time
 * without `TestClock` (which needs the test services and costs real timer ticks per adjustment). Sleeps end when the
 * clock is moved past their deadline, in deadline order. A sleep counts from the time it starts: a test that forks a
 * fiber and then moves the clock waits for the fiber's sleep first (`awaitSleeps`).
 */
import { Clock, Context, Duration, Effect, Layer } from "effect"

export interface Service {
  readonly clock: Clock.Clock
  /** The current instant, in milliseconds since the epoch. */
  readonly now: Effect.Effect<number>
  /** Moves the clock to `instant` (never backwards: an earlier instant leaves it where it is). */
  readonly set: (instant: Date | number) => Effect.Effect<void>
  /** Moves the clock forward by `duration`. */
  readonly adjust: (duration: Duration.DurationInput) => Effect.Effect<void>
  /** The deadlines of the sleeps in progress, soonest first. */
  readonly sleeps: Effect.Effect<ReadonlyArray<number>>
}

export class SettableClock extends Context.Tag("testing/SettableClock")<SettableClock, Service>() {}

/** Where a clock starts unless told otherwise: a fixed instant, so runs are alike. */
export const defaultStart = new Date("2030-01-01T00:00:00.000Z")

interface Sleeper {
  readonly deadline: number
  readonly wake: () => void
}

export const make = (start: Date | number = defaultStart): Effect.Effect<Service> =>
  Effect.sync(() => {
    let millis = typeof start === "number" ? start : start.getTime()
    let sleepers: Array<Sleeper> = []

    const moveTo = (target: number) =>
      Effect.suspend(() => {
        if (target > millis) millis = target
        const due = sleepers.filter((sleeper) => sleeper.deadline <= millis).sort((a, b) => a.deadline - b.deadline)
        if (due.length === 0) return Effect.void
        sleepers = sleepers.filter((sleeper) => sleeper.deadline > millis)
        for (const sleeper of due) sleeper.wake()
        // Lets the fibers just woken run before the caller goes on.
        return Effect.yieldNow()
      })

    const clock: Clock.Clock = {
      [Clock.ClockTypeId]: Clock.ClockTypeId,
      unsafeCurrentTimeMillis: () => millis,
      currentTimeMillis: Effect.sync(() => millis),
      unsafeCurrentTimeNanos: () => BigInt(Math.floor(millis)) * 1_000_000n,
      currentTimeNanos: Effect.sync(() => BigInt(Math.floor(millis)) * 1_000_000n),
      sleep: (duration) =>
        Effect.async<void>((resume) => {
          const deadline = millis + Duration.toMillis(duration)
          if (deadline <= millis) return resume(Effect.void)
          const sleeper: Sleeper = { deadline, wake: () => resume(Effect.void) }
          sleepers.push(sleeper)
          return Effect.sync(() => {
            sleepers = sleepers.filter((other) => other !== sleeper)
          })
        })
    }

    return {
      clock,
      now: clock.currentTimeMillis,
      set: (instant) => moveTo(typeof instant === "number" ? instant : instant.getTime()),
      adjust: (duration) => Effect.suspend(() => moveTo(millis + Duration.toMillis(duration))),
      sleeps: Effect.sync(() => sleepers.map((sleeper) => sleeper.deadline).sort((a, b) => a - b))
    }
  })

/** A settable clock, installed as the `Clock` of everything built after it (and of the tests that use the layer). */
export const layer = (start: Date | number = defaultStart): Layer.Layer<SettableClock> =>
  Layer.unwrapEffect(
    Effect.map(make(start), (settable) =>
      Layer.merge(Layer.succeed(SettableClock, settable), Layer.setClock(settable.clock)))
  )

/** Moves the clock forward by `duration`, waking the sleeps that end by then. */
export const adjust = (duration: Duration.DurationInput): Effect.Effect<void, never, SettableClock> =>
  Effect.flatMap(SettableClock, (clock) => clock.adjust(duration))

/** Moves the clock to `instant`. */
export const set = (instant: Date | number): Effect.Effect<void, never, SettableClock> =>
  Effect.flatMap(SettableClock, (clock) => clock.set(instant))

/**
 * Waits, letting other fibers run, until at least `count` sleeps are in progress: before `adjust`, so that fibers
 * just forked (a timeout, a retry) have started theirs.
 */
export const awaitSleeps = (count = 1): Effect.Effect<void, never, SettableClock> =>
  Effect.flatMap(SettableClock, (clock) => {
    const loop: Effect.Effect<void> = Effect.flatMap(
      clock.sleeps,
      (sleeps) => sleeps.length >= count ? Effect.void : Effect.zipRight(Effect.yieldNow(), loop)
    )
    return loop
  })
