/**
 * The database: `MainDb` for request traffic and `BgDb` for background work and streams, two `SqlClient`s on
 * `@effect/sql-pg`, each with its own pool, application name, size, acquire timeout and statement timeout.
 * Queries use unnamed statements only, so everything works through PgBouncer in transaction pooling mode. A
 * statement outside a transaction runs straight on the pool (see `Client`).
 *
 *   const sql = yield* MainDb
 *   const rows = yield* sql`select id from users where email = ${email}`
 */
import * as Reactivity from "@effect/experimental/Reactivity"
import * as PgClient from "@effect/sql-pg/PgClient"
import { Context, Duration, Effect, Layer, Option, Redacted, type Scope } from "effect"
import type pg from "pg"
import { Readiness } from "../runtime/Readiness.js"
import * as Client from "./Client.js"
import type { PoolSettings } from "./DatabaseSettings.js"
import * as Embedded from "./Embedded.js"
import * as Pool from "./Pool.js"

/** The request pool. */
export class MainDb extends Context.Tag("core/MainDb")<MainDb, PgClient.PgClient>() {}

/** The background pool: schedulers, jobs, streams; kept apart so they never starve requests of connections. */
export class BgDb extends Context.Tag("core/BgDb")<BgDb, PgClient.PgClient>() {}

export interface PoolOptions {
  readonly url: Redacted.Redacted
  /** Shown in `pg_stat_activity`: `<app>_main`, `<app>_bg`. */
  readonly applicationName: string
  readonly size: number
  /** The longest a caller waits for a connection; past it the call fails with `PoolExhausted`. */
  readonly acquireTimeout: Duration.DurationInput
  /** None: statements may run as long as they like. */
  readonly statementTimeout: Option.Option<Duration.DurationInput>
  /** How long an unused connection stays open. */
  readonly idleTimeout: Duration.DurationInput
  /** Keep no connection open between uses (scale-to-zero platforms); costs a connect per checkout. */
  readonly serverless: boolean
  /** Whether the server honours cancel requests; default true (the embedded database does not). */
  readonly cancellable?: boolean | undefined
}

export interface Options {
  readonly main: PoolOptions
  readonly bg: PoolOptions
}

/** How long shutdown waits for checked-out connections to come back before leaving them to the process exit. */
const closeTimeout = Duration.seconds(5)

const poolConfig = (options: PoolOptions): Pool.PoolConfig => ({
  connectionString: Redacted.value(options.url),
  applicationName: options.applicationName,
  max: options.size,
  acquireTimeoutMillis: Duration.toMillis(options.acquireTimeout),
  statementTimeoutMillis: Option.getOrUndefined(Option.map(options.statementTimeout, Duration.toMillis)),
  idleTimeoutMillis: Duration.toMillis(options.idleTimeout),
  serverless: options.serverless,
  cancellable: options.cancellable ?? true
})

const closePool = (pool: pg.Pool) =>
  Effect.promise(() => pool.end()).pipe(Effect.interruptible, Effect.timeoutOption(closeTimeout), Effect.asVoid)

/** A client over a pool of its own, which is closed with the scope. */
export const makeClient = (options: PoolOptions): Effect.Effect<PgClient.PgClient, never, Scope.Scope> =>
  Effect.gen(function*() {
    const pool = yield* Effect.acquireRelease(Effect.sync(() => Pool.make(poolConfig(options))), closePool)
    const client = yield* PgClient.fromPool({ acquire: Effect.succeed(pool), applicationName: options.applicationName })
    return Client.make(client, pool)
  }).pipe(
    // The pool is built synchronously and never fails: the only failure fromPool knows is its acquire's.
    Effect.orDie,
    Effect.provideServiceEffect(Reactivity.Reactivity, Reactivity.make)
  )

/** `select 1`: the readiness check of a pool. */
export const ping = (client: PgClient.PgClient): Effect.Effect<void, unknown> => Effect.asVoid(client`select 1`)

const registerChecks = (main: PgClient.PgClient, bg: PgClient.PgClient) =>
  Effect.flatMap(
    Readiness,
    (readiness) =>
      Effect.zipRight(readiness.register("database.main", ping(main)), readiness.register("database.bg", ping(bg)))
  )

