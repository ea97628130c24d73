/**
 * A lean Node adapter for the platform's `HttpServer`: a drop-in for `NodeHttpServer.make` (same listening, closing
 * and WebSocket upgrades) whose per-request path costs a fraction of the platform's.
 *
 * Where the platform runs `HttpApp.toHandled` (`provideService` of the request, `Scope.make`, `uninterruptible`,
 * the tracer check, an `Effect.async` around `end`) on every request, this builds the request's context once and
 * forks one fiber that already holds the request and its scope and starts uninterruptible, decides on the tracer
 * before forking, and writes small bodies synchronously. The semantics are the platform's: pre-response handlers,
 * error responses from `HttpServerError.causeResponse`, a per-request scope closed once the response is written
 * (unless ejected), client-abort interruption, middleware that runs after the response.
 *
 * Beyond the platform, and only when asked (`Options`): a request timeout, whose interruptions the app answers.
 */
import * as NodeHttpServer from "@effect/platform-node/NodeHttpServer"
import * as NodeHttpServerRequest from "@effect/platform-node/NodeHttpServerRequest"
import * as FileSystem from "@effect/platform/FileSystem"
import * as Headers from "@effect/platform/Headers"
import * as HttpApp from "@effect/platform/HttpApp"
import * as HttpIncomingMessage from "@effect/platform/HttpIncomingMessage"
import * as HttpMiddleware from "@effect/platform/HttpMiddleware"
import * as HttpServer from "@effect/platform/HttpServer"
import * as HttpServerError from "@effect/platform/HttpServerError"
import * as HttpServerRequest from "@effect/platform/HttpServerRequest"
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import * as HttpTraceContext from "@effect/platform/HttpTraceContext"
import * as Socket from "@effect/platform/Socket"
import {
  Cause,
  Context,
  Duration,
  Effect,
  Exit,
  type Fiber,
  FiberId,
  FiberRef,
  FiberRefs,
  FiberSet,
  GlobalValue,
  Layer,
  Option,
  Runtime,
  RuntimeFlags,
  Scope
} from "effect"
import * as Http from "node:http"
import type * as Net from "node:net"
import type { Duplex } from "node:stream"
import * as WS from "ws"
import { RequestOverlay } from "../../runtime/ContextOverlay.js"
import * as RequestId from "../../runtime/RequestId.js"
import { NodeServerRequest, writeResponse } from "./Exchange.js"

export interface Options {
  /**
   * How long a request may take, from its headers being in to its response starting. Past it, a request whose body
   * has not fully arrived is interrupted by `requestTimeoutFiberId`, any other by `responseTimeoutFiberId` (the app
   * answers either), and a body still arriving after its response was written is no longer waited for: the
   * connection is closed. A response that has started (a stream) and an upgraded socket are never cut.
   */
  readonly requestTimeout?: Duration.DurationInput
  /**
   * Gives each request its id (`RequestId.fromHeader` of its `x-request-id`) in `RequestId.currentRequestId` as its
   * fiber is made, and on the request (`exchange.requestId`), where the request pipeline reads it instead of setting
   * it with a step of its own: one copy of the fiber's refs per request instead of two.
   */
  readonly requestIds?: boolean
}

/** Interrupts a request whose body did not arrive within the request timeout. */
export const requestTimeoutFiberId: FiberId.FiberId = FiberId.runtime(-408, 0)
/** Interrupts a request whose response had not started within the request timeout. */
export const responseTimeoutFiberId: FiberId.FiberId = FiberId.runtime(-503, 0)

