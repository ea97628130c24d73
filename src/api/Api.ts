/** The reference API's contract: every group, its endpoints and the errors they declare, in the envelope. */
import type * as HttpApiEndpoint from "@effect/platform/HttpApiEndpoint"
import * as OpenApi from "@effect/platform/OpenApi"
import * as ApiContract from "../core/http/ApiContract.js"
import { AdminUsersGroup } from "./AdminUsersGroup.js"
import { EventsGroup } from "./EventsGroup.js"
import { JobsGroup } from "./JobsGroup.js"
import { MeGroup } from "./MeGroup.js"
import { NotificationsGroup } from "./NotificationsGroup.js"
import { StreamTicketsGroup } from "./StreamTicketsGroup.js"
import { SystemGroup } from "./SystemGroup.js"

/** The API's groups, with paths relative to the configured prefix (`API_PREFIX`). */
class Api extends ApiContract.make("api")
  .add(MeGroup)
  .add(AdminUsersGroup)
  .add(StreamTicketsGroup)
  .add(NotificationsGroup)
  .add(JobsGroup)
{}

/** The API as served, under `prefix`. */
export const served = (prefix: string) => Api.prefix(prefix as HttpApiEndpoint.PathSegment)
export type ServedApi = ReturnType<typeof served>

/**
 * What the OpenAPI document and `/docs` describe: the served API, the event stream (served off the router) and the
 * system probes.
 */
export const documented = (prefix: string, version: string) =>
  Api.add(EventsGroup).prefix(prefix as HttpApiEndpoint.PathSegment).add(SystemGroup).annotateContext(
    OpenApi.annotations({ title: "Reference API", version, description: "Built on the Effect core" })
  )
