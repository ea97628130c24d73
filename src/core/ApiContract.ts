/** An `HttpApi` whose every error, the framework's decode failures included, is declared as the one envelope. */
import * as HttpApi from "@effect/platform/HttpApi"
import type { HttpApiDecodeError } from "@effect/platform/HttpApiError"
import type { Schema } from "effect"
import * as ApiError from "./ApiError.js"

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
  Object.assign(api, { errorSchema: ApiError.DecodeErrorEnvelope })
  return api.addError(ApiError.Internal.Envelope).addError(ApiError.ServiceUnavailable.Envelope)
}

/**
 * A request schema (payload, URL parameters, headers) that reports every offending field, not just the first:
 * `.setPayload(ApiContract.validated(CreateUser))`. The 422 envelope then lists them all in `details`.
 */
export const validated = <A, I, R>(schema: Schema.Schema<A, I, R>): Schema.Schema<A, I, R> =>
  schema.annotations({ parseOptions: { errors: "all" } })
