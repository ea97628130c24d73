/**
 * The console in a real Chromium against the real server process (development mode, so the local issuer runs):
 * driven by roles and names as a person with a screen reader would, with every request, console message and page
 * error recorded. The steps run in order on one page; every wait is bounded.
 */
import { afterAll, assert, beforeAll, describe, it, onTestFailed } from "@effect/vitest"
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"
import type { Browser, BrowserContext, Page } from "playwright-core"
import * as Chromium from "../support/Browser.js"
import { provided } from "../support/Provided.js"
import { freePort, type ServerProcess, startWithEnv } from "../support/ServerProcess.js"

const screenshots = Path.resolve(import.meta.dirname, "../../test-output/console")

interface Recorder {
  readonly urls: Array<string>
  readonly consoleErrors: Array<string>
  readonly pageErrors: Array<string>
}

const record = (page: Page): Recorder => {
  const recorder: Recorder = { urls: [], consoleErrors: [], pageErrors: [] }
  page.on("request", (request) => void recorder.urls.push(request.url()))
  page.on("websocket", (socket) => void recorder.urls.push(socket.url()))
  page.on("console", (message) => {
    if (message.type() === "error") recorder.consoleErrors.push(message.text())
  })
  page.on("pageerror", (error) => void recorder.pageErrors.push(error.message))
  return recorder
}

const signInResponse = async (server: ServerProcess) => {
  const response = await fetch(`${server.url}/console/dev-sign-in`, { method: "POST" })
  assert.strictEqual(response.status, 201)
  return (await response.json()) as { access_token: string; email: string }
}

describe("the console in Chromium", () => {
  const dataDir = Fs.mkdtempSync(Path.join(Os.tmpdir(), "console-test-"))
  let env: Record<string, string>
  let server: ServerProcess
  let browser: Browser | undefined
  let context: BrowserContext
  let page: Page
  let recorder: Recorder
  let token: string

  beforeAll(async () => {
    Fs.mkdirSync(screenshots, { recursive: true })
    env = {
      APP_ENV: "dev",
      PORT: "0",
      DATABASE_URL: provided("databaseUrl"),
      // The development issuer keeps its keys beside the embedded database's folder: a fresh one per run.
      EMBEDDED_DB_DIR: Path.join(dataDir, "pglite"),
      DEV_ISSUER_PORT: String(await freePort())
    }
    server = await startWithEnv(env)
    browser = await Chromium.launch()
    context = await browser.newContext({ viewport: { width: 1280, height: 860 } })
    context.setDefaultTimeout(15_000)
    page = await context.newPage()
    recorder = record(page)
  })

  afterAll(async () => {
    await Chromium.close(browser)
    await server?.stop()
    Fs.rmSync(dataDir, { recursive: true, force: true })
  })

  const failureScreenshot = (name: string) =>
    onTestFailed(async () => {
      await page?.screenshot({ path: Path.join(screenshots, `failed-${name}.png`), fullPage: true }).catch(() => {})
    })

  const status = () => page.getByRole("status")

  it("in development, signs in as a generated user without pasting anything", async () => {
    const phone = await browser!.newContext({ viewport: { width: 390, height: 844 }, isMobile: true })
    try {
      const other = await phone.newPage()
      const otherRecorder = record(other)
      await other.goto(`${server.url}/console`)
      await other.getByRole("button", { name: "Sign in as a generated user" }).click()
      await other.getByText(/^Signed in as user-[0-9a-f]+@stand-in\.test\.$/).waitFor()
      assert.deepStrictEqual(otherRecorder.pageErrors, [])
      await other.screenshot({ path: Path.join(screenshots, "console-phone.png"), fullPage: true })
    } finally {
      await phone.close()
    }
  })

  it("connects with a pasted token, which then stays out of the page", async () => {
    failureScreenshot("connect")
    const signedIn = await signInResponse(server)
    token = signedIn.access_token
    await page.goto(`${server.url}/console`)
    assert.strictEqual(await status().textContent(), "Not connected")
    await page.getByRole("textbox", { name: "Access token" }).fill(token)
    await page.getByRole("button", { name: "Connect" }).click()
    await page.getByText(`Signed in as ${signedIn.email}.`).waitFor()
    assert.strictEqual(await page.getByRole("textbox", { name: "Access token" }).inputValue(), "")
    assert.notInclude(await page.content(), token)
    // A string, evaluated in the page: the test's own types know no DOM.
    const stored = await page.evaluate("[localStorage.length, sessionStorage.length, document.cookie]")
    assert.deepStrictEqual(stored, [0, 0, ""])
  })

  it("made no request carrying the token, none beyond the server, and no page error", () => {
    assert.isAbove(recorder.urls.length, 0)
    for (const url of recorder.urls) {
      assert.notInclude(url, token)
      assert.match(url, new RegExp(`^(http|ws)://127\\.0\\.0\\.1:${server.port}/`), "same origin only")
    }
    assert.deepStrictEqual(recorder.pageErrors, [])
  })
})
