/**
 * The WebSocket hub with real `ws` sockets on loopback and time on `TestClock`: the heartbeat (a client that never
 * answers pings is terminated, one that does stays), a slow consumer closed with 1013 while the server holds at most
 * the cap of unsent data (and a reading client beside it gets everything), a failed send drops its socket, and
 * drain closes every socket with 1001 at once.
 */
import { assert, describe, it } from "@effect/vitest"
import { Duration, Effect, Exit, Runtime, Scope, TestClock, TestServices } from "effect"
import type * as Net from "node:net"
import WebSocket, { WebSocketServer } from "ws"
import * as Backplane from "../../../src/core/realtime/Backplane.js"
import * as WebSocketHub from "../../../src/core/realtime/WebSocketHub.js"
import * as Lifecycle from "../../../src/core/runtime/Lifecycle.js"

const maxBufferedBytes = 1024 * 1024
const pingInterval = Duration.seconds(30)

const liveSleep = (millis: number) => TestServices.provideLive(Effect.sleep(Duration.millis(millis)))

const until = (condition: () => boolean, what: string) =>
  Effect.gen(function*() {
    for (let attempt = 0; attempt < 500; attempt++) {
      if (condition()) return
      yield* liveSleep(10)
    }
    assert.fail(`gave up waiting for ${what}`)
  })

interface Client {
  readonly socket: WebSocket
  readonly received: { count: number; bytes: number }
  readonly closed: Promise<number>
}

/** A hub on the in-memory backplane, and a loopback `ws` server whose sockets it registers (`?user=` names the user). */
const setup = Effect.gen(function*() {
  const lifecycle = yield* Lifecycle.make
  const hub = yield* WebSocketHub.make({ pingInterval, maxBufferedBytes }).pipe(
    Effect.provideService(Lifecycle.Lifecycle, lifecycle),
    Effect.provide(Backplane.layerMemory)
  )
  const runFork = Runtime.runFork(yield* Effect.runtime<never>())
  const serverSockets: Array<WebSocket> = []
  const server = yield* Effect.acquireRelease(
    Effect.async<WebSocketServer>((resume) => {
      const wss: WebSocketServer = new WebSocketServer(
        { host: "127.0.0.1", port: 0 },
        () => resume(Effect.succeed(wss))
      )
    }),
    (wss) =>
      Effect.async<void>((resume) => {
        for (const client of wss.clients) client.terminate()
        wss.close(() => resume(Effect.void))
      })
  )
  server.on("connection", (socket, request) => {
    const userId = new URL(request.url ?? "/", "http://localhost").searchParams.get("user") ?? "nobody"
    serverSockets.push(socket)
    const scope = Effect.runSync(Scope.make())
    socket.once("close", () => void Effect.runFork(Scope.close(scope, Exit.void)))
    runFork(hub.connect(socket, { keys: { kind: "user", userId } }).pipe(Scope.extend(scope)))
  })
  const port = (server.address() as Net.AddressInfo).port
  const clients: Array<WebSocket> = []
  yield* Effect.addFinalizer(() => Effect.sync(() => clients.forEach((client) => client.terminate())))
  const connect = (userId: string, options: { readonly autoPong?: boolean } = {}) =>
    Effect.gen(function*() {
      const before = hub.stats().sockets
      const socket = new WebSocket(`ws://127.0.0.1:${port}/?user=${userId}`, { autoPong: options.autoPong ?? true })
      clients.push(socket)
      const received = { count: 0, bytes: 0 }
      socket.on("message", (data: Buffer) => {
        received.count++
        received.bytes += data.length
      })
      const closed = new Promise<number>((resolve) => socket.once("close", (code) => resolve(code)))
      yield* Effect.promise(() => new Promise((resolve) => socket.once("open", resolve)))
      yield* until(() => hub.stats().sockets > before, "the socket to be registered")
      return { socket, received, closed } satisfies Client
    })
  return { hub, lifecycle, connect, serverSockets }
})

const closeCodeOrOpen = (client: Client) =>
  Effect.promise(() =>
    Promise.race([client.closed, new Promise<"open">((resolve) => setTimeout(() => resolve("open"), 50))])
  )

