/**
 * `AuthAdmin`: user administration through Supabase Auth's admin API with the service-role key (create, get,
 * update, delete, list every page, generate links), with the provider's errors mapped to the API's envelope:
 *
 * | Provider answer | Error (public face) |
 * |---|---|
 * | 404, or an id that is not a UUID (never sent) | `UserNotFound` 404 |
 * | 409; 422 `email_exists` / `phone_exists` / `user_already_exists` | `Conflict` 409 |
 * | other 422 (`weak_password`, ...) | `Validation` 422, the field in `details` |
 * | 413 (the request is too large for the provider) | `Validation` 422 |
 * | 400 (`validation_failed`, `bad_json`, ...) | `BadRequest` 400, the provider's message |
 * | 429 | `ServiceUnavailable` 503 with the provider's `Retry-After` |
 * | refused, timeout, 408, 5xx (520-530 included) | `ServiceUnavailable` 503, `Retry-After: 5` |
 * | 401/403 (our key refused), other statuses, unreadable answers | `ExternalService` 502 |
 * | no service-role key configured | `Internal` 500 |
 */
import * as HttpClientRequest from "@effect/platform/HttpClientRequest"
import type * as HttpClientResponse from "@effect/platform/HttpClientResponse"
import { Clock, type ConfigError, Context, Effect, Either, Layer, Option, Redacted, Schema } from "effect"
import { HttpClients, isTimeout } from "../clients/HttpClients.js"
import * as RetryAfter from "../clients/RetryAfter.js"
import * as Logging from "../runtime/Logging.js"
import { type AdminFailure, AuthAdminError } from "./AuthAdminError.js"
import {
  AdminUser,
  type CreateUserInput,
  type GeneratedLink,
  type GenerateLinkInput,
  LinkProperties,
  type UpdateUserInput,
  type UserPage
} from "./AuthAdminSchema.js"
import { isRecord, isUuid } from "./JwtClaims.js"
import { type ProviderSettings, providerUrl } from "./SupabaseSettings.js"

export { AuthAdminError, UserNotFound } from "./AuthAdminError.js"

const conflictCodes = new Set(["email_exists", "phone_exists", "user_already_exists", "identity_already_exists"])

export interface Service {
  readonly createUser: (input: CreateUserInput) => Effect.Effect<AdminUser, AuthAdminError>
  readonly getUser: (id: string) => Effect.Effect<AdminUser, AuthAdminError>
  readonly updateUser: (id: string, input: UpdateUserInput) => Effect.Effect<AdminUser, AuthAdminError>
  readonly deleteUser: (id: string, options?: { readonly softDelete?: boolean }) => Effect.Effect<void, AuthAdminError>
  /** One page (1-based) of users, newest first. */
  readonly listUsersPage: (
    options?: { readonly page?: number; readonly perPage?: number }
  ) => Effect.Effect<UserPage, AuthAdminError>
  /** Every user: the pages are followed through the `Link` header until there is no `rel="next"`. */
  readonly listUsers: (
    options?: { readonly perPage?: number }
  ) => Effect.Effect<ReadonlyArray<AdminUser>, AuthAdminError>
  readonly generateLink: (input: GenerateLinkInput) => Effect.Effect<GeneratedLink, AuthAdminError>
}

export class AuthAdmin extends Context.Tag("core/AuthAdmin")<AuthAdmin, Service>() {}

export interface Options {
  /** Base URL of the provider, without `/auth/v1`. */
  readonly url: string
  readonly serviceRoleKey: Option.Option<Redacted.Redacted>
  /** A guard against a provider that never stops paging. Default 10 000. */
  readonly maxPages?: number
}

/** The page number of the `rel="next"` link (GoTrue's link paths are its own, so only the number is used). */
export const nextPageOf = (link: string | undefined): number | undefined => {
  if (link === undefined) return undefined
  for (const part of link.split(",")) {
    const match = /<([^>]*)>\s*;\s*rel="?next"?/i.exec(part)
    const page = match === null ? null : /[?&]page=(\d+)/.exec(match[1] ?? "")
    if (page !== null && page !== undefined) return Number(page[1])
  }
  return undefined
}

