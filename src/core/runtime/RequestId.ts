/** The request id of the work in progress: a `FiberRef` set once per request and read by logs and outgoing calls. */
import { Effect, FiberRef } from "effect"
import { dual } from "effect/Function"
import { randomUUID } from "node:crypto"

/** Header that carries the id in and out, lower-cased as Node delivers request headers. */
export const header = "x-request-id"

const safe = /^[A-Za-z0-9._-]{1,128}$/

/** An incoming id is kept only when it is a safe token: at most 128 letters, digits, `-`, `_` or `.`. */
export const isSafe = (candidate: string): boolean => safe.test(candidate)

export const generate = (): string => randomUUID()

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
