import { spawn } from "node:child_process"
import pg from "pg"
import { describe, expect, it } from "vitest"
import globalSetup from "../support/GlobalSetup.js"
import {
  createTestDatabase,
  databaseExists,
  directDatabaseUrl,
  dropDatabase,
  dropStaleTestDatabases,
  parseTestDatabaseName,
  TEST_DATABASE_NAME,
  testDatabaseName
} from "../support/TestDatabase.js"

const errorCode = (error: unknown): string | undefined => (error as { code?: string } | undefined)?.code

const pidIsGone = (pid: number): boolean => {
  try {
    process.kill(pid, 0)
    return false
  } catch (error) {
    return errorCode(error) === "ESRCH"
  }
}

/** The pid of a process that has exited (and not been reused yet). */
const deadPid = async (): Promise<number> => {
  for (;;) {
    const child = spawn("true", [], { stdio: "ignore" })
    const pid = child.pid
    await new Promise<void>((resolve) => child.once("exit", () => resolve()))
    if (pid !== undefined && pidIsGone(pid)) return pid
  }
}

const createRaw = async (name: string): Promise<void> => {
  const admin = new pg.Client({ connectionString: directDatabaseUrl("postgres") })
  await admin.connect()
  try {
    await admin.query(`CREATE DATABASE "${name}" TEMPLATE template0`)
  } finally {
    await admin.end()
  }
}

describe("test database names", () => {
  it("are unique, match the pattern and carry pid and creation time", () => {
    const now = new Date("2026-01-02T03:04:05Z")
    const a = testDatabaseName(undefined, now)
    const b = testDatabaseName("My-Tag!", now)
    expect(a).toMatch(TEST_DATABASE_NAME)
    expect(b).toMatch(/^t_mytag_/)
    expect(new Set(Array.from({ length: 200 }, () => testDatabaseName())).size).toBe(200)
    expect(parseTestDatabaseName(a)).toEqual({ tag: undefined, pid: process.pid, createdAt: now })
    expect(parseTestDatabaseName(b)).toEqual({ tag: "mytag", pid: process.pid, createdAt: now })
    expect(a.length).toBeLessThanOrEqual(63)
    expect(testDatabaseName("x".repeat(100)).length).toBeLessThanOrEqual(63)
  })

  it("never match other databases", () => {
    for (
      const name of ["postgres", "test", "root", "template1", "t_", "t_abc", "t_1_2", "tx_1_a_abcdef", "t_1_a_abcdef_x"]
    ) {
      expect(parseTestDatabaseName(name)).toBeUndefined()
    }
  })
})

describe("createTestDatabase / drop", () => {
  it("creates a usable database, and drop() removes it even with connections open", async () => {
    const db = await createTestDatabase("dbtest")
    expect(db.name).toMatch(TEST_DATABASE_NAME)
    expect(db.url).toBe(`postgres://postgres@127.0.0.1:5432/${db.name}`)
    expect(db.urlViaPgBouncer).toContain(`/${db.name}`)
    expect(await databaseExists(db.name)).toBe(true)

    const client = new pg.Client({ connectionString: db.url })
    client.on("error", () => {})
    await client.connect()
    await client.query("CREATE TABLE t (x int)")
    await client.query("INSERT INTO t VALUES ($1)", [1])
    expect((await client.query("SELECT current_database() AS d, count(*)::int AS n FROM t")).rows).toEqual([
      { d: db.name, n: 1 }
    ])

    await db.drop() // the open connection is terminated by WITH (FORCE)
    expect(await databaseExists(db.name)).toBe(false)
    const after = await client.query("SELECT 1").then(
      () => undefined,
      (e: unknown) => e
    )
    expect(after).toBeInstanceOf(Error)
    await client.end().catch(() => {})

    await db.drop() // idempotent
    await dropDatabase(db.name) // no error when it does not exist
    expect(await databaseExists(db.name)).toBe(false)
  })

  it("creates many databases concurrently", async () => {
    const dbs = await Promise.all(Array.from({ length: 5 }, () => createTestDatabase("conc")))
    try {
      expect(new Set(dbs.map((db) => db.name)).size).toBe(5)
      for (const db of dbs) expect(await databaseExists(db.name)).toBe(true)
    } finally {
      await Promise.all(dbs.map((db) => db.drop()))
    }
    for (const db of dbs) expect(await databaseExists(db.name)).toBe(false)
  })
})

describe("dropStaleTestDatabases", () => {
  it("drops databases of dead pids and old ones, keeps live ones and foreign names", async () => {
    const now = new Date()
    const ofDeadPid = testDatabaseName("stale", now, await deadPid())
    const tooOld = testDatabaseName("stale", new Date(now.getTime() - 2 * 60 * 60 * 1000), process.pid)
    const live = testDatabaseName("stale", now, process.pid)
    const foreign = `t_foreign_${process.pid}_keep` // does not match the naming pattern
    const all = [ofDeadPid, tooOld, live, foreign]
    try {
      for (const name of all) await createRaw(name)
      const result = await dropStaleTestDatabases()
      expect(result.dropped).toContain(ofDeadPid)
      expect(result.dropped).toContain(tooOld)
      expect(result.dropped).not.toContain(live)
      expect(result.dropped).not.toContain(foreign)
      expect(await databaseExists(ofDeadPid)).toBe(false)
      expect(await databaseExists(tooOld)).toBe(false)
      expect(await databaseExists(live)).toBe(true)
      expect(await databaseExists(foreign)).toBe(true)
    } finally {
      for (const name of all) await dropDatabase(name)
    }
  })
})

describe("globalSetup", () => {
  it("provides the run's database URL and drops the database at teardown", async () => {
    const provided = new Map<string, unknown>()
    const teardown = await globalSetup({
      provide: (key, value) => {
        provided.set(key, value)
      }
    })
    const name = provided.get("databaseName")
    expect(typeof name).toBe("string")
    expect(name).toMatch(/^t_run_/)
    expect(provided.get("databaseUrl")).toBe(`postgres://postgres@127.0.0.1:5432/${String(name)}`)
    expect(String(provided.get("databaseUrlViaPgBouncer"))).toContain(`/${String(name)}`)
    expect(await databaseExists(String(name))).toBe(true)

    const client = new pg.Client({ connectionString: String(provided.get("databaseUrl")) })
    await client.connect()
    expect((await client.query("SELECT current_database() AS d")).rows).toEqual([{ d: name }])
    await client.end()

    await teardown()
    expect(await databaseExists(String(name))).toBe(false)
  })
})
