/**
 * The `pg` pool under `MainDb` and `BgDb`. What plain `pg` does not do:
 * - the statement timeout: on a connection that leads straight to its Postgres backend, set once for the session
 *   when the connection opens; through a pooler (or where that cannot be told), set by each transaction itself (see
 *   `StatementTimeout`), since a pooler refuses it as a startup parameter and would carry a session setting over to
 *   other clients of the same server connection;
 * - a connection whose query failed because the connection itself broke is destroyed rather than handed to the
 *   next caller;
 * - a statement is cancelled (for a caller that gave up on it) only where the cancel cannot reach anyone else's:
 *   on a connection that leads straight to its Postgres backend, which is then closed rather than reused. Through a
 *   pooler the cancel would go to whatever server connection the pooler has linked by the time it arrives, and the
 *   embedded database has no cancel at all: there the statement runs on to its end (the statement timeout bounds
 *   it) and its connection comes back to the pool as usual;
 * - the acquire timeout of callers waiting for a connection is kept with one timer for all of them, where pg-pool
 *   sets and clears one per waiting caller (`AcquireDeadlines`);
 * - so is the idle timeout of its idle connections, where pg-pool sets one each time a connection is released and
 *   clears it when the connection is taken again: under load, once per statement.
 */
import * as Net from "node:net"
import pg from "pg"
import { AcquireDeadlines, type Wait } from "./AcquireDeadlines.js"
import { poolExhaustedMessage } from "./DbResilience.js"
import { type Clock, systemClock } from "./PoolClock.js"
import { isConnectionFailure } from "./SqlState.js"
import * as StatementTimeout from "./StatementTimeout.js"

export interface PoolConfig {
  readonly connectionString: string
  readonly applicationName: string
  readonly max: number
  /** Longest wait for a connection (a free one, or a new one to connect); 0 waits without limit. */
  readonly acquireTimeoutMillis: number
  /** Undefined: no statement timeout. */
  readonly statementTimeoutMillis: number | undefined
  /** How long an unused connection is kept open; 0 keeps it. */
  readonly idleTimeoutMillis: number
  /** Each checkout opens a connection and closes it after use, so none is ever kept idle. */
  readonly serverless: boolean
  /** Whether the server honours cancel requests (the embedded database does not). */
  readonly cancellable: boolean
}

/**
 * Whether a failed query leaves its connection unusable: anything but an ordinary error reply from the server
 * (a socket error, a FATAL reply such as an administrator's termination, a connection-class SQLSTATE).
 */
export const breaksConnection = (error: unknown): boolean => {
  if (!(error instanceof pg.DatabaseError)) return true
  const code = error.code ?? ""
  return error.severity === "FATAL" || error.severity === "PANIC" || isConnectionFailure(code)
}

const cancelRequestCode = 80877102

/** The longest a cancel request is waited for; past it the cancel is given up (the connection is closed anyway). */
const cancelTimeoutMillis = 10_000

/**
 * Sends a protocol-level CancelRequest and resolves once the server has closed the request's connection, which
 * Postgres does after it has signalled the backend; never rejects.
 */
const sendCancel = (host: string, port: number, processId: number, secretKey: number): Promise<void> =>
  new Promise((resolve) => {
    const socket = host.startsWith("/")
      ? Net.connect({ path: `${host}/.s.PGSQL.${port}` })
      : Net.connect({ host, port })
    socket.unref()
    socket.setTimeout(cancelTimeoutMillis, () => socket.destroy())
    socket.on("error", () => socket.destroy())
    socket.once("close", () => resolve())
    socket.once("connect", () => {
      const packet = Buffer.alloc(16)
      packet.writeInt32BE(16, 0)
      packet.writeInt32BE(cancelRequestCode, 4)
      packet.writeInt32BE(processId, 8)
      packet.writeInt32BE(secretKey, 12)
      socket.write(packet)
    })
  })

interface AppClientConfig extends pg.ClientConfig {
  /** Sets each transaction's statement timeout (undefined: none). */
  readonly statementTimeoutMillis?: number | undefined
  /** Whether the server honours cancel requests. */
  readonly cancellable?: boolean | undefined
  /** Whether a direct connection may take the timeout as a session setting (it is reused, so that pays). */
  readonly sessionTimeout?: boolean | undefined
  /** Longest time to open a connection, its first round trips included (0: no limit). */
  readonly connectTimeoutMillis?: number | undefined
}

