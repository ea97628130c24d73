/**
 * The real app on a loopback port for end-to-end tests: settings from `.env.test` plus overrides, the core, the
 * routes (plus any the test mounts behind the same pipeline), and every log line kept in memory as JSON.
 */
import { Context, Effect, Layer, LogLevel } from "effect"
import type * as Net from "node:net"
import * as Http from "../../src/api/Http.js"
import * as AppConfig from "../../src/core/AppConfig.js"
import * as CoreLive from "../../src/core/CoreLive.js"
import * as Logging from "../../src/core/Logging.js"
import { NodeServer } from "../../src/core/Server.js"

export interface Running {
  readonly url: string
  /** Every log line so far, parsed. */
  readonly logs: () => ReadonlyArray<Record<string, unknown>>
  readonly clearLogs: () => void
  readonly settings: AppConfig.Settings
}

export class TestServer extends Context.Tag("test/TestServer")<TestServer, Running>() {}

export interface Options<E, R> {
  readonly env?: Readonly<Record<string, string>>
  readonly routes?: Layer.Layer<never, E, R>
  readonly logLevel?: LogLevel.LogLevel
}

export const layer = <E = never, R = never>(options: Options<E, R> = {}) =>
  Layer.unwrapEffect(
    Effect.gen(function*() {
      const settings = yield* AppConfig.load({ environment: { APP_ENV: "test", PORT: "0", ...options.env } })
      const memory = Logging.memorySink()
      const logger = Logging.layer({ format: "json", sink: memory.sink, level: options.logLevel ?? LogLevel.Debug })
      const running = Layer.effect(
        TestServer,
        Effect.map(NodeServer, (server) => {
          const address = server.address() as Net.AddressInfo
          return {
            url: `http://127.0.0.1:${address.port}`,
            logs: () => memory.lines.map((line) => JSON.parse(line) as Record<string, unknown>),
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
        Layer.provide(logger)
      )
    })
  )
