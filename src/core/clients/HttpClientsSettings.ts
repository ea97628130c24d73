/** The HTTP clients' settings: `HTTP_<NAME>_TIMEOUT`, `HTTP_<NAME>_MAX_CONNECTIONS`, `HTTP_<NAME>_MAX_KEEPALIVE`. */
import { Config } from "effect"
import { atLeast, seconds } from "../config/ConfigReaders.js"
import { defaults, type Limits, type Name, type Settings } from "./HttpClients.js"

const envPrefix: { readonly [N in Name]: string } = {
  scraper: "HTTP_SCRAPER",
  blog: "HTTP_BLOG",
  general: "HTTP_GENERAL",
  supabaseAuth: "HTTP_SUPABASE_AUTH"
}

const limitsConfig = (name: Name): Config.Config<Limits> => {
  const prefix = envPrefix[name]
  const fallback = defaults[name]
  return Config.all({
    timeout: seconds(`${prefix}_TIMEOUT`).pipe(Config.withDefault(fallback.timeout)),
    maxConnections: atLeast(`${prefix}_MAX_CONNECTIONS`, 1).pipe(Config.withDefault(fallback.maxConnections)),
    maxKeepAlive: atLeast(`${prefix}_MAX_KEEPALIVE`, 0).pipe(Config.withDefault(fallback.maxKeepAlive))
  })
}

/**
 * `HTTP_<NAME>_TIMEOUT` (seconds), `HTTP_<NAME>_MAX_CONNECTIONS` and `HTTP_<NAME>_MAX_KEEPALIVE`, NAME one of
 * `SCRAPER`, `BLOG`, `GENERAL`, `SUPABASE_AUTH`; `HttpClients.defaults` for what is unset.
 */
export const config: Config.Config<Settings> = Config.all({
  scraper: limitsConfig("scraper"),
  blog: limitsConfig("blog"),
  general: limitsConfig("general"),
  supabaseAuth: limitsConfig("supabaseAuth")
})
