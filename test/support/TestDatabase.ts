/**
 * Throw-away databases on the shared Postgres (127.0.0.1:5432) for tests.
 *
 *   const db = await createTestDatabase()      // e.g. t_12345_mbx3k2_a1b2c3
 *   db.url              postgres://postgres@127.0.0.1:5432/<name>
 *   db.urlViaPgBouncer  the same database through the shared PgBouncer (see ./pgbouncer.ts)
 *   await db.drop()     terminates its backends and drops it
 *
 * Names are `t_[<tag>_]<pid>_<created, unix seconds base 36>_<6 hex>`, so a later run can tell a
 * database left behind by a crashed run (owner pid gone, or older than an hour) and drop it:
 * `dropStaleTestDatabases()` (called by ./globalSetup.ts) only ever touches names matching
 * TEST_DATABASE_NAME exactly.
 *
 * The server is the one in TEST_POSTGRES_ADMIN_URL (default postgres://postgres@127.0.0.1:5432/postgres),
 * which must be a role allowed to CREATE/DROP DATABASE.
 */
import { randomBytes } from "node:crypto"
import pg from "pg"
import { sharedPgBouncerUrl, withDatabase } from "./PgBouncer.js"

export interface TestDatabase {
  /** The database name, e.g. t_12345_mbx3k2_a1b2c3 */
  readonly name: string
  /** Direct URL: postgres://postgres@127.0.0.1:5432/<name> */
  readonly url: string
  /** The same database through the shared PgBouncer (transaction pooling). */
  readonly urlViaPgBouncer: string
  /** Terminates every backend on it and drops it (DROP DATABASE ... WITH (FORCE)). Idempotent. */
  drop(): Promise<void>
}

export interface CreateTestDatabaseOptions {
  /** Template database; default template0 (nobody connects to it, so concurrent creates never clash). */
  readonly template?: string
}

/** Matches the names created here, and nothing else: t_[tag_]pid_created36_rand. */
export const TEST_DATABASE_NAME = /^t_(?:([a-z][a-z0-9]{0,15})_)?([1-9][0-9]{0,9})_([0-9a-z]{1,8})_([0-9a-f]{6})$/

const DEFAULT_ADMIN_URL = "postgres://postgres@127.0.0.1:5432/postgres"

/** URL of a superuser connection to the shared Postgres (TEST_POSTGRES_ADMIN_URL or the default). */
const adminUrl = (): string => {
  const fromEnv = process.env["TEST_POSTGRES_ADMIN_URL"]
  return fromEnv !== undefined && fromEnv !== "" ? fromEnv : DEFAULT_ADMIN_URL
}

/** URL of `database` on the shared Postgres (same server and credentials as adminUrl()). */
export const directDatabaseUrl = (database: string): string => withDatabase(adminUrl(), database)

const quoteIdent = (name: string): string => `"${name.replace(/"/g, "\"\"")}"`

const sanitizeTag = (tag: string): string => {
  const cleaned = tag.toLowerCase().replace(/[^a-z0-9]/g, "").replace(/^[0-9]+/, "").slice(0, 16)
  return cleaned
}

/** A fresh name matching TEST_DATABASE_NAME; `tag` (letters/digits) is kept after `t_` for readability. */
export const testDatabaseName = (tag?: string, now: Date = new Date(), pid: number = process.pid): string => {
  const cleaned = tag === undefined ? "" : sanitizeTag(tag)
  const created = Math.floor(now.getTime() / 1000).toString(36)
  const random = randomBytes(3).toString("hex")
  return cleaned === "" ? `t_${pid}_${created}_${random}` : `t_${cleaned}_${pid}_${created}_${random}`
}

export interface ParsedTestDatabaseName {
  readonly tag: string | undefined
  readonly pid: number
  readonly createdAt: Date
}

/** Parses a name made by testDatabaseName; undefined for any other name. */
export const parseTestDatabaseName = (name: string): ParsedTestDatabaseName | undefined => {
  const match = TEST_DATABASE_NAME.exec(name)
  if (match === null) return undefined
  const [, tag, pid, created] = match
  if (pid === undefined || created === undefined) return undefined
  const seconds = parseInt(created, 36)
  if (!Number.isFinite(seconds)) return undefined
  return { tag, pid: Number(pid), createdAt: new Date(seconds * 1000) }
}

