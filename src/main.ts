/** Starts the reference API: load the settings (exit 1 listing every problem), then run the core and the server. */
import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import { Effect, Layer } from "effect"
import * as Http from "./api/Http.js"
import * as AppConfig from "./core/app/AppConfig.js"
import * as CoreLive from "./core/CoreLive.js"
import * as DevIssuer from "./dev/DevIssuer.js"

const main = Effect.gen(function*() {
  const loaded = yield* AppConfig.load()
  yield* Effect.gen(function*() {
    const settings = yield* DevIssuer.resolve(loaded)
    yield* Layer.launch(Http.layer(settings).pipe(Layer.provide(CoreLive.layer(settings))))
  }).pipe(Effect.scoped, Effect.provide(CoreLive.observability(loaded)))
}).pipe(
  Effect.tapErrorTag("ConfigLoadError", (error) => Effect.sync(() => process.stderr.write(`${error.message}\n`)))
)

NodeRuntime.runMain(main, { disableErrorReporting: true })
