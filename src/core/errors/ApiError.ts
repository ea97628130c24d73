/**
 * The API's errors: one tagged class per kind, each with its status, code and headers, all rendered as the one
 * envelope `{"error":{"code","message","details"?}}`, in responses and in the OpenAPI document alike.
 */
import * as HttpApiSchema from "@effect/platform/HttpApiSchema"
import * as HttpApp from "@effect/platform/HttpApp"
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import { Effect, ParseResult, Predicate, Schema } from "effect"

export const TypeId: unique symbol = Symbol.for("core/ApiError")
export type TypeId = typeof TypeId

export interface Spec {
  readonly status: number
  readonly code: string
  /** Used when the error is raised without a message of its own. */
  readonly message: string
  readonly headers?: (error: any) => Readonly<Record<string, string>>
}

/** Any error of the hierarchy. */
export interface ApiError {
  readonly [TypeId]: Spec
  readonly _tag: string
  readonly message: string
  readonly details?: unknown
}

export const isApiError = (u: unknown): u is ApiError => Predicate.hasProperty(u, TypeId)

export const ErrorBody = Schema.Struct({
  code: Schema.String,
  message: Schema.String,
  details: Schema.optional(Schema.Unknown)
})

export const Envelope = Schema.Struct({ error: ErrorBody }).annotations({
  identifier: "ErrorEnvelope",
  description: "Every non-2xx response has this body"
})
export type Envelope = typeof Envelope.Type

const baseFields = (spec: Spec) => ({
  message: Schema.String.pipe(Schema.propertySignature, Schema.withConstructorDefault(() => spec.message)),
  details: Schema.optional(Schema.Unknown)
})

const envelopes = new WeakMap<object, Schema.Schema.Any>()

type BaseFields = ReturnType<typeof baseFields>

/** The constructor `Class` returns: a `Schema.TaggedError` class that also knows its status, code and envelope. */
export type ApiErrorClass<Self, Tag extends string, Extra extends Schema.Struct.Fields> =
  & Schema.TaggedErrorClass<Self, Tag, { readonly _tag: Schema.tag<Tag> } & BaseFields & Extra>
  & (new(...args: ReadonlyArray<any>) => { readonly [TypeId]: Spec })
  & {
    readonly status: number
    readonly code: string
    /** The schema to declare on endpoints: this error, encoded as the envelope, with its status. */
    readonly Envelope: Schema.Schema<Self, Envelope>
  }

/**
 * Declares an error of the hierarchy:
 * `class JobNotFound extends ApiError.Class<JobNotFound>()("JobNotFound", { status: 404, code: "JOB_NOT_FOUND", message: "Job not found" }) {}`,
 * then `.addError(JobNotFound.Envelope)` on the endpoints that raise it.
 */
export const Class = <Self>() =>
<const Tag extends string, const Extra extends Schema.Struct.Fields = {}>(
  tag: Tag,
  spec: Spec,
  extra?: Extra
): ApiErrorClass<Self, Tag, Extra> => {
  const Base = Schema.TaggedError<any>()(tag, { ...baseFields(spec), ...extra })
  Object.defineProperty(Base.prototype, TypeId, { value: spec })
  Object.defineProperties(Base, {
    status: { value: spec.status },
    code: { value: spec.code },
    Envelope: {
      get(this: Schema.Schema<ApiError, { readonly message: string; readonly details?: unknown }>) {
        let schema = envelopes.get(this)
        if (schema === undefined) {
          schema = envelopeOf(this, tag, spec)
          envelopes.set(this, schema)
        }
        return schema
      }
    }
  })
  return Base as any
}

const envelopeOf = <A extends ApiError, I extends { readonly message: string; readonly details?: unknown }>(
  schema: Schema.Schema<A, I>,
  tag: string,
  spec: Spec
): Schema.Schema<A, Envelope> =>
  Schema.transformOrFail(
    Schema.Struct({
      error: Schema.Struct({
        code: Schema.Literal(spec.code),
        message: Schema.String,
        details: Schema.optional(Schema.Unknown)
      })
    }),
    schema,
    {
      strict: false,
      decode: (envelope) =>
        ParseResult.succeed({
          _tag: tag,
          message: envelope.error.message,
          ...(envelope.error.details === undefined ? {} : { details: envelope.error.details })
        }),
      encode: (encoded) =>
        Effect.as(
          spec.headers === undefined ? Effect.void : withResponseHeaders(spec.headers(encoded)),
          bodyOf(spec.code, encoded.message, encoded.details)
        )
    }
  ).annotations(HttpApiSchema.annotations({ status: spec.status, description: spec.message }))

