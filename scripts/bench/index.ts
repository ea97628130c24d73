/** `npm run bench`: every benchmark case, each against its baseline in the same run, with the ratio. */
import * as AuthBench from "./auth.js"
import * as Database from "./database.js"
import * as Http from "./http.js"
import { loadGenerator, printRows, type Row } from "./load.js"
import * as Me from "./me.js"
import * as Memory from "./memory.js"
import * as Sse from "./sse.js"
import * as Ws from "./ws.js"

const cases: ReadonlyArray<{ readonly name: string; readonly run: () => Promise<ReadonlyArray<Row>> }> = [
  { name: "http", run: () => Http.run() },
  { name: "database", run: () => Database.run() },
  { name: "auth", run: () => AuthBench.run() },
  { name: "me", run: () => Me.run() },
  { name: "memory", run: () => Memory.run() },
  { name: "sse", run: () => Sse.run() },
  { name: "ws", run: () => Ws.run() }
]

const only = process.argv.slice(2)
const rows: Array<Row> = []
console.log(`load generator: ${loadGenerator}; server pinned to CPU 0 and load to CPU 1 when taskset exists\n`)
for (const benchCase of cases) {
  if (only.length > 0 && !only.includes(benchCase.name)) continue
  rows.push(...(await benchCase.run()))
}
printRows(rows)
