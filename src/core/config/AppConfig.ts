/** Every setting of the app, in the seed's groups, read through Effect `Config` and checked once at startup. */
import { Config, ConfigError, Context, Duration, Effect, Either, Layer, LogLevel, Option, Redacted } from "effect"
import { defaultVisionProvider, isVisionProvider, type VisionProvider } from "./Constants.js"
import * as Auth from "../auth/Auth.js"
import * as HttpClients from "../clients/HttpClients.js"
import { type AppEnv, ConfigLoadError, loadFrom } from "./ConfigSource.js"

/** The committed development and test secrets: fine on a laptop, refused in production. */
export const developmentSecrets: ReadonlyArray<string> = [
  "dev-secret-key-change-me-0123456789abcdef",
  "test-secret-key-not-secret-0123456789abcdef"
]
const minimumProductionSecretLength = 32

export type LogFormat = "pretty" | "json"

export interface Settings {
  readonly core: {
    readonly appName: string
    readonly env: AppEnv
    readonly apiPrefix: string
    readonly secretKey: Redacted.Redacted
    readonly version: string
    readonly sentryDsn: Option.Option<Redacted.Redacted>
  }
  readonly server: {
    readonly host: string
    readonly port: number
    readonly shutdownGrace: Duration.Duration
    readonly maxBodyBytes: number
    readonly maxHeaderBytes: number
    readonly maxJsonDepth: number
    readonly headersTimeout: Duration.Duration
    readonly requestTimeout: Duration.Duration
    readonly maxConnections: number
  }
  readonly serverlessEnabled: boolean
  readonly publicUrls: { readonly api: string; readonly app: string }
  readonly cors: { readonly origins: ReadonlyArray<string>; readonly allowCredentials: boolean }
  readonly database: {
    readonly url: Option.Option<Redacted.Redacted>
    readonly bgUrl: Option.Option<Redacted.Redacted>
    readonly poolSize: number
    readonly bgPoolSize: number
    readonly poolTimeout: Duration.Duration
    readonly statementTimeout: Duration.Duration
    readonly idleTimeout: Duration.Duration
    readonly embeddedDir: string
  }
  readonly redis: { readonly url: Option.Option<Redacted.Redacted> }
  readonly supabase: {
    readonly url: Option.Option<string>
    readonly anonKey: Option.Option<Redacted.Redacted>
    readonly serviceRoleKey: Option.Option<Redacted.Redacted>
    readonly jwtSecret: Option.Option<Redacted.Redacted>
    readonly audience: string
    readonly issuer: Option.Option<string>
    /** Where the local stand-in listens when it is the development issuer (no `SUPABASE_URL` in dev). */
    readonly devIssuerPort: number
  }
  readonly ai: {
    readonly openaiApiKey: Option.Option<Redacted.Redacted>
    readonly anthropicApiKey: Option.Option<Redacted.Redacted>
    readonly geminiApiKey: Option.Option<Redacted.Redacted>
    readonly perplexityApiKey: Option.Option<Redacted.Redacted>
    readonly serpApiKey: Option.Option<Redacted.Redacted>
    readonly visionProvider: VisionProvider
  }
  readonly notifications: {
    readonly emailEnabled: boolean
    readonly emailFrom: string
    readonly smtpHost: Option.Option<string>
    readonly smtpPort: number
    readonly smtpUser: Option.Option<string>
    readonly smtpPassword: Option.Option<Redacted.Redacted>
  }
  readonly features: { readonly docsEnabled: boolean; readonly websocketsEnabled: boolean }
  readonly logging: { readonly level: LogLevel.LogLevel; readonly format: LogFormat }
  /** Spans for `Effect.fn`, SQL statements and HTTP requests; off unless a tracer is wired in to export them. */
  readonly tracingEnabled: boolean
  readonly auth: Auth.Tunables
  readonly httpClients: { readonly [N in HttpClients.Name]: HttpClients.Limits }
  readonly sse: {
    readonly maxSubscribers: number
    readonly queueSize: number
    readonly keepalive: Duration.Duration
    readonly reapEvery: number
    readonly inactiveAfter: Duration.Duration
    readonly fullCyclesBeforeReap: number
  }
}

