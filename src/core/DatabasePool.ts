/**
 * The `pg` pool under `MainDb` and `BgDb`. Two things plain `pg` does not do: a connection whose query failed
 * because the connection itself broke (or whose statement was cancelled) is destroyed rather than handed to the
 * next caller, and a statement that outlives the statement timeout is cancelled even where the server never saw the
 * setting (PgBouncer ignores the `statement_timeout` startup parameter).
 */
import * as Net from "node:net"
import pg from "pg"

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
}

/**
 * The watchdog waits this long past the statement timeout, so that where Postgres enforces the timeout itself
 * (direct connections) it always acts first, and a late cancel never lands on the connection's next statement.
 */
export const watchdogGraceMillis = 1_000

const connectionFatalCodes: ReadonlySet<string> = new Set(["57P01", "57P02", "57P03"])

/**
 * Whether a failed query leaves its connection unusable: anything but an ordinary error reply from the server
 * (a socket error, a FATAL reply such as an administrator's termination, a connection-class SQLSTATE).
 */
export const breaksConnection = (error: unknown): boolean => {
  if (!(error instanceof pg.DatabaseError)) return true
  const code = error.code ?? ""
  return error.severity === "FATAL" || error.severity === "PANIC" || code.startsWith("08") ||
    connectionFatalCodes.has(code)
}

const cancelRequestCode = 80877102

/**
 * Sends a protocol-level CancelRequest, which, unlike `pg_cancel_backend`, PgBouncer forwards to the server
 * connection the client is linked to. The socket is left open until the server closes it: PgBouncer drops a
 * cancel request whose sender has already hung up.
 */
const sendCancel = (host: string, port: number, processId: number, secretKey: number): void => {
  const socket = host.startsWith("/")
    ? Net.connect({ path: `${host}/.s.PGSQL.${port}` })
    : Net.connect({ host, port })
  socket.unref()
  socket.setTimeout(10_000, () => socket.destroy())
  socket.on("error", () => socket.destroy())
  socket.once("connect", () => {
    const packet = Buffer.alloc(16)
    packet.writeInt32BE(16, 0)
    packet.writeInt32BE(cancelRequestCode, 4)
    packet.writeInt32BE(processId, 8)
    packet.writeInt32BE(secretKey, 12)
    socket.write(packet)
  })
}

interface AppClientConfig extends pg.ClientConfig {
  /** Cancel a statement still running this long after it was sent. */
  readonly watchdogMillis?: number | undefined
}

type QueryCallback = (error: Error | undefined, result: unknown) => void

/** A `pg` client that remembers the error that broke it and cancels statements that overrun. */
export class AppClient extends pg.Client {
  // Set by `pg` itself; declared here to read them.
  declare readonly activeQuery: unknown
  declare readonly processID: number | null
  declare readonly secretKey: number | null

  /**
   * Why this connection must not be handed to another caller, if it must not: the error that broke it, or the
   * cancel of its statement. The pool destroys it on release.
   */
  unusable: Error | undefined = undefined
  private readonly watchdogMillis: number | undefined

  constructor(config?: AppClientConfig) {
    super(config)
    this.watchdogMillis = config?.watchdogMillis
    // Checked out, a client has no error listener of the pool's, and an error event without one would crash the
    // process; the statement running then fails on its own with the same error.
    this.on("error", (error: Error) => {
      this.unusable ??= error
    })
  }

  /**
   * Cancels the running statement of a caller that gave up on it. The cancel travels on a connection of its own and
   * may land after the statement has ended, so this connection is not handed to anyone else: released, it is closed.
   */
  cancelStatement(): void {
    this.unusable ??= new Error("Statement cancelled by its caller")
    if (this.processID !== null && this.secretKey !== null) {
      sendCancel(this.host, this.port, this.processID, this.secretKey)
    }
  }

  override query(...args: Array<any>): any {
    const [config, second, third] = args
    // Cursors and other prepared submittables (streams) pass through: the server's own timeout covers them.
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
    let watchdog: ReturnType<typeof setTimeout> | undefined
    const query = new pg.Query(config, values, (error: Error | undefined, value: unknown) => {
      if (watchdog !== undefined) clearTimeout(watchdog)
      if (error && this.unusable === undefined && breaksConnection(error)) this.unusable = error
      settle(error, value)
    })
    if (this.watchdogMillis !== undefined) {
      watchdog = setTimeout(() => this.cancelIfRunning(query), this.watchdogMillis)
      watchdog.unref()
    }
    Reflect.apply(super.query, this, [query])
    return result
  }

  private cancelIfRunning(query: unknown): void {
    if (this.activeQuery !== query || this.processID === null || this.secretKey === null) return
    sendCancel(this.host, this.port, this.processID, this.secretKey)
  }
}

type ConnectCallback = (
  error: Error | undefined,
  client: pg.PoolClient | undefined,
  done: (release?: any) => void
) => void

/** Hands out clients whose `release` destroys the connection instead of pooling it once it is unusable. */
class AppPool extends pg.Pool {
  override connect(): Promise<pg.PoolClient>
  override connect(callback: ConnectCallback): void
  override connect(callback?: ConnectCallback): Promise<pg.PoolClient> | void {
    if (callback === undefined) {
      return super.connect().then((client) => {
        guardRelease(client, client.release.bind(client))
        return client
      })
    }
    super.connect((error, client, done) =>
      callback(error, client, client === undefined ? done : guardRelease(client, done))
    )
  }
}

const guardRelease = (client: pg.PoolClient, done: (release?: any) => void): (release?: any) => void => {
  client.release = (error?: Error | boolean) => done(error || (client instanceof AppClient ? client.unusable : undefined))
  return client.release
}

/** Cancels the statement running on a client of a pool made here (see `AppClient.cancelStatement`). */
export const cancelStatement = (client: pg.ClientBase): void => {
  if (client instanceof AppClient) client.cancelStatement()
}

/** A pool for `config`; idle-client errors are handled by the pool (it drops the client), so they are not fatal. */
export const make = (config: PoolConfig): pg.Pool => {
  const options: pg.PoolConfig & AppClientConfig = {
    connectionString: config.connectionString,
    application_name: config.applicationName,
    max: config.max,
    min: 0,
    connectionTimeoutMillis: config.acquireTimeoutMillis,
    idleTimeoutMillis: config.serverless ? 1 : config.idleTimeoutMillis,
    // No open connection should outlive its use in serverless mode: no keepalive probes either.
    keepAlive: !config.serverless,
    Client: AppClient,
    ...(config.serverless ? { maxUses: 1 } : {}),
    ...(config.statementTimeoutMillis === undefined ? {} : {
      statement_timeout: config.statementTimeoutMillis,
      watchdogMillis: config.statementTimeoutMillis + watchdogGraceMillis
    })
  }
  const pool = new AppPool(options)
  pool.on("error", () => {})
  return pool
}
