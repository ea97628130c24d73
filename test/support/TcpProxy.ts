/**
 * A loopback TCP proxy that a test controls, to simulate network faults between a client and a
 * real server (Postgres, PgBouncer, Redis, ...) without touching that server.
 *
 *   const proxy = await startTcpProxy({ targetHost: "127.0.0.1", targetPort: 5432 })
 *   // point the client at 127.0.0.1:proxy.port
 *   await proxy.cut()      // every proxied connection is destroyed, new ones get ECONNREFUSED
 *   await proxy.restore()  // listens again on the same port
 *   await proxy.stop()
 *
 * Only Node's `net` module is used; it listens on 127.0.0.1 only.
 */
import * as net from "node:net"

export interface TcpProxyOptions {
  readonly targetHost: string
  readonly targetPort: number
  /** Port to listen on; default 0 (a free port chosen by the OS, kept across cut()/restore()). */
  readonly port?: number
  /** Listen address; default "127.0.0.1". Must be a loopback address. */
  readonly host?: string
}

interface CutOptions {
  /**
   * true (the default): close each connection with a TCP RST (`socket.resetAndDestroy()`), so the
   * peers see ECONNRESET / "Connection terminated unexpectedly" at once.
   * false: close with a FIN (`socket.destroy()`), i.e. an orderly end-of-stream.
   */
  readonly reset?: boolean
}

export interface TcpProxy {
  /** The port the proxy listens on (127.0.0.1). Stays the same across cut()/restore(). */
  readonly port: number
  /** Destroys every proxied connection (both sides) and stops listening: new connects get ECONNREFUSED. */
  cut(options?: CutOptions): Promise<void>
  /** Listens again on the same port. No-op if it is listening. */
  restore(): Promise<void>
  /** cut() for good: destroys every connection and closes the listener. Idempotent. */
  stop(): Promise<void>
  /** Number of proxied connections open right now. */
  connectionCount(): number
  /** Number of client connections accepted since the proxy started (including ones since closed). */
  acceptedCount(): number
  /** Whether the proxy is accepting connections (false after cut() / stop()). */
  isListening(): boolean
}

interface Pair {
  readonly client: net.Socket
  readonly upstream: net.Socket
}

const isLoopback = (host: string): boolean =>
  host === "localhost" || host === "::1" || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(host)

const killSocket = (socket: net.Socket, reset: boolean): void => {
  if (socket.destroyed) return
  if (reset && typeof socket.resetAndDestroy === "function" && !socket.connecting) {
    try {
      socket.resetAndDestroy()
      return
    } catch {
      // fall through to a plain destroy
    }
  }
  socket.destroy()
}

export const startTcpProxy = async (options: TcpProxyOptions): Promise<TcpProxy> => {
  const host = options.host ?? "127.0.0.1"
  if (!isLoopback(host)) throw new Error(`startTcpProxy: refusing to listen on non-loopback address ${host}`)
  if (!isLoopback(options.targetHost)) {
    throw new Error(`startTcpProxy: refusing to proxy to non-loopback address ${options.targetHost}`)
  }

  const pairs = new Set<Pair>()
  let accepted = 0
  let server: net.Server | undefined
  let port = options.port ?? 0
  let stopped = false

  const onConnection = (client: net.Socket): void => {
    accepted++
    client.setNoDelay(true)
    const upstream = net.connect({ host: options.targetHost, port: options.targetPort })
    upstream.setNoDelay(true)
    const pair: Pair = { client, upstream }
    pairs.add(pair)
    // If either side fails or ends, tear down the other side the same way.
    let closed = false
    const close = (reset: boolean) => {
      if (closed) return
      closed = true
      pairs.delete(pair)
      killSocket(client, reset)
      killSocket(upstream, reset)
    }
    client.on("error", () => close(true))
    upstream.on("error", () => close(true))
    client.on("close", () => close(false))
    upstream.on("close", () => close(false))
    client.pipe(upstream)
    upstream.pipe(client)
  }

  const listen = async (): Promise<void> => {
    const s = net.createServer({ pauseOnConnect: false }, onConnection)
    await new Promise<void>((resolve, reject) => {
      const onError = (err: Error) => reject(err)
      s.once("error", onError)
      s.listen({ host, port, exclusive: true }, () => {
        s.off("error", onError)
        resolve()
      })
    })
    s.on("error", () => {
      // a listener error after start-up (should not happen on loopback) must not crash the test run
    })
    const address = s.address()
    if (address === null || typeof address === "string") throw new Error("startTcpProxy: no TCP address")
    port = address.port
    server = s
  }

  const destroyAll = (reset: boolean): void => {
    for (const pair of [...pairs]) {
      pairs.delete(pair)
      killSocket(pair.client, reset)
      killSocket(pair.upstream, reset)
    }
  }

  const closeListener = async (): Promise<void> => {
    const s = server
    server = undefined
    if (s === undefined) return
    await new Promise<void>((resolve) => s.close(() => resolve()))
  }

  const cut = async (cutOptions?: CutOptions): Promise<void> => {
    const reset = cutOptions?.reset ?? true
    // Stop accepting first so nothing new slips in, then kill what is open.
    const closing = closeListener()
    destroyAll(reset)
    await closing
  }

  await listen()

  return {
    get port() {
      return port
    },
    cut,
    restore: async () => {
      if (stopped) throw new Error("startTcpProxy: restore() after stop()")
      if (server !== undefined) return
      await listen()
    },
    stop: async () => {
      stopped = true
      await cut({ reset: false })
    },
    connectionCount: () => pairs.size,
    acceptedCount: () => accepted,
    isListening: () => server !== undefined
  }
}
