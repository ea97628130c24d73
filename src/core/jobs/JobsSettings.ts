/** The background jobs' settings: workers per instance, the lease a running job holds, how often idle workers look. */
import { Config, Duration } from "effect"
import { atLeast, seconds } from "../config/ConfigReaders.js"

export interface JobsSettings {
  /** Jobs one instance runs at once (`JOB_CONCURRENCY`); 0 runs none here (an instance that only serves requests). */
  readonly concurrency: number
  /** How long a claimed job stays its worker's without a renewal (`JOB_LEASE_SECONDS`). */
  readonly lease: Duration.Duration
  /** How often an idle worker looks for work it was not told about (`JOB_POLL_SECONDS`). */
  readonly pollInterval: Duration.Duration
}

export const config: Config.Config<JobsSettings> = Config.all({
  concurrency: atLeast("JOB_CONCURRENCY", 0).pipe(Config.withDefault(4)),
  lease: seconds("JOB_LEASE_SECONDS").pipe(Config.withDefault(Duration.seconds(30))),
  pollInterval: seconds("JOB_POLL_SECONDS").pipe(Config.withDefault(Duration.seconds(1)))
})
