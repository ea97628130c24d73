/**
 * HTTP/1.1 over a raw TCP socket, for what a client library would refuse to send (no `Host`, a `CONNECT`, an
 * absolute-form target, a head or body dribbled byte by byte) and for reading exactly what the server answers.
 */
import { Effect, type Scope } from "effect"
import * as Net from "node:net"

export interface RawResponse {
  readonly status: number
  /** Lower-case names; a repeated header keeps its last value. */
  readonly headers: Readonly<Record<string, string>>
  readonly body: string
  readonly json: () => any
}

export interface RawConnection {
  readonly socket: Net.Socket
  readonly write: (data: string | Uint8Array) => Effect.Effect<void>
  /** The next complete response on the connection (bodies framed by `content-length`, or ended by the close). */
  readonly response: Effect.Effect<RawResponse, Error>
  /** Resolves once the server has closed the connection (or reset it). */
  readonly closed: Effect.Effect<void>
  /** Everything received so far, undecoded. */
  readonly received: () => string
}

const headEnd = "\r\n\r\n"

const parse = (data: string, ended: boolean): { response: RawResponse; rest: string } | undefined => {
  const at = data.indexOf(headEnd)
  if (at === -1) return undefined
  const [statusLine = "", ...lines] = data.slice(0, at).split("\r\n")
  const headers: Record<string, string> = {}
  for (const line of lines) {
    const colon = line.indexOf(":")
    headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim()
  }
  const start = at + headEnd.length
  const status = Number(statusLine.split(" ")[1])
  // Interim (1xx) responses have no body.
  const length = status < 200
    ? 0
    : headers["content-length"] === undefined
    ? undefined
    : Number(headers["content-length"])
  if (length === undefined && !ended) return undefined
  const end = length === undefined ? data.length : start + length
  if (data.length < end) return undefined
  const body = data.slice(start, end)
  return {
    response: { status, headers, body, json: () => JSON.parse(body) },
    rest: data.slice(end)
  }
}

/** Opens a connection to `127.0.0.1:port`, closed with the scope. */
export const connect = (port: number): Effect.Effect<RawConnection, Error, Scope.Scope> =>
  Effect.acquireRelease(
    Effect.async<RawConnection, Error>((resume) => {
      const socket = Net.connect({ host: "127.0.0.1", port })
      let all = ""
      let pending = ""
      let ended = false
      const waiters = new Set<() => void>()
      const notify = () => {
        for (const waiter of [...waiters]) waiter()
      }
      socket.setEncoding("latin1")
      socket.on("data", (chunk: string) => {
        all += chunk
        pending += chunk
        notify()
      })
      socket.on("close", () => {
        ended = true
        notify()
      })
      socket.on("error", () => {})
      const until = <A>(check: () => A | undefined) =>
        Effect.async<A>((resume) => {
          const attempt = () => {
            const value = check()
            if (value === undefined) return false
            waiters.delete(waiter)
            resume(Effect.succeed(value))
            return true
          }
          const waiter = () => void attempt()
          if (!attempt()) waiters.add(waiter)
          return Effect.sync(() => waiters.delete(waiter))
        })
      const connection: RawConnection = {
        socket,
        write: (data) =>
          Effect.async<void>((resume) => {
            if (socket.destroyed) return resume(Effect.void)
            socket.write(data, () => resume(Effect.void))
          }),
        response: Effect.flatMap(
          until(() => {
            const parsed = parse(pending, ended)
            if (parsed !== undefined) {
              pending = parsed.rest
              return { response: parsed.response }
            }
            return ended ? { response: undefined } : undefined
          }),
          ({ response }) =>
            response === undefined
              ? Effect.fail(
                new Error(`connection closed without a response (received ${JSON.stringify(all.slice(0, 200))})`)
              )
              : Effect.succeed(response)
        ),
        closed: until(() => (ended ? true : undefined)),
        received: () => all
      }
      socket.once("connect", () => resume(Effect.succeed(connection)))
      socket.once("error", (error) => resume(Effect.fail(error)))
    }),
    (connection) => Effect.sync(() => connection.socket.destroy())
  )

/** One request written whole on a fresh connection, and the response read back. */
export const exchange = (port: number, request: string | Uint8Array) =>
  Effect.scoped(
    Effect.flatMap(connect(port), (connection) => Effect.zipRight(connection.write(request), connection.response))
  )

/** The port of a server URL such as `http://127.0.0.1:1234`. */
export const portOf = (url: string): number => Number(new URL(url).port)
