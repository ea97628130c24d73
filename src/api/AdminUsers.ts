/** `{prefix}/admin/users`: create, list, get and delete users through the Supabase admin API; admins only. */
import { Effect } from "effect"
import { AuthAdmin, UserNotFound } from "../core/auth/AuthAdmin.js"
import * as ApiError from "../core/errors/ApiError.js"
import * as HttpApiHandlers from "../core/http/HttpApiHandlers.js"
import type { ServedApi } from "./Api.js"

// The provider's 403 (our key refused) is a 502 `ExternalService`: the caller's role was checked by the middleware.
const upstream = [ApiError.ServiceUnavailable, ApiError.ExternalService] as const

export const AdminUsersLive = (api: ServedApi) =>
  HttpApiHandlers.group(api, "adminUsers", (handlers) =>
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
        .handle("get", ({ path }) => admin.getUser(path.id).pipe(ApiError.declared(...upstream, UserNotFound)))
        .handle("delete", ({ path }) => admin.deleteUser(path.id).pipe(ApiError.declared(...upstream, UserNotFound)))
    }))
