/** The reference API's contract: every group, its endpoints and the errors they declare, in the envelope. */
import * as HttpApi from "@effect/platform/HttpApi"
import * as OpenApi from "@effect/platform/OpenApi"
import * as ApiError from "../core/ApiError.js"
import { SystemGroup } from "./SystemGroup.js"

/**
 * `HttpApi.make` declares its own 400 body for requests that fail decoding; ours is the 422 envelope, so the
 * declaration is swapped before any group is added (every later API value copies it).
 */
const make = <const Id extends string>(id: Id) => {
  const api = HttpApi.make(id)
  Object.assign(api, { errorSchema: ApiError.DecodeErrorEnvelope })
  return api
    .addError(ApiError.Internal.Envelope)
    .addError(ApiError.ServiceUnavailable.Envelope)
}

/** What the router serves through `HttpApi` (the system probes are served directly, see `SystemRoutes`). */
export class Api extends make("api") {}

/** What the OpenAPI document and `/docs` describe: the served API plus the system probes. */
export const DocumentedApi = Api.add(SystemGroup).annotateContext(
  OpenApi.annotations({ title: "Reference API", description: "Built on the Effect core" })
)
