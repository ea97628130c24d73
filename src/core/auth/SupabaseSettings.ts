/** The Supabase settings: where the auth provider is, its keys, and the audience and issuer tokens must carry. */
import { Config, ConfigError, Either, Option, type Redacted } from "effect"
import { httpUrl, port, requiredInProd, secret } from "../config/ConfigReaders.js"
import type { AppEnv } from "../config/ConfigSource.js"

/** What the auth layers read. */
export interface ProviderSettings {
  readonly url: Option.Option<string>
  readonly anonKey: Option.Option<Redacted.Redacted>
  readonly serviceRoleKey: Option.Option<Redacted.Redacted>
  readonly jwtSecret: Option.Option<Redacted.Redacted>
  readonly audience: string
  readonly issuer: Option.Option<string>
}

export interface SupabaseSettings extends ProviderSettings {
  /** Where the local stand-in listens when it is the development issuer (no `SUPABASE_URL` in dev). */
  readonly devIssuerPort: number
}

/** The base URL of the provider, or the config error that says it is missing. */
export const providerUrl = (settings: Pick<ProviderSettings, "url">): Either.Either<string, ConfigError.ConfigError> =>
  Option.match(settings.url, {
    onNone: () =>
      Either.left(ConfigError.MissingData(["SUPABASE_URL"], "Auth needs SUPABASE_URL (or the stand-in's URL)")),
    onSome: (url) => Either.right(url.replace(/\/+$/, ""))
  })

export const config = (env: AppEnv): Config.Config<SupabaseSettings> =>
  Config.all({
    url: requiredInProd(env, httpUrl("SUPABASE_URL")),
    anonKey: requiredInProd(env, Config.redacted("SUPABASE_ANON_KEY")),
    serviceRoleKey: requiredInProd(env, Config.redacted("SUPABASE_SERVICE_ROLE_KEY")),
    jwtSecret: secret("SUPABASE_JWT_SECRET"),
    audience: Config.string("SUPABASE_JWT_AUDIENCE").pipe(Config.withDefault("authenticated")),
    issuer: Config.option(httpUrl("SUPABASE_JWT_ISSUER")),
    devIssuerPort: port("DEV_ISSUER_PORT").pipe(Config.withDefault(54321))
  })
