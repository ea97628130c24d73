/**
 * The testing kit, for property tests of endpoints built on the core: in-process and deterministic, with no socket,
 * no database and no auth provider. `TestApp` serves the reference API (and a team's own routes) behind the real
 * request pipeline; `TestIssuer` mints and forges tokens its verifier checks; `Arbitraries` generates inputs; the
 * rest are the test forms of the core's layers (`SettableClock`, `OfflineHttpClients`, `InMemoryUserRepo`, the
 * verifier on a key set held in memory through `TestIssuer.layerAuth`) and `NoNetwork`, a tripwire for sockets.
 */
export * as Arbitraries from "./Arbitraries.js"
export * as InMemoryJobs from "./InMemoryJobs.js"
export * as InMemoryNotificationRepo from "./InMemoryNotificationRepo.js"
export * as InMemoryUserRepo from "./InMemoryUserRepo.js"
export * as InProcessServer from "./InProcessServer.js"
export * as NoNetwork from "./NoNetwork.js"
export * as OfflineHttpClients from "./OfflineHttpClients.js"
export * as SettableClock from "./SettableClock.js"
export * as TestApp from "./TestApp.js"
export * as TestIssuer from "./TestIssuer.js"
