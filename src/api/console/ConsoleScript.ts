/**
 * The console's browser script, plain JavaScript served as is. The token lives in this script's memory and travels
 * only in `Authorization` headers; `EventSource` and `WebSocket`, which cannot send headers, get a fresh stream
 * ticket each time they (re)connect, so the page reconnects itself rather than letting `EventSource` retry with a
 * spent ticket.
 */
export const script = String.raw`"use strict"
const prefix = document.body.dataset.apiPrefix
const $ = (id) => document.getElementById(id)
const statusView = $("stream-status")
const tokenInput = $("access-token")
const connectForm = $("connect-form")
const disconnectButton = $("disconnect")
const identity = $("identity")
const errorView = $("error")
const sendForm = $("send-form")
const titleInput = $("title")
const bodyInput = $("body")
const jobForm = $("job-form")
const jobsList = $("jobs")
const list = $("notifications")
const emptyNote = $("notifications-empty")

const state = {
  token: null,
  // Bumped on every sign-in and sign-out: callbacks of an older session see it changed and stop.
  session: 0,
  source: null,
  retryTimer: null,
  attempts: 0,
  lastEventId: null,
  everLive: false,
  shown: new Map(),
  sockets: new Set()
}

class ApiFailure extends Error {
  constructor(status, code, message) {
    super(message)
    this.status = status
    this.code = code
  }
}

const showError = (error) => {
  errorView.textContent = error instanceof ApiFailure
    ? error.message + " (" + error.code + ")"
    : error instanceof Error ? error.message : String(error)
}
const clearError = () => { errorView.textContent = "" }

const setStatus = (label, kind) => {
  statusView.textContent = label
  statusView.dataset.state = kind
}

/** Calls the API with the token in the Authorization header; a non-2xx answer becomes an ApiFailure. */
const api = async (method, path, body) => {
  const headers = { authorization: "Bearer " + state.token }
  if (body !== undefined) headers["content-type"] = "application/json"
  const response = await fetch(prefix + path, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
    cache: "no-store"
  })
  const text = await response.text()
  const json = text === "" ? null : JSON.parse(text)
  if (!response.ok) {
    const error = json && json.error ? json.error : { code: "HTTP_" + response.status, message: response.statusText }
    throw new ApiFailure(response.status, error.code, error.message)
  }
  return json
}

const streamTicket = async () => (await api("POST", "/stream-tickets")).ticket

/** Waits longer after each failed attempt, up to a few seconds, with jitter so many pages do not retry together. */
const backoff = (attempts) => Math.min(3000, 250 * 2 ** attempts) * (0.75 + Math.random() / 2)

const setSignedIn = (signedIn) => {
  for (const button of [...sendForm.querySelectorAll("button"), ...jobForm.querySelectorAll("button")]) {
    button.disabled = !signedIn
  }
  disconnectButton.hidden = !signedIn
}

// Notifications -----------------------------------------------------------------------------------------------

const timeOf = (notification) => {
  const at = Date.parse(notification.created_at)
  return Number.isNaN(at) ? Date.now() : at
}

/** Shows a notification once (the list and the stream may both bring it), newest first. */
const showNotification = (notification) => {
  const key = String(notification.id)
  if (state.shown.has(key)) return
  const at = timeOf(notification)
  const item = document.createElement("li")
  item.dataset.at = String(at)
  const title = document.createElement("span")
  title.className = "notification-title"
  title.textContent = notification.title
  item.append(title)
  if (notification.body) {
    const body = document.createElement("span")
    body.className = "notification-body"
    body.textContent = notification.body
    item.append(body)
  }
  const time = document.createElement("time")
  time.className = "notification-time"
  time.dateTime = new Date(at).toISOString()
  time.textContent = new Date(at).toLocaleString()
  item.append(time)
  state.shown.set(key, item)
  // Items at the same instant keep arrival order: the later arrival is the newer one.
  const before = [...list.children].find((other) => Number(other.dataset.at) <= at)
  list.insertBefore(item, before ?? null)
  emptyNote.hidden = true
}

/** The latest notifications, for a stream that has no cursor to replay from. */
const loadRecent = async (session) => {
  const page = await api("GET", "/notifications?limit=20")
  if (session !== state.session) return
  for (const notification of page.notifications) showNotification(notification)
}

// The event stream --------------------------------------------------------------------------------------------

const closeStream = () => {
  if (state.source !== null) state.source.close()
  state.source = null
  clearTimeout(state.retryTimer)
  state.retryTimer = null
}

const reconnectLater = (session) => {
  if (session !== state.session) return
  setStatus(state.everLive ? "Reconnecting" : "Connecting", "reconnecting")
  clearTimeout(state.retryTimer)
  state.retryTimer = setTimeout(() => openStream(session), backoff(state.attempts++))
}

const remember = (event) => {
  if (event.lastEventId !== "") state.lastEventId = event.lastEventId
}

const openStream = async (session) => {
  if (session !== state.session) return
  let ticket
  try {
    ticket = await streamTicket()
  } catch (error) {
    if (error instanceof ApiFailure && error.status === 401) return signOut("The token was refused: sign in again.")
    return reconnectLater(session)
  }
  if (session !== state.session) return
  const cursor = state.lastEventId
  const url = prefix + "/events?ticket=" + encodeURIComponent(ticket)
    + (cursor === null ? "" : "&last_event_id=" + encodeURIComponent(cursor))
  const source = new EventSource(url)
  state.source = source
  source.addEventListener("open", () => {
    if (state.source !== source) return
    state.attempts = 0
    state.everLive = true
    setStatus("Live", "live")
    clearError()
    // With a cursor the stream replays what was missed; without one, the list fills the gap.
    if (cursor === null) loadRecent(session).catch(showError)
  })
  source.addEventListener("notification", (event) => {
    if (state.source !== source) return
    remember(event)
    showNotification(JSON.parse(event.data))
  })
  source.addEventListener("reset", (event) => {
    if (state.source !== source) return
    remember(event)
    loadRecent(session).catch(showError)
  })
  // EventSource would retry the same URL, whose ticket is spent: close it and reconnect with a fresh one.
  source.addEventListener("error", () => {
    source.close()
    if (state.source !== source) return
    state.source = null
    reconnectLater(session)
  })
}

// Jobs --------------------------------------------------------------------------------------------------------

const socketUrl = (path) => (location.protocol === "https:" ? "wss://" : "ws://") + location.host + prefix + path

const renderJob = (view, job) => {
  if (job.step !== undefined) view.step = job.step
  if (job.steps !== undefined) view.steps = job.steps
  if (job.status !== undefined) view.status = job.status
  view.bar.setAttribute("aria-valuenow", String(view.step))
  view.bar.setAttribute("aria-valuemax", String(view.steps))
  view.bar.setAttribute("aria-valuetext", view.step + " of " + view.steps + " steps, " + view.status)
  view.bar.dataset.status = view.status
  view.fill.style.width = (view.steps > 0 ? (100 * view.step) / view.steps : 0) + "%"
  view.statusText.textContent = view.status
  view.statusText.dataset.status = view.status
}

const addJob = (job) => {
  const item = document.createElement("li")
  const name = document.createElement("span")
  name.className = "job-name"
  name.id = "job-" + job.id
  name.textContent = "Job " + String(job.id).slice(0, 8)
  const statusText = document.createElement("span")
  statusText.className = "job-status"
  statusText.id = "job-status-" + job.id
  const bar = document.createElement("div")
  bar.className = "bar"
  bar.setAttribute("role", "progressbar")
  bar.setAttribute("aria-labelledby", name.id)
  bar.setAttribute("aria-describedby", statusText.id)
  bar.setAttribute("aria-valuemin", "0")
  const fill = document.createElement("div")
  fill.className = "bar-fill"
  bar.append(fill)
  item.append(name, statusText, bar)
  jobsList.prepend(item)
  const view = { id: job.id, item, bar, fill, statusText, step: 0, steps: 0, status: "queued", done: false }
  renderJob(view, job)
  return view
}

const failJob = (view, error) => {
  view.done = true
  renderJob(view, { status: "failed" })
  const note = document.createElement("p")
  note.className = "job-error"
  note.textContent = typeof error === "string" ? error : error && error.message ? error.message : "The job failed."
  view.item.append(note)
}

/** Follows a job over a WebSocket until it ends; a dropped socket reconnects with a fresh ticket. */
const watchJob = async (session, view, attempts) => {
  if (session !== state.session || view.done) return
  let ticket
  try {
    ticket = await streamTicket()
  } catch (error) {
    if (error instanceof ApiFailure && error.status === 401) return
    return void setTimeout(() => watchJob(session, view, attempts + 1), backoff(attempts))
  }
  if (session !== state.session) return
  const socket = new WebSocket(socketUrl("/ws/jobs/" + encodeURIComponent(view.id) + "?ticket=" + encodeURIComponent(ticket)))
  state.sockets.add(socket)
  socket.addEventListener("message", (event) => {
    const message = JSON.parse(event.data)
    if (message.type === "job.snapshot") renderJob(view, message.job)
    else if (message.type === "job.progress") renderJob(view, { step: message.step, steps: message.steps, status: "running" })
    else if (message.type === "job.completed") {
      view.done = true
      renderJob(view, { ...message.job, status: "completed" })
    } else if (message.type === "job.failed") failJob(view, message.error)
  })
  socket.addEventListener("close", () => {
    state.sockets.delete(socket)
    if (!view.done && session === state.session) setTimeout(() => watchJob(session, view, attempts + 1), backoff(attempts))
  })
}

const startJob = async () => {
  const steps = Number($("job-steps").value)
  const stepMs = Number($("job-step-ms").value)
  const failAt = $("job-fail-at").value
  const session = state.session
  const input = { steps, step_ms: stepMs }
  if (failAt !== "") input.fail_at_step = Number(failAt)
  const job = await api("POST", "/jobs", input)
  if (session !== state.session) return
  watchJob(session, addJob(job), 0)
}

// Signing in and out ------------------------------------------------------------------------------------------

const signOut = (message) => {
  state.session++
  state.token = null
  state.lastEventId = null
  state.everLive = false
  state.attempts = 0
  closeStream()
  for (const socket of state.sockets) socket.close(1000)
  state.sockets.clear()
  setSignedIn(false)
  setStatus("Not connected", "idle")
  identity.textContent = "Not signed in."
  // What was shown belongs to the user who signed out.
  list.replaceChildren()
  jobsList.replaceChildren()
  state.shown.clear()
  emptyNote.hidden = false
  if (message) showError(message)
}

const signIn = async (token) => {
  signOut()
  clearError()
  const session = state.session
  state.token = token
  let me
  try {
    me = await api("GET", "/me")
  } catch (error) {
    if (session !== state.session) return
    signOut()
    return showError(error)
  }
  if (session !== state.session) return
  identity.textContent = "Signed in as " + (me.email ?? me.supabase_user_id) + "."
  setSignedIn(true)
  setStatus("Connecting", "reconnecting")
  openStream(session)
}

connectForm.addEventListener("submit", (event) => {
  event.preventDefault()
  const token = tokenInput.value.trim()
  if (token === "") return showError("Paste an access token first.")
  // The token leaves the field once it is in memory, so it is not left on screen.
  tokenInput.value = ""
  signIn(token)
})

disconnectButton.addEventListener("click", () => signOut())

sendForm.addEventListener("submit", (event) => {
  event.preventDefault()
  const title = titleInput.value.trim()
  if (title === "") return
  api("POST", "/notifications", { title, body: bodyInput.value })
    .then(() => {
      titleInput.value = ""
      bodyInput.value = ""
    })
    .catch(showError)
})

jobForm.addEventListener("submit", (event) => {
  event.preventDefault()
  startJob().catch(showError)
})

if (document.body.dataset.devSignIn === "true") {
  $("dev-sign-in").hidden = false
  $("dev-sign-in-button").addEventListener("click", async () => {
    try {
      const response = await fetch("/console/dev-sign-in", { method: "POST", cache: "no-store" })
      const json = await response.json()
      if (!response.ok) throw new ApiFailure(response.status, json.error.code, json.error.message)
      await signIn(json.access_token)
    } catch (error) {
      showError(error)
    }
  })
}
`
