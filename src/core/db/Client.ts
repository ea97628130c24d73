/**
 * The `PgClient` behind `MainDb` and `BgDb`: @effect/sql-pg's, except that a statement run on its own (outside a
 * transaction) goes straight to the pool: a connection checked out, the statement sent, the connection returned
 * when it ends. The library's way adds a scope, a connection acquired through it and a span to every statement,
 * which cost more CPU than `pg` itself. Statements in a transaction or under a statement transformer, and every other
 * use of a statement (`stream`, `values`, `raw`, `unprepared`, `withoutTransform`), stay the library's.
 */
import type * as PgClient from "@effect/sql-pg/PgClient"
import * as SqlClient from "@effect/sql/SqlClient"
import type { Row } from "@effect/sql/SqlConnection"
import { SqlError } from "@effect/sql/SqlError"
import * as Statement from "@effect/sql/Statement"
import { Cause, Context, Effect, Effectable, FiberRef, Option, RuntimeFlags } from "effect"
import { identity } from "effect/Function"
import type pg from "pg"
import * as Pool from "./Pool.js"

type Resume<A> = (effect: Effect.Effect<ReadonlyArray<A>, SqlError>) => void

/** A statement's way through the pool: a connection checked out, the statement sent, the connection returned. */
class Checkout<A> {
  private interrupted = false
  private running: pg.PoolClient | undefined = undefined

  constructor(
    private readonly pool: pg.Pool,
    private readonly text: string,
    private readonly params: ReadonlyArray<unknown>
  ) {}

  start(resume: Resume<A>): void {
    this.pool.connect((cause, client, release) => {
      if (cause || client === undefined) {
        if (!this.interrupted) {
          resume(Effect.fail(
            new SqlError({ cause: cause ?? new Error("No client returned"), message: "Failed to acquire connection" })
          ))
        }
        return
      }
      if (this.interrupted) return release()
      this.running = client
      // pg reads the parameters and never changes them.
      client.query(this.text, this.params as Array<unknown>, (cause: Error | undefined, result: pg.QueryResult) => {
        this.running = undefined
        release()
        if (this.interrupted) return
        resume(
          cause
            ? Effect.fail(new SqlError({ cause, message: "Failed to execute statement" }))
            // A text of several statements (no parameters) answers with one result each.
            : Effect.succeed(Array.isArray(result) ? result.map((each) => each.rows) : result.rows)
        )
      })
    })
  }

  /** The caller left: its statement, if one runs, is cancelled where that is safe (see `Pool.cancelStatement`). */
  interrupt(): void {
    this.interrupted = true
    if (this.running !== undefined) Pool.cancelStatement(this.running)
  }
}

/**
 * One statement on a connection checked out for it alone. Interrupted while it runs, the caller is let go at once;
 * the statement is cancelled where that cannot touch anyone else's (see `Pool.cancelStatement`), and its
 * connection goes back to the pool (or is closed, after a cancel) once the statement has ended. Interrupted while it
 * waits for a connection, the connection is returned as soon as the pool hands it over.
 *
 * `interruptible` is the caller's interruptibility: where it cannot be interrupted, nothing needs to watch for it.
 * Built of the fewest steps that keep the above: `Effect.async` with a canceler wraps each call in `onInterrupt`,
 * whose extra steps and allocations cost more than `pg`'s own work for a short statement.
 */
const run = <A>(
  pool: pg.Pool,
  text: string,
  params: ReadonlyArray<unknown>,
  interruptible: boolean
): Effect.Effect<ReadonlyArray<A>, SqlError> => {
  const checkout = new Checkout<A>(pool, text, params)
  const statement = Effect.async<ReadonlyArray<A>, SqlError>((resume) => checkout.start(resume))
  if (!interruptible) return statement
  // Handlers are skipped once a fiber is interrupted, except in an uninterruptible region: the statement alone is
  // interruptible, its handler is not.
  return Effect.uninterruptible(Effect.catchAllCause(Effect.interruptible(statement), (cause) => {
    if (Cause.isInterrupted(cause)) checkout.interrupt()
    return Effect.failCause(cause)
  }))
}

