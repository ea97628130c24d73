/** Benchmark plumbing: servers in their own processes, load from a second process (wrk, or autocannon without it). */
import { type ChildProcess, execFileSync, spawn } from "node:child_process"
import * as Net from "node:net"

export interface Row {
  readonly name: string
  readonly ours: number
  readonly baseline: number
  readonly ratio: number
  readonly unit?: string
}

export const freePort = (): Promise<number> =>
  new Promise((resolve, reject) => {
    const server = Net.createServer()
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address() as Net.AddressInfo
      server.close(() => resolve(port))
    })
    server.on("error", reject)
  })

const has = (command: string) => {
  try {
    execFileSync("sh", ["-c", `command -v ${command}`], { stdio: "ignore" })
    return true
  } catch {
    return false
  }
}

export const loadGenerator = has("wrk") ? "wrk" : "autocannon"
const pin = has("taskset")

/** Starts `args` (a Node script) pinned to CPU 0 when possible, and waits until `url` answers. */
export const startServer = async (
  args: ReadonlyArray<string>,
  url: string,
  env: Record<string, string> = {}
): Promise<ChildProcess> => {
  const [command, ...rest] = pin ? ["taskset", "-c", "0", process.execPath, ...args] : [process.execPath, ...args]
  const child = spawn(command!, rest, { stdio: ["ignore", "ignore", "inherit"], env: { ...process.env, ...env } })
  for (let attempt = 0; attempt < 300; attempt++) {
    if (child.exitCode !== null) throw new Error(`${args.join(" ")} exited with ${child.exitCode}`)
    try {
      const response = await fetch(url)
      await response.arrayBuffer()
      if (response.ok) return child
    } catch {
      // not listening yet
    }
    await new Promise((resolve) => setTimeout(resolve, 100))
  }
  child.kill("SIGKILL")
  throw new Error(`${url} did not answer`)
}

export const stopServer = (child: ChildProcess): Promise<void> =>
  new Promise((resolve) => {
    if (child.exitCode !== null) return resolve()
    child.once("exit", () => resolve())
    child.kill("SIGTERM")
  })

/** Requests per second against `url` for `seconds`, with `connections` open, from a separate process. */
export const measure = (
  url: string,
  options: { readonly seconds: number; readonly connections: number; readonly headers?: Record<string, string> }
): number => {
  const headerArgs = Object.entries(options.headers ?? {}).flatMap(([key, value]) => ["-H", `${key}: ${value}`])
  if (loadGenerator === "wrk") {
    const cpu = pin ? ["taskset", "-c", "1"] : []
    const output = execFileSync(cpu[0] ?? "wrk", [
      ...cpu.slice(1),
      ...(pin ? ["wrk"] : []),
      "-t1",
      `-c${options.connections}`,
      `-d${options.seconds}s`,
      ...headerArgs,
      url
    ], { encoding: "utf8" })
    const rps = /Requests\/sec:\s+([\d.]+)/.exec(output)
    const non2xx = /Non-2xx or 3xx responses:\s+(\d+)/.exec(output)
    if (non2xx) throw new Error(`${url}: ${non2xx[1]} non-2xx responses`)
    return Number(rps?.[1] ?? 0)
  }
  const output = execFileSync(process.execPath, [
    "node_modules/autocannon/autocannon.js",
    "-j",
    "-c",
    String(options.connections),
    "-d",
    String(options.seconds),
    ...headerArgs,
    url
  ], { encoding: "utf8" })
  const result = JSON.parse(output)
  if (result.non2xx > 0) throw new Error(`${url}: ${result.non2xx} non-2xx responses`)
  return result.requests.average
}

export const median = (values: ReadonlyArray<number>): number => {
  const sorted = [...values].sort((a, b) => a - b)
  const middle = Math.floor(sorted.length / 2)
  return sorted.length % 2 === 1 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2
}

/** Alternates the two targets `rounds` times after a warm-up of each, and compares their medians. */
export const compare = (
  name: string,
  ours: () => number,
  baseline: () => number,
  rounds = 3
): Row => {
  ours()
  baseline()
  const a: Array<number> = []
  const b: Array<number> = []
  for (let round = 0; round < rounds; round++) {
    b.push(baseline())
    a.push(ours())
  }
  const row = { name, ours: median(a), baseline: median(b), ratio: median(a) / median(b), unit: "req/s" }
  return row
}

export const printRows = (rows: ReadonlyArray<Row>): void => {
  const width = Math.max(...rows.map((row) => row.name.length), 4)
  console.log(`${"case".padEnd(width)}  ${"ours".padStart(12)}  ${"baseline".padStart(12)}  ratio`)
  for (const row of rows) {
    console.log(
      `${row.name.padEnd(width)}  ${row.ours.toFixed(0).padStart(12)}  ${row.baseline.toFixed(0).padStart(12)}  ${
        row.ratio.toFixed(2)
      }${row.unit === undefined ? "" : `  (${row.unit})`}`
    )
  }
}
