/**
 * The statement timeout where a pooler may stand between the app and Postgres, set by the statement itself: a connection that is not inside a transaction sends, ahead of
 * each statement and in the same round trip, `select set_config('statement_timeout', '<ms>', true)`.
 * Both run in one transaction (the extended protocol's implicit one up to its Sync, or the simple protocol's implicit
 * block), so the setting holds for the statement, or for the whole transaction a `BEGIN` opens, and is gone when it
 * ends. Postgres then cancels an overrunning statement itself: nothing is sent from outside, and nothing depends on
 * a startup parameter, which PgBouncer refuses as it ships (08P01 "unsupported startup parameter").
 * A connection known to lead straight to its backend takes the timeout once, as a session setting (`Pool`).
 */
import pg from "pg"

/** Statements Postgres refuses to run inside a transaction or a pipeline: sent as they are, with no timeout. */
const outsideTransactionsOnly =
  /^\s*(?:vacuum|alter\s+system|(?:create|drop)\s+(?:database|tablespace)|(?:create|drop)\s+(?:unique\s+)?index\s+concurrently|reindex\s+(?:\([^)]*\)\s*)?(?:system|database|(?:index|table|schema)\s+concurrently))\b/i

/** Whether `text` may carry the prelude: not empty, and not a statement that must run outside a transaction. */
export const acceptsPrelude = (text: string): boolean => text.trim() !== "" && !outsideTransactionsOnly.test(text)

/** The prelude for a timeout of `millis` (an integer we make, so a literal is safe and works in both protocols). */
export const prelude = (millis: number): string =>
  `select set_config('statement_timeout', '${Math.max(0, Math.round(millis))}', true)`

/** The session setting for a timeout of `millis`, for a direct connection. */
export const sessionSetting = (millis: number): string => `set statement_timeout = ${Math.max(0, Math.round(millis))}`

/** The parts of pg's connection a query writes to. */
export interface Wire {
  parse(query: { readonly text: string }): void
  bind(config: { readonly values: ReadonlyArray<unknown> }): void
  execute(config: { readonly rows?: number }): void
  query(text: string): void
}

/** pg's `Query` as its client drives it: the hooks called as the server's messages arrive. */
interface QueryHooks {
  readonly text: string | undefined
  requiresPreparation(): boolean
  prepare(connection: Wire): void
  submit(connection: Wire): Error | null
  handleRowDescription(message: unknown): void
  handleDataRow(message: { readonly fields: ReadonlyArray<unknown> }): void
  handleCommandComplete(message: unknown, connection: Wire): void
  handleError(error: Error, connection: Wire): void
}

// @types/pg declares only the public face of `Query`; these hooks are its real (documented in its source) interface.
const QueryWithHooks = pg.Query as unknown as new(config: unknown, values: unknown, callback: unknown) => QueryHooks

/** What a `TimedQuery` asks of its connection when it is sent. */
export interface Session {
  /** The prelude to send ahead of a statement of this text now, if any (none inside a transaction: it has one). */
  readonly preludeFor: (text: string) => string | undefined
}

/**
 * A pg `Query` that sends its session's prelude ahead of itself and keeps the prelude's result out of its own.
 *
 * The class is anonymous on purpose, as `Client`'s statement is: tsx (esbuild's `keepNames`) redefines the `name` of
 * a named class, and V8 then constructs a derived class through a slow path, on every statement.
 */
export const TimedQuery = (() =>
  class extends QueryWithHooks {
    /** Set while the prelude's answer is being read. */
    private inPrelude = false
    private pendingPrelude: string | undefined = undefined

    constructor(config: unknown, values: unknown, callback: unknown, private readonly session: Session) {
      super(config, values, callback)
    }

    override submit(connection: Wire): Error | null {
      const text = this.text
      const preamble = text === undefined ? undefined : this.session.preludeFor(text)
      if (preamble === undefined) return super.submit(connection)
      this.inPrelude = true
      if (this.requiresPreparation()) {
        // Extended protocol: `prepare` sends the prelude's Parse/Bind/Execute ahead of the statement's own messages;
        // the statement's Sync ends the implicit transaction of both.
        this.pendingPrelude = preamble
        return super.submit(connection)
      }
      // Simple protocol: one query string, one implicit transaction for the prelude and the statements after it.
      connection.query(`${preamble};\n${text}`)
      return null
    }

    override prepare(connection: Wire): void {
      const preamble = this.pendingPrelude
      this.pendingPrelude = undefined
      if (preamble !== undefined) {
        connection.parse({ text: preamble })
        connection.bind({ values: [] })
        connection.execute({})
      }
      super.prepare(connection)
    }

    override handleRowDescription(message: unknown): void {
      if (!this.inPrelude) super.handleRowDescription(message)
    }

    override handleDataRow(message: { readonly fields: ReadonlyArray<unknown> }): void {
      if (!this.inPrelude) super.handleDataRow(message)
    }

    override handleCommandComplete(message: unknown, connection: Wire): void {
      if (this.inPrelude) {
        this.inPrelude = false
        return
      }
      super.handleCommandComplete(message, connection)
    }

    override handleError(error: Error, connection: Wire): void {
      this.inPrelude = false
      super.handleError(error, connection)
    }
  })()
