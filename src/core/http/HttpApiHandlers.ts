/**
 * A group's handlers as `HttpApiBuilder.group` takes them (same signature, same `handle` / `handleRaw`), served with
 * less work per request: the platform wraps every request in a copy of the group's whole build context, then one
 * more copy for each middleware's `provideServiceEffect`; here the middleware runs first, in the request's own
 * context, and the handler gets one context for the request: the group's, the request's and what the middleware
 * provides. When the server made the request's context for that request alone (`ContextOverlay.RequestOverlay`, as
 * the core's adapter and router do), those entries are written into it and the fiber keeps its context; otherwise
 * the handler runs in an overlay of them and the request's context is put back after. A middleware that can answer
 * synchronously (`withShortcut`: a remembered caller, say) does, and then no middleware effect runs. Requests are
 * decoded, responses encoded and failures raised as the platform does (its parity test runs the same API both ways).
 * The routes go where `HttpApiBuilder.group` puts them, so `HttpApiRoutes.layer` serves groups of either kind.
 */
import type * as HttpApi from "@effect/platform/HttpApi"
import * as HttpApiBuilder from "@effect/platform/HttpApiBuilder"
import type * as HttpApiEndpoint from "@effect/platform/HttpApiEndpoint"
import { HttpApiDecodeError } from "@effect/platform/HttpApiError"
import type * as HttpApiGroup from "@effect/platform/HttpApiGroup"
import * as HttpApiMiddleware from "@effect/platform/HttpApiMiddleware"
import * as HttpApiSchema from "@effect/platform/HttpApiSchema"
import * as HttpMethod from "@effect/platform/HttpMethod"
import * as HttpRouter from "@effect/platform/HttpRouter"
import * as HttpServerRequest from "@effect/platform/HttpServerRequest"
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import * as Multipart from "@effect/platform/Multipart"
import * as UrlParams from "@effect/platform/UrlParams"
import {
  Chunk,
  Clock,
  Context,
  Effect,
  type Fiber,
  FiberRef,
  Option,
  ParseResult,
  Schema,
  type SchemaAST as AST
} from "effect"
import { identity } from "effect/Function"
import { pipeArguments } from "effect/Pipeable"
import * as ContextOverlay from "../runtime/ContextOverlay.js"

type Item = HttpApiBuilder.Handlers.Item<any, any>

const HandlersProto = {
  [HttpApiBuilder.HandlersTypeId]: { _Endpoints: identity },
  pipe() {
    return pipeArguments(this, arguments)
  },
  handle(this: Handlers, name: string, handler: Item["handler"], options?: { readonly uninterruptible?: boolean }) {
    return makeHandlers(this.group, Chunk.append(this.handlers, itemOf(this, name, handler, false, options)))
  },
  handleRaw(this: Handlers, name: string, handler: Item["handler"], options?: { readonly uninterruptible?: boolean }) {
    return makeHandlers(this.group, Chunk.append(this.handlers, itemOf(this, name, handler, true, options)))
  }
}

interface Handlers {
  readonly group: HttpApiGroup.HttpApiGroup.AnyWithProps
  readonly handlers: Chunk.Chunk<Item>
}

const itemOf = (
  self: Handlers,
  name: string,
  handler: Item["handler"],
  withFullRequest: boolean,
  options: { readonly uninterruptible?: boolean } | undefined
): Item => ({
  endpoint: self.group.endpoints[name]!,
  handler,
  withFullRequest,
  uninterruptible: options?.uninterruptible ?? false
})

const makeHandlers = (group: HttpApiGroup.HttpApiGroup.AnyWithProps, handlers: Chunk.Chunk<Item>): Handlers =>
  Object.assign(Object.create(HandlersProto), { group, handlers })

