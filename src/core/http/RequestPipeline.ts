/**
 * What every request goes through: its request id, CORS, the body-size limit, the error envelope and one access
 * log line. One middleware rather than four, because each middleware step costs fiber work on every request.
 *
 * The body-size limit is the platform's `MaxBodySize`, set once by `Server.serve`: a body announced larger by its
 * `Content-Length` is refused here before the app runs; a body that grows past it while it is read fails the read
 * with `BodyTooLarge`, answered here too.
 */
import * as NodeHttpServerRequest from "@effect/platform-node/NodeHttpServerRequest"
import { HttpApiDecodeError } from "@effect/platform/HttpApiError"
import * as HttpIncomingMessage from "@effect/platform/HttpIncomingMessage"
import * as HttpServerError from "@effect/platform/HttpServerError"
import * as HttpServerRequest from "@effect/platform/HttpServerRequest"
import * as HttpServerRespondable from "@effect/platform/HttpServerRespondable"
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import { Cause, Context, Effect, type Fiber, FiberRef, HashSet, LogLevel, Option } from "effect"
import type * as Http from "node:http"
import * as ApiError from "../errors/ApiError.js"
import * as Logging from "../runtime/Logging.js"
import * as RequestId from "../runtime/RequestId.js"
import * as ApiContract from "./ApiContract.js"
import { BodyTooLarge, JsonTooDeep, NodeServerRequest } from "./node/Exchange.js"
import { requestTimeoutFiberId, responseTimeoutFiberId } from "./node/NodeHttpAdapter.js"

export interface Options {
  readonly corsOrigins: ReadonlyArray<string>
  readonly corsAllowCredentials: boolean
  /** True once shutdown has begun: responses then ask the client to close the connection. */
  readonly isDraining: () => boolean
}

const allowedMethods = "GET, POST, PUT, PATCH, DELETE, OPTIONS"
const allowedHeaders = "authorization, content-type, x-request-id, last-event-id"
const exposedHeaders = "x-request-id, retry-after, www-authenticate"

type App<E, R> = Effect.Effect<HttpServerResponse.HttpServerResponse, E, R>

const envelopeResponse = ApiError.toResponse

/** The answer to a request whose body could not be read or parsed (whether it surfaced as a failure or a defect). */
const bodyError = (error: unknown): HttpServerResponse.HttpServerResponse | undefined => {
  if (!HttpServerError.isServerError(error) || error._tag !== "RequestError" || error.reason !== "Decode") {
    return undefined
  }
  const cause = error.cause
  if (cause instanceof BodyTooLarge) return tooLarge()
  if (cause instanceof JsonTooDeep) return envelopeResponse(new ApiError.BadRequest({ message: cause.message }))
  return envelopeResponse(new ApiError.BadRequest({ message: "Malformed request body" }))
}

/** The HTTP version of a request served by Node (undefined for any other request). */
const httpVersion = (request: HttpServerRequest.HttpServerRequest): string | undefined =>
  (NodeHttpServerRequest.toIncomingMessage(request) as Http.IncomingMessage | undefined)?.httpVersion

// The expectation Node answers with `100 Continue` by itself (its own test); any other one is refused with 417.
const continueExpectation = /(?:^|\W)100-continue(?:$|\W)/i

/** A request the pipeline refuses before routing: HTTP/1.1 without `Host`, or an expectation it cannot meet. */
const refusal = (request: HttpServerRequest.HttpServerRequest): ApiError.ApiError | undefined => {
  if (request.headers.host === undefined && httpVersion(request) === "1.1") {
    return new ApiError.BadRequest({ message: "Missing Host header" })
  }
  const expect = request.headers.expect
  if (expect !== undefined && !continueExpectation.test(expect)) return new ApiError.ExpectationFailed()
  return undefined
}

/** Longest request target written to the access log; a longer one is cut, and the cut is marked. */
export const maxLoggedPathLength = 1024

