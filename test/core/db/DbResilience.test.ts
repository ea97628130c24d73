import { SqlError } from "@effect/sql/SqlError"
import { assert, describe, it } from "@effect/vitest"
import { Duration, Effect, Exit, FastCheck as fc, Fiber, LogLevel, TestClock } from "effect"
import pg from "pg"
import * as DbResilience from "../../../src/core/db/DbResilience.js"
import { breaksConnection } from "../../../src/core/db/Pool.js"
import * as ApiError from "../../../src/core/errors/ApiError.js"
import * as Logging from "../../../src/core/runtime/Logging.js"
import * as RequestId from "../../../src/core/runtime/RequestId.js"

// Generated failures ------------------------------------------------------------------------------------------------

type Kind = DbResilience.Kind
/** A leaf's own class: a misconfiguration (a connection refused for good) is permanent whatever else the chain holds. */
type LeafKind = Kind | "misconfigured"

/** A failure as the drivers report it, labelled with the class it must get. */
interface Leaf {
  readonly _tag: "Leaf"
  readonly kind: LeafKind
  readonly code: string | undefined
  readonly message: string
  readonly server: boolean
}
type Tree =
  | Leaf
  | { readonly _tag: "Wrapped"; readonly message: string; readonly inner: Tree }
  | { readonly _tag: "Aggregate"; readonly inners: ReadonlyArray<Tree> }

const leaf = (kind: LeafKind, code: string | undefined, message: string, server = false): Leaf => ({
  _tag: "Leaf",
  kind,
  code,
  message,
  server
})

/** Real failures of a broken or unreachable connection, as pg, pg-pool, sql-pg, Node and PgBouncer word them. */
const transientLeaves: ReadonlyArray<Leaf> = [
  leaf("transient", "57P01", "terminating connection due to administrator command", true),
  leaf("transient", "57P02", "terminating connection due to crash of another server process", true),
  leaf("transient", "57P03", "the database system is starting up", true),
  leaf("transient", "08006", "connection failure", true),
  leaf("transient", "08003", "connection does not exist", true),
  leaf("transient", "08P01", "server conn crashed?", true),
  leaf("transient", "08001", "unable to establish connection", true),
  leaf("transient", undefined, "Connection terminated unexpectedly"),
  leaf("transient", undefined, "Connection terminated due to connection timeout"),
  leaf("transient", undefined, "connection to database closed"),
  leaf("transient", undefined, "Client has encountered a connection error and is not queryable"),
  leaf("transient", undefined, "timeout expired"),
  leaf("transient", undefined, "PgClient: Connection timed out"),
  leaf("transient", "ECONNREFUSED", "connect ECONNREFUSED 127.0.0.1:5432"),
  leaf("transient", "ECONNRESET", "read ECONNRESET"),
  leaf("transient", "EPIPE", "write EPIPE"),
  leaf("transient", "ETIMEDOUT", "connect ETIMEDOUT 10.0.0.1:5432"),
  leaf("transient", "EHOSTUNREACH", "connect EHOSTUNREACH 10.0.0.1:5432"),
  leaf("transient", "EAI_AGAIN", "getaddrinfo EAI_AGAIN db.internal")
]

const exhaustedLeaf = leaf("poolExhausted", undefined, "timeout exceeded when trying to connect")

/** Real failures that a retry would not fix. */
const permanentLeaves: ReadonlyArray<Leaf> = [
  leaf("permanent", "23505", "duplicate key value violates unique constraint \"users_pkey\"", true),
  leaf("permanent", "57014", "canceling statement due to statement timeout", true),
  leaf("permanent", "57014", "canceling statement due to user request", true),
  leaf("permanent", "42P01", "relation \"nope\" does not exist", true),
  leaf("permanent", "42601", "syntax error at or near \"selec\"", true),
  leaf("permanent", "22P02", "invalid input syntax for type uuid: \"x\"", true),
  leaf("permanent", "40001", "could not serialize access due to concurrent update", true),
  leaf("permanent", "ENOENT", "no such file or directory"),
  leaf("permanent", undefined, "Cannot use a pool after calling end on the pool"),
  leaf("permanent", undefined, "Expected 1 results but got 0")
]