/** Listens with `evaluate()`'s server on `options` and serves apps on it until the scope closes. */
export const make = (
  evaluate: () => Http.Server,
  options: Net.ListenOptions,
  adapterOptions: Options = {}
): Effect.Effect<HttpServer.HttpServer, HttpServerError.ServeError, Scope.Scope> =>
  Effect.gen(function*() {
    const scope = yield* Effect.scope
    const server = yield* Effect.acquireRelease(
      Effect.sync(evaluate),
      (server) =>
        Effect.async<void>((resume) => {
          if (!server.listening) return resume(Effect.void)
          server.close((error) => resume(error ? Effect.die(error) : Effect.void))
        })
    )
    yield* Effect.async<void, HttpServerError.ServeError>((resume) => {
      const onError = (cause: Error) => resume(Effect.fail(new HttpServerError.ServeError({ cause })))
      server.on("error", onError)
      server.listen(options, () => {
        server.off("error", onError)
        resume(Effect.void)
      })
    })
    const address = server.address()!
    const wss = yield* Effect.acquireRelease(
      Effect.sync(() => new WS.WebSocketServer({ noServer: true })),
      (wss) => Effect.async<void>((resume) => wss.close(() => resume(Effect.void)))
    ).pipe(Scope.extend(scope), Effect.cached)

    return HttpServer.make({
      address: typeof address === "string"
        ? { _tag: "UnixAddress", path: address }
        : { _tag: "TcpAddress", hostname: address.address === "::" ? "0.0.0.0" : address.address, port: address.port },
      serve: (httpApp, middleware) =>
        Effect.gen(function*() {
          const runtime = yield* Effect.runtime<never>()
          const upgrades = yield* FiberSet.make()
          const fork = forkRequest(runtime, httpApp, middleware, adapterOptions.requestIds === true)
          const timeout = adapterOptions.requestTimeout === undefined
            ? undefined
            : Duration.toMillis(adapterOptions.requestTimeout)
          const onRequest = (nodeRequest: Http.IncomingMessage, nodeResponse: Http.ServerResponse) => {
            const fiber = fork(NodeServerRequest.make(nodeRequest, nodeResponse))
            if (timeout !== undefined) limitRequest(nodeRequest, nodeResponse, fiber, timeout)
            // Once the response is ended the platform's listener could never fire: skip adding it.
            if (nodeResponse.writableEnded) return
            nodeResponse.on("close", () => {
              if (!nodeResponse.writableEnded) fiber.unsafeInterruptAsFork(HttpServerError.clientAbortFiberId)
            })
          }
          const onUpgrade = (nodeRequest: Http.IncomingMessage, socket: Duplex, head: Buffer) => {
            const fiber = fork(upgradeRequest(wss, nodeRequest, socket, head))
            FiberSet.unsafeAdd(upgrades, fiber)
            const timer = timeout === undefined ? undefined : limitUpgrade(socket, fiber, timeout)
            const onClose = () => {
              clearTimeout(timer)
              if (!socket.writableEnded) fiber.unsafeInterruptAsFork(HttpServerError.clientAbortFiberId)
            }
            socket.on("close", onClose)
            // A socket kept open after its handler returned (`upgradeDetached`) must not keep the finished fiber.
            fiber.addObserver(() => {
              clearTimeout(timer)
              socket.off("close", onClose)
            })
          }
          yield* Effect.addFinalizer(() =>
            Effect.sync(() => {
              server.off("request", onRequest)
              server.off("upgrade", onUpgrade)
            })
          )
          server.on("request", onRequest)
          server.on("upgrade", onUpgrade)
        })
    })
  }).pipe(
    // As the platform does (it only reaches `make` itself: requests see the MaxBodySize of `serve`'s caller).
    Effect.provideService(HttpIncomingMessage.MaxBodySize, Option.some(FileSystem.Size(1024 * 1024 * 10)))
  )

/** `make` as a layer, with the platform's Node services (`NodeHttpServer.layerContext`), like `NodeHttpServer.layer`. */
export const layer = (
  evaluate: () => Http.Server,
  options: Net.ListenOptions,
  adapterOptions?: Options
): Layer.Layer<
  HttpServer.HttpServer | Layer.Layer.Success<typeof NodeHttpServer.layerContext>,
  HttpServerError.ServeError
