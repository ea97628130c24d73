/** The undici dispatcher behind each shared HTTP client: caps on open and on idle kept-alive connections per host. */
import { EventEmitter } from "node:events"
import type { Socket } from "node:net"
import { Agent, buildConnector, Client, Dispatcher, errors } from "undici"

export interface ConnectionLimits {
  /** Most connections open at once to one origin; further requests wait in a queue. */
  readonly maxConnections: number
  /** Most idle connections kept open per origin for reuse; the rest are closed as soon as they fall idle. */
  readonly maxKeepAlive: number
}

/**
 * An `Agent` (one pool per origin, dropped once it has no connections) whose pools enforce both limits.
 *
 * undici's `Pool` does not fit: it has no idle-connection cap (`keepAliveTimeout` is a time limit, `clientTtl`
 * recycles busy clients too), and it marks a client free only on its `drain` event, a `setImmediate` after the
 * response ends, so a request sent right after the previous one finished opens a second connection. `OriginPool`
 * keeps undici's `Client` (one connection each, which also queues its own requests) and picks clients by their
 * public `stats`.
 */
export const makeDispatcher = (limits: ConnectionLimits): Agent => {
  if (!Number.isInteger(limits.maxConnections) || limits.maxConnections < 1) {
    throw new RangeError(`maxConnections must be a positive integer, got ${limits.maxConnections}`)
  }
  if (!Number.isInteger(limits.maxKeepAlive) || limits.maxKeepAlive < 0) {
    throw new RangeError(`maxKeepAlive must be a non-negative integer, got ${limits.maxKeepAlive}`)
  }
  // One connector per agent, so TLS sessions are cached across origins as with undici's defaults.
  const connector = buildConnector({})
  return new Agent({ factory: (origin) => new OriginPool(origin, limits, connector) })
}

interface Connection {
  readonly client: Client
  /** Closes the connection's socket; the client stays and reconnects when next used. */
  readonly closeSocket: () => void
}

interface Waiting {
  readonly options: Dispatcher.DispatchOptions
  readonly handler: Dispatcher.DispatchHandler
}

const isIdle = (client: Client): boolean => {
  const stats = client.stats
  return stats.connected && stats.size === 0
}

// Requests reach a pool through `Agent.dispatch`, which hands over legacy handlers with `onError`.
const fail = (handler: Dispatcher.DispatchHandler, error: Error): void => handler.onError?.(error)

/**
 * At most `maxConnections` clients for one origin, used front first; requests beyond them wait in FIFO order.
 * Idle connections above `maxKeepAlive` are closed from the back, so the kept ones are those picked next.
 * Closing an idle socket is what undici's own keep-alive timeout does.
 */
class OriginPool extends Dispatcher {
  readonly #origin: URL
  readonly #connections: Array<Connection> = []
  readonly #waiting: Array<Waiting> = []
  #closing: Promise<void> | undefined
  #destroyed = false
  #needDrain = false
  #onQueueEmpty: (() => void) | undefined

  constructor(
    origin: string | URL,
    readonly limits: ConnectionLimits,
    readonly connector: buildConnector.connector
  ) {
    super()
    this.#origin = new URL(origin)
  }

  get closed(): boolean {
    return this.#closing !== undefined
  }

  get destroyed(): boolean {
    return this.#destroyed
  }

  override dispatch(options: Dispatcher.DispatchOptions, handler: Dispatcher.DispatchHandler): boolean {
    if (this.#destroyed) {
      fail(handler, new errors.ClientDestroyedError())
      return false
    }
    if (this.#closing !== undefined) {
      fail(handler, new errors.ClientClosedError())
      return false
    }
    // While others wait, a newcomer waits behind them.
    const client = this.#waiting.length === 0 ? this.#freeClient() : undefined
    if (client === undefined) {
      this.#waiting.push({ options, handler })
      this.#needDrain = true
      return false
    }
    client.dispatch(options, handler)
    return true
  }

