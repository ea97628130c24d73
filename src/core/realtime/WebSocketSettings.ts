/** The WebSocket hub's settings: how often sockets are pinged, and how much unsent data one socket may hold. */
import { Config, Duration } from "effect"
import { atLeast, seconds } from "../config/ConfigReaders.js"

export interface WebSocketSettings {
  /** A ping this often; a socket that has not answered the previous one by then is terminated (`WS_PING_SECONDS`). */
  readonly pingInterval: Duration.Duration
  /** Unsent bytes past which a socket is closed with 1013 (`WS_MAX_BUFFERED_BYTES`). */
  readonly maxBufferedBytes: number
}

export const config: Config.Config<WebSocketSettings> = Config.all({
  pingInterval: seconds("WS_PING_SECONDS").pipe(Config.withDefault(Duration.seconds(30))),
  maxBufferedBytes: atLeast("WS_MAX_BUFFERED_BYTES", 1024).pipe(Config.withDefault(1024 * 1024))
})