type QueryCallback = (error: Error | undefined, result: unknown) => void

/**
 * A `pg` client that sets the statement timeout of each transaction it starts, remembers the error that broke it,
 * and knows whether it leads straight to a Postgres backend.
 */
class AppClient extends pg.Client {
  // Set by `pg` itself; declared here to read them.
  declare readonly activeQuery: unknown
  declare readonly processID: number | null
  declare readonly secretKey: number | null

  /**
   * Why this connection must not be handed to another caller, if it must not: the error that broke it, or the
   * cancel of its statement. The pool destroys it on release.
   */
  unusable: Error | undefined = undefined
  /**
   * Whether the backend pid seen through this connection when it was opened equals the pid of its cancel key: no
   * pooler between, so a cancel request reaches this connection's statement and nothing else.
   */
  direct = false
  private readonly cancellable: boolean
  private readonly connectTimeoutMillis: number
  /** `SET statement_timeout` for a direct connection, when it may take the timeout as a session setting. */
  private readonly sessionSetting: string | undefined
  /**
   * Whether a statement may need the prelude: a timeout is set, and not as this connection's session setting (then
   * its statements carry none, and are sent as `pg`'s own queries).
   */
  private mayNeedPrelude: boolean
  /** When the pool last had this connection back (`Clock.now`), for its idle timeout. */
  releasedAt = 0
  /** The transaction status of the last ReadyForQuery: `I` idle, `T` in a transaction, `E` in a failed one. */
  private transactionStatus = "I"
  private readonly session: StatementTimeout.Session
  private readonly trackTransactionStatus = (message: { readonly status?: string }): void => {
    this.transactionStatus = message.status ?? "I"
  }

  constructor(config?: AppClientConfig) {
    super(config)
    const timeout = config?.statementTimeoutMillis
    const prelude = timeout === undefined ? undefined : StatementTimeout.prelude(timeout)
    this.mayNeedPrelude = prelude !== undefined
    this.cancellable = config?.cancellable ?? true
    this.connectTimeoutMillis = config?.connectTimeoutMillis ?? 0
    this.sessionSetting = timeout === undefined || config?.sessionTimeout !== true
      ? undefined
      : StatementTimeout.sessionSetting(timeout)
    this.session = {
      // Inside a transaction the one that opened it already set the timeout (or the caller chose otherwise).
      preludeFor: (text) =>
        prelude !== undefined && this.mayNeedPrelude && this.transactionStatus === "I" &&
          StatementTimeout.acceptsPrelude(text)
          ? prelude
          : undefined
    }
    // Registered before pg's own listener, which sends the next query: the status is known by then. Only the
    // prelude reads it: without a timeout there is none to track.
    if (prelude !== undefined) this.connection.on("readyForQuery", this.trackTransactionStatus)
    // Checked out, a client has no error listener of the pool's, and an error event without one would crash the
    // process; the statement running then fails on its own with the same error.
    this.on("error", (error: Error) => {
      this.unusable ??= error
    })
  }

  /**
   * Connects, then, where statements may be cancelled, learns whether a pooler stands between (one round trip per
   * new connection, before it is handed to anyone); with none, sets the statement timeout for the session. All of it
   * within the connect timeout, as pg-pool's own connection timeout bounds a new client's `connect`: past it, the
   * socket is destroyed and the connect fails.
   */
  override connect(): Promise<void>
  override connect(callback: (error?: Error) => void): void
  override connect(callback?: (error?: Error) => void): Promise<void> | void {
    let timedOut = false
    const timer = this.connectTimeoutMillis > 0
      ? setTimeout(() => {
        timedOut = true
        this.connection.stream.destroy()
      }, this.connectTimeoutMillis)
      : undefined
    timer?.unref()
    const ready = this.connectAndLearn().then(
      () => clearTimeout(timer),
      (error: unknown) => {
        clearTimeout(timer)
        // pg-pool's words for the same, which `DbResilience` counts as a broken connection.
        throw timedOut ? new Error("Connection terminated due to connection timeout", { cause: error }) : error
      }
    )
    if (callback === undefined) return ready
    ready.then(() => callback(), (error: Error) => callback(error))
  }

