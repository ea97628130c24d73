/**
 * WebSocket broadcast: 1 KiB messages to 500 clients through the core's server and `WebSocketHub`, against a bare
 * `ws` server, each in a process of its own (pinned to CPU 0 when `taskset` exists), the clients in this process.
 * Messages per second is how many broadcast messages every client has received per second; rounds alternate
 * between the two servers and the medians are compared; so is the servers' own time spent sending (what differs
 * between them, apart from the clients' share of the CPU). Memory per idle connection: the server's heap and external
 * memory (after a full GC) with 500 open sockets, less the same before they connected (after a warm-up round of
 * connections). RSS is not compared: freed pages make it move both ways.
 * Alone: `node --import tsx scripts/bench/ws.ts`.
 */
import { fileURLToPath } from "node:url"
import WebSocket from "ws"
import { freePort, median, printRows, type Row, startServer, stopServer } from "./load.js"
import * as BenchServer from "./server.js"

const clientsPerServer = 500
const messagesPerRound = 300
const rounds = 9

interface Memory {
  readonly rss: number
  readonly heapUsed: number
  readonly external: number
  readonly arrayBuffers: number
}

const start = async (kind: "ours" | "raw") => {
  const port = await freePort()
  const url = `http://127.0.0.1:${port}`
  // Both servers built as `npm start` builds the app, from one bundle of `wsServer.ts`.
  const server = BenchServer.builtServer("test-output/bench-ws", "scripts/bench/wsServer.ts")
  const child = await startServer(
    [...server, kind],
    `${url}/health`,
    {
      PORT: String(port)
    }
  )
  return { kind, url, child }
}

const memoryOf = async (url: string): Promise<Memory> => (await (await fetch(`${url}/memory`)).json()) as Memory

const connectAll = async (url: string) => {
  const received = new Array<number>(clientsPerServer).fill(0)
  const sockets: Array<WebSocket> = []
  // In batches, so the handshakes do not all land at once.
  for (let batch = 0; batch < clientsPerServer; batch += 50) {
    await Promise.all(
      Array.from(
        { length: Math.min(50, clientsPerServer - batch) },
        (_, offset) =>
          new Promise<void>((resolve, reject) => {
            const index = batch + offset
            const socket = new WebSocket(`${url.replace("http", "ws")}/ws`, { perMessageDeflate: false })
            socket.on("message", () => {
              received[index]!++
            })
            socket.once("open", () => resolve())
            socket.once("error", reject)
            sockets.push(socket)
          })
      )
    )
  }
  return { sockets, received }
}

/** One round: `messagesPerRound` broadcasts, timed until every client has all of them; messages per second. */
const round = async (url: string, received: Array<number>) => {
  const target = received.map((count) => count + messagesPerRound)
  const started = performance.now()
  const response = await fetch(`${url}/broadcast?count=${messagesPerRound}`, { method: "POST" })
  await response.arrayBuffer()
  for (;;) {
    if (received.every((count, index) => count >= target[index]!)) break
    await new Promise((resolve) => setImmediate(resolve))
  }
  return messagesPerRound / ((performance.now() - started) / 1000)
}

export const run = async (): Promise<ReadonlyArray<Row>> => {
  const servers = [await start("raw"), await start("ours")]
  try {
    const idle: Record<string, Memory> = {}
    const connected: Record<string, Awaited<ReturnType<typeof connectAll>>> = {}
    const perConnection: Record<string, { heap: number }> = {}
    for (const server of servers) {
      // A first round of connections warms the code paths up, so the baseline is taken with them compiled.
      const warmup = await connectAll(server.url)
      for (const socket of warmup.sockets) socket.close()
      await new Promise((resolve) => setTimeout(resolve, 500))
      idle[server.kind] = await memoryOf(server.url)
      connected[server.kind] = await connectAll(server.url)
      // Let the handshakes settle before measuring.
      await new Promise((resolve) => setTimeout(resolve, 500))
      const open = await memoryOf(server.url)
      const before = idle[server.kind]!
      perConnection[server.kind] = {
        heap: (open.heapUsed + open.external - before.heapUsed - before.external) / clientsPerServer
      }
    }
    const rates: Record<string, Array<number>> = { raw: [], ours: [] }
    const sendRates: Record<string, Array<number>> = { raw: [], ours: [] }
    const sendRate = async (url: string) => {
      const { messages, millis } = (await (await fetch(`${url}/sending`)).json()) as {
        messages: number
        millis: number
      }
      return messages / (millis / 1000)
    }
    // A warm-up round each, then alternating rounds.
    for (const server of servers) {
      await round(server.url, connected[server.kind]!.received)
      await sendRate(server.url)
    }
    for (let r = 0; r < rounds; r++) {
      const order = r % 2 === 0 ? servers : [...servers].reverse()
      for (const server of order) {
        rates[server.kind]!.push(await round(server.url, connected[server.kind]!.received))
        sendRates[server.kind]!.push(await sendRate(server.url))
      }
    }
    for (const { sockets } of Object.values(connected)) for (const socket of sockets) socket.terminate()
    const ours = median(rates.ours!)
    const raw = median(rates.raw!)
    const kib = (bytes: number) => Math.round(bytes / 102.4) / 10
    return [
      { name: `ws broadcast 1 KiB to ${clientsPerServer} clients (msg/s)`, ours, baseline: raw, ratio: ours / raw },
      {
        name: `ws broadcast, the server's sending alone (msg/s of CPU)`,
        ours: median(sendRates.ours!),
        baseline: median(sendRates.raw!),
        ratio: median(sendRates.ours!) / median(sendRates.raw!)
      },
      {
        name: "ws memory per idle connection, heap + external (KiB)",
        ours: kib(perConnection.ours!.heap),
        baseline: kib(perConnection.raw!.heap),
        ratio: perConnection.ours!.heap / perConnection.raw!.heap,
        unit: "KiB"
      }
    ]
  } finally {
    await Promise.all(servers.map((server) => stopServer(server.child)))
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) printRows(await run())
