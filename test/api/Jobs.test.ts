/**
 * `POST /api/v1/jobs` and `GET /api/v1/jobs/{id}` on the real server and Postgres: 202 with the job, the job run by
 * the instance's workers to completed or failed, bounds of the input as 422 envelopes, owner only (a property over
 * random users: nobody else ever reads a job), no credentials 401.
 */
import { assert, layer } from "@effect/vitest"
import { Duration, Effect, FastCheck as fc, Schema } from "effect"
import { randomUUID } from "node:crypto"
import { JobView } from "../../src/api/JobsGroup.js"
import { TestServer } from "../support/TestServer.js"
import * as TestServerLayer from "../support/TestServer.js"

const call = TestServerLayer.request

const tokenFor = Effect.gen(function*() {
  const issuer = (yield* TestServer).standIn!
  const user = issuer.createUser({ email: `jobs-${randomUUID().slice(0, 8)}@example.com`, password: "password-123" })
  return yield* Effect.promise(() => issuer.signToken({ user: user.id }))
})

const post = (token: string | undefined, body: unknown) =>
  call("/api/v1/jobs", {
    method: "POST",
    headers: {
      "content-type": "application/json",
      ...(token === undefined ? {} : { authorization: `Bearer ${token}` })
    },
    body: JSON.stringify(body)
  })

const get = (token: string, id: string) => call(`/api/v1/jobs/${id}`, { headers: { authorization: `Bearer ${token}` } })

/** Polls the job (real time: the server's workers run on the real clock) until `check` holds. */
const until = (token: string, id: string, check: (job: typeof JobView.Encoded) => boolean) =>
  Effect.gen(function*() {
    for (let attempt = 0; attempt < 300; attempt++) {
      const reply = yield* get(token, id)
      const job = reply.json() as typeof JobView.Encoded
      if (check(job)) return job
      yield* Effect.sleep(Duration.millis(50))
    }
    return assert.fail("gave up waiting for the job")
  })

layer(TestServerLayer.layer({ env: { JOB_POLL_SECONDS: "0.2" } }), { excludeTestServices: true })(
  "/api/v1/jobs",
  (it) => {
    it.effect("202 with the queued job; the workers run it to completed, every step recorded", () =>
      Effect.gen(function*() {
        const token = yield* tokenFor
        const created = yield* post(token, { steps: 3, step_ms: 10 })
        assert.strictEqual(created.status, 202)
        const job = created.json()
        Schema.decodeUnknownSync(JobView)(job)
        assert.deepInclude(job, { status: "queued", step: 0, steps: 3, step_ms: 10, fail_at_step: null, error: null })

        const done = yield* until(token, job.id, (job) => job.status === "completed")
        assert.deepInclude(done, { id: job.id, step: 3, steps: 3, error: null, created_at: job.created_at })
      }))

    it.effect("fail_at_step: the job ends failed at that step, the steps before it recorded", () =>
      Effect.gen(function*() {
        const token = yield* tokenFor
        const job = (yield* post(token, { steps: 5, step_ms: 0, fail_at_step: 3 })).json()
        assert.strictEqual(job.fail_at_step, 3)
        const failed = yield* until(token, job.id, (job) => job.status === "failed")
        assert.deepInclude(failed, { step: 2, error: "Failed at step 3" })
      }))

    it.effect("input out of bounds: 422 VALIDATION_ERROR naming the field; no job made", () =>
      Effect.gen(function*() {
        const token = yield* tokenFor
        const cases: ReadonlyArray<readonly [unknown, string]> = [
          [{ steps: 0, step_ms: 0 }, "steps"],
          [{ steps: 1001, step_ms: 0 }, "steps"],
          [{ steps: 1.5, step_ms: 0 }, "steps"],
          [{ step_ms: 0 }, "steps"],
          [{ steps: 1, step_ms: -1 }, "step_ms"],
          [{ steps: 1, step_ms: 60_001 }, "step_ms"],
          [{ steps: 1, step_ms: "10" }, "step_ms"],
          [{ steps: 2, step_ms: 0, fail_at_step: 0 }, "fail_at_step"],
          [{ steps: 2, step_ms: 0, fail_at_step: 3 }, "fail_at_step"]
        ]
        for (const [body, field] of cases) {
          const reply = yield* post(token, body)
          assert.strictEqual(reply.status, 422, JSON.stringify(body))
          const error = reply.json().error
          assert.strictEqual(error.code, "VALIDATION_ERROR")
          assert.include(JSON.stringify(error.details), field, JSON.stringify(body))
        }
        const bounds = yield* post(token, { steps: 1000, step_ms: 60_000, fail_at_step: 1000 })
        assert.strictEqual(bounds.status, 202)
      }))

    it.effect("no credentials: 401 envelope, on both routes", () =>
      Effect.gen(function*() {
        const created = yield* post(undefined, { steps: 1, step_ms: 0 })
        assert.strictEqual(created.status, 401)
        assert.strictEqual(created.json().error.code, "UNAUTHORIZED")
        const read = yield* call(`/api/v1/jobs/${randomUUID()}`)
        assert.strictEqual(read.status, 401)
        assert.strictEqual(read.json().error.code, "UNAUTHORIZED")
      }))

    it.effect("an unknown id, or one that is not a uuid: 404 JOB_NOT_FOUND", () =>
      Effect.gen(function*() {
        const token = yield* tokenFor
        for (const id of [randomUUID(), "not-a-uuid", "1"]) {
          const reply = yield* get(token, id)
          assert.strictEqual(reply.status, 404, id)
          assert.strictEqual(reply.json().error.code, "JOB_NOT_FOUND")
        }
      }))

    it.effect.prop(
      "a job is its owner's only: any other user gets 404 JOB_NOT_FOUND, exactly as for an unknown id",
      [fc.integer({ min: 2, max: 4 }), fc.integer({ min: 1, max: 3 })],
      ([users, jobsEach]) =>
        Effect.gen(function*() {
          const tokens = yield* Effect.all(Array.from({ length: users }, () => tokenFor))
          const owned = yield* Effect.forEach(tokens, (token, owner) =>
            Effect.forEach(
              Array.from({ length: jobsEach }),
              () => Effect.map(post(token, { steps: 1, step_ms: 0 }), (reply) => ({ owner, id: reply.json().id }))
            ))
          for (const { id, owner } of owned.flat()) {
            for (const [reader, token] of tokens.entries()) {
              const reply = yield* get(token, id)
              if (reader === owner) {
                assert.strictEqual(reply.status, 200)
                assert.strictEqual(reply.json().id, id)
              } else {
                assert.strictEqual(reply.status, 404)
                assert.deepStrictEqual(reply.json(), { error: { code: "JOB_NOT_FOUND", message: "Job not found" } })
              }
            }
          }
        }),
      { fastCheck: { numRuns: 5 } }
    )
  }
)
