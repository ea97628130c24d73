/**
 * The API's errors: one class per kind, each with its status, code and headers, all rendered as the one envelope
 * `{"error":{"code","message","details"?}}`. Made with `Class` (`ApiErrorClass`), which the app's own errors use
 * too (`src/domain/DomainErrors.ts`).
 */
import { Schema } from "effect"
import { Class } from "./ApiErrorClass.js"
import type { ApiError } from "./ApiErrorClass.js"

export * from "./ApiErrorClass.js"

const retryAfter = { retryAfterSeconds: Schema.optional(Schema.Number) }
const retryAfterHeader = (fallback: number) => (error: { readonly retryAfterSeconds?: number | undefined }) => ({
  "retry-after": String(Math.max(0, Math.ceil(error.retryAfterSeconds ?? fallback)))
})

export class BadRequest extends Class<BadRequest>()("BadRequest", {
  status: 400,
  code: "BAD_REQUEST",
  message: "Bad request"
}) {}

export class Unauthorized extends Class<Unauthorized>()("Unauthorized", {
  status: 401,
  code: "UNAUTHORIZED",
  message: "Authentication required",
  headers: () => ({ "www-authenticate": "Bearer" })
}) {}

export class Forbidden extends Class<Forbidden>()("Forbidden", {
  status: 403,
  code: "FORBIDDEN",
  message: "Not allowed"
}) {}

export class NotFound extends Class<NotFound>()("NotFound", {
  status: 404,
  code: "NOT_FOUND",
  message: "Not found"
}) {}

export class MethodNotAllowed extends Class<MethodNotAllowed>()("MethodNotAllowed", {
  status: 405,
  code: "METHOD_NOT_ALLOWED",
  message: "Method not allowed"
}) {}

export class RequestTimeout extends Class<RequestTimeout>()("RequestTimeout", {
  status: 408,
  code: "REQUEST_TIMEOUT",
  message: "Request timed out"
}) {}

export class Conflict extends Class<Conflict>()("Conflict", {
  status: 409,
  code: "CONFLICT",
  message: "Conflict"
}) {}

export class PayloadTooLarge extends Class<PayloadTooLarge>()("PayloadTooLarge", {
  status: 413,
  code: "PAYLOAD_TOO_LARGE",
  message: "Request body too large"
}) {}

export class ExpectationFailed extends Class<ExpectationFailed>()("ExpectationFailed", {
  status: 417,
  code: "EXPECTATION_FAILED",
  message: "Expectation not supported"
}) {}

export class Validation extends Class<Validation>()("Validation", {
  status: 422,
  code: "VALIDATION_ERROR",
  message: "Request validation failed"
}) {}

export class RateLimit extends Class<RateLimit>()("RateLimit", {
  status: 429,
  code: "RATE_LIMITED",
  message: "Too many requests",
  headers: retryAfterHeader(60)
}, retryAfter) {}

export class HeadersTooLarge extends Class<HeadersTooLarge>()("HeadersTooLarge", {
  status: 431,
  code: "HEADERS_TOO_LARGE",
  message: "Request headers too large"
}) {}

export class Internal extends Class<Internal>()("Internal", {
  status: 500,
  code: "INTERNAL_ERROR",
  message: "Internal server error"
}) {}

export class Storage extends Class<Storage>()("Storage", {
  status: 500,
  code: "STORAGE_ERROR",
  message: "Storage operation failed"
}) {}

export class ExternalService extends Class<ExternalService>()("ExternalService", {
  status: 502,
  code: "EXTERNAL_SERVICE_ERROR",
  message: "An upstream service failed"
}) {}

export class ServiceUnavailable extends Class<ServiceUnavailable>()("ServiceUnavailable", {
  status: 503,
  code: "SERVICE_UNAVAILABLE",
  message: "Service temporarily unavailable",
  headers: retryAfterHeader(5)
}, retryAfter) {}

export class DbPoolExhausted extends Class<DbPoolExhausted>()("DbPoolExhausted", {
  status: 503,
  code: "DB_POOL_EXHAUSTED",
  message: "The database is busy; retry shortly",
  headers: retryAfterHeader(2)
}, retryAfter) {}

/** Every class of the hierarchy, for tests and documentation. */
export const all = [
  BadRequest,
  Unauthorized,
  Forbidden,
  NotFound,
  MethodNotAllowed,
  RequestTimeout,
  Conflict,
  PayloadTooLarge,
  ExpectationFailed,
  Validation,
  RateLimit,
  HeadersTooLarge,
  Internal,
  Storage,
  ExternalService,
  ServiceUnavailable,
  DbPoolExhausted
] as const

const byStatus = new Map<number, (typeof all)[number]>(
  [
    BadRequest,
    Unauthorized,
    Forbidden,
    NotFound,
    MethodNotAllowed,
    RequestTimeout,
    Conflict,
    PayloadTooLarge,
    ExpectationFailed,
    Validation,
    RateLimit,
    HeadersTooLarge,
    Internal,
    ExternalService,
    ServiceUnavailable
  ].map((
    cls
  ) => [cls.status, cls])
)

/** The general error for a bare status (a framework error that carries nothing else); unknown statuses are 500. */
export const fromStatus = (status: number): ApiError => new (byStatus.get(status) ?? Internal)()
