/** The contract of `{prefix}/admin/users`: create, list, get and delete users; admins only. */
import * as HttpApiEndpoint from "@effect/platform/HttpApiEndpoint"
import * as HttpApiGroup from "@effect/platform/HttpApiGroup"
import { Schema } from "effect"
import { UserNotFound } from "../core/auth/AuthAdminError.js"
import { AdminUser } from "../core/auth/AuthAdminSchema.js"
import * as ApiError from "../core/errors/ApiError.js"
import * as ApiContract from "../core/http/ApiContract.js"
import * as JsonDepth from "../core/http/JsonDepth.js"
import { AdminAuthentication } from "./Authentication.js"

/**
 * Limits of `user_metadata`, checked before anything reaches the provider: Supabase copies it into every access
 * token of the user, and tokens longer than `JWT_MAX_TOKEN_BYTES` (8 KiB by default) are refused.
 */
export const userMetadataLimits = { maxBytes: 4096, maxDepth: 8 } as const

const UserMetadata = Schema.Record({ key: Schema.String, value: Schema.Unknown }).pipe(
  Schema.filter((metadata) =>
    JsonDepth.of(metadata) <= userMetadataLimits.maxDepth ||
    `must nest at most ${userMetadataLimits.maxDepth} levels deep`
  ),
  Schema.filter((metadata) =>
    Buffer.byteLength(JSON.stringify(metadata)) <= userMetadataLimits.maxBytes ||
    `must be at most ${userMetadataLimits.maxBytes} bytes as JSON`
  )
)

const CreateUser = Schema.Struct({
  // GoTrue's own limits: emails up to 255 characters, passwords up to 72 (bcrypt's).
  email: Schema.String.pipe(
    Schema.maxLength(255, { message: () => "must be at most 255 characters" }),
    Schema.pattern(/^[^\s@]+@[^\s@]+\.[^\s@]+$/, { message: () => "must be an email address" })
  ),
  password: Schema.optional(Schema.String.pipe(
    Schema.minLength(8, { message: () => "must be at least 8 characters" }),
    Schema.maxLength(72, { message: () => "must be at most 72 characters" })
  )),
  admin: Schema.optionalWith(Schema.Boolean, { default: () => false }),
  user_metadata: Schema.optional(UserMetadata)
}).annotations({ identifier: "CreateUser" })

const UserId = Schema.Struct({ id: Schema.UUID })

const UserList = Schema.Struct({ users: Schema.Array(AdminUser) }).annotations({ identifier: "UserList" })

export class AdminUsersGroup extends HttpApiGroup.make("adminUsers")
  .add(
    HttpApiEndpoint.post("create", "/admin/users")
      .setPayload(ApiContract.validated(CreateUser))
      .addSuccess(AdminUser, { status: 201 })
      .addError(ApiError.Conflict.Envelope)
      .addError(ApiError.Validation.Envelope)
      .addError(ApiError.BadRequest.Envelope)
  )
  .add(HttpApiEndpoint.get("list", "/admin/users").addSuccess(UserList))
  .add(
    HttpApiEndpoint.get("get", "/admin/users/:id")
      .setPath(UserId)
      .addSuccess(AdminUser)
      .addError(UserNotFound.Envelope)
  )
  .add(
    HttpApiEndpoint.del("delete", "/admin/users/:id")
      .setPath(UserId)
      .addSuccess(Schema.Void, { status: 204 })
      .addError(UserNotFound.Envelope)
  )
  .addError(ApiError.ExternalService.Envelope)
  .middleware(AdminAuthentication)
{}
