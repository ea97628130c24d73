/** An `HttpApi` whose every error, the framework's decode failures included, is declared as the one envelope. */
import * as HttpApi from "@effect/platform/HttpApi"
import { HttpApiDecodeError } from "@effect/platform/HttpApiError"
import * as HttpApiSchema from "@effect/platform/HttpApiSchema"
import { ParseResult, Schema } from "effect"
import * as ApiError from "../errors/ApiError.js"

// ArrayFormatter paths hold symbols as `{ _tag: "symbol", key }`.
const pathPart = (part: unknown): string =>
  typeof part === "object" && part !== null && "key" in part ? String(part.key) : String(part)

// Schema's default messages end with the offending value (`Expected string, actual "hunter2"`): a client's
// password, or a megabyte of it, is never sent back.
const withoutActual = (message: string): string => message.replace(/, actual [\s\S]*$/, "")

/**
 * The offending fields of a request that failed schema decoding: where, and what was expected (never the value
 * sent); one entry per field (a field can fail several alternatives of a union, the first says it best).
 */
export const validationDetails = (error: {
  readonly issues: ReadonlyArray<{ readonly path: ReadonlyArray<unknown>; readonly message: string }>
}): ReadonlyArray<{ path: string; message: string }> => {
  const byPath = new Map<string, string>()
  for (const issue of error.issues) {
    const path = issue.path.map(pathPart).join(".")
    if (!byPath.has(path)) byPath.set(path, withoutActual(issue.message))
  }
  return [...byPath].map(([path, message]) => ({ path, message }))
}

/**
 * `HttpApi` answers a request that fails decoding with its own 400 body; this schema takes that error's place in the
 * API so it is a 422 `VALIDATION_ERROR` envelope listing the offending fields, in responses and in the document.
 */
export const DecodeErrorEnvelope: Schema.Schema<HttpApiDecodeError, ApiError.Envelope> = Schema.transformOrFail(
  ApiError.Envelope,
  HttpApiDecodeError,
  {
    strict: false,
    decode: (envelope) =>
      ParseResult.succeed({
        _tag: "HttpApiDecodeError" as const,
        message: envelope.error.message,
        issues: Array.isArray(envelope.error.details)
          ? envelope.error.details.map((detail: { path?: unknown; message?: unknown }) => ({
            _tag: "Type" as const,
            path: String(detail?.path ?? "").split(".").filter((part) => part !== ""),
            message: String(detail?.message ?? "")
          }))
          : []
      }),
    encode: (encoded) =>
      ParseResult.succeed(ApiError.render(new ApiError.Validation({ details: validationDetails(encoded) })).body)
  }
).annotations(HttpApiSchema.annotations({ status: 422, description: "Request validation failed" }))

/**
 * `HttpApi.make` with the envelope: a request that fails schema decoding is a 422 `VALIDATION_ERROR` listing the
 * offending fields (where `HttpApi` would answer its own 400 body), and every endpoint may answer 500 and 503.
 * `HttpApi.make` hard-wires its decode error schema, so it is swapped here, before any group is added: every later
 * API value copies it.
 */
export const make = <const Id extends string>(
  id: Id
): HttpApi.HttpApi<Id, never, HttpApiDecodeError | ApiError.Internal | ApiError.ServiceUnavailable> => {
  const api = HttpApi.make(id)
  Object.assign(api, { errorSchema: DecodeErrorEnvelope })
  return api.addError(ApiError.Internal.Envelope).addError(ApiError.ServiceUnavailable.Envelope)
}

/**
 * A request schema (payload, URL parameters, headers) that reports every offending field, not just the first:
 * `.setPayload(ApiContract.validated(CreateUser))`. The 422 envelope then lists them all in `details`.
 */
export const validated = <A, I, R>(schema: Schema.Schema<A, I, R>): Schema.Schema<A, I, R> =>
  schema.annotations({ parseOptions: { errors: "all" } })
