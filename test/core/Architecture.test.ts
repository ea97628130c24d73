import { assert, describe, it } from "@effect/vitest"
import * as Fs from "node:fs"
import * as Path from "node:path"

const root = Path.resolve(import.meta.dirname, "../..")
const core = Path.join(root, "src/core")

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

const coreFiles = (dir: string): Array<string> =>
  Fs.readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const full = Path.join(dir, entry.name)
    return entry.isDirectory() ? coreFiles(full) : /\.[cm]?tsx?$/.test(entry.name) ? [full] : []
  })

describe("src/core boundary", () => {
  it("the checker sees every form of import that leaves src/core", () => {
    const file = Path.join(core, "Example.ts")
    const source = [
      `import { a } from "../api/Api.js"`,
      `export { b } from "../domain/UserRepo.js"`,
      `const c = await import("../dev/SupabaseStandIn.js")`,
      `import "../main.js"`,
      `import { d } from "./ApiError.js"`,
      `import { Effect } from "effect"`
    ].join("\n")
    assert.deepStrictEqual(escapes(file, source), [
      "../api/Api.js",
      "../domain/UserRepo.js",
      "../dev/SupabaseStandIn.js",
      "../main.js"
    ])
  })

  it("no file under src/core imports from outside src/core", () => {
    const files = coreFiles(core)
    assert.isAbove(files.length, 5)
    const violations = files.flatMap((file) =>
      escapes(file, Fs.readFileSync(file, "utf8")).map((specifier) => `${Path.relative(root, file)} -> ${specifier}`)
    )
    assert.deepStrictEqual(violations, [])
  })
})
