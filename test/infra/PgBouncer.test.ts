import pg from "pg"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import {
  ensureSharedPgBouncer,
  isSharedPgBouncerReachable,
  type PrivatePgBouncer,
  sharedPgBouncerUrl,
  startPgBouncer
} from "../support/PgBouncer.js"
import { createTestDatabase, type TestDatabase } from "../support/TestDatabase.js"

const errorCode = (error: unknown): string | undefined => (error as { code?: string } | undefined)?.code

const adminConsole = (url: string): pg.Client => {
  const admin = new URL(url)
  admin.pathname = "/pgbouncer"
  const client = new pg.Client({ connectionString: admin.toString() })
  client.on("error", () => {})
  return client
}

describe("shared PgBouncer (scripts/pgbouncer.sh)", () => {
  let db: TestDatabase

  beforeAll(async () => {
    // Starts it through scripts/pgbouncer.sh if it is not running (fresh checkout).
    await ensureSharedPgBouncer()
    db = await createTestDatabase("pgb")
    const direct = new pg.Client({ connectionString: db.url })
    await direct.connect()
    await direct.query("CREATE TABLE items (id serial PRIMARY KEY, worker int NOT NULL, label text NOT NULL)")
    await direct.end()
  })

  afterAll(async () => {
    await db?.drop()
  })

  it("is reachable at the shared URL", async () => {
    expect(await isSharedPgBouncerReachable()).toBe(true)
    expect(db.urlViaPgBouncer).toBe(sharedPgBouncerUrl(db.name))
  })

  it("runs 200 concurrent parameterised queries through a pg.Pool of 20 with no error", async () => {
    const pool = new pg.Pool({
      connectionString: db.urlViaPgBouncer,
      max: 20,
      // the one startup parameter the app sets besides user and database: PgBouncer tracks it
      application_name: "infra-pgbouncer-test"
    })
    const poolErrors: Array<Error> = []
    pool.on("error", (error) => poolErrors.push(error))
    try {
      const results = await Promise.allSettled(
        Array.from({ length: 200 }, (_, i) =>
          pool.query<{ n: number; s: string; app: string }>(
            "SELECT $1::int AS n, $2::text AS s, current_setting('application_name') AS app",
            [i, `q-${i}`]
          ))
      )
      const failures = results.filter((r) => r.status === "rejected")
      expect(failures).toEqual([])
      results.forEach((r, i) => {
        if (r.status !== "fulfilled") throw new Error("unreachable")
        expect(r.value.rows).toEqual([{ n: i, s: `q-${i}`, app: "infra-pgbouncer-test" }])
      })
      expect(poolErrors).toEqual([])
    } finally {
      await pool.end()
    }
  })

  it("runs 50 concurrent transactions from 50 clients that all stay connected (needs transaction pooling)", async () => {
    // 50 client connections but only default_pool_size (25) server connections: in session pooling the
    // clients past 25 would wait for a server connection until the others disconnect, which they only
    // do once every transaction is done, so this completes only in transaction pooling.
    const clients = Array.from({ length: 50 }, () => {
      const client = new pg.Client({ connectionString: db.urlViaPgBouncer })
      client.on("error", () => {})
      return client
    })
    try {
      await Promise.all(clients.map((client) => client.connect()))
      const results = await Promise.allSettled(
        clients.map(async (client, i) => {
          await client.query("BEGIN")
          try {
            await client.query("INSERT INTO items (worker, label) VALUES ($1, $2)", [i, `tx-${i}`])
            await client.query("INSERT INTO items (worker, label) VALUES ($1, $2)", [i, `tx-${i}-b`])
            await client.query("COMMIT")
          } catch (error) {
            await client.query("ROLLBACK").catch(() => {})
            throw error
          }
        })
      )
      expect(results.filter((r) => r.status === "rejected")).toEqual([])
    } finally {
      await Promise.all(clients.map((client) => client.end().catch(() => {})))
    }
    const direct = new pg.Client({ connectionString: db.url })
    await direct.connect()
    try {
      const { rows } = await direct.query<{ workers: string; total: string }>(
        "SELECT count(DISTINCT worker) AS workers, count(*) AS total FROM items WHERE label LIKE 'tx-%'"
      )
      expect(rows).toEqual([{ workers: "50", total: "100" }])
    } finally {
      await direct.end()
    }
  })

  it("pools in transaction mode (admin console SHOW POOLS / SHOW CONFIG)", async () => {
    // make sure a pool for this database exists
    const client = new pg.Client({ connectionString: db.urlViaPgBouncer })
    await client.connect()
    await client.query("SELECT 1")
    await client.end()

    const admin = adminConsole(db.urlViaPgBouncer)
    await admin.connect()
    try {
      const pools = await admin.query<{ database: string; user: string; pool_mode: string }>("SHOW POOLS")
      const ours = pools.rows.filter((row) => row.database === db.name)
      expect(ours.length).toBeGreaterThan(0)
      for (const row of ours) expect(row.pool_mode).toBe("transaction")

      const config = await admin.query<{ key: string; value: string }>("SHOW CONFIG")
      const setting = (key: string) => config.rows.find((row) => row.key === key)?.value
      expect(setting("pool_mode")).toBe("transaction")
      expect(setting("listen_addr")).toBe("127.0.0.1")
      expect(Number(setting("max_client_conn"))).toBeGreaterThanOrEqual(500)
      expect(Number(setting("default_pool_size"))).toBeGreaterThanOrEqual(20)
    } finally {
      await admin.end()
    }
  })

  it("is configured as shipped: statement_timeout or options as a startup parameter is refused, application_name and SET LOCAL work", async () => {
    const admin = adminConsole(db.urlViaPgBouncer)
    await admin.connect()
    try {
      const config = await admin.query<{ key: string; value: string }>("SHOW CONFIG")
      expect(config.rows.find((row) => row.key === "ignore_startup_parameters")?.value).toBe("extra_float_digits")
    } finally {
      await admin.end()
    }
    for (
      const parameter of [{ statement_timeout: 5_000 }, { options: "-c search_path=public" }, { lock_timeout: 2_000 }]
    ) {
      const refused = new pg.Client({ connectionString: db.urlViaPgBouncer, ...parameter })
      refused.on("error", () => {})
      const error = await refused.connect().then(() => undefined, (e: unknown) => e)
      await refused.end().catch(() => {})
      expect(errorCode(error), JSON.stringify(parameter)).toBe("08P01")
      expect(String((error as Error).message)).toContain("unsupported startup parameter")
    }

    const client = new pg.Client({ connectionString: db.urlViaPgBouncer, application_name: "infra-params" })
    client.on("error", () => {})
    await client.connect()
    try {
      const { rows } = await client.query<{ app: string; x: number }>(
        "SELECT current_setting('application_name') AS app, $1::int AS x",
        [7]
      )
      expect(rows).toEqual([{ app: "infra-params", x: 7 }])

      // the way to get a statement timeout through transaction pooling: set it for the transaction
      await client.query("BEGIN")
      await client.query("SET LOCAL statement_timeout = 200")
      const error = await client.query("SELECT pg_sleep(10)").then(
        () => undefined,
        (e: unknown) => e
      )
      await client.query("ROLLBACK")
      expect(errorCode(error)).toBe("57014") // query_canceled
    } finally {
      await client.end()
    }
  })
})

