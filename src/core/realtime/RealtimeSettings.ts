/** The realtime settings: Redis for fan-out across instances, the SSE bus's bounds, stream tickets, event retention. */
import { Config, Duration, type Option, type Redacted } from "effect"
import { atLeast, seconds, secret } from "../config/ConfigReaders.js"

export interface RealtimeSettings {
  /** None: one instance works alone (in-memory backplane and tickets). */
  readonly redisUrl: Option.Option<Redacted.Redacted>
  /** Items one open stream may have waiting; past it the oldest is dropped and the stream ends after what came before. */
  readonly queueSize: number
  /** Dead subscriptions are reaped every this many emits. */
  readonly reapEveryEmits: number
  /** A subscription whose queue was full at this many reaps in a row is dead. */
  readonly fullCyclesBeforeReap: number
  /** A subscription that took nothing from a non-empty queue for this long is dead. */
  readonly inactiveAfter: Duration.Duration
  /** Open streams per instance; past it a new stream is refused with 503. */
  readonly maxSubscribers: number
  /** A comment line this often keeps proxies from closing an idle stream. */
  readonly keepalive: Duration.Duration
  /** How long a stream ticket may wait to be redeemed. */
  readonly ticketTtl: Duration.Duration
  /** How long the event log keeps events (replay horizon). */
  readonly eventsRetention: Duration.Duration
}

export const config: Config.Config<RealtimeSettings> = Config.all({
  redisUrl: secret("REDIS_URL"),
  queueSize: atLeast("SSE_QUEUE_SIZE", 1).pipe(Config.withDefault(100)),
  reapEveryEmits: atLeast("SSE_REAP_EVERY_EMITS", 1).pipe(Config.withDefault(10)),
  fullCyclesBeforeReap: atLeast("SSE_FULL_CYCLES_BEFORE_REAP", 1).pipe(Config.withDefault(3)),
  inactiveAfter: seconds("SSE_INACTIVE_SECONDS").pipe(Config.withDefault(Duration.minutes(30))),
  maxSubscribers: atLeast("SSE_MAX_SUBSCRIBERS", 1).pipe(Config.withDefault(500)),
  keepalive: seconds("SSE_KEEPALIVE_SECONDS").pipe(Config.withDefault(Duration.seconds(30))),
  ticketTtl: seconds("STREAM_TICKET_TTL_SECONDS").pipe(Config.withDefault(Duration.seconds(30))),
  eventsRetention: seconds("EVENTS_RETENTION_SECONDS").pipe(Config.withDefault(Duration.days(7)))
})
