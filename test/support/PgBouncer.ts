/**
 * PgBouncer for tests.
 *
 * 1. The shared PgBouncer (CI and `scripts/pgbouncer.sh start`): transaction pooling on
 *    127.0.0.1:6432 (PGBOUNCER_PORT) in front of the shared Postgres at 127.0.0.1:5432.
 *    `sharedPgBouncerUrl(db)` gives its URL; `isSharedPgBouncerReachable()` checks it;
 *    `ensureSharedPgBouncer()` starts it with the script when it is not running (fresh checkout).
 *
 * 2. A private PgBouncer per test: `startPgBouncer()` spawns one on a free loopback port with its
 *    own temporary config, so a fault test can stop() it (connections refused: ECONNREFUSED) and
 *    start() it again on the same port, without ever touching the shared Postgres server.
 *
 * Notes on transaction pooling, for code run through PgBouncer:
 * - session state does not survive a transaction: `SET x` (without LOCAL), session advisory locks,
 *   LISTEN/NOTIFY listeners, temp tables and named prepared statements are not reliable;
 * - both are configured as PgBouncer ships (`ignore_startup_parameters = extra_float_digits`, nothing
 *   else loosened): a connection that sends statement_timeout, lock_timeout, options... as a startup
 *   parameter is refused (08P01 "unsupported startup parameter"); set them per transaction instead
 *   (`SET LOCAL`, `set_config(..., true)`). application_name is tracked by PgBouncer and does work.
 */
import { type ChildProcess, execFile, execFileSync, spawn } from "node:child_process"
import * as fs from "node:fs"
import * as net from "node:net"
import * as os from "node:os"
import * as path from "node:path"
import { fileURLToPath } from "node:url"
import pg from "pg"

const DEFAULT_PGBOUNCER_PORT = 6432

/** Absolute path of scripts/pgbouncer.sh. */
const pgBouncerScript: string = fileURLToPath(new URL("../../scripts/pgbouncer.sh", import.meta.url))

const sharedBaseUrl = (): string => {
  const fromEnv = process.env["PGBOUNCER_URL"]
  if (fromEnv !== undefined && fromEnv !== "") return fromEnv
  const port = process.env["PGBOUNCER_PORT"] ?? String(DEFAULT_PGBOUNCER_PORT)
  return `postgres://postgres@127.0.0.1:${port}/postgres`
}

/** Replaces the database of a postgres:// URL. */
export const withDatabase = (url: string, database: string): string => {
  const parsed = new URL(url)
  parsed.pathname = "/" + encodeURIComponent(database)
  return parsed.toString()
}

/**
 * URL of the shared PgBouncer for `database`: `PGBOUNCER_URL` (its database part replaced) or
 * `postgres://postgres@127.0.0.1:${PGBOUNCER_PORT ?? 6432}/<database>`.
 */
export const sharedPgBouncerUrl = (database: string): string => withDatabase(sharedBaseUrl(), database)

/** Tries `SELECT 1` on `url`; resolves to the error, or undefined on success. Never throws. */
const probePostgres = async (url: string, timeoutMs = 3_000): Promise<Error | undefined> => {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: timeoutMs })
  client.on("error", () => {})
  try {
    await client.connect()
    await client.query("SELECT 1")
    return undefined
  } catch (error) {
    return error instanceof Error ? error : new Error(String(error))
  } finally {
    await client.end().catch(() => {})
  }
}

/** Whether the shared PgBouncer answers a query (on the `postgres` database). */
export const isSharedPgBouncerReachable = async (timeoutMs = 3_000): Promise<boolean> =>
  (await probePostgres(sharedPgBouncerUrl("postgres"), timeoutMs)) === undefined

