/**
 * Clients of the event stream for tests: `open` is the `eventsource` package (a standard EventSource: it reconnects
 * with `Last-Event-ID` when a stream ends), its reading optionally paused; `raw` reads the response itself.
 */
import { EventSource } from "eventsource"
import { createParser, type EventSourceMessage } from "eventsource-parser"

interface Received {
  readonly id: string
  readonly type: string
  readonly data: string
}

/** Event types the tests' streams carry. */
const types = ["notification", "test", "reset", "progress", "message"]

export interface Client {
  readonly events: Array<Received>
  /** How many times the stream was (re)opened. */
  readonly opens: () => number
  /** Stops reading the response (the server's writes then back up), or resumes. */
  readonly pause: () => void
  readonly resume: () => void
  readonly close: () => void
  /** Resolves once `count` events arrived. */
  readonly until: (count: number, what?: string) => Promise<void>
}

const waitFor = async (condition: () => boolean, what: string, attempts = 2400) => {
  for (let i = 0; i < attempts; i++) {
    if (condition()) return
    await new Promise((resolve) => setTimeout(resolve, 25))
  }
  throw new Error(`gave up waiting for ${what}`)
}

/** A gate on a response body: while closed, nothing more is read from the socket. */
const gated = (body: ReadableStream<Uint8Array>, isOpen: () => Promise<void>): ReadableStream<Uint8Array> => {
  const reader = body.getReader()
  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      await isOpen()
      const { done, value } = await reader.read()
      if (done) controller.close()
      else controller.enqueue(value)
    },
    cancel: (reason) => reader.cancel(reason)
  }, { highWaterMark: 0 })
}

export const open = (url: string, options: { readonly token?: string; readonly lastEventId?: string } = {}): Client => {
  const events: Array<Received> = []
  let opens = 0
  let paused = false
  let wake: (() => void) | undefined
  const gate = () => paused ? new Promise<void>((resolve) => (wake = resolve)) : Promise.resolve()
  const source = new EventSource(url, {
    fetch: async (input, init) => {
      const headers: Record<string, string> = { ...(init.headers as Record<string, string>) }
      if (options.token !== undefined) headers.authorization = `Bearer ${options.token}`
      if (opens === 0 && options.lastEventId !== undefined) headers["last-event-id"] = options.lastEventId
      opens++
      const response = await fetch(input, { ...init, headers })
      if (response.body === null) return response
      return new Response(gated(response.body, gate), { status: response.status, headers: response.headers })
    }
  })
  for (const type of types) {
    source.addEventListener(type, (event) => {
      events.push({ id: event.lastEventId, type, data: event.data })
    })
  }
  return {
    events,
    opens: () => opens,
    pause: () => {
      paused = true
    },
    resume: () => {
      paused = false
      wake?.()
      wake = undefined
    },
    close: () => source.close(),
    until: (count, what) => waitFor(() => events.length >= count, what ?? `${count} events`)
  }
}

export interface RawStream {
  readonly response: Response
  /** Everything received so far, as text. */
  readonly text: () => string
  readonly messages: Array<EventSourceMessage>
  readonly comments: Array<string>
  /** Resolves when the server ended the stream. */
  readonly ended: Promise<void>
  readonly waitFor: (condition: () => boolean, what: string) => Promise<void>
  readonly close: () => void
}

/** The stream read as it comes, parsed by `eventsource-parser`; no reconnects. */
export const raw = async (url: string, headers: Record<string, string> = {}): Promise<RawStream> => {
  const controller = new AbortController()
  const response = await fetch(url, { headers, signal: controller.signal })
  let text = ""
  const messages: Array<EventSourceMessage> = []
  const comments: Array<string> = []
  const parser = createParser({
    onEvent: (message) => messages.push(message),
    onComment: (comment) => comments.push(comment)
  })
  const decoder = new TextDecoder()
  const ended = (async () => {
    if (response.body === null) return
    try {
      for await (const chunk of response.body) {
        const piece = decoder.decode(chunk, { stream: true })
        text += piece
        parser.feed(piece)
      }
    } catch {
      // Aborted by `close`.
    }
  })()
  return {
    response,
    text: () => text,
    messages,
    comments,
    ended,
    waitFor: (condition, what) => waitFor(condition, what),
    close: () => controller.abort()
  }
}

export { waitFor }
