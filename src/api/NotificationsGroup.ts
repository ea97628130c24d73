/** The contract of `{prefix}/notifications`: create one (also delivered to the caller's streams), list them. */
import * as HttpApiEndpoint from "@effect/platform/HttpApiEndpoint"
import * as HttpApiGroup from "@effect/platform/HttpApiGroup"
import { Schema } from "effect"
import * as ApiError from "../core/errors/ApiError.js"
import * as ApiContract from "../core/http/ApiContract.js"
import type { Notification } from "../domain/NotificationRepo.js"
import { Authentication } from "./Authentication.js"

/** A notification as responses and `event: notification` frames carry it. */
export const NotificationView = Schema.Struct({
  id: Schema.Int,
  title: Schema.String,
  body: Schema.String,
  created_at: Schema.Date
}).annotations({ identifier: "Notification" })

export const toView = (notification: Notification): typeof NotificationView.Type => ({
  id: notification.id,
  title: notification.title,
  body: notification.body,
  created_at: notification.createdAt
})

export const limits = { maxTitle: 200, maxBody: 5000, defaultPage: 20, maxPage: 100 } as const

const CreateNotification = Schema.Struct({
  title: Schema.String.pipe(
    Schema.filter((title) => title.trim().length > 0 || "must not be blank"),
    Schema.maxLength(limits.maxTitle, { message: () => `must be at most ${limits.maxTitle} characters` })
  ),
  body: Schema.String.pipe(
    Schema.maxLength(limits.maxBody, { message: () => `must be at most ${limits.maxBody} characters` })
  )
}).annotations({ identifier: "CreateNotification" })

const PositiveIntFromString = Schema.NumberFromString.pipe(
  Schema.int({ message: () => "must be an integer" }),
  Schema.positive({ message: () => "must be positive" })
)

const ListParams = Schema.Struct({
  limit: Schema.optional(
    PositiveIntFromString.pipe(
      Schema.lessThanOrEqualTo(limits.maxPage, { message: () => `must be at most ${limits.maxPage}` })
    )
  ),
  before: Schema.optional(PositiveIntFromString)
})

const NotificationPage = Schema.Struct({
  notifications: Schema.Array(NotificationView),
  next_before: Schema.NullOr(Schema.Int)
}).annotations({ identifier: "NotificationPage" })

export class NotificationsGroup extends HttpApiGroup.make("notifications")
  .add(
    HttpApiEndpoint.post("create", "/notifications")
      .setPayload(ApiContract.validated(CreateNotification))
      .addSuccess(NotificationView, { status: 201 })
      .addError(ApiError.Validation.Envelope)
  )
  .add(
    HttpApiEndpoint.get("list", "/notifications")
      .setUrlParams(ApiContract.validated(ListParams))
      .addSuccess(NotificationPage)
      .addError(ApiError.Validation.Envelope)
  )
  .middleware(Authentication)
{}
