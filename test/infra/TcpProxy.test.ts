import { randomBytes } from "node:crypto"
import * as net from "node:net"
import pg from "pg"
import { afterEach, describe, expect, it } from "vitest"
import { startTcpProxy, type TcpProxy } from "../support/TcpProxy.js"

const errorCode = (error: unknown): string | undefined => (error as { code?: string } | undefined)?.code

const cleanups: Array<() => Promise<void>> = []
afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()!().catch(() => {})
})

const proxyTo = async (targetPort: number): Promise<TcpProxy> => {
  const proxy = await startTcpProxy({ targetHost: "127.0.0.1", targetPort })
  cleanups.push(() => proxy.stop())
  return proxy
}

const pgClient = (port: number): pg.Client => {
  const client = new pg.Client({
    host: "127.0.0.1",
    port,
    user: "postgres",
    database: "postgres",
    connectionTimeoutMillis: 5_000
  })
  client.on("error", () => {})
  cleanups.push(() => client.end())
  return client
}

/** An echo server on loopback. */
const echoServer = async (): Promise<number> => {
  const sockets = new Set<net.Socket>()
  const server = net.createServer((socket) => {
    sockets.add(socket)
    socket.on("close", () => sockets.delete(socket))
    socket.on("error", () => {})
    socket.pipe(socket)
  })
  await new Promise<void>((resolve) => server.listen({ host: "127.0.0.1", port: 0 }, resolve))
  cleanups.push(async () => {
    for (const s of sockets) s.destroy()
    await new Promise<void>((resolve) => server.close(() => resolve()))
  })
  return (server.address() as net.AddressInfo).port
}

/** Sends `payload` and collects the same number of bytes back. */
const roundTrip = (port: number, payload: Buffer): Promise<Buffer> =>
  new Promise((resolve, reject) => {
    const socket = net.connect({ host: "127.0.0.1", port })
    const chunks: Array<Buffer> = []
    let received = 0
    socket.on("error", reject)
    socket.on("data", (chunk: Buffer) => {
      chunks.push(chunk)
      received += chunk.length
      if (received >= payload.length) {
        socket.end()
        resolve(Buffer.concat(chunks))
      }
    })
    socket.write(payload)
  })

describe("startTcpProxy", () => {
  it("forwards bytes both ways unchanged", async () => {
    const proxy = await proxyTo(await echoServer())
    const payload = randomBytes(1024 * 1024)
    const echoed = await roundTrip(proxy.port, payload)
    expect(echoed.equals(payload)).toBe(true)
    expect(proxy.acceptedCount()).toBe(1)
  })

  it("passes Postgres traffic, cut() breaks the open connection and refuses new ones, restore() lets them in", async () => {
    const proxy = await proxyTo(5432)
    const port = proxy.port

    const client = pgClient(port)
    const clientErrors: Array<Error> = []
    client.on("error", (error) => clientErrors.push(error))
    await client.connect()
    expect((await client.query("SELECT $1::int AS n", [41])).rows).toEqual([{ n: 41 }])
    expect(proxy.connectionCount()).toBe(1)

    const ended = new Promise<void>((resolve) => client.once("end", () => resolve()))
    await proxy.cut()
    expect(proxy.isListening()).toBe(false)
    await ended
    expect(proxy.connectionCount()).toBe(0)

    // the open connection is dead: its next query fails
    const broken = await client.query("SELECT 1").then(
      () => undefined,
      (e: unknown) => e
    )
    expect(broken).toBeInstanceOf(Error)
    expect(clientErrors.length).toBeGreaterThan(0)

    // new connections are refused
    const refused = await pgClient(port)
      .connect()
      .then(
        () => undefined,
        (e: unknown) => e
      )
    expect(errorCode(refused)).toBe("ECONNREFUSED")

    await proxy.restore()
    expect(proxy.isListening()).toBe(true)
    expect(proxy.port).toBe(port)
    const again = pgClient(port)
    await again.connect()
    expect((await again.query("SELECT $1::text AS s", ["restored"])).rows).toEqual([{ s: "restored" }])
    expect(proxy.connectionCount()).toBe(1)
    expect(proxy.acceptedCount()).toBe(2)
  })

  it("cut({ reset: false }) closes connections with a FIN; the client sees the connection end", async () => {
    const proxy = await proxyTo(5432)
    const client = pgClient(proxy.port)
    await client.connect()
    await client.query("SELECT 1")
    const ended = new Promise<void>((resolve) => client.once("end", () => resolve()))
    await proxy.cut({ reset: false })
    await ended
    const broken = await client.query("SELECT 1").then(
      () => undefined,
      (e: unknown) => e
    )
    expect(broken).toBeInstanceOf(Error)
  })

  it("a connection to a target that is down is closed, not left hanging", async () => {
    // a port with nothing listening: take a free one and release it
    const probe = net.createServer()
    await new Promise<void>((resolve) => probe.listen({ host: "127.0.0.1", port: 0 }, resolve))
    const deadPort = (probe.address() as net.AddressInfo).port
    await new Promise<void>((resolve) => probe.close(() => resolve()))

    const proxy = await proxyTo(deadPort)
    const outcome = await new Promise<string>((resolve) => {
      const socket = net.connect({ host: "127.0.0.1", port: proxy.port })
      socket.on("error", (error) => resolve(`error ${errorCode(error)}`))
      socket.on("close", () => resolve("closed"))
      socket.resume()
    })
    expect(["closed", "error ECONNRESET"]).toContain(outcome)
    expect(proxy.connectionCount()).toBe(0)
  })

  it("refuses non-loopback addresses", async () => {
    await expect(startTcpProxy({ targetHost: "192.0.2.1", targetPort: 5432 })).rejects.toThrow(/loopback/)
    await expect(startTcpProxy({ targetHost: "127.0.0.1", targetPort: 5432, host: "0.0.0.0" })).rejects.toThrow(
      /loopback/
    )
  })
})
