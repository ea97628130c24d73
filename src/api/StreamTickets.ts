/** `POST {prefix}/stream-tickets`: bearer only; a ticket bound to the caller, redeemable once on any instance. */
import * as HttpApiBuilder from "@effect/platform/HttpApiBuilder"
import { Effect } from "effect"
import type { ServedApi } from "./Api.js"
import { CurrentUser } from "./Authentication.js"
import { StreamAuth } from "./StreamAuth.js"

export const StreamTicketsLive = (api: ServedApi) =>
  HttpApiBuilder.group(api, "streamTickets", (handlers) =>
    Effect.gen(function*() {
      const streamAuth = yield* StreamAuth
      return handlers.handle("create", () =>
        Effect.flatMap(CurrentUser, ({ user }) =>
          Effect.map(
            streamAuth.issueTicket({ userId: user.id, sub: user.supabaseUserId }),
            (issued) => ({ ticket: issued.ticket, expires_in: issued.expiresInSeconds })
          )))
    }))
