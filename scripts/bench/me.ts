/**
 * `GET /api/v1/me` with a cached token (bearer verification, the per-user row cache, HttpApi) against `GET /health`
 * on the same server, alternating, from a second process.
 */
import { fileURLToPath } from "node:url"
import { compare, loadGenerator, measure, printRows, type Row, withGoal } from "./load.js"
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
    return [
      withGoal(
        compare(
          "GET /api/v1/me (cached token) vs GET /health",
          () => measure(`${server.url}/api/v1/me`, { seconds, connections: 50, headers }),
          () => measure(`${server.url}/health`, { seconds, connections: 50 })
        ),
        { of: "ratio", atLeast: 0.8 }
      )
    ]
  } finally {
    await server.stop()
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  console.log(`load generator: ${loadGenerator}`)
  printRows(await run())
}
