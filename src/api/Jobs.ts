/** `{prefix}/jobs`: the demo background job, started for the caller and read back by its owner only. */
import { Effect, Option } from "effect"
import type { DbFailure } from "../core/db/DbResilience.js"
import * as ApiError from "../core/errors/ApiError.js"
import * as HttpApiHandlers from "../core/http/HttpApiHandlers.js"
import { Jobs, type Service as JobsService } from "../core/jobs/Jobs.js"
import * as DemoJob from "../domain/DemoJob.js"
import { JobNotFound } from "../domain/DomainErrors.js"
import type { ServedApi } from "./Api.js"
import { CurrentUser } from "./Authentication.js"
import { type JobView, toView } from "./JobsGroup.js"

const dbErrors = [ApiError.ServiceUnavailable, ApiError.DbPoolExhausted] as const

/** The demo job with this id if `userId` owns it; another user's, or none, is `JobNotFound`. */
export const ownJob = (
  jobs: JobsService,
  userId: string,
  id: string
): Effect.Effect<JobView, JobNotFound | DbFailure> =>
  Effect.flatMap(
    jobs.find(id),
    (job) =>
      Option.filter(job, (job) => job.ownerId === userId && job.kind === DemoJob.kind).pipe(
        Option.flatMap(toView),
        Option.match({ onNone: () => Effect.fail(new JobNotFound()), onSome: Effect.succeed })
      )
  )

export const JobsLive = (api: ServedApi) =>
  HttpApiHandlers.group(api, "jobs", (handlers) =>
    Effect.gen(function*() {
      const jobs = yield* Jobs
      return handlers
        .handle("create", ({ payload }) =>
          Effect.gen(function*() {
            const { user } = yield* CurrentUser
            const job = yield* jobs.enqueue({ kind: DemoJob.kind, ownerId: user.id, input: payload })
            // The input was just validated by the same schema: a view always exists.
            return Option.getOrThrow(toView(job))
          }).pipe(ApiError.declared(...dbErrors)))
        .handle("get", ({ path }) =>
          Effect.flatMap(CurrentUser, ({ user }) => ownJob(jobs, user.id, path.id)).pipe(
            ApiError.declared(JobNotFound, ...dbErrors)
          ))
    }))
