/** `{prefix}/admin/users`: create, list, get and delete users through the Supabase admin API; admins only. */
import * as HttpApiBuilder from "@effect/platform/HttpApiBuilder"
import * as HttpApiEndpoint from "@effect/platform/HttpApiEndpoint"
import * as HttpApiGroup from "@effect/platform/HttpApiGroup"
import { Effect, Schema } from "effect"
import * as ApiContract from "../core/http/ApiContract.js"
import * as ApiError from "../core/errors/ApiError.js"
import { AdminUser, AuthAdmin } from "../core/auth/AuthAdmin.js"
import type { ServedApi } from "./Api.js"
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

export const CreateUser = Schema.Struct({
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

export const UserList = Schema.Struct({ users: Schema.Array(AdminUser) }).annotations({ identifier: "UserList" })


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
      .addError(ApiError.UserNotFound.Envelope)
  )
  .add(
    HttpApiEndpoint.del("delete", "/admin/users/:id")
      .setPath(UserId)
      .addSuccess(Schema.Void, { status: 204 })
      .addError(ApiError.UserNotFound.Envelope)
  )
  .addError(ApiError.ExternalService.Envelope)
  .middleware(AdminAuthentication)
{}

// The provider's 403 (our key refused) is a 502 `ExternalService`: the caller's role was checked by the middleware.
const upstream = [ApiError.ServiceUnavailable, ApiError.ExternalService] as const

export const AdminUsersLive = (api: ServedApi) =>
  HttpApiBuilder.group(api, "adminUsers", (handlers) =>
    Effect.gen(function*() {
      const admin = yield* AuthAdmin
      return handlers
        .handle("create", ({ payload }) =>
          admin.createUser({
            email: payload.email,
            email_confirm: true,
            ...(payload.password === undefined ? {} : { password: payload.password }),
            ...(payload.user_metadata === undefined ? {} : { user_metadata: payload.user_metadata }),
            app_metadata: payload.admin ? { role: "admin" } : {}
          }).pipe(ApiError.declared(...upstream, ApiError.Conflict, ApiError.Validation, ApiError.BadRequest)))
        .handle("list", () =>
          admin.listUsers().pipe(
            Effect.map((users) => ({ users })),
            ApiError.declared(...upstream)
          ))
        .handle("get", ({ path }) => admin.getUser(path.id).pipe(ApiError.declared(...upstream, ApiError.UserNotFound)))
        .handle("delete", ({ path }) => admin.deleteUser(path.id).pipe(ApiError.declared(...upstream, ApiError.UserNotFound)))
    }))