/** Throws a descriptive error unless the shared PgBouncer answers a query. */
const assertSharedPgBouncerReachable = async (timeoutMs = 3_000): Promise<void> => {
  const url = sharedPgBouncerUrl("postgres")
  const error = await probePostgres(url, timeoutMs)
  if (error !== undefined) {
    throw new Error(
      `The shared PgBouncer at ${redact(url)} is not reachable (${error.message}). ` +
        `Start it with: scripts/pgbouncer.sh install && scripts/pgbouncer.sh start`,
      { cause: error }
    )
  }
}

const runScript = (command: string, env: NodeJS.ProcessEnv): Promise<void> =>
  new Promise((resolve, reject) => {
    execFile("bash", [pgBouncerScript, command], { env, timeout: 300_000 }, (error, _stdout, stderr) => {
      if (error) reject(new Error(`scripts/pgbouncer.sh ${command} failed: ${error.message}\n${stderr}`))
      else resolve()
    })
  })

/**
 * Makes sure the shared PgBouncer is up: if it does not answer and PGBOUNCER_URL is not set (i.e.
 * it is ours to start), runs `scripts/pgbouncer.sh install` and `start` (both idempotent and
 * safe to run from several test files at once). Returns the URL for `database`.
 */
export const ensureSharedPgBouncer = async (database = "postgres"): Promise<string> => {
  if (await isSharedPgBouncerReachable()) return sharedPgBouncerUrl(database)
  const fromEnv = process.env["PGBOUNCER_URL"]
  if (fromEnv !== undefined && fromEnv !== "") {
    await assertSharedPgBouncerReachable()
  } else {
    await runScript("install", process.env)
    await runScript("start", process.env)
    await assertSharedPgBouncerReachable()
  }
  return sharedPgBouncerUrl(database)
}

// ---------------------------------------------------------------------------------------------
// Private PgBouncer
// ---------------------------------------------------------------------------------------------

export interface StartPgBouncerOptions {
  /** Postgres to forward to; default 127.0.0.1:5432. Must be loopback. */
  readonly targetHost?: string
  readonly targetPort?: number
  /** Port to listen on (127.0.0.1); default: a free port. Kept across stop()/start(). */
  readonly port?: number
  /** default "transaction" */
  readonly poolMode?: "transaction" | "session" | "statement"
  /** Server connections per (database, user); default 10. */
  readonly defaultPoolSize?: number
  /** Cap on server connections in all; default 20 (the shared Postgres allows 100 in all). */
  readonly maxUserConnections?: number
  /** default 500 */
  readonly maxClientConn?: number
  /** Seconds a client may wait for a server connection; default 30. */
  readonly queryWaitTimeout?: number
  /** Extra `key = value` lines for the [pgbouncer] section. */
  readonly extraSettings?: Readonly<Record<string, string | number>>
}

export interface PrivatePgBouncer {
  /** The port on 127.0.0.1. Stays the same across stop()/start(). */
  readonly port: number
  /** postgres://postgres@127.0.0.1:<port>/<database> */
  url(database: string): string
  /** Kills the process (SIGTERM, then SIGKILL): connections break and new ones get ECONNREFUSED. Idempotent. */
  stop(): Promise<void>
  /** Starts it again on the same port and waits until it answers. No-op if running. */
  start(): Promise<void>
  /** Whether the process is running. */
  isRunning(): boolean
  /** stop() and delete its temporary directory. Use in afterAll/afterEach. Idempotent. */
  dispose(): Promise<void>
  /** Its config directory (config file and log). */
  readonly dir: string
  /** Last lines PgBouncer wrote (stdout/stderr), for failure messages. */
  logTail(lines?: number): string
}

const isLoopback = (host: string): boolean =>
  host === "localhost" || host === "::1" || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(host)

const findPgBouncerBinary = (): string => {
  const candidates = [
    ...(process.env["PATH"] ?? "").split(path.delimiter).filter((p) => p !== "").map((p) => path.join(p, "pgbouncer")),
    "/usr/sbin/pgbouncer",
    "/usr/bin/pgbouncer"
  ]
  for (const candidate of candidates) {
    try {
      fs.accessSync(candidate, fs.constants.X_OK)
      return candidate
    } catch {
      // next
    }
  }
  throw new Error("pgbouncer is not installed: run `scripts/pgbouncer.sh install` (apt-get install -y pgbouncer)")
}

