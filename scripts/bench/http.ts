/**
 * `GET /health` through our full middleware stack (request id, CORS, error mapping, a JSON access log line per
 * request) against a minimal Fastify server answering the same JSON, alternating, from a second process.
 */
import { fileURLToPath } from "node:url"
import {
  compare,
  cpuRow,
  freePort,
  loadGenerator,
  measure,
  printRows,
  type Row,
  startServer,
  stopServer,
  withCpu,
  withGoal
} from "./load.js"
import * as BenchServer from "./server.js"

export const run = async (options: { readonly seconds?: number } = {}): Promise<ReadonlyArray<Row>> => {
  const seconds = options.seconds ?? 5
  const basePort = await freePort()
  const ours = await BenchServer.start()
  const base = await startServer(
    ["--import", "tsx", "scripts/bench/fastify.ts", String(basePort)],
    `http://127.0.0.1:${basePort}/health`
  )
  try {
    const health = compare(
      "GET /health, full stack vs Fastify",
      withCpu(ours.pid, seconds, () => measure(`${ours.url}/health`, { seconds, connections: 50 })),
      withCpu(base.pid!, seconds, () => measure(`http://127.0.0.1:${basePort}/health`, { seconds, connections: 50 }))
    )
    const { baseline, ours: ourLatency } = health.latency!
    return [
      withGoal(health, { of: "ratio", atLeast: 0.5 }),
      ...cpuRow("GET /health, server CPU per request, ours vs Fastify", health),
      {
        name: "p99 latency /health at 50 connections, ours vs Fastify",
        ours: ourLatency.p99,
        baseline: baseline.p99,
        ratio: ourLatency.p99 / baseline.p99,
        unit: "ms",
        goal: { of: "ratio", atMost: 3 }
      }
    ]
  } finally {
    await Promise.all([ours.stop(), stopServer(base)])
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  console.log(`load generator: ${loadGenerator}`)
  printRows(await run())
}
