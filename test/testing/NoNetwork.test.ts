import { assert, describe, it } from "@effect/vitest"
import { Effect, Exit } from "effect"
import * as Http from "node:http"
import * as Net from "node:net"
import * as NoNetwork from "../../src/testing/NoNetwork.js"

const usedNetwork = (exit: Exit.Exit<unknown, unknown>, what: string) => {
  assert.isTrue(Exit.isFailure(exit))
  if (Exit.isFailure(exit)) {
    const error = exit.cause._tag === "Fail" ? exit.cause.error : undefined
    assert.instanceOf(error, NoNetwork.NetworkUsed)
    assert.include((error as NoNetwork.NetworkUsed).message, what)
  }
}

describe("NoNetwork", () => {
  it.live("a guarded effect that stays off the network gets its value", () =>
    Effect.gen(function*() {
      assert.strictEqual(yield* NoNetwork.guard(Effect.succeed(42)), 42)
    }))

  it.live("a connection (an HTTP client's) fails the guard, even when the code under test swallows the refusal", () =>
    Effect.gen(function*() {
      const exit = yield* Effect.exit(NoNetwork.guard(
        Effect.promise(() => fetch("http://127.0.0.1:65535/").then(() => "answered", () => "swallowed"))
      ))
      usedNetwork(exit, "a socket connected")
    }))

  it.live("a server that listens fails the guard", () =>
    Effect.gen(function*() {
      const exit = yield* Effect.exit(NoNetwork.guard(Effect.sync(() => {
        try {
          Http.createServer().listen(0, "127.0.0.1")
        } catch {
          // Refused, and recorded.
        }
      })))
      usedNetwork(exit, "a server listened")
    }))

  it.live("after the guard the network works again", () =>
    Effect.gen(function*() {
      yield* Effect.exit(
        NoNetwork.guard(Effect.sync(() => new Net.Socket().connect(65535, "127.0.0.1")).pipe(Effect.ignore))
      )
      const port = yield* Effect.async<number>((resume) => {
        const server = Http.createServer().listen(0, "127.0.0.1", () => {
          const address = server.address() as Net.AddressInfo
          server.close(() => resume(Effect.succeed(address.port)))
        })
      })
      assert.isAbove(port, 0)
    }))
})
