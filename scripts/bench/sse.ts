/**
 * `npm run bench -- sse`: fan-out of 1 KiB events to 500 SSE clients, events delivered per second, our server (the
 * real app, its SSE bus, the Node adapter) against a raw `node:http` SSE server and against `better-sse`, each in
 * its own process, in the same run; the memory each idle stream costs each server; and the p99 of delivery across
 * two of our instances through Redis on loopback.
 */
import type { ChildProcess } from "node:child_process"
import { randomUUID } from "node:crypto"
import * as Http from "node:http"
import { fileURLToPath } from "node:url"
import { startSupabaseStandIn } from "../../src/dev/SupabaseStandIn.js"
import { createTestDatabase } from "../../test/support/TestDatabase.js"
import { freePort, median, printRows, type Row, startServer, stopServer } from "./load.js"
import * as BenchServer from "./server.js"

const clients = 500
const batch = 50
const batchesPerRound = 8
const rounds = 3

interface Target {
  readonly name: string
  readonly eventsUrl: string
  readonly emitUrl: (count: number) => string
  readonly memoryUrl: string
  readonly headers: Record<string, string>
  readonly stop: () => Promise<void>
}

interface Stream {
  frames: number
  readonly request: Http.ClientRequest
}

const agent = new Http.Agent({ keepAlive: false, maxSockets: Infinity })

/** Opens a stream and counts its frames (blank-line terminated), from the first event on. */
const open = (url: string, headers: Record<string, string>): Promise<Stream> =>
  new Promise((resolve, reject) => {
    const request = Http.get(url, { agent, headers }, (response) => {
      if (response.statusCode !== 200) return reject(new Error(`${url} answered ${response.statusCode}`))
      const stream: Stream = { frames: 0, request }
      let last = 0
      response.on("data", (chunk: Buffer) => {
        let from = 0
        if (last === 0x0a && chunk[0] === 0x0a) stream.frames++
        while ((from = chunk.indexOf("\n\n", from)) !== -1) {
          stream.frames++
          from += 2
        }
        last = chunk[chunk.length - 1]!
      })
      resolve(stream)
    })
    request.on("error", reject)
  })

const post = async (url: string) => {
  const response = await fetch(url, { method: "POST" })
  await response.arrayBuffer()
  if (!response.ok) throw new Error(`${url} answered ${response.status}`)
}

const waitUntil = async (condition: () => boolean) => {
  while (!condition()) await new Promise((resolve) => setImmediate(resolve))
}

/** Events delivered per second to `clients` streams, in batches the slowest stream takes in full each time. */
const fanOut = async (target: Target): Promise<number> => {
  const streams = await Promise.all(Array.from({ length: clients }, () => open(target.eventsUrl, target.headers)))
  // Let the preambles arrive, then count from zero.
  await new Promise((resolve) => setTimeout(resolve, 300))
  for (const stream of streams) stream.frames = 0
  const started = performance.now()
  let expected = 0
  for (let i = 0; i < batchesPerRound; i++) {
    await post(target.emitUrl(batch))
    expected += batch
    await waitUntil(() => streams.every((stream) => stream.frames >= expected))
  }
  const seconds = (performance.now() - started) / 1000
  for (const stream of streams) stream.request.destroy()
  await new Promise((resolve) => setTimeout(resolve, 300))
  return (expected * clients) / seconds
}

const heap = async (url: string) => {
  const usage = (await (await fetch(url)).json()) as { heapUsed: number; external: number; rss: number }
  return usage
}

/**
 * Bytes each idle stream adds to the server's heap and external memory: measured (after a full GC) with the streams
 * open, against the mean of before they opened and after they closed, so drift in between cancels out.
 */
