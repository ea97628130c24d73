/**
 * Every setting of the app, checked once at startup: each concern's settings group (`ServerSettings`,
 * `DatabaseSettings`, `SupabaseSettings`, ...) composed with the app's own, read through Effect `Config`.
 */
import { Config, Context, type Effect, Option, Redacted } from "effect"
import type * as Auth from "../auth/Auth.js"
import * as AuthSettings from "../auth/AuthSettings.js"
import * as SupabaseSettings from "../auth/SupabaseSettings.js"
import type * as HttpClients from "../clients/HttpClients.js"
import * as HttpClientsSettings from "../clients/HttpClientsSettings.js"
import { httpUrl, requiredInProd, secret } from "../config/ConfigReaders.js"
import { type AppEnv, ConfigLoadError, loadFrom } from "../config/ConfigSource.js"
import { defaultVisionProvider, isVisionProvider, type VisionProvider } from "../config/Constants.js"
import * as DatabaseSettings from "../db/DatabaseSettings.js"
import * as ServerSettings from "../http/ServerSettings.js"
import * as JobsSettings from "../jobs/JobsSettings.js"
import * as RealtimeSettings from "../realtime/RealtimeSettings.js"
import * as WebSocketSettings from "../realtime/WebSocketSettings.js"
import * as LoggingSettings from "../runtime/LoggingSettings.js"

/** The committed development and test secrets: fine on a laptop, refused in production. */
export const developmentSecrets: ReadonlyArray<string> = [
  "dev-secret-key-change-me-0123456789abcdef",
  "test-secret-key-not-secret-0123456789abcdef"
]
const minimumProductionSecretLength = 32

export interface Settings {
  readonly core: {
    readonly appName: string
    readonly env: AppEnv
    readonly apiPrefix: string
    readonly secretKey: Redacted.Redacted
    readonly version: string
    readonly sentryDsn: Option.Option<Redacted.Redacted>
  }
  readonly server: ServerSettings.ServerSettings
  readonly serverlessEnabled: boolean
  readonly publicUrls: { readonly api: string; readonly app: string }
  readonly cors: ServerSettings.CorsSettings
  readonly database: DatabaseSettings.DatabaseSettings
  readonly supabase: SupabaseSettings.SupabaseSettings
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
  readonly logging: LoggingSettings.LoggingSettings
  /** Spans for `Effect.fn`, SQL statements and HTTP requests; off unless a tracer is wired in to export them. */
  readonly tracingEnabled: boolean
  readonly auth: Auth.Tunables
  readonly httpClients: HttpClients.Settings
  readonly realtime: RealtimeSettings.RealtimeSettings
  readonly jobs: JobsSettings.JobsSettings
  readonly websocket: WebSocketSettings.WebSocketSettings
}

export class AppConfig extends Context.Tag("core/AppConfig")<AppConfig, Settings>() {}

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

const publicUrls = (env: AppEnv) =>
  Config.all({
    api: requiredInProd(env, httpUrl("PUBLIC_API_URL")).pipe(
      Config.map(Option.getOrElse(() => "http://localhost:8000"))
    ),
    app: requiredInProd(env, httpUrl("PUBLIC_APP_URL")).pipe(
      Config.map(Option.getOrElse(() => "http://localhost:3000"))
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

/** The whole configuration for one environment; every group is read even when another fails, so errors add up. */
export const settings = (env: AppEnv): Config.Config<Settings> =>
  Config.all({
    core: core(env),
    server: ServerSettings.server,
    serverlessEnabled: Config.boolean("SERVERLESS_ENABLED").pipe(Config.withDefault(false)),
    publicUrls: publicUrls(env),
    cors: ServerSettings.cors,
    database: DatabaseSettings.config(env),
    supabase: SupabaseSettings.config(env),
    ai,
    notifications,
    features,
    logging: LoggingSettings.config,
    tracingEnabled: Config.boolean("TRACING_ENABLED").pipe(Config.withDefault(false)),
    auth: AuthSettings.config,
    httpClients: HttpClientsSettings.config,
    realtime: RealtimeSettings.config,
    jobs: JobsSettings.config,
    websocket: WebSocketSettings.config
  })

// Loading ---------------------------------------------------------------------------------------------------------

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

/** Settings from `environment` alone, no env file read: an in-process app's in tests, whatever the working folder. */
export const fromEnvironment = (
  environment: Readonly<Record<string, string | undefined>>
): Effect.Effect<Settings, ConfigLoadError> => loadFrom({ config: settings, directory: undefined, environment })

export { ConfigLoadError }