> =>
  Layer.merge(Layer.scoped(HttpServer.HttpServer, make(evaluate, options, adapterOptions)), NodeHttpServer.layerContext)

/** The request timeout of one exchange (see `Options.requestTimeout`): a plain timer, no fiber of its own. */
const limitRequest = (
  nodeRequest: Http.IncomingMessage,
  nodeResponse: Http.ServerResponse,
  fiber: Fiber.RuntimeFiber<unknown, unknown>,
  millis: number
) => {
  // Answered, and nothing more to read: a request is marked complete only after its listener returns, so one that
  // announces no body counts as complete here.
  if (nodeResponse.writableEnded && (nodeRequest.complete || announcesNoBody(nodeRequest))) return
  const timer = setTimeout(() => {
    if (!nodeResponse.headersSent) {
      fiber.unsafeInterruptAsFork(nodeRequest.complete ? responseTimeoutFiberId : requestTimeoutFiberId)
    } else if (!nodeRequest.complete) {
      // Answered (or streaming) already, and the client is still sending a body nobody reads.
      nodeRequest.socket.destroy()
    }
  }, millis).unref()
  nodeResponse.once("close", () => {
    if (nodeRequest.complete) clearTimeout(timer)
  })
}

/** A request with neither `Transfer-Encoding` nor a `Content-Length` above 0: HTTP/1.1 gives it no body. */
const announcesNoBody = (nodeRequest: Http.IncomingMessage) => {
  const headers = nodeRequest.headers
  const length = headers["content-length"]
  return headers["transfer-encoding"] === undefined && (length === undefined || length === "0")
}

/** The request timeout of an upgrade request: until the handshake or a plain response writes to the socket. */
const limitUpgrade = (socket: Duplex, fiber: Fiber.RuntimeFiber<unknown, unknown>, millis: number) =>
  setTimeout(() => {
    if ((socket as Net.Socket).bytesWritten === 0) fiber.unsafeInterruptAsFork(responseTimeoutFiberId)
  }, millis).unref()

/** How to upgrade each upgrade request without tying the socket to the handler's fiber (see `upgradeDetached`). */
const detachedUpgrades = new WeakMap<Http.IncomingMessage, Effect.Effect<WS.WebSocket>>()

/**
 * Upgrades `request` to a `ws` socket that outlives the handler: unlike `request.upgrade` (Effect's `Socket`, whose
 * `run` keeps the handler's fiber, with its whole stack, suspended for the socket's lifetime), the handler may return
 * at once and whoever keeps the socket closes it. Gives what Effect's `Socket` does not offer too: ping and pong, the
 * bytes still waiting to be sent, terminate. None for a request that is not an upgrade.
 */
export const upgradeDetached = (
  request: HttpServerRequest.HttpServerRequest
): Option.Option<Effect.Effect<WS.WebSocket>> =>
  Option.fromNullable(detachedUpgrades.get(NodeHttpServerRequest.toIncomingMessage(request)))

/** The platform's upgrade request: `upgrade` completes the handshake with `ws`; a plain response is written raw. */
const upgradeRequest = (
  wss: Effect.Effect<WS.WebSocketServer>,
  nodeRequest: Http.IncomingMessage,
  socket: Duplex,
  head: Buffer
): NodeServerRequest => {
  let upgraded = false
  let nodeResponse: Http.ServerResponse | undefined
  const response = () => {
    if (nodeResponse === undefined) {
      nodeResponse = new Http.ServerResponse(nodeRequest)
      if (upgraded) {
        nodeResponse.end()
      } else {
        nodeResponse.assignSocket(socket as Net.Socket)
        nodeResponse.on("finish", () => socket.end())
      }
    }
    return nodeResponse
  }
  const upgrade = Socket.fromWebSocket(Effect.flatMap(wss, (wss) =>
    Effect.acquireRelease(
      Effect.async<globalThis.WebSocket>((resume) =>
        wss.handleUpgrade(nodeRequest, socket, head, (ws) => {
          upgraded = true
          // `ws` implements the DOM WebSocket API that `Socket.fromWebSocket` drives.
          resume(Effect.succeed(ws as unknown as globalThis.WebSocket))
        })
      ),
      (ws) => Effect.sync(() => ws.close())
    )))
  detachedUpgrades.set(
    nodeRequest,
    Effect.flatMap(
      wss,
      (wss) =>
        Effect.async<WS.WebSocket>((resume) =>
          wss.handleUpgrade(nodeRequest, socket, head, (ws) => {
            upgraded = true
            detachedUpgrades.delete(nodeRequest)
            resume(Effect.succeed(ws))
          })
        )
    )
  )
  return NodeServerRequest.make(nodeRequest, response, upgrade)
}

