/**
 * How an error of the API is made and rendered: `Class` declares one (a tagged error that knows its status, code and
 * headers), `render` is the one renderer of the envelope `{"error":{"code","message","details"?}}` (responses,
 * early answers written straight to a socket, the OpenAPI document), and `declared` keeps what an endpoint may fail
 * with. The hierarchy itself is `ApiError`.
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
      encode: (encoded) => {
        const { body, headers } = renderSpec(spec, encoded)
        return Effect.as(spec.headers === undefined ? Effect.void : withResponseHeaders(headers), body)
      }
    }
  ).annotations(HttpApiSchema.annotations({ status: spec.status, description: spec.message }))

/** An error as it goes out: its status, its headers and the envelope. */
export interface Rendered {
  readonly status: number
  readonly headers: Readonly<Record<string, string>>
  readonly body: Envelope
}

/** The renderer: every envelope the app sends is made here. */
const renderSpec = (spec: Spec, error: { readonly message: string; readonly details?: unknown }): Rendered => ({
  status: spec.status,
  headers: spec.headers?.(error) ?? {},
  body: error.details === undefined
    ? { error: { code: spec.code, message: error.message } }
    : { error: { code: spec.code, message: error.message, details: error.details } }
})

/** The status, headers and envelope of an error. */
export const render = (error: ApiError): Rendered => renderSpec(error[TypeId], error)

/** The response for an error, for code that writes responses itself (the request pipeline). */
export const toResponse = (error: ApiError): HttpServerResponse.HttpServerResponse => {
  const { body, headers, status } = render(error)
  return HttpServerResponse.unsafeJson(body, { status, headers })
}

/** Adds headers to the response of the current request once it is ready (how a declared error sets its headers). */
const withResponseHeaders = (headers: Readonly<Record<string, string>>) =>
  HttpApp.appendPreResponseHandler((_request, response) =>
    Effect.succeed(HttpServerResponse.setHeaders(response, headers))
  )

/** Errors from lower layers (database, providers) that know their public face implement this. */
export const ToApiError: unique symbol = Symbol.for("core/ApiError/ToApiError")
export interface Convertible {
  readonly [ToApiError]: () => ApiError
}
export const isConvertible = (u: unknown): u is Convertible => Predicate.hasProperty(u, ToApiError)

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
