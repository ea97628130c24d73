import { afterAll, assert, beforeAll, describe, it, vi } from "@effect/vitest"
import { Effect, FastCheck } from "effect"
import * as Net from "node:net"
import type pg from "pg"
import * as DbResilience from "../../../src/core/db/DbResilience.js"
import * as Pool from "../../../src/core/db/Pool.js"
import type { Clock } from "../../../src/core/db/PoolClock.js"
import { manualClock } from "../../support/ManualClock.js"
import { createTestDatabase, type TestDatabase } from "../../support/TestDatabase.js"

type Checkout = { readonly error: Error | undefined; readonly client: pg.PoolClient | undefined }

const checkout = (pool: pg.Pool): Promise<Checkout> =>
  new Promise((resolve) => pool.connect((error, client) => resolve({ error, client })))

/** Runs `use` with a pool of `max` connections to `url`, ended afterwards. */
const withPool = async (
  url: string,
  max: number,
  acquireTimeoutMillis: number,
  use: (pool: pg.Pool) => Promise<void>,
  idle: { readonly idleTimeoutMillis: number; readonly clock?: Clock } = { idleTimeoutMillis: 10_000 }
): Promise<void> => {
  const pool = Pool.make({
    connectionString: url,
    applicationName: "pool_test",
    max,
    acquireTimeoutMillis,
    statementTimeoutMillis: 5_000,
    idleTimeoutMillis: idle.idleTimeoutMillis,
    serverless: false,
    cancellable: true
  }, idle.clock)
  try {
    await use(pool)
  } finally {
    await pool.end()
  }
}

let db: TestDatabase
beforeAll(async () => {
  db = await createTestDatabase("pool")
})
afterAll(async () => {
  await db?.drop()
})

describe("Pool acquire timeout", () => {
  it("callers waiting on a busy pool share one timer, time out as pool exhaustion, and take no connection with them", async () => {
    await withPool(db.url, 1, 300, async (pool) => {
      const held = await checkout(pool)
      assert.isDefined(held.client)
      const timers = vi.spyOn(globalThis, "setTimeout")
      const waiting = Array.from({ length: 50 }, () => checkout(pool))
      // pg-pool would set one timer per waiting caller.
      assert.isAtMost(timers.mock.calls.length, 1)
      timers.mockRestore()
      assert.strictEqual(pool.waitingCount, 50)
      const outcomes = await Promise.all(waiting)
      for (const { client, error } of outcomes) {
        assert.isUndefined(client)
        assert.strictEqual(DbResilience.kindOf(error), "poolExhausted")
      }
      // Out of pg-pool's queue: the connection, once released, is idle and the next caller gets it at once.
      assert.strictEqual(pool.waitingCount, 0)
      held.client!.release()
      assert.strictEqual(pool.idleCount, 1)
      const next = await checkout(pool)
      assert.strictEqual(next.client, held.client)
      assert.deepStrictEqual((await next.client!.query("select 1 as one")).rows, [{ one: 1 }])
      next.client!.release()
      assert.strictEqual(pool.totalCount, 1)
    })
  })

  it("callers are served in the order they came, and one served is never told of a timeout later", async () => {
    await withPool(db.url, 1, 400, async (pool) => {
      const first = await checkout(pool)
      // Every call of each caller's callback, to see that none is called twice.
      const calls: Array<{ readonly n: number; readonly error: Error | undefined }> = []
      const served = [1, 2, 3].map((n) =>
        new Promise<void>((resolve) =>
          pool.connect((error, client) => {
            calls.push({ n, error })
            // Each is released at once, so the next one in line is served well within its timeout.
            client?.release()
            resolve()
          })
        )
      )
      first.client!.release()
      await Promise.all(served)
      // Past every deadline: nothing more happens to a caller that was served.
      await new Promise((resolve) => setTimeout(resolve, 600))
      assert.deepStrictEqual(calls, [{ n: 1, error: undefined }, { n: 2, error: undefined }, {
        n: 3,
        error: undefined
      }])
      // And a caller after that still gets the connection.
      const last = await checkout(pool)
      assert.isDefined(last.client)
      last.client!.release()
    })
  })

  it("a caller that gives up waiting can retry and be served once a connection is free", async () => {
    await withPool(db.url, 2, 200, async (pool) => {
      const a = await checkout(pool)
      const b = await checkout(pool)
      const late = await checkout(pool)
      assert.strictEqual(DbResilience.kindOf(late.error), "poolExhausted")
      a.client!.release()
      const again = await checkout(pool)
      assert.strictEqual(again.client, a.client)
      again.client!.release()
      b.client!.release()
      assert.strictEqual(pool.totalCount, 2)
      assert.strictEqual(pool.idleCount, 2)
    })
  })

  it("a new connection that gets no answer within the timeout fails as a broken connection, its socket closed", async () => {
    // Accepts connections and never answers: a server that hangs.
    const sockets: Array<Net.Socket> = []
    const closed: Array<Promise<void>> = []
    const silent = Net.createServer((socket) => {
      sockets.push(socket)
      closed.push(new Promise((resolve) => socket.on("close", () => resolve())))
      socket.on("error", () => {})
      // Reads (and drops) what comes, so that the client's end is seen.
      socket.resume()
    })
    await new Promise<void>((resolve) => silent.listen(0, "127.0.0.1", resolve))
    const port = (silent.address() as Net.AddressInfo).port
    try {
      await withPool(`postgres://postgres@127.0.0.1:${port}/postgres`, 2, 300, async (pool) => {
        const outcome = await checkout(pool)
        assert.isUndefined(outcome.client)
        assert.include(outcome.error?.message, "connection timeout")
        assert.strictEqual(DbResilience.kindOf(outcome.error), "transient")
        assert.strictEqual(sockets.length, 1)
        await Promise.all(closed)
        assert.strictEqual(pool.totalCount, 0)
      })
    } finally {
      for (const socket of sockets) socket.destroy()
      await new Promise((resolve) => silent.close(resolve))
    }
  })
})