const withAdmin = async <A>(f: (client: pg.Client) => Promise<A>): Promise<A> => {
  const client = new pg.Client({ connectionString: adminUrl(), connectionTimeoutMillis: 10_000 })
  client.on("error", () => {})
  await client.connect()
  try {
    return await f(client)
  } finally {
    await client.end().catch(() => {})
  }
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms))

/** Whether a database called `name` exists on the shared Postgres. */
export const databaseExists = (name: string): Promise<boolean> =>
  withAdmin(async (client) => {
    const result = await client.query("SELECT 1 FROM pg_database WHERE datname = $1", [name])
    return result.rowCount === 1
  })

/** Terminates every backend on `name` and drops it; no error if it does not exist. */
export const dropDatabase = (name: string): Promise<void> =>
  withAdmin(async (client) => {
    // FORCE terminates the backends (PostgreSQL 13+). Retry: a backend may be mid-connect.
    for (let attempt = 1;; attempt++) {
      try {
        await client.query(`DROP DATABASE IF EXISTS ${quoteIdent(name)} WITH (FORCE)`)
        return
      } catch (error) {
        if (attempt >= 5 || (error as { code?: string }).code !== "55006") throw error
        await sleep(200 * attempt)
      }
    }
  })

/**
 * Creates a fresh, empty database with a unique name (see testDatabaseName) on the shared Postgres.
 * `tag` is an optional readable part of the name (letters/digits, at most 16).
 */
export const createTestDatabase = async (
  tag?: string,
  options: CreateTestDatabaseOptions = {}
): Promise<TestDatabase> => {
  const name = testDatabaseName(tag)
  const template = options.template ?? "template0"
  await withAdmin(async (client) => {
    for (let attempt = 1;; attempt++) {
      try {
        await client.query(`CREATE DATABASE ${quoteIdent(name)} TEMPLATE ${quoteIdent(template)}`)
        return
      } catch (error) {
        // 55006 object_in_use: "source database is being accessed by other users" (someone on the template)
        if (attempt >= 10 || (error as { code?: string }).code !== "55006") throw error
        await sleep(100 * attempt)
      }
    }
  })
  let dropped: Promise<void> | undefined
  return {
    name,
    url: directDatabaseUrl(name),
    urlViaPgBouncer: sharedPgBouncerUrl(name),
    drop: () => {
      dropped ??= dropDatabase(name)
      return dropped
    }
  }
}

const pidAlive = (pid: number): boolean => {
  try {
    process.kill(pid, 0)
    return true
  } catch (error) {
    return (error as { code?: string }).code === "EPERM"
  }
}

export interface DropStaleOptions {
  /** Databases older than this are dropped even if their owner pid is alive; default one hour. */
  readonly maxAgeMs?: number
  /** For tests. */
  readonly now?: Date
  /** For tests; default: signal 0 to the pid on this machine. */
  readonly isPidAlive?: (pid: number) => boolean
}

/**
 * Drops databases left behind by earlier runs: names matching TEST_DATABASE_NAME whose owner pid is
 * gone, or that are older than `maxAgeMs`. Never touches the current process's own databases unless
 * they are older than `maxAgeMs`, nor any database whose name does not match. Failures to drop one
 * database are reported in the result, not thrown. Returns the names dropped.
 */
export const dropStaleTestDatabases = async (
  options: DropStaleOptions = {}
): Promise<{ dropped: ReadonlyArray<string>; failed: ReadonlyArray<{ name: string; error: string }> }> => {
  const maxAgeMs = options.maxAgeMs ?? 60 * 60 * 1000
  const now = (options.now ?? new Date()).getTime()
  const isAlive = options.isPidAlive ?? pidAlive
  const names = await withAdmin(async (client) => {
    const result = await client.query<{ datname: string }>(
      "SELECT datname FROM pg_database WHERE datname LIKE 't\\_%' AND NOT datistemplate"
    )
    return result.rows.map((row) => row.datname)
  })
  const stale = names.filter((name) => {
    const parsed = parseTestDatabaseName(name)
    if (parsed === undefined) return false
    const tooOld = now - parsed.createdAt.getTime() > maxAgeMs
    return tooOld || !isAlive(parsed.pid)
  })
  const dropped: Array<string> = []
  const failed: Array<{ name: string; error: string }> = []
  for (const name of stale) {
    try {
      await dropDatabase(name)
      dropped.push(name)
    } catch (error) {
      failed.push({ name, error: error instanceof Error ? error.message : String(error) })
    }
  }
  return { dropped, failed }
}
