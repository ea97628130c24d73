/** `{prefix}/admin/users`: create, list, get and delete users through the Supabase admin API; admins only. */
import * as HttpApiBuilder from "@effect/platform/HttpApiBuilder"
import * as HttpApiEndpoint from "@effect/platform/HttpApiEndpoint"
import * as HttpApiGroup from "@effect/platform/HttpApiGroup"
import { Effect, Schema } from "effect"
import * as ApiContract from "../core/ApiContract.js"
import * as ApiError from "../core/ApiError.js"
import { AdminUser, AuthAdmin } from "../core/AuthAdmin.js"
import type { ServedApi } from "./Api.js"
import { Authentication, requireAdmin } from "./Authentication.js"

export const CreateUser = Schema.Struct({
  email: Schema.String.pipe(Schema.pattern(/^[^\s@]+@[^\s@]+\.[^\s@]+$/, { message: () => "must be an email address" })),
  password: Schema.optional(Schema.String.pipe(Schema.minLength(8))),
  admin: Schema.optionalWith(Schema.Boolean, { default: () => false }),
  user_metadata: Schema.optional(Schema.Record({ key: Schema.String, value: Schema.Unknown }))
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
  .addError(ApiError.Forbidden.Envelope)
  .addError(ApiError.ExternalService.Envelope)
  .middleware(Authentication)
{}

const upstream = [ApiError.ServiceUnavailable, ApiError.ExternalService, ApiError.Forbidden] as const

export const AdminUsersLive = (api: ServedApi) =>
  HttpApiBuilder.group(api, "adminUsers", (handlers) =>
    Effect.gen(function*() {
      const admin = yield* AuthAdmin
      return handlers
        .handle("create", ({ payload }) =>
          requireAdmin.pipe(
            Effect.zipRight(admin.createUser({
              email: payload.email,
              email_confirm: true,
              ...(payload.password === undefined ? {} : { password: payload.password }),
              ...(payload.user_metadata === undefined ? {} : { user_metadata: payload.user_metadata }),
              app_metadata: payload.admin ? { role: "admin" } : {}
            })),
            ApiError.declared(...upstream, ApiError.Conflict, ApiError.Validation, ApiError.BadRequest)
          ))
        .handle("list", () =>
          requireAdmin.pipe(
            Effect.zipRight(admin.listUsers()),
            Effect.map((users) => ({ users })),
            ApiError.declared(...upstream)
          ))
        .handle("get", ({ path }) =>
          requireAdmin.pipe(
            Effect.zipRight(admin.getUser(path.id)),
            ApiError.declared(...upstream, ApiError.UserNotFound)
          ))
        .handle("delete", ({ path }) =>
          requireAdmin.pipe(
            Effect.zipRight(admin.deleteUser(path.id)),
            ApiError.declared(...upstream, ApiError.UserNotFound)
          ))
    }))

