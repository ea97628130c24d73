/**
 * A real `ws` client for the WebSocket tests: every message and the close kept as they arrive, or the HTTP
 * response of a refused upgrade (status and body).
 */
import WebSocket from "ws"

export interface Opened {
  readonly _tag: "Opened"
  readonly socket: WebSocket
  /** Every text message so far, parsed. */
  readonly messages: Array<any>
  /** Resolves with the close code once the socket is closed. */
  readonly closed: Promise<number>
}

export interface Refused {
  readonly _tag: "Refused"
  readonly status: number
  readonly headers: Record<string, string | Array<string> | undefined>
  readonly body: any
}

/** Opens `url` (`ws://...`), resolving once it is open or refused. */
export const open = (
  url: string,
  options: { readonly token?: string; readonly autoPong?: boolean; readonly headers?: Record<string, string> } = {}
): Promise<Opened | Refused> =>
  new Promise((resolve, reject) => {
    const socket = new WebSocket(url, {
      headers: {
        ...(options.token === undefined ? {} : { authorization: `Bearer ${options.token}` }),
        ...options.headers
      },
      autoPong: options.autoPong ?? true
    })
    const messages: Array<any> = []
    const closed = new Promise<number>((done) => socket.once("close", (code) => done(code)))
    socket.on("message", (data) => messages.push(JSON.parse(String(data))))
    socket.once("open", () => resolve({ _tag: "Opened", socket, messages, closed }))
    socket.once("unexpected-response", (_request, response) => {
      let text = ""
      response.on("data", (chunk: Buffer) => (text += chunk.toString()))
      response.on("end", () =>
        resolve({
          _tag: "Refused",
          status: response.statusCode ?? 0,
          headers: response.headers,
          body: text === "" ? undefined : JSON.parse(text)
        }))
    })
    socket.once("error", (error) => reject(error))
  })

export const opened = async (pending: Promise<Opened | Refused>): Promise<Opened> => {
  const result = await pending
  if (result._tag !== "Opened") throw new Error(`upgrade refused: ${result.status} ${JSON.stringify(result.body)}`)
  return result
}

export const refused = async (pending: Promise<Opened | Refused>): Promise<Refused> => {
  const result = await pending
  if (result._tag !== "Refused") {
    result.socket.terminate()
    throw new Error("upgrade accepted")
  }
  return result
}

/** `http://host:port` as `ws://host:port`. */
export const wsUrl = (httpUrl: string, path: string): string => `${httpUrl.replace(/^http/, "ws")}${path}`