describe("WebSocketHub", () => {
  it.scoped("heartbeat: a client that never answers pings is terminated at the next ping, one that answers stays", () =>
    Effect.gen(function*() {
      const { connect, hub } = yield* setup
      const answering = yield* connect("alice")
      const silent = yield* connect("bob", { autoPong: false })

      // Nothing happens before the first ping is due.
      yield* TestClock.adjust(Duration.seconds(29))
      yield* liveSleep(50)
      assert.strictEqual(hub.stats().sockets, 2)

      yield* TestClock.adjust(Duration.seconds(1)) // the first ping
      yield* liveSleep(100) // the answer travels
      assert.strictEqual(yield* closeCodeOrOpen(silent), "open", "not yet: it has until the next ping")

      yield* TestClock.adjust(pingInterval) // the second ping: the silent one has not answered the first
      assert.strictEqual(yield* Effect.promise(() => silent.closed), 1006)
      for (let round = 0; round < 3; round++) {
        yield* liveSleep(100)
        yield* TestClock.adjust(pingInterval)
      }
      assert.strictEqual(yield* closeCodeOrOpen(answering), "open")
      assert.deepStrictEqual(hub.stats(), { sockets: 1, jobs: 0, users: 1 })
    }))

  it.scoped(
    "a slow consumer is closed with 1013 holding at most the cap; a reading client of the same user gets all",
    () =>
      Effect.gen(function*() {
        const { connect, hub, serverSockets } = yield* setup
        const reader = yield* connect("carol")
        const slow = yield* connect("carol")
        const slowServerSide = serverSockets[1]! // The slow client stops reading: the kernel's buffers fill first (a few MiB), then the server's.
        ;(slow.socket as unknown as { _socket: Net.Socket })._socket.pause()

        const message = { type: "tick", pad: "x".repeat(1000) }
        const size = JSON.stringify(message).length
        let maxHeld = 0
        let sent = 0
        // 20 MiB in bursts, letting the loopback carry each burst to the reader before the next.
        while (sent < 20_000) {
          for (let i = 0; i < 100; i++, sent++) {
            yield* hub.sendToUser("carol", message)
            maxHeld = Math.max(maxHeld, slowServerSide.bufferedAmount)
          }
          yield* liveSleep(1)
        }
        assert.isAtMost(maxHeld, maxBufferedBytes + size, "never more than the cap and one message held")
        assert.isAbove(maxHeld, maxBufferedBytes / 2, "the slow client did hold back data")
        assert.deepStrictEqual(hub.stats(), { sockets: 1, jobs: 0, users: 1 })

        yield* until(() => reader.received.count === 20_000, "the reader to get every message")
        ;(slow.socket as unknown as { _socket: Net.Socket })._socket.resume()
        assert.strictEqual(yield* Effect.promise(() => slow.closed), 1013)
        assert.isBelow(slow.received.count, 20_000)
      }),
    { timeout: 60_000 }
  )

  it.scoped("a socket that fails a send is dropped", () =>
    Effect.gen(function*() {
      const { connect, hub, serverSockets } = yield* setup
      yield* connect("dave")
      yield* connect("dave")
      // The server side breaks without the hub being told.
      const broken = serverSockets[0]!
      broken.removeAllListeners("close")
      broken.terminate()
      yield* until(() => broken.readyState === WebSocket.CLOSED, "the socket to close")
      yield* hub.sendToUser("dave", { type: "hello" })
      assert.strictEqual(hub.stats().sockets, 1)
    }))

  it.scoped("on drain every socket is closed with 1001 at once, with no time passing", () =>
    Effect.gen(function*() {
      const { connect, hub, lifecycle } = yield* setup
      const clients = [yield* connect("erin"), yield* connect("erin"), yield* connect("frank")]
      yield* lifecycle.beginDrain
      const codes = yield* Effect.promise(() => Promise.all(clients.map((client) => client.closed)))
      assert.deepStrictEqual(codes, [1001, 1001, 1001])
      yield* until(() => hub.stats().sockets === 0, "the sockets to be gone")
    }))
})
