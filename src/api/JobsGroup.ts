/** The contract of `{prefix}/jobs`: start a demo background job, and read one of the caller's jobs. */
import * as HttpApiEndpoint from "@effect/platform/HttpApiEndpoint"
import * as HttpApiGroup from "@effect/platform/HttpApiGroup"
import { Option, Schema } from "effect"
import * as ApiError from "../core/errors/ApiError.js"
import * as ApiContract from "../core/http/ApiContract.js"
import { type Job, JobStatus } from "../core/jobs/Jobs.js"
import * as DemoJob from "../domain/DemoJob.js"
import { JobNotFound } from "../domain/DomainErrors.js"
import { Authentication } from "./Authentication.js"

export const JobView = Schema.Struct({
  id: Schema.UUID,
  status: JobStatus,
  /** Steps done so far. */
  step: Schema.Int,
  steps: Schema.Int,
  step_ms: Schema.Int,
  fail_at_step: Schema.NullOr(Schema.Int),
  /** Why it failed; null unless `status` is `failed`. */
  error: Schema.NullOr(Schema.String),
  created_at: Schema.Date,
  updated_at: Schema.Date
}).annotations({ identifier: "Job" })
export type JobView = typeof JobView.Type

/** The job as its owner sees it; none for a job of another kind. */
export const toView = (job: Job): Option.Option<JobView> =>
  Option.map(DemoJob.inputOf(job), (input) => ({
    id: job.id,
    status: job.status,
    step: job.step,
    steps: input.steps,
    step_ms: input.step_ms,
    fail_at_step: input.fail_at_step,
    error: job.error,
    created_at: job.createdAt,
    updated_at: job.updatedAt
  }))

const DbErrors = [ApiError.ServiceUnavailable.Envelope, ApiError.DbPoolExhausted.Envelope] as const

export class JobsGroup extends HttpApiGroup.make("jobs")
  .add(
    HttpApiEndpoint.post("create", "/jobs")
      .setPayload(ApiContract.validated(DemoJob.Input))
      .addSuccess(JobView, { status: 202 })
      .addError(ApiError.Validation.Envelope)
  )
  .add(
    HttpApiEndpoint.get("get", "/jobs/:id")
      // Any text: an id that is not a uuid is a job that does not exist, 404 like any other.
      .setPath(Schema.Struct({ id: Schema.String }))
      .addSuccess(JobView)
      .addError(JobNotFound.Envelope)
  )
  .addError(DbErrors[0])
  .addError(DbErrors[1])
  .middleware(Authentication)
{}
