/**
 * `GET /api/v1/me` with a cached token (bearer verification, the per-user row cache, HttpApi) against `GET /health`
 * on the same server, alternating, from a second process.
 */
import { fileURLToPath } from "node:url"
import { compare, cpuRow, loadGenerator, measure, printRows, type Row, withCpu, withGoal } from "./load.js"
import * as BenchServer from "./server.js"

export const run = async (options: { readonly seconds?: number } = {}): Promise<ReadonlyArray<Row>> => {
  const seconds = options.seconds ?? 5
  const server = await BenchServer.start()
  try {
    const user = server.issuer.createUser({ email: "bench@example.com", password: "password-123" })
    const token = await server.issuer.signToken({ user: user.id })
    const headers = { authorization: `Bearer ${token}` }
    const first = await fetch(`${server.url}/api/v1/me`, { headers })
    if (first.status !== 200) throw new Error(`/me answered ${first.status}: ${await first.text()}`)
    const me = compare(
      "GET /api/v1/me (cached token) vs GET /health",
      withCpu(server.pid, seconds, () => measure(`${server.url}/api/v1/me`, { seconds, connections: 50, headers })),
      withCpu(server.pid, seconds, () => measure(`${server.url}/health`, { seconds, connections: 50 }))
    )
    return [
      withGoal(me, { of: "ratio", atLeast: 0.8 }),
      ...cpuRow("GET /api/v1/me vs GET /health, server CPU per request", me)
    ]
  } finally {
    await server.stop()
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  console.log(`load generator: ${loadGenerator}`)
  printRows(await run())
}