/**
 * The request target as logged: never the query string (it may carry a stream ticket), never the userinfo of an
 * absolute-form target (`http://user:pass@host/...`), at most `maxLoggedPathLength` characters.
 */
export const loggedPath = (url: string): string => {
  const queryAt = url.indexOf("?")
  let path = queryAt === -1 ? url : url.slice(0, queryAt)
  if (path.charCodeAt(0) !== 0x2f) path = path.replace(/^([A-Za-z][A-Za-z0-9+.-]*:\/\/)[^/]*@/, "$1")
  return Logging.truncate(path, maxLoggedPathLength)
}

/** The one error response for a failed request, whatever failed; unexpected failures are logged with their cause. */
const responseForCause = (
  fiber: Fiber.RuntimeFiber<unknown, unknown>,
  cause: Cause.Cause<unknown>
): Effect.Effect<HttpServerResponse.HttpServerResponse> => {
  const failure = Cause.failureOption(cause)
  if (Option.isSome(failure)) {
    const error = failure.value
    if (ApiError.isApiError(error)) return Effect.succeed(envelopeResponse(error))
    if (ApiError.isConvertible(error)) return Effect.succeed(envelopeResponse(error[ApiError.ToApiError]()))
    if (error instanceof HttpApiDecodeError) {
      return Effect.succeed(
        envelopeResponse(new ApiError.Validation({ details: ApiContract.validationDetails(error) }))
      )
    }
    const refusedBody = bodyError(error)
    if (refusedBody !== undefined) return Effect.succeed(refusedBody)
    if (HttpServerError.isServerError(error) && error._tag === "RouteNotFound") {
      return Effect.succeed(envelopeResponse(new ApiError.NotFound({ message: "Route not found" })))
    }
    if (HttpServerRespondable.isRespondable(error)) {
      return Effect.map(
        HttpServerRespondable.toResponse(error),
        (response) => envelopeResponse(ApiError.fromStatus(response.status))
      )
    }
    return unexpected(fiber, cause)
  }
  const defect = Cause.dieOption(cause)
  if (Option.isSome(defect)) {
    const value = defect.value
    const refusedBody = bodyError(value)
    if (refusedBody !== undefined) return Effect.succeed(refusedBody)
    if (ApiError.isApiError(value)) return Effect.succeed(envelopeResponse(value))
    return unexpected(fiber, cause)
  }
  // Only interruption is left: the client went away (nobody to answer), the request ran out of time, or the server
  // is stopping.
  const interruptors = Cause.interruptors(cause)
  if (HashSet.has(interruptors, HttpServerError.clientAbortFiberId)) {
    return Effect.succeed(HttpServerResponse.empty({ status: 499 }))
  }
  if (HashSet.has(interruptors, requestTimeoutFiberId)) {
    return Effect.succeed(envelopeResponse(new ApiError.RequestTimeout()))
  }
  if (HashSet.has(interruptors, responseTimeoutFiberId)) {
    return Effect.succeed(envelopeResponse(new ApiError.ServiceUnavailable({ message: "The request took too long" })))
  }
  return Effect.succeed(envelopeResponse(new ApiError.ServiceUnavailable()))
}

const unexpected = (fiber: Fiber.RuntimeFiber<unknown, unknown>, cause: Cause.Cause<unknown>) => {
  Logging.logNow(fiber, LogLevel.Error, "Unhandled error while serving a request", cause)
  return Effect.succeed(envelopeResponse(new ApiError.Internal()))
}

// The connection stays open: Node discards the rest of the refused body, so the client reads the 413 instead of
// a reset from closing a socket with unread data.
const tooLarge = () => envelopeResponse(new ApiError.PayloadTooLarge())

/** Whether the request's `Content-Length` is over the request's `MaxBodySize`. */
const announcedTooLarge = (
  fiber: Fiber.RuntimeFiber<unknown, unknown>,
  request: HttpServerRequest.HttpServerRequest
) => {
  const max = Context.get(fiber.currentContext, HttpIncomingMessage.MaxBodySize)
  return Option.isSome(max) && Number(request.headers["content-length"] ?? 0) > Number(max.value)
}

