/** `GET {prefix}/me`: the caller's user row, created the first time the caller is seen. */
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import { Effect, Schema } from "effect"
import * as HttpApiHandlers from "../core/http/HttpApiHandlers.js"
import type { User } from "../domain/UserRepo.js"
import type { ServedApi } from "./Api.js"
import { CurrentUser } from "./Authentication.js"
import { toView, UserView } from "./MeGroup.js"

const encodeView = Schema.encodeSync(UserView)

/**
 * The 200 response for a row, encoded once per row object: `UserSync` hands out the same object while the row is
 * fresh, so a caller's repeated requests skip the schema encoding, the JSON serialization and its UTF-8 encoding.
 */
const responses = new WeakMap<User, HttpServerResponse.HttpServerResponse>()
const responseFor = (user: User): HttpServerResponse.HttpServerResponse => {
  let response = responses.get(user)
  if (response === undefined) {
    const body = new TextEncoder().encode(JSON.stringify(encodeView(toView(user))))
    response = HttpServerResponse.uint8Array(body, { contentType: "application/json" })
    responses.set(user, response)
  }
  return response
}

/** The same effect for every request: it reads the caller from the request's context. */
const me = Effect.map(CurrentUser, ({ user }) => responseFor(user))

export const MeLive = (api: ServedApi) =>
  HttpApiHandlers.group(api, "me", (handlers) => handlers.handleRaw("me", () => me))
