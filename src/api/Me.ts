/** `GET {prefix}/me`: the caller's user row, created the first time the caller is seen. */
import * as HttpApiBuilder from "@effect/platform/HttpApiBuilder"
import * as HttpApiEndpoint from "@effect/platform/HttpApiEndpoint"
import * as HttpApiGroup from "@effect/platform/HttpApiGroup"
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import { Effect, Schema } from "effect"
import type { User } from "../domain/UserRepo.js"
import type { ServedApi } from "./Api.js"
import { Authentication, CurrentUser } from "./Authentication.js"

export const UserView = Schema.Struct({
  id: Schema.UUID,
  supabase_user_id: Schema.UUID,
  email: Schema.NullOr(Schema.String),
  role: Schema.String,
  created_at: Schema.Date,
  updated_at: Schema.Date,
  last_seen_at: Schema.Date
}).annotations({ identifier: "User" })

export const toView = (user: User): typeof UserView.Type => ({
  id: user.id,
  supabase_user_id: user.supabaseUserId,
  email: user.email,
  role: user.role,
  created_at: user.createdAt,
  updated_at: user.updatedAt,
  last_seen_at: user.lastSeenAt
})

export class MeGroup extends HttpApiGroup.make("me")
  .add(HttpApiEndpoint.get("me", "/me").addSuccess(UserView))
  .middleware(Authentication)
{}

const encodeView = Schema.encodeSync(UserView)

/**
 * The 200 response for a row, encoded once per row object: `UserSync` hands out the same object while the row is
 * fresh, so a caller's repeated requests skip the schema encoding and the JSON serialization.
 */
const responses = new WeakMap<User, HttpServerResponse.HttpServerResponse>()
const responseFor = (user: User): HttpServerResponse.HttpServerResponse => {
  let response = responses.get(user)
  if (response === undefined) {
    response = HttpServerResponse.unsafeJson(encodeView(toView(user)))
    responses.set(user, response)
  }
  return response
}

export const MeLive = (api: ServedApi) =>
  HttpApiBuilder.group(api, "me", (handlers) =>
    handlers.handleRaw("me", () => Effect.map(CurrentUser, ({ user }) => responseFor(user))))