/** Connections refused for good, as Postgres and PgBouncer (always 08P01) word them: never retried. */
const misconfiguredLeaves: ReadonlyArray<Leaf> = [
  leaf("misconfigured", "28P01", "password authentication failed for user \"app\"", true),
  leaf("misconfigured", "28000", "role \"nobody\" does not exist", true),
  leaf("misconfigured", "3D000", "database \"nosuchdb\" does not exist", true),
  leaf("misconfigured", "08P01", "unsupported startup parameter: statement_timeout", true),
  leaf("misconfigured", "08P01", "database \"nosuchdb\" does not exist", true),
  leaf("misconfigured", "08P01", "\"trust\" authentication failed", true),
  leaf("misconfigured", "08P01", "no such database: nosuchdb", true)
]

const markers = [...DbResilience.transientMessages, DbResilience.poolExhaustedMessage]
const neutralText = fc.string({ maxLength: 24 }).filter((text) =>
  !markers.some((marker) => text.toLowerCase().includes(marker))
)
/** SQLSTATE-like codes outside the transient ones: anything but class 08 and 57P01-57P03. */
const otherCode = fc.stringMatching(/^[0-9A-Z]{5}$/).filter((code) =>
  !code.startsWith("08") && !["57P01", "57P02", "57P03"].includes(code) && !DbResilience.misconfigurationCodes.has(code)
)

const leafArbitrary: fc.Arbitrary<Leaf> = fc.oneof(
  fc.constantFrom(...transientLeaves),
  fc.stringMatching(/^08[0-9A-Z]{3}$/).map((code) => leaf("transient", code, "connection exception", true)),
  fc.constant(exhaustedLeaf),
  fc.constantFrom(...permanentLeaves),
  fc.constantFrom(...misconfiguredLeaves),
  fc.tuple(otherCode, neutralText).map(([code, message]) => leaf("permanent", code, message, true)),
  neutralText.map((message) => leaf("permanent", undefined, message))
)

const { tree: treeArbitrary } = fc.letrec<{ tree: Tree }>((tie) => ({
  tree: fc.oneof(
    { depthSize: "small", withCrossShrink: true },
    leafArbitrary,
    fc.record({
      _tag: fc.constant("Wrapped" as const),
      message: fc.constantFrom("Failed to execute statement", "Connection error", "query failed"),
      inner: tie("tree")
    }),
    fc.record({
      _tag: fc.constant("Aggregate" as const),
      inners: fc.array(tie("tree"), { minLength: 1, maxLength: 3 })
    })
  )
}))

const sqlMessages = [
  "Failed to execute statement",
  "Failed to acquire connection",
  "Failed to acquire connection for transaction",
  "Connection error"
]

const failureArbitrary = fc.tuple(treeArbitrary, fc.constantFrom(...sqlMessages))

const build = (tree: Tree): Error => {
  switch (tree._tag) {
    case "Leaf": {
      if (tree.server) {
        const error = new pg.DatabaseError(tree.message, 0, "error")
        error.code = tree.code
        error.severity = tree.code?.startsWith("57P0") ? "FATAL" : "ERROR"
        return error
      }
      return Object.assign(new Error(tree.message), tree.code === undefined ? {} : { code: tree.code })
    }
    case "Wrapped":
      return new Error(tree.message, { cause: build(tree.inner) })
    case "Aggregate":
      return new AggregateError(tree.inners.map(build), "")
  }
}

const leaves = (tree: Tree): Array<Leaf> =>
  tree._tag === "Leaf" ? [tree] : tree._tag === "Wrapped" ? leaves(tree.inner) : tree.inners.flatMap(leaves)

/** The class a failure must get: exhaustion anywhere wins, then a misconfiguration (permanent), then any transient part. */
const expectedKind = (tree: Tree): Kind => {
  const kinds = leaves(tree).map((l) => l.kind)
  return kinds.includes("poolExhausted")
    ? "poolExhausted"
    : kinds.includes("misconfigured")
    ? "permanent"
    : kinds.includes("transient")
    ? "transient"
    : "permanent"
}

const tagOf = (kind: Kind) =>
  kind === "poolExhausted" ? "PoolExhausted" : kind === "transient" ? "TransientDbError" : "SqlError"

const fail = (error: SqlError) => Effect.fail(error)

// Tests -------------------------------------------------------------------------------------------------------------

