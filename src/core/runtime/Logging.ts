/**
 * Structured logging: pretty lines for a terminal or JSON lines for machines (formatted by `LogLine`), each carrying
 * the request id.
 */
import { Cause, type Fiber, FiberRef, FiberRefs, HashSet, Layer, Logger, LogLevel } from "effect"
import * as Fs from "node:fs"
import type { LogFormat, LoggingSettings } from "./LoggingSettings.js"
import { type FormatLine, formatter, LogFields } from "./LogLine.js"
import { currentRequestId } from "./RequestId.js"

export type { LogFormat } from "./LoggingSettings.js"
export { escapeControls, LogFields } from "./LogLine.js"

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
    const chunk = pending.join("\n") + "\n"
    pending = []
    try {
      Fs.writeSync(fd, chunk)
    } catch {
      // A closed stdout (EPIPE) must not take the server down with it.
    }
  }
  process.once("exit", flush)
  return (line) => {
    pending.push(line)
    if (!scheduled) {
      scheduled = true
      setImmediate(flush)
    }
  }
}

/** `text` cut to `max` characters, the cut marked with how many were left out. */
export const truncate = (text: string, max: number): string =>
  text.length <= max ? text : `${text.slice(0, max)}...[${text.length - max} more characters]`

export interface LoggerOptions {
  readonly format: LogFormat
  readonly sink: Sink
  /** Colour the pretty format (a terminal that wants it). */
  readonly colour?: boolean
}

/** A logger's way to write a line when the caller already holds its parts, the request id among them. */
type WriteLine = (...line: Parameters<FormatLine>) => void

// The loggers `make` made, and how to reach each without `Logger.Options`, whose `context` costs `logNow` a copy of
// the fiber's refs.
const writers = new WeakMap<Logger.Logger<unknown, void>, WriteLine>()

/** The app's logger: every line gets the request id from the fiber that logs it, without the caller passing it. */
export const make = (options: LoggerOptions): Logger.Logger<unknown, void> => {
  const { sink } = options
  const format = formatter(options.format, options.colour ?? false)
  const logger = Logger.make<unknown, void>(({ annotations, cause, context, date, logLevel, message, spans }) =>
    sink(format(FiberRefs.getOrDefault(context, currentRequestId), logLevel, message, annotations, spans, cause, date))
  )
  writers.set(
    logger,
    (requestId, logLevel, message, annotations, spans, cause, date) =>
      sink(format(requestId, logLevel, message, annotations, spans, cause, date))
  )
  return logger
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
  const requestId = fiber.getFiberRef(currentRequestId)
  const annotations = fiber.getFiberRef(FiberRef.currentLogAnnotations)
  const spans = fiber.getFiberRef(FiberRef.currentLogSpan)
  const date = new Date()
  let options: Logger.Logger.Options<unknown> | undefined
  for (const logger of loggers) {
    const write = writers.get(logger)
    if (write !== undefined) write(requestId, level, message, annotations, spans, cause, date)
    else {
      // Someone else's logger reads what it likes from the fiber's refs: taken once, and only for such a logger.
      options ??= {
        fiberId: fiber.id(),
        logLevel: level,
        message,
        cause,
        context: fiber.getFiberRefs(),
        spans,
        annotations,
        date
      }
      logger.log(options)
    }
  }
}

/** A logger that keeps lines in memory, for tests that read what was logged. */
export const memorySink = (): { readonly sink: Sink; readonly lines: Array<string> } => {
  const lines: Array<string> = []
  return { sink: (line) => void lines.push(line), lines }
}