export class AppConfig extends Context.Tag("core/AppConfig")<AppConfig, Settings>() {}

// Building blocks -------------------------------------------------------------------------------------------------

const positiveInt = (name: string) =>
  Config.integer(name).pipe(Config.validate({ message: "must be a positive integer", validation: (n) => n > 0 }))

const seconds = (name: string) =>
  Config.number(name).pipe(
    Config.validate({ message: "must be a positive number of seconds", validation: (n) => n > 0 }),
    Config.map(Duration.seconds)
  )

const httpUrl = (name: string) =>
  Config.string(name).pipe(
    Config.validate({
      message: "must be an http(s) URL",
      validation: (s) => URL.canParse(s) && /^https?:$/.test(new URL(s).protocol)
    }),
    Config.map((s) => s.replace(/\/+$/, ""))
  )

const secret = (name: string) => Config.option(Config.redacted(name))

/** Optional on a laptop (an embedded or stand-in service fills in), required in production. */
const requiredInProd = <A>(env: AppEnv, config: Config.Config<A>): Config.Config<Option.Option<A>> =>
  env === "prod" ? Config.map(config, Option.some) : Config.option(config)

const corsOrigin = /^(\*|https?:\/\/[^\s/]+)$/
const parseOrigins = (raw: string): Array<string> => {
  const trimmed = raw.trim()
  const items: Array<unknown> = trimmed.startsWith("[") ? JSON.parse(trimmed) : trimmed.split(",")
  return items.map((item) => String(item).trim().replace(/\/+$/, "")).filter((item) => item !== "")
}
const origins = (name: string): Config.Config<ReadonlyArray<string>> =>
  Config.string(name).pipe(
    Config.mapOrFail((raw) => {
      try {
        const list = parseOrigins(raw)
        const bad = list.filter((origin) => !corsOrigin.test(origin))
        return bad.length === 0
          ? Either.right(list)
          : Either.left(invalid(`not an origin (scheme://host[:port]): ${bad.join(", ")}`))
      } catch {
        return Either.left(invalid("must be a JSON list or a comma-separated list of origins"))
      }
    })
  )
// `mapOrFail` on a named variable prefixes the error's path with the name itself.
const invalid = (message: string) => ConfigError.InvalidData([], message)

// Groups ----------------------------------------------------------------------------------------------------------

const core = (env: AppEnv) =>
  Config.all({
    appName: Config.string("APP_NAME").pipe(
      Config.validate({ message: "must be letters, digits or _", validation: (s) => /^[A-Za-z0-9_]{1,40}$/.test(s) }),
      Config.withDefault("app")
    ),
    env: Config.succeed(env),
    apiPrefix: Config.string("API_PREFIX").pipe(
      Config.validate({
        message: "must start with / and not end with /",
        validation: (s) => /^\/[A-Za-z0-9._~\-/]*[A-Za-z0-9._~-]$/.test(s)
      }),
      Config.withDefault("/api/v1")
    ),
    // Validated before it is wrapped: a validation after `map` would lose the variable's name.
    secretKey: Config.string("SECRET_KEY").pipe(
      Config.validate({
        message: `must be at least ${minimumProductionSecretLength} characters and not a development default`,
        validation: (key) =>
          env !== "prod" || (key.length >= minimumProductionSecretLength && !developmentSecrets.includes(key))
      }),
      Config.map(Redacted.make)
    ),
    version: Config.string("APP_VERSION").pipe(
      Config.orElse(() => Config.string("npm_package_version")),
      Config.withDefault("0.0.0")
    ),
    sentryDsn: secret("SENTRY_DSN")
  })

