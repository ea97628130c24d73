/** The request id of the work in progress: a `FiberRef` set once per request and read by logs and outgoing calls. */
import { Effect, FiberRef } from "effect"
import { dual } from "effect/Function"
import { randomFillSync } from "node:crypto"

/** Header that carries the id in and out, lower-cased as Node delivers request headers. */
export const header = "x-request-id"

const safe = /^[A-Za-z0-9._-]{1,128}$/

/** An incoming id is kept only when it is a safe token: at most 128 letters, digits, `-`, `_` or `.`. */
export const isSafe = (candidate: string): boolean => safe.test(candidate)

const hexDigits = Buffer.from("0123456789abcdef", "latin1")
// Random bytes for 256 ids at a time, as `crypto.randomUUID` keeps them; the text of one id is written here.
const entropy = new Uint8Array(16 * 256)
let drawn = entropy.length
const text = Buffer.alloc(36)

/**
 * A random (version 4) UUID, as `crypto.randomUUID` makes it, written as one flat string: `randomUUID`'s text is
 * joined from pieces, and whatever first reads it (the response header's check, the log line) pays for the join.
 */
export const generate = (): string => {
  if (drawn === entropy.length) {
    randomFillSync(entropy)
    drawn = 0
  }
  let at = 0
  for (let index = 0; index < 16; index++) {
    let byte = entropy[drawn + index]!
    if (index === 6) byte = (byte & 0x0f) | 0x40
    else if (index === 8) byte = (byte & 0x3f) | 0x80
    if (at === 8 || at === 13 || at === 18 || at === 23) text[at++] = 0x2d
    text[at++] = hexDigits[byte >> 4]!
    text[at++] = hexDigits[byte & 0x0f]!
  }
  drawn += 16
  return text.toString("latin1", 0, 36)
}

/** The id to use for a request: the client's when safe, a fresh one otherwise. */
export const fromHeader = (incoming: string | ReadonlyArray<string> | undefined): string =>
  typeof incoming === "string" && isSafe(incoming) ? incoming : generate()

/** Empty outside a request; forked fibers inherit it, so background work started by a request keeps its id. */
export const currentRequestId: FiberRef.FiberRef<string> = FiberRef.unsafeMake("")

/** Runs `effect` as part of the request `id` (for background work and tests). */
export const withRequestId: {
  (id: string): <A, E, R>(effect: Effect.Effect<A, E, R>) => Effect.Effect<A, E, R>
  <A, E, R>(effect: Effect.Effect<A, E, R>, id: string): Effect.Effect<A, E, R>
} = dual(2, <A, E, R>(effect: Effect.Effect<A, E, R>, id: string) => Effect.locally(effect, currentRequestId, id))