  private connectAndLearn(): Promise<void> {
    return super.connect().then(async () => {
      if (!this.cancellable) return
      try {
        const result = await super.query<{ pid: number }>("select pg_backend_pid() as pid")
        this.direct = result.rows[0]?.pid === this.processID
        if (this.direct && this.sessionSetting !== undefined) {
          await super.query(this.sessionSetting)
          this.mayNeedPrelude = false
          // No prelude from now on: nothing reads the status, and each statement is spared an event listener.
          this.connection.off("readyForQuery", this.trackTransactionStatus)
        }
      } catch (error) {
        // The pool forgets a client that failed to connect without closing it.
        await this.end().catch(() => {})
        throw error
      }
    })
  }

  /**
   * Cancels the running statement of a caller that gave up on it, where that is safe (a direct connection with a
   * statement running); the connection is then never handed to anyone else: released, it is closed. Resolves when
   * the cancel has reached the server, or at once when nothing was sent.
   */
  cancelStatement(): Promise<void> {
    if (
      !this.cancellable || !this.direct || this.activeQuery == null || this.processID === null ||
      this.secretKey === null
    ) {
      return Promise.resolve()
    }
    this.unusable ??= new Error("Statement cancelled by its caller")
    return sendCancel(this.host, this.port, this.processID, this.secretKey)
  }

  override query(...args: Array<any>): any {
    const [config, second, third] = args
    // Cursors and other prepared submittables (streams) pass through: inside a transaction its timeout covers them.
    if (config === null || config === undefined || typeof config.submit === "function") {
      return Reflect.apply(super.query, this, args)
    }
    const values = typeof second === "function" ? undefined : second
    const callback: QueryCallback | undefined = typeof second === "function"
      ? second
      : typeof third === "function"
      ? third
      : typeof config === "object" && typeof config.callback === "function"
      ? config.callback
      : undefined
    let settle: QueryCallback
    let result: Promise<unknown> | undefined
    if (callback !== undefined) {
      settle = callback
    } else {
      result = new Promise((resolve, reject) => {
        settle = (error, value) => (error ? reject(error) : resolve(value))
      })
    }
    const done = this.noting(settle!)
    // Without a prelude to send, pg's own query does the same for less.
    const query = this.mayNeedPrelude
      ? new StatementTimeout.TimedQuery(config, values, done, this.session)
      : new pg.Query(config, values, done)
    Reflect.apply(super.query, this, [query])
    return result
  }

  /**
   * `settle`, after noting an error that breaks this connection. (Made here rather than named where it is used: tsx,
   * which the tests and benchmarks run, would set the name of a named function on each statement.)
   */
  private noting(settle: QueryCallback): QueryCallback {
    return (error, value) => {
      if (error && this.unusable === undefined && breaksConnection(error)) this.unusable = error
      settle(error, value)
    }
  }
}

type ConnectCallback = (
  error: Error | undefined,
  client: pg.PoolClient | undefined,
  done: (release?: any) => void
) => void

/** pg's own `submit`-less form of the query @effect/sql-pg sends to cancel an interrupted statement. */
const libraryCancel = /^SELECT pg_cancel_backend\((-?\d+)\)$/

/** A caller waiting for a connection: its callback, and the one pg-pool holds for it. */
class Waiting {
  handle: ConnectCallback | undefined = undefined
  constructor(readonly callback: ConnectCallback) {}
}

/** pg-pool's waiting callers and idle connections, as far as the acquire and idle timeouts need them. */
interface PoolInternals {
  readonly _pendingQueue: Array<{ readonly callback: unknown }>
  readonly _idle: ReadonlyArray<{ readonly client: pg.PoolClient }>
  readonly ending: boolean
  _isAboveMin(): boolean
  _remove(client: pg.PoolClient, callback: () => void): void
  _pulseQueue(): void
  /** Where every connection given back goes (`release` calls it): destroyed when `error` is truthy, else kept idle. */
  _release(client: pg.PoolClient, idleListener: unknown, error: unknown): void
}

