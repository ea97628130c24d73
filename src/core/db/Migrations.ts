/**
 * Schema migrations: the `.sql` files of a directory, named `<id>_<name>.sql` (`0001_users.sql`), applied in id
 * order, each once, by the `@effect/sql` migrator (which records them in `effect_sql_migrations`).
 *
 * Instances starting together take turns: the whole run, the creation of the migrations table included, is one
 * transaction that first takes a transaction-scoped advisory lock (which works through PgBouncer in transaction
 * mode, unlike a session lock). The others wait on it, then find the migrations applied. Migrations are not bound by
 * the statement timeout: a migration may take longer than any request, and so may the wait for the lock.
 */
import * as Migrator from "@effect/sql/Migrator"
import * as SqlClient from "@effect/sql/SqlClient"
import { SqlError } from "@effect/sql/SqlError"
import { Cause, Duration, Effect, Layer, Option, Schedule } from "effect"
import * as FsSync from "node:fs"
import * as Fs from "node:fs/promises"
import * as Path from "node:path"
import { fileURLToPath } from "node:url"
import { MainDb } from "./Database.js"
import * as DbResilience from "./DbResilience.js"

/**
 * The repository's `migrations/` folder, next to the nearest `package.json` above this module: found the same way
 * whether this runs from `src/` or bundled into `dist/`.
 */
const packageRoot = (from: string): string => {
  for (let directory = from;; directory = Path.dirname(directory)) {
    if (FsSync.existsSync(Path.join(directory, "package.json")) || Path.dirname(directory) === directory) {
      return directory
    }
  }
}

export const defaultDirectory: string = Path.join(
  packageRoot(Path.dirname(fileURLToPath(import.meta.url))),
  "migrations"
)

const migrationFile = /^(\d+)_([^.]+)\.sql$/

const importError = (message: string, cause: unknown) =>
  new Migrator.MigrationError({ reason: "import-error", message, cause })

/** Each file is one migration; its text is sent as one simple-protocol query, so it may hold many statements. */
export const fromDirectory = (directory: string): Migrator.Loader =>
  Effect.tryPromise({
    try: () => Fs.readdir(directory),
    catch: (cause) => importError(`Cannot list migrations in ${directory}`, cause)
  }).pipe(
    Effect.map((files) =>
      files
        .flatMap((file): Array<Migrator.ResolvedMigration> => {
          const match = migrationFile.exec(file)
          if (match === null || match[1] === undefined || match[2] === undefined) return []
          const path = Path.join(directory, file)
          const load = Effect.tryPromise({
            try: () => Fs.readFile(path, "utf8"),
            catch: (cause) => importError(`Cannot read ${path}`, cause)
          }).pipe(Effect.map((text) => Effect.flatMap(SqlClient.SqlClient, (sql) => sql.unsafe(text))))
          return [[Number(match[1]), match[2], load]]
        })
        .sort(([a], [b]) => a - b)
    )
  )

export interface Options {
  /** Default: the repository's `migrations/`. */
  readonly directory?: string
  /** Default: `effect_sql_migrations`. */
  readonly table?: string
}

/** A database that is still starting: a few tries over about 15 s before startup gives up. */
const startupRetry = Schedule.exponential(Duration.millis(500)).pipe(Schedule.intersect(Schedule.recurs(5)))

/** Worth another try: the database is starting or unreachable. Refused credentials, database or settings are not. */
const isTransient = (error: unknown): boolean => error instanceof SqlError && DbResilience.kindOf(error) === "transient"

const defaultTable = "effect_sql_migrations"

/** The first key of the migration lock (the second is the table name's hash): "migr". */
const lockNamespace = 0x6d696772

/**
 * The migrator's own run, serialised: in one transaction, no statement timeout, the advisory lock, then the
 * migrations table (as the migrator makes it: its own check-then-create is what two instances raced on).
 */
const serialised = <A, E, R>(table: string, migrate: Effect.Effect<A, E, R>) =>
  Effect.flatMap(SqlClient.SqlClient, (sql) =>
    sql.withTransaction(Effect.gen(function*() {
      yield* sql`select set_config('statement_timeout', '0', true)`
      yield* sql`select pg_advisory_xact_lock(${lockNamespace}::int, hashtext(${table}))`
      yield* sql`create table if not exists ${sql(table)} (
  migration_id integer primary key,
  created_at timestamp with time zone not null default now(),
  name text not null
)`
      return yield* migrate
    })))

/** Applies the pending migrations; returns the ones applied as `[id, name]`. */
export const run = (
  options: Options = {}
): Effect.Effect<
  ReadonlyArray<readonly [id: number, name: string]>,
  Migrator.MigrationError | SqlError,
  SqlClient.SqlClient
> =>
  serialised(
    options.table ?? defaultTable,
    Migrator.make({})({
      loader: fromDirectory(options.directory ?? defaultDirectory),
      table: options.table ?? defaultTable
    })
  ).pipe(
    Effect.tapError((error) =>
      isTransient(error)
        ? Effect.logWarning(`Migrations: database not reachable yet (${DbResilience.describe(error)}); retrying`)
        : Effect.void
    ),
    Effect.retry({ schedule: startupRetry, while: isTransient }),
    Effect.tap((applied) =>
      Effect.logInfo(
        applied.length === 0
          ? "Migrations: schema up to date"
          : `Migrations: applied ${applied.map(([id, name]) => `${String(id).padStart(4, "0")}_${name}`).join(", ")}`
      )
    )
  )

/** Applies the pending migrations on `MainDb` when the app starts; the app does not start if they fail. */
export const layer = (options: Options = {}): Layer.Layer<never, Migrator.MigrationError | SqlError, MainDb> =>
  Layer.effectDiscard(
    Effect.flatMap(MainDb, (sql) => Effect.provideService(run(options), SqlClient.SqlClient, sql)).pipe(
      // Said here, in the app's log, once, whatever the caller does with the failure.
      Effect.tapErrorCause(reportFailure)
    )
  )

/** One line that says why the app cannot start: the database's answer when it refused or could not be reached. */
const reportFailure = (cause: Cause.Cause<Migrator.MigrationError | SqlError>): Effect.Effect<void> => {
  const failure = Cause.failureOption(cause)
  if (Option.isNone(failure) || !(failure.value instanceof SqlError)) {
    return Effect.logError("Migrations failed: the app cannot start", cause)
  }
  const error = failure.value
  const reason = DbResilience.describe(error)
  return Effect.logError(
    DbResilience.isMisconfiguration(error)
      ? `Database refused the connection (${reason}); retrying cannot help: check DATABASE_URL and the database's ` +
        "settings. The app cannot start"
      : DbResilience.kindOf(error) === "transient"
      ? `Database not reachable (${reason}): the app cannot start`
      : `Migrations failed (${reason}): the app cannot start`
  )
}
