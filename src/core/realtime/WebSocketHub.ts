/**
 * `WebSocketHub`: the open WebSockets of this instance by job id and by user id, and messages to them from any
 * instance through the backplane (`sendToJob`, `sendToUser`, `broadcastJobCompletion`, `broadcastJobError`).
 * It keeps them healthy: a socket whose send fails is dropped; a ping every `pingInterval`, and a socket that has not
 * answered the last one by the next is terminated; a socket whose unsent data would pass `maxBufferedBytes` is
 * closed with 1013 (the client reconnects and resumes) rather than buffered without bound; on drain every socket is
 * closed with 1001 at once.
 *
 *   const connection = yield* hub.connect(ws, { kind: "user", userId })   // for the scope
 *   yield* hub.sendToUser(userId, { type: "hello" })                    // on every instance
 */
import { Context, type Duration, Effect, Exit, Fiber, Layer, Runtime, Scope } from "effect"
import type { WebSocket } from "ws"
import { Lifecycle } from "../runtime/Lifecycle.js"
import { Backplane } from "./Backplane.js"
import type { WebSocketSettings } from "./WebSocketSettings.js"

/** Close codes: normal, going away (shutdown), try again later (too slow a reader). */
export const CloseCode = { normal: 1000, goingAway: 1001, tryAgainLater: 1013 } as const

/** Whom a socket listens for: one job's messages, or one user's. */
export type Keys =
  | { readonly kind: "job"; readonly jobId: string; readonly userId: string }
  | { readonly kind: "user"; readonly userId: string }

/** One registered socket. */
export interface Connection {
  /** Sends `text` now. False when the socket is gone, or was just closed for holding too much unsent data. */
  readonly send: (text: string) => boolean
  /** Closes the socket (1000 unless told otherwise); nothing more is sent. */
  readonly close: (code?: number, reason?: string) => void
  /** Unsent bytes queued on the socket. */
  readonly bufferedAmount: () => number
  readonly isOpen: () => boolean
}

export interface Registration {
  readonly keys: Keys
  /** What to do with each message for its job or user (default: send it as is). Must not block. */
  readonly onMessage?: ((text: string, connection: Connection) => void) | undefined
  /** The backplane may have lost messages meanwhile (Redis came back): catch up from where the truth is kept. */
  readonly onResync?: ((connection: Connection) => void) | undefined
}

export interface Stats {
  readonly sockets: number
  readonly jobs: number
  readonly users: number
}

export interface Service {
  /**
   * Registers an open socket for the scope, listening for its job's or user's messages (in place, on every
   * instance, once this completes). When the scope closes it is unregistered, and closed (1001) if still open.
   */
  readonly connect: (socket: WebSocket, registration: Registration) => Effect.Effect<Connection, never, Scope.Scope>
  /** `message` (JSON-encoded) to every socket of the job, on every instance. */
  readonly sendToJob: (jobId: string, message: unknown) => Effect.Effect<void>
  /** `message` (JSON-encoded) to every socket of the user, on every instance. */
  readonly sendToUser: (userId: string, message: unknown) => Effect.Effect<void>
  /** `{"type":"job.completed","job_id","job"}` to the job's sockets. */
  readonly broadcastJobCompletion: (jobId: string, job: unknown) => Effect.Effect<void>
  /** `{"type":"job.failed","job_id","error"}` to the job's sockets. */
  readonly broadcastJobError: (jobId: string, error: string) => Effect.Effect<void>
  /** This instance's sockets. */
  readonly stats: () => Stats
}

export class WebSocketHub extends Context.Tag("core/WebSocketHub")<WebSocketHub, Service>() {}

export interface Options {
  readonly pingInterval: Duration.DurationInput
  readonly maxBufferedBytes: number
}

export const jobTopic = (jobId: string): string => `ws:job:${jobId}`
export const userTopic = (userId: string): string => `ws:user:${userId}`

const OPEN = 1

interface Entry {
  readonly socket: WebSocket
  readonly connection: Connection
  readonly topic: string
  readonly deliver: (text: string) => void
  readonly resync: () => void
  alive: boolean
}

/** A job's or a user's sockets on this instance, and the one backplane subscription they share. */
interface Topic {
  readonly entries: Set<Entry>
  readonly scope: Scope.CloseableScope
  /** Completes once the subscription is in place. */
  readonly subscribed: Effect.Effect<void>
}

