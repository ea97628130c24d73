/**
 * Debian's Chromium driven by playwright-core, headless and kept on loopback: no sandbox (tests run as root), no
 * GPU, and none of the browser's own traffic (updates, sync, QUIC probes).
 */
import * as Fs from "node:fs"
import { type Browser, chromium } from "playwright-core"

const executablePath = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium"

const flags = [
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync"
]

export const launch = (): Promise<Browser> => {
  if (!Fs.existsSync(executablePath)) {
    throw new Error(`No Chromium at ${executablePath}: run 'bash scripts/chromium.sh install' (CI does)`)
  }
  return chromium.launch({ executablePath, headless: true, args: flags, timeout: 30_000 })
}

/** Closes the browser, giving up after `ms` so a stuck browser never holds the run. */
export const close = (browser: Browser | undefined, ms = 10_000): Promise<void> =>
  browser === undefined
    ? Promise.resolve()
    : Promise.race([browser.close(), new Promise<void>((resolve) => setTimeout(resolve, ms).unref())])

/** Polls `check` until it stops throwing; after `timeoutMs` fails with the last error, prefixed by `what`. */
export const eventually = async <A>(what: string, check: () => Promise<A> | A, timeoutMs = 15_000): Promise<A> => {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    try {
      return await check()
    } catch (error) {
      if (Date.now() > deadline) {
        throw new Error(`gave up after ${timeoutMs} ms waiting for ${what}: ${(error as Error).message}`)
      }
      await new Promise((resolve) => setTimeout(resolve, 50))
    }
  }
}
