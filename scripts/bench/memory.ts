/**
 * Resident memory of an idle server on Postgres (`DATABASE_URL` set): the real server as `npm start` runs it, a few
 * seconds after it answers, with no request but the readiness probe's; beside it, a bare Node process for scale.
 */
import { spawn } from "node:child_process"
import * as Fs from "node:fs"
import { fileURLToPath } from "node:url"
import { printRows, type Row, stopServer } from "./load.js"
import * as BenchServer from "./server.js"

const residentMegabytes = (pid: number): number => {
  const status = Fs.readFileSync(`/proc/${pid}/status`, "utf8")
  return Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? Number.NaN) / 1024
}

const settle = (millis: number) => new Promise((resolve) => setTimeout(resolve, millis))

export const run = async (): Promise<ReadonlyArray<Row>> => {
  const server = await BenchServer.start()
  const bare = spawn(process.execPath, ["-e", "setInterval(() => {}, 1000)"], { stdio: "ignore" })
  try {
    await settle(3000)
    const ours = residentMegabytes(server.pid)
    const baseline = residentMegabytes(bare.pid!)
    return [{
      name: "idle RSS on Postgres, our server vs bare node",
      ours,
      baseline,
      ratio: ours / baseline,
      unit: "MB",
      goal: { of: "ours", atMost: 120 }
    }]
  } finally {
    await Promise.all([server.stop(), stopServer(bare)])
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  printRows(await run())
}
