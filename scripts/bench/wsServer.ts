/**
 * A WebSocket broadcast server for `npm run bench -- ws`, in a process of its own: `ours` is the core's server (the
 * lean Node adapter, the request pipeline) with the `WebSocketHub` on sockets upgraded as the API's routes do;
 * `raw` is a bare `ws` server on `node:http`. Both: `GET /ws` joins the broadcast, `POST /broadcast?count=N` sends N
 * 1 KiB messages to every socket (pausing while any socket holds 256 KiB unsent, the same rule on both sides),
 * `GET /memory` reports the process's memory after a full GC, `GET /sending` the time spent sending since it was
 * last asked, `GET /health` answers when listening.
 * Built by `scripts/bench/ws.ts` as `npm start` builds the app, and run as `node <folder>/main.js ours|raw` with `PORT`.
 */
import { NodeRuntime } from "@effect/platform-node"
import * as HttpLayerRouter from "@effect/platform/HttpLayerRouter"
import * as HttpServerRequest from "@effect/platform/HttpServerRequest"
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import { Effect, Layer, Scope } from "effect"
import * as Http from "node:http"
import { type WebSocket, WebSocketServer } from "ws"
import * as AppConfig from "../../src/core/app/AppConfig.js"
import * as Server from "../../src/core/http/Server.js"
import * as Backplane from "../../src/core/realtime/Backplane.js"
import * as WebSocketHub from "../../src/core/realtime/WebSocketHub.js"
import * as WebSocketUpgrade from "../../src/core/realtime/WebSocketUpgrade.js"
import * as Lifecycle from "../../src/core/runtime/Lifecycle.js"
import { collectGarbage } from "./collectGarbage.js"

const port = Number(process.env.PORT ?? "0")
const payload = { type: "bench", data: "x".repeat(1000) }
const highWater = 256 * 1024

const memory = () => {
  collectGarbage()
  collectGarbage()
  return JSON.stringify(process.memoryUsage())
}

const holding = (sockets: ReadonlySet<WebSocket>) => {
  for (const socket of sockets) if (socket.bufferedAmount > highWater) return true
  return false
}

/** Sends `count` messages with `sendOne`, pausing while any socket holds more than the high-water mark. */
const broadcast = async (count: number, sendOne: () => void, sockets: ReadonlySet<WebSocket>) => {
  for (let i = 0; i < count; i++) {
    const start = performance.now()
    sendOne()
    sending.millis += performance.now() - start
    sending.messages++
    while (holding(sockets)) await new Promise((resolve) => setTimeout(resolve, 1))
  }
}

/** Time spent sending (the server's own work per broadcast message), read and reset by `GET /sending`. */
const sending = { millis: 0, messages: 0 }
const takeSending = () => {
  const taken = JSON.stringify(sending)
  sending.millis = 0
  sending.messages = 0
  return taken
}

const raw = () => {
  const sockets = new Set<WebSocket>()
  const wss = new WebSocketServer({ noServer: true })
  const server = Http.createServer((request, response) => {
    if (request.url === "/health") return void response.end("ok")
    if (request.url === "/memory") return void response.end(memory())
    if (request.url === "/sending") return void response.end(takeSending())
    if (request.url?.startsWith("/broadcast")) {
      const count = Number(new URL(request.url, "http://localhost").searchParams.get("count"))
      response.statusCode = 202
      response.end()
      void broadcast(count, () => {
        const text = JSON.stringify(payload)
        for (const socket of sockets) socket.send(text)
      }, sockets)
      return
    }
    response.statusCode = 404
    response.end()
  })
  server.on("upgrade", (request, socket, head) =>
    wss.handleUpgrade(request, socket, head, (ws) => {
      sockets.add(ws)
      ws.once("close", () => sockets.delete(ws))
    }))
  server.listen(port, "127.0.0.1")
}

const ours = () => {
  const sockets = new Set<WebSocket>()
  const routes = Layer.unwrapEffect(Effect.map(WebSocketHub.WebSocketHub, (hub) =>
    HttpLayerRouter.addAll([
      HttpLayerRouter.route("GET", "/health", Effect.succeed(HttpServerResponse.text("ok"))),
      HttpLayerRouter.route("GET", "/memory", Effect.sync(() => HttpServerResponse.text(memory()))),
      HttpLayerRouter.route("GET", "/sending", Effect.sync(() => HttpServerResponse.text(takeSending()))),
      HttpLayerRouter.route(
        "GET",
        "/ws",
        Effect.flatMap(HttpServerRequest.HttpServerRequest, (request) =>
          WebSocketUpgrade.serve(request, (socket) =>
            Effect.gen(function*() {
              sockets.add(socket)
              yield* Scope.addFinalizer(
                yield* Effect.scope,
                Effect.sync(() =>
                  sockets.delete(socket)
                )
              )
              yield* hub.connect(socket, { keys: { kind: "user", userId: "bench" } })
            })))
      ),
      HttpLayerRouter.route(
        "POST",
        "/broadcast",
        Effect.gen(function*() {
          const request = yield* HttpServerRequest.HttpServerRequest
          const count = Number(new URL(request.url, "http://localhost").searchParams.get("count"))
          // The same pacing loop as the raw server's, so only the sending differs.
          void broadcast(count, () => Effect.runSync(hub.sendToUser("bench", payload)), sockets)
          return HttpServerResponse.empty({ status: 202 })
        })
      )
    ])))
  const program = Effect.gen(function*() {
    const settings = yield* AppConfig.fromEnvironment({
      APP_ENV: "test",
      HOST: "127.0.0.1",
      PORT: String(port),
      SECRET_KEY: "test-secret-key-not-secret-0123456789abcdef",
      LOG_LEVEL: "warning",
      MAX_CONNECTIONS: "5000"
    })
    yield* Layer.launch(
      Server.layerFromSettings(routes, settings).pipe(
        Layer.provide(WebSocketHub.layerFromSettings(settings.websocket)),
        Layer.provide(Backplane.layerMemory),
        Layer.provide(Layer.succeed(AppConfig.AppConfig, settings)),
        Layer.provideMerge(Lifecycle.layer)
      )
    )
  })
  NodeRuntime.runMain(program)
}

if (process.argv[2] === "raw") raw()
else ours()
