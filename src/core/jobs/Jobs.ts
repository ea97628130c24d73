/**
 * `Jobs`: durable background jobs. A job is a row of the `jobs` table (`JobStore`); every instance runs workers
 * on the background pool that claim queued jobs under a lease, renew it as the job records its steps (and on a
 * timer, for long steps), and end it completed or failed. A worker that dies leaves its lease to run out, and any
 * instance then takes the job over from its last recorded step; on shutdown running jobs give their lease back at
 * once, so another instance continues without waiting.
 *
 *   const jobs = yield* Jobs
 *   const job = yield* jobs.enqueue({ kind: "thumbnail", ownerId: user.id, input: { url } })
 */
import { Cause, Clock, Context, Data, Duration, Effect, Exit, Fiber, Layer, Option, Queue, type Scope } from "effect"
import { BgDb, MainDb } from "../db/Database.js"
import type { DbFailure } from "../db/DbResilience.js"
import { Lifecycle } from "../runtime/Lifecycle.js"
import type { JobsSettings } from "./JobsSettings.js"
import * as JobStore from "./JobStore.js"

export { Job, JobStatus } from "./JobStore.js"

/** The job's own failure: it ends `failed` with this message (what its owner sees). */
export class JobFailed extends Data.TaggedError("JobFailed")<{ readonly message: string }> {}

/** The lease is no longer this worker's (it ran out and another worker took the job): stop without a word. */
class LeaseLost extends Data.TaggedError("LeaseLost")<{ readonly jobId: string }> {}

/** What a handler gets: the job as claimed (`job.step` is the last recorded step) and how to record the next. */
interface Run {
  readonly job: JobStore.Job
  /** Records `step` and renews the lease, then publishes the progress. */
  readonly recordStep: (step: number) => Effect.Effect<void, LeaseLost | DbFailure>
}

/** The work of one kind of job: succeeding completes it, `JobFailed` fails it; anything else hands it back. */
export type Handler<R = never> = (run: Run) => Effect.Effect<void, JobFailed | LeaseLost | DbFailure, R>

/** What happened to a job, published after it was committed. */
export type JobEvent = Data.TaggedEnum<{
  Progress: { readonly job: JobStore.Job }
  Completed: { readonly job: JobStore.Job }
  Failed: { readonly job: JobStore.Job }
}>
export const JobEvent = Data.taggedEnum<JobEvent>()

export interface Service {
  /** A new queued job (on the request pool); a worker of this instance is told at once. */
  readonly enqueue: (
    job: { readonly kind: string; readonly ownerId: string | null; readonly input: unknown }
  ) => Effect.Effect<JobStore.Job, DbFailure>
  readonly find: (id: string) => Effect.Effect<Option.Option<JobStore.Job>, DbFailure>
}

export class Jobs extends Context.Tag("core/Jobs")<Jobs, Service>() {}

export interface Options<R> {
  /** Workers of this instance; 0 runs no job here. */
  readonly concurrency: number
  readonly lease: Duration.DurationInput
  /** How often an idle worker looks for jobs it was not told about (made elsewhere, or left by a dead worker). */
  readonly pollInterval: Duration.DurationInput
  /** The handler of each kind of job; workers claim only these kinds. */
  readonly handlers: Readonly<Record<string, Handler<R>>>
  /** Told of every step and end, after commit (to push them to watchers). Its failures are logged, not the job's. */
  readonly publish?: ((event: JobEvent) => Effect.Effect<void>) | undefined
}

/** How long shutdown waits for a lease to be given back before leaving it to run out. */
const releaseTimeout = Duration.seconds(5)
/** At most one "cannot claim" warning per this long, whatever the number of workers. */
const claimWarningEvery = Duration.seconds(10)