const idleMemory = async (target: Target): Promise<number> => {
  const used = async () => {
    const usage = await heap(target.memoryUrl)
    return usage.heapUsed + usage.external
  }
  const before = await used()
  const streams = await Promise.all(Array.from({ length: clients }, () => open(target.eventsUrl, target.headers)))
  await new Promise((resolve) => setTimeout(resolve, 500))
  const during = await used()
  for (const stream of streams) stream.request.destroy()
  await new Promise((resolve) => setTimeout(resolve, 500))
  const after = await used()
  return (during - (before + after) / 2) / clients
}

const startBaseline = async (kind: "raw" | "better-sse"): Promise<Target> => {
  const port = await freePort()
  const url = `http://127.0.0.1:${port}`
  const child = await startServer(
    ["--expose-gc", "--import", "tsx", "scripts/bench/sse-baselines.ts", kind],
    `${url}/health`,
    { PORT: String(port) }
  )
  return {
    name: kind,
    eventsUrl: `${url}/events`,
    emitUrl: (count) => `${url}/emit?count=${count}`,
    memoryUrl: `${url}/memory`,
    headers: {},
    stop: () => stopServer(child)
  }
}

interface Ours {
  readonly url: string
  readonly child: ChildProcess
}

const startOurs = async (env: Record<string, string>): Promise<Ours> => {
  const server = BenchServer.builtServer("test-output/bench-sse", "scripts/bench/sse-server.ts")
  const port = await freePort()
  const url = `http://127.0.0.1:${port}`
  const profile = process.env.SSE_BENCH_PROFILE === undefined
    ? []
    : ["--cpu-prof", `--cpu-prof-dir=${process.env.SSE_BENCH_PROFILE}`]
  const child = await startServer(
    [...profile, ...server],
    `${url}/health`,
    {
      APP_ENV: "test",
      HOST: "127.0.0.1",
      PORT: String(port),
      LOG_FORMAT: "json",
      LOG_LEVEL: "warning",
      SSE_MAX_SUBSCRIBERS: String(clients * 2),
      ...env
    }
  )
  return { url, child }
}

