/**
 * Stream tickets: short-lived, single-use credentials a browser can put in a URL (`?ticket=`) where it cannot send
 * an `Authorization` header (EventSource, WebSocket). Each is bound to a subject of the issuer's choosing (who the
 * caller is) and kept where every instance can redeem it: Redis when there is one, this instance's memory otherwise.
 */
import { Clock, Context, Data, Duration, Effect, Layer, Option } from "effect"
import * as Crypto from "node:crypto"
import * as ApiError from "../errors/ApiError.js"
import { Redis } from "./Redis.js"

/** The ticket store could not be reached (Redis down): the caller may retry shortly. */
export class TicketStoreUnavailable extends Data.TaggedError("TicketStoreUnavailable")<{
  readonly cause: unknown
}> implements ApiError.Convertible {
  [ApiError.ToApiError](): ApiError.ApiError {
    return new ApiError.ServiceUnavailable({ message: "Stream tickets are temporarily unavailable" })
  }
}

export interface Issued {
  readonly ticket: string
  readonly expiresIn: Duration.Duration
}

export class TicketStore extends Context.Tag("core/TicketStore")<TicketStore, {
  /** A new ticket for `subject`, valid for the store's time to live. */
  readonly issue: (subject: string) => Effect.Effect<Issued, TicketStoreUnavailable>
  /** The ticket's subject, once: a second redemption, an expired or unknown ticket give none. */
  readonly redeem: (ticket: string) => Effect.Effect<Option.Option<string>, TicketStoreUnavailable>
}>() {}

/** 256 random bits, URL-safe. */
const newTicket = () => Crypto.randomBytes(32).toString("base64url")

/** Tickets are stored under their hash: whoever reads the store cannot use what is in it. */
const keyOf = (ticket: string) => Crypto.createHash("sha256").update(ticket).digest("base64url")

/** Longer than any ticket we issue: anything else is refused without a lookup. */
const maxTicketLength = 64

/** In this instance's memory; expiry on Effect's `Clock`. */
export const makeMemory = (ttl: Duration.DurationInput) =>
  Effect.sync(() => {
    const lifetime = Duration.toMillis(ttl)
    const tickets = new Map<string, { readonly subject: string; readonly expiresAt: number }>()
    const prune = (now: number) => {
      for (const [key, entry] of tickets) if (entry.expiresAt <= now) tickets.delete(key)
    }
    return TicketStore.of({
      issue: (subject) =>
        Effect.map(Clock.currentTimeMillis, (now) => {
          prune(now)
          const ticket = newTicket()
          tickets.set(keyOf(ticket), { subject, expiresAt: now + lifetime })
          return { ticket, expiresIn: Duration.millis(lifetime) }
        }),
      redeem: (ticket) =>
        Effect.map(Clock.currentTimeMillis, (now) => {
          if (ticket.length > maxTicketLength) return Option.none()
          const key = keyOf(ticket)
          const entry = tickets.get(key)
          tickets.delete(key)
          return entry !== undefined && entry.expiresAt > now ? Option.some(entry.subject) : Option.none()
        })
    })
  })

export const layerMemory = (ttl: Duration.DurationInput): Layer.Layer<TicketStore> =>
  Layer.effect(TicketStore, makeMemory(ttl))

/** In Redis under `keyPrefix`, expired by Redis itself; `GETDEL` makes redemption single use across instances. */
export const makeRedis = (ttl: Duration.DurationInput, keyPrefix: string) =>
  Effect.map(Redis, (client) => {
    const lifetime = Math.max(1, Math.round(Duration.toMillis(ttl)))
    const unavailable = (cause: unknown) => new TicketStoreUnavailable({ cause })
    return TicketStore.of({
      issue: (subject) =>
        Effect.suspend(() => {
          const ticket = newTicket()
          return Effect.tryPromise({
            try: () => client.set(`${keyPrefix}${keyOf(ticket)}`, subject, "PX", lifetime),
            catch: unavailable
          }).pipe(Effect.as({ ticket, expiresIn: Duration.millis(lifetime) }))
        }),
      redeem: (ticket) =>
        ticket.length > maxTicketLength
          ? Effect.succeedNone
          : Effect.tryPromise({
            try: () => client.getdel(`${keyPrefix}${keyOf(ticket)}`),
            catch: unavailable
          }).pipe(Effect.map(Option.fromNullable))
    })
  })

export const layerRedis = (ttl: Duration.DurationInput, keyPrefix: string): Layer.Layer<TicketStore, never, Redis> =>
  Layer.effect(TicketStore, makeRedis(ttl, keyPrefix))
