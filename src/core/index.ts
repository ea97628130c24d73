/**
 * The core, for users of it: one namespace per public module, by concern. `CoreLive` composes them for an app;
 * each concern's folder holds its modules, its settings group and what only it uses.
 */
export * as AppConfig from "./app/AppConfig.js"
export * as Auth from "./auth/Auth.js"
export * as AuthAdmin from "./auth/AuthAdmin.js"
export * as Jwks from "./auth/Jwks.js"
export * as HttpClients from "./clients/HttpClients.js"
export * as Constants from "./config/Constants.js"
export * as CoreLive from "./CoreLive.js"
export * as Database from "./db/Database.js"
export * as DbResilience from "./db/DbResilience.js"
export * as Migrations from "./db/Migrations.js"
export * as ApiError from "./errors/ApiError.js"
export * as ApiContract from "./http/ApiContract.js"
export * as HttpApiRoutes from "./http/HttpApiRoutes.js"
export * as Server from "./http/Server.js"
export * as Lifecycle from "./runtime/Lifecycle.js"
export * as Logging from "./runtime/Logging.js"
export * as Readiness from "./runtime/Readiness.js"
export * as RequestId from "./runtime/RequestId.js"
export * as SingleFlight from "./runtime/SingleFlight.js"
export * as Time from "./runtime/Time.js"
