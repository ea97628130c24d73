/**
 * `InMemoryJobs`: the core's `Jobs` in memory, for the in-process app: jobs are stored and read back as the
 * Postgres table would give them (queued, step 0, timestamps from Effect's `Clock`), and no worker runs them.
 */
import { Clock, Effect, Layer, Option } from "effect"
import { randomUUID } from "node:crypto"
import { Job, Jobs, type Service } from "../core/jobs/Jobs.js"

export const make: Effect.Effect<Service> = Effect.sync(() => {
  const byId = new Map<string, Job>()
  return Jobs.of({
    enqueue: ({ input, kind, ownerId }) =>
      Effect.map(Clock.currentTimeMillis, (now) => {
        const at = new Date(now)
        const job = new Job({
          id: randomUUID(),
          kind,
          ownerId,
          status: "queued",
          step: 0,
          // As stored: JSON, so what comes back is what a jsonb column would give.
          input: JSON.parse(JSON.stringify(input)),
          error: null,
          leaseExpiresAt: null,
          attempts: 0,
          createdAt: at,
          updatedAt: at
        })
        byId.set(job.id, job)
        return job
      }),
    find: (id) => Effect.sync(() => Option.fromNullable(byId.get(id.toLowerCase())))
  })
})

export const layer: Layer.Layer<Jobs> = Layer.effect(Jobs, make)
