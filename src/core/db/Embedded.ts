/**
 * The embedded default database: PGlite (Postgres compiled to WebAssembly) persisted in a local folder and served
 * on a loopback socket, so the app reaches it with the same `pg` driver and code path as a real Postgres.
 */
import { Data, Duration, Effect, Redacted, type Scope } from "effect"
import * as Fs from "node:fs"
import * as Path from "node:path"

export class EmbeddedDbError extends Data.TaggedError("EmbeddedDbError")<{
  readonly message: string
  readonly cause?: unknown
}> {}

export interface Embedded {
  /** `postgres://postgres@127.0.0.1:<port>/postgres` */
  readonly url: Redacted.Redacted
  readonly host: string
  readonly port: number
  /** Absolute path of the data folder. */
  readonly dataDir: string
}

const host = "127.0.0.1"
const stopTimeout = Duration.seconds(5)

const isAlive = (pid: number): boolean => {
  try {
    process.kill(pid, 0)
    return true
  } catch (error) {
    return (error as { readonly code?: string }).code === "EPERM"
  }
}

/**
 * Two processes on one PGlite folder would corrupt it, so the folder is locked by a `<dir>.lock` file holding the
 * owner's pid; a lock whose process is gone is taken over.
 */
const lock = (dataDir: string): Effect.Effect<void, EmbeddedDbError, Scope.Scope> => {
  const path = `${dataDir}.lock`
  return Effect.acquireRelease(
    Effect.try({
      try: () => {
        for (let attempt = 0; attempt < 2; attempt++) {
          try {
            Fs.writeFileSync(path, String(process.pid), { flag: "wx" })
            return
          } catch (error) {
            if ((error as { readonly code?: string }).code !== "EEXIST") throw error
            const owner = Number(Fs.readFileSync(path, "utf8").trim())
            if (Number.isInteger(owner) && owner > 0 && isAlive(owner)) {
              throw new Error(`${dataDir} is in use by process ${owner} (lock file ${path})`)
            }
            Fs.rmSync(path, { force: true })
          }
        }
        throw new Error(`could not lock ${dataDir}`)
      },
      catch: (cause) =>
        new EmbeddedDbError({
          message: `Embedded database: ${cause instanceof Error ? cause.message : String(cause)}`,
          cause
        })
    }),
    () => Effect.sync(() => Fs.rmSync(path, { force: true }))
  )
}

/** Opens (creating on first use) the database in `dataDir` and serves it on a free loopback port, for the scope. */
export const start = (dataDir: string): Effect.Effect<Embedded, EmbeddedDbError, Scope.Scope> =>
  Effect.gen(function*() {
    const absolute = Path.resolve(dataDir)
    yield* Effect.try({
      try: () => Fs.mkdirSync(Path.dirname(absolute), { recursive: true }),
      catch: (cause) => new EmbeddedDbError({ message: `Embedded database: cannot create ${absolute}`, cause })
    })
    yield* lock(absolute)
    // Loaded only when used: deployments with a DATABASE_URL never load the WebAssembly build.
    const { PGlite } = yield* Effect.promise(() => import("@electric-sql/pglite"))
    const { PGLiteSocketServer } = yield* Effect.promise(() => import("@electric-sql/pglite-socket"))
    const db = yield* Effect.acquireRelease(
      Effect.tryPromise({
        try: () => PGlite.create(absolute),
        catch: (cause) => new EmbeddedDbError({ message: `Embedded database: cannot open ${absolute}`, cause })
      }),
      (db) => Effect.promise(() => db.close()).pipe(Effect.timeoutOption(stopTimeout), Effect.ignore)
    )
    // Two connections, though the app opens one: a reconnect may arrive before the server has dropped the old one.
    const server = new PGLiteSocketServer({ db, host, port: 0, maxConnections: 2 })
    yield* Effect.acquireRelease(
      Effect.tryPromise({
        try: () => server.start(),
        catch: (cause) => new EmbeddedDbError({ message: "Embedded database: cannot listen on a loopback port", cause })
      }),
      () => Effect.promise(() => server.stop()).pipe(Effect.timeoutOption(stopTimeout), Effect.ignore)
    )
    const port = Number(server.getServerConn().split(":").pop())
    return {
      url: Redacted.make(`postgres://postgres@${host}:${port}/postgres`),
      host,
      port,
      dataDir: absolute
    }
  })
