/**
 * A tripwire for tests that must not touch the network: while an effect runs under `guard`, connecting any socket
 * (TCP, TLS, IPC: HTTP clients, database drivers...) and listening on any server are refused and recorded, and the
 * guarded effect then fails with `NetworkUsed`, saying what was tried and where, whatever the code under test made
 * of the refusal.
 */
import { Data, Effect } from "effect"
import * as Net from "node:net"

/** The guarded effect, or something running meanwhile, connected a socket or listened. */
export class NetworkUsed extends Data.TaggedError("NetworkUsed")<{ readonly attempts: ReadonlyArray<string> }> {
  override get message() {
    return `The network was used ${this.attempts.length} time(s):\n${this.attempts.join("\n")}`
  }
}

const recorders = new Set<Array<string>>()
const original = { connect: Net.Socket.prototype.connect, listen: Net.Server.prototype.listen }

const refuse = (what: string): never => {
  // The caller's frames, without this one.
  const where = (new Error().stack ?? "").split("\n").slice(3, 8).join("\n")
  for (const attempts of recorders) attempts.push(`${what}\n${where}`)
  throw new Error(`NoNetwork: ${what} refused`)
}

const arm = (attempts: Array<string>) => {
  if (recorders.size === 0) {
    Net.Socket.prototype.connect = function connect() {
      return refuse("a socket connected")
    }
    Net.Server.prototype.listen = function listen() {
      return refuse("a server listened")
    }
  }
  recorders.add(attempts)
}

const disarm = (attempts: Array<string>) => {
  recorders.delete(attempts)
  if (recorders.size === 0) {
    Net.Socket.prototype.connect = original.connect
    Net.Server.prototype.listen = original.listen
  }
}

/** Runs `effect` with the network off; fails with `NetworkUsed` if anything tried to use it meanwhile. */
export const guard = <A, E, R>(effect: Effect.Effect<A, E, R>): Effect.Effect<A, E | NetworkUsed, R> =>
  Effect.suspend(() => {
    const attempts: Array<string> = []
    return Effect.acquireUseRelease(
      Effect.sync(() => arm(attempts)),
      () => Effect.exit(effect),
      () => Effect.sync(() => disarm(attempts))
    ).pipe(
      Effect.flatMap((exit): Effect.Effect<A, E | NetworkUsed> =>
        attempts.length > 0 ? Effect.fail(new NetworkUsed({ attempts })) : exit
      )
    )
  })
