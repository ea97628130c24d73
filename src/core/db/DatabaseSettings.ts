/** The database settings: `DATABASE_URL`, `DATABASE_BG_URL`, the pools' sizes and timeouts, the embedded folder. */
import { Config, Duration, type Option, type Redacted } from "effect"
import { atLeast, requiredInProd, seconds, secret } from "../config/ConfigReaders.js"
import type { AppEnv } from "../config/ConfigSource.js"

export interface DatabaseSettings {
  /** None: the embedded database (PGlite). */
  readonly url: Option.Option<Redacted.Redacted>
  /** None: `url`. */
  readonly bgUrl: Option.Option<Redacted.Redacted>
  readonly poolSize: number
  readonly bgPoolSize: number
  readonly poolTimeout: Duration.Duration
  readonly statementTimeout: Duration.Duration
  readonly idleTimeout: Duration.Duration
  readonly embeddedDir: string
}

/** What the pools read of the app's settings: the app's name names their connections. */
export interface PoolSettings {
  readonly core: { readonly appName: string }
  readonly database: DatabaseSettings
  /** `SERVERLESS_ENABLED`: no idle connection kept. */
  readonly serverlessEnabled: boolean
}

export const config = (env: AppEnv): Config.Config<DatabaseSettings> =>
  Config.all({
    url: requiredInProd(env, Config.redacted("DATABASE_URL")),
    bgUrl: secret("DATABASE_BG_URL"),
    poolSize: atLeast("DB_POOL_SIZE", 1).pipe(Config.withDefault(5)),
    bgPoolSize: atLeast("DB_BG_POOL_SIZE", 1).pipe(Config.withDefault(3)),
    poolTimeout: seconds("DB_POOL_TIMEOUT").pipe(Config.withDefault(Duration.seconds(10))),
    statementTimeout: seconds("DB_STATEMENT_TIMEOUT").pipe(Config.withDefault(Duration.seconds(30))),
    idleTimeout: seconds("DB_IDLE_TIMEOUT").pipe(Config.withDefault(Duration.seconds(60))),
    embeddedDir: Config.string("EMBEDDED_DB_DIR").pipe(Config.withDefault(".data/pglite"))
  })
