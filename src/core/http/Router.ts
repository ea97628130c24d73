/**
 * The platform's `HttpLayerRouter` service (same tag, same routes, middleware and matching), which the lean Node
 * adapter can route ahead of the request's fiber. The platform's router finds the route inside the fiber, then
 * copies the request's whole context (every service of the app) to add the route's entries and runs the handler
 * under `Effect.locally`: a second copy of what the adapter has just built, and two more FiberRef updates, on every
 * request. Here the adapter asks the router for the route while it builds the request's context (`Preroute`), so
 * the route's entries go into that one context and the fiber runs the route's handler, wrapped once per route in
 * the global middleware, directly. Requests the adapter does not route (traced ones, routes under a `prefixed`
 * router, any other `HttpServer`) take the platform's path, written out below as the platform has it, except that the
 * route's entries are laid over the request's context rather than added to a copy of it.
 *
 * The one difference a global middleware could see: on the adapter's path the route's entries (`RouteContext`,
 * `ParsedSearchParams`) are already in its context, where the platform adds them only around the handler.
 */
import * as HttpLayerRouter from "@effect/platform/HttpLayerRouter"
import * as HttpMiddleware from "@effect/platform/HttpMiddleware"
import * as HttpRouter from "@effect/platform/HttpRouter"
import * as HttpServer from "@effect/platform/HttpServer"
import * as HttpServerError from "@effect/platform/HttpServerError"
import * as HttpServerRequest from "@effect/platform/HttpServerRequest"
import type * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import { Context, Effect, FiberRef, Layer, Tracer } from "effect"
import { compose, identity } from "effect/Function"
import { RequestOverlay } from "../runtime/ContextOverlay.js"
import * as NodeHttpAdapter from "./node/NodeHttpAdapter.js"

type Route = HttpLayerRouter.Route<unknown, unknown>
type App = Effect.Effect<HttpServerResponse.HttpServerResponse, unknown, any>
type Middleware = (effect: App) => App

// Route-level middleware (`HttpLayerRouter.middleware` without `global`) reaches `addAll` through the context of
// the layer that adds the routes, under keys with this prefix, each holding a stack of middleware functions. This
// mirrors the platform's own (internal) reading of them; the parity suite serves route middleware both ways.
const middlewareKeyPrefix = "@effect/platform/HttpLayerRouter/Middleware-"
const middlewareCache = new WeakMap<Context.Context<never>, ReadonlyArray<Middleware>>()

/** The route middleware a layer's context holds, outermost last, as the platform orders them. */
const routeMiddleware = (context: Context.Context<never>): ReadonlyArray<Middleware> => {
  const cached = middlewareCache.get(context)
  if (cached !== undefined) return cached
  const stacks: Array<ReadonlyArray<Middleware>> = []
  let deepest = 0
  for (const [key, value] of context.unsafeMap) {
    if (!key.startsWith(middlewareKeyPrefix)) continue
    const stack = value as ReadonlyArray<Middleware>
    stacks.push(stack)
    deepest = Math.max(deepest, stack.length)
  }
  const ordered = new Set<Middleware>()
  for (let depth = deepest - 1; depth >= 0; depth--) {
    for (const stack of stacks) if (depth < stack.length) ordered.add(stack[depth]!)
  }
  const middleware = [...ordered].reverse()
  middlewareCache.set(context, middleware)
  return middleware
}

const routeContext = (route: Route, params: Readonly<Record<string, string | undefined>>): HttpRouter.RouteContext => ({
  [HttpRouter.RouteContextTypeId]: HttpRouter.RouteContextTypeId,
  route: route as any,
  params
})

const sliceRequestUrl = (request: HttpServerRequest.HttpServerRequest, prefix: string) =>
  request.modify({ url: request.url.length <= prefix.length ? "/" : request.url.slice(prefix.length) })

