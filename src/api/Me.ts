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
 * fresh, so a caller's repeated requests skip the schema encoding and the JSON serialization.
 */
const responses = new WeakMap<User, HttpServerResponse.HttpServerResponse>()
const responseFor = (user: User): HttpServerResponse.HttpServerResponse => {
  let response = responses.get(user)
  if (response === undefined) {
    response = HttpServerResponse.unsafeJson(encodeView(toView(user)))
    responses.set(user, response)
  }
  return response
}

export const MeLive = (api: ServedApi) =>
  HttpApiHandlers.group(
    api,
    "me",
    (handlers) => handlers.handleRaw("me", () => Effect.map(CurrentUser, ({ user }) => responseFor(user)))
  )
