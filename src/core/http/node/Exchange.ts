/**
 * The Node side of one exchange for `NodeHttpAdapter`: the `HttpServerRequest` it reads (the platform's class is
 * internal) and the writer of its response (the platform's `handleResponse`, ending small bodies at once).
 *
 * The request keeps the platform's field names (`source`, `response`), so `NodeHttpServerRequest.toIncomingMessage`
 * and `toServerResponse` work on it as on the platform's.
 */
import * as NodeMultipart from "@effect/platform-node/NodeMultipart"
import * as NodeStream from "@effect/platform-node/NodeStream"
import * as Cookies from "@effect/platform/Cookies"
import type * as FileSystem from "@effect/platform/FileSystem"
import type * as Headers from "@effect/platform/Headers"
import * as HttpIncomingMessage from "@effect/platform/HttpIncomingMessage"
import type { HttpMethod } from "@effect/platform/HttpMethod"
import * as HttpServerError from "@effect/platform/HttpServerError"
import * as HttpServerRequest from "@effect/platform/HttpServerRequest"
import type * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import type * as Multipart from "@effect/platform/Multipart"
import type * as Path from "@effect/platform/Path"
import type * as Socket from "@effect/platform/Socket"
import * as UrlParams from "@effect/platform/UrlParams"
import { Cause, Chunk, Context, Deferred, Effect, FiberId, Inspectable, Option, type Scope, Stream } from "effect"
import type * as Http from "node:http"
import { Readable } from "node:stream"
import { pipeline } from "node:stream/promises"
import type { ReadableStream as WebReadableStream } from "node:stream/web"
import * as JsonDepth from "../JsonDepth.js"
import * as PullBody from "../PullBody.js"

/** The failure of a body read past `MaxBodySize` (its message is the platform's reader's, for parity). */
export class BodyTooLarge extends Error {
  constructor(readonly maxBytes: number) {
    super("maxBytes exceeded")
    this.name = "BodyTooLarge"
  }
}

/**
 * Reads a request body up to `maxBytes`. Past it the read fails but the request is not destroyed, unlike the
 * platform's reader: the rest of the body is read and dropped as it arrives, so the client gets the 413 instead of a
 * reset connection (and the connection stays usable; Node's request timeout still bounds a client that never stops).
 */
const readBody = <E>(
  source: Http.IncomingMessage,
  maxBytes: number | undefined,
  onError: (cause: unknown) => E
): Effect.Effect<Buffer, E> =>
  Effect.async<Buffer, E>((resume) => {
    const chunks: Array<Buffer> = []
    let size = 0
    const onData = (chunk: Buffer) => {
      size += chunk.length
      if (maxBytes !== undefined && size > maxBytes) {
        cleanup()
        source.resume()
        resume(Effect.fail(onError(new BodyTooLarge(maxBytes))))
        return
      }
      chunks.push(chunk)
    }
    const onEnd = () => {
      cleanup()
      resume(Effect.succeed(chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, size)))
    }
    const onFailure = (error: Error) => {
      cleanup()
      resume(Effect.fail(onError(error)))
    }
    const cleanup = () => {
      source.off("data", onData)
      source.off("end", onEnd)
      source.off("error", onFailure)
    }
    source.on("data", onData)
    source.once("end", onEnd)
    source.once("error", onFailure)
    return Effect.sync(cleanup)
  })

/**
 * How deeply a JSON body may nest (none: no limit, as on the platform's server). Deeper bodies are refused before
 * they are parsed, so nothing downstream (schema decoding, error formatting, `JSON.stringify`) meets one.
 */
export class MaxJsonDepth extends Context.Reference<MaxJsonDepth>()("core/NodeHttpAdapter/MaxJsonDepth", {
  defaultValue: Option.none<number>
}) {}

/** The failure of a JSON body nested deeper than `MaxJsonDepth`. */
export class JsonTooDeep extends Error {
  constructor(readonly maxDepth: number) {
    super(`JSON nested deeper than ${maxDepth} levels`)
    this.name = "JsonTooDeep"
  }
}

/**
 * Runs `effect` once and shares its result with every later run, as `Effect.cached` does, without the
 * `Effect.runSync` that `Effect.cached` needs to hand back the cached effect.
 */
const once = <A, E, R>(effect: Effect.Effect<A, E, R>): Effect.Effect<A, E, R> => {
  let result: Deferred.Deferred<A, E> | undefined
  return Effect.suspend(() => {
    if (result !== undefined) return Deferred.await(result)
    const deferred = Deferred.unsafeMake<A, E>(FiberId.none)
    result = deferred
    return Effect.zipRight(Effect.intoDeferred(effect, deferred), Deferred.await(deferred))
  })
}

