/** Benchmark plumbing: servers in their own processes, load from a second process (wrk, or autocannon without it). */
import { type ChildProcess, execFileSync, spawn } from "node:child_process"
import * as Fs from "node:fs"
import * as Net from "node:net"

export interface Row {
  readonly name: string
  readonly ours: number
  readonly baseline: number
  readonly ratio: number
  readonly unit?: string
  /** Median server CPU time per request of each side's rounds, in microseconds, when the case measured it. */
  readonly cpu?: { readonly ours: number; readonly baseline: number }
  /** Median latencies of each side's rounds, in milliseconds, when the case measured them. */
  readonly latency?: { readonly ours: Latency; readonly baseline: Latency }
  /** The target this row is held to (issue 14's table): a bound on its ratio, or on `ours` itself. */
  readonly goal?: Goal
}

export interface Goal {
  readonly of: "ratio" | "ours"
  readonly atLeast?: number
  readonly atMost?: number
}

export const withGoal = (row: Row, goal: Goal): Row => ({ ...row, goal })

const goalText = (goal: Goal): string =>
  [goal.atLeast === undefined ? "" : `>= ${goal.atLeast}`, goal.atMost === undefined ? "" : `<= ${goal.atMost}`]
    .filter((part) => part !== "").join(" and ")

const meets = (goal: Goal, value: number): boolean =>
  (goal.atLeast === undefined || value >= goal.atLeast) && (goal.atMost === undefined || value <= goal.atMost)

export interface Latency {
  readonly p50: number
  readonly p99: number
}

/** One load round: requests per second and the latency percentiles (milliseconds). */
export interface Sample extends Latency {
  readonly rps: number
  /** The server process's CPU time (user and system) per request, in microseconds, when its pid was given. */
  readonly cpuMicros?: number
}

/** CPU time a process has used so far, in microseconds (Linux `/proc`; clock ticks of 10 ms). */
const processCpuMicros = (pid: number): number => {
  const fields = Fs.readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]!.split(" ")
  return (Number(fields[11]) + Number(fields[12])) * 10_000
}

/**
 * A round of `round`, with the CPU time process `pid` used per request: a steadier figure than requests per second
 * on a shared machine, since time the server spends waiting for the load generator or the CPU is not in it.
 */