describe("DbResilience", () => {
  it.prop(
    "the classifier maps every generated failure (codes, messages, nested causes) to exactly the class of its parts",
    [failureArbitrary],
    ([[tree, message]]) => {
      const error = new SqlError({ cause: build(tree), message })
      const classified = DbResilience.classify(error)
      const expected = expectedKind(tree)
      assert.strictEqual(classified._tag, tagOf(expected))
      // Exactly one class.
      const memberships = [
        DbResilience.isTransientDbError(classified),
        DbResilience.isPoolExhausted(classified),
        classified instanceof SqlError
      ]
      assert.strictEqual(memberships.filter(Boolean).length, 1)
      if (expected === "permanent") assert.strictEqual(classified, error)
      else assert.strictEqual((classified as DbResilience.TransientDbError | DbResilience.PoolExhausted).cause, error)
      // Wrapping a failure once more never changes its class.
      const rewrapped = new SqlError({ cause: new Error("wrapper", { cause: build(tree) }), message })
      assert.strictEqual(DbResilience.kindOf(rewrapped), expected)
    },
    { fastCheck: { numRuns: 500 } }
  )

  it.effect.prop(
    "only TransientDbError is ever retried, and only once",
    [failureArbitrary, fc.boolean()],
    ([[tree, message], persistent]) =>
      Effect.gen(function*() {
        const error = new SqlError({ cause: build(tree), message })
        let attempts = 0
        const operation = Effect.suspend(() => {
          attempts++
          return persistent || attempts === 1 ? fail(error) : Effect.succeed("ok")
        })
        const fiber = yield* Effect.fork(DbResilience.withTransientRetry(operation, "prop"))
        yield* TestClock.adjust(Duration.seconds(1))
        const exit = yield* Fiber.await(fiber)
        const transient = expectedKind(tree) === "transient"
        assert.strictEqual(attempts, transient ? 2 : 1)
        if (transient && !persistent) {
          assert.deepStrictEqual(exit, Exit.succeed("ok"))
        } else {
          assert.isTrue(Exit.isFailure(exit))
          if (Exit.isFailure(exit)) {
            const failure = exit.cause._tag === "Fail" ? exit.cause.error : undefined
            assert.strictEqual(failure?._tag, tagOf(expectedKind(tree)))
          }
        }
      }).pipe(Effect.provide(Logging.layer({ format: "json", level: LogLevel.None, sink: () => {} }))),
    { fastCheck: { numRuns: 200 } }
  )

  it.effect("the retry waits a short jittered delay (50-150 ms) before its one try", () =>
    Effect.gen(function*() {
      const error = new SqlError({ cause: Object.assign(new Error("read ECONNRESET"), { code: "ECONNRESET" }) })
      let attempts = 0
      const fiber = yield* Effect.fork(
        DbResilience.withTransientRetry(Effect.suspend(() => (++attempts === 1 ? fail(error) : Effect.void)), "delay")
      )
      yield* TestClock.adjust(Duration.millis(49))
      assert.strictEqual(attempts, 1)
      yield* TestClock.adjust(Duration.millis(101))
      assert.strictEqual(attempts, 2)
      assert.deepStrictEqual(yield* Fiber.await(fiber), Exit.void)
    }).pipe(Effect.provide(Logging.layer({ format: "json", level: LogLevel.None, sink: () => {} }))))

  it.effect("a COMMIT or ROLLBACK lost with its connection (a defect in @effect/sql) is classified and retried", () =>
    Effect.gen(function*() {
      const lost = new SqlError({ cause: new Error("Connection terminated unexpectedly") })
      let attempts = 0
      const fiber = yield* Effect.fork(
        DbResilience.withTransientRetry(
          Effect.suspend(() => (++attempts === 1 ? Effect.die(lost) : Effect.succeed(1))),
          "commit"
        )
      )
      yield* TestClock.adjust(Duration.seconds(1))
      assert.deepStrictEqual(yield* Fiber.await(fiber), Exit.succeed(1))
      assert.strictEqual(attempts, 2)
      // Other defects are not the database's: they stay defects, not retried.
      const bug = new Error("bug")
      const exit = yield* Effect.exit(DbResilience.withTransientRetry(Effect.die(bug), "bug"))
      assert.isTrue(Exit.isFailure(exit) && exit.cause._tag === "Die" && exit.cause.defect === bug)
    }).pipe(Effect.provide(Logging.layer({ format: "json", level: LogLevel.None, sink: () => {} }))))

  it.effect("retries and exhaustions are logged with the operation name and the request id, and counted", () =>
    Effect.gen(function*() {
      const { lines, sink } = Logging.memorySink()
      const before = yield* DbResilience.counts
      const terminated = new SqlError({ cause: Object.assign(new Error("terminating connection"), { code: "57P01" }) })
      const exhausted = new SqlError({
        message: "Failed to acquire connection",
        cause: new Error(DbResilience.poolExhaustedMessage)
      })
      const program = Effect.gen(function*() {
        let attempts = 0
        const once = yield* Effect.fork(DbResilience.withTransientRetry(
          Effect.suspend(() => (++attempts === 1 ? fail(terminated) : Effect.void)),
          "Users.touch"
        ))
        const twice = yield* Effect.fork(Effect.flip(DbResilience.withTransientRetry(fail(terminated), "Users.sync")))
        const full = yield* Effect.flip(DbResilience.withTransientRetry(fail(exhausted), "Users.list"))
        yield* TestClock.adjust(Duration.seconds(1))
        yield* Fiber.join(once)
        return { gaveUp: yield* Fiber.join(twice), full }
      }).pipe(
        RequestId.withRequestId("req-42"),
        Effect.provide(Logging.layer({ format: "json", level: LogLevel.Info, sink }))
      )
      const { full, gaveUp } = yield* program
      assert.strictEqual(gaveUp._tag, "TransientDbError")
      assert.strictEqual(full._tag, "PoolExhausted")

      const records = lines.map((line) => JSON.parse(line) as Record<string, unknown>)
      const summary = records.map((r) => [r.level, r.message, r.db_operation, r.request_id]).sort()
      assert.deepStrictEqual(
        summary,
        [
          ["ERROR", "Transient database error: giving up", "Users.sync", "req-42"],
          ["WARN", "Database pool exhausted: failing fast, not retried", "Users.list", "req-42"],
          ["WARN", "Transient database error: retrying once", "Users.sync", "req-42"],
          ["WARN", "Transient database error: retrying once", "Users.touch", "req-42"]
        ].sort()
      )
      assert.isTrue(
        records.every((r) =>
          r.message === "Database pool exhausted: failing fast, not retried" || String(r.db_error).startsWith("57P01")
        )
      )

      const after = yield* DbResilience.counts
      assert.deepStrictEqual(
        {
          retries: after.retries - before.retries,
          failures: after.transientFailures - before.transientFailures,
          exhausted: after.poolExhausted - before.poolExhausted
        },
        { retries: 2, failures: 1, exhausted: 1 }
      )
    }))

  it("PoolExhausted renders as 503 DB_POOL_EXHAUSTED with Retry-After; TransientDbError as 503 SERVICE_UNAVAILABLE", () => {
    const cause = new SqlError({ message: "Failed to acquire connection" })
    const exhausted = ApiError.render(new DbResilience.PoolExhausted({ message: "busy", cause })[ApiError.ToApiError]())
    assert.strictEqual(exhausted.status, 503)
    assert.strictEqual(exhausted.body.error.code, "DB_POOL_EXHAUSTED")
    assert.isAbove(Number(exhausted.headers["retry-after"]), 0)
    const transient = ApiError.render(
      new DbResilience.TransientDbError({ message: "down", cause })[ApiError.ToApiError]()
    )
    assert.strictEqual(transient.status, 503)
    assert.strictEqual(transient.body.error.code, "SERVICE_UNAVAILABLE")
    assert.isAbove(Number(transient.headers["retry-after"]), 0)
    // Internals stay in the log: the message the client sees does not carry the driver's.
    assert.notInclude(JSON.stringify(transient.body), "down")
  })

  it("a connection is destroyed after a socket error or a FATAL reply, kept after an ordinary error reply", () => {
    const reply = (code: string, severity: string) =>
      Object.assign(new pg.DatabaseError("reply", 0, "error"), { code, severity })
    assert.isTrue(breaksConnection(new Error("Connection terminated unexpectedly")))
    assert.isTrue(breaksConnection(Object.assign(new Error("read ECONNRESET"), { code: "ECONNRESET" })))
    assert.isTrue(breaksConnection(reply("57P01", "FATAL")))
    assert.isTrue(breaksConnection(reply("08P01", "ERROR")))
    assert.isFalse(breaksConnection(reply("57014", "ERROR")))
    assert.isFalse(breaksConnection(reply("23505", "ERROR")))
  })
})
