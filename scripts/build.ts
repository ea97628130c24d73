/**
 * `npm run build` (and `prestart`): the server bundled into `dist/` as plain JavaScript, so production runs no
 * TypeScript loader and loads only the code it uses. Code loaded on demand (the docs page, the embedded database)
 * stays in chunks of its own or in `node_modules`, read only when it first runs.
 */
import * as esbuild from "esbuild"
import * as Fs from "node:fs"
import * as Path from "node:path"

const outdir = "dist"

// The embedded database loads its WebAssembly next to its own modules; the rest are optional native add-ons.
const external = ["@electric-sql/pglite", "@electric-sql/pglite-socket", "pg-native", "bufferutil", "utf-8-validate"]

/**
 * Non-ASCII text anywhere in a script makes V8 hold its whole source as two bytes a character: escaped, it stays one
 * byte a character. `\uXXXX` means the same in strings, templates, regular expressions, identifiers and comments.
 */
const asciiOnly = (code: string): string =>
  // eslint-disable-next-line no-control-regex
  code.replace(/[^\x00-\x7f]/g, (char) => `\\u${char.charCodeAt(0).toString(16).padStart(4, "0")}`)

const result = await esbuild.build({
  entryPoints: { main: "src/main.ts" },
  outdir,
  bundle: true,
  splitting: true,
  format: "esm",
  platform: "node",
  target: "node20",
  external,
  // Comments go, names stay (stack traces and error classes read as in the sources).
  minifyWhitespace: true,
  minifySyntax: true,
  legalComments: "none",
  // Bundled CommonJS packages call `require` for Node's own modules.
  banner: {
    js:
      "import { createRequire as __createRequire } from \"node:module\"; const require = __createRequire(import.meta.url);"
  },
  write: false,
  logLevel: "warning"
})

Fs.rmSync(outdir, { recursive: true, force: true })
for (const file of result.outputFiles) {
  Fs.mkdirSync(Path.dirname(file.path), { recursive: true })
  Fs.writeFileSync(file.path, asciiOnly(file.text))
}
