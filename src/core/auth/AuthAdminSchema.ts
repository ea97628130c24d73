/** The shapes of Supabase Auth's admin API: users as it returns them, and the inputs of its operations. */
import { Schema } from "effect"

const Metadata = Schema.Record({ key: Schema.String, value: Schema.Unknown })
const optionalText = Schema.optionalWith(Schema.String, { nullable: true })

/** A user as the admin API returns it (the fields the app uses; others are dropped). */
export const AdminUser = Schema.Struct({
  id: Schema.String,
  aud: optionalText,
  role: optionalText,
  email: optionalText,
  phone: optionalText,
  email_confirmed_at: optionalText,
  phone_confirmed_at: optionalText,
  confirmed_at: optionalText,
  invited_at: optionalText,
  last_sign_in_at: optionalText,
  banned_until: optionalText,
  app_metadata: Schema.optionalWith(Metadata, { nullable: true, default: () => ({}) }),
  user_metadata: Schema.optionalWith(Metadata, { nullable: true, default: () => ({}) }),
  created_at: optionalText,
  updated_at: optionalText,
  is_anonymous: Schema.optionalWith(Schema.Boolean, { nullable: true, default: () => false })
})
export type AdminUser = typeof AdminUser.Type

const userFields = {
  email: Schema.optional(Schema.String),
  phone: Schema.optional(Schema.String),
  password: Schema.optional(Schema.String),
  email_confirm: Schema.optional(Schema.Boolean),
  phone_confirm: Schema.optional(Schema.Boolean),
  role: Schema.optional(Schema.String),
  app_metadata: Schema.optional(Metadata),
  user_metadata: Schema.optional(Metadata),
  /** Go duration ("24h") or "none". */
  ban_duration: Schema.optional(Schema.String)
}

export const CreateUserInput = Schema.Struct({ ...userFields, id: Schema.optional(Schema.String) })
export type CreateUserInput = typeof CreateUserInput.Type

export const UpdateUserInput = Schema.Struct(userFields)
export type UpdateUserInput = typeof UpdateUserInput.Type

const LinkType = Schema.Literal(
  "signup",
  "invite",
  "magiclink",
  "recovery",
  "email_change_current",
  "email_change_new"
)

export const GenerateLinkInput = Schema.Struct({
  type: LinkType,
  email: Schema.String,
  password: Schema.optional(Schema.String),
  new_email: Schema.optional(Schema.String),
  data: Schema.optional(Metadata),
  redirect_to: Schema.optional(Schema.String)
})
export type GenerateLinkInput = typeof GenerateLinkInput.Type

export const LinkProperties = Schema.Struct({
  action_link: Schema.String,
  email_otp: optionalText,
  hashed_token: optionalText,
  redirect_to: optionalText,
  verification_type: optionalText
})

/** The link and the user it was made for (GoTrue answers both in one flat object; this splits them like supabase-js). */
export interface GeneratedLink {
  readonly properties: typeof LinkProperties.Type
  readonly user: AdminUser
}

export interface UserPage {
  readonly users: ReadonlyArray<AdminUser>
  /** `X-Total-Count`, when the provider sent it. */
  readonly total: number | undefined
  /** From the `Link` header's `rel="next"`. */
  readonly nextPage: number | undefined
}