/** What a request and the copies `modify` makes of it share: one body, read at most once, and one response. */
interface Exchange {
  readonly source: Http.IncomingMessage
  readonly response: Http.ServerResponse | (() => Http.ServerResponse)
  readonly upgrade: Effect.Effect<Socket.Socket, HttpServerError.RequestError> | undefined
  body: Effect.Effect<Buffer, HttpServerError.RequestError> | undefined
  multipart:
    | Effect.Effect<Multipart.Persisted, Multipart.MultipartError, Scope.Scope | FileSystem.FileSystem | Path.Path>
    | undefined
  /** Set once a response has been written (or is being written), so nothing writes a second one. */
  handled: boolean
  /** The request's id, when the adapter set it on the request's fiber as the fiber was made (`Options.requestIds`). */
  requestId: string | undefined
}

/** A Node request as an `HttpServerRequest`; the copies `modify` makes share its body and its response. */
export class NodeServerRequest extends Inspectable.Class implements HttpServerRequest.HttpServerRequest {
  declare readonly [HttpServerRequest.TypeId]: HttpServerRequest.TypeId
  declare readonly [HttpIncomingMessage.TypeId]: HttpIncomingMessage.TypeId
  readonly exchange: Exchange
  readonly url: string
  private readonly headersOverride: Headers.Headers | undefined
  private readonly remoteAddressOverride: string | undefined
  private cachedCookies: Record<string, string> | undefined

  constructor(
    exchange: Exchange,
    url: string,
    headersOverride?: Headers.Headers,
    remoteAddressOverride?: string
  ) {
    super()
    this.exchange = exchange
    this.url = url
    this.headersOverride = headersOverride
    this.remoteAddressOverride = remoteAddressOverride
  }

  static make(
    source: Http.IncomingMessage,
    response: Http.ServerResponse | (() => Http.ServerResponse),
    upgrade?: Effect.Effect<Socket.Socket, HttpServerError.RequestError>
  ): NodeServerRequest {
    return new NodeServerRequest(
      { source, response, upgrade, body: undefined, multipart: undefined, handled: false, requestId: undefined },
      source.url!
    )
  }

  get source(): Http.IncomingMessage {
    return this.exchange.source
  }

  get response(): Http.ServerResponse | (() => Http.ServerResponse) {
    return this.exchange.response
  }

  get resolvedResponse(): Http.ServerResponse {
    const response = this.exchange.response
    return typeof response === "function" ? response() : response
  }

  get originalUrl(): string {
    return this.exchange.source.url!
  }

  // Node's parser only accepts upper-case methods, so there is nothing to normalise.
  get method(): HttpMethod {
    return this.exchange.source.method as HttpMethod
  }

  get headers(): Headers.Headers {
    return this.headersOverride ?? (this.exchange.source.headers as Headers.Headers)
  }

  get cookies(): Record<string, string> {
    return this.cachedCookies ??= Cookies.parseHeader(this.headers.cookie ?? "")
  }

  get remoteAddress(): Option.Option<string> {
    return Option.fromNullable(this.remoteAddressOverride ?? this.exchange.source.socket.remoteAddress)
  }

  modify(options: {
    readonly url?: string | undefined
    readonly headers?: Headers.Headers | undefined
    readonly remoteAddress?: string | undefined
  }): NodeServerRequest {
    return new NodeServerRequest(
      this.exchange,
      options.url ?? this.url,
      options.headers ?? this.headersOverride,
      options.remoteAddress ?? this.remoteAddressOverride
    )
  }

  // Built on use only: most requests never read their body.
  private get onError() {
    return (cause: unknown) => new HttpServerError.RequestError({ request: this, reason: "Decode", cause })
  }

  private get body(): Effect.Effect<Buffer, HttpServerError.RequestError> {
    return this.exchange.body ??= once(
      Effect.flatMap(
        HttpIncomingMessage.MaxBodySize,
        (maxBodySize) =>
          readBody(this.exchange.source, Option.getOrUndefined(Option.map(maxBodySize, Number)), this.onError)
      )
    )
  }

  get text(): Effect.Effect<string, HttpServerError.RequestError> {
    return Effect.map(this.body, (bytes) => bytes.toString("utf8"))
  }

