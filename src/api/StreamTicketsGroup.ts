/** The contract of `POST {prefix}/stream-tickets`: a single-use ticket for `?ticket=` on the streaming routes. */
import * as HttpApiEndpoint from "@effect/platform/HttpApiEndpoint"
import * as HttpApiGroup from "@effect/platform/HttpApiGroup"
import { Schema } from "effect"
import * as ApiError from "../core/errors/ApiError.js"
import { Authentication } from "./Authentication.js"

const StreamTicket = Schema.Struct({
  ticket: Schema.String,
  /** Seconds until the ticket can no longer be redeemed. */
  expires_in: Schema.Int
}).annotations({ identifier: "StreamTicket" })

export class StreamTicketsGroup extends HttpApiGroup.make("streamTickets")
  .add(
    HttpApiEndpoint.post("create", "/stream-tickets")
      .addSuccess(StreamTicket, { status: 201 })
      .addError(ApiError.ServiceUnavailable.Envelope)
  )
  .middleware(Authentication)
{}
