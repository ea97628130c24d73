/**
 * Jobs that survive their worker, with two server processes on one database: an instance killed mid-job (SIGKILL)
 * leaves its lease to run out and the other finishes the job from its last recorded step; an instance stopped with
 * SIGTERM hands its job back at once and exits 0.
 */
import { afterEach, assert, beforeEach, describe, it } from "@effect/vitest"
import { randomUUID } from "node:crypto"
import pg from "pg"
import { startSupabaseStandIn, type SupabaseStandInServer } from "../../src/dev/SupabaseStandIn.js"
import { provided } from "../support/Provided.js"
import * as ServerProcess from "../support/ServerProcess.js"

interface JobRow {
  readonly status: string
  readonly step: number
  readonly attempts: number
}

const jobRow = async (id: string): Promise<JobRow> => {
  const client = new pg.Client({ connectionString: provided("databaseUrl") })
  await client.connect()
  try {
    return (await client.query<JobRow>("select status, step, attempts from jobs where id = $1", [id])).rows[0]!
  } finally {
    await client.end()
  }
}

const claimsOf = (server: ServerProcess.ServerProcess, id: string) =>
  server.logs.filter((line) => line.message === "Job claimed" && line.job_id === id)

describe("jobs across instances", () => {
  let issuer: SupabaseStandInServer
  const servers: Array<ServerProcess.ServerProcess> = []
  const start = async (env: Record<string, string> = {}) => {
    const server = await ServerProcess.start(issuer, { JOB_POLL_SECONDS: "0.1", ...env })
    servers.push(server)
    return server
  }
  beforeEach(async () => {
    issuer = await startSupabaseStandIn()
  })
  afterEach(async () => {
    await Promise.all(servers.splice(0).map((server) => server.kill()))
    await issuer.stop()
  })

  const createJob = async (server: ServerProcess.ServerProcess, body: unknown) => {
    const user = issuer.createUser({ email: `w-${randomUUID().slice(0, 8)}@example.com`, password: "password-123" })
    const token = await issuer.signToken({ user: user.id })
    const response = await fetch(`${server.url}/api/v1/jobs`, {
      method: "POST",
      headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
      body: JSON.stringify(body)
    })
    assert.strictEqual(response.status, 202)
    return { id: ((await response.json()) as { id: string }).id, token }
  }

  /** Which of the two holds the job (the one that logged its claim), and the other. */
  const holderOf = async (pair: ReadonlyArray<ServerProcess.ServerProcess>, id: string) => {
    await ServerProcess.until(() => pair.some((server) => claimsOf(server, id).length > 0), "a claim")
    const holder = pair.find((server) => claimsOf(server, id).length > 0)!
    return { holder, other: pair.find((server) => server !== holder)! }
  }

  it("SIGKILL mid-job: once the lease runs out the other instance finishes the job from its last recorded step", async () => {
    const pair = await Promise.all([start({ JOB_LEASE_SECONDS: "2" }), start({ JOB_LEASE_SECONDS: "2" })])
    const job = await createJob(pair[0], { steps: 40, step_ms: 100 })
    const { holder, other } = await holderOf(pair, job.id)
    await ServerProcess.until(async () => (await jobRow(job.id)).step >= 3, "a few steps")
    await holder.kill()
    const left = await jobRow(job.id)
    assert.strictEqual(left.status, "running", "the dead instance's lease is still on the job")

    await ServerProcess.until(async () => (await jobRow(job.id)).status === "completed", "the other to finish")
    const done = await jobRow(job.id)
    assert.strictEqual(done.step, 40)
    assert.strictEqual(done.attempts, 2)
    // The other resumed after the step the dead one had recorded last: it never redid the steps before.
    const [takeover] = claimsOf(other, job.id)
    assert.strictEqual(takeover?.job_step, left.step)
    assert.strictEqual(takeover?.job_attempt, 2)
    assert.strictEqual(claimsOf(holder, job.id).length, 1)
  })

  it("SIGTERM mid-job: the lease is given back at once, the other instance continues, the process exits 0", async () => {
    // A lease far longer than the test: the job moves on only because it was handed back.
    const pair = await Promise.all([start({ JOB_LEASE_SECONDS: "3600" }), start({ JOB_LEASE_SECONDS: "3600" })])
    const job = await createJob(pair[0], { steps: 40, step_ms: 100 })
    const { holder, other } = await holderOf(pair, job.id)
    await ServerProcess.until(async () => (await jobRow(job.id)).step >= 2, "a few steps")

    holder.child.kill("SIGTERM")
    assert.strictEqual(await holder.exited, 0)
    const atExit = await jobRow(job.id)
    assert.isTrue(
      atExit.status === "queued" || atExit.attempts === 2,
      `handed back before exit: ${JSON.stringify(atExit)}`
    )
    assert.isTrue(
      holder.logs.some((line) => line.message === "Job handed back for another worker" && line.job_id === job.id)
    )

    await ServerProcess.until(async () => (await jobRow(job.id)).status === "completed", "the other to finish")
    const [takeover] = claimsOf(other, job.id)
    assert.isAtLeast(Number(takeover?.job_step), 2)
    assert.strictEqual((await jobRow(job.id)).attempts, 2)
  })
})
