/**
 * The WebSocket routes: `GET {prefix}/ws/jobs/{id}` (a job's snapshot, each step after it, its end, then close 1000)
 * and `GET {prefix}/ws/notifications` (the caller's events with replay, as the SSE stream). Credentials, ownership
 * and capacity are checked before the upgrade: a refused upgrade is an ordinary response with the error envelope,
 * and no socket is opened. The sockets are the `WebSocketHub`'s: heartbeat, the cap on unsent data, close on drain.
 */
import * as HttpLayerRouter from "@effect/platform/HttpLayerRouter"
import * as HttpRouter from "@effect/platform/HttpRouter"
import * as HttpServerRequest from "@effect/platform/HttpServerRequest"
import { type Context, Duration, Effect, Exit, Layer, Option, Schema, Scope, Stream } from "effect"
import { AppConfig } from "../core/app/AppConfig.js"
import * as ApiError from "../core/errors/ApiError.js"
import { JobEvent, Jobs } from "../core/jobs/Jobs.js"
import * as EventFeed from "../core/realtime/EventFeed.js"
import type { EventLog } from "../core/realtime/EventLog.js"
import type { SseBus } from "../core/realtime/SseBus.js"
import { CloseCode, type Connection, WebSocketHub } from "../core/realtime/WebSocketHub.js"
import * as WebSocketUpgrade from "../core/realtime/WebSocketUpgrade.js"
import { Lifecycle } from "../core/runtime/Lifecycle.js"
import { JobNotFound } from "../domain/DomainErrors.js"
import { ownJob } from "./Jobs.js"
import { JobView, toView } from "./JobsGroup.js"
import { StreamAuth } from "./StreamAuth.js"

const encodeView = Schema.encodeSync(JobView)

// Job watchers ----------------------------------------------------------------------------------------------------

interface Progress {
  readonly type: "job.progress"
  readonly job_id: string
  readonly step: number
  readonly steps: number
}

type JobMessage =
  | Progress
  | { readonly type: "job.completed"; readonly job_id: string; readonly job: typeof JobView.Encoded }
  | { readonly type: "job.failed"; readonly job_id: string; readonly error: string }

/**
 * One watcher's view of a job: messages that arrive before the snapshot is sent wait for it; after it, each step
 * is sent once and in order (steps the backplane did not bring, such as one recorded by a worker that died before
 * publishing it, are filled in), then the end, then close 1000.
 */
const makeWatcher = (jobId: string, reread: Effect.Effect<Option.Option<JobView>>) => {
  let connection: Connection | undefined
  let sentStep: number | undefined
  let steps = 0
  let finished = false
  let waiting: Array<JobMessage> = []

  const progressUpTo = (step: number) => {
    if (sentStep === undefined || connection === undefined) return
    for (let next = sentStep + 1; next <= step; next++) {
      const message: Progress = { type: "job.progress", job_id: jobId, step: next, steps }
      if (!connection.send(JSON.stringify(message))) return
    }
    sentStep = Math.max(sentStep, step)
  }
  const end = (message: JobMessage, finalStep: number) => {
    if (connection === undefined || finished) return
    progressUpTo(finalStep)
    finished = true
    if (connection.send(JSON.stringify(message))) connection.close(CloseCode.normal)
  }
  const endFromRow = (view: JobView) =>
    view.status === "completed"
      ? end({ type: "job.completed", job_id: jobId, job: encodeView(view) }, view.step)
      : view.status === "failed"
      ? end({ type: "job.failed", job_id: jobId, error: view.error ?? "Failed" }, view.step)
      : progressUpTo(view.step)

  const handle = (message: JobMessage) => {
    if (finished) return
    switch (message.type) {
      case "job.progress":
        return progressUpTo(message.step)
      case "job.completed":
        return end(message, message.job.step)
      case "job.failed":
        // The failure does not say which step the job reached: the row does.
        return void Effect.runFork(Effect.flatMap(
          reread,
          (view) =>
            Effect.sync(() =>
              Option.match(view, {
                onNone: () => end(message, sentStep ?? 0),
                onSome: (view) => end(message, view.step)
              })
            )
        ))
    }
  }

  return {
    onMessage: (text: string, conn: Connection) => {
      connection = conn
      const message = JSON.parse(text) as JobMessage
      if (sentStep === undefined) waiting.push(message)
      else handle(message)
    },
    onResync: () =>
      void Effect.runFork(Effect.flatMap(reread, (view) => Effect.sync(() => Option.map(view, endFromRow)))),
    /** Sends the snapshot, then what waited for it. */
    start: (conn: Connection, snapshot: JobView) => {
      connection = conn
      steps = snapshot.steps
      if (!conn.send(JSON.stringify({ type: "job.snapshot", job: encodeView(snapshot) }))) return
      sentStep = snapshot.step
      if (snapshot.status === "completed" || snapshot.status === "failed") return endFromRow(snapshot)
      const early = waiting
      waiting = []
      for (const message of early) handle(message)
    }
  }
}

