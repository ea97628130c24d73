/**
 * Clients that give up mid-query never cost other clients anything: hundreds of requests aborted while their
 * statement runs, next to well-behaved `/ready` and `/api/v1/me` calls and queries of their own, on each database
 * the app runs on (embedded PGlite, Postgres directly, PgBouncer in transaction mode). Real sockets throughout.
 */
import * as HttpLayerRouter from "@effect/platform/HttpLayerRouter"
import * as HttpServerRequest from "@effect/platform/HttpServerRequest"
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import { afterAll, assert, describe, layer } from "@effect/vitest"
import { Duration, Effect, Layer } from "effect"
import { randomUUID } from "node:crypto"
import * as Fs from "node:fs"
import * as Http from "node:http"
import * as Os from "node:os"
import * as Path from "node:path"
import { MainDb } from "../../src/core/db/Database.js"
import { ensureSharedPgBouncer } from "../support/PgBouncer.js"
import { provided } from "../support/Provided.js"
import * as TestServerLayer from "../support/TestServer.js"
import { TestServer } from "../support/TestServer.js"

/** `GET /test/sleep?ms=N`: one statement of N ms on `MainDb`, then 200. */
const sleepRoute = HttpLayerRouter.add(
  "GET",
  "/test/sleep",
  Effect.gen(function*() {
    const request = yield* HttpServerRequest.HttpServerRequest
    const ms = Number(new URL(request.url, "http://localhost").searchParams.get("ms") ?? "0")
    const sql = yield* MainDb
    yield* Effect.orDie(sql`select pg_sleep(${ms / 1000})`)
    return HttpServerResponse.text("slept")
  })
)

/** A GET on a socket of its own, destroyed `afterMs` after it was sent; resolves once the socket is gone. */
const abortedGet = (url: string, afterMs: number): Promise<"aborted" | number> =>
  new Promise((resolve) => {
    const request = Http.get(url, { agent: false }, (response) => {
      response.resume()
      response.on("end", () => resolve(response.statusCode ?? 0))
    })
    request.on("error", () => resolve("aborted"))
    request.on("close", () => resolve("aborted"))
    setTimeout(() => request.destroy(), afterMs)
  })

/** Runs `work` over `items`, `concurrency` at a time. */
const pooled = async <A, B>(
  items: ReadonlyArray<A>,
  concurrency: number,
  work: (a: A) => Promise<B>
): Promise<Array<B>> => {
  const results: Array<B> = new Array(items.length)
  let next = 0
  await Promise.all(Array.from({ length: concurrency }, async () => {
    while (next < items.length) {
      const i = next++
      results[i] = await work(items[i]!)
    }
  }))
  return results
}

interface Mode {
  readonly name: string
  readonly env: Effect.Effect<Record<string, string>>
  /** How long an aborted request's statement would run: long where the statement is cancelled, short elsewhere. */
  readonly abortedSleepMs: number
}

const embeddedDir = Fs.mkdtempSync(Path.join(Os.tmpdir(), "aborted-embedded-"))
afterAll(() => Fs.rmSync(embeddedDir, { recursive: true, force: true }))

const modes: ReadonlyArray<Mode> = [
  {
    name: "embedded PGlite",
    // An empty DATABASE_URL counts as unset: the embedded database. It cannot cancel: the statement runs to its end.
    env: Effect.succeed({ DATABASE_URL: "", EMBEDDED_DB_DIR: Path.join(embeddedDir, "pglite") }),
    abortedSleepMs: 20
  },
  {
    name: "Postgres directly",
    env: Effect.succeed({ DATABASE_URL: provided("databaseUrl") }),
    // Never ending within the test: only the cancel frees the connection.
    abortedSleepMs: 60_000
  },
  {
    name: "PgBouncer in transaction mode",
    env: Effect.map(
      Effect.promise(() => ensureSharedPgBouncer()),
      () => ({ DATABASE_URL: provided("databaseUrlViaPgBouncer") })
    ),
    // Not cancelled through a pooler: the statement runs to its end, its connection then serves the others.
    abortedSleepMs: 10
  }
]

for (const mode of modes) {
  const server = Layer.unwrapEffect(
    Effect.map(mode.env, (env) => TestServerLayer.layer({ env: { ...env, LOG_LEVEL: "warning" }, routes: sleepRoute }))
  )
  describe(`aborted requests (${mode.name})`, () => {
    layer(server, { excludeTestServices: true, timeout: Duration.minutes(2) })((it) => {
      it.effect(
        "300 requests aborted mid-query: not one of 160 /ready, 40 /me and 40 queries running beside them fails",
        () =>
          Effect.gen(function*() {
            const running = yield* TestServer
            const issuer = running.standIn!
            const user = issuer.createUser({
              email: `abort-${randomUUID().slice(0, 8)}@example.com`,
              password: "password-123"
            })
            const token = yield* Effect.promise(() => issuer.signToken({ user: user.id }))
            const get = (path: string, init: RequestInit = {}) =>
              fetch(`${running.url}${path}`, init).then(async (response) => ({
                path,
                status: response.status,
                body: await response.text()
              }))
            const { aborted, others } = yield* Effect.promise(async () => {
              // Half of them `/ready` cut off after 3 ms (as a load balancer's impatient probe), half a longer query.
              const aborting = pooled(
                Array.from({ length: 300 }, (_, i) =>
                  i % 2 === 0
                    ? { path: "/ready", afterMs: 3 }
                    : { path: `/test/sleep?ms=${mode.abortedSleepMs}`, afterMs: 3 + (i % 8) * 2 }),
                24,
                ({ afterMs, path }) => abortedGet(`${running.url}${path}`, afterMs)
              )
              const wellBehaved = [
                ...Array.from({ length: 160 }, () => () => get("/ready")),
                ...Array.from({ length: 40 }, () => () =>
                  get("/api/v1/me", { headers: { authorization: `Bearer ${token}` } })),
                ...Array.from({ length: 40 }, () => () =>
                  get("/test/sleep?ms=5"))
              ]
              const others = pooled(wellBehaved, 16, (call) => call())
              return { aborted: await aborting, others: await others }
            })
            assert.strictEqual(aborted.length, 300)
            // Most of them were indeed cut off before their answer.
            assert.isAtLeast(aborted.filter((result) => result === "aborted").length, 100)
            assert.strictEqual(others.length, 240)
            assert.deepStrictEqual(others.filter((reply) => reply.status !== 200), [])

            // Afterwards the pool is whole: a burst of database-backed calls all succeed.
            const after = yield* Effect.promise(() => Promise.all(Array.from({ length: 20 }, () => get("/ready"))))
            assert.deepStrictEqual(after.filter((reply) => reply.status !== 200), [])
          }),
        { timeout: 120_000 }
      )
    })
  })
}
