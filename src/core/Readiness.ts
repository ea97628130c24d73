/** Readiness: the checks each layer registers (database pools, auth keys, ...) and their combined verdict for `/ready`. */
import { Context, Duration, Effect, Layer, Ref } from "effect"
import { Lifecycle } from "./Lifecycle.js"

export interface CheckResult {
  readonly name: string
  readonly status: "ok" | "failed"
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
}

export class Readiness extends Context.Tag("core/Readiness")<Readiness, {
  /** Adds a check; layers call this while they are built, so `/ready` covers whatever the app is made of. */
  readonly register: (name: string, check: Effect.Effect<unknown, unknown>) => Effect.Effect<void>
  readonly run: Effect.Effect<Report>
}>() {}

const runOne = (check: Check, timeout: Duration.Duration): Effect.Effect<CheckResult> =>
  check.check.pipe(
    Effect.timeoutFail({ duration: timeout, onTimeout: () => "timeout" as const }),
    Effect.as<CheckResult>({ name: check.name, status: "ok" }),
    Effect.catchAllCause((cause) =>
      Effect.logWarning(`Readiness check ${check.name} failed`, cause).pipe(
        Effect.as<CheckResult>({
          name: check.name,
          status: "failed",
          error: cause._tag === "Fail" && cause.error === "timeout" ? "timeout" : "unavailable"
        })
      )
    )
  )

export const make = (options: { readonly timeout?: Duration.DurationInput } = {}) =>
  Effect.gen(function*() {
    const timeout = Duration.decode(options.timeout ?? Duration.seconds(3))
    const checks = yield* Ref.make<ReadonlyArray<Check>>([])
    const lifecycle = yield* Lifecycle
    return Readiness.of({
      register: (name, check) => Ref.update(checks, (all) => [...all, { name, check }]),
      run: Effect.gen(function*() {
        const results = yield* Effect.forEach(yield* Ref.get(checks), (check) => runOne(check, timeout), {
          concurrency: "unbounded"
        })
        // An instance that is shutting down is never ready, so load balancers stop sending it traffic.
        const all = lifecycle.isDraining()
          ? [...results, { name: "shutdown", status: "failed", error: "draining" } as const]
          : results
        return { ready: all.every((result) => result.status === "ok"), checks: all }
      })
    })
  })

export const layer = (options?: { readonly timeout?: Duration.DurationInput }): Layer.Layer<Readiness, never, Lifecycle> =>
  Layer.effect(Readiness, make(options))