export const make = (options: Options): Effect.Effect<Service, never, Backplane | Lifecycle | Scope.Scope> =>
  Effect.gen(function*() {
    const backplane = yield* Backplane
    const lifecycle = yield* Lifecycle
    const runFork = Runtime.runFork(yield* Effect.runtime<never>())
    const entries = new Set<Entry>()
    const topics = new Map<string, Topic>()
    const maxBuffered = options.maxBufferedBytes

    /** Adds the entry to its topic, subscribing the topic on the backplane for its first socket here. */
    const join = (entry: Entry): Effect.Effect<void> =>
      Effect.suspend(() => {
        let topic = topics.get(entry.topic)
        if (topic === undefined) {
          const scope = Effect.runSync(Scope.make())
          const members = new Set<Entry>()
          const fiber = runFork(
            backplane.subscribe(entry.topic, {
              onMessage: (text) => {
                for (const member of members) member.deliver(text)
              },
              onResync: () => {
                for (const member of members) member.resync()
              }
            }).pipe(Scope.extend(scope))
          )
          topic = { entries: members, scope, subscribed: Fiber.join(fiber) }
          topics.set(entry.topic, topic)
        }
        topic.entries.add(entry)
        return topic.subscribed
      })

    const unregister = (entry: Entry) => {
      if (!entries.delete(entry)) return
      const topic = topics.get(entry.topic)
      if (topic === undefined) return
      topic.entries.delete(entry)
      if (topic.entries.size > 0) return
      topics.delete(entry.topic)
      runFork(Scope.close(topic.scope, Exit.void))
    }

    const connect = (socket: WebSocket, registration: Registration) =>
      Effect.gen(function*() {
        let closing = false
        const close = (code: number = CloseCode.normal, reason?: string) => {
          if (closing) return
          closing = true
          try {
            socket.close(code, reason)
          } catch {
            socket.terminate()
          }
        }
        const connection: Connection = {
          send: (text) => {
            if (closing || socket.readyState !== OPEN) {
              unregister(entry)
              return false
            }
            // Checked before the send, so a socket never holds more than the cap and one message.
            if (socket.bufferedAmount + text.length > maxBuffered && socket.bufferedAmount > 0) {
              unregister(entry)
              close(CloseCode.tryAgainLater, "Too much unsent data: reconnect and resume")
              return false
            }
            try {
              socket.send(text)
              return true
            } catch {
              unregister(entry)
              socket.terminate()
              return false
            }
          },
          close: (code, reason) => {
            unregister(entry)
            close(code, reason)
          },
          bufferedAmount: () => socket.bufferedAmount,
          isOpen: () => !closing && socket.readyState === OPEN
        }
        const onMessage = registration.onMessage
        const onResync = registration.onResync
        const keys = registration.keys
        const entry: Entry = {
          socket,
          connection,
          topic: keys.kind === "job" ? jobTopic(keys.jobId) : userTopic(keys.userId),
          deliver: onMessage === undefined
            ? (text) => void connection.send(text)
            : (text) => onMessage(text, connection),
          resync: () => onResync?.(connection),
          alive: true
        }
        const onPong = () => {
          entry.alive = true
        }
        const onClose = () => unregister(entry)
        socket.on("pong", onPong)
        socket.once("close", onClose)
        entries.add(entry)
        // A plain finalizer: `Effect.addFinalizer` would keep a copy of the caller's fiber refs for the socket's life.
        yield* Scope.addFinalizer(
          yield* Effect.scope,
          Effect.sync(() => {
            socket.off("pong", onPong)
            socket.off("close", onClose)
            unregister(entry)
            if (socket.readyState === OPEN) close(CloseCode.goingAway)
          })
        )
        yield* join(entry)
        return connection
      })

    const publish = (topic: string, message: unknown) =>
      Effect.suspend(() => backplane.publish(topic, JSON.stringify(message)))

    // A socket that has not answered the previous ping is gone (a dead peer, a half-open connection): terminated.
    yield* Effect.forkScoped(Effect.forever(Effect.zipRight(
      Effect.sleep(options.pingInterval),
      Effect.sync(() => {
        for (const entry of entries) {
          if (!entry.alive) {
            unregister(entry)
            entry.socket.terminate()
            continue
          }
          entry.alive = false
          try {
            entry.socket.ping()
          } catch {
            unregister(entry)
            entry.socket.terminate()
          }
        }
      })
    )))

    // On drain every socket is told at once, so clients reconnect to another instance instead of being cut later.
    yield* Effect.forkScoped(Effect.zipRight(
      lifecycle.draining,
      Effect.sync(() => {
        for (const entry of [...entries]) entry.connection.close(CloseCode.goingAway, "Server shutting down")
      })
    ))

    const count = (prefix: string) => {
      let n = 0
      for (const topic of topics.keys()) if (topic.startsWith(prefix)) n++
      return n
    }

    return WebSocketHub.of({
      connect,
      sendToJob: (jobId, message) => publish(jobTopic(jobId), message),
      sendToUser: (userId, message) => publish(userTopic(userId), message),
      broadcastJobCompletion: (jobId, job) => publish(jobTopic(jobId), { type: "job.completed", job_id: jobId, job }),
      broadcastJobError: (jobId, error) => publish(jobTopic(jobId), { type: "job.failed", job_id: jobId, error }),
      stats: () => ({ sockets: entries.size, jobs: count("ws:job:"), users: count("ws:user:") })
    })
  })

export const layer = (options: Options): Layer.Layer<WebSocketHub, never, Backplane | Lifecycle> =>
  Layer.scoped(WebSocketHub, make(options))

/** From its settings group (`WebSocketSettings.config`, composed into `AppConfig.Settings` as `websocket`). */
export const layerFromSettings = (
  settings: WebSocketSettings
): Layer.Layer<WebSocketHub, never, Backplane | Lifecycle> =>
  layer({ pingInterval: settings.pingInterval, maxBufferedBytes: settings.maxBufferedBytes })
