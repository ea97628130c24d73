/** Starts the reference API: load the settings (exit 1 listing every problem), then run the core and the server. */
import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import { Effect, Layer, Option } from "effect"
import { DevSignIn } from "./api/console/DevSignIn.js"
import * as Http from "./api/Http.js"
import * as AppConfig from "./core/app/AppConfig.js"
import * as CoreLive from "./core/CoreLive.js"
import * as DevIssuer from "./dev/DevIssuer.js"

const main = Effect.gen(function*() {
  const loaded = yield* AppConfig.load()
  yield* Effect.gen(function*() {
    const { issuer, settings } = yield* DevIssuer.resolve(loaded)
    // The console offers signing in as a generated user only while the development issuer runs.
    const devSignIn = Option.match(issuer, {
      onNone: () => Layer.empty,
      onSome: (issuer) => Layer.succeed(DevSignIn, { signIn: DevIssuer.generatedUser(issuer) })
    })
    yield* Layer.launch(Http.layer(settings).pipe(Layer.provide([CoreLive.layer(settings), devSignIn])))
  }).pipe(Effect.scoped, Effect.provide(CoreLive.observability(loaded)))
}).pipe(
  Effect.tapErrorTag("ConfigLoadError", (error) => Effect.sync(() => process.stderr.write(`${error.message}\n`)))
)

NodeRuntime.runMain(main, { disableErrorReporting: true })
