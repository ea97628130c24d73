/**
 * Schema migrations: the `.sql` files of a directory, named `<id>_<name>.sql` (`0001_users.sql`), applied in id
 * order, each once, by the `@effect/sql` migrator (which records them in `effect_sql_migrations` and runs them in
 * one transaction under a table lock, so instances starting together apply each migration once).
 */
import * as Migrator from "@effect/sql/Migrator"
import * as SqlClient from "@effect/sql/SqlClient"
import { SqlError } from "@effect/sql/SqlError"
import { Duration, Effect, Layer, Schedule } from "effect"
import * as Fs from "node:fs/promises"
import * as Path from "node:path"
import { fileURLToPath } from "node:url"
import { MainDb } from "./Database.js"
import * as DbResilience from "./DbResilience.js"

/** The repository's `migrations/` folder. */
export const defaultDirectory: string = fileURLToPath(new URL("../../migrations", import.meta.url))

const migrationFile = /^(\d+)_([^.]+)\.sql$/

const importError = (message: string, cause: unknown) => new Migrator.MigrationError({ reason: "import-error", message, cause })

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

const isTransient = (error: unknown): boolean => error instanceof SqlError && DbResilience.kindOf(error) !== "permanent"

/** Applies the pending migrations; returns the ones applied as `[id, name]`. */
export const run = (
  options: Options = {}
): Effect.Effect<ReadonlyArray<readonly [id: number, name: string]>, Migrator.MigrationError | SqlError, SqlClient.SqlClient> =>
  Migrator.make({})({
    loader: fromDirectory(options.directory ?? defaultDirectory),
    ...(options.table === undefined ? {} : { table: options.table })
  }).pipe(
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
      // Said here, in the app's log, whatever the caller does with the failure.
      Effect.tapErrorCause((cause) => Effect.logError("Migrations failed: the app cannot start", cause))
    )
  )