  /** A kept-alive connection, else a client whose connection closed, else a new client within the cap. */
  #freeClient(): Client | undefined {
    let reconnectable: Client | undefined
    for (const { client } of this.#connections) {
      const stats = client.stats
      if (stats.size === 0) {
        if (stats.connected) return client
        reconnectable ??= client
      }
    }
    if (reconnectable !== undefined) return reconnectable
    return this.#connections.length < this.limits.maxConnections ? this.#addClient() : undefined
  }

  #addClient(): Client {
    let socket: Socket | undefined
    const client = new Client(this.#origin, {
      connect: (options, callback) =>
        this.connector(options, (...result) => {
          socket = result[1] ?? undefined
          callback(...result)
        })
    })
    this.#connections.push({ client, closeSocket: () => socket?.destroy() })
    client
      .on("drain", () => this.#onDrain(client))
      .on("connect", (origin, targets) => this.emit("connect", origin, [this, ...targets]))
      .on("disconnect", (origin, targets, error) => this.emit("disconnect", origin, [this, ...targets], error))
      .on(
        "connectionError",
        (origin, targets, error) => this.emit("connectionError", origin, [this, ...targets], error)
      )
    return client
  }

  /** A client finished its work (or failed to connect): give it the next waiting request, or count it idle. */
  #onDrain(client: Client): void {
    while (client.stats.size === 0) {
      const next = this.#waiting.shift()
      if (next === undefined) break
      client.dispatch(next.options, next.handler)
    }
    // While requests wait, a client with nothing to do is only between drains: it gets the next one.
    if (this.#waiting.length === 0) {
      this.#onQueueEmpty?.()
      if (this.#needDrain) {
        this.#needDrain = false
        // undici's typings list `drain` with the origin only; the agent also expects the targets, as pools send.
        EventEmitter.prototype.emit.call(this, "drain", this.#origin, [this])
      }
      this.#closeIdleAboveCap()
    }
  }

  #closeIdleAboveCap(): void {
    let idle = 0
    for (const { client } of this.#connections) {
      if (isIdle(client)) idle++
    }
    for (let i = this.#connections.length - 1; i >= 0 && idle > this.limits.maxKeepAlive; i--) {
      const connection = this.#connections[i]
      if (connection !== undefined && isIdle(connection.client)) {
        connection.closeSocket()
        idle--
      }
    }
  }

  override close(): Promise<void>
  override close(callback: () => void): void
  override close(callback?: () => void): Promise<void> | void {
    // Like undici's pools: waiting requests are still served, then the clients close once their work is done.
    this.#closing ??= new Promise<void>((resolve) => {
      if (this.#waiting.length === 0) resolve()
      else this.#onQueueEmpty = resolve
    }).then(() => settled(this.#connections.map(({ client }) => client.close())))
    if (callback === undefined) return this.#closing
    void this.#closing.then(callback)
  }

  override destroy(): Promise<void>
  override destroy(error: Error | null): Promise<void>
  override destroy(callback: () => void): void
  override destroy(error: Error | null, callback: () => void): void
  override destroy(errorOrCallback?: Error | null | (() => void), callback?: () => void): Promise<void> | void {
    const error = (typeof errorOrCallback === "function" ? null : errorOrCallback) ?? new errors.ClientDestroyedError()
    const done = typeof errorOrCallback === "function" ? errorOrCallback : callback
    this.#destroyed = true
    for (const waiting of this.#waiting.splice(0)) fail(waiting.handler, error)
    this.#onQueueEmpty?.()
    const destroyed = settled(this.#connections.map(({ client }) => client.destroy(error)))
    if (done === undefined) return destroyed
    void destroyed.then(done)
  }
}

// The agent closes pools without awaiting them: never reject.
const settled = (promises: ReadonlyArray<Promise<unknown>>): Promise<void> =>
  Promise.allSettled(promises).then(() => undefined)
