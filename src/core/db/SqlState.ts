/** The SQLSTATEs the database layer acts on (Postgres' error codes, appendix A of its manual). */

/** Administrator shutdown, crash shutdown, cannot connect now: the server ended or refused the session. */
const shutdownCodes: ReadonlySet<string> = new Set(["57P01", "57P02", "57P03"])

/** Whether the code says the connection itself failed: a shutdown above, or class 08 (connection exception). */
export const isConnectionFailure = (code: string): boolean => shutdownCodes.has(code) || /^08[0-9A-Z]{3}$/.test(code)
