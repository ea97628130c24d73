import { assert, describe, it } from "@effect/vitest"
import * as Fs from "node:fs"
import * as Path from "node:path"

const root = Path.resolve(import.meta.dirname, "../..")
const src = Path.join(root, "src")
const core = Path.join(src, "core")

/**
 * Which concern folder of `src/core` may import which: a DAG, bottom first. The top of `src/core` (`index.ts`,
 * `CoreLive.ts`) may import any of them; nothing in them imports the top.
 */
const allowed: Readonly<Record<string, ReadonlyArray<string>>> = {
  errors: [],
  config: [],
  runtime: ["config"],
  clients: ["config", "runtime"],
  db: ["config", "errors", "runtime"],
  auth: ["clients", "config", "errors", "runtime"],
  http: ["config", "errors", "runtime"],
  jobs: ["config", "db", "runtime"],
  realtime: ["config", "db", "errors", "http", "runtime"],
  app: ["auth", "clients", "config", "db", "http", "jobs", "realtime", "runtime"]
}

const topLevelFiles = ["CoreLive.ts", "index.ts"]

/**
 * Which folder of `src` may import which: the app on the core, the development issuer on the core, the testing kit
 * (what users' tests import) on the core and the reference API; nothing imports the kit. `main.ts` may import any.
 */
const srcAllowed: Readonly<Record<string, ReadonlyArray<string>>> = {
  core: [],
  domain: ["core"],
  api: ["core", "domain"],
  dev: ["core"],
  testing: ["api", "core", "domain"]
}

const specifiers = (source: string): Array<string> =>
  [...source.matchAll(/(?:\bfrom\s*|\bimport\s*\(\s*|\bimport\s+)["']([^"']+)["']/g)].map((match) => match[1]!)

/** The imports of `file` that leave `src/core/`: relative paths outside it, or absolute paths. */
const escapes = (file: string, source: string): Array<string> =>
  specifiers(source).filter((specifier) => {
    if (specifier.startsWith(".")) {
      const target = Path.resolve(Path.dirname(file), specifier)
      return target !== core && !target.startsWith(core + Path.sep)
    }
    return specifier.startsWith("/") || specifier.startsWith("src/")
  })

const sourceFiles = (dir: string): Array<string> =>
  Fs.readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const full = Path.join(dir, entry.name)
    return entry.isDirectory() ? sourceFiles(full) : /\.[cm]?tsx?$/.test(entry.name) ? [full] : []
  })

/** The files a file imports (relative imports, type-only ones included), as paths of `.ts` files. */
const imports = (file: string, source: string): Array<string> =>
  specifiers(source)
    .filter((specifier) => specifier.startsWith("."))
    .map((specifier) => Path.resolve(Path.dirname(file), specifier).replace(/\.js$/, ".ts"))

/** The concern folder of a file under `src/core` (`http/node/...` is `http`), or undefined at the top. */
const concernOf = (file: string): string | undefined => {
  const parts = Path.relative(core, file).split(Path.sep)
  return parts.length > 1 ? parts[0] : undefined
}

/** The folder of a file under `src` (`core/auth/Jwks.ts` is `core`), or undefined at its top. */
const srcFolderOf = (file: string): string | undefined => {
  const parts = Path.relative(src, file).split(Path.sep)
  return parts.length > 1 && parts[0] !== ".." ? parts[0] : undefined
}

/** A cycle in a graph given as adjacency lists, or undefined. */
const findCycle = (graph: ReadonlyMap<string, ReadonlyArray<string>>): Array<string> | undefined => {
  const state = new Map<string, "visiting" | "done">()
  const path: Array<string> = []
  const visit = (node: string): Array<string> | undefined => {
    if (state.get(node) === "done") return undefined
    if (state.get(node) === "visiting") return [...path.slice(path.indexOf(node)), node]
    state.set(node, "visiting")
    path.push(node)
    for (const next of graph.get(node) ?? []) {
      const cycle = visit(next)
      if (cycle !== undefined) return cycle
    }
    path.pop()
    state.set(node, "done")
    return undefined
  }
  for (const node of graph.keys()) {
    const cycle = visit(node)
    if (cycle !== undefined) return cycle
  }
  return undefined
}

const read = (file: string) => Fs.readFileSync(file, "utf8")

