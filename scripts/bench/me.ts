/**
 * `GET /api/v1/me` with a cached token (bearer verification, the per-user row cache, HttpApi) against `GET /health`
 * on the same server, alternating, from a second process. Runs the real server on a database of its own and a
 * Supabase Auth stand-in in this process.
 */
import { fileURLToPath } from "node:url"
import { startSupabaseStandIn } from "../../src/dev/SupabaseStandIn.js"
import { createTestDatabase } from "../../test/support/database.js"
import { serverEnv } from "./http.js"
import { compare, freePort, loadGenerator, measure, printRows, type Row, startServer, stopServer } from "./load.js"

export const run = async (options: { readonly seconds?: number } = {}): Promise<ReadonlyArray<Row>> => {
  const seconds = options.seconds ?? 5
  const database = await createTestDatabase("bench")
  const issuer = await startSupabaseStandIn()
  const port = await freePort()
  const base = `http://127.0.0.1:${port}`
  const server = await startServer(["--import", "tsx", "src/main.ts"], `${base}/health`, {
    ...serverEnv(port),
    DATABASE_URL: database.url,
    SUPABASE_URL: issuer.url,
    SUPABASE_ANON_KEY: issuer.anonKey,
    SUPABASE_SERVICE_ROLE_KEY: issuer.serviceRoleKey
  })
  try {
    const user = issuer.createUser({ email: "bench@example.com", password: "password-123" })
    const token = await issuer.signToken({ user: user.id })
    const headers = { authorization: `Bearer ${token}` }
    const first = await fetch(`${base}/api/v1/me`, { headers })
    if (first.status !== 200) throw new Error(`/me answered ${first.status}: ${await first.text()}`)
    return [
      compare(
        "GET /api/v1/me (cached token) vs GET /health",
        () => measure(`${base}/api/v1/me`, { seconds, connections: 50, headers }),
        () => measure(`${base}/health`, { seconds, connections: 50 })
      )
    ]
  } finally {
    await stopServer(server)
    await issuer.stop()
    await database.drop()
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  console.log(`load generator: ${loadGenerator}`)
  printRows(await run())
}
