/**
 * `npm start`'s entry, built to `dist/main.js`: runs the server bundle (`dist/server.cjs`) from V8's code cache
 * (`dist/server.cache`), which the build writes beside it.
 *
 * Why: compiling the bundle's top level from source takes a parser arena of about 20 MB, freed once it is compiled, but
 * kept by the C allocator for the life of the process (about a sixth of an idle server's memory). From the cache,
 * V8 reads the compiled top level instead; functions compile one by one as they first run. Node 20 takes a code cache
 * only for a script, not for an ES module, hence a CommonJS bundle run here as one.
 *
 * A cache V8 turns down (another Node version, other V8 flags) costs nothing but the memory: the bundle compiles from
 * source, as without one, and the server says so on stderr.
 */
import * as Fs from "node:fs"
import { createRequire } from "node:module"
import * as Path from "node:path"
import { fileURLToPath } from "node:url"
import * as Vm from "node:vm"

const directory = Path.dirname(fileURLToPath(import.meta.url))
const bundle = Path.join(directory, "server.cjs")
const cache = Path.join(directory, "server.cache")

/** The bundle is one function expression, `(function (require, __filename, __dirname) { ... })`. */
type Server = (require: NodeJS.Require, filename: string, dirname: string) => void

const compile = (cachedData: Buffer | undefined): Vm.Script =>
  new Vm.Script(Fs.readFileSync(bundle, "utf8"), {
    filename: bundle,
    cachedData
  })

if (process.argv[2] === "--write-code-cache") {
  Fs.writeFileSync(cache, compile(undefined).createCachedData())
} else {
  const cachedData = Fs.existsSync(cache) ? Fs.readFileSync(cache) : undefined
  const script = compile(cachedData)
  if (cachedData === undefined || script.cachedDataRejected === true) {
    process.stderr.write(
      `${cache} ${cachedData === undefined ? "is missing" : "was turned down by V8"}: the server compiles from source\n`
    )
  }
  ;(script.runInThisContext() as Server)(createRequire(bundle), bundle, directory)
}
