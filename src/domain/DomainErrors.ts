/** The reference API's own errors, made with the core's `ApiError.Class`: each has its status, code and envelope. */
import * as ApiError from "../core/errors/ApiError.js"

export class PropertyNotFound extends ApiError.Class<PropertyNotFound>()("PropertyNotFound", {
  status: 404,
  code: "PROPERTY_NOT_FOUND",
  message: "Property not found"
}) {}

export class JobNotFound extends ApiError.Class<JobNotFound>()("JobNotFound", {
  status: 404,
  code: "JOB_NOT_FOUND",
  message: "Job not found"
}) {}

export class BookingConflict extends ApiError.Class<BookingConflict>()("BookingConflict", {
  status: 409,
  code: "BOOKING_CONFLICT",
  message: "The booking conflicts with an existing one"
}) {}