/** `HttpApiBuilder.group`, served lean: see the module's comment. */
export const group: typeof HttpApiBuilder.group = ((
  api: HttpApi.HttpApi.AnyWithProps,
  groupName: string,
  build: (handlers: any) => any
) =>
  HttpApiBuilder.Router.use((router) =>
    Effect.gen(function*() {
      const context = yield* Effect.context<never>()
      const group = api.groups[groupName]!
      const result = build(makeHandlers(group, Chunk.empty()))
      const handlers: Handlers = Effect.isEffect(result) ? yield* (result as Effect.Effect<Handlers>) : result
      const routes: Array<HttpRouter.Route<any, any>> = []
      for (const item of handlers.handlers) {
        const endpoint = item.endpoint as HttpApiEndpoint.HttpApiEndpoint.AnyWithProps
        // As the platform orders them: the last declared runs first, the endpoint's own before its group's.
        const tags = new Map<string, HttpApiMiddleware.TagClassAny>()
        for (const tag of [...group.middlewares, ...endpoint.middlewares]) {
          if (!tags.has(tag.key)) tags.set(tag.key, tag)
        }
        const middleware = [...tags.values()].reverse().map((tag) =>
          middlewareOf(tag, Context.unsafeGet(context, tag as any))
        )
        routes.push(HttpRouter.makeRoute(endpoint.method, endpoint.path, routeHandler(item, middleware, context), {
          uninterruptible: item.uninterruptible
        }))
      }
      yield* router.concat(HttpRouter.fromIterable(routes))
    })
  )) as any

/**
 * What a middleware's implementation may offer beside its effect, under this key: the value the effect would succeed
 * with for a request, found synchronously (from memory, say), or undefined when only the effect can tell. It reads
 * the request and the time (from the fiber's `Clock`) and nothing else: not what an earlier middleware provided. When
 * every middleware of a route answers this way, no middleware effect runs; the answers are what they provide.
 */
export const shortcut: unique symbol = Symbol.for("effect-core/HttpApiHandlers/shortcut")

export type Shortcut = (request: HttpServerRequest.HttpServerRequest, now: number) => unknown

/** Adds `answer` as the shortcut (see `shortcut`) of a middleware's implementation. */
export const withShortcut = <I extends object>(implementation: I, answer: Shortcut): I =>
  Object.assign(implementation, { [shortcut]: answer })

interface Middleware {
  readonly run: Effect.Effect<unknown, unknown, any>
  readonly provides: Context.Tag<any, any> | undefined
  readonly optional: boolean
  readonly shortcut: Shortcut | undefined
}

/** A middleware's effect for one request: a security one tries each of its schemes in turn, as the platform does. */
const middlewareOf = (tag: HttpApiMiddleware.TagClassAny, implementation: any): Middleware => {
  let run: Effect.Effect<unknown, unknown, any> = implementation
  if (HttpApiMiddleware.SecurityTypeId in tag) {
    let chained: Effect.Effect<unknown, unknown, any> | undefined
    for (const [key, security] of Object.entries((tag as HttpApiMiddleware.TagClassSecurityAny).security)) {
      const handler = implementation[key] as (credential?: unknown) => Effect.Effect<unknown, unknown, any>
      // A handler that takes no credential (it reads the request itself) is not handed one: decoding it is work.
      const attempt = handler.length === 0
        ? Effect.suspend(() => handler())
        : Effect.flatMap(HttpApiBuilder.securityDecode(security), handler)
      chained = chained === undefined ? attempt : Effect.catchAll(chained, () => attempt)
    }
    run = chained ?? Effect.void
  }
  const answer = typeof implementation === "object" && implementation !== null ? implementation[shortcut] : undefined
  return {
    run,
    provides: tag.provides as Context.Tag<any, any> | undefined,
    optional: tag.optional,
    shortcut: typeof answer === "function" ? answer as Shortcut : undefined
  }
}

/**
 * The route's handler: the middleware in the request's context (each one after the first also sees what the
 * earlier ones provided), then the endpoint in one context made for the request.
 */
