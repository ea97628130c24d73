/**
 * The server as `npm start` runs it: `scripts/build.ts` into a folder of the test's own, then `node <folder>/main.js`
 * (`src/launch.ts`), which runs the bundle from V8's code cache. On Postgres and on the embedded database (whose
 * packages the bundle requires at run time), with the docs page's viewer read from the installed package, and with a
 * cache V8 turns down.
 */
import { execFileSync } from "node:child_process"
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"
import { fileURLToPath } from "node:url"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { startSupabaseStandIn, type SupabaseStandInServer } from "../../src/dev/SupabaseStandIn.js"
import { provided } from "../support/Provided.js"
import * as ServerProcess from "../support/ServerProcess.js"

const root = fileURLToPath(new URL("../..", import.meta.url))
// Inside the repository: the bundle finds `migrations/` beside the nearest package.json above it.
const outdir = Path.join(root, "test-output", `dist-${process.pid}`)
const compilesFromSource = /the server compiles from source/
// The docs viewer's script opens with this line (a 3 MB string in @effect/platform).
const viewerMark = "Minified by jsDelivr"

describe("the built server", () => {
  let issuer: SupabaseStandInServer
  const servers: Array<ServerProcess.ServerProcess> = []
  const start = async (env: Record<string, string>) => {
    const server = await ServerProcess.startWithEnv({
      APP_ENV: "test",
      PORT: "0",
      SUPABASE_URL: issuer.url,
      SUPABASE_ANON_KEY: issuer.anonKey,
      SUPABASE_SERVICE_ROLE_KEY: issuer.serviceRoleKey,
      ...env
    }, { entry: [Path.join(outdir, "main.js")] })
    servers.push(server)
    return server
  }

  beforeAll(async () => {
    execFileSync(process.execPath, ["--import", "tsx", "scripts/build.ts", outdir], { cwd: root, stdio: "inherit" })
    issuer = await startSupabaseStandIn()
  })
  afterAll(async () => {
    await Promise.all(servers.map((server) => server.stop()))
    await issuer.stop()
    Fs.rmSync(outdir, { recursive: true, force: true })
  })

  it("runs from the code cache on Postgres: health, an authenticated route, the docs page with its viewer", async () => {
    expect(Fs.statSync(Path.join(outdir, "server.cache")).size).toBeGreaterThan(0)
    const server = await start({ DATABASE_URL: provided("databaseUrl") })

    expect((await fetch(`${server.url}/health`)).status).toBe(200)
    const token = await issuer.signToken()
    const me = await fetch(`${server.url}/api/v1/me`, { headers: { authorization: `Bearer ${token}` } })
    expect(me.status).toBe(200)
    const docs = await fetch(`${server.url}/docs`)
    expect(docs.status).toBe(200)
    expect(await docs.text()).toContain(viewerMark)
    // The viewer came from node_modules: the bundle, whose source V8 keeps, does not carry it.
    const source = Fs.readFileSync(Path.join(outdir, "server.cjs"), "utf8")
    expect(source).not.toContain(viewerMark)
    // No module is wrapped to run on first use (esbuild's `__esm`, what an `import()` of bundled code brings, with
    // every module it imports): wrapped modules are kept whole, all of fast-check among them.
    expect(source).not.toContain("__esm")

    expect(server.stderr()).not.toMatch(compilesFromSource)
  })

  it("runs on the embedded database, whose packages it requires when it first opens it", async () => {
    const dataDir = Fs.mkdtempSync(Path.join(Os.tmpdir(), "dist-embedded-"))
    try {
      const server = await start({ EMBEDDED_DB_DIR: Path.join(dataDir, "pglite") })
      expect(server.logs.some((line) => String(line.message).startsWith("Database: embedded PGlite"))).toBe(true)
      const token = await issuer.signToken()
      const me = await fetch(`${server.url}/api/v1/me`, { headers: { authorization: `Bearer ${token}` } })
      expect(me.status).toBe(200)
      expect(server.stderr()).not.toMatch(compilesFromSource)
      expect(await server.stop()).toBe(0)
    } finally {
      Fs.rmSync(dataDir, { recursive: true, force: true })
    }
  })

  /** Runs the built server with `change` applied to its files (restored after), on Postgres; its stderr. */
  const startChanged = async (change: (files: { readonly bundle: string; readonly cache: string }) => void) => {
    const files = { bundle: Path.join(outdir, "server.cjs"), cache: Path.join(outdir, "server.cache") }
    const originals = { bundle: Fs.readFileSync(files.bundle), cache: Fs.readFileSync(files.cache) }
    change(files)
    try {
      const server = await start({ DATABASE_URL: provided("databaseUrl") })
      expect((await fetch(`${server.url}/health`)).status).toBe(200)
      return server.stderr()
    } finally {
      Fs.writeFileSync(files.bundle, originals.bundle)
      Fs.writeFileSync(files.cache, originals.cache)
    }
  }

  it("with a bundle changed after its cache was written, even to the same length, compiles from source and says so", async () => {
    const stderr = await startChanged(({ bundle }) => {
      const source = Fs.readFileSync(bundle, "latin1")
      expect(source).toContain("\"use strict\";")
      // The same length and meaning: V8, which checks a cache against its source's length only, would take it.
      Fs.writeFileSync(bundle, source.replace("\"use strict\";", "'use strict';"), "latin1")
    })
    expect(stderr).toMatch(/was made from another bundle: the server compiles from source/)
  })

  it("with a cache V8 turns down, compiles from source, says so, and serves as before", async () => {
    const stderr = await startChanged(({ cache }) => {
      const stored = Fs.readFileSync(cache)
      // The bundle's own digest, then what V8 cannot read.
      Fs.writeFileSync(cache, Buffer.concat([stored.subarray(0, 32), Buffer.alloc(stored.length - 32, 7)]))
    })
    expect(stderr).toMatch(/was turned down by V8: the server compiles from source/)
  })
})
