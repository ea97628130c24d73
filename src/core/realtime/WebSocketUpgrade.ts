/**
 * Serving a WebSocket route: the request is upgraded (after the route has checked what it needs to, so a refused
 * upgrade is an ordinary response) and kept until the socket closes, and the route's `setup` gets the `ws` socket
 * once it is open. Closes that are part of normal life (1000, 1001, a vanished peer) are not errors.
 */
import type * as HttpServerRequest from "@effect/platform/HttpServerRequest"
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import type * as Socket from "@effect/platform/Socket"
import { Effect, Option, Scope } from "effect"
import type { WebSocket } from "ws"
import * as ApiError from "../errors/ApiError.js"
import { upgradedWebSocket } from "../http/node/NodeHttpAdapter.js"

const notAnUpgrade = new ApiError.BadRequest({ message: "Expected a WebSocket upgrade" })

/** Closes that are part of normal life (done, going away, the peer vanished): not worth more than a debug line. */
const normalCloses: ReadonlySet<number> = new Set([1000, 1001, 1005, 1006])

/**
 * Upgrades the request and keeps it until the socket closes; `setup` runs once it is open, with the `ws` socket, in
 * a scope that lasts as long as the socket.
 */
export const serve = <E>(
  request: HttpServerRequest.HttpServerRequest,
  setup: (socket: WebSocket) => Effect.Effect<void, E, Scope.Scope>
) =>
  Effect.scoped(Effect.gen(function*() {
    const scope = yield* Effect.scope
    const socket = yield* request.upgrade
    yield* socket.runRaw(() => undefined, {
      onOpen: Effect.suspend(() =>
        Option.match(upgradedWebSocket(request), {
          onNone: () => Effect.dieMessage("An upgraded request without its WebSocket"),
          onSome: (ws) =>
            setup(ws).pipe(
              Scope.extend(scope),
              Effect.catchAllCause((cause) =>
                Effect.zipRight(
                  Effect.logError("WebSocket setup failed", cause),
                  Effect.sync(() => ws.close(1011, "Internal error"))
                )
              )
            )
        })
      )
    })
  })).pipe(
    Effect.catchTags({
      SocketError: (error: Socket.SocketError) =>
        error.reason === "Close" && "code" in error && !normalCloses.has(error.code)
          ? Effect.logInfo("WebSocket closed", { code: error.code })
          : Effect.logDebug("WebSocket closed"),
      RequestError: () => Effect.fail(notAnUpgrade)
    }),
    Effect.as(HttpServerResponse.empty())
  )

/** A 400 for a plain request to a WebSocket route. */
export const requireUpgrade = (request: HttpServerRequest.HttpServerRequest) =>
  request.headers.upgrade?.toLowerCase() === "websocket" ? Effect.void : Effect.fail(notAnUpgrade)