/** Builds the pipeline as a middleware for the router (it must run inside routing to set response headers). */
export const make = (options: Options) => {
  const anyOrigin = options.corsOrigins.includes("*")
  const origins = new Set(options.corsOrigins)
  const isAllowedOrigin = (origin: string) => anyOrigin || origins.has(origin)
  // `*` never comes with credentials: echoing any origin with credentials would hand every site the user's session.
  const credentials = options.corsAllowCredentials && !anyOrigin

  const corsHeaders = (origin: string): Record<string, string> => {
    const headers: Record<string, string> = {
      "access-control-allow-origin": anyOrigin ? "*" : origin,
      "access-control-expose-headers": exposedHeaders,
      vary: "Origin"
    }
    if (credentials) headers["access-control-allow-credentials"] = "true"
    return headers
  }

  const corsHeaderList = (origin: string): ReadonlyArray<readonly [string, string]> =>
    Object.entries(corsHeaders(origin))

  const preflight = (origin: string, request: HttpServerRequest.HttpServerRequest) => {
    if (!isAllowedOrigin(origin)) {
      return envelopeResponse(new ApiError.Forbidden({ message: "Origin not allowed" }))
    }
    return HttpServerResponse.empty({
      status: 204,
      headers: {
        ...corsHeaders(origin),
        "access-control-allow-methods": allowedMethods,
        "access-control-allow-headers": request.headers["access-control-request-headers"] ?? allowedHeaders,
        "access-control-max-age": "600"
      }
    })
  }

  return <E, R>(app: App<E, R>): App<never, R | HttpServerRequest.HttpServerRequest> =>
    Effect.withFiberRuntime((fiber) => {
      const request = Context.unsafeGet(fiber.currentContext, HttpServerRequest.HttpServerRequest)
      // The core's adapter may have set it on this fiber already, as the fiber was made.
      const preset = request instanceof NodeServerRequest ? request.exchange.requestId : undefined
      const requestId = preset ?? RequestId.fromHeader(request.headers[RequestId.header])
      const started = performance.now()
      const origin = request.headers.origin
      const refused = refusal(request)

      const finish = (response: HttpServerResponse.HttpServerResponse) => {
        // One `setHeader` per header: `setHeaders` builds a record first, which costs more.
        let final = HttpServerResponse.setHeader(response, RequestId.header, requestId)
        if (origin !== undefined && isAllowedOrigin(origin)) {
          for (const [name, value] of corsHeaderList(origin)) final = HttpServerResponse.setHeader(final, name, value)
        }
        // After a request refused for its framing or its pace, the connection is not reused.
        if (options.isDraining() || final.status === 408 || refused !== undefined) {
          final = HttpServerResponse.setHeader(final, "connection", "close")
        }
        Logging.logNow(
          fiber,
          LogLevel.Info,
          Logging.fields("request", {
            method: request.method,
            path: loggedPath(request.url),
            status: final.status,
            duration_ms: Math.round((performance.now() - started) * 100) / 100
          })
        )
        return Effect.succeed(final)
      }

      let handled: App<never, R>
      if (refused !== undefined) {
        handled = Effect.suspend(() => finish(envelopeResponse(refused)))
      } else if (
        origin !== undefined && request.method === "OPTIONS" && request.headers["access-control-request-method"]
      ) {
        handled = Effect.suspend(() => finish(preflight(origin, request)))
      } else if (announcedTooLarge(fiber, request)) {
        handled = Effect.suspend(() => finish(tooLarge()))
      } else {
        handled = Effect.matchCauseEffect(app, {
          onSuccess: finish,
          onFailure: (cause) => Effect.flatMap(responseForCause(fiber, cause), finish)
        })
      }
      return preset === undefined
        ? Effect.zipRight(FiberRef.set(RequestId.currentRequestId, requestId), handled)
        : handled
    })
}
