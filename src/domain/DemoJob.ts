/**
 * The reference API's demo job: `steps` steps of `step_ms` each (a sleep on Effect's `Clock`), optionally failing
 * at step `fail_at_step`. It records each step, so a job taken over by another instance resumes where it was.
 */
import { Duration, Effect, Option, Schema } from "effect"
import { type Handler, type Job, JobFailed } from "../core/jobs/Jobs.js"

export const kind = "demo"

const limits = { maxSteps: 1000, maxStepMs: 60_000 } as const

export const Input = Schema.Struct({
  steps: Schema.Int.pipe(Schema.between(1, limits.maxSteps, { message: () => `must be 1 to ${limits.maxSteps}` })),
  step_ms: Schema.Int.pipe(
    Schema.between(0, limits.maxStepMs, { message: () => `must be 0 to ${limits.maxStepMs}` })
  ),
  fail_at_step: Schema.optionalWith(
    Schema.NullOr(
      Schema.Int.pipe(Schema.between(1, limits.maxSteps, { message: () => `must be 1 to ${limits.maxSteps}` }))
    ),
    { default: () => null }
  )
}).pipe(
  Schema.filter((input) =>
    input.fail_at_step === null || input.fail_at_step <= input.steps ||
    { path: ["fail_at_step"], message: "must not be past steps" }
  )
).annotations({ identifier: "CreateJob" })
export type Input = typeof Input.Type

const decodeStored = Schema.decodeUnknownOption(Input)

/** The input stored with a job of this kind (a row of another shape is a bug: none). */
export const inputOf = (job: Job): Option.Option<Input> => decodeStored(job.input)

const failureMessage = (step: number) => `Failed at step ${step}`

export const handler: Handler = ({ job, recordStep }) =>
  Effect.gen(function*() {
    const input = Option.getOrThrowWith(inputOf(job), () => new Error(`Job ${job.id} has an invalid input`))
    for (let step = job.step + 1; step <= input.steps; step++) {
      yield* Effect.sleep(Duration.millis(input.step_ms))
      if (step === input.fail_at_step) return yield* new JobFailed({ message: failureMessage(step) })
      yield* recordStep(step)
    }
  })
