/** The contract of `GET {prefix}/me`: the caller's user row. */
import * as HttpApiEndpoint from "@effect/platform/HttpApiEndpoint"
import * as HttpApiGroup from "@effect/platform/HttpApiGroup"
import { Schema } from "effect"
import type { User } from "../domain/UserRepo.js"
import { Authentication } from "./Authentication.js"

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
