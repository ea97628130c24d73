/**
 * Serves an `HttpApi`'s handlers on the `HttpLayerRouter`, as `HttpLayerRouter.addHttpApi` does but without the copy
 * of the registration context it wraps around every request. The handlers `HttpApiBuilder.group` builds already run
 * in their group's build context, which holds all the registration context does (`Layer.provide` passes the outer
 * context through), and middleware implementations are captured when the groups are built, so that copy bought
 * nothing and cost a FiberRef `locally` on every request. It serves the groups of `HttpApiBuilder.group` and of the
 * leaner `HttpApiHandlers.group` alike: both register their routes in the same place.
 */
import * as HttpApi from "@effect/platform/HttpApi"
import * as HttpApiBuilder from "@effect/platform/HttpApiBuilder"
import type * as HttpApiEndpoint from "@effect/platform/HttpApiEndpoint"
import type * as HttpApiGroup from "@effect/platform/HttpApiGroup"
import type * as HttpApiMiddleware from "@effect/platform/HttpApiMiddleware"
import * as HttpLayerRouter from "@effect/platform/HttpLayerRouter"
import type * as HttpMethod from "@effect/platform/HttpMethod"
import type * as HttpRouter from "@effect/platform/HttpRouter"
import * as HttpServerRespondable from "@effect/platform/HttpServerRespondable"
import { Effect, Layer } from "effect"

type RoutableMethod = Parameters<typeof HttpLayerRouter.route>[0]

/** What the endpoints' schemas (path, query, headers, payload, success) need; middleware comes with the groups. */
type SchemaContext<Groups> = Groups extends HttpApiGroup.HttpApiGroup<
  infer _Id,
  infer Endpoints,
  infer _Error,
  infer _R,
  infer _TopLevel
> ? HttpApiMiddleware.HttpApiMiddleware.Without<HttpApiEndpoint.HttpApiEndpoint.Context<Endpoints>>
  : never

// `HttpLayerRouter` answers HEAD with the GET route: a HEAD endpoint of its own has no place there.
const isRoutable = (method: HttpMethod.HttpMethod | "*"): method is RoutableMethod => method !== "HEAD"

/**
 * The routes of `api`'s groups (provide them to this layer, as to `addHttpApi`). A failure the API declares is
 * answered as the API encodes it, as with `addHttpApi`; others are left to the server's error handling. Requests are
 * decoded and responses encoded outside the group's context, so what the endpoints' schemas need is asked of the
 * server, per request. Middleware goes on groups: API-level middleware (`HttpApi.middleware`) is refused when the
 * layer is built.
 */
export const layer = <Id extends string, Groups extends HttpApiGroup.HttpApiGroup.Any, E, R>(
  api: HttpApi.HttpApi<Id, Groups, E, R>
): Layer.Layer<
  never,
  never,
  | HttpLayerRouter.HttpRouter
  | HttpLayerRouter.Request.From<"Requires", HttpRouter.HttpRouter.DefaultServices | SchemaContext<Groups>>
  | HttpLayerRouter.Request.From<"Error", unknown>
  | R
  | HttpApiGroup.HttpApiGroup.ToService<Id, Groups>
  | HttpApiGroup.HttpApiGroup.ErrorContext<Groups>
> =>
  HttpApiBuilder.Router.unwrap((handled) =>
    Layer.effectDiscard(Effect.gen(function*() {
      if (api.middlewares.size > 0) {
        return yield* Effect.dieMessage("HttpApiRoutes: put middleware on groups, not on the API")
      }
      const endpoints = new Set<string>()
      HttpApi.reflect(api, {
        onGroup: () => {},
        onEndpoint: ({ endpoint }) => endpoints.add(`${endpoint.method} ${endpoint.path}`)
      })
      // With no API-level middleware, `buildMiddleware` only encodes the declared errors: applied to a failure
      // alone, it encodes that failure and leaves the successful path unwrapped.
      const encodeDeclared = yield* HttpApiBuilder.buildMiddleware(api)
      const routes: Array<HttpLayerRouter.Route<unknown, HttpRouter.HttpRouter.DefaultServices>> = []
      for (const route of handled.routes) {
        if (!endpoints.has(`${route.method} ${route.path}`)) continue
        if (!isRoutable(route.method)) {
          return yield* Effect.dieMessage(`HttpApiRoutes: cannot route ${route.path} for HEAD`)
        }
        routes.push(HttpLayerRouter.route(
          route.method,
          route.path,
          Effect.catchAllCause(
            Effect.flatMap(route.handler, HttpServerRespondable.toResponse),
            (cause) => encodeDeclared(Effect.failCause(cause))
          ),
          { uninterruptible: route.uninterruptible }
        ))
      }
      const router = yield* HttpLayerRouter.HttpRouter
      yield* router.addAll(routes)
    }))
  )