// The platform keeps ejected scopes in this global set (`HttpApp.ejectDefaultScopeClose` adds to it); the key is
// the one `@effect/platform/HttpApp` registers, so both see the same set.
const ejectedScopes = GlobalValue.globalValue(
  "@effect/platform/HttpApp/ejectedScopes",
  () => new WeakSet<Scope.Scope>()
)

/** An app as the server gets it, and what its fiber runs once the app is wrapped for one exchange. */
type App = HttpApp.Default<unknown>
type Handled = Effect.Effect<unknown, unknown, HttpServerRequest.HttpServerRequest>

/**
 * Routing ahead of the request's fiber: while the adapter builds the request's context, it may add what the route
 * needs to `context` (a map only this request's fiber will hold) and return the app to run for the request; or
 * return undefined to leave it to the app it was registered for. One that throws leaves the request to the app too.
 */
export type Preroute = (request: HttpServerRequest.HttpServerRequest, context: Map<string, unknown>) => App | undefined

const preroutes = new WeakMap<App, Preroute>()

const tryPreroute = (preroute: Preroute, request: NodeServerRequest, context: Map<string, unknown>) => {
  try {
    return preroute(request, context)
  } catch {
    return undefined
  }
}

/**
 * Tells the adapter that `app` can be routed ahead of its fiber with `preroute` (see `Router`). Other servers, and
 * requests the adapter traces or wraps in server middleware, run `app` itself.
 */
export const withPreroute = <A extends App>(app: A, preroute: Preroute): A => {
  preroutes.set(app, preroute)
  return app
}

const requestKey = HttpServerRequest.HttpServerRequest.key
const scopeKey = Scope.Scope.key

/**
 * Returns the function that runs the app for one request: a fiber whose context is the server's plus the request
 * and a fresh scope (an overlay on the server's context, not a copy of it), made in one step instead of the
 * platform's `provideService` and `Scope.extend`.
 */
