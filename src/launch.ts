/**
 * `npm start`'s entry, built to `dist/main.js`: runs the server bundle (`dist/server.cjs`) from V8's code cache
 * (`dist/server.cache`), which the build writes beside it.
 *
 * Why: compiling the bundle's top level from source takes a parser arena of about 20 MB, freed once it is compiled, but
 * kept by the C allocator for the life of the process (about a sixth of an idle server's memory). From the cache,
 * V8 reads the compiled top level instead; functions compile one by one as they first run. Node 20 takes a code cache
 * only for a script, not for an ES module, hence a CommonJS bundle run here as one.
 *
 * The cache starts with the SHA-256 digest of the bundle it was made from: V8 checks only a source's length, and
 * would run the top level of another bundle of the same length. A cache of another bundle, or one V8 turns down
 * (another Node version, other V8 flags), costs nothing but the memory: the bundle compiles from source, as without
 * one, and the server says so on stderr.
 */
import { createHash } from "node:crypto"
import * as Fs from "node:fs"
import { createRequire } from "node:module"
import * as Path from "node:path"
import { fileURLToPath } from "node:url"
import * as Vm from "node:vm"

const directory = Path.dirname(fileURLToPath(import.meta.url))
const bundle = Path.join(directory, "server.cjs")
const cache = Path.join(directory, "server.cache")
const digestLength = 32

/** The bundle is one function expression, `(function (require, __filename, __dirname) { ... })`. */
type Server = (require: NodeJS.Require, filename: string, dirname: string) => void

/** The bundle's text and its digest. The build writes it in ASCII: read as Latin-1, it is one byte a character. */
const readBundle = () => {
  const bytes = Fs.readFileSync(bundle)
  return { source: bytes.toString("latin1"), digest: createHash("sha256").update(bytes).digest() }
}

const compile = (source: string, cachedData: Buffer | undefined): Vm.Script =>
  new Vm.Script(source, { filename: bundle, cachedData })

const writeCache = (): void => {
  const { digest, source } = readBundle()
  Fs.writeFileSync(cache, Buffer.concat([digest, compile(source, undefined).createCachedData()]))
}

/** Compiles the bundle, from the cache when it is this bundle's, and says on stderr when it is not used. */
const load = (): Vm.Script => {
  const { digest, source } = readBundle()
  const stored = Fs.existsSync(cache) ? Fs.readFileSync(cache) : undefined
  const ours = stored !== undefined && stored.subarray(0, digestLength).equals(digest)
  const script = compile(source, ours ? stored.subarray(digestLength) : undefined)
  const problem = stored === undefined
    ? "is missing"
    : !ours
    ? "was made from another bundle"
    : script.cachedDataRejected === true
    ? "was turned down by V8"
    : undefined
  if (problem !== undefined) process.stderr.write(`${cache} ${problem}: the server compiles from source\n`)
  return script
}

if (process.argv[2] === "--write-code-cache") writeCache()
else (load().runInThisContext() as Server)(createRequire(bundle), bundle, directory)