const routeHandler = (item: Item, middleware: ReadonlyArray<Middleware>, context: Context.Context<never>) => {
  const endpoint = respond(item)
  const groupEntries = context.unsafeMap
  // The group's entries the server's context lacks (its own dependencies), found once per server context: a request's
  // context is an overlay on it, and what the server has, the request has too. They are kept as an overlay on the
  // server's context, which a request's own context can stand on instead of taking them one by one.
  const groupOnlyByServer = new WeakMap<ReadonlyMap<string, unknown>, ContextOverlay.OverlayMap<string, unknown>>()
  const groupOnly = (request: ReadonlyMap<string, unknown>) => {
    if (!(request instanceof ContextOverlay.OverlayMap) || !request.inheritsAll) return undefined
    const server = request.parent
    let entries = groupOnlyByServer.get(server)
    if (entries === undefined) {
      entries = new ContextOverlay.OverlayMap(server)
      for (const [key, value] of groupEntries) if (!server.has(key)) entries.set(key, value)
      groupOnlyByServer.set(server, entries)
    }
    return entries
  }
  // The request's context with what only the group has, and what the middleware provided, over it: the request's
  // entries win over the group's, as when the group's context is copied and the request's written over it.
  const serveIn = (
    fiber: Fiber.RuntimeFiber<unknown, unknown>,
    provided: ReadonlyArray<readonly [string, unknown]>
  ): Effect.Effect<HttpServerResponse.HttpServerResponse, unknown, any> => {
    const request = fiber.currentContext.unsafeMap
    // The request's own context (the server made it for this request alone) takes the entries itself, and keeps
    // them for the rest of the request, which never reads them; any other gets an overlay of them.
    const owned = request instanceof ContextOverlay.RequestOverlay
    const map = owned ? request : new ContextOverlay.OverlayMap<string, unknown>(request)
    const group = groupOnly(request)
    if (!(owned && group !== undefined && request.rebase(group))) {
      const entries = group === undefined ? groupEntries : Map.prototype.entries.call(group)
      for (const [key, value] of entries) if (!request.has(key)) map.set(key, value)
    }
    for (const [key, value] of provided) map.set(key, value)
    if (owned) return endpoint
    // `Effect.provide` would merge this context into the request's, copying both: it already holds the request's.
    // And `Effect.locally` restores it through `acquireUseRelease`, a dozen fiber steps: the endpoint is the end of
    // the route, so the request's context is put back when it ends, except when it is interrupted (the request is
    // over then, and what still runs reads only what the request's context has too).
    const restore = FiberRef.set(FiberRef.currentContext, fiber.currentContext)
    return Effect.zipRight(
      FiberRef.set(FiberRef.currentContext, Context.unsafeMake(map)),
      Effect.matchCauseEffect(endpoint, {
        onFailure: (cause) => Effect.zipRight(restore, Effect.failCause(cause)),
        onSuccess: (response) => Effect.as(restore, response)
      })
    )
  }
  const serve = (provided: ReadonlyArray<readonly [string, unknown]>) =>
    Effect.withFiberRuntime<HttpServerResponse.HttpServerResponse, unknown, any>((fiber) => serveIn(fiber, provided))
  if (middleware.length === 0) return serve([])
  const step = (index: number, provided: Array<readonly [string, unknown]>): Effect.Effect<any, any, any> => {
    if (index === middleware.length) return serve(provided)
    const { optional, provides, run } = middleware[index]!
    const effect = provided.length === 0
      ? run
      : Effect.mapInputContext(run, (input: Context.Context<any>) => ContextOverlay.make(input, provided))
    const next = (value: unknown) =>
      step(index + 1, provides === undefined ? provided : [...provided, [provides.key, value] as const])
    return optional
      ? Effect.matchEffect(effect, { onFailure: () => step(index + 1, provided), onSuccess: next })
      : Effect.flatMap(effect, next)
  }
  const chain = step(0, [])
  if (!middleware.every((each) => each.shortcut !== undefined)) return chain
  // Every middleware can answer without its effect: the request goes straight to the endpoint when they all do.
  return Effect.withFiberRuntime<HttpServerResponse.HttpServerResponse, unknown, any>((fiber) => {
    const request = fiber.currentContext.unsafeMap.get(
      HttpServerRequest.HttpServerRequest.key
    ) as HttpServerRequest.HttpServerRequest
    const now = Context.get(fiber.currentDefaultServices, Clock.Clock).unsafeCurrentTimeMillis()
    const provided: Array<readonly [string, unknown]> = []
    for (const each of middleware) {
      const answer = each.shortcut!(request, now)
      if (answer === undefined) return chain
      if (each.provides !== undefined) provided.push([each.provides.key, answer])
    }
    return serveIn(fiber, provided)
  })
}

