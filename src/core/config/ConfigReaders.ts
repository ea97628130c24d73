/** The readers every settings group shares: durations in seconds, bounded integers, ports, URLs, secrets. */
import { Config, ConfigError, Duration, Option, type Redacted } from "effect"
import type { AppEnv } from "./ConfigSource.js"

/** An integer of at least `minimum`. */
export const atLeast = (name: string, minimum: number): Config.Config<number> =>
  Config.integer(name).pipe(
    Config.validate({ message: `must be an integer of at least ${minimum}`, validation: (n) => n >= minimum })
  )

/** A number of seconds, more than 0 (or 0 too, with `allowZero`), as a `Duration`. */
export const seconds = (
  name: string,
  options: { readonly allowZero?: boolean } = {}
): Config.Config<Duration.Duration> =>
  Config.number(name).pipe(
    Config.validate(
      options.allowZero === true
        ? { message: "must be 0 or more seconds", validation: (s) => s >= 0 }
        : { message: "must be a positive number of seconds", validation: (s) => s > 0 }
    ),
    Config.map(Duration.seconds)
  )

/** A port to listen on; 0 asks the OS for a free one. */
export const port = (name: string): Config.Config<number> =>
  Config.integer(name).pipe(
    Config.validate({ message: "must be a port number (0-65535)", validation: (n) => n >= 0 && n <= 65535 })
  )

/** An http(s) URL, without trailing slashes. */
export const httpUrl = (name: string): Config.Config<string> =>
  Config.string(name).pipe(
    Config.validate({
      message: "must be an http(s) URL",
      validation: (s) => URL.canParse(s) && /^https?:$/.test(new URL(s).protocol)
    }),
    Config.map((s) => s.replace(/\/+$/, ""))
  )

/** An optional secret. */
export const secret = (name: string): Config.Config<Option.Option<Redacted.Redacted>> =>
  Config.option(Config.redacted(name))

/** Optional on a laptop (an embedded or stand-in service fills in), required in production. */
export const requiredInProd = <A>(env: AppEnv, config: Config.Config<A>): Config.Config<Option.Option<A>> =>
  env === "prod" ? Config.map(config, Option.some) : Config.option(config)

/** The error of a `Config.mapOrFail` on a named variable (which prefixes the error's path with the name itself). */
export const invalid = (message: string): ConfigError.ConfigError => ConfigError.InvalidData([], message)
