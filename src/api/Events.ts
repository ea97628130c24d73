/**
 * `GET {prefix}/events`: the caller's Server-Sent Events stream, served straight off the router (a stream is no JSON
 * endpoint). Credentials by bearer header or `?ticket=`; resumes after `Last-Event-ID` (or `?last_event_id=`, for
 * clients that re-open the URL themselves), replaying what the event log holds first. Each event is one frame:
 * `id`, `event` and one line of JSON `data`. The stream ends at once when the instance starts draining, so clients
 * reconnect elsewhere and resume from their last id.
 */
import * as HttpLayerRouter from "@effect/platform/HttpLayerRouter"
import * as HttpServerRequest from "@effect/platform/HttpServerRequest"
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import { Chunk, Effect, Layer, Option, Stream } from "effect"
import { AppConfig } from "../core/app/AppConfig.js"
import * as PullBody from "../core/http/PullBody.js"
import * as EventFeed from "../core/realtime/EventFeed.js"
import { EventLog } from "../core/realtime/EventLog.js"
import { SseBus } from "../core/realtime/SseBus.js"
import * as Logging from "../core/runtime/Logging.js"
import * as UserSync from "../domain/UserSync.js"
import * as StreamAuth from "./StreamAuth.js"

/** How long an EventSource waits before reconnecting after the stream ends. */
const retryMillis = 1000

const encoder = new TextEncoder()

/** Written at once, so the headers reach the client before any event. */
const preamble = encoder.encode(`retry: ${retryMillis}\n: connected\n\n`)

/** An event's frame; ids are integers and data one line of JSON, so nothing in them can break the framing. */
const frame = (item: EventFeed.Item): string => {
  switch (item._tag) {
    case "Event":
      return `id: ${item.id}\nevent: ${item.type}\ndata: ${item.data}\n\n`
    case "Unlogged":
      return `event: ${item.type}\ndata: ${item.data}\n\n`
    case "Reset":
      return "event: reset\ndata: {\"reason\":\"cursor_expired\"}\n\n"
    case "Keepalive":
      return ": keepalive\n\n"
  }
}

/** A frame's bytes, made once per item: a live item is one object shared by every stream it goes to. */
const frames = new WeakMap<EventFeed.Item, Uint8Array>()
const frameBytes = (item: EventFeed.Item): Uint8Array => {
  let bytes = frames.get(item)
  if (bytes === undefined) {
    bytes = encoder.encode(frame(item))
    frames.set(item, bytes)
  }
  return bytes
}

/** One write per chunk of items: a burst costs one syscall, not one per event. */
const chunkBytes = (items: ReadonlyArray<EventFeed.Item>): Uint8Array =>
  items.length === 1 ? frameBytes(items[0]!) : Buffer.concat(items.map(frameBytes))

const eventId = /^\d{1,15}$/

/** A cursor, if well formed: a malformed one is no cursor (a 4xx would stop an EventSource from ever retrying). */
const parseCursor = (value: string | null | undefined): Option.Option<number> =>
  value !== null && value !== undefined && eventId.test(value.trim())
    ? Option.some(Number(value.trim()))
    : Option.none()

/** `Last-Event-ID`, or `?last_event_id=` when the header is absent or malformed. */
const cursorOf = (request: HttpServerRequest.HttpServerRequest): Option.Option<number> =>
  Option.orElse(parseCursor(request.headers["last-event-id"]), () => {
    const queryAt = request.url.indexOf("?")
    return queryAt === -1
      ? Option.none()
      : parseCursor(new URLSearchParams(request.url.slice(queryAt + 1)).get("last_event_id"))
  })

/** The response body: the preamble at once, then the frames (keepalives included) until the feed ends. */
export const body = <E, R>(frames: Stream.Stream<Uint8Array, E, R>): Stream.Stream<Uint8Array, E, R> =>
  Stream.concat(Stream.succeed(preamble), frames)

const preambleChunk = Chunk.of(preamble)

const endedByDatabase = (error: unknown) =>
  Effect.zipRight(
    Effect.logWarning(Logging.fields("Event stream ended by a database failure", { error: String(error) })),
    Effect.fail(Option.none())
  )

/**
 * `body` of the feed's frames, as one pull (the adapter runs it with no stream machinery per client): the preamble,
 * then a write per chunk of items; a database failure is logged and ends the stream. One step on the feed's result,
 * success or failure, so an idle stream's fiber holds one frame here.
 */
const bodyPull = (feed: EventFeed.Pull): PullBody.Pull<Uint8Array> => {
  let started = false
  const frames: PullBody.Pull<Uint8Array> = Effect.matchEffect(feed, {
    onSuccess: (items) => Effect.succeed(Chunk.of(chunkBytes(items))),
    onFailure: (error) => Option.isNone(error) ? Effect.fail(Option.none()) : endedByDatabase(error.value)
  })
  return Effect.suspend(() => {
    if (started) return frames
    started = true
    return Effect.succeed(preambleChunk)
  })
}

export const EventsRoutes = Layer.unwrapEffect(Effect.gen(function*() {
  const settings = yield* AppConfig
  const streamAuth = yield* StreamAuth.StreamAuth
  const bus = yield* SseBus
  const log = yield* EventLog
  // Services held here, not provided per stream; no timer or fiber per stream either: the bus sends keepalives and
  // ends the streams on drain, which keeps an idle stream's memory small.
  const openFeed = EventFeed.pullOpener(bus, log)

  const handler = Effect.gen(function*() {
    const request = yield* HttpServerRequest.HttpServerRequest
    const caller = yield* streamAuth.authenticate(request)
    const feed = yield* openFeed(caller.userId, { cursor: cursorOf(request) })
    return HttpServerResponse.stream(
      PullBody.stream(bodyPull(feed)),
      {
        contentType: "text/event-stream",
        headers: { "cache-control": "no-cache", "x-accel-buffering": "no" }
      }
    )
  })

  return HttpLayerRouter.add("GET", `${settings.core.apiPrefix}/events` as HttpLayerRouter.PathInput, handler)
})).pipe(Layer.provide(StreamAuth.layer), Layer.provide(UserSync.layer()))