describe("Pool idle timeout", () => {
  it("statements through a busy pool set no timer each", async () => {
    await withPool(db.url, 2, 5_000, async (pool) => {
      // Two connections open, so that nothing below opens one (a new connection has a connect timer of its own).
      const warm = [await checkout(pool), await checkout(pool)]
      for (const { client } of warm) client!.release()
      const timers = vi.spyOn(globalThis, "setTimeout")
      try {
        // Four callers on two connections: each statement's connection is given back with a caller waiting.
        await Promise.all(Array.from({ length: 4 }, async () => {
          for (let i = 0; i < 25; i++) await pool.query("select 1")
        }))
        // pg-pool sets an idle timer on every release (100 here) and a wait timer on every wait.
        assert.isAtMost(timers.mock.calls.length, 2)
      } finally {
        timers.mockRestore()
      }
      assert.strictEqual(pool.totalCount, 2)
    })
  })

  // Without an acquire timeout (0), the clock keeps the idle timeout alone.
  it("each idle connection is closed at its own deadline, by one timer", async () => {
    const { advance, clock, pending } = manualClock()
    await withPool(db.url, 3, 0, async (pool) => {
      const removed: Array<pg.PoolClient> = []
      pool.on("remove", (client) => removed.push(client))
      const a = (await checkout(pool)).client!
      const b = (await checkout(pool)).client!
      a.release()
      assert.strictEqual(pending(), 1)
      advance(500)
      b.release()
      assert.strictEqual(pending(), 1)
      advance(499)
      assert.strictEqual(pool.idleCount, 2)
      advance(1)
      assert.strictEqual(pool.idleCount, 1)
      assert.strictEqual(pool.totalCount, 1)
      assert.strictEqual(pending(), 1)
      advance(499)
      assert.strictEqual(pool.totalCount, 1)
      advance(1)
      assert.strictEqual(pool.totalCount, 0)
      assert.strictEqual(pending(), 0)
      // Closed for real, oldest first.
      await new Promise<void>((resolve) => {
        const check = () => (removed.length === 2 ? resolve() : setImmediate(check))
        check()
      })
      assert.sameMembers(removed, [a, b])
    }, { idleTimeoutMillis: 1_000, clock })
  })

  type IdleStep =
    | { readonly _tag: "take" }
    | { readonly _tag: "giveBack"; readonly pick: number }
    | { readonly _tag: "advance"; readonly millis: number }

  const idleStep: FastCheck.Arbitrary<IdleStep> = FastCheck.oneof(
    FastCheck.constant({ _tag: "take" } as const),
    FastCheck.record({ _tag: FastCheck.constant("giveBack" as const), pick: FastCheck.nat(100) }),
    FastCheck.record({ _tag: FastCheck.constant("advance" as const), millis: FastCheck.integer({ min: 0, max: 700 }) })
  )

  it.live.prop(
    "a connection is closed exactly when it has been idle for the idle timeout; one timer at most, one while any is idle",
    [FastCheck.array(idleStep, { maxLength: 14 })],
    ([steps]) =>
      Effect.promise(() => {
        const timeout = 1_000
        const { advance, clock, pending } = manualClock()
        return withPool(db.url, 3, 0, async (pool) => {
          const held: Array<pg.PoolClient> = []
          // The model: the idle connections with when each was given back, in that order.
          let idle: Array<{ readonly client: pg.PoolClient; readonly at: number }> = []
          try {
            for (const step of steps) {
              if (step._tag === "take") {
                if (held.length === 3) continue
                const { client } = await checkout(pool)
                // pg-pool hands out the connection given back last.
                const expected = idle.pop()
                if (expected !== undefined) assert.strictEqual(client, expected.client)
                held.push(client!)
              } else if (step._tag === "giveBack") {
                if (held.length === 0) continue
                const [client] = held.splice(step.pick % held.length, 1)
                client!.release()
                idle.push({ client: client!, at: clock.now() })
              } else {
                advance(step.millis)
                idle = idle.filter(({ at }) => at + timeout > clock.now())
              }
              assert.strictEqual(pool.idleCount, idle.length)
              assert.strictEqual(pool.totalCount, held.length + idle.length)
              assert.isAtMost(pending(), 1)
              if (idle.length > 0) assert.strictEqual(pending(), 1)
            }
          } finally {
            // The pool ends only once every connection is back.
            for (const client of held) client.release()
          }
        }, { idleTimeoutMillis: timeout, clock })
      }),
    { fastCheck: { numRuns: 100 } }
  )
})