const forkRequest = (
  runtime: Runtime.Runtime<never>,
  httpApp: App,
  middleware: HttpMiddleware.HttpMiddleware | undefined,
  requestIds: boolean
) => {
  const baseContext = runtime.context.unsafeMap
  const fiberRefs = runtime.fiberRefs
  const refsOf = requestRefs(fiberRefs)
  // The platform runs the whole exchange `uninterruptible`; routers open interruptible regions for handlers.
  const runtimeFlags = RuntimeFlags.disable(runtime.runtimeFlags, RuntimeFlags.Interruption)
  // The tracer middleware is the outermost layer: the predicate it reads is the one the server was started with.
  const tracerDisabledWhen = FiberRefs.getOrDefault(fiberRefs, HttpMiddleware.currentTracerDisabledWhen)
  // As in `HttpApp.toHandled`, the middleware wraps the whole exchange: it runs after the response is written.
  const applied: App | undefined = middleware?.(Effect.withFiberRuntime<
    HttpServerResponse.HttpServerResponse,
    unknown,
    HttpServerRequest.HttpServerRequest
  >((fiber) => respondTo(fiber, httpApp)))
  const untraced = exchange(httpApp, applied, false)
  const traced = exchange(httpApp, applied, true)

  // Scopes are made in batches: `Effect.runSync(Scope.make())` per request costs a fiber of its own.
  const scopes: Array<Scope.CloseableScope> = []
  const makeScopes = Effect.all(Array.from({ length: 64 }, () => Scope.make()))
  const nextScope = () => scopes.pop() ?? (scopes.push(...Effect.runSync(makeScopes)), scopes.pop()!)

  const isTraced = (request: NodeServerRequest) => {
    try {
      return !tracerDisabledWhen(request)
    } catch {
      // Thrown in a request listener it would take the process down; the platform's fiber would die on it instead.
      return true
    }
  }

  // Server middleware wraps the whole app, and a traced request's span must exist before routing: both run the app.
  const preroute = applied === undefined ? preroutes.get(httpApp) : undefined
  const exchanges = new WeakMap<App, Handled>()
  const exchangeOf = (app: App) => {
    let handled = exchanges.get(app)
    if (handled === undefined) {
      handled = exchange(app, undefined, false)
      exchanges.set(app, handled)
    }
    return handled
  }

  return (request: NodeServerRequest): Fiber.RuntimeFiber<unknown, unknown> => {
    // The server's services stay where they are: the request's entries go over them, not into a copy of them.
    const context = new RequestOverlay<string, unknown>(baseContext)
    context.set(requestKey, request)
    context.set(scopeKey, nextScope())
    let handled = untraced
    if (isTraced(request)) handled = traced
    else if (preroute !== undefined) {
      // Thrown in a request listener it would take the process down: the app itself then routes, in its fiber.
      const app = tryPreroute(preroute, request, context)
      if (app !== undefined) handled = exchangeOf(app)
    }
    const requestContext = Context.unsafeMake<HttpServerRequest.HttpServerRequest | Scope.Scope>(context)
    const requestId = requestIds ? RequestId.fromHeader(request.headers[RequestId.header]) : undefined
    request.exchange.requestId = requestId
    if (refsOf === undefined) {
      return Runtime.runFork(
        Runtime.make({ context: requestContext, fiberRefs, runtimeFlags }),
        handled,
        requestId === undefined ? undefined : {
          updateRefs: (refs, fiberId) =>
            FiberRefs.updateAs(refs, { fiberId, fiberRef: RequestId.currentRequestId, value: requestId })
        }
      )
    }
    return Runtime.runFork(Runtime.make({ context: requestContext, fiberRefs: noRefs, runtimeFlags }), handled, {
      updateRefs: (_, fiberId) => refsOf(fiberId, requestContext, requestId)
    })
  }
}

const noRefs = FiberRefs.empty()

/**
 * How to make a request fiber's refs: the server's, under the fiber's own context. `Runtime.runFork` copies the
 * server's refs, then forks each of them for the new fiber, a few calls per ref; when forking keeps every ref as it
 * is (true of every ref without a fork of its own, which is all a server has as a rule), the copy is all there is to
 * it, made here in one pass. Undefined when forking changes a ref: `Runtime.runFork` does it then.
 */
const requestRefs = (server: FiberRefs.FiberRefs) => {
  const forked = FiberRefs.forkAs(server, FiberId.make(-1, 0) as FiberId.Runtime)
  for (const [ref, stack] of server.locals) if (forked.locals.get(ref) !== stack) return undefined
  const kept = [...server.locals].filter(([ref]) => ref !== FiberRef.currentContext)
  const contexts = server.locals.get(FiberRef.currentContext) ?? []
  const requestIds = server.locals.get(RequestId.currentRequestId) ?? []
  return (fiberId: FiberId.Runtime, context: Context.Context<never>, requestId: string | undefined) => {
    const locals: typeof server.locals = new Map()
    for (const [ref, stack] of kept) locals.set(ref, stack)
    // As `FiberRefs.updateAs` adds a value set by another fiber: on top of the stack, under this fiber's id.
    locals.set(FiberRef.currentContext, [[fiberId, context], ...contexts])
    if (requestId !== undefined) locals.set(RequestId.currentRequestId, [[fiberId, requestId], ...requestIds])
    return FiberRefs.unsafeMake(locals)
  }
}

