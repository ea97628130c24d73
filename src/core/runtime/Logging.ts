/**
 * Structured logging: pretty lines for a terminal or JSON lines for machines, each carrying the request id. Whatever
 * a line holds, control characters in it are escaped, so logged input can neither forge lines nor drive a terminal.
 */
import { Cause, type Fiber, FiberRef, FiberRefs, HashSet, Inspectable, Layer, List, Logger, LogLevel } from "effect"
import * as Fs from "node:fs"
import type { LogFormat, LoggingSettings } from "./LoggingSettings.js"
import { currentRequestId } from "./RequestId.js"

export type { LogFormat } from "./LoggingSettings.js"

/** A log message with named fields, rendered as JSON properties or `key=value` pairs. */
export class LogFields {
  constructor(readonly message: string, readonly fields: Readonly<Record<string, unknown>>) {}
}

export const fields = (message: string, values: Readonly<Record<string, unknown>>): LogFields =>
  new LogFields(message, values)

/** Where finished lines go. */
export type Sink = (line: string) => void

/**
 * Lines are batched and written once per turn of the event loop: one `write` per burst instead of one per line,
 * which matters when every request logs. Whatever is pending is written synchronously when the process exits.
 */
export const stdoutSink = (fd = 1): Sink => {
  let pending: Array<string> = []
  let scheduled = false
  const flush = () => {
    scheduled = false
    if (pending.length === 0) return
    const chunk = pending.join("")
    pending = []
    try {
      Fs.writeSync(fd, chunk)
    } catch {
      // A closed stdout (EPIPE) must not take the server down with it.
    }
  }
  process.once("exit", flush)
  return (line) => {
    pending.push(line + "\n")
    if (!scheduled) {
      scheduled = true
      setImmediate(flush)
    }
  }
}

const colours = {
  TRACE: "\x1b[90m",
  DEBUG: "\x1b[36m",
  INFO: "\x1b[32m",
  WARN: "\x1b[33m",
  ERROR: "\x1b[31m",
  FATAL: "\x1b[35m"
} as Record<string, string>
const dim = "\x1b[2m"
const reset = "\x1b[0m"

const messageText = (message: unknown): { text: string; extra: Readonly<Record<string, unknown>> | undefined } => {
  if (message instanceof LogFields) return { text: message.message, extra: message.fields }
  if (Array.isArray(message)) {
    const parts: Array<string> = []
    let extra: Record<string, unknown> | undefined
    for (const part of message) {
      if (part instanceof LogFields) {
        parts.push(part.message)
        extra = { ...extra, ...part.fields }
      } else parts.push(typeof part === "string" ? part : Inspectable.format(part))
    }
    return { text: parts.join(" "), extra }
  }
  return { text: typeof message === "string" ? message : Inspectable.format(message), extra: undefined }
}

/** `text` cut to `max` characters, the cut marked with how many were left out. */
export const truncate = (text: string, max: number): string =>
  text.length <= max ? text : `${text.slice(0, max)}...[${text.length - max} more characters]`

