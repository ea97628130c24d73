/** `InMemoryNotificationRepo`: the domain's `NotificationRepo` in memory (ids in creation order, time from `Clock`). */
import { Clock, Effect, Layer } from "effect"
import { type Notification, NotificationRepo, pageOf } from "../domain/NotificationRepo.js"

export const make = Effect.sync(() => {
  const all: Array<Notification> = []
  return NotificationRepo.of({
    create: (userId, input) =>
      Effect.map(Clock.currentTimeMillis, (now) => {
        const notification: Notification = {
          id: all.length + 1,
          userId,
          title: input.title,
          body: input.body,
          createdAt: new Date(now)
        }
        all.push(notification)
        return notification
      }),
    list: (userId, { before, limit }) =>
      Effect.sync(() => {
        const rows = all
          .filter((n) => n.userId === userId && (before === undefined || n.id < before))
          .reverse()
          .slice(0, limit + 1)
        return pageOf(rows, limit)
      })
  })
})

export const layer: Layer.Layer<NotificationRepo> = Layer.effect(NotificationRepo, make)
