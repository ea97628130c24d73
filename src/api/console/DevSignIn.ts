/**
 * Signing in to the console as a generated user, offered only while the development issuer runs: `main.ts`
 * provides this service then, and without it the console has no such route.
 */
import { Context, type Effect } from "effect"

export interface GeneratedUser {
  readonly accessToken: string
  readonly email: string
}

export class DevSignIn extends Context.Tag("api/DevSignIn")<DevSignIn, {
  /** A new user of the development issuer and an access token for them. */
  readonly signIn: Effect.Effect<GeneratedUser>
}>() {}
