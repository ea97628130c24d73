/** The reference API's contract: every group, its endpoints and the errors they declare, in the envelope. */
import * as OpenApi from "@effect/platform/OpenApi"
import * as ApiContract from "../core/ApiContract.js"
import { SystemGroup } from "./SystemGroup.js"

/** What the router serves through `HttpApi` (the system probes are served directly, see `SystemRoutes`). */
export class Api extends ApiContract.make("api") {}

/** What the OpenAPI document and `/docs` describe: the served API plus the system probes. */
export const DocumentedApi = Api.add(SystemGroup).annotateContext(
  OpenApi.annotations({ title: "Reference API", description: "Built on the Effect core" })
)