/** The envelope of an error with this code, message and details. */
export const bodyOf = (code: string, message: string, details: unknown): Envelope =>
  details === undefined ? { error: { code, message } } : { error: { code, message, details } }

/** Adds headers to the response of the current request once it is ready (how a declared error sets its headers). */
const withResponseHeaders = (headers: Readonly<Record<string, string>>) =>
  HttpApp.appendPreResponseHandler((_request, response) =>
    Effect.succeed(HttpServerResponse.setHeaders(response, headers))
  )

/** The status, headers and envelope of an error, for code that writes responses itself (the request pipeline). */
export const render = (
  error: ApiError
): { readonly status: number; readonly headers: Readonly<Record<string, string>>; readonly body: Envelope } => {
  const spec = error[TypeId]
  return {
    status: spec.status,
    headers: spec.headers?.(error) ?? {},
    body: bodyOf(spec.code, error.message, error.details)
  }
}

/** Errors from lower layers (database, providers) that know their public face implement this. */
export const ToApiError: unique symbol = Symbol.for("core/ApiError/ToApiError")
export interface Convertible {
  readonly [ToApiError]: () => ApiError
}
export const isConvertible = (u: unknown): u is Convertible => Predicate.hasProperty(u, ToApiError)

/** Turns internal errors that know their public face into API errors; others pass through unchanged. */
export const fromInternal = <A, E, R>(
  effect: Effect.Effect<A, E, R>
): Effect.Effect<A, Exclude<E, Convertible> | ApiError, R> =>
  Effect.mapError(effect, (error) => (isConvertible(error) ? error[ToApiError]() : (error as Exclude<E, Convertible>)))

/**
 * Keeps the failures an endpoint declares (converting internal errors that know their public face first) and turns
 * any other into a defect: an undeclared failure is a bug, answered as a logged 500 with nothing leaked.
 * `repo.find(id).pipe(ApiError.declared(UserNotFound, ServiceUnavailable, DbPoolExhausted))`
 */
export const declared = <const Classes extends ReadonlyArray<abstract new(...args: ReadonlyArray<any>) => ApiError>>(
  ...classes: Classes
) =>
<A, E, R>(effect: Effect.Effect<A, E, R>): Effect.Effect<A, InstanceType<Classes[number]>, R> =>
  Effect.catchAll(effect, (error) => {
    const converted = isConvertible(error) ? error[ToApiError]() : error
    return classes.some((cls) => converted instanceof cls)
      ? Effect.fail(converted as InstanceType<Classes[number]>)
      : Effect.die(converted)
  })

// The hierarchy -----------------------------------------------------------------------------------------------------

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

// Domain errors of the reference API, part of the seed's hierarchy.

export class UserNotFound extends Class<UserNotFound>()("UserNotFound", {
  status: 404,
  code: "USER_NOT_FOUND",
  message: "User not found"
}) {}

export class PropertyNotFound extends Class<PropertyNotFound>()("PropertyNotFound", {
  status: 404,
  code: "PROPERTY_NOT_FOUND",
  message: "Property not found"
}) {}

export class JobNotFound extends Class<JobNotFound>()("JobNotFound", {
  status: 404,
  code: "JOB_NOT_FOUND",
  message: "Job not found"
}) {}

export class BookingConflict extends Class<BookingConflict>()("BookingConflict", {
  status: 409,
  code: "BOOKING_CONFLICT",
  message: "The booking conflicts with an existing one"
}) {}

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
  DbPoolExhausted,
  UserNotFound,
  PropertyNotFound,
  JobNotFound,
  BookingConflict
] as const

const byStatus = new Map<number, (typeof all)[number]>(
  [BadRequest, Unauthorized, Forbidden, NotFound, MethodNotAllowed, RequestTimeout, Conflict, PayloadTooLarge,
    ExpectationFailed, Validation, RateLimit, HeadersTooLarge, Internal, ExternalService, ServiceUnavailable].map((
      cls
    ) => [cls.status, cls])
)

/** The general error for a bare status (a framework error that carries nothing else); unknown statuses are 500. */
export const fromStatus = (status: number): ApiError => new (byStatus.get(status) ?? Internal)()
