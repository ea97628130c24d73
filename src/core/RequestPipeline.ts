/**
 * What every request goes through: its request id, CORS, the body-size limit, the error envelope and one access
 * log line. One middleware rather than four, because each middleware step costs fiber work on every request.
 */
import * as HttpServerError from "@effect/platform/HttpServerError"
import * as HttpServerRequest from "@effect/platform/HttpServerRequest"
import * as HttpServerRespondable from "@effect/platform/HttpServerRespondable"
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import { HttpApiDecodeError } from "@effect/platform/HttpApiError"
import { Cause, Context, Effect, type Fiber, FiberRef, HashSet, LogLevel, Option } from "effect"
import * as ApiContract from "./ApiContract.js"
import * as ApiError from "./ApiError.js"
import * as Logging from "./Logging.js"
import * as RequestId from "./RequestId.js"

export interface Options {
  readonly corsOrigins: ReadonlyArray<string>
  readonly corsAllowCredentials: boolean
  readonly maxBodyBytes: number
  /** True once shutdown has begun: responses then ask the client to close the connection. */
  readonly isDraining: () => boolean
}

const allowedMethods = "GET, POST, PUT, PATCH, DELETE, OPTIONS"
const allowedHeaders = "authorization, content-type, x-request-id, last-event-id"
const exposedHeaders = "x-request-id, retry-after, www-authenticate"

type App<E, R> = Effect.Effect<HttpServerResponse.HttpServerResponse, E, R>

const envelopeResponse = (error: ApiError.ApiError): HttpServerResponse.HttpServerResponse => {
  const { body, headers, status } = ApiError.render(error)
  return HttpServerResponse.unsafeJson(body, { status, headers })
}

const isBodyTooLarge = (defect: unknown): boolean =>
  HttpServerError.isServerError(defect) && defect._tag === "RequestError" &&
  (defect.cause as Error | undefined)?.message === "maxBytes exceeded"

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
      return Effect.succeed(envelopeResponse(new ApiError.Validation({ details: ApiContract.validationDetails(error) })))
    }
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
    if (isBodyTooLarge(value)) return Effect.succeed(tooLarge())
    if (HttpServerError.isServerError(value) && value._tag === "RequestError" && value.reason === "Decode") {
      return Effect.succeed(envelopeResponse(new ApiError.BadRequest({ message: "Malformed request body" })))
    }
    if (ApiError.isApiError(value)) return Effect.succeed(envelopeResponse(value))
    return unexpected(fiber, cause)
  }
  // Only interruption is left: the client went away (nobody to answer) or the server is stopping.
  const clientGone = HashSet.has(Cause.interruptors(cause), HttpServerError.clientAbortFiberId)
  return Effect.succeed(
    clientGone ? HttpServerResponse.empty({ status: 499 }) : envelopeResponse(new ApiError.ServiceUnavailable())
  )
}

const unexpected = (fiber: Fiber.RuntimeFiber<unknown, unknown>, cause: Cause.Cause<unknown>) => {
  Logging.logNow(fiber, LogLevel.Error, "Unhandled error while serving a request", cause)
  return Effect.succeed(envelopeResponse(new ApiError.Internal()))
}

// The connection stays open: Node discards the rest of the refused body, so the client reads the 413 instead of
// a reset from closing a socket with unread data.
const tooLarge = () => envelopeResponse(new ApiError.PayloadTooLarge())

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

  const corsHeaderList = (origin: string): ReadonlyArray<readonly [string, string]> => Object.entries(corsHeaders(origin))

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
      const requestId = RequestId.fromHeader(request.headers[RequestId.header])
      const started = performance.now()
      const origin = request.headers.origin

      const finish = (response: HttpServerResponse.HttpServerResponse) => {
        // One `setHeader` per header: `setHeaders` builds a record first and costs several times as much.
        let final = HttpServerResponse.setHeader(response, RequestId.header, requestId)
        if (origin !== undefined && isAllowedOrigin(origin)) {
          for (const [name, value] of corsHeaderList(origin)) final = HttpServerResponse.setHeader(final, name, value)
        }
        if (options.isDraining()) final = HttpServerResponse.setHeader(final, "connection", "close")
        const queryAt = request.url.indexOf("?")
        Logging.logNow(
          fiber,
          LogLevel.Info,
          Logging.fields("request", {
            method: request.method,
            // Never the query string: it may carry a stream ticket.
            path: queryAt === -1 ? request.url : request.url.slice(0, queryAt),
            status: final.status,
            duration_ms: Math.round((performance.now() - started) * 100) / 100
          })
        )
        return Effect.succeed(final)
      }

      let handled: App<never, R>
      if (origin !== undefined && request.method === "OPTIONS" && request.headers["access-control-request-method"]) {
        handled = Effect.suspend(() => finish(preflight(origin, request)))
      } else if (Number(request.headers["content-length"] ?? 0) > options.maxBodyBytes) {
        handled = Effect.suspend(() => finish(tooLarge()))
      } else {
        handled = Effect.matchCauseEffect(app, {
          onSuccess: finish,
          onFailure: (cause) => Effect.flatMap(responseForCause(fiber, cause), finish)
        })
      }
      return Effect.zipRight(FiberRef.set(RequestId.currentRequestId, requestId), handled)
    })
}
