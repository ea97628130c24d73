/**
 * `npm run build` (and `prestart`): the server as plain JavaScript in `dist/`, so production runs no TypeScript loader
 * and loads only the code it uses.
 * - `dist/server.cjs`: the server, bundled into one function expression that `dist/main.js` runs (see `src/launch.ts`).
 * - `dist/server.cache`: V8's code cache for it, written by the Node that builds it.
 * - `dist/main.js`: `npm start`'s entry.
 * Code loaded on demand stays out of the bundle, in `node_modules`: the embedded database's packages, required when
 * there is no `DATABASE_URL`, and the docs page's viewer script (3 MB), read when the page is first built.
 */
import * as esbuild from "esbuild"
import { execFileSync } from "node:child_process"
import * as Fs from "node:fs"
import * as Path from "node:path"

/** `dist`, or the folder given as the first argument (the tests and benchmarks build into ones of their own). */
const outdir = process.argv[2] ?? "dist"
/** The server's entry: `src/main.ts`, or the second argument (the SSE benchmark's server, with its own routes). */
const entry = process.argv[3] ?? "src/main.ts"

// The embedded database loads its WebAssembly next to its own modules; the rest are optional native add-ons.
const external = ["@electric-sql/pglite", "@electric-sql/pglite-socket", "pg-native", "bufferutil", "utf-8-validate"]

/**
 * The docs page's viewer script is a 3 MB string in `@effect/platform`'s `internal/httpApiScalar.js`. V8 keeps a
 * script's whole source for as long as it runs: bundled, those 3 MB would stay in every server's memory. In its place,
 * a module whose `javascript` requires the installed package's own copy when first read (when the docs page is first
 * built).
 */
const docsViewerFromPackage: esbuild.Plugin = {
  name: "docs-viewer-from-package",
  setup(build) {
    build.onResolve(
      { filter: /^\.\/internal\/httpApiScalar\.js$/ },
      (args) =>
        args.importer.includes(`${Path.sep}@effect${Path.sep}platform${Path.sep}`)
          ? { path: "httpApiScalar", namespace: "docs-viewer" }
          : undefined
    )
    build.onLoad({ filter: /.*/, namespace: "docs-viewer" }, () => ({
      loader: "js",
      resolveDir: process.cwd(),
      contents: [
        "const Path = require(\"node:path\")",
        "const module_ = \"@effect/platform/HttpApiScalar\"",
        "let javascript",
        "Object.defineProperty(exports, \"javascript\", {",
        "  enumerable: true,",
        "  get: () => javascript ??= require(",
        "    Path.join(Path.dirname(require.resolve(module_)), \"internal\", \"httpApiScalar.js\")",
        "  ).javascript",
        "})"
      ].join("\n")
    }))
  }
}

/**
 * Non-ASCII text anywhere in a script makes V8 hold its whole source as two bytes a character: escaped, it stays one
 * byte a character. `\uXXXX` means the same in strings, templates, regular expressions, identifiers and comments.
 */
const asciiOnly = (code: string): string =>
  // eslint-disable-next-line no-control-regex
  code.replace(/[^\x00-\x7f]/g, (char) => `\\u${char.charCodeAt(0).toString(16).padStart(4, "0")}`)

const common = {
  bundle: true,
  platform: "node",
  target: "node20",
  // Comments go, names stay (stack traces and error classes read as in the sources).
  minifyWhitespace: true,
  minifySyntax: true,
  legalComments: "none",
  write: false,
  logLevel: "warning"
} satisfies esbuild.BuildOptions

const server = await esbuild.build({
  ...common,
  entryPoints: [entry],
  outfile: Path.join(outdir, "server.cjs"),
  format: "cjs",
  external,
  plugins: [docsViewerFromPackage],
  // `import()` of the embedded database's packages becomes `require` (they ship CommonJS too): V8 does not keep what
  // a script needs for `import()` in its code cache (Node 20). (An `import()` of bundled code would make esbuild wrap
  // it, and every module it imports, in a function run on first use, which also keeps tree shaking from them.)
  supported: { "dynamic-import": false },
  // A function expression: `src/launch.ts` calls it with the bundle's `require` and paths.
  // `import.meta.url` (the migrations find their folder from it) is the bundle's own URL.
  banner: {
    js:
      "(function (require, __filename, __dirname) {\n\"use strict\";\nconst importMetaUrl = require(\"node:url\").pathToFileURL(__filename).href;"
  },
  footer: { js: "})" },
  define: { "import.meta.url": "importMetaUrl" }
})

const launcher = await esbuild.build({
  ...common,
  entryPoints: ["src/launch.ts"],
  outfile: Path.join(outdir, "main.js"),
  format: "esm"
})

Fs.rmSync(outdir, { recursive: true, force: true })
Fs.mkdirSync(outdir, { recursive: true })
for (const file of [...server.outputFiles, ...launcher.outputFiles]) Fs.writeFileSync(file.path, asciiOnly(file.text))
// Written by a Node like the one `npm start` runs: a cache is taken only by the Node and V8 flags that wrote it.
execFileSync(process.execPath, [Path.join(outdir, "main.js"), "--write-code-cache"], { stdio: "inherit" })
