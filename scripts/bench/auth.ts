/**
 * Token verification: cold (distinct tokens, so every one is parsed, checked and its signature verified) through
 * `JwksVerifier` against jose's `jwtVerify` with the same key and the same claim checks, alternating in one process;
 * and the cached path (the same tokens again) against what jose would pay for them.
 * Alone: `node --import tsx scripts/bench/auth.ts`.
 */
import { Effect, Layer, ManagedRuntime, Option } from "effect"
import { importJWK, jwtVerify } from "jose"
import { fileURLToPath } from "node:url"
import * as Jwks from "../../src/core/auth/Jwks.js"
import * as HttpClients from "../../src/core/clients/HttpClients.js"
import { startSupabaseStandIn } from "../../src/dev/SupabaseStandIn.js"
import { median, printRows, type Row } from "./load.js"

const seconds = (start: number) => (performance.now() - start) / 1000

export const run = async (
  options: { readonly rounds?: number; readonly batch?: number } = {}
): Promise<ReadonlyArray<Row>> => {
  const rounds = options.rounds ?? 20
  const batch = options.batch ?? 400
  const server = await startSupabaseStandIn()
  const runtime = ManagedRuntime.make(
    Jwks.layer({
      ...Jwks.defaults,
      jwksUrl: server.jwksUrl,
      issuer: server.issuer,
      audience: "authenticated",
      legacySecret: Option.none()
    }).pipe(Layer.provide(HttpClients.layer()))
  )
  try {
    const verifier = await runtime.runPromise(Jwks.JwksVerifier)
    const key = await importJWK(server.publicJwk(), "ES256")
    const joseOptions = {
      algorithms: ["ES256"],
      issuer: server.issuer,
      audience: "authenticated",
      clockTolerance: 30,
      requiredClaims: ["exp", "iat", "sub", "role", "session_id"]
    }
    const user = server.createUser({ email: "bench@example.com", password: "secret-123" })
    // Distinct tokens (each its own session), one set per side and round, plus a warm-up of each.
    const sign = async (count: number) => {
      const tokens: Array<string> = []
      for (let i = 0; i < count; i++) tokens.push(await server.signToken({ user: user.id }))
      return tokens
    }
    const warmups = 2
    const oursBatches = await Promise.all(Array.from({ length: warmups + rounds }, () => sign(batch)))
    const joseBatches = await Promise.all(Array.from({ length: warmups + rounds }, () => sign(batch)))

    const ours = async (tokens: ReadonlyArray<string>) => {
      const start = performance.now()
      await runtime.runPromise(Effect.forEach(tokens, verifier.verify, { discard: true }))
      return tokens.length / seconds(start)
    }
    const jose = async (tokens: ReadonlyArray<string>) => {
      const start = performance.now()
      for (const token of tokens) await jwtVerify(token, key, joseOptions)
      return tokens.length / seconds(start)
    }

    for (let i = 0; i < warmups; i++) {
      await ours(oursBatches[i]!)
      await jose(joseBatches[i]!)
    }
    // Alternating (who goes first changes every round), each side's median throughput, their ratio.
    const cold = { ours: [] as Array<number>, jose: [] as Array<number> }
    for (let round = warmups; round < warmups + rounds; round++) {
      const first = round % 2 === 0 ? "ours" : "jose"
      const a = first === "ours" ? await ours(oursBatches[round]!) : 0
      const b = await jose(joseBatches[round]!)
      const c = first === "ours" ? a : await ours(oursBatches[round]!)
      cold.ours.push(c)
      cold.jose.push(b)
    }

    // The last batch of ours is in the verifier's cache; jose has no cache and pays full price again.
    const cachedTokens = oursBatches[warmups + rounds - 1]!
    const cached = { ours: [] as Array<number>, jose: [] as Array<number> }
    for (let round = 0; round < 5; round++) {
      const a = await ours(cachedTokens)
      const b = await jose(cachedTokens)
      cached.ours.push(a)
      cached.jose.push(b)
    }
    const row = (name: string, sample: { ours: ReadonlyArray<number>; jose: ReadonlyArray<number> }): Row => ({
      name,
      ours: median(sample.ours),
      baseline: median(sample.jose),
      ratio: median(sample.ours) / median(sample.jose),
      unit: "verifications/s"
    })
    return [
      {
        ...row("auth: cold verify, JwksVerifier vs jose jwtVerify (ES256)", cold),
        goal: { of: "ratio", atLeast: 0.95 }
      },
      row("auth: cached verify, JwksVerifier cache vs jose jwtVerify", cached)
    ]
  } finally {
    await runtime.dispose()
    await server.stop()
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  printRows(await run())
}