const poolRelease = (pg.Pool.prototype as unknown as PoolInternals)._release

interface AppPoolOptions {
  readonly acquireTimeoutMillis: number
  /** How long a connection may stay idle before it is closed, kept here rather than by pg-pool (0: kept open). */
  readonly idleTimeoutMillis: number
  readonly clock: Clock
}

/**
 * Destroys a connection given back instead of pooling it once it is unusable (see `_release`), and answers
 * @effect/sql-pg's cancel of an interrupted statement itself (see `cancelByProcessId`). The acquire timeout is kept
 * here (`AcquireDeadlines`) rather than by pg-pool, with one timer for every waiting caller; a new connection's own
 * timeout is the client's (`AppClient.connect`). The idle timeout is kept here too, with one timer for every idle
 * connection (`closeIdle`).
 */
class AppPool extends pg.Pool {
  private readonly byProcessId = new Map<number, AppClient>()
  private readonly deadlines: AcquireDeadlines<Waiting> | undefined
  private readonly idleTimeoutMillis: number
  private readonly clock: Clock
  /** Whether the idle timer is set (for the earliest idle deadline when it was set, or earlier). */
  private idleTimerSet = false
  private readonly onIdleTimer = (): void => this.closeIdle()

  constructor(options: pg.PoolConfig, own: AppPoolOptions) {
    super(options)
    this.clock = own.clock
    this.idleTimeoutMillis = own.idleTimeoutMillis
    this.deadlines = own.acquireTimeoutMillis > 0
      ? new AcquireDeadlines<Waiting>(own.acquireTimeoutMillis, (waits) => this.timedOut(waits), own.clock)
      : undefined
    this.on("connect", (client) => {
      if (client instanceof AppClient && client.processID !== null) this.byProcessId.set(client.processID, client)
    })
    this.on("remove", (client) => {
      if (
        client instanceof AppClient && client.processID !== null && this.byProcessId.get(client.processID) === client
      ) {
        this.byProcessId.delete(client.processID)
      }
    })
  }

  override connect(): Promise<pg.PoolClient>
  override connect(callback: ConnectCallback): void
  override connect(callback?: ConnectCallback): Promise<pg.PoolClient> | void {
    if (callback === undefined) {
      return new Promise((resolve, reject) =>
        this.connect((error, client) => (client === undefined ? reject(error) : resolve(client)))
      )
    }
    const deadlines = this.deadlines
    // As pg-pool's own timeout: a caller that has a new connection opened for it waits for the connection's timeout
    // instead (a server that does not answer is a broken connection, not an exhausted pool). pg-pool fills in `max`.
    if (deadlines === undefined || (this.idleCount === 0 && this.totalCount < this.options.max!)) {
      super.connect(callback)
      return
    }
    const waiting = new Waiting(callback)
    const wait = deadlines.begin(waiting)
    waiting.handle = (error, client, done) => {
      if (deadlines.serve(wait)) callback(error, client, done)
      // A connection that came too late for its caller (one being opened for it as the wait ended) goes back.
      else if (client !== undefined) done()
    }
    super.connect(waiting.handle)
  }

  /**
   * pg-pool's own, which every connection given back goes through (its `release` and the `done` handed to callers):
   * an unusable connection is destroyed, as if given back with its error; one kept idle is stamped for its idle
   * timeout.
   */
  _release(client: pg.PoolClient, idleListener: unknown, error: unknown): void {
    if (client instanceof AppClient) {
      client.releasedAt = this.clock.now()
      error ||= client.unusable
    }
    poolRelease.call(this, client, idleListener, error)
    // Kept idle (not destroyed, nor handed at once to a caller waiting): its deadline needs a timer, if none is set.
    const idle = (this as unknown as PoolInternals)._idle.length > 0
    if (idle && this.idleTimeoutMillis > 0 && !this.idleTimerSet) this.setIdleTimer(this.idleTimeoutMillis)
  }

  private setIdleTimer(millis: number): void {
    this.idleTimerSet = true
    this.clock.schedule(this.onIdleTimer, millis)
  }

