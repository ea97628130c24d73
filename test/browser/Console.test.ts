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
  /** Console errors, each marked with whether the server was down (being restarted) when it was logged. */
  readonly consoleErrors: Array<{ readonly text: string; readonly serverDown: boolean }>
  readonly pageErrors: Array<string>
  /** Every WebSocket message the page received, by the socket's URL. */
  readonly socketMessages: Array<{ readonly url: string; readonly message: any }>
  serverDown: boolean
}

const record = (page: Page): Recorder => {
  const recorder: Recorder = { urls: [], consoleErrors: [], pageErrors: [], socketMessages: [], serverDown: false }
  page.on("request", (request) => void recorder.urls.push(request.url()))
  page.on("websocket", (socket) => {
    recorder.urls.push(socket.url())
    socket.on("framereceived", (frame) => {
      recorder.socketMessages.push({ url: socket.url(), message: JSON.parse(String(frame.payload)) })
    })
  })
  page.on("console", (message) => {
    if (message.type() === "error") {
      recorder.consoleErrors.push({ text: message.text(), serverDown: recorder.serverDown })
    }
  })
  page.on("pageerror", (error) => void recorder.pageErrors.push(error.message))
  return recorder
}

interface Frame {
  readonly event: string
  readonly id: string
  readonly data: string
}