  get json(): Effect.Effect<unknown, HttpServerError.RequestError> {
    return Effect.flatMap(MaxJsonDepth, (maxDepth) =>
      Effect.tryMap(this.text, {
        try: (text) => {
          if (text === "") return null
          if (maxDepth._tag === "Some" && JsonDepth.textExceeds(text, maxDepth.value)) {
            throw new JsonTooDeep(maxDepth.value)
          }
          return JSON.parse(text) as unknown
        },
        catch: this.onError
      }))
  }

  get urlParamsBody(): Effect.Effect<UrlParams.UrlParams, HttpServerError.RequestError> {
    return Effect.flatMap(this.text, (text) =>
      Effect.try({
        try: () => UrlParams.fromInput(new URLSearchParams(text)),
        catch: this.onError
      }))
  }

  get arrayBuffer(): Effect.Effect<ArrayBuffer, HttpServerError.RequestError> {
    // The bytes may sit in Node's shared buffer pool: copy out exactly this body's.
    return Effect.map(
      this.body,
      (bytes) => bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) as ArrayBuffer
    )
  }

  get stream(): Stream.Stream<Uint8Array, HttpServerError.RequestError> {
    return NodeStream.fromReadable<HttpServerError.RequestError, Uint8Array>(() => this.exchange.source, this.onError)
  }

  get multipart(): Effect.Effect<
    Multipart.Persisted,
    Multipart.MultipartError,
    Scope.Scope | FileSystem.FileSystem | Path.Path
  > {
    const source = this.exchange.source
    return this.exchange.multipart ??= once(NodeMultipart.persisted(source, source.headers))
  }

  get multipartStream(): Stream.Stream<Multipart.Part, Multipart.MultipartError> {
    const source = this.exchange.source
    return NodeMultipart.stream(source, source.headers)
  }

  get upgrade(): Effect.Effect<Socket.Socket, HttpServerError.RequestError> {
    return this.exchange.upgrade ?? Effect.fail(
      new HttpServerError.RequestError({
        request: this,
        reason: "Decode",
        description: "not an upgradeable ServerRequest"
      })
    )
  }

  override toString(): string {
    return `ServerRequest(${this.method} ${this.url})`
  }

  toJSON(): unknown {
    return HttpIncomingMessage.inspect(this, {
      _id: "@effect/platform/HttpServerRequest",
      method: this.method,
      url: this.originalUrl
    })
  }
}

// On the prototype rather than on each instance: a request is built for every hit.
Object.defineProperty(NodeServerRequest.prototype, HttpServerRequest.TypeId, { value: HttpServerRequest.TypeId })
Object.defineProperty(NodeServerRequest.prototype, HttpIncomingMessage.TypeId, { value: HttpIncomingMessage.TypeId })

// The response ----------------------------------------------------------------------------------------------------

/** Bodies up to this size are ended synchronously: Node takes them at once, nothing is left to wait for. */
const syncBodyLimit = 64 * 1024

const isSmall = (body: unknown): body is string | Uint8Array =>
  (typeof body === "string" || body instanceof Uint8Array) && body.length <= syncBodyLimit

const endAsync = (nodeResponse: Http.ServerResponse, body?: unknown) =>
  Effect.async<void>((resume) => {
    nodeResponse.end(body, () => resume(Effect.void))
  })

/**
 * Writes `response` (the platform's `handleResponse`). Returns `undefined` when it is all written already, or the
 * effect that finishes writing it.
 */
