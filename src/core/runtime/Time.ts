/** Time as the app sees it: read from Effect's `Clock`, so tests move it with `TestClock`. */
import { Clock, Effect, Option } from "effect"

/** The current instant in UTC. */
export const utcNow: Effect.Effect<Date> = Effect.map(Clock.currentTimeMillis, (millis) => new Date(millis))

const zoneSuffix = /(?:[zZ]|[+-]\d{2}(?::?\d{2})?)$/
const timeOfDay = /\d{2}:\d{2}/

/**
 * A timestamp pinned to an instant. A naive timestamp (a time of day with no `Z` and no offset, as databases and
 * older clients send) is read as UTC, as the Python backend this core ports (`make_tz_aware`) did; a `Date` is already an instant. `None` when
 * the text is not a date.
 */
export const makeTzAware = (value: Date | string): Option.Option<Date> => {
  if (value instanceof Date) {
    return Number.isNaN(value.getTime())
      ? Option.none()
      : Option.some(new Date(value.getTime()))
  }
  const trimmed = value.trim().replace(/^(\d{4}-\d{2}-\d{2}) /, "$1T")
  const naive = timeOfDay.test(trimmed) && !zoneSuffix.test(trimmed)
  const parsed = new Date(naive ? `${trimmed}Z` : trimmed)
  return Number.isNaN(parsed.getTime()) ? Option.none() : Option.some(parsed)
}