describe("private PgBouncer (startPgBouncer)", () => {
  let bouncer: PrivatePgBouncer | undefined

  afterAll(async () => {
    await bouncer?.dispose()
  })

  it("serves queries, refuses connections after stop(), and serves again after start() on the same port", async () => {
    bouncer = await startPgBouncer()
    const port = bouncer.port
    expect(bouncer.url("postgres")).toBe(`postgres://postgres@127.0.0.1:${port}/postgres`)

    const query = async (sql: string, params: Array<unknown> = []) => {
      const client = new pg.Client({ connectionString: bouncer!.url("postgres"), connectionTimeoutMillis: 5_000 })
      client.on("error", () => {})
      await client.connect()
      try {
        return (await client.query(sql, params)).rows
      } finally {
        await client.end().catch(() => {})
      }
    }

    expect(await query("SELECT $1::int AS n", [1])).toEqual([{ n: 1 }])

    // transaction pooling, as for the shared one
    const admin = adminConsole(bouncer.url("pgbouncer"))
    await admin.connect()
    const pools = await admin.query<{ database: string; pool_mode: string }>("SHOW POOLS")
    const config = await admin.query<{ key: string; value: string }>("SHOW CONFIG")
    await admin.end()
    expect(pools.rows.find((row) => row.database === "postgres")?.pool_mode).toBe("transaction")
    // configured as shipped, as the shared one
    expect(config.rows.find((row) => row.key === "ignore_startup_parameters")?.value).toBe("extra_float_digits")

    // a connection that is open when it stops is broken
    const open = new pg.Client({ connectionString: bouncer.url("postgres") })
    const openErrors: Array<Error> = []
    open.on("error", (error) => openErrors.push(error))
    await open.connect()
    await open.query("SELECT 1")

    await bouncer.stop()
    expect(bouncer.isRunning()).toBe(false)

    const afterStop = await open.query("SELECT 1").then(
      () => undefined,
      (e: unknown) => e
    )
    expect(afterStop).toBeInstanceOf(Error)
    await open.end().catch(() => {})

    const refused = await query("SELECT 1").then(
      () => undefined,
      (e: unknown) => e
    )
    expect(errorCode(refused)).toBe("ECONNREFUSED")

    await bouncer.start()
    expect(bouncer.isRunning()).toBe(true)
    expect(bouncer.port).toBe(port)
    expect(await query("SELECT $1::text AS s", ["back"])).toEqual([{ s: "back" }])
  })

  it("stop() and start() are idempotent", async () => {
    const b = await startPgBouncer({ defaultPoolSize: 2, maxUserConnections: 4 })
    try {
      await b.start() // already running: no-op
      await b.stop()
      await b.stop()
      await b.start()
      const client = new pg.Client({ connectionString: b.url("postgres") })
      await client.connect()
      expect((await client.query("SELECT 2 AS n")).rows).toEqual([{ n: 2 }])
      await client.end()
    } finally {
      await b.dispose()
    }
  })
})
