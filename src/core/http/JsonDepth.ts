/**
 * How deeply JSON nests, measured without recursion (so a hostile document cannot overflow the stack while it is
 * being measured): a scalar is 0 deep, an object or array one more than its deepest member.
 */

const openBrace = 0x7b
const closeBrace = 0x7d
const openBracket = 0x5b
const closeBracket = 0x5d
const quote = 0x22
const backslash = 0x5c

/** True when the JSON text nests deeper than `max`; brackets inside strings do not count. The text need not be valid. */
export const textExceeds = (text: string, max: number): boolean => {
  let depth = 0
  let inString = false
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i)
    if (inString) {
      if (c === backslash) i++
      else if (c === quote) inString = false
    } else if (c === quote) {
      inString = true
    } else if (c === openBrace || c === openBracket) {
      if (++depth > max) return true
    } else if (c === closeBrace || c === closeBracket) {
      depth--
    }
  }
  return false
}

/** The depth of a parsed JSON value (objects and arrays; anything else is a scalar). */
export const of = (value: unknown): number => {
  let deepest = 0
  const pending: Array<readonly [unknown, number]> = [[value, 0]]
  for (let next = pending.pop(); next !== undefined; next = pending.pop()) {
    const [current, depth] = next
    if (typeof current !== "object" || current === null) continue
    const inner = depth + 1
    if (inner > deepest) deepest = inner
    for (const member of Array.isArray(current) ? current : Object.values(current)) pending.push([member, inner])
  }
  return deepest
}