// C0 and C1 controls, DEL, line and paragraph separators, and the bidirectional formatting characters: matching
// control characters is the point of these two.
/* eslint-disable no-control-regex */
const controls = /[\u0000-\u001f\u007f-\u009f\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g
const controlsButNewline =
  /[\u0000-\u0009\u000b-\u001f\u007f-\u009f\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g
/* eslint-enable no-control-regex */
const namedEscapes: Readonly<Record<string, string>> = { "\n": "\\n", "\r": "\\r", "\t": "\\t" }
const escapeOne = (c: string) => namedEscapes[c] ?? `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`

/** Control characters as JSON-style escapes (`\n`, `\u001b`), on one line. */
export const escapeControls = (text: string): string => text.replace(controls, escapeOne)

const scalar = (value: unknown): string => {
  if (typeof value === "string") return escapeControls(/[\s="]/.test(value) ? JSON.stringify(value) : value)
  if (typeof value === "number" || typeof value === "boolean" || value === null || value === undefined) {
    return String(value)
  }
  return escapeControls(JSON.stringify(Inspectable.toJSON(value)))
}

// Lines of a cause stay lines (a stack trace), indented so none can pass for a log line of its own.
const causeLines = (text: string): string => text.replace(controlsButNewline, escapeOne).replace(/^/gm, "  ")

export interface LoggerOptions {
  readonly format: LogFormat
  readonly sink: Sink
  /** Colour the pretty format (a terminal that wants it). */
  readonly colour?: boolean
}

/** The app's logger: every line gets the request id from the fiber that logs it, without the caller passing it. */
export const make = (options: LoggerOptions): Logger.Logger<unknown, void> => {
  const { format, sink } = options
  const colour = options.colour ?? false
  return Logger.make(({ annotations, cause, context, date, logLevel, message, spans }) => {
    const requestId = FiberRefs.getOrDefault(context, currentRequestId)
    const { extra, text } = messageText(message)
    const causeText = Cause.isEmpty(cause) ? undefined : Cause.pretty(cause, { renderErrorCause: true })
    if (format === "json") {
      const record: Record<string, unknown> = { time: date.toISOString(), level: logLevel.label, message: text }
      if (requestId !== "") record.request_id = requestId
      for (const [key, value] of annotations) record[key] = Inspectable.toJSON(value)
      if (extra !== undefined) { for (const key in extra) record[key] = Inspectable.toJSON(extra[key]) }
      if (!List.isNil(spans)) {
        const now = date.getTime()
        for (const span of spans) record[`span.${span.label}_ms`] = now - span.startTime
      }
      if (causeText !== undefined) record.cause = causeText
      // JSON escapes C0 controls itself; the rest would reach a terminal that shows the file as they are.
      sink(escapeControls(JSON.stringify(record)))
      return
    }
    const level = logLevel.label
    let line = colour
      ? `${dim}${date.toISOString().slice(11, 23)}${reset} ${colours[level] ?? ""}${level.padEnd(5)}${reset}`
      : `${date.toISOString()} ${level.padEnd(5)}`
    if (requestId !== "") line += colour ? ` ${dim}[${requestId}]${reset}` : ` [${requestId}]`
    line += ` ${escapeControls(text)}`
    const pairs: Array<string> = []
    for (const [key, value] of annotations) pairs.push(`${key}=${scalar(value)}`)
    if (extra !== undefined) { for (const key in extra) pairs.push(`${key}=${scalar(extra[key])}`) }
    if (pairs.length > 0) line += colour ? ` ${dim}${pairs.join(" ")}${reset}` : ` ${pairs.join(" ")}`
    if (causeText !== undefined) line += `\n${causeLines(causeText)}`
    sink(line)
  })
}

/** Makes ours the only logger (Effect's defaults would print every line a second time) and sets the minimum level. */
export const layer = (
  options: LoggerOptions & { readonly level: LogLevel.LogLevel }
): Layer.Layer<never> =>
  Layer.merge(
    Layer.locallyScoped(FiberRef.currentLoggers, HashSet.make(make(options))),
    Logger.minimumLogLevel(options.level)
  )

/** The logger from its settings group (`LoggingSettings`), writing to `sink`, coloured on a terminal. */
export const layerFromSettings = (settings: LoggingSettings, sink: Sink = stdoutSink()): Layer.Layer<never> =>
  layer({ format: settings.format, level: settings.level, sink, colour: wantsColour() })

/** Colour only when writing to a terminal and the user has not asked for plain output. */
export const wantsColour = (): boolean => process.stdout.isTTY === true && process.env.NO_COLOR === undefined

/**
 * Logs from inside a running fiber without stepping it: the request pipeline calls this once per request, where
 * `Effect.log` would add a dozen fiber steps to every response.
 */
export const logNow = (
  fiber: Fiber.RuntimeFiber<any, any>,
  level: LogLevel.LogLevel,
  message: unknown,
  cause: Cause.Cause<unknown> = Cause.empty
): void => {
  if (LogLevel.greaterThan(fiber.getFiberRef(FiberRef.currentMinimumLogLevel), level)) return
  const loggers = fiber.getFiberRef(FiberRef.currentLoggers)
  if (HashSet.size(loggers) === 0) return
  const options = {
    fiberId: fiber.id(),
    logLevel: level,
    message,
    cause,
    context: fiber.getFiberRefs(),
    spans: fiber.getFiberRef(FiberRef.currentLogSpan),
    annotations: fiber.getFiberRef(FiberRef.currentLogAnnotations),
    date: new Date()
  }
  for (const logger of loggers) logger.log(options)
}

/** A logger that keeps lines in memory, for tests that read what was logged. */
export const memorySink = (): { readonly sink: Sink; readonly lines: Array<string> } => {
  const lines: Array<string> = []
  return { sink: (line) => void lines.push(line), lines }
}
