/** The HTTP server's settings: where it listens, its limits and timeouts, and which origins CORS admits. */
import { Config, type ConfigError, Duration, Either, Option } from "effect"
import { atLeast, invalid, port, seconds } from "../config/ConfigReaders.js"

export interface ServerSettings {
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

export interface CorsSettings {
  readonly origins: ReadonlyArray<string>
  readonly allowCredentials: boolean
}

export const server: Config.Config<ServerSettings> = Config.all({
  host: Config.string("HOST").pipe(Config.withDefault("0.0.0.0")),
  // 0 asks the OS for a free port (tests).
  port: port("PORT").pipe(Config.withDefault(8000)),
  shutdownGrace: seconds("SHUTDOWN_GRACE_SECONDS").pipe(Config.withDefault(Duration.seconds(10))),
  maxBodyBytes: atLeast("MAX_BODY_BYTES", 1).pipe(Config.withDefault(1024 * 1024)),
  // Above Node's 16 KiB so an oversized bearer token reaches the verifier and is refused there as a 401.
  maxHeaderBytes: atLeast("MAX_HEADER_BYTES", 1).pipe(Config.withDefault(128 * 1024)),
  maxJsonDepth: atLeast("MAX_JSON_DEPTH", 1).pipe(Config.withDefault(64)),
  headersTimeout: seconds("REQUEST_HEADERS_TIMEOUT_SECONDS").pipe(Config.withDefault(Duration.seconds(10))),
  requestTimeout: seconds("REQUEST_TIMEOUT_SECONDS").pipe(Config.withDefault(Duration.seconds(30))),
  maxConnections: atLeast("MAX_CONNECTIONS", 1).pipe(Config.withDefault(1000))
})

const corsOrigin = /^(\*|https?:\/\/[^\s/]+)$/
const parseOrigins = (raw: string): Array<string> => {
  const trimmed = raw.trim()
  const items: Array<unknown> = trimmed.startsWith("[") ? JSON.parse(trimmed) : trimmed.split(",")
  return items.map((item) => String(item).trim().replace(/\/+$/, "")).filter((item) => item !== "")
}
const origins = (name: string): Config.Config<ReadonlyArray<string>> =>
  Config.string(name).pipe(
    Config.mapOrFail((raw): Either.Either<ReadonlyArray<string>, ConfigError.ConfigError> => {
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

/** `CORS_ORIGINS_STR`, when set, replaces `CORS_ORIGINS` (for platforms that cannot pass a JSON list). */
export const cors: Config.Config<CorsSettings> = Config.all({
  origins: Config.all([Config.option(origins("CORS_ORIGINS_STR")), Config.option(origins("CORS_ORIGINS"))]).pipe(
    Config.map(([override, list]) => Option.getOrElse(Option.orElse(override, () => list), () => []))
  ),
  allowCredentials: Config.boolean("CORS_ALLOW_CREDENTIALS").pipe(Config.withDefault(true))
})
