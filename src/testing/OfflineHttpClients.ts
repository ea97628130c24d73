/**
 * Offline HTTP clients: the core's `HttpClients` (default timeouts, request id forwarded) whose requests go to a
 * handler function instead of a socket. A request the handler does not answer fails as a connection failure would.
 */
import * as HttpClient from "@effect/platform/HttpClient"
import * as HttpClientError from "@effect/platform/HttpClientError"
import type * as HttpClientRequest from "@effect/platform/HttpClientRequest"
import * as HttpClientResponse from "@effect/platform/HttpClientResponse"
import { Effect, type Layer, Stream } from "effect"
import * as HttpClients from "../core/clients/HttpClients.js"

/**
 * Answers one request, as a web `Response`, in the requesting fiber (its `Clock`, its request id); `undefined` when
 * the request is not the handler's, which the client then sees as a failed connection.
 */
export type Handler = (request: Request) => Effect.Effect<Response> | undefined

/** A handler that answers nothing: every request fails as if the network were down. */
export const unreachable: Handler = () => undefined

/** `first`, then `second` for the requests `first` does not answer. */
export const orElse = (first: Handler, second: Handler): Handler => (request) => first(request) ?? second(request)

type WebBody = NonNullable<RequestInit["body"]>

/** The request's body as a web body (as the platform's fetch client sends it). */
const webBody = (request: HttpClientRequest.HttpClientRequest) => {
  const body = request.body
  switch (body._tag) {
    case "Raw":
    case "Uint8Array":
      return Effect.succeed(body.body as WebBody)
    case "FormData":
      return Effect.succeed(body.formData as WebBody)
    case "Stream":
      return Stream.toReadableStreamEffect(body.stream) as Effect.Effect<WebBody>
    case "Empty":
      return Effect.succeed(undefined)
  }
}

/** An `HttpClient` whose every request goes to `handler`. */
export const client = (handler: Handler): HttpClient.HttpClient =>
  HttpClient.make((request, url, signal) =>
    Effect.flatMap(webBody(request), (body) => {
      const web = new Request(url, {
        method: request.method,
        headers: request.headers,
        signal,
        ...(body === undefined ? {} : { body, duplex: "half" })
      } as RequestInit)
      const answer = handler(web)
      return answer === undefined
        ? Effect.fail(
          new HttpClientError.RequestError({
            request,
            reason: "Transport",
            description: `offline: nothing answers ${url.origin}${url.pathname}`
          })
        )
        : Effect.map(answer, (response) => HttpClientResponse.fromWeb(request, response))
    })
  )

/** The four shared clients on `handler` (limits as `HttpClients.layer` takes them: only the timeouts apply). */
export const layer = (handler: Handler, options: HttpClients.Options = {}): Layer.Layer<HttpClients.HttpClients> =>
  HttpClients.layerWithTransport(client(handler), options)