/** The attributes @effect/sql-pg gives its statement spans. */
const spanAttributesOf = (config: PgClient.PgClientConfig): ReadonlyArray<readonly [string, unknown]> => [
  ["db.system.name", "postgresql"],
  ["db.namespace", config.database ?? config.username ?? "postgres"],
  ["server.address", config.host ?? "localhost"],
  ["server.port", config.port ?? 5432]
]

/**
 * A statement of the library whose `commit` (what `yield*` runs) takes the short way when it can.
 *
 * The class is anonymous on purpose: tsx (esbuild's `keepNames`) redefines the `name` of a named class, and V8 then
 * constructs a derived class through a slow path, on every statement.
 */
const PooledStatement =
  (() =>
    class<A extends object> extends Effectable.Class<ReadonlyArray<A>, SqlError> implements Statement.Statement<A> {
      constructor(
        private readonly statement: Statement.Statement<A>,
        private readonly pool: pg.Pool,
        private readonly spanAttributes: ReadonlyArray<readonly [string, unknown]>
      ) {
        super()
      }

      get [Statement.FragmentId]() {
        return identity
      }
      get segments() {
        return this.statement.segments
      }
      get raw() {
        return this.statement.raw
      }
      get withoutTransform() {
        return this.statement.withoutTransform
      }
      get stream() {
        return this.statement.stream
      }
      get values() {
        return this.statement.values
      }
      get unprepared() {
        return this.statement.unprepared
      }
      compile(withoutTransform?: boolean | undefined) {
        return this.statement.compile(withoutTransform)
      }
      toJSON() {
        const [sql, params] = this.compile()
        return { _id: "@effect/sql/Statement", segments: this.segments, sql, params }
      }

      commit(): Effect.Effect<ReadonlyArray<A>, SqlError> {
        return Effect.withFiberRuntime((fiber, status) => {
          // In a transaction the statement belongs on the transaction's connection; a transformer may rewrite it.
          if (
            Option.isSome(Context.getOption(fiber.currentContext, SqlClient.TransactionConnection)) ||
            Option.isSome(fiber.getFiberRef(Statement.currentTransformer))
          ) {
            return this.statement
          }
          // The library's compiled form is cached on the statement: a statement run again is not compiled again.
          const [text, params] = this.statement.compile()
          // A statement outside any span would open a trace of its own (readiness pings, benchmarks): only a statement
          // within a traced operation gets a span, as OpenTelemetry's `requireParentSpan` does for `pg`.
          const interruptible = RuntimeFlags.interruption(status.runtimeFlags)
          if (fiber.currentSpan === undefined || !fiber.getFiberRef(FiberRef.currentTracerEnabled)) {
            return run(this.pool, text, params, interruptible)
          }
          return Effect.useSpan("sql.execute", { kind: "client", captureStackTrace: false }, (span) => {
            for (const [key, value] of this.spanAttributes) span.attribute(key, value)
            span.attribute("db.operation.name", "execute")
            span.attribute("db.query.text", text)
            // The span's own bracket restores the caller's interruptibility around this.
            return run(this.pool, text, params, interruptible)
          })
        })
      }
    })()

/** `client`, with its statements outside a transaction run straight on `pool`, the pool it was made from. */
export const make = (client: PgClient.PgClient, pool: pg.Pool): PgClient.PgClient => {
  const spanAttributes = spanAttributesOf(client.config)
  const pooled = <A extends object>(statement: Statement.Statement<A>) =>
    new PooledStatement(statement, pool, spanAttributes)

  function sql<A extends object = Row>(strings: TemplateStringsArray, ...args: Array<unknown>): Statement.Statement<A>
  function sql(identifier: string): Statement.Identifier
  function sql<A extends object = Row>(
    strings: TemplateStringsArray | string,
    ...args: Array<unknown>
  ): Statement.Statement<A> | Statement.Identifier {
    return typeof strings === "string" ? client(strings) : pooled(client<A>(strings, ...args))
  }

  const pooledClient: PgClient.PgClient = Object.assign(sql, client, {
    unsafe: <A extends object>(text: string, params?: ReadonlyArray<unknown>) => pooled(client.unsafe<A>(text, params))
  })
  return Object.assign(pooledClient, { safe: pooledClient })
}
