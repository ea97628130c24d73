/**
 * The SSE baselines of `npm run bench -- sse`, one process each: a raw `node:http` SSE server (`raw`) and one on
 * `better-sse` (`better-sse`). Both answer what the benchmark drives: `GET /events` (a stream), `POST /emit?count=n`
 * (n 1 KiB events to every stream), `GET /memory` (after a full GC), `GET /health`.
 */
import { createChannel, createSession } from "better-sse"
import * as Http from "node:http"

const kind = process.argv[2]
const port = Number(process.env.PORT)
const payload = JSON.stringify({ pad: "x".repeat(1000) })

const memory = () => {
  globalThis.gc?.()
  return JSON.stringify(process.memoryUsage())
}

const rawStreams = new Set<Http.ServerResponse>()
let nextId = 1
const channel = createChannel()

const events = async (request: Http.IncomingMessage, response: Http.ServerResponse) => {
  if (kind === "raw") {
    response.writeHead(200, {
      "content-type": "text/event-stream",
      "cache-control": "no-cache",
      "x-accel-buffering": "no"
    })
    response.write("retry: 1000\n: connected\n\n")
    rawStreams.add(response)
    response.on("close", () => rawStreams.delete(response))
    return
  }
  const session = await createSession(request, response, { keepAlive: 30_000, retry: 1000 })
  channel.register(session)
}

const emit = (count: number) => {
  for (let i = 0; i < count; i++) {
    const id = nextId++
    if (kind === "raw") {
      const frame = `id: ${id}\nevent: bench\ndata: ${payload}\n\n`
      for (const response of rawStreams) response.write(frame)
    } else {
      channel.broadcast(payload, "bench", { eventId: String(id) })
    }
  }
}

Http.createServer((request, response) => {
  const url = new URL(request.url ?? "/", "http://localhost")
  if (url.pathname === "/events") return void events(request, response)
  if (url.pathname === "/emit") {
    emit(Number(url.searchParams.get("count") ?? 1))
    return void response.end("ok")
  }
  if (url.pathname === "/memory") return void response.end(memory())
  response.end("ok")
}).listen(port, "127.0.0.1")