let postgresIds: { uid: number; gid: number } | undefined
const postgresUser = (): { uid: number; gid: number } => {
  if (postgresIds === undefined) {
    const uid = Number(execFileSync("id", ["-u", "postgres"], { encoding: "utf8" }).trim())
    const gid = Number(execFileSync("id", ["-g", "postgres"], { encoding: "utf8" }).trim())
    postgresIds = { uid, gid }
  }
  return postgresIds
}

/** A port that was free on 127.0.0.1 a moment ago. */
const freeLoopbackPort = (): Promise<number> =>
  new Promise((resolve, reject) => {
    const server = net.createServer()
    server.once("error", reject)
    server.listen({ host: "127.0.0.1", port: 0, exclusive: true }, () => {
      const address = server.address()
      server.close(() => {
        if (address === null || typeof address === "string") reject(new Error("no TCP address"))
        else resolve(address.port)
      })
    })
  })

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms))

const redact = (url: string): string => url.replace(/\/\/([^:@/]+):[^@/]*@/, "//$1:***@")

// Private instances still running when the test process exits are killed with it.
const livePrivate = new Set<ChildProcess>()
let exitHookInstalled = false
const installExitHook = () => {
  if (exitHookInstalled) return
  exitHookInstalled = true
  process.once("exit", () => {
    for (const child of livePrivate) {
      try {
        child.kill("SIGKILL")
      } catch {
        // already gone
      }
    }
  })
}

