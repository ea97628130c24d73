/**
 * Who is calling a streaming route: the `Authorization: Bearer` header, verified like every other route's, or a
 * stream ticket in `?ticket=` (single use, bound to the user it was issued to), for browsers that cannot send
 * headers (EventSource, WebSocket). Missing or bad credentials: the 401 envelope with `WWW-Authenticate`, before
 * anything is streamed.
 */
import type * as HttpServerRequest from "@effect/platform/HttpServerRequest"
import { Context, Duration, Effect, Layer, Option } from "effect"
import { Auth } from "../core/auth/Auth.js"
import * as ApiError from "../core/errors/ApiError.js"
import { TicketStore } from "../core/realtime/TicketStore.js"
import { UserSync } from "../domain/UserSync.js"

export interface StreamCaller {
  /** The local user id (what events are keyed by). */
  readonly userId: string
  /** The Supabase user id. */
  readonly sub: string
}

export type Failure = ApiError.Unauthorized | ApiError.ServiceUnavailable | ApiError.DbPoolExhausted

export class StreamAuth extends Context.Tag("api/StreamAuth")<StreamAuth, {
  /** The caller of `request`, by its bearer token or its `?ticket=`. */
  readonly authenticate: (request: HttpServerRequest.HttpServerRequest) => Effect.Effect<StreamCaller, Failure>
  /** A ticket for `caller`, valid for `STREAM_TICKET_TTL_SECONDS`. */
  readonly issueTicket: (
    caller: StreamCaller
  ) => Effect.Effect<{ readonly ticket: string; readonly expiresInSeconds: number }, ApiError.ServiceUnavailable>
}>() {}

/** The `ticket` query parameter of a request target, if any. */
const ticketOf = (url: string): string | undefined => {
  const queryAt = url.indexOf("?")
  if (queryAt === -1) return undefined
  return new URLSearchParams(url.slice(queryAt + 1)).get("ticket") ?? undefined
}

const encodeSubject = (caller: StreamCaller) => JSON.stringify([caller.userId, caller.sub])

const decodeSubject = (subject: string): Option.Option<StreamCaller> => {
  try {
    const parsed: unknown = JSON.parse(subject)
    if (Array.isArray(parsed) && typeof parsed[0] === "string" && typeof parsed[1] === "string") {
      return Option.some({ userId: parsed[0], sub: parsed[1] })
    }
  } catch {
    // Not ours: refused below.
  }
  return Option.none()
}

const badTicket = new ApiError.Unauthorized({ message: "Invalid or expired stream ticket" })

export const layer: Layer.Layer<StreamAuth, never, Auth | UserSync | TicketStore> = Layer.effect(
  StreamAuth,
  Effect.gen(function*() {
    const auth = yield* Auth
    const users = yield* UserSync
    const tickets = yield* TicketStore
    const byBearer = (header: string) =>
      auth.verifyAuthorization(header).pipe(
        Effect.flatMap((claims) =>
          Effect.map(users.sync(claims), (user): StreamCaller => ({ userId: user.id, sub: user.supabaseUserId }))
        )
      )
    const byTicket = (ticket: string) =>
      tickets.redeem(ticket).pipe(
        Effect.flatMap((subject) =>
          Option.match(Option.flatMap(subject, decodeSubject), {
            onNone: () => Effect.fail(badTicket),
            onSome: Effect.succeed
          })
        )
      )
    return StreamAuth.of({
      authenticate: (request) => {
        const header = request.headers.authorization
        const ticket = header === undefined ? ticketOf(request.url) : undefined
        const caller: Effect.Effect<StreamCaller, unknown> = header !== undefined
          ? byBearer(header)
          : ticket !== undefined && ticket !== ""
          ? byTicket(ticket)
          : Effect.fail(new ApiError.Unauthorized({ message: "Missing bearer token or stream ticket" }))
        return caller.pipe(
          ApiError.declared(ApiError.Unauthorized, ApiError.ServiceUnavailable, ApiError.DbPoolExhausted)
        )
      },
      issueTicket: (caller) =>
        tickets.issue(encodeSubject(caller)).pipe(
          Effect.map((issued) => ({
            ticket: issued.ticket,
            expiresInSeconds: Math.round(Duration.toSeconds(issued.expiresIn))
          })),
          ApiError.declared(ApiError.ServiceUnavailable)
        )
    })
  })
)