/** What the job's watchers are told of each step and end, on every instance (the workers' `publish`). */
export const publishJobEvent = (hub: WebSocketHub["Type"]) => (event: JobEvent): Effect.Effect<void> =>
  Option.match(toView(event.job), {
    onNone: () => Effect.void,
    onSome: (view) =>
      JobEvent.$match(event, {
        Progress: () =>
          hub.sendToJob(view.id, { type: "job.progress", job_id: view.id, step: view.step, steps: view.steps }),
        Completed: () => hub.broadcastJobCompletion(view.id, encodeView(view)),
        Failed: () => hub.broadcastJobError(view.id, view.error ?? "Failed")
      })
  })

interface Services {
  readonly streamAuth: StreamAuth["Type"]
  readonly jobs: Jobs["Type"]
  readonly hub: WebSocketHub["Type"]
  readonly maxBufferedBytes: number
  readonly isDraining: () => boolean
  readonly feedContext: Context.Context<SseBus | EventLog>
}

const jobSocket = ({ hub, jobs, streamAuth }: Services) =>
  Effect.gen(function*() {
    const request = yield* HttpServerRequest.HttpServerRequest
    yield* WebSocketUpgrade.requireUpgrade(request)
    const { params } = yield* HttpRouter.RouteContext
    const jobId = params.id ?? ""
    const caller = yield* streamAuth.authenticate(request)
    const read = ownJob(jobs, caller.userId, jobId)
    // Refused before the upgrade: another user's job, or none, is 404 like the JSON route's.
    yield* read.pipe(ApiError.declared(JobNotFound, ApiError.ServiceUnavailable, ApiError.DbPoolExhausted))
    return yield* WebSocketUpgrade.serve(request, (socket) =>
      Effect.gen(function*() {
        const watcher = makeWatcher(jobId, Effect.option(read))
        // Subscribed before the snapshot is read: no step between the two is missed.
        const connection = yield* hub.connect(socket, {
          keys: { kind: "job", jobId, userId: caller.userId },
          onMessage: watcher.onMessage,
          onResync: watcher.onResync
        })
        const snapshot = yield* read
        watcher.start(connection, snapshot)
      }))
  })

// Notifications ---------------------------------------------------------------------------------------------------

/** `last_event_id` from the query (or the `Last-Event-ID` header), leniently: anything malformed is absent. */
const cursorOf = (request: HttpServerRequest.HttpServerRequest): Option.Option<number> => {
  const queryAt = request.url.indexOf("?")
  const fromQuery = queryAt === -1 ? null : new URLSearchParams(request.url.slice(queryAt + 1)).get("last_event_id")
  const raw = fromQuery ?? request.headers["last-event-id"]
  if (raw === undefined || !/^\d{1,15}$/.test(raw)) return Option.none()
  return Option.some(Number(raw))
}

/** Unsent bytes past which the feed waits before sending more: replay goes as fast as the client reads. */
const feedBackpressure = (maxBufferedBytes: number) => Math.max(1024, Math.floor(maxBufferedBytes / 2))

