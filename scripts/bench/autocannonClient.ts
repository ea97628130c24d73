/**
 * The load generator when `wrk` is absent: autocannon, driven from here so that every response's latency is kept
 * as measured. Its own report rounds latencies down to whole milliseconds, which makes a p99 of one or two
 * milliseconds (Fastify's) a step of 100%. Prints one JSON line: requests per second (autocannon's average), the
 * count of non-2xx responses, and p50 and p99 latency in milliseconds.
 *
 * Usage: `node --import tsx scripts/bench/autocannonClient.ts <url> <connections> <seconds> <headers as JSON>`
 */
import { createRequire } from "node:module"

interface Result {
  readonly requests: { readonly average: number }
  readonly non2xx: number
}

interface Instance {
  on(event: "response", listener: (client: unknown, status: number, bytes: number, millis: number) => void): void
}

type Autocannon = (
  options: {
    readonly url: string
    readonly connections: number
    readonly duration: number
    readonly headers: Record<string, string>
  },
  done: (error: Error | null, result: Result) => void
) => Instance

const autocannon = createRequire(import.meta.url)("autocannon") as Autocannon
const [url, connections, seconds, headers] = process.argv.slice(2)

const latencies: Array<number> = []
const instance = autocannon({
  url: url!,
  connections: Number(connections),
  duration: Number(seconds),
  headers: JSON.parse(headers ?? "{}")
}, (error, result) => {
  if (error !== null) throw error
  const sorted = Float64Array.from(latencies).sort()
  const at = (quantile: number) => sorted[Math.min(sorted.length - 1, Math.floor(quantile * sorted.length))] ?? NaN
  console.log(JSON.stringify({ rps: result.requests.average, non2xx: result.non2xx, p50: at(0.5), p99: at(0.99) }))
})
instance.on("response", (_client, status, _bytes, millis) => {
  if (status >= 200 && status < 300) latencies.push(millis)
})
