/**
 * Our SSE server for `npm run bench -- sse`, built and run as `npm start` runs the app (`scripts/build.ts` with this
 * entry): the real app (settings from the environment, the core, every route)
 * plus two routes the benchmark drives: `POST /bench/emit?user=&count=` (n 1 KiB unlogged events to the user's
 * streams, through the SSE bus and the backplane) and `GET /bench/memory` (after a full GC).
 */
import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import * as HttpLayerRouter from "@effect/platform/HttpLayerRouter"
import * as HttpServerRequest from "@effect/platform/HttpServerRequest"
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import { Effect, Layer } from "effect"
import * as Http from "../../src/api/Http.js"
import * as AppConfig from "../../src/core/app/AppConfig.js"
import * as CoreLive from "../../src/core/CoreLive.js"
import { SseBus } from "../../src/core/realtime/SseBus.js"
import { collectGarbage } from "./collectGarbage.js"

const pad = "x".repeat(1000)

const benchRoutes = Layer.unwrapEffect(Effect.map(SseBus, (bus) =>
  HttpLayerRouter.addAll([
    HttpLayerRouter.route(
      "POST",
      "/bench/emit",
      Effect.gen(function*() {
        const request = yield* HttpServerRequest.HttpServerRequest
        const url = new URL(request.url, "http://localhost")
        const user = url.searchParams.get("user") ?? ""
        const count = Number(url.searchParams.get("count") ?? 1)
        const stamped = url.searchParams.has("stamp")
        for (let i = 0; i < count; i++) {
          yield* bus.emit(user, "bench", stamped ? { sent: performance.timeOrigin + performance.now() } : { pad })
        }
        return HttpServerResponse.text("ok")
      })
    ),
    HttpLayerRouter.route(
      "GET",
      "/bench/memory",
      Effect.sync(() => {
        collectGarbage()
        return HttpServerResponse.text(JSON.stringify(process.memoryUsage()))
      })
    )
  ])))

const main = Effect.gen(function*() {
  const settings = yield* AppConfig.load()
  yield* Layer.launch(Http.layerWith(settings, benchRoutes).pipe(Layer.provide(CoreLive.layer(settings)))).pipe(
    Effect.provide(CoreLive.observability(settings))
  )
})

NodeRuntime.runMain(main, { disableErrorReporting: true })