  /**
   * Closes the connections idle for the idle timeout or longer, as pg-pool's own timer of each would (above the
   * pool's minimum), and sets the timer again for the earliest deadline of those still idle. A connection taken
   * and given back since it was last seen here has a later deadline, so it stays.
   */
  private closeIdle(): void {
    this.idleTimerSet = false
    const internals = this as unknown as PoolInternals
    if (internals.ending) return
    const now = this.clock.now()
    let next = Number.POSITIVE_INFINITY
    for (const { client } of [...internals._idle]) {
      const deadline = (client instanceof AppClient ? client.releasedAt : 0) + this.idleTimeoutMillis
      if (deadline > now) next = Math.min(next, deadline)
      else if (internals._isAboveMin()) internals._remove(client, () => internals._pulseQueue())
    }
    if (next !== Number.POSITIVE_INFINITY) this.setIdleTimer(next - now)
  }

  /** Takes the waits that timed out out of pg-pool's queue (as pg-pool does with its own) and fails their callers. */
  private timedOut(waits: ReadonlyArray<Wait<Waiting>>): void {
    const gone = new Set<unknown>()
    for (const wait of waits) gone.add(wait.payload.handle)
    const queue = (this as unknown as PoolInternals)._pendingQueue
    let kept = 0
    for (const item of queue) if (!gone.has(item.callback)) queue[kept++] = item
    queue.length = kept
    for (const wait of waits) wait.payload.callback(new Error(poolExhaustedMessage), undefined, () => {})
  }

  /**
   * @effect/sql-pg cancels a statement it was interrupted in (a transaction's) with `SELECT pg_cancel_backend(pid)`
   * sent through this very pool: it waits for a free connection, may land after the connection was handed to
   * someone else, and through a pooler names no server's pid. That query is answered here instead: the statement is
   * cancelled where that is safe (`AppClient.cancelStatement`), and the caller's callback runs once the cancel has
   * reached the server, so the transaction's ROLLBACK is sent after it.
   */
  override query(...args: Array<any>): any {
    const [text, callback] = args
    const match = typeof text === "string" && typeof callback === "function" ? libraryCancel.exec(text) : null
    if (match === null) return Reflect.apply(super.query, this, args)
    const client = this.byProcessId.get(Number(match[1]))
    const cancelled = client === undefined ? Promise.resolve() : client.cancelStatement()
    cancelled.then(() => callback(undefined, { rows: [], rowCount: 0 }))
    return undefined
  }
}

/** Cancels the statement running on a client of a pool made here, where that is safe (see `AppClient.cancelStatement`). */
export const cancelStatement = (client: pg.ClientBase): void => {
  if (client instanceof AppClient) void client.cancelStatement()
}

/**
 * A pool for `config`; idle-client errors are handled by the pool (it drops the client), so they are not fatal.
 * `clock` keeps the acquire and idle timeouts (tests pass one they move by hand).
 */
export const make = (config: PoolConfig, clock: Clock = systemClock): pg.Pool => {
  const options: pg.PoolConfig & AppClientConfig = {
    connectionString: config.connectionString,
    application_name: config.applicationName,
    max: config.max,
    min: 0,
    // The acquire timeout is the pool's (`AppPool`) and a new connection's (`AppClient`), not pg-pool's.
    connectionTimeoutMillis: 0,
    connectTimeoutMillis: config.acquireTimeoutMillis,
    // The idle timeout is the pool's (`AppPool`); serverless, a connection is closed when released (`maxUses`).
    idleTimeoutMillis: config.serverless ? 1 : 0,
    // No open connection should outlive its use in serverless mode: no keepalive probes either.
    keepAlive: !config.serverless,
    Client: AppClient,
    ...(config.serverless ? { maxUses: 1 } : {}),
    statementTimeoutMillis: config.statementTimeoutMillis,
    cancellable: config.cancellable,
    // A connection used once would pay a round trip for a setting that the prelude carries for free.
    sessionTimeout: !config.serverless
  }
  const pool = new AppPool(options, {
    acquireTimeoutMillis: config.acquireTimeoutMillis,
    idleTimeoutMillis: config.serverless ? 0 : config.idleTimeoutMillis,
    clock
  })
  pool.on("error", () => {})
  return pool
}
