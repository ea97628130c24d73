/**
 * The real app on a loopback port for end-to-end tests: settings from `.env.test` plus overrides, the core, the
 * routes (plus any the test mounts behind the same pipeline), and every log line kept in memory as JSON.
 */
import { Context, Effect, Layer, LogLevel } from "effect"
import type * as Net from "node:net"
import * as Http from "../../src/api/Http.js"
import * as AppConfig from "../../src/core/app/AppConfig.js"
import * as CoreLive from "../../src/core/CoreLive.js"
import { NodeServer } from "../../src/core/http/Server.js"
import * as Logging from "../../src/core/runtime/Logging.js"
import {
  startSupabaseStandIn,
  type SupabaseStandInOptions,
  type SupabaseStandInServer
} from "../../src/dev/SupabaseStandIn.js"
import { provided } from "./Provided.js"

export interface Running {
  readonly url: string
  /** The Supabase Auth stand-in the server trusts (unless the test gave its own SUPABASE_URL). */
  readonly standIn: SupabaseStandInServer | undefined
  /** Every log line so far, parsed (JSON format only). */
  readonly logs: () => ReadonlyArray<Record<string, unknown>>
  /** Every log line so far, as written. */
  readonly lines: () => ReadonlyArray<string>
  readonly clearLogs: () => void
  readonly settings: AppConfig.Settings
}

export class TestServer extends Context.Tag("test/TestServer")<TestServer, Running>() {}

export interface Options<E, R> {
  /** Overrides of `.env.test`. By default the server uses the run's test database and a fresh stand-in. */
  readonly env?: Readonly<Record<string, string>>
  readonly standIn?: SupabaseStandInOptions
  readonly routes?: Layer.Layer<never, E, R>
  readonly logLevel?: LogLevel.LogLevel
  /** JSON lines by default (what `logs()` parses). */
  readonly logFormat?: "json" | "pretty"
}

export const layer = <E = never, R = never>(options: Options<E, R> = {}) =>
  Layer.unwrapScoped(
    Effect.gen(function*() {
      const standIn = options.env?.SUPABASE_URL === undefined
        ? yield* Effect.acquireRelease(
          Effect.promise(() => startSupabaseStandIn(options.standIn)),
          (server) => Effect.promise(() => server.stop())
        )
        : undefined
      const settings = yield* AppConfig.load({
        environment: {
          APP_ENV: "test",
          PORT: "0",
          DATABASE_URL: provided("databaseUrl"),
          ...(standIn === undefined ? {} : {
            SUPABASE_URL: standIn.url,
            SUPABASE_ANON_KEY: standIn.anonKey,
            SUPABASE_SERVICE_ROLE_KEY: standIn.serviceRoleKey
          }),
          ...options.env
        }
      })
      const memory = Logging.memorySink()
      const observability = CoreLive.observability(
        { ...settings, logging: { format: options.logFormat ?? "json", level: options.logLevel ?? LogLevel.Debug } },
        memory.sink
      )
      const running = Layer.effect(
        TestServer,
        Effect.map(NodeServer, (server) => {
          const address = server.address() as Net.AddressInfo
          return {
            url: `http://127.0.0.1:${address.port}`,
            standIn,
            logs: () => memory.lines.map((line) => JSON.parse(line) as Record<string, unknown>),
            lines: () => [...memory.lines],
            clearLogs: () => void memory.lines.splice(0),
            settings
          }
        })
      )
      const server = options.routes === undefined ? Http.layer(settings) : Http.layerWith(settings, options.routes)
      // The core's services stay visible to the test (to register readiness checks, use the HTTP clients...).
      return running.pipe(
        Layer.provide(server),
        Layer.provideMerge(CoreLive.layer(settings)),
        Layer.provide(observability)
      )
    })
  )

export interface Reply {
  readonly response: Response
  readonly status: number
  readonly text: string
  readonly json: () => any
}

/** A request to the running test server, its body read. */
export const request = (path: string, init: RequestInit = {}): Effect.Effect<Reply, never, TestServer> =>
  Effect.flatMap(TestServer, (server) =>
    Effect.promise(async () => {
      const response = await fetch(`${server.url}${path}`, init)
      const text = await response.text()
      return { response, status: response.status, text, json: () => JSON.parse(text) }
    }))