/** Both pools, each a readiness check, closed at shutdown. */
export const layer = (options: Options): Layer.Layer<MainDb | BgDb, never, Readiness> =>
  Layer.scopedContext(Effect.gen(function*() {
    const main = yield* makeClient(options.main)
    const bg = yield* makeClient(options.bg)
    yield* registerChecks(main, bg)
    return Context.make(MainDb, main).pipe(Context.add(BgDb, bg))
  }))

/** One pool serving as both `MainDb` and `BgDb` (the embedded database takes one connection at a time). */
export const layerShared = (options: PoolOptions): Layer.Layer<MainDb | BgDb, never, Readiness> =>
  Layer.scopedContext(Effect.gen(function*() {
    const client = yield* makeClient(options)
    yield* registerChecks(client, client)
    return Context.make(MainDb, client).pipe(Context.add(BgDb, client))
  }))

/** The pools' options from the settings, for the database at `url` (`DATABASE_BG_URL` overrides it for `BgDb`). */
export const optionsFromSettings = (settings: PoolSettings, url: Redacted.Redacted): Options => {
  const db = settings.database
  const common = {
    acquireTimeout: db.poolTimeout,
    statementTimeout: Option.some(db.statementTimeout),
    idleTimeout: db.idleTimeout,
    serverless: settings.serverlessEnabled
  }
  return {
    main: { ...common, url, applicationName: `${settings.core.appName}_main`, size: db.poolSize },
    bg: {
      ...common,
      url: Option.getOrElse(db.bgUrl, () => url),
      applicationName: `${settings.core.appName}_bg`,
      size: db.bgPoolSize
    }
  }
}

/** Where a URL points, for logs: host, port and database, never the user or password. */
export const describeUrl = (url: Redacted.Redacted): string => {
  try {
    const parsed = new URL(Redacted.value(url))
    return `${parsed.hostname}:${parsed.port === "" ? "5432" : parsed.port}${parsed.pathname}`
  } catch {
    return "(unparseable DATABASE_URL)"
  }
}

/**
 * The embedded database in `dataDir`, served to one pool of one connection shared by `MainDb` and `BgDb`:
 * PGlite runs one statement at a time on a single session, and its socket server multiplexes clients message by
 * message, so a second connection could interleave with the first's extended-protocol messages. It cannot
 * interrupt a running statement either: there is no statement timeout, and a statement whose caller gave up runs to
 * its end on the one connection, which then serves the next caller (a cancel request would cost a connection slot
 * of its socket server and cancel nothing).
 */
export const layerEmbedded = (
  settings: PoolSettings
): Layer.Layer<MainDb | BgDb, Embedded.EmbeddedDbError, Readiness> =>
  Layer.unwrapScoped(Effect.gen(function*() {
    const embedded = yield* Embedded.start(settings.database.embeddedDir).pipe(
      Effect.tapError((error) => Effect.logError(`${error.message}: the app cannot start`, error.cause))
    )
    yield* Effect.logInfo(
      `Database: embedded PGlite in ${embedded.dataDir} (no DATABASE_URL), served on ${embedded.host}:${embedded.port}`
    )
    return layerShared({
      url: embedded.url,
      applicationName: `${settings.core.appName}_main`,
      size: 1,
      acquireTimeout: settings.database.poolTimeout,
      statementTimeout: Option.none(),
      idleTimeout: Duration.zero,
      serverless: false,
      cancellable: false
    })
  }))

/** The pools the settings ask for: Postgres at `DATABASE_URL`, or the embedded database when it is not set. */
export const layerFromSettings = (
  settings: PoolSettings
): Layer.Layer<MainDb | BgDb, Embedded.EmbeddedDbError, Readiness> =>
  Option.match(settings.database.url, {
    onNone: () => layerEmbedded(settings),
    onSome: (url) => {
      const options = optionsFromSettings(settings, url)
      const bgTarget = Option.isSome(settings.database.bgUrl) ? `, background ${describeUrl(options.bg.url)}` : ""
      return layer(options).pipe(
        Layer.tap(() =>
          Effect.logInfo(
            `Database: Postgres at ${describeUrl(url)}${bgTarget} (pools: main ${options.main.size}, ` +
              `background ${options.bg.size}${settings.serverlessEnabled ? ", serverless: no idle connections" : ""})`
          )
        )
      )
    }
  })
