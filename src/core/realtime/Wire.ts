/**
 * What travels on a user's backplane topic: a logged event (its id and the id of the user's event before it) or an
 * unlogged one, as one line of header and the event's JSON text, so no instance parses or re-encodes the data.
 */

/** Event types go into `event:` lines of SSE frames: no spaces, no line breaks. */
const eventType = /^[A-Za-z0-9_.:-]{1,64}$/

export const isEventType = (type: string): boolean => eventType.test(type)

export interface Logged {
  readonly id: number
  /** The user's event before this one (0: none). */
  readonly prev: number
  readonly userId: string
  readonly type: string
  readonly data: string
}

/**
 * An item of a user's feed, shaped as the feed hands it on (`EventFeed.Item`): one object per message, shared by
 * every stream of the instance that receives it, so per-message work (its frame's bytes) is done once.
 */
export type Item =
  | {
    readonly _tag: "Event"
    readonly id: number
    readonly prev: number
    readonly type: string
    readonly data: string
  }
  | { readonly _tag: "Unlogged"; readonly type: string; readonly data: string }

export const encode = (event: Logged): string => `L ${event.id} ${event.prev} ${event.type}\n${event.data}`

export const encodeUnlogged = (type: string, data: string): string => `U ${type}\n${data}`

/** The item a message carries; undefined for anything else (a message of another version, say). */
export const decode = (message: string): Item | undefined => {
  const newline = message.indexOf("\n")
  if (newline === -1) return undefined
  const head = message.slice(0, newline).split(" ")
  const data = message.slice(newline + 1)
  if (head[0] === "L" && head.length === 4) {
    const id = Number(head[1])
    const prev = Number(head[2])
    const type = head[3]!
    if (!Number.isSafeInteger(id) || !Number.isSafeInteger(prev) || !isEventType(type)) return undefined
    return { _tag: "Event", id, prev, type, data }
  }
  if (head[0] === "U" && head.length === 2 && isEventType(head[1]!)) {
    return { _tag: "Unlogged", type: head[1]!, data }
  }
  return undefined
}