export const run = async (): Promise<ReadonlyArray<Row>> => {
  const database = await createTestDatabase("bench_sse")
  const issuer = await startSupabaseStandIn()
  const appName = `bench${randomUUID().replaceAll("-", "").slice(0, 8)}`
  const env = {
    DATABASE_URL: database.url,
    SUPABASE_URL: issuer.url,
    SUPABASE_ANON_KEY: issuer.anonKey,
    SUPABASE_SERVICE_ROLE_KEY: issuer.serviceRoleKey,
    APP_NAME: appName
  }
  const stops: Array<() => Promise<void>> = []
  try {
    const token = await issuer.signToken()
    const headers = { authorization: `Bearer ${token}` }
    const single = await startOurs(env)
    stops.push(() => stopServer(single.child))
    const me = (await (await fetch(`${single.url}/api/v1/me`, { headers })).json()) as { id: string }
    const ours: Target = {
      name: "ours",
      eventsUrl: `${single.url}/api/v1/events`,
      emitUrl: (count) => `${single.url}/bench/emit?user=${me.id}&count=${count}`,
      memoryUrl: `${single.url}/bench/memory`,
      headers,
      stop: async () => {}
    }
    const raw = await startBaseline("raw")
    stops.push(raw.stop)
    const better = await startBaseline("better-sse")
    stops.push(better.stop)

    // Memory first, before the fan-out rounds leave garbage and buffers behind.
    const memory: Record<string, number> = {}
    for (const target of [ours, raw, better]) {
      memory[target.name] = median([await idleMemory(target), await idleMemory(target), await idleMemory(target)])
    }

    const rates: Record<string, Array<number>> = { ours: [], raw: [], "better-sse": [] }
    for (const target of [ours, raw, better]) await fanOut(target)
    for (let round = 0; round < rounds; round++) {
      for (const target of [raw, better, ours]) rates[target.name]!.push(await fanOut(target))
    }

    // Across instances: a stream on B, events made on A one at a time, each stamped when emitted.
    const redisEnv = { ...env, REDIS_URL: "redis://127.0.0.1:6379" }
    const [a, b] = await Promise.all([startOurs(redisEnv), startOurs(redisEnv)])
    stops.push(() => stopServer(a.child), () => stopServer(b.child))
    const latencies = await crossInstance(a.url, b.url, me.id, headers)
    const sorted = [...latencies].sort((x, y) => x - y)
    const p99 = sorted[Math.floor(sorted.length * 0.99)]!
    const p50 = sorted[Math.floor(sorted.length * 0.5)]!

    const ourRate = median(rates.ours!)
    const rawRate = median(rates.raw!)
    const betterRate = median(rates["better-sse"]!)
    console.log(
      `fan-out to ${clients} clients, 1 KiB events: ours ${ourRate.toFixed(0)}/s, raw node:http ` +
        `${rawRate.toFixed(0)}/s, better-sse ${betterRate.toFixed(0)}/s (goals: >= 0.9 of raw, >= 1.5 of better-sse)`
    )
    console.log(
      `memory per idle stream (heap + external): ours ${(memory.ours! / 1024).toFixed(1)} KiB, raw ` +
        `${(memory.raw! / 1024).toFixed(1)} KiB, better-sse ${
          (memory["better-sse"]! / 1024).toFixed(1)
        } KiB (goal <= 16)`
    )
    console.log(
      `across instances through Redis: p50 ${p50.toFixed(2)} ms, p99 ${p99.toFixed(2)} ms over ` +
        `${latencies.length} events (goal p99 <= 5 ms)\n`
    )
    return [
      {
        name: "SSE fan-out, 500 clients, vs raw node:http",
        ours: ourRate,
        baseline: rawRate,
        ratio: ourRate / rawRate,
        unit: "events/s"
      },
      {
        name: "SSE fan-out, 500 clients, vs better-sse",
        ours: ourRate,
        baseline: betterRate,
        ratio: ourRate / betterRate,
        unit: "events/s"
      },
      {
        name: "memory per idle stream vs raw node:http",
        ours: memory.ours!,
        baseline: memory.raw!,
        ratio: memory.ours! / memory.raw!,
        unit: "bytes"
      },
      { name: "cross-instance p99 vs the 5 ms goal", ours: p99 * 1000, baseline: 5000, ratio: p99 / 5, unit: "us" }
    ]
  } finally {
    for (const stop of stops.reverse()) await stop()
    await issuer.stop()
    await database.drop()
  }
}

/** Milliseconds from emission on A to arrival at a client of B, for events sent a few milliseconds apart. */
const crossInstance = async (a: string, b: string, user: string, headers: Record<string, string>) => {
  const latencies: Array<number> = []
  await new Promise<void>((resolve, reject) => {
    const request = Http.get(`${b}/api/v1/events`, { agent, headers }, (response) => {
      let buffer = ""
      response.setEncoding("utf8")
      response.on("data", (chunk: string) => {
        const now = performance.timeOrigin + performance.now()
        buffer += chunk
        let end: number
        while ((end = buffer.indexOf("\n\n")) !== -1) {
          const frame = buffer.slice(0, end)
          buffer = buffer.slice(end + 2)
          const data = /^data: (.*)$/m.exec(frame)?.[1]
          if (data !== undefined) latencies.push(now - (JSON.parse(data) as { sent: number }).sent)
        }
      })
      resolve()
    })
    request.on("error", reject)
  })
  await new Promise((resolve) => setTimeout(resolve, 300))
  for (let i = 0; i < 1000; i++) {
    await post(`${a}/bench/emit?user=${user}&count=1&stamp=1`)
    await new Promise((resolve) => setTimeout(resolve, 2))
  }
  await new Promise((resolve) => setTimeout(resolve, 300))
  return latencies
}

if (process.argv[1] === fileURLToPath(import.meta.url)) printRows(await run())