/** The frame of a feed item; none for a keepalive (the hub's pings keep sockets alive). */
const frameOf = (item: EventFeed.Item): string | undefined =>
  item._tag === "Event"
    ? `{"type":${JSON.stringify(item.type)},"id":${item.id},"data":${item.data}}`
    : item._tag === "Unlogged"
    ? `{"type":${JSON.stringify(item.type)},"data":${item.data}}`
    : item._tag === "Reset"
    ? `{"type":"reset"}`
    : undefined

const notificationsSocket = ({ feedContext, hub, isDraining, maxBufferedBytes, streamAuth }: Services) =>
  Effect.gen(function*() {
    const request = yield* HttpServerRequest.HttpServerRequest
    yield* WebSocketUpgrade.requireUpgrade(request)
    const caller = yield* streamAuth.authenticate(request)
    const highWater = feedBackpressure(maxBufferedBytes)
    // The feed is opened before the upgrade, so a full instance answers 503 instead of opening a socket; it lives in
    // a scope of its own, closed with the socket (or at once if the socket never opens).
    const feedScope = yield* Scope.make()
    const feed = yield* EventFeed.open(caller.userId, { cursor: cursorOf(request) }).pipe(
      Effect.provide(feedContext),
      Scope.extend(feedScope),
      ApiError.declared(ApiError.ServiceUnavailable, ApiError.DbPoolExhausted),
      Effect.onError(() => Scope.close(feedScope, Exit.void))
    )
    return yield* WebSocketUpgrade.serve(request, (socket) =>
      Effect.gen(function*() {
        yield* Scope.addFinalizer(yield* Effect.scope, Scope.close(feedScope, Exit.void))
        const connection = yield* hub.connect(socket, { keys: { kind: "user", userId: caller.userId } })
        const waitForRoom = Effect.repeat(Effect.sleep(Duration.millis(5)), {
          until: () => connection.bufferedAmount() <= highWater || !connection.isOpen()
        })
        yield* Effect.forkScoped(
          feed.pipe(
            Stream.mapEffect((item) =>
              Effect.zipRight(
                connection.bufferedAmount() > highWater ? waitForRoom : Effect.void,
                Effect.sync(() => {
                  const frame = frameOf(item)
                  return frame === undefined || connection.send(frame)
                })
              )
            ),
            Stream.takeWhile((sent) => sent),
            Stream.runDrain,
            Effect.ensuring(Effect.sync(() => {
              // The feed ended: on drain, going away; otherwise its queue overflowed or the log could not be read.
              // Either way the client reconnects (elsewhere, on drain) and resumes from its last id.
              if (!connection.isOpen()) return
              if (isDraining()) connection.close(CloseCode.goingAway, "Server shutting down")
              else connection.close(CloseCode.tryAgainLater, "Reconnect and resume")
            })),
            Effect.catchAllCause((cause) => Effect.logWarning("Notifications feed ended", cause))
          )
        )
      })).pipe(Effect.onError(() => Scope.close(feedScope, Exit.void)))
  })

/** The WebSocket routes under the API prefix; none when `FEATURE_WEBSOCKETS_ENABLED` is off. */
export const WebSocketRoutes = Layer.unwrapEffect(Effect.gen(function*() {
  const settings = yield* AppConfig
  if (!settings.features.websocketsEnabled) return Layer.empty
  const services: Services = {
    streamAuth: yield* StreamAuth,
    jobs: yield* Jobs,
    hub: yield* WebSocketHub,
    maxBufferedBytes: settings.websocket.maxBufferedBytes,
    isDraining: (yield* Lifecycle).isDraining,
    feedContext: yield* Effect.context<SseBus | EventLog>()
  }
  const prefix = settings.core.apiPrefix
  return HttpLayerRouter.addAll([
    HttpLayerRouter.route("GET", `${prefix}/ws/jobs/:id` as HttpRouter.PathInput, jobSocket(services)),
    HttpLayerRouter.route("GET", `${prefix}/ws/notifications` as HttpRouter.PathInput, notificationsSocket(services))
  ])
}))
