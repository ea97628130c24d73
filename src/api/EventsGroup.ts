/**
 * The contract of `GET {prefix}/events`, for the OpenAPI document: the route itself is served straight off the router
 * (`Events.ts`), since a stream is no JSON endpoint.
 */
import * as HttpApiEndpoint from "@effect/platform/HttpApiEndpoint"
import * as HttpApiGroup from "@effect/platform/HttpApiGroup"
import * as HttpApiMiddleware from "@effect/platform/HttpApiMiddleware"
import * as HttpApiSchema from "@effect/platform/HttpApiSchema"
import * as HttpApiSecurity from "@effect/platform/HttpApiSecurity"
import * as OpenApi from "@effect/platform/OpenApi"
import { Schema } from "effect"
import * as ApiError from "../core/errors/ApiError.js"

/** Documents the two ways in: a bearer token, or a stream ticket in `?ticket=`. */
class StreamCredentials extends HttpApiMiddleware.Tag<StreamCredentials>()("api/StreamCredentials", {
  failure: ApiError.Unauthorized.Envelope,
  security: { bearer: HttpApiSecurity.bearer, ticket: HttpApiSecurity.apiKey({ key: "ticket", in: "query" }) }
}) {}

export class EventsGroup extends HttpApiGroup.make("events")
  .add(
    HttpApiEndpoint.get("stream", "/events")
      .setUrlParams(Schema.Struct({
        ticket: Schema.optional(Schema.String),
        last_event_id: Schema.optional(Schema.String)
      }))
      .setHeaders(Schema.Struct({ "last-event-id": Schema.optional(Schema.String) }))
      .addSuccess(Schema.String.pipe(HttpApiSchema.withEncoding({ kind: "Text", contentType: "text/event-stream" })))
      .addError(ApiError.ServiceUnavailable.Envelope)
      .annotate(
        OpenApi.Description,
        "Server-sent events: `id`, `event`, `data` (one line of JSON) per event; resumes after `Last-Event-ID` or " +
          "`?last_event_id=`; 503 with `Retry-After` past the instance's stream cap"
      )
  )
  .middleware(StreamCredentials)
{}
