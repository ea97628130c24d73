/** The failures of `AuthAdmin` and their public faces, in the API's envelope. */
import { Data } from "effect"
import * as ApiError from "../errors/ApiError.js"
import * as ProviderErrors from "./ProviderErrors.js"

/** A user of the auth provider that does not exist (or an id no user can have). */
export class UserNotFound extends ApiError.Class<UserNotFound>()("UserNotFound", {
  status: 404,
  code: "USER_NOT_FOUND",
  message: "User not found"
}) {}

/** What went wrong, as far as the caller of the API is concerned. */
export type AdminFailure =
  | "UserNotFound"
  | "Conflict"
  | "Invalid"
  | "BadRequest"
  | "Unavailable"
  | "RateLimited"
  | "Upstream"
  | "NotConfigured"

/** An admin operation failed; `kind` decides its public face (see `AuthAdmin`'s table). */
export class AuthAdminError extends Data.TaggedError("AuthAdminError")<{
  readonly operation: string
  readonly kind: AdminFailure
  readonly message: string
  readonly status?: number
  readonly errorCode?: string
  readonly retryAfterSeconds?: number
}> implements ApiError.Convertible {
  [ApiError.ToApiError](): ApiError.ApiError {
    switch (this.kind) {
      case "UserNotFound":
        return new UserNotFound()
      case "Conflict":
        return new ApiError.Conflict({ message: this.message })
      case "Invalid":
        return new ApiError.Validation({
          message: this.message,
          details: [{ path: fieldOf(this.errorCode), message: this.message }]
        })
      case "BadRequest":
        return new ApiError.BadRequest({ message: this.message })
      case "Unavailable":
        return ProviderErrors.unavailable()
      case "RateLimited":
        return ProviderErrors.busy(this.retryAfterSeconds ?? ProviderErrors.unreachableRetryAfterSeconds)
      case "Upstream":
        return new ApiError.ExternalService({ message: "The authentication provider failed" })
      case "NotConfigured":
        return new ApiError.Internal({ message: "User administration is not configured" })
    }
  }
}

const fieldOf = (errorCode: string | undefined): string =>
  errorCode === undefined
    ? ""
    : /password/.test(errorCode)
    ? "password"
    : /phone/.test(errorCode)
    ? "phone"
    : /email/.test(errorCode)
    ? "email"
    : ""
