/** `Retry-After` as a provider sends it (RFC 9110: delay-seconds or an HTTP-date), in whole seconds from now. */

/**
 * The seconds to wait from `now` (ms since the epoch): at least 1, rounded up; undefined when the header is missing
 * or is neither a number of seconds nor a date.
 */
export const parse = (header: string | undefined, now: number): number | undefined => {
  const value = header?.trim() ?? ""
  if (value === "") return undefined
  const seconds = /^\d+$/.test(value) ? Number(value) : (Date.parse(value) - now) / 1000
  return Number.isFinite(seconds) ? Math.max(1, Math.ceil(seconds)) : undefined
}