/** What one request's fiber runs: `HttpApp.toHandled`, rewritten with fewer fiber steps. */
const exchange = (httpApp: App, applied: App | undefined, traced: boolean): Handled =>
  Effect.withFiberRuntime((fiber) => {
    const scope = fiber.currentContext.unsafeMap.get(scopeKey) as Scope.CloseableScope
    if (applied !== undefined) {
      return finish(scope, afterMiddleware(currentRequest(fiber), traced ? withTracer(fiber, applied) : applied))
    }
    if (traced) return finish(scope, withTracer(fiber, respondTo(fiber, httpApp)))
    return Effect.matchCauseEffect(
      httpApp,
      cases(
        (cause) => finish(scope, respondToCause(fiber, cause)),
        (response) => finish(scope, respondWith(fiber, response))
      )
    )
  })

/**
 * The continuations of `Effect.matchCauseEffect`, passed as arguments: tsx (esbuild's `keepNames`) wraps a function
 * written as an object property in a `__name` call, and these are made for every request.
 */
const cases = <E, A, B, E2, R2, C, E3, R3>(
  onFailure: (cause: Cause.Cause<E>) => Effect.Effect<B, E2, R2>,
  onSuccess: (value: A) => Effect.Effect<C, E3, R3>
) => ({ onFailure, onSuccess })

/** Closes the request's scope with the exchange's exit once it is done, unless the scope was ejected. */
const finish = (scope: Scope.CloseableScope, effect: Handled): Handled =>
  Exit.isExit(effect) ? closeScope(scope, effect) : Effect.matchCauseEffect(
    effect,
    cases((cause) => closeScope(scope, Exit.failCause(cause)), (value) => closeScope(scope, Exit.succeed(value)))
  )

const closeScope = (scope: Scope.CloseableScope, exit: Exit.Exit<unknown, unknown>) =>
  ejectedScopes.has(scope) ? exit : Effect.zipRight(Scope.close(scope, exit), exit)

const currentRequest = (fiber: Fiber.RuntimeFiber<unknown, unknown>) =>
  fiber.currentContext.unsafeMap.get(requestKey) as NodeServerRequest

/** Runs the app and writes its response, or the response for its failure (the platform's `withErrorHandling`). */
const respondTo = (fiber: Fiber.RuntimeFiber<unknown, unknown>, httpApp: App): App =>
  Effect.matchCauseEffect(
    httpApp,
    cases((cause) => respondToCause(fiber, cause), (response) => respondWith(fiber, response))
  )

const respondWith = (
  fiber: Fiber.RuntimeFiber<unknown, unknown>,
  response: HttpServerResponse.HttpServerResponse
): Effect.Effect<HttpServerResponse.HttpServerResponse, unknown> => {
  const handler = fiber.getFiberRef(HttpApp.currentPreResponseHandlers)
  if (handler._tag === "None") return write(fiber, response)
  return Effect.matchCauseEffect(
    Effect.suspend(() => handler.value(currentRequest(fiber), response)),
    cases((cause) => respondToCause(fiber, cause), (response) => write(fiber, response))
  )
}

/** Writes the response; what is written at once ends in an `Exit`, which `finish` closes on without a fiber step. */
const write = (fiber: Fiber.RuntimeFiber<unknown, unknown>, response: HttpServerResponse.HttpServerResponse) => {
  let writing: Effect.Effect<void, HttpServerError.ResponseError> | undefined
  try {
    writing = writeResponse(currentRequest(fiber), response)
  } catch (defect) {
    return respondToCause(fiber, Cause.die(defect))
  }
  if (writing === undefined) return Exit.succeed(response)
  return Effect.matchCauseEffect(
    writing,
    cases((cause) => respondToCause(fiber, cause), () => Exit.succeed(response))
  )
}

