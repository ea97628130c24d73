/**
 * A streaming response body that is one pull repeated (as `Stream.repeatEffectChunkOption`), marked so the Node
 * adapter runs the pull itself instead of a stream's channel machinery: a long-lived stream (SSE) then holds only its
 * pull, not a channel executor per operator, and each delivery costs a few fiber steps.
 *
 * To any other consumer it is the ordinary stream; any operator applied to it makes a stream without the mark.
 */
import { type Chunk, type Effect, type Option, Stream } from "effect"

/** The next chunk; fails with `None` when the body is done, with `Some` when it failed. */
export type Pull<A, E = never, R = never> = Effect.Effect<Chunk.Chunk<A>, Option.Option<E>, R>

const PullTypeId: unique symbol = Symbol.for("core/http/PullBody")

interface Marked<A, E, R> {
  readonly [PullTypeId]: Pull<A, E, R>
}

/** The stream of the chunks `pull` gives until it fails, carrying `pull` for the adapter. */
export const stream = <A, E, R>(pull: Pull<A, E, R>): Stream.Stream<A, E, R> =>
  Object.assign(Stream.repeatEffectChunkOption(pull), { [PullTypeId]: pull })

/** The pull a stream made by `stream` carries, if it is one. */
export const pullOf = <A, E, R>(body: Stream.Stream<A, E, R>): Pull<A, E, R> | undefined =>
  (body as Partial<Marked<A, E, R>>)[PullTypeId]
