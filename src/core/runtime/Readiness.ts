/** Readiness: the checks each layer registers (database pools, auth keys, ...) and their combined verdict for `/ready`. */
import { Cause, Context, Duration, Effect, Inspectable, Layer, Ref } from "effect"
import { Lifecycle } from "./Lifecycle.js"
import * as Logging from "./Logging.js"

export interface CheckResult {
  readonly name: string
  /** "degraded": a check registered as `degradeOnly` failed; the instance still serves, with less. */
  readonly status: "ok" | "failed" | "degraded"
  /** Short and public: "timeout" or "unavailable"; the cause goes to the log, not to the client. */
  readonly error?: string
}

export interface Report {
  readonly ready: boolean
  readonly checks: ReadonlyArray<CheckResult>
}

export interface Check {
  readonly name: string
  readonly check: Effect.Effect<unknown, unknown>
  /** A dependency the instance can serve without (say, fan-out across instances): its failure does not make it unready. */
  readonly degradeOnly?: boolean
}

export interface RegisterOptions {
  readonly degradeOnly?: boolean
}

export class Readiness extends Context.Tag("core/Readiness")<Readiness, {
  /** Adds a check; layers call this while they are built, so `/ready` covers whatever the app is made of. */
  readonly register: (
    name: string,
    check: Effect.Effect<unknown, unknown>,
    options?: RegisterOptions
  ) => Effect.Effect<void>
  readonly run: Effect.Effect<Report>
}>() {}

/** What failed, in one line: the error's name and message (and its cause's), no stack: a probe polls every few seconds. */
const failureText = (cause: Cause.Cause<unknown>): string => {
  const parts: Array<string> = []
  let error: unknown = Cause.squash(cause)
  for (let depth = 0; depth < 3 && error !== undefined; depth++) {
    parts.push(
      error instanceof Error
        ? `${error.name}: ${error.message}`
        : typeof error === "string"
        ? error
        : Inspectable.format(error)
    )
    error = error instanceof Error ? error.cause : undefined
  }
  return Logging.truncate(parts.join(" <- "), 500)
}

const runOne = (check: Check, timeout: Duration.Duration): Effect.Effect<CheckResult> =>
  check.check.pipe(
    Effect.timeoutFail({ duration: timeout, onTimeout: () => "timeout" as const }),
    Effect.as<CheckResult>({ name: check.name, status: "ok" }),
    Effect.catchAllCause((cause) => {
      const timedOut = cause._tag === "Fail" && cause.error === "timeout"
      return Effect.logWarning(
        Logging.fields("Readiness check failed", {
          check: check.name,
          error: timedOut ? "timeout" : failureText(cause)
        })
      ).pipe(
        Effect.as<CheckResult>({
          name: check.name,
          status: check.degradeOnly === true ? "degraded" : "failed",
          error: timedOut ? "timeout" : "unavailable"
        })
      )
    })
  )

export const make = (options: { readonly timeout?: Duration.DurationInput } = {}) =>
  Effect.gen(function*() {
    const timeout = Duration.decode(options.timeout ?? Duration.seconds(3))
    const checks = yield* Ref.make<ReadonlyArray<Check>>([])
    const lifecycle = yield* Lifecycle
    return Readiness.of({
      register: (name, check, options) =>
        Ref.update(checks, (all) => [...all, { name, check, degradeOnly: options?.degradeOnly === true }]),
      run: Effect.gen(function*() {
        const results = yield* Effect.forEach(yield* Ref.get(checks), (check) => runOne(check, timeout), {
          concurrency: "unbounded"
        })
        // An instance that is shutting down is never ready, so load balancers stop sending it traffic.
        const all = lifecycle.isDraining()
          ? [...results, { name: "shutdown", status: "failed", error: "draining" } as const]
          : results
        return { ready: all.every((result) => result.status !== "failed"), checks: all }
      })
    })
  })

export const layer = (
  options?: { readonly timeout?: Duration.DurationInput }
): Layer.Layer<Readiness, never, Lifecycle> => Layer.effect(Readiness, make(options))