/** The platform's error path: the response for the cause, through the pre-response handlers; fails with the rest. */
const respondToCause = (fiber: Fiber.RuntimeFiber<unknown, unknown>, cause: Cause.Cause<unknown>) =>
  Effect.flatMap(HttpServerError.causeResponse(cause), ([response, rest]) => {
    const request = currentRequest(fiber)
    const handler = fiber.getFiberRef(HttpApp.currentPreResponseHandlers)
    const written = handler._tag === "None"
      ? writeEffect(request, response)
      : Effect.flatMap(handler.value(request, response), (response) => writeEffect(request, response))
    return Effect.zipRight(written, Cause.isEmptyType(rest) ? Exit.succeed(response) : Exit.failCause(rest))
  })

const writeEffect = (request: NodeServerRequest, response: HttpServerResponse.HttpServerResponse) =>
  Effect.suspend(() => writeResponse(request, response) ?? Effect.void)

/** Middleware runs after the response is written; it only writes one itself if nothing was written yet. */
const afterMiddleware = (request: NodeServerRequest, effect: App): Handled =>
  Effect.matchCauseEffect(effect, {
    onFailure: (cause) =>
      request.exchange.handled ? Effect.void : Effect.matchCauseEffect(HttpServerError.causeResponse(cause), {
        onFailure: () => writeEffect(request, HttpServerResponse.empty({ status: 500 })),
        onSuccess: ([response]) => writeEffect(request, response)
      }),
    onSuccess: (response) => (request.exchange.handled ? Effect.void : writeEffect(request, response))
  })

/** The platform's tracer middleware (internal there), for servers that have not disabled it. */
const withTracer = (fiber: Fiber.RuntimeFiber<unknown, unknown>, effect: App): App => {
  const request = currentRequest(fiber)
  const url = Option.getOrUndefined(HttpServerRequest.toURL(request))
  if (url !== undefined && (url.username !== "" || url.password !== "")) {
    url.username = "REDACTED"
    url.password = "REDACTED"
  }
  const redactedNames = fiber.getFiberRef(Headers.currentRedactedNames)
  const nameOf = Context.get(fiber.currentContext, HttpMiddleware.SpanNameGenerator)
  return Effect.useSpan(
    nameOf(request),
    {
      parent: Option.getOrUndefined(HttpTraceContext.fromHeaders(request.headers)),
      kind: "server",
      captureStackTrace: false
    },
    (span) => {
      span.attribute("http.request.method", request.method)
      if (url !== undefined) {
        span.attribute("url.full", url.toString())
        span.attribute("url.path", url.pathname)
        if (url.search.length > 1) span.attribute("url.query", url.search.slice(1))
        span.attribute("url.scheme", url.protocol.slice(0, -1))
      }
      const userAgent = request.headers["user-agent"]
      if (userAgent !== undefined) span.attribute("user_agent.original", userAgent)
      const requestHeaders = Headers.redact(request.headers, redactedNames)
      for (const name in requestHeaders) span.attribute(`http.request.header.${name}`, String(requestHeaders[name]))
      if (request.remoteAddress._tag === "Some") span.attribute("client.address", request.remoteAddress.value)
      return Effect.flatMap(Effect.exit(Effect.withParentSpan(effect, span)), (exit) => {
        const response = HttpServerError.exitResponse(exit)
        span.attribute("http.response.status_code", response.status)
        const responseHeaders = Headers.redact(response.headers, redactedNames)
        for (const name in responseHeaders) {
          span.attribute(`http.response.header.${name}`, String(responseHeaders[name]))
        }
        return exit
      })
    }
  )
}
