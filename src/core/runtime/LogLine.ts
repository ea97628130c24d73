/**
 * One log line, formatted: pretty for a terminal or JSON for machines. Whatever a line holds, control characters in
 * it are escaped, so logged input can neither forge lines nor drive a terminal. Every request logs a line, so the
 * common case (a message with a few plain fields, no annotations or spans) skips what it does not need.
 */
import { Cause, HashMap, Inspectable, List, type LogLevel, type LogSpan } from "effect"
import type { LogFormat } from "./LoggingSettings.js"

/** A log message with named fields, rendered as JSON properties or `key=value` pairs. */
export class LogFields {
  constructor(readonly message: string, readonly fields: Readonly<Record<string, unknown>>) {}
}

/** What a line is made of, as a logger receives it, the request id already read from the fiber. */
export type FormatLine = (
  requestId: string,
  logLevel: LogLevel.LogLevel,
  message: unknown,
  annotations: HashMap.HashMap<string, unknown>,
  spans: List.List<LogSpan.LogSpan>,
  cause: Cause.Cause<unknown>,
  date: Date
) => string

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

// C0 and C1 controls, DEL, line and paragraph separators, and the bidirectional formatting characters: matching
// control characters is the point of these. The non-global twin answers "is there any?" without the `g` flag's
// `lastIndex` state, so a clean line (nearly every line) is scanned once and never copied.
/* eslint-disable no-control-regex */
const controls = /[\u0000-\u001f\u007f-\u009f\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g
const anyControl = /[\u0000-\u001f\u007f-\u009f\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]/
const controlsButNewline =
  /[\u0000-\u0009\u000b-\u001f\u007f-\u009f\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g
/* eslint-enable no-control-regex */
const namedEscapes: Readonly<Record<string, string>> = { "\n": "\\n", "\r": "\\r", "\t": "\\t" }
const escapeOne = (c: string) => namedEscapes[c] ?? `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`

/** Control characters as JSON-style escapes (`\n`, `\u001b`), on one line. */
export const escapeControls = (text: string): string => anyControl.test(text) ? text.replace(controls, escapeOne) : text

const scalar = (value: unknown): string => {
  if (typeof value === "string") return escapeControls(/[\s="]/.test(value) ? JSON.stringify(value) : value)
  if (typeof value === "number" || typeof value === "boolean" || value === null || value === undefined) {
    return String(value)
  }
  return escapeControls(JSON.stringify(Inspectable.toJSON(value)))
}

// Lines of a cause stay lines (a stack trace), indented so none can pass for a log line of its own.
const causeLines = (text: string): string => text.replace(controlsButNewline, escapeOne).replace(/^/gm, "  ")

// Many lines are written within the same millisecond (one per request), and `toISOString` is not free.
let isoMillis = Number.NaN
let isoText = ""
const isoTime = (date: Date): string => {
  const millis = date.getTime()
  if (millis !== isoMillis) {
    isoText = date.toISOString()
    isoMillis = millis
  }
  return isoText
}

// `Inspectable.toJSON` leaves every primitive as it is: only an object (or a function) can have a `toJSON` to call.
const jsonValue = (value: unknown): unknown =>
  typeof value === "object" || typeof value === "function" ? Inspectable.toJSON(value) : value

/** Sets a field on the record; `__proto__` as a plain key, where assigning it would replace the record's prototype. */
const setField = (record: Record<string, unknown>, key: string, value: unknown) => {
  if (key === "__proto__") Object.defineProperty(record, key, { value, enumerable: true, writable: true })
  else record[key] = value
}

/** A JSON line as a record, stringified: what every JSON line is (`directLine`'s too), and how most are made. */
export const recordLine: FormatLine = (requestId, logLevel, message, annotations, spans, cause, date) => {
  const { extra, text } = messageText(message)
  const record: Record<string, unknown> = { time: isoTime(date), level: logLevel.label, message: text }
  if (requestId !== "") record.request_id = requestId
  if (HashMap.size(annotations) > 0) { for (const [key, value] of annotations) setField(record, key, jsonValue(value)) }
  if (extra !== undefined) { for (const key in extra) setField(record, key, jsonValue(extra[key])) }
  if (!List.isNil(spans)) {
    const now = date.getTime()
    for (const span of spans) record[`span.${span.label}_ms`] = now - span.startTime
  }
  if (!Cause.isEmpty(cause)) record.cause = Cause.pretty(cause, { renderErrorCause: true })
  // JSON escapes C0 controls itself; the rest would reach a terminal that shows the file as they are.
  return escapeControls(JSON.stringify(record))
}

/** Printable ASCII but the quote and the backslash: a JSON string body as it is (a regular expression flattens a
 * string built up in pieces once, where `charCodeAt` in a loop may pay for it on each call). */
const plain = /^[\x20\x21\x23-\x5b\x5d-\x7e]*$/

// Past this length the scan costs more than the engine's own `JSON.stringify`.
const scanLimit = 128

/** `text` as a JSON string, escaped as `recordLine` escapes it (escaping is per character, so piece by piece). */
const jsonString = (text: string): string =>
  text.length <= scanLimit && plain.test(text) ? `"${text}"` : escapeControls(JSON.stringify(text))

// The keys a record of the shortcut's may hold as they come: not an array index (a record puts those first), nothing
// to escape, and none of the line's own keys (a field would overwrite it in place).
const plainKey = /^[A-Za-z_$][\w$.-]*$/
const reservedKeys = new Set(["time", "level", "message", "request_id"])
const knownKeys = new Map<string, boolean>()
const isPlainKey = (key: string): boolean => {
  let plain = knownKeys.get(key)
  if (plain === undefined) {
    plain = plainKey.test(key) && !reservedKeys.has(key)
    // Field names come from code, but a caller could make them up: only so many are remembered.
    if (knownKeys.size < 512) knownKeys.set(key, plain)
  }
  return plain
}

/**
 * The line of a message whose fields are strings, numbers, booleans or null under plain keys, with no annotation,
 * span or cause (a request's line), written out directly: the same text as `recordLine`'s, without building a record
 * for `JSON.stringify` and scanning the whole line for controls. Undefined for any other line.
 */
const directLine = (requestId: string, logLevel: LogLevel.LogLevel, message: unknown, date: Date) => {
  const { extra, text } = messageText(message)
  let line = `{"time":"${isoTime(date)}","level":"${logLevel.label}","message":${jsonString(text)}`
  if (requestId !== "") line += `,"request_id":${jsonString(requestId)}`
  if (extra !== undefined) {
    for (const key in extra) {
      if (!isPlainKey(key)) return undefined
      const value = extra[key]
      switch (typeof value) {
        case "string":
          line += `,"${key}":${jsonString(value)}`
          break
        case "number":
          line += `,"${key}":${Number.isFinite(value) ? String(value) : "null"}`
          break
        case "boolean":
          line += `,"${key}":${value}`
          break
        case "undefined":
          // `JSON.stringify` leaves such a property out.
          break
        default:
          if (value !== null) return undefined
          line += `,"${key}":null`
      }
    }
  }
  return line + "}"
}

const jsonLine: FormatLine = (requestId, logLevel, message, annotations, spans, cause, date) =>
  (HashMap.size(annotations) === 0 && List.isNil(spans) && Cause.isEmpty(cause)
    ? directLine(requestId, logLevel, message, date)
    : undefined) ?? recordLine(requestId, logLevel, message, annotations, spans, cause, date)

const prettyLine =
  (colour: boolean): FormatLine => (requestId, logLevel, message, annotations, _spans, cause, date) => {
    const { extra, text } = messageText(message)
    const level = logLevel.label
    let line = colour
      ? `${dim}${isoTime(date).slice(11, 23)}${reset} ${colours[level] ?? ""}${level.padEnd(5)}${reset}`
      : `${isoTime(date)} ${level.padEnd(5)}`
    if (requestId !== "") line += colour ? ` ${dim}[${requestId}]${reset}` : ` [${requestId}]`
    line += ` ${escapeControls(text)}`
    const pairs: Array<string> = []
    if (HashMap.size(annotations) > 0) { for (const [key, value] of annotations) pairs.push(`${key}=${scalar(value)}`) }
    if (extra !== undefined) { for (const key in extra) pairs.push(`${key}=${scalar(extra[key])}`) }
    if (pairs.length > 0) line += colour ? ` ${dim}${pairs.join(" ")}${reset}` : ` ${pairs.join(" ")}`
    if (!Cause.isEmpty(cause)) line += `\n${causeLines(Cause.pretty(cause, { renderErrorCause: true }))}`
    return line
  }

/** The formatter of `format`: one function for every way a line is logged, so they cannot drift apart. */
export const formatter = (format: LogFormat, colour: boolean): FormatLine =>
  format === "json" ? jsonLine : prettyLine(colour)