/** Every server-sent event the page receives, as Chromium's network layer saw it. */
const recordFrames = async (context: BrowserContext, page: Page): Promise<Array<Frame>> => {
  const frames: Array<Frame> = []
  const session = await context.newCDPSession(page)
  session.on("Network.eventSourceMessageReceived", (message) => {
    frames.push({ event: message.eventName, id: message.eventId, data: message.data })
  })
  await session.send("Network.enable")
  return frames
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
  let frames: Array<Frame>
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
    context = await browser.newContext({ viewport: { width: 1280, height: 860 }, reducedMotion: "reduce" })
    context.setDefaultTimeout(15_000)
    page = await context.newPage()
    recorder = record(page)
    frames = await recordFrames(context, page)
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
  const statusSays = (text: string) => status().filter({ hasText: new RegExp(`^${text}$`) }).waitFor()
  const notifications = () => page.getByRole("list", { name: "Notifications" }).getByRole("listitem")
  const shownTitles = () => notifications().locator(".notification-title").allTextContents()

  /** A notification made by a plain HTTP client, not the page. */
  const notify = async (base: string, title: string) => {
    const response = await fetch(`${base}/api/v1/notifications`, {
      method: "POST",
      headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
      body: JSON.stringify({ title, body: "made elsewhere" })
    })
    assert.strictEqual(response.status, 201, await response.clone().text())
    return (await response.json()) as { id: unknown; title: string }
  }

  const storedTitles = async () => {
    const response = await fetch(`${server.url}/api/v1/notifications?limit=50`, {
      headers: { authorization: `Bearer ${token}` }
    })
    assert.strictEqual(response.status, 200)
    return ((await response.json()) as { notifications: Array<{ title: string }> }).notifications.map((n) => n.title)
  }

  it("in development, signs in as a generated user without pasting anything (on a phone)", async () => {
    const phone = await browser!.newContext({ viewport: { width: 390, height: 844 }, isMobile: true })
    try {
      const other = await phone.newPage()
      const otherRecorder = record(other)
      await other.goto(`${server.url}/console`)
      const signedIn = other.waitForResponse((response) => response.url().endsWith("/console/dev-sign-in"))
      await other.getByRole("button", { name: "Sign in as a generated user" }).click()
      const generated = (await (await signedIn).json()) as { access_token: string; email: string }
      await other.getByText(`Signed in as ${generated.email}.`).waitFor()
      await other.getByRole("status").filter({ hasText: /^Live$/ }).waitFor()
      const response = await fetch(`${server.url}/api/v1/notifications`, {
        method: "POST",
        headers: { authorization: `Bearer ${generated.access_token}`, "content-type": "application/json" },
        body: JSON.stringify({ title: "hello, generated user", body: "" })
      })
      assert.strictEqual(response.status, 201)
      await other.getByRole("list", { name: "Notifications" }).getByText("hello, generated user").waitFor()
      assert.deepStrictEqual(otherRecorder.pageErrors, [])
      assert.deepStrictEqual(otherRecorder.consoleErrors, [])
      await other.screenshot({ path: Path.join(screenshots, "console-phone.png"), fullPage: true })
    } finally {
      await phone.close()
    }
  })

  it("a refused token is said so, and nothing connects", async () => {
    const refused = await browser!.newContext()
    try {
      const other = await refused.newPage()
      const otherRecorder = record(other)
      await other.goto(`${server.url}/console`)
      await other.getByRole("textbox", { name: "Access token" }).fill("not-a-token")
      await other.getByRole("button", { name: "Connect" }).click()
      await other.getByRole("alert").filter({ hasText: "UNAUTHORIZED" }).waitFor()
      assert.strictEqual(await other.getByRole("status").textContent(), "Not connected")
      assert.isTrue(await other.getByRole("button", { name: "Send" }).isDisabled())
      assert.deepStrictEqual(otherRecorder.pageErrors, [])
      // The browser reports the 401 itself; nothing else went wrong.
      assert.deepStrictEqual(otherRecorder.consoleErrors.map((error) => error.text), [
        "Failed to load resource: the server responded with a status of 401 (Unauthorized)"
      ])
    } finally {
      await refused.close()
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

  /** Starts a job from the page with the steps and step duration given. */
  const startJob = async () => {
    const created = page.waitForResponse((response) => response.url().endsWith("/api/v1/jobs"))
    await page.getByRole("button", { name: "Start job" }).click()
    const { id } = (await (await created).json()) as { id: string }
    const job = page.getByRole("list", { name: "Jobs" }).getByRole("listitem").first()
    return { id, job, bar: job.getByRole("progressbar") }
  }

  /** The messages of each WebSocket the page opened on job `id`, in order. */
  const socketsOf = (id: string): Array<Array<any>> => {
    const sockets = new Map<string, Array<any>>()
    for (const { message, url } of recorder.socketMessages) {
      if (url.includes(`/ws/jobs/${id}?`)) sockets.set(url, [...(sockets.get(url) ?? []), message])
    }
    return [...sockets.values()]
  }

  /** Each socket told a snapshot, then every step after it in order; the last one told the end, at `steps`. */
  const assertJobStream = (sockets: Array<Array<any>>, steps: number) => {
    assert.isAbove(sockets.length, 0)
    for (const messages of sockets) {
      assert.strictEqual(messages[0].type, "job.snapshot")
      const from = messages[0].job.step as number
      const progress = messages.filter((m) => m.type === "job.progress").map((m) => m.step as number)
      assert.deepStrictEqual(progress, progress.map((_, i) => from + i + 1), "no step missing or repeated")
    }
    const last = sockets.at(-1)!
    assert.strictEqual(last.at(-1).type, "job.completed")
    assert.strictEqual(last.at(-1).job.step, steps)
  }

  it("is Live, and notifications made elsewhere appear, newest first", async () => {
    failureScreenshot("live")
    await statusSays("Live")
    for (const title of ["elsewhere 1", "elsewhere 2", "elsewhere 3"]) await notify(server.url, title)
    await Chromium.eventually("three notifications, newest first", async () => {
      assert.deepStrictEqual(await shownTitles(), ["elsewhere 3", "elsewhere 2", "elsewhere 1"])
    })
  })

  it("a notification sent from the page comes back over the stream", async () => {
    failureScreenshot("send")
    await page.getByRole("textbox", { name: "Title" }).fill("from the page")
    await page.getByRole("textbox", { name: "Body" }).fill("sent with the Send button")
    await page.getByRole("button", { name: "Send" }).click()
    await Chromium.eventually("the sent notification at the top", async () => {
      assert.deepStrictEqual((await shownTitles())[0], "from the page")
    })
    assert.strictEqual(await page.getByRole("textbox", { name: "Title" }).inputValue(), "")
    assert.deepStrictEqual(await storedTitles(), await shownTitles())
  })

  it("a job's bar fills step by step and says completed", async () => {
    failureScreenshot("job")
    await page.getByRole("spinbutton", { name: "Steps" }).fill("5")
    await page.getByRole("spinbutton", { name: "Step duration (ms)" }).fill("150")
    const { bar, id, job } = await startJob()
    const seen: Array<number> = []
    await Chromium.eventually("the bar to fill", async () => {
      const now = Number(await bar.getAttribute("aria-valuenow"))
      if (seen.at(-1) !== now) seen.push(now)
      assert.strictEqual(now, 5)
    })
    assert.strictEqual(await bar.getAttribute("aria-valuemax"), "5")
    await job.getByText("completed", { exact: true }).waitFor()
    assert.deepStrictEqual(seen, [...seen].sort((a, b) => a - b), "the bar never goes back")
    assertJobStream(socketsOf(id), 5)
    await page.screenshot({ path: Path.join(screenshots, "console-1280x860.png") })
  })

  it("a job that fails says failed, and why", async () => {
    failureScreenshot("failed-job")
    await page.getByRole("spinbutton", { name: "Steps" }).fill("4")
    await page.getByRole("spinbutton", { name: "Step duration (ms)" }).fill("50")
    await page.getByRole("spinbutton", { name: "Fail at step" }).fill("2")
    const { bar, id, job } = await startJob()
    await job.getByText("failed", { exact: true }).waitFor()
    await job.getByText("Failed at step 2").waitFor()
    assert.strictEqual(await bar.getAttribute("aria-valuemax"), "4")
    assert.isBelow(Number(await bar.getAttribute("aria-valuenow")), 4)
    const sockets = socketsOf(id)
    assert.strictEqual(sockets.at(-1)!.at(-1).type, "job.failed")
    await page.getByRole("spinbutton", { name: "Fail at step" }).fill("")
  })

  it("survives a server restart: Reconnecting, then Live, and what was made meanwhile appears once", {
    timeout: 120_000
  }, async () => {
    failureScreenshot("restart")
    const before = await shownTitles()
    // A job in flight when the server stops: the page follows it again once the server is back.
    await page.getByRole("spinbutton", { name: "Steps" }).fill("20")
    await page.getByRole("spinbutton", { name: "Step duration (ms)" }).fill("250")
    const { bar, id, job } = await startJob()
    await Chromium.eventually("the job to be under way", async () => {
      assert.isAtLeast(Number(await bar.getAttribute("aria-valuenow")), 1)
    })
    const port = server.port
    recorder.serverDown = true
    assert.strictEqual(await server.stop(), 0)
    await statusSays("Reconnecting")
    // Another instance on the same database (and the same issuer) takes the notifications while this one is down.
    const other = await startWithEnv(env)
    try {
      await notify(other.url, "while down 1")
      await notify(other.url, "while down 2")
    } finally {
      assert.strictEqual(await other.stop(), 0)
    }
    server = await startWithEnv({ ...env, PORT: String(port) })
    await statusSays("Live")
    recorder.serverDown = false
    await Chromium.eventually("the notifications made while down", async () => {
      assert.deepStrictEqual(await shownTitles(), ["while down 2", "while down 1", ...before])
    })
    // Exactly once on the wire too, not only on screen.
    const notificationFrames = frames.filter((frame) => frame.event === "notification")
    const ids = notificationFrames.map((frame) => frame.id)
    assert.strictEqual(new Set(ids).size, ids.length, `event ids delivered twice: ${ids.join(",")}`)
    const titles = notificationFrames.map((frame) => (JSON.parse(frame.data) as { title: string }).title)
    assert.deepStrictEqual([...titles].reverse(), await shownTitles())

    await job.getByText("completed", { exact: true }).waitFor({ timeout: 30_000 })
    assert.strictEqual(await bar.getAttribute("aria-valuenow"), "20")
    const sockets = socketsOf(id)
    assert.isAtLeast(sockets.length, 2, "the page opened a new socket after the restart")
    assertJobStream(sockets, 20)
    await page.screenshot({ path: Path.join(screenshots, "console-after-restart.png") })
  })

  it("Disconnect forgets the token and what was shown; connecting again lists the latest", async () => {
    failureScreenshot("disconnect")
    await page.getByRole("button", { name: "Disconnect" }).click()
    assert.strictEqual(await status().textContent(), "Not connected")
    assert.isTrue(await page.getByRole("button", { name: "Send" }).isDisabled())
    assert.isTrue(await page.getByRole("button", { name: "Start job" }).isDisabled())
    assert.deepStrictEqual(await shownTitles(), [])
    await notify(server.url, "after disconnect")
    // A fresh connection has no cursor: the page lists the latest, and the stream goes on from there.
    await page.getByRole("textbox", { name: "Access token" }).fill(token)
    await page.getByRole("button", { name: "Connect" }).click()
    await statusSays("Live")
    await Chromium.eventually("the latest notifications", async () => {
      assert.deepStrictEqual(await shownTitles(), await storedTitles())
    })
    assert.strictEqual((await shownTitles())[0], "after disconnect")
    await notify(server.url, "after reconnecting")
    await Chromium.eventually("the next one, live", async () => {
      assert.strictEqual((await shownTitles())[0], "after reconnecting")
    })
  })

  it("made no request carrying the token, none beyond the server, and no page or console error", () => {
    assert.isAbove(recorder.urls.length, 0)
    for (const url of recorder.urls) {
      assert.notInclude(url, token)
      assert.match(url, new RegExp(`^(http|ws)://127\\.0\\.0\\.1:${server.port}/`), "same origin only")
    }
    assert.deepStrictEqual(recorder.pageErrors, [])
    // While the server was down the browser itself reports the refused connections; nothing else is allowed.
    const unexpected = recorder.consoleErrors.filter((error) =>
      !(error.serverDown && /net::ERR_CONNECTION_REFUSED|WebSocket connection to .* failed/.test(error.text))
    )
    assert.deepStrictEqual(unexpected, [])
  })
})
