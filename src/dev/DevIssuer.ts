/**
 * The development issuer: in `dev` with no `SUPABASE_URL`, a local Supabase Auth stand-in signs the tokens, so
 * `npm start` works with nothing configured and `npm run token` mints tokens the running server accepts.
 */
import { Effect, Option, Redacted, type Scope } from "effect"
import * as Path from "node:path"
import type { Settings } from "../core/app/AppConfig.js"
import {
  DEFAULT_ANON_KEY,
  DEFAULT_SERVICE_ROLE_KEY,
  startSupabaseStandIn,
  type SupabaseStandInServer
} from "./SupabaseStandIn.js"

/** Where the dev issuer keeps its signing keys (under the git-ignored data folder), so tokens survive restarts. */
const keyFile = (settings: Settings): string =>
  Path.join(Path.dirname(settings.database.embeddedDir), "dev-issuer", "keys.json")

const needsDevIssuer = (settings: Settings): boolean =>
  settings.core.env === "dev" && Option.isNone(settings.supabase.url)

/** The keys the stand-in accepts, and that clients of it must send. */
export const keys = (settings: Settings) => ({
  anonKey: Option.match(settings.supabase.anonKey, { onNone: () => DEFAULT_ANON_KEY, onSome: Redacted.value }),
  serviceRoleKey: Option.match(settings.supabase.serviceRoleKey, {
    onNone: () => DEFAULT_SERVICE_ROLE_KEY,
    onSome: Redacted.value
  })
})

/** The settings to run with and, when it was started, the development issuer. */
export interface Resolved {
  readonly settings: Settings
  readonly issuer: Option.Option<SupabaseStandInServer>
}

/**
 * Starts the stand-in when the settings call for it and returns the settings pointing at it; otherwise returns
 * them unchanged. The stand-in lives as long as the scope.
 */
export const resolve = (settings: Settings): Effect.Effect<Resolved, never, Scope.Scope> => {
  if (!needsDevIssuer(settings)) return Effect.succeed({ settings, issuer: Option.none() })
  const { anonKey, serviceRoleKey } = keys(settings)
  return Effect.acquireRelease(
    Effect.promise(() =>
      startSupabaseStandIn({
        host: "127.0.0.1",
        port: settings.supabase.devIssuerPort,
        keyFile: keyFile(settings),
        anonKey,
        serviceRoleKey
      })
    ),
    (server) => Effect.promise(() => server.stop())
  ).pipe(
    Effect.tap((server) =>
      Effect.logInfo(`No SUPABASE_URL: development issuer (Supabase Auth stand-in) at ${server.url}`)
    ),
    Effect.map((server) => ({
      settings: {
        ...settings,
        supabase: {
          ...settings.supabase,
          url: Option.some(server.url),
          anonKey: Option.some(Redacted.make(anonKey)),
          serviceRoleKey: Option.some(Redacted.make(serviceRoleKey))
        }
      },
      issuer: Option.some(server)
    }))
  )
}

/** A new user of the development issuer (a random address) and an access token for them. */
export const generatedUser = (issuer: SupabaseStandInServer) =>
  Effect.promise(async () => {
    const signed = await issuer.signTokenDetailed()
    return { accessToken: signed.token, email: signed.user.email }
  })
