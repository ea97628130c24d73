/** The public face of an auth provider that cannot answer: 503 with a `Retry-After` the core keeps. */
import * as ApiError from "../errors/ApiError.js"

/**
 * Seconds a client is told to wait when the provider is unreachable (`Retry-After`); the provider is not asked
 * again before, and may be asked again from then on (the key set download included).
 */
export const unreachableRetryAfterSeconds = 5

/** The provider cannot be reached (refused, timed out, 5xx). */
export const unavailable = (): ApiError.ServiceUnavailable =>
  new ApiError.ServiceUnavailable({
    message: "The authentication provider is unavailable; retry shortly",
    retryAfterSeconds: unreachableRetryAfterSeconds
  })

/** The provider asked us to slow down (429), for `retryAfterSeconds`. */
export const busy = (retryAfterSeconds: number): ApiError.ServiceUnavailable =>
  new ApiError.ServiceUnavailable({
    message: "The authentication provider is busy; retry shortly",
    retryAfterSeconds
  })
