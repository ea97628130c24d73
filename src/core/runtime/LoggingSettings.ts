/** The logging settings: `LOG_LEVEL` and `LOG_FORMAT`. */
import { Config, Either, LogLevel } from "effect"
import { invalid } from "../config/ConfigReaders.js"

/** `pretty` for a terminal, `json` (one object per line) for machines. */
export type LogFormat = "pretty" | "json"

export interface LoggingSettings {
  readonly level: LogLevel.LogLevel
  readonly format: LogFormat
}

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

export const config: Config.Config<LoggingSettings> = Config.all({
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
