/** The system probes' contract (`/health`, `/ready`), documented with the API and served by `SystemRoutes`. */
import * as HttpApiEndpoint from "@effect/platform/HttpApiEndpoint"
import * as HttpApiGroup from "@effect/platform/HttpApiGroup"
import { Schema } from "effect"
import * as ApiError from "../core/errors/ApiError.js"

export const Health = Schema.Struct({
  status: Schema.Literal("ok"),
  version: Schema.String,
  environment: Schema.Literal("dev", "test", "prod")
}).annotations({ identifier: "Health" })

const CheckResult = Schema.Struct({
  name: Schema.String,
  status: Schema.Literal("ok", "failed", "degraded"),
  error: Schema.optional(Schema.String)
}).annotations({ identifier: "CheckResult" })

export const Ready = Schema.Struct({
  status: Schema.Literal("ready"),
  checks: Schema.Array(CheckResult)
}).annotations({ identifier: "Ready" })

export class SystemGroup extends HttpApiGroup.make("system", { topLevel: true })
  .add(HttpApiEndpoint.get("health", "/health").addSuccess(Health))
  .add(
    HttpApiEndpoint.get("ready", "/ready")
      .addSuccess(Ready)
      .addError(ApiError.ServiceUnavailable.Envelope)
  )
{}