export const startPgBouncer = async (options: StartPgBouncerOptions = {}): Promise<PrivatePgBouncer> => {
  const targetHost = options.targetHost ?? "127.0.0.1"
  const targetPort = options.targetPort ?? 5432
  if (!isLoopback(targetHost)) throw new Error(`startPgBouncer: target ${targetHost} is not a loopback address`)
  const binary = findPgBouncerBinary()
  const asRoot = typeof process.getuid === "function" && process.getuid() === 0

  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "pgbouncer-test-"))
  const confPath = path.join(dir, "pgbouncer.ini")
  const authPath = path.join(dir, "userlist.txt")
  fs.writeFileSync(authPath, `"postgres" ""\n`, { mode: 0o600 })

  const writeConfig = (port: number) => {
    const extra = Object.entries(options.extraSettings ?? {})
      .map(([k, v]) => `${k} = ${v}`)
      .join("\n")
    const config = `;; private PgBouncer for one test (test/support/PgBouncer.ts)
[databases]
* = host=${targetHost} port=${targetPort}

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = ${port}
unix_socket_dir =
auth_type = trust
auth_file = ${authPath}
admin_users = postgres
stats_users = postgres
pool_mode = ${options.poolMode ?? "transaction"}
max_client_conn = ${options.maxClientConn ?? 500}
default_pool_size = ${options.defaultPoolSize ?? 10}
max_user_connections = ${options.maxUserConnections ?? 20}
min_pool_size = 0
server_idle_timeout = 10
server_login_retry = 1
query_wait_timeout = ${options.queryWaitTimeout ?? 30}
autodb_idle_timeout = 60
ignore_startup_parameters = extra_float_digits
log_connections = 0
log_disconnections = 0
${extra}
`
    fs.writeFileSync(confPath, config, { mode: 0o600 })
  }

  let port = options.port ?? 0
  let child: ChildProcess | undefined
  let output = ""
  let disposed = false
  installExitHook()

  const waitUntilAnswering = async (proc: ChildProcess, deadlineMs: number): Promise<void> => {
    let lastError: Error | undefined
    while (Date.now() < deadlineMs) {
      if (proc.exitCode !== null || proc.signalCode !== null) {
        throw new Error(`pgbouncer exited during startup (code ${proc.exitCode ?? proc.signalCode}):\n${output}`)
      }
      const client = new pg.Client({
        host: "127.0.0.1",
        port,
        user: "postgres",
        database: "pgbouncer",
        connectionTimeoutMillis: 1_000
      })
      client.on("error", () => {})
      try {
        await client.connect()
        await client.query("SHOW VERSION")
        return
      } catch (error) {
        lastError = error instanceof Error ? error : new Error(String(error))
      } finally {
        await client.end().catch(() => {})
      }
      await sleep(50)
    }
    throw new Error(`pgbouncer on 127.0.0.1:${port} did not answer in time (${lastError?.message}):\n${output}`)
  }

  const spawnOnce = async (): Promise<void> => {
    writeConfig(port)
    const args = asRoot ? ["-u", "postgres", confPath] : [confPath]
    if (asRoot) {
      // It reads its config as root, but let the postgres user read it too (harmless, and needed if it ever reloads).
      const { uid, gid } = postgresUser()
      for (const p of [dir, confPath, authPath]) fs.chownSync(p, uid, gid)
    }
    const proc = spawn(binary, args, { stdio: ["ignore", "pipe", "pipe"], detached: false })
    const onData = (chunk: Buffer) => {
      output = (output + chunk.toString("utf8")).slice(-20_000)
    }
    proc.stdout?.on("data", onData)
    proc.stderr?.on("data", onData)
    proc.on("error", (error) => {
      output += `\nspawn error: ${error.message}`
    })
    livePrivate.add(proc)
    proc.once("exit", () => livePrivate.delete(proc))
    child = proc
    try {
      await waitUntilAnswering(proc, Date.now() + 20_000)
    } catch (error) {
      await killProc(proc)
      child = undefined
      throw error
    }
  }

  const killProc = async (proc: ChildProcess): Promise<void> => {
    if (proc.exitCode !== null || proc.signalCode !== null) return
    const exited = new Promise<void>((resolve) => proc.once("exit", () => resolve()))
    proc.kill("SIGTERM") // PgBouncer: immediate shutdown, closes every client and server connection
    const timer = setTimeout(() => proc.kill("SIGKILL"), 5_000)
    await exited
    clearTimeout(timer)
  }

  const start = async (): Promise<void> => {
    if (disposed) throw new Error("startPgBouncer: start() after dispose()")
    if (child !== undefined && child.exitCode === null && child.signalCode === null) return
    // After stop() the port is ours to reuse; PgBouncer sets SO_REUSEADDR so TIME_WAIT does not block it.
    const deadline = Date.now() + 10_000
    for (;;) {
      try {
        await spawnOnce()
        return
      } catch (error) {
        if (Date.now() > deadline || !/Address already in use/i.test(output)) throw error
        await sleep(100)
      }
    }
  }

  const stop = async (): Promise<void> => {
    const proc = child
    child = undefined
    if (proc !== undefined) await killProc(proc)
  }

  // First start: pick a free port (retry if another process grabbed it between probe and bind).
  if (port !== 0) {
    await start()
  } else {
    for (let attempt = 1;; attempt++) {
      port = await freeLoopbackPort()
      try {
        await spawnOnce()
        break
      } catch (error) {
        if (attempt >= 5 || !/Address already in use/i.test(output)) {
          fs.rmSync(dir, { recursive: true, force: true })
          throw error
        }
        output = ""
      }
    }
  }

  return {
    get port() {
      return port
    },
    dir,
    url: (database: string) => `postgres://postgres@127.0.0.1:${port}/${encodeURIComponent(database)}`,
    stop,
    start,
    isRunning: () => child !== undefined && child.exitCode === null && child.signalCode === null,
    dispose: async () => {
      if (disposed) return
      disposed = true
      await stop()
      fs.rmSync(dir, { recursive: true, force: true })
    },
    logTail: (lines = 40) => output.split("\n").slice(-lines).join("\n")
  }
}