export const make = (options: Options): Effect.Effect<Service, never, HttpClients> =>
  Effect.gen(function*() {
    const client = (yield* HttpClients).supabaseAuth
    const base = `${options.url}/auth/v1/admin`
    const maxPages = options.maxPages ?? 10_000

    const failure = (
      operation: string,
      kind: AdminFailure,
      message: string,
      extra: { readonly status?: number; readonly errorCode?: string; readonly retryAfterSeconds?: number } = {}
    ) => new AuthAdminError({ operation, kind, message, ...extra })

    /** Maps a non-2xx answer to the error it stands for. */
    const fromStatus = (operation: string, response: HttpClientResponse.HttpClientResponse) =>
      Effect.flatMap(
        Effect.orElseSucceed(response.json, () => undefined),
        (body): Effect.Effect<never, AuthAdminError> => {
          const status = response.status
          const code = isRecord(body) && typeof body["error_code"] === "string" ? body["error_code"] : undefined
          const said = isRecord(body) && typeof body["msg"] === "string"
            ? body["msg"].slice(0, 200)
            : `status ${status}`
          const extra = { status, ...(code === undefined ? {} : { errorCode: code }) }
          if (status === 404) return Effect.fail(failure(operation, "UserNotFound", said, extra))
          if (status === 409 || (status === 422 && code !== undefined && conflictCodes.has(code))) {
            return Effect.fail(failure(operation, "Conflict", said, extra))
          }
          if (status === 422) return Effect.fail(failure(operation, "Invalid", said, extra))
          // The caller's input is too large for the provider: a client mistake, not an outage.
          if (status === 413) {
            return Effect.fail(
              failure(operation, "Invalid", "The request is too large for the authentication provider", extra)
            )
          }
          if (status === 400) return Effect.fail(failure(operation, "BadRequest", said, extra))
          if (status === 429) {
            return Effect.flatMap(Clock.currentTimeMillis, (now) => {
              const retryAfter = RetryAfter.parse(response.headers["retry-after"], now)
              return Effect.fail(failure(operation, "RateLimited", said, {
                ...extra,
                ...(retryAfter === undefined ? {} : { retryAfterSeconds: retryAfter })
              }))
            })
          }
          if (status === 408 || status >= 500) return Effect.fail(failure(operation, "Unavailable", said, extra))
          return Effect.zipRight(
            status === 401 || status === 403
              ? Effect.logError("The auth provider refused the service-role key (check SUPABASE_SERVICE_ROLE_KEY)")
              : Effect.void,
            Effect.fail(failure(operation, "Upstream", said, extra))
          )
        }
      )

    /** Sends one admin request; a 2xx answer's body is decoded with `schema`. */
    const send = <A, I>(
      operation: string,
      request: HttpClientRequest.HttpClientRequest,
      schema: Schema.Schema<A, I>
    ): Effect.Effect<{ readonly body: A; readonly response: HttpClientResponse.HttpClientResponse }, AuthAdminError> =>
      Option.match(options.serviceRoleKey, {
        onNone: () => Effect.fail(failure(operation, "NotConfigured", "no SUPABASE_SERVICE_ROLE_KEY")),
        onSome: (key) =>
          client.execute(
            request.pipe(
              HttpClientRequest.bearerToken(Redacted.value(key)),
              HttpClientRequest.setHeader("apikey", Redacted.value(key)),
              HttpClientRequest.acceptJson
            )
          ).pipe(
            Effect.mapError((error) =>
              failure(operation, "Unavailable", isTimeout(error) ? "timeout" : "the provider cannot be reached")
            ),
            Effect.flatMap((response) =>
              response.status >= 200 && response.status < 300
                ? response.json.pipe(
                  Effect.flatMap(Schema.decodeUnknown(schema)),
                  Effect.mapError(() =>
                    failure(operation, "Upstream", "unreadable answer", { status: response.status })
                  ),
                  Effect.map((body) => ({ body, response }))
                )
                : fromStatus(operation, response)
            ),
            Effect.tapError((error) =>
              Effect.logWarning(
                Logging.fields("Auth admin operation failed", {
                  operation,
                  kind: error.kind,
                  status: error.status,
                  code: error.errorCode
                })
              )
            )
          )
      })

    const userPath = (operation: string, id: string) =>
      // An id that is not a UUID is never put in a URL: no user has it.
      isUuid(id)
        ? Effect.succeed(`${base}/users/${id}`)
        : Effect.fail(failure(operation, "UserNotFound", "User not found"))

    const listUsersPage = Effect.fn("AuthAdmin.listUsersPage")(function*(
      pageOptions: { readonly page?: number; readonly perPage?: number } = {}
    ) {
      const page = Math.max(1, Math.floor(pageOptions.page ?? 1))
      const perPage = Math.max(1, Math.floor(pageOptions.perPage ?? 50))
      const { body, response } = yield* send(
        "listUsers",
        HttpClientRequest.get(`${base}/users`, { urlParams: { page: String(page), per_page: String(perPage) } }),
        Schema.Struct({ users: Schema.Array(AdminUser) })
      )
      const total = Number(response.headers["x-total-count"])
      const next = nextPageOf(response.headers["link"])
      return {
        users: body.users,
        total: Number.isFinite(total) ? total : undefined,
        nextPage: next !== undefined && next > page ? next : undefined
      }
    })

    return {
      createUser: Effect.fn("AuthAdmin.createUser")(function*(input: CreateUserInput) {
        const request = HttpClientRequest.post(`${base}/users`).pipe(HttpClientRequest.bodyUnsafeJson(input))
        return (yield* send("createUser", request, AdminUser)).body
      }),
      getUser: Effect.fn("AuthAdmin.getUser")(function*(id: string) {
        return (yield* send("getUser", HttpClientRequest.get(yield* userPath("getUser", id)), AdminUser)).body
      }),
      updateUser: Effect.fn("AuthAdmin.updateUser")(function*(id: string, input: UpdateUserInput) {
        const request = HttpClientRequest.put(yield* userPath("updateUser", id)).pipe(
          HttpClientRequest.bodyUnsafeJson(input)
        )
        return (yield* send("updateUser", request, AdminUser)).body
      }),
      deleteUser: Effect.fn("AuthAdmin.deleteUser")(
        function*(id: string, deleteOptions?: { readonly softDelete?: boolean }) {
          const request = HttpClientRequest.del(yield* userPath("deleteUser", id)).pipe(
            HttpClientRequest.bodyUnsafeJson({ should_soft_delete: deleteOptions?.softDelete === true })
          )
          yield* send("deleteUser", request, Schema.Unknown)
        }
      ),
      listUsersPage,
      listUsers: Effect.fn("AuthAdmin.listUsers")(function*(listOptions: { readonly perPage?: number } = {}) {
        const users: Array<AdminUser> = []
        let page: number | undefined = 1
        for (let fetched = 0; page !== undefined; fetched++) {
          if (fetched === maxPages) return yield* failure("listUsers", "Upstream", `more than ${maxPages} pages`)
          const result: UserPage = yield* listUsersPage({ page, ...listOptions })
          users.push(...result.users)
          page = result.nextPage
        }
        return users
      }),
      generateLink: Effect.fn("AuthAdmin.generateLink")(function*(input: GenerateLinkInput) {
        const request = HttpClientRequest.post(`${base}/generate_link`).pipe(HttpClientRequest.bodyUnsafeJson(input))
        const { body } = yield* send("generateLink", request, Schema.extend(AdminUser, LinkProperties))
        const { action_link, email_otp, hashed_token, redirect_to, verification_type, ...user } = body
        const link: GeneratedLink = {
          properties: { action_link, email_otp, hashed_token, redirect_to, verification_type },
          user
        }
        return link
      })
    }
  })

export const layer = (options: Options): Layer.Layer<AuthAdmin, never, HttpClients> =>
  Layer.effect(AuthAdmin, make(options))

/** From the Supabase settings: `SUPABASE_URL` required; without `SUPABASE_SERVICE_ROLE_KEY` every operation fails (500). */
export const layerFromSettings = (
  supabase: ProviderSettings
): Layer.Layer<AuthAdmin, ConfigError.ConfigError, HttpClients> =>
  Layer.unwrapEffect(
    Either.map(providerUrl(supabase), (url) => layer({ url, serviceRoleKey: supabase.serviceRoleKey }))
  )