describe("architecture", () => {
  it("the checker sees every form of import that leaves src/core", () => {
    const file = Path.join(core, "Example.ts")
    const source = [
      `import { a } from "../api/Api.js"`,
      `export { b } from "../domain/UserRepo.js"`,
      `const c = await import("../dev/SupabaseStandIn.js")`,
      `import "../main.js"`,
      `import type { e } from "../domain/UserSync.js"`,
      `export type { f } from "../api/Me.js"`,
      `import { d } from "./ApiError.js"`,
      `import { Effect } from "effect"`
    ].join("\n")
    assert.deepStrictEqual(escapes(file, source), [
      "../api/Api.js",
      "../domain/UserRepo.js",
      "../dev/SupabaseStandIn.js",
      "../main.js",
      "../domain/UserSync.js",
      "../api/Me.js"
    ])
  })

  it("no file under src/core imports from outside src/core (src/api, src/domain, src/dev)", () => {
    const files = sourceFiles(core)
    assert.isAbove(files.length, 5)
    const violations = files.flatMap((file) =>
      escapes(file, read(file)).map((specifier) => `${Path.relative(root, file)} -> ${specifier}`)
    )
    assert.deepStrictEqual(violations, [])
  })

  it("src/core holds one folder per concern, and at its top only the index and CoreLive", () => {
    const entries = Fs.readdirSync(core, { withFileTypes: true })
    assert.deepStrictEqual(entries.filter((entry) => entry.isFile()).map((entry) => entry.name).sort(), topLevelFiles)
    assert.deepStrictEqual(
      entries.filter((entry) => entry.isDirectory()).map((entry) => entry.name).sort(),
      Object.keys(allowed).sort()
    )
  })

  it("the allowed imports between concern folders form a DAG", () => {
    const graph = new Map(Object.entries(allowed))
    assert.isUndefined(findCycle(graph))
    for (const targets of graph.values()) for (const target of targets) assert.include(Object.keys(allowed), target)
  })

  it("the cycle finder finds a cycle, type-only imports included", () => {
    assert.deepStrictEqual(findCycle(new Map([["a", ["b"]], ["b", ["c"]], ["c", ["a"]]])), ["a", "b", "c", "a"])
    const file = Path.join(core, "auth", "Example.ts")
    assert.deepStrictEqual(imports(file, `import type { X } from "./Other.js"`), [Path.join(core, "auth", "Other.ts")])
  })

  it("each concern folder imports only the folders it may (and never the top of src/core)", () => {
    const violations = sourceFiles(core).flatMap((file) => {
      const from = concernOf(file)
      if (from === undefined) return []
      return imports(file, read(file)).flatMap((target) => {
        const to = concernOf(target)
        const ok = to === from || (to !== undefined && (allowed[from] ?? []).includes(to))
        return ok ? [] : [`${Path.relative(core, file)} -> ${Path.relative(core, target)}`]
      })
    })
    assert.deepStrictEqual(violations, [])
  })

  it("each folder of src imports only the folders it may (the testing kit by none)", () => {
    const folders = Fs.readdirSync(src, { withFileTypes: true }).filter((entry) => entry.isDirectory())
    assert.deepStrictEqual(folders.map((entry) => entry.name).sort(), Object.keys(srcAllowed).sort())
    // The package's own entries (`effect-core`, `effect-core/testing`) are for its users: inside, imports are relative.
    const packageName = (JSON.parse(read(Path.join(root, "package.json"))) as { name: string }).name
    const selfImports = sourceFiles(src).flatMap((file) =>
      specifiers(read(file))
        .filter((specifier) => specifier === packageName || specifier.startsWith(`${packageName}/`))
        .map((specifier) => `${Path.relative(src, file)} -> ${specifier}`)
    )
    assert.deepStrictEqual(selfImports, [])
    const violations = sourceFiles(src).flatMap((file) => {
      const from = srcFolderOf(file)
      if (from === undefined) return []
      return imports(file, read(file)).flatMap((target) => {
        const to = srcFolderOf(target)
        const ok = to === from || (to !== undefined && (srcAllowed[from] ?? []).includes(to))
        return ok ? [] : [`${Path.relative(src, file)} -> ${Path.relative(src, target)}`]
      })
    })
    assert.deepStrictEqual(violations, [])
  })

  it("no import cycle anywhere in src, type-only imports included", () => {
    const graph = new Map(sourceFiles(src).map((file) => [file, imports(file, read(file))]))
    const cycle = findCycle(graph)
    assert.isUndefined(cycle, cycle?.map((file) => Path.relative(root, file)).join(" > "))
  })
})
