/** Where settings come from: the `.env.<APP_ENV>` file overlaid by the process environment, and how a bad setting is reported. */
import { Cause, type Config, type ConfigError, ConfigProvider, Effect, Option } from "effect"
import * as Fs from "node:fs"
import * as Path from "node:path"
import { parseEnv } from "node:util"

export type AppEnv = "dev" | "test" | "prod"
const appEnvs: ReadonlyArray<AppEnv> = ["dev", "test", "prod"]

/** Startup stops with this when settings are missing or invalid; `problems` names every one of them. */
export class ConfigLoadError extends Error {
  readonly _tag = "ConfigLoadError"
  constructor(readonly problems: ReadonlyArray<string>) {
    super(`Invalid configuration:\n${problems.map((p) => `  - ${p}`).join("\n")}`)
    this.name = "ConfigLoadError"
  }
}

const envFileName = (env: AppEnv): string => `.env.${env}`

/** Reads `APP_ENV` from the environment (the file cannot choose itself). */
const resolveAppEnv = (environment: Readonly<Record<string, string | undefined>>): AppEnv | ConfigLoadError => {
  const raw = environment.APP_ENV
  if (raw === undefined || raw === "") return "dev"
  return (appEnvs as ReadonlyArray<string>).includes(raw)
    ? (raw as AppEnv)
    : new ConfigLoadError([`APP_ENV: must be one of dev, test, prod (got "${raw}")`])
}

/** Parses a dotenv file; a missing file is an empty one (`.env.prod` is optional). */
const readEnvFile = (path: string): Record<string, string> => {
  let content: string
  try {
    content = Fs.readFileSync(path, "utf8")
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return {}
    throw error
  }
  const parsed = parseEnv(content)
  const out: Record<string, string> = {}
  for (const [key, value] of Object.entries(parsed)) if (value !== undefined) out[key] = value
  return out
}

/**
 * The raw settings: the env file first, each process variable replacing the file's. Empty values count as unset,
 * so `SENTRY_DSN=` in a file means "no Sentry" rather than an invalid DSN.
 */
const mergeSources = (
  file: Readonly<Record<string, string>>,
  environment: Readonly<Record<string, string | undefined>>
): Map<string, string> => {
  const merged = new Map<string, string>()
  for (const [key, value] of Object.entries(file)) if (value !== "") merged.set(key, value)
  for (const [key, value] of Object.entries(environment)) {
    if (value === undefined) continue
    if (value === "") merged.delete(key)
    else merged.set(key, value)
  }
  return merged
}

const providerFromMap = (settings: Map<string, string>): ConfigProvider.ConfigProvider =>
  ConfigProvider.fromMap(settings, { pathDelim: "_", seqDelim: "," })

/** One line per variable, each saying why; values are never echoed, so a mistyped secret stays secret. */
const describeConfigError = (error: ConfigError.ConfigError): ReadonlyArray<string> => {
  const byPath = new Map<string, string>()
  const visit = (e: ConfigError.ConfigError): void => {
    switch (e._op) {
      case "And":
      case "Or":
        visit(e.left)
        visit(e.right)
        return
      case "MissingData": {
        const key = e.path.join("_")
        if (!byPath.has(key)) byPath.set(key, "is required but not set")
        return
      }
      case "InvalidData":
        byPath.set(e.path.join("_"), `is invalid: ${e.message}`)
        return
      case "SourceUnavailable":
        byPath.set(e.path.join("_"), `could not be read: ${e.message}`)
        return
      case "Unsupported":
        byPath.set(e.path.join("_"), `is unsupported: ${e.message}`)
        return
    }
  }
  visit(error)
  return [...byPath].map(([key, why]) => `${key} ${why}`)
}

/**
 * Loads `config` from the file chosen by `APP_ENV` in `directory` (none read without a directory) overlaid by
 * `environment`, failing with every problem at once.
 */
export const loadFrom = <A>(options: {
  readonly config: (env: AppEnv) => Config.Config<A>
  readonly directory: string | undefined
  readonly environment: Readonly<Record<string, string | undefined>>
}): Effect.Effect<A, ConfigLoadError> =>
  Effect.suspend(() => {
    const env = resolveAppEnv(options.environment)
    if (env instanceof ConfigLoadError) return Effect.fail(env)
    const file = options.directory === undefined ? {} : readEnvFile(Path.join(options.directory, envFileName(env)))
    const provider = providerFromMap(mergeSources(file, options.environment))
    return provider.load(options.config(env)).pipe(
      Effect.catchAllCause((cause) =>
        Effect.fail(
          Option.match(Cause.failureOption(cause), {
            onNone: () => new ConfigLoadError([Cause.pretty(cause)]),
            onSome: (error) => new ConfigLoadError(describeConfigError(error))
          })
        )
      )
    )
  })