/** Decodes the request as the endpoint declares it, runs the handler, encodes its success. */
const respond = (item: Item): Effect.Effect<HttpServerResponse.HttpServerResponse, unknown, any> => {
  const endpoint = item.endpoint as HttpApiEndpoint.HttpApiEndpoint.AnyWithProps
  const isMultipartStream = endpoint.payloadSchema.pipe(
    Option.map(({ ast }) => HttpApiSchema.getMultipartStream(ast) !== undefined),
    Option.getOrElse(() => false)
  )
  const multipartLimits = endpoint.payloadSchema.pipe(
    Option.flatMapNullable(({ ast }) => HttpApiSchema.getMultipart(ast) || HttpApiSchema.getMultipartStream(ast))
  )
  const decodePath = Option.map(endpoint.pathSchema, Schema.decodeUnknown)
  const decodePayload = item.withFullRequest || isMultipartStream
    ? Option.none()
    : Option.map(endpoint.payloadSchema, Schema.decodeUnknown)
  const decodeHeaders = Option.map(endpoint.headersSchema, Schema.decodeUnknown)
  const decodeUrlParams = Option.map(
    endpoint.urlParamsSchema,
    (schema) => (params: Record<string, string | Array<string>>) =>
      Schema.decodeUnknown(schema)(normalizeUrlParams(params, schema.ast))
  )
  const encodeSuccess = Schema.encode(successSchema(endpoint.successSchema))
  const toResponse = (response: unknown) =>
    HttpServerResponse.isServerResponse(response) ? Effect.succeed(response) : encodeSuccess(response)
  const plain = Option.isNone(decodePath) && Option.isNone(decodePayload) && !isMultipartStream &&
    Option.isNone(decodeHeaders) && Option.isNone(decodeUrlParams)
  const handled = plain
    ? Effect.withFiberRuntime<unknown, unknown, any>((fiber) =>
      Effect.flatMap(
        item.handler({ request: Context.unsafeGet(fiber.currentContext, HttpServerRequest.HttpServerRequest) }),
        toResponse
      )
    )
    : Effect.gen(function*() {
      const context = yield* Effect.context<never>()
      const httpRequest = Context.unsafeGet(context, HttpServerRequest.HttpServerRequest)
      const routeContext = Context.unsafeGet(context, HttpRouter.RouteContext)
      const urlParams = Context.unsafeGet(context, HttpServerRequest.ParsedSearchParams)
      const request: Record<string, unknown> = { request: httpRequest }
      if (Option.isSome(decodePath)) request.path = yield* decodePath.value(routeContext.params)
      if (Option.isSome(decodePayload)) {
        request.payload = yield* Effect.flatMap(
          requestPayload(httpRequest, urlParams, multipartLimits),
          decodePayload.value
        )
      } else if (isMultipartStream) {
        request.payload = Option.match(multipartLimits, {
          onNone: () => httpRequest.multipartStream,
          onSome: (limits) => Multipart.withLimitsStream(httpRequest.multipartStream, limits)
        })
      }
      if (Option.isSome(decodeHeaders)) request.headers = yield* decodeHeaders.value(httpRequest.headers)
      if (Option.isSome(decodeUrlParams)) request.urlParams = yield* decodeUrlParams.value(urlParams)
      return yield* toResponse(yield* item.handler(request as any))
    })
  return Effect.catchIf(
    handled as Effect.Effect<HttpServerResponse.HttpServerResponse, unknown, any>,
    ParseResult.isParseError,
    HttpApiDecodeError.refailParseError
  )
}

