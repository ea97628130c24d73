/**
 * FastCheck arbitraries derived from the core's schemas, for property tests of endpoints: claim sets a `TestIssuer`
 * signs, the ways a token can be forged, and the errors of the `ApiError` hierarchy with their envelopes.
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
