/**
 * FastCheck arbitraries derived from the core's schemas, for property tests of endpoints: claim sets a `TestIssuer`
 * signs, the ways a token can be forged, the errors of the `ApiError` hierarchy with their envelopes, notification
 * bodies and realtime events.
 */
import { Arbitrary, FastCheck as fc } from "effect"
import * as ApiError from "../core/errors/ApiError.js"
import * as TestIssuer from "./TestIssuer.js"

/** Valid claim sets (`TestIssuer.Claims`): a uuid `sub`, an email or none, a role, app and user metadata. */
export const claims: fc.Arbitrary<TestIssuer.Claims> = Arbitrary.make(TestIssuer.Claims)

/** One of the ways `TestIssuer.forge` makes a token the verifier must refuse. */
export const forgeKind: fc.Arbitrary<TestIssuer.ForgeKind> = fc.constantFrom(...TestIssuer.forgeKinds)

/** An error of the core's hierarchy (any class), with a message of its own or its default, and maybe details. */
export const apiError: fc.Arbitrary<ApiError.ApiError> = fc.record({
  errorClass: fc.constantFrom(...ApiError.all),
  message: fc.option(fc.string(), { nil: undefined }),
  // As JSON carries them: `jsonValue` may give -0, which JSON writes as 0.
  details: fc.option(fc.jsonValue().map((value): unknown => JSON.parse(JSON.stringify(value))), { nil: undefined })
}).map(({ details, errorClass, message }) =>
  new errorClass({
    ...(message === undefined ? {} : { message }),
    ...(details === undefined ? {} : { details })
  })
)

/** The error envelope (`ApiError.Envelope`) as the app sends it: rendered from an error of the hierarchy. */
export const errorEnvelope: fc.Arbitrary<ApiError.Envelope> = apiError.map((error) => ApiError.render(error).body)

/** A body of `POST {prefix}/notifications` the API accepts: a title of 1-200 characters, not blank; a body. */
export const notificationInput: fc.Arbitrary<{ readonly title: string; readonly body: string }> = fc.record({
  title: fc.string({ minLength: 1, maxLength: 200 }).filter((title) => title.trim().length > 0),
  body: fc.string({ maxLength: 500 })
})

/** An event for `EventLog.append` / `SseBus.emit`: a valid type (`Wire.isEventType`) and JSON data. */
export const realtimeEvent: fc.Arbitrary<{ readonly type: string; readonly data: unknown }> = fc.record({
  type: fc.stringMatching(/^[A-Za-z0-9_.:-]{1,64}$/),
  // As JSON carries it: `jsonValue` may give -0, which JSON writes as 0.
  data: fc.jsonValue().map((value): unknown => JSON.parse(JSON.stringify(value)))
})
