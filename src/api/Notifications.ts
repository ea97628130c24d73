/**
 * `{prefix}/notifications`: a notification is stored and appended to the caller's event log in one transaction, so
 * it reaches their streams (`event: notification`) once committed, and a stream that reconnects replays it.
 */
import * as HttpApiBuilder from "@effect/platform/HttpApiBuilder"
import { Effect, Schema } from "effect"
import * as ApiError from "../core/errors/ApiError.js"
import { EventLog } from "../core/realtime/EventLog.js"
import { NotificationRepo } from "../domain/NotificationRepo.js"
import type { ServedApi } from "./Api.js"
import { CurrentUser } from "./Authentication.js"
import { limits, NotificationView, toView } from "./NotificationsGroup.js"

/** The event type of a notification on the streams. */
const eventType = "notification"

const encodeView = Schema.encodeSync(NotificationView)

const database = [ApiError.ServiceUnavailable, ApiError.DbPoolExhausted] as const

export const NotificationsLive = (api: ServedApi) =>
  HttpApiBuilder.group(api, "notifications", (handlers) =>
    Effect.gen(function*() {
      const repo = yield* NotificationRepo
      const log = yield* EventLog
      return handlers
        .handle("create", ({ payload }) =>
          Effect.flatMap(CurrentUser, ({ user }) =>
            log.transaction(Effect.gen(function*() {
              const notification = yield* repo.create(user.id, payload)
              yield* log.append(user.id, eventType, encodeView(toView(notification)))
              return toView(notification)
            }))).pipe(ApiError.declared(...database)))
        .handle("list", ({ urlParams }) =>
          Effect.flatMap(CurrentUser, ({ user }) =>
            repo.list(user.id, { limit: urlParams.limit ?? limits.defaultPage, before: urlParams.before })).pipe(
              Effect.map((page) => ({
                notifications: page.notifications.map(toView),
                next_before: page.nextBefore
              })),
              ApiError.declared(...database)
            ))
    }))
