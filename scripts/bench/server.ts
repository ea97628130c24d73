/** Our server for the HTTP benchmarks: the real `src/main.ts` on a database of its own, trusting a local stand-in. */
import { startSupabaseStandIn, type SupabaseStandInServer } from "../../src/dev/SupabaseStandIn.js"
import { createTestDatabase } from "../../test/support/TestDatabase.js"
import { freePort, startServer, stopServer } from "./load.js"

export interface BenchServer {
  readonly url: string
  readonly issuer: SupabaseStandInServer
  readonly stop: () => Promise<void>
}

export const start = async (): Promise<BenchServer> => {
  const database = await createTestDatabase("bench")
  const issuer = await startSupabaseStandIn()
  const port = await freePort()
  const url = `http://127.0.0.1:${port}`
  const child = await startServer(["--import", "tsx", "src/main.ts"], `${url}/health`, {
    APP_ENV: "test",
    HOST: "127.0.0.1",
    PORT: String(port),
    LOG_FORMAT: "json",
    LOG_LEVEL: "info",
    APP_VERSION: "0.1.0",
    DATABASE_URL: database.url,
    SUPABASE_URL: issuer.url,
    SUPABASE_ANON_KEY: issuer.anonKey,
    SUPABASE_SERVICE_ROLE_KEY: issuer.serviceRoleKey
  })
  return {
    url,
    issuer,
    stop: async () => {
      await stopServer(child)
      await issuer.stop()
      await database.drop()
    }
  }
}
