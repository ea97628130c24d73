/**
 * Serving a WebSocket route: the request is upgraded (after the route has checked what it needs to, so a refused
 * upgrade is an ordinary response) and the route's `setup` gets the `ws` socket, in a scope that lasts until the
 * socket closes. The handler returns at once: an open socket costs its `ws` object and what `setup` keeps, not a
 * suspended request fiber.
 */
import type * as HttpServerRequest from "@effect/platform/HttpServerRequest"
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import { Effect, Exit, Option, Scope } from "effect"
import type { WebSocket } from "ws"
import * as ApiError from "../errors/ApiError.js"
import { upgradeDetached } from "../http/node/NodeHttpAdapter.js"

const notAnUpgrade = new ApiError.BadRequest({ message: "Expected a WebSocket upgrade" })

/** Closes `scope` when `socket` closes (apart, so the listener keeps nothing of the request alive). */
const closeWithSocket = (socket: WebSocket, scope: Scope.CloseableScope) =>
  socket.once("close", () => void Effect.runFork(Scope.close(scope, Exit.void)))

/** Upgrades the request; `setup` runs on the open socket, in a scope closed when the socket closes. */
export const serve = <E>(
  request: HttpServerRequest.HttpServerRequest,
  setup: (socket: WebSocket) => Effect.Effect<void, E, Scope.Scope>
): Effect.Effect<HttpServerResponse.HttpServerResponse, ApiError.BadRequest> =>
  Option.match(upgradeDetached(request), {
    onNone: () => Effect.fail(notAnUpgrade),
    onSome: (upgrade) =>
      Effect.gen(function*() {
        const socket = yield* upgrade
        const scope = yield* Scope.make()
        closeWithSocket(socket, scope)
        yield* setup(socket).pipe(
          Scope.extend(scope),
          Effect.catchAllCause((cause) =>
            Effect.zipRight(
              Effect.logError("WebSocket setup failed", cause),
              Effect.sync(() => socket.close(1011, "Internal error"))
            )
          )
        )
        return HttpServerResponse.empty()
      })
  })

/** A 400 for a plain request to a WebSocket route. */
export const requireUpgrade = (request: HttpServerRequest.HttpServerRequest) =>
  request.headers.upgrade?.toLowerCase() === "websocket" ? Effect.void : Effect.fail(notAnUpgrade)