/** The request's payload: its URL parameters for a method without a body, else its body by content type. */
const requestPayload = (
  request: HttpServerRequest.HttpServerRequest,
  urlParams: Readonly<Record<string, string | Array<string>>>,
  multipartLimits: Option.Option<Multipart.withLimits.Options>
): Effect.Effect<unknown, never, any> => {
  if (!HttpMethod.hasBody(request.method)) return Effect.succeed(urlParams)
  const contentType = request.headers["content-type"]
    ? request.headers["content-type"].toLowerCase().trim()
    : "application/json"
  if (contentType.includes("application/json")) return Effect.orDie(request.json)
  if (contentType.includes("multipart/form-data")) {
    return Effect.orDie(Option.match(multipartLimits, {
      onNone: () => request.multipart,
      onSome: (limits) => Multipart.withLimits(request.multipart, limits)
    }))
  }
  if (contentType.includes("x-www-form-urlencoded")) {
    return Effect.map(Effect.orDie(request.urlParamsBody), UrlParams.toRecord)
  }
  if (contentType.startsWith("text/")) return Effect.orDie(request.text)
  return Effect.map(Effect.orDie(request.arrayBuffer), (buffer) => new Uint8Array(buffer))
}

const isSingleStringType = (ast: AST.AST, key?: PropertyKey): boolean => {
  switch (ast._tag) {
    case "StringKeyword":
    case "Literal":
    case "TemplateLiteral":
    case "Enums":
      return true
    case "TypeLiteral": {
      if (key === undefined) return false
      const property = ast.propertySignatures.find((signature) => signature.name === key)
      return property !== undefined
        ? isSingleStringType(property.type, key)
        : ast.indexSignatures.some((index) =>
          Schema.is(Schema.make(index.parameter))(key) && isSingleStringType(index.type)
        )
    }
    case "Union":
      return ast.types.some((type) => isSingleStringType(type, key))
    case "Suspend":
      return isSingleStringType(ast.f(), key)
    case "Refinement":
    case "Transformation":
      return isSingleStringType(ast.from, key)
  }
  return false
}

/** A URL parameter the schema expects as an array is one even when it came once. */
const normalizeUrlParams = (
  params: Readonly<Record<string, string | Array<string>>>,
  ast: AST.AST
): Record<string, string | Array<string>> => {
  const out: Record<string, string | Array<string>> = {}
  for (const key in params) {
    const value = params[key]!
    out[key] = Array.isArray(value) || isSingleStringType(ast, key) ? value : [value]
  }
  return out
}

const responseSchema = Schema.declare(HttpServerResponse.isServerResponse)

const encodeOnly = <A>(_: A, __: AST.ParseOptions, ast: AST.Transformation) =>
  ParseResult.fail(new ParseResult.Forbidden(ast, _, "Encode only schema"))

const toResponse = (
  data: any,
  _: AST.ParseOptions,
  ast: AST.Transformation
): Effect.Effect<HttpServerResponse.HttpServerResponse, ParseResult.ParseIssue> => {
  const status = HttpApiSchema.getStatusSuccessAST(ast.to)
  if (HttpApiSchema.isVoid(ast.to)) return Effect.succeed(HttpServerResponse.empty({ status }))
  const encoding = HttpApiSchema.getEncoding(ast.to)
  const options = { status, contentType: encoding.contentType }
  switch (encoding.kind) {
    case "Json":
      return Effect.mapError(
        HttpServerResponse.json(data, options),
        (error) => new ParseResult.Type(ast, error, "Could not encode to JSON")
      )
    case "Text":
      return ParseResult.succeed(HttpServerResponse.text(data, options))
    case "Uint8Array":
      return ParseResult.succeed(HttpServerResponse.uint8Array(data, options))
    case "UrlParams":
      return ParseResult.succeed(HttpServerResponse.urlParams(data, options))
  }
}

/** Each success schema of the endpoint as a response, with its status and encoding, as the platform makes them. */
const successSchema = (schema: Schema.Schema.Any): Schema.Schema<unknown, HttpServerResponse.HttpServerResponse> => {
  const schemas = new Set<Schema.Schema.Any>()
  HttpApiSchema.deunionize(schemas, schema)
  return Schema.Union(
    ...Array.from(
      schemas,
      (member) => Schema.transformOrFail(responseSchema, member, { decode: encodeOnly, encode: toResponse })
    )
  ) as any
}