export const writeResponse = (
  request: NodeServerRequest,
  response: HttpServerResponse.HttpServerResponse
): Effect.Effect<void, HttpServerError.ResponseError> | undefined => {
  request.exchange.handled = true
  const nodeResponse = request.resolvedResponse
  if (nodeResponse.writableEnded) return undefined

  let headers: Record<string, string | Array<string>> = response.headers
  if (!Cookies.isEmpty(response.cookies)) {
    headers = { ...headers }
    const toSet = Cookies.toSetCookieHeaders(response.cookies)
    if (headers["set-cookie"] !== undefined) toSet.push(headers["set-cookie"] as string)
    headers["set-cookie"] = toSet
  }

  if (request.method === "HEAD") {
    nodeResponse.writeHead(response.status, headers)
    nodeResponse.end()
    return undefined
  }
  const body = response.body
  switch (body._tag) {
    case "Empty": {
      nodeResponse.writeHead(response.status, headers)
      nodeResponse.end()
      return undefined
    }
    case "Uint8Array":
    case "Raw": {
      nodeResponse.writeHead(response.status, headers)
      const content: unknown = body.body
      if (
        body._tag === "Raw" && typeof content === "object" && content !== null && "pipe" in content &&
        typeof content.pipe === "function"
      ) {
        return Effect.tryPromise({
          try: (signal) => pipeline(content as Readable, nodeResponse, { signal, end: true }),
          catch: (cause) => new HttpServerError.ResponseError({ request, response, reason: "Decode", cause })
        }).pipe(Effect.interruptible, Effect.tapErrorCause(endAfterFailure(nodeResponse, response)))
      }
      if (isSmall(content)) {
        nodeResponse.end(content)
        return undefined
      }
      return endAsync(nodeResponse, content)
    }
    case "FormData": {
      const web = new Response(body.formData)
      nodeResponse.writeHead(response.status, { ...headers, ...Object.fromEntries(web.headers) })
      return Effect.async<void, HttpServerError.ResponseError>((resume, signal) => {
        Readable.fromWeb(web.body as WebReadableStream, { signal })
          .pipe(nodeResponse)
          .on(
            "error",
            (cause) =>
              resume(Effect.fail(new HttpServerError.ResponseError({ request, response, reason: "Decode", cause })))
          )
          .once("finish", () => resume(Effect.void))
      }).pipe(Effect.interruptible, Effect.tapErrorCause(endAfterFailure(nodeResponse, response)))
    }
    case "Stream": {
      nodeResponse.writeHead(response.status, headers)
      flattenHead(nodeResponse)
      // Made on the first full socket buffer only: most streams (an idle SSE stream) never meet one.
      let drained: Effect.Latch | undefined
      const awaitDrain = () => {
        if (drained === undefined) {
          const latch = Effect.unsafeMakeLatch()
          nodeResponse.on("drain", () => latch.unsafeOpen())
          drained = latch
        }
        drained.unsafeClose()
        return drained.await
      }
      const writeChunk = (chunk: Chunk.Chunk<Uint8Array>): Effect.Effect<void> => {
        const parts = Chunk.toReadonlyArray(chunk)
        let needDrain = false
        for (const part of parts) needDrain = !nodeResponse.write(part)
        return needDrain ? awaitDrain() : Effect.void
      }
      const pull = PullBody.pullOf(body.stream)
      const pumped = pull === undefined
        ? Stream.runForEachChunk(Stream.orDie(body.stream), writeChunk)
        : pump(pull, writeChunk)
      return pumped.pipe(
        Effect.interruptible,
        Effect.matchCauseEffect({
          onSuccess: () => Effect.sync(() => void nodeResponse.end()),
          onFailure: endAfterFailure(nodeResponse, response)
        })
      )
    }
  }
}

/**
 * Node keeps a response's head (`_header`) for the response's life, as it built it: one string appended to per header
 * line, a tree of 20 to 30 joined strings (about 900 bytes). V8 flattens a string a regular expression reads, in
 * place, into one run of bytes (about 300): what a long-lived stream holds is then the head's text alone. `_header`
 * is Node's own field: if it ever goes, this does nothing.
 */
const flattenHead = (nodeResponse: Http.ServerResponse): void => {
  const head: unknown = (nodeResponse as { readonly _header?: unknown })._header
  if (typeof head === "string") lineBreak.test(head)
}
const lineBreak = /\n/

/**
 * `Stream.runForEachChunk(Stream.orDie(Stream.repeatEffectChunkOption(pull)), write)` without the stream: the pull
 * and the write in turn, in this fiber, until the pull ends (`None`) or fails (a defect, as `Stream.orDie` makes it).
 */
const pump = <E>(
  pull: PullBody.Pull<Uint8Array, E>,
  write: (chunk: Chunk.Chunk<Uint8Array>) => Effect.Effect<void>
): Effect.Effect<void> => {
  const loop: Effect.Effect<void, Option.Option<E>> = Effect.flatMap(pull, (chunk) => {
    const written = write(chunk)
    return written === Effect.void ? loop : Effect.zipRight(written, loop)
  })
  return Effect.catchAll(loop, (error) => Option.isNone(error) ? Effect.void : Effect.die(error.value))
}

/** A body failed mid-way: end the response (with the error status if nothing was sent) and fail as the platform does. */
const endAfterFailure =
  (nodeResponse: Http.ServerResponse, original: HttpServerResponse.HttpServerResponse) => <E>(cause: Cause.Cause<E>) =>
    Effect.flatMap(HttpServerError.causeResponse(cause), ([response, rest]) => {
      const headersSent = nodeResponse.headersSent
      if (!headersSent) nodeResponse.writeHead(response.status)
      if (!nodeResponse.writableEnded) nodeResponse.end()
      return Effect.failCause(headersSent ? Cause.sequential(cause, Cause.die(original)) : rest)
    })