const server = Config.all({
  host: Config.string("HOST").pipe(Config.withDefault("0.0.0.0")),
  // 0 asks the OS for a free port (tests).
  port: Config.integer("PORT").pipe(
    Config.validate({ message: "must be a port number (0-65535)", validation: (n) => n >= 0 && n <= 65535 }),
    Config.withDefault(8000)
  ),
  shutdownGrace: seconds("SHUTDOWN_GRACE_SECONDS").pipe(Config.withDefault(Duration.seconds(10))),
  maxBodyBytes: positiveInt("MAX_BODY_BYTES").pipe(Config.withDefault(1024 * 1024)),
  // Above Node's 16 KiB so an oversized bearer token reaches the verifier and is refused there as a 401.
  maxHeaderBytes: positiveInt("MAX_HEADER_BYTES").pipe(Config.withDefault(128 * 1024)),
  maxJsonDepth: positiveInt("MAX_JSON_DEPTH").pipe(Config.withDefault(64)),
  headersTimeout: seconds("REQUEST_HEADERS_TIMEOUT_SECONDS").pipe(Config.withDefault(Duration.seconds(10))),
  requestTimeout: seconds("REQUEST_TIMEOUT_SECONDS").pipe(Config.withDefault(Duration.seconds(30))),
  maxConnections: positiveInt("MAX_CONNECTIONS").pipe(Config.withDefault(1000))
})

const publicUrls = (env: AppEnv) =>
  Config.all({
    api: requiredInProd(env, httpUrl("PUBLIC_API_URL")).pipe(
      Config.map(Option.getOrElse(() => "http://localhost:8000"))
    ),
    app: requiredInProd(env, httpUrl("PUBLIC_APP_URL")).pipe(
      Config.map(Option.getOrElse(() => "http://localhost:3000"))
    )
  })

// CORS_ORIGINS_STR, when set, replaces CORS_ORIGINS (the seed's override for platforms that cannot pass lists).
const cors = Config.all({
  origins: Config.all([Config.option(origins("CORS_ORIGINS_STR")), Config.option(origins("CORS_ORIGINS"))]).pipe(
    Config.map(([override, list]) => Option.getOrElse(Option.orElse(override, () => list), () => []))
  ),
  allowCredentials: Config.boolean("CORS_ALLOW_CREDENTIALS").pipe(Config.withDefault(true))
})

const database = (env: AppEnv) =>
  Config.all({
    url: requiredInProd(env, Config.redacted("DATABASE_URL")),
    bgUrl: secret("DATABASE_BG_URL"),
    poolSize: positiveInt("DB_POOL_SIZE").pipe(Config.withDefault(5)),
    bgPoolSize: positiveInt("DB_BG_POOL_SIZE").pipe(Config.withDefault(3)),
    poolTimeout: seconds("DB_POOL_TIMEOUT").pipe(Config.withDefault(Duration.seconds(10))),
    statementTimeout: seconds("DB_STATEMENT_TIMEOUT").pipe(Config.withDefault(Duration.seconds(30))),
    idleTimeout: seconds("DB_IDLE_TIMEOUT").pipe(Config.withDefault(Duration.seconds(60))),
    embeddedDir: Config.string("EMBEDDED_DB_DIR").pipe(Config.withDefault(".data/pglite"))
  })

const supabase = (env: AppEnv) =>
  Config.all({
    url: requiredInProd(env, httpUrl("SUPABASE_URL")),
    anonKey: requiredInProd(env, Config.redacted("SUPABASE_ANON_KEY")),
    serviceRoleKey: requiredInProd(env, Config.redacted("SUPABASE_SERVICE_ROLE_KEY")),
    jwtSecret: secret("SUPABASE_JWT_SECRET"),
    audience: Config.string("SUPABASE_JWT_AUDIENCE").pipe(Config.withDefault("authenticated")),
    issuer: Config.option(httpUrl("SUPABASE_JWT_ISSUER")),
    devIssuerPort: Config.integer("DEV_ISSUER_PORT").pipe(
      Config.validate({ message: "must be a port number (0-65535)", validation: (n) => n >= 0 && n <= 65535 }),
      Config.withDefault(54321)
    )
  })

const ai = Config.all({
  openaiApiKey: secret("OPENAI_API_KEY"),
  anthropicApiKey: secret("ANTHROPIC_API_KEY"),
  geminiApiKey: secret("GEMINI_API_KEY"),
  perplexityApiKey: secret("PERPLEXITY_API_KEY"),
  serpApiKey: secret("SERPAPI_API_KEY"),
  visionProvider: Config.string("VISION_PROVIDER").pipe(
    Config.validate({ message: "must be one of openai, anthropic, gemini", validation: isVisionProvider }),
    Config.map((s) => s as VisionProvider),
    Config.withDefault(defaultVisionProvider)
  )
})