/** A router: the `HttpLayerRouter.HttpRouter` service. */
const make = Effect.gen(function*() {
  const router = HttpLayerRouter.FindMyWay.make<Route>(yield* HttpLayerRouter.RouterConfig)
  const globalMiddleware = new Set<Middleware>()

  const addAll = (routes: ReadonlyArray<Route>) =>
    Effect.contextWith((context: Context.Context<never>) => {
      const middleware = routeMiddleware(context)
      for (const added of routes) {
        let route = added
        if (middleware.length > 0) {
          let handler = route.handler as App
          for (const apply of middleware) handler = apply(handler)
          route = { ...route, handler }
        }
        if (route.method === "*") router.all(route.path, route)
        else router.on(route.method, route.path, route)
      }
    })

  const find = (request: HttpServerRequest.HttpServerRequest) => {
    const found = router.find(request.method, request.url)
    return found === undefined && request.method === "HEAD" ? router.find("GET", request.url) : found
  }

  /** What the route's handler finds in its context: the query, the route and its parameters; and the span told. */
  const addRouteEntries = (context: Map<string, unknown>, found: HttpLayerRouter.FindMyWay.FindResult<Route>) => {
    context.set(HttpServerRequest.ParsedSearchParams.key, found.searchParams)
    context.set(HttpRouter.RouteContext.key, routeContext(found.handler, found.params))
    const span = context.get(Tracer.ParentSpan.key) as Tracer.AnySpan | undefined
    if (span !== undefined && span._tag === "Span") span.attribute("http.route", found.handler.path)
  }

  const interruptibleHandler = (route: Route) =>
    (route.uninterruptible ? route.handler : Effect.interruptible(route.handler)) as App

  /** The platform's routing, inside the request's fiber: the route's entries laid over the request's context. */
  const routing: App = Effect.withFiberRuntime((fiber) => {
    const context = new RequestOverlay<string, unknown>(fiber.currentContext.unsafeMap)
    const request = context.get(HttpServerRequest.HttpServerRequest.key) as HttpServerRequest.HttpServerRequest
    const found = find(request)
    if (found === undefined) return Effect.fail(new HttpServerError.RouteNotFound({ request }))
    const route = found.handler
    if (route.prefix._tag === "Some") {
      context.set(HttpServerRequest.HttpServerRequest.key, sliceRequestUrl(request, route.prefix.value))
    }
    addRouteEntries(context, found)
    return Effect.locally(interruptibleHandler(route), FiberRef.currentContext, Context.unsafeMake(context))
  })

  const asHttpEffect = () => {
    const middleware = [...globalMiddleware].reverse()
    const withGlobal = (effect: App) => middleware.reduce((wrapped, apply) => apply(wrapped), effect)
    // Each route's handler inside the global middleware, made on its first request.
    const routed = new WeakMap<Route, App>()
    const notFound = withGlobal(
      Effect.flatMap(
        HttpServerRequest.HttpServerRequest,
        (request) => Effect.fail(new HttpServerError.RouteNotFound({ request }))
      )
    )
    const preroute: NodeHttpAdapter.Preroute = (request, context) => {
      const found = find(request)
      if (found === undefined) return notFound
      const route = found.handler
      // Under a prefix the handler sees the request with its URL cut, and the middleware the whole one.
      if (route.prefix._tag === "Some") return undefined
      addRouteEntries(context, found)
      let app = routed.get(route)
      if (app === undefined) {
        app = withGlobal(interruptibleHandler(route))
        routed.set(route, app)
      }
      return app
    }
    return NodeHttpAdapter.withPreroute(withGlobal(routing), preroute)
  }

  const service = (prefix: string | undefined): HttpLayerRouter.HttpRouter => {
    const prefixed = (routes: ReadonlyArray<Route>) =>
      prefix === undefined ? routes : routes.map(HttpLayerRouter.prefixRoute(prefix))
    return HttpLayerRouter.HttpRouter.of({
      [HttpLayerRouter.TypeId]: HttpLayerRouter.TypeId,
      // As the platform joins them: a nested prefix goes before the outer one.
      prefixed: (next) => service(prefix === undefined ? next : HttpLayerRouter.prefixPath(prefix, next)),
      addAll: ((routes: ReadonlyArray<Route>) => addAll(prefixed(routes))) as any,
      add: ((method: Route["method"], path: HttpLayerRouter.PathInput, handler: any, options: any) =>
        addAll(prefixed([HttpLayerRouter.route(method as any, path, handler, options) as Route]))) as any,
      addGlobalMiddleware: ((middleware: Middleware) =>
        Effect.sync(() => globalMiddleware.add(middleware))) as any,
      asHttpEffect
    })
  }
  return service(undefined)
})

/** The router as a layer: a drop-in for `HttpLayerRouter.layer`. */
const layer: Layer.Layer<HttpLayerRouter.HttpRouter> = Layer.effect(HttpLayerRouter.HttpRouter, make)

/** `HttpLayerRouter.serve` on this router, with the same options. */
export const serve: typeof HttpLayerRouter.serve = ((
  appLayer: Layer.Layer<any, any, any>,
  options?: Parameters<typeof HttpLayerRouter.serve>[1]
) => {
  let middleware = options?.middleware as HttpMiddleware.HttpMiddleware | undefined
  if (options?.disableLogger !== true) {
    middleware = middleware === undefined ? HttpMiddleware.logger : compose(middleware, HttpMiddleware.logger)
  }
  const routerLayer = options?.routerConfig === undefined
    ? layer
    : Layer.provide(layer, Layer.succeed(HttpLayerRouter.RouterConfig, options.routerConfig))
  return Effect.map(HttpLayerRouter.HttpRouter, (router) => {
    const app = router.asHttpEffect()
    return middleware === undefined ? HttpServer.serve(app) : HttpServer.serve(app, middleware)
  }).pipe(
    Layer.unwrapScoped,
    Layer.provideMerge(appLayer),
    Layer.provide(routerLayer),
    options?.disableListenLog === true ? identity : HttpServer.withLogAddress
  )
}) as any