export const withCpu = (pid: number, seconds: number, round: () => Sample) => (): Sample => {
  const before = processCpuMicros(pid)
  const sample = round()
  const requests = sample.rps * seconds
  return requests > 0 ? { ...sample, cpuMicros: (processCpuMicros(pid) - before) / requests } : sample
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

// wrk prints latencies with their unit.
const wrkMillis = (value: string, unit: string): number =>
  Number(value) * (unit === "us" ? 0.001 : unit === "s" ? 1000 : unit === "m" ? 60_000 : 1)

/** Requests per second and latency against `url` for `seconds`, with `connections` open, from a separate process. */
export const measure = (
  url: string,
  options: { readonly seconds: number; readonly connections: number; readonly headers?: Record<string, string> }
): Sample => {
  const headerArgs = Object.entries(options.headers ?? {}).flatMap(([key, value]) => ["-H", `${key}: ${value}`])
  if (loadGenerator === "wrk") {
    const cpu = pin ? ["taskset", "-c", "1"] : []
    const output = execFileSync(cpu[0] ?? "wrk", [
      ...cpu.slice(1),
      ...(pin ? ["wrk"] : []),
      "-t1",
      "--latency",
      `-c${options.connections}`,
      `-d${options.seconds}s`,
      ...headerArgs,
      url
    ], { encoding: "utf8" })
    const rps = /Requests\/sec:\s+([\d.]+)/.exec(output)
    const non2xx = /Non-2xx or 3xx responses:\s+(\d+)/.exec(output)
    if (non2xx) throw new Error(`${url}: ${non2xx[1]} non-2xx responses`)
    const percentile = (p: string) => {
      const match = new RegExp(`^\\s*${p}%\\s+([\\d.]+)(us|ms|s|m)`, "m").exec(output)
      return match ? wrkMillis(match[1]!, match[2]!) : Number.NaN
    }
    return { rps: Number(rps?.[1] ?? 0), p50: percentile("50"), p99: percentile("99") }
  }
  // Pinned to the CPU the server is not on, as wrk is.
  const client = ["--import", "tsx", "scripts/bench/autocannonClient.ts"]
  const args = [url, String(options.connections), String(options.seconds), JSON.stringify(options.headers ?? {})]
  const output = pin
    ? execFileSync("taskset", ["-c", "1", process.execPath, ...client, ...args], { encoding: "utf8" })
    : execFileSync(process.execPath, [...client, ...args], { encoding: "utf8" })
  const result = JSON.parse(output) as { rps: number; non2xx: number; p50: number; p99: number }
  if (result.non2xx > 0) throw new Error(`${url}: ${result.non2xx} non-2xx responses`)
  return { rps: result.rps, p50: result.p50, p99: result.p99 }
}

export const median = (values: ReadonlyArray<number>): number => {
  const sorted = [...values].sort((a, b) => a - b)
  const middle = Math.floor(sorted.length / 2)
  return sorted.length % 2 === 1 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2
}

const latencyOf = (samples: ReadonlyArray<Sample>): Latency => ({
  p50: median(samples.map((sample) => sample.p50)),
  p99: median(samples.map((sample) => sample.p99))
})

/** Alternates the two targets `rounds` times after a warm-up of each, and compares their medians. */
export const compare = (
  name: string,
  ours: () => Sample,
  baseline: () => Sample,
  rounds = 3
): Row => {
  ours()
  baseline()
  const a: Array<Sample> = []
  const b: Array<Sample> = []
  for (let round = 0; round < rounds; round++) {
    b.push(baseline())
    a.push(ours())
  }
  const oursRps = median(a.map((sample) => sample.rps))
  const baselineRps = median(b.map((sample) => sample.rps))
  const cpu = (samples: ReadonlyArray<Sample>) =>
    samples.every((sample) => sample.cpuMicros !== undefined) ? median(samples.map((s) => s.cpuMicros!)) : undefined
  const oursCpu = cpu(a)
  const baselineCpu = cpu(b)
  return {
    name,
    ours: oursRps,
    baseline: baselineRps,
    ratio: oursRps / baselineRps,
    unit: "req/s",
    ...(oursCpu !== undefined && baselineCpu !== undefined ? { cpu: { ours: oursCpu, baseline: baselineCpu } } : {}),
    latency: { ours: latencyOf(a), baseline: latencyOf(b) }
  }
}

/**
 * The server CPU per request of both sides of a compared case, as a row of its own (no goal: the goals are in
 * requests per second); the ratio is baseline over ours, so higher is better, as for requests per second.
 */
export const cpuRow = (name: string, row: Row): ReadonlyArray<Row> =>
  row.cpu === undefined ? [] : [{
    name,
    ours: row.cpu.ours,
    baseline: row.cpu.baseline,
    ratio: row.cpu.baseline / row.cpu.ours,
    unit: "µs CPU/request; ratio baseline/ours"
  }]

/** A figure as the table shows it: milliseconds to the hundredth, anything else whole. */
const figure = (value: number, unit: string | undefined) => value.toFixed(unit === "ms" ? 2 : 0).padStart(12)

export const printRows = (rows: ReadonlyArray<Row>): void => {
  const width = Math.max(...rows.map((row) => row.name.length), 4)
  console.log(`${"case".padEnd(width)}  ${"ours".padStart(12)}  ${"baseline".padStart(12)}  ratio`)
  for (const row of rows) {
    console.log(
      `${row.name.padEnd(width)}  ${figure(row.ours, row.unit)}  ${figure(row.baseline, row.unit)}  ${
        row.ratio.toFixed(2)
      }${row.unit === undefined ? "" : `  (${row.unit})`}`
    )
  }
  const held = rows.filter((row) => row.goal !== undefined)
  if (held.length > 0) {
    console.log("\ngoals (issue 14)")
    for (const row of held) {
      const goal = row.goal!
      const value = goal.of === "ratio" ? row.ratio : row.ours
      const shown = goal.of === "ratio" ? `ratio ${value.toFixed(2)}` : `${value.toFixed(0)} ${row.unit ?? ""}`.trim()
      console.log(
        `${row.name.padEnd(width)}  ${shown.padStart(12)}  goal ${goalText(goal)}  ${
          meets(goal, value) ? "met" : "NOT MET"
        }`
      )
    }
  }
  for (const row of rows) {
    if (row.latency === undefined) continue
    const { baseline, ours } = row.latency
    console.log(
      `${row.name}: latency p50/p99 ours ${ours.p50.toFixed(1)}/${ours.p99.toFixed(1)} ms, baseline ${
        baseline.p50.toFixed(1)
      }/${baseline.p99.toFixed(1)} ms`
    )
  }
}