const notifications = Config.all({
  emailEnabled: Config.boolean("NOTIFICATIONS_EMAIL_ENABLED").pipe(Config.withDefault(false)),
  emailFrom: Config.string("EMAIL_FROM").pipe(Config.withDefault("no-reply@localhost")),
  smtpHost: Config.option(Config.string("SMTP_HOST")),
  smtpPort: Config.port("SMTP_PORT").pipe(Config.withDefault(587)),
  smtpUser: Config.option(Config.string("SMTP_USER")),
  smtpPassword: secret("SMTP_PASSWORD")
})

const features = Config.all({
  docsEnabled: Config.boolean("FEATURE_DOCS_ENABLED").pipe(Config.withDefault(true)),
  websocketsEnabled: Config.boolean("FEATURE_WEBSOCKETS_ENABLED").pipe(Config.withDefault(true))
})

const logLevels: Readonly<Record<string, LogLevel.LogLevel>> = {
  trace: LogLevel.Trace,
  debug: LogLevel.Debug,
  info: LogLevel.Info,
  warning: LogLevel.Warning,
  warn: LogLevel.Warning,
  error: LogLevel.Error,
  fatal: LogLevel.Fatal,
  none: LogLevel.None
}

const logging = Config.all({
  level: Config.string("LOG_LEVEL").pipe(
    Config.mapOrFail((raw) => {
      const level = logLevels[raw.toLowerCase()]
      return level === undefined
        ? Either.left(invalid(`must be one of ${Object.keys(logLevels).join(", ")}`))
        : Either.right(level)
    }),
    Config.withDefault(LogLevel.Info)
  ),
  format: Config.literal("pretty", "json")("LOG_FORMAT").pipe(Config.withDefault("json" as const))
})

const sse = Config.all({
  maxSubscribers: positiveInt("SSE_MAX_SUBSCRIBERS").pipe(Config.withDefault(500)),
  queueSize: positiveInt("SSE_QUEUE_SIZE").pipe(Config.withDefault(100)),
  keepalive: seconds("SSE_KEEPALIVE_SECONDS").pipe(Config.withDefault(Duration.seconds(30))),
  reapEvery: positiveInt("SSE_REAP_EVERY_EMITS").pipe(Config.withDefault(10)),
  inactiveAfter: seconds("SSE_INACTIVE_SECONDS").pipe(Config.withDefault(Duration.minutes(30))),
  fullCyclesBeforeReap: positiveInt("SSE_FULL_CYCLES_BEFORE_REAP").pipe(Config.withDefault(3))
})

/** The whole configuration for one environment; every group is read even when another fails, so errors add up. */
export const settings = (env: AppEnv): Config.Config<Settings> =>
  Config.all({
    core: core(env),
    server,
    serverlessEnabled: Config.boolean("SERVERLESS_ENABLED").pipe(Config.withDefault(false)),
    publicUrls: publicUrls(env),
    cors,
    database: database(env),
    redis: Config.all({ url: secret("REDIS_URL") }),
    supabase: supabase(env),
    ai,
    notifications,
    features,
    logging,
    tracingEnabled: Config.boolean("TRACING_ENABLED").pipe(Config.withDefault(false)),
    auth: Auth.config,
    httpClients: HttpClients.config,
    sse
  })

// Layers ----------------------------------------------------------------------------------------------------------

/** Loads settings from `<directory>/.env.<APP_ENV>` overlaid by `environment`. */
export const load = (
  options: {
    readonly directory?: string
    readonly environment?: Readonly<Record<string, string | undefined>>
  } = {}
): Effect.Effect<Settings, ConfigLoadError> =>
  loadFrom({
    config: settings,
    directory: options.directory ?? process.cwd(),
    environment: options.environment ?? process.env
  })

/** The app's settings from the working directory's env file and the process environment. */
export const layer: Layer.Layer<AppConfig, ConfigLoadError> = Layer.effect(AppConfig, load())

/** Settings for tests: the committed `.env.test` defaults, then `overrides` (as if they were environment variables). */
export const layerTest = (
  overrides: Readonly<Record<string, string>> = {}
): Layer.Layer<AppConfig, ConfigLoadError> =>
  Layer.effect(AppConfig, load({ environment: { APP_ENV: "test", ...overrides } }))

export { ConfigLoadError }