/** The service and its workers, which stop (handing their jobs back) on drain or when the scope closes. */
export const make = <R>(
  options: Options<R>
): Effect.Effect<Service, never, MainDb | BgDb | Lifecycle | Scope.Scope | R> =>
  Effect.gen(function*() {
    const requests = JobStore.make(yield* MainDb)
    const store = JobStore.make(yield* BgDb)
    const lifecycle = yield* Lifecycle
    const context = yield* Effect.context<R>()
    const lease = Duration.decode(options.lease)
    const renewEvery = Duration.divide(lease, 3).pipe(Option.getOrElse(() => lease))
    const kinds = Object.keys(options.handlers)
    const wakeups = yield* Queue.dropping<void>(Math.max(1, options.concurrency))
    const publish = (event: JobEvent): Effect.Effect<void> =>
      options.publish === undefined ? Effect.void : options.publish(event).pipe(
        Effect.catchAllCause((cause) => Effect.logWarning("Job event not published", cause))
      )

    let lastClaimWarning = Number.NEGATIVE_INFINITY
    const claimNext: Effect.Effect<Option.Option<JobStore.Claimed>> = Effect.gen(function*() {
      const now = yield* Clock.currentTimeMillis
      return yield* store.claim({ kinds, token: crypto.randomUUID(), now, lease }).pipe(
        Effect.catchAll((error) => {
          if (now - lastClaimWarning < Duration.toMillis(claimWarningEvery)) return Effect.succeedNone
          lastClaimWarning = now
          return Effect.as(Effect.logWarning("Cannot claim jobs", error), Option.none())
        })
      )
    })

    /** Runs a claimed job to its end; an interruption (drain, shutdown) gives the lease back at once. */
    const runClaimed = (claimed: JobStore.Claimed) =>
      Effect.gen(function*() {
        yield* Effect.logInfo("Job claimed").pipe(
          Effect.annotateLogs({ job_step: claimed.job.step, job_attempt: claimed.job.attempts })
        )
        let renewedAt = yield* Clock.currentTimeMillis
        const renew = (step: number | undefined) =>
          Effect.gen(function*() {
            const now = yield* Clock.currentTimeMillis
            const job = yield* store.renew(claimed, { now, lease, step })
            if (Option.isNone(job)) return yield* new LeaseLost({ jobId: claimed.job.id })
            renewedAt = now
            return job.value
          })
        const recordStep = (step: number) => Effect.flatMap(renew(step), (job) => publish(JobEvent.Progress({ job })))
        // Between steps the lease is renewed on a timer; a renewal that cannot reach the database is tried again
        // until the lease would have run out, when the job may already be someone else's.
        const heartbeat = Effect.gen(function*() {
          while (true) {
            yield* Effect.sleep(renewEvery)
            yield* renew(undefined).pipe(Effect.catchIf(
              (error): error is Exclude<typeof error, LeaseLost> => error._tag !== "LeaseLost",
              (error) =>
                Effect.flatMap(Clock.currentTimeMillis, (now) =>
                  now - renewedAt >= Duration.toMillis(lease)
                    ? new LeaseLost({ jobId: claimed.job.id })
                    : Effect.logWarning("Job lease not renewed: trying again", error))
            ))
          }
        })
        const handler = options.handlers[claimed.job.kind]!
        const exit = yield* Effect.exit(Effect.raceFirst(
          Effect.provide(handler({ job: claimed.job, recordStep }), context),
          heartbeat
        ))
        yield* settle(claimed, exit)
      }).pipe(
        Effect.onInterrupt(() => giveBack(claimed)),
        Effect.annotateLogs({ job_id: claimed.job.id, job_kind: claimed.job.kind })
      )

    const giveBack = (claimed: JobStore.Claimed) =>
      store.release(claimed).pipe(
        Effect.timeout(releaseTimeout),
        Effect.matchCauseEffect({
          onSuccess: (job) => Option.isSome(job) ? Effect.logInfo("Job handed back for another worker") : Effect.void,
          onFailure: (cause) => Effect.logWarning("Job not handed back: its lease will run out", cause)
        })
      )

    const settle = (
      claimed: JobStore.Claimed,
      exit: Exit.Exit<void, JobFailed | LeaseLost | DbFailure>
    ): Effect.Effect<void> => {
      if (Exit.isSuccess(exit)) {
        return store.finish(claimed, { status: "completed" }).pipe(
          Effect.flatMap(Option.match({
            onNone: () => Effect.logInfo("Job finished after its lease was taken over: left to its new worker"),
            onSome: (job) => publish(JobEvent.Completed({ job }))
          })),
          Effect.catchAll((error) => Effect.logWarning("Job done but not recorded: it will run again", error))
        )
      }
      const failure = Cause.failureOption(exit.cause)
      if (Option.isSome(failure) && failure.value._tag === "LeaseLost") {
        return Effect.logInfo("Job lease lost: the job is another worker's now")
      }
      if (Option.isSome(failure) && failure.value._tag !== "JobFailed") {
        return Effect.zipRight(
          Effect.logWarning("Job interrupted by a database failure: handed back", failure.value),
          giveBack(claimed)
        )
      }
      const error = Option.isSome(failure) && failure.value._tag === "JobFailed"
        ? failure.value.message
        : "Internal error"
      return Effect.zipRight(
        Option.isSome(failure) ? Effect.void : Effect.logError("Job died", exit.cause),
        store.finish(claimed, { status: "failed", error }).pipe(
          Effect.flatMap(Option.match({
            onNone: () => Effect.void,
            onSome: (job) => publish(JobEvent.Failed({ job }))
          })),
          Effect.catchAll((dbError) => Effect.logWarning("Job failure not recorded: it will run again", dbError))
        )
      )
    }

    const idle = Effect.raceFirst(Effect.sleep(options.pollInterval), Queue.take(wakeups))

    const worker = Effect.forever(
      Effect.flatMap(
        claimNext,
        Option.match({
          onNone: () => idle,
          // Another idle worker may find more waiting.
          onSome: (claimed) => Effect.zipRight(Queue.offer(wakeups, undefined), runClaimed(claimed))
        })
      ).pipe(
        // A bug must not cost the instance a worker for good: logged, and the worker goes on after a pause.
        Effect.catchAllDefect((defect) =>
          Effect.zipRight(Effect.logError("Job worker failed", defect), Effect.sleep(options.pollInterval))
        )
      )
    )

    if (kinds.length > 0 && options.concurrency > 0) {
      const workers = yield* Effect.forEach(
        Array.from({ length: options.concurrency }, (_, index) => index),
        (index) => Effect.forkScoped(Effect.annotateLogs(worker, { job_worker: index })),
        { concurrency: "unbounded" }
      )
      // On drain the workers stop at once, each handing its job back, while the server finishes its requests.
      yield* Effect.forkScoped(
        Effect.zipRight(lifecycle.draining, Fiber.interruptAll(workers))
      )
    }

    return Jobs.of({
      enqueue: (job) => Effect.tap(requests.enqueue(job), () => Queue.offer(wakeups, undefined)),
      find: requests.find
    })
  })

const layer = <R>(options: Options<R>): Layer.Layer<Jobs, never, MainDb | BgDb | Lifecycle | R> =>
  Layer.scoped(Jobs, make(options))

/** From its settings group (`JobsSettings.config`, composed into `AppConfig.Settings` as `jobs`). */
export const layerFromSettings = <R>(
  settings: JobsSettings,
  options: Pick<Options<R>, "handlers" | "publish">
): Layer.Layer<Jobs, never, MainDb | BgDb | Lifecycle | R> =>
  layer({
    concurrency: settings.concurrency,
    lease: settings.lease,
    pollInterval: settings.pollInterval,
    ...options
  })
