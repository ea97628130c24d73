/**
 * Our server for the HTTP benchmarks: the real server as `npm start` runs it (`dist/main.js`, built first), on a
 * database of its own, trusting a local stand-in.
 */
import { execFileSync } from "node:child_process"
import * as Fs from "node:fs"
import { startSupabaseStandIn, type SupabaseStandInServer } from "../../src/dev/SupabaseStandIn.js"
import { createTestDatabase } from "../../test/support/TestDatabase.js"
import { freePort, startServer, stopServer } from "./load.js"

export interface BenchServer {
  readonly url: string
  readonly issuer: SupabaseStandInServer
  /** The server's process, for its memory figures. */
  readonly pid: number
  readonly stop: () => Promise<void>
}

/** The options `npm start` gives `node` (its script is `node <options> dist/main.js`). */
const startOptions = (): Array<string> => {
  const words = (JSON.parse(Fs.readFileSync("package.json", "utf8")) as { scripts: { start: string } }).scripts.start
    .split(/\s+/)
  const entry = words.indexOf("dist/main.js")
  if (words[0] !== "node" || entry < 0) throw new Error(`npm start is not "node <options> dist/main.js"`)
  return words.slice(1, entry)
}

const builds = new Set<string>()

/**
 * The `node` arguments that run a server as `npm start` runs the app: built by `scripts/build.ts` (once a run) into
 * `outdir`, the app into `dist/` or a benchmark's own server (`entry`) into a folder of its own, with the start
 * script's options.
 */
export const builtServer = (outdir = "dist", entry?: string): Array<string> => {
  if (!builds.has(outdir)) {
    const args = entry === undefined ? [outdir] : [outdir, entry]
    execFileSync(process.execPath, ["--import", "tsx", "scripts/build.ts", ...args], { stdio: "inherit" })
    builds.add(outdir)
  }
  return [...startOptions(), `${outdir}/main.js`]
}

export const start = async (): Promise<BenchServer> => {
  const server = builtServer()
  const database = await createTestDatabase("bench")
  const issuer = await startSupabaseStandIn()
  const port = await freePort()
  const url = `http://127.0.0.1:${port}`
  const child = await startServer(server, `${url}/health`, {
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
    pid: child.pid!,
    stop: async () => {
      await stopServer(child)
      await issuer.stop()
      await database.drop()
    }
  }
}
