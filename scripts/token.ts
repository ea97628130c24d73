/**
 * Prints a bearer token for a user, the way a real client gets one: the user is created (or updated) through the
 * Supabase admin API, then signs in with the password grant. Against the development issuer that `npm start` runs
 * when no SUPABASE_URL is set, or against a real project given its URL and keys.
 *
 *   npm run token -- --email alice@example.com [--admin] [--password <pw>]
 */
import { Effect, Option } from "effect"
import { parseArgs } from "node:util"
import * as AppConfig from "../src/core/app/AppConfig.js"
import * as DevIssuer from "../src/dev/DevIssuer.js"

const { values } = parseArgs({
  options: {
    email: { type: "string" },
    admin: { type: "boolean", default: false },
    password: { type: "string", default: "dev-password-123" }
  }
})

const fail = (message: string): never => {
  process.stderr.write(`${message}\n`)
  process.exit(1)
}

const email = values.email ?? fail("Usage: npm run token -- --email alice@example.com [--admin] [--password <pw>]")
const settings = await Effect.runPromise(AppConfig.load()).catch((error: Error) => fail(error.message))
const base = Option.getOrElse(settings.supabase.url, () => `http://127.0.0.1:${settings.supabase.devIssuerPort}`)
const { anonKey, serviceRoleKey } = DevIssuer.keys(settings)
const admin = { apikey: serviceRoleKey, authorization: `Bearer ${serviceRoleKey}`, "content-type": "application/json" }
const app_metadata = values.admin ? { role: "admin" } : {}

const call = async (path: string, init: RequestInit) => {
  const response = await fetch(`${base}/auth/v1${path}`, init).catch((error: Error) =>
    fail(`Cannot reach ${base} (${error.message}). Is the server running (npm start)?`)
  )
  return { status: response.status, body: (await response.json().catch(() => ({}))) as any }
}

const findUserId = async (): Promise<string | undefined> => {
  for (let page = 1; page < 1000; page++) {
    const { body } = await call(`/admin/users?page=${page}&per_page=100`, { headers: admin })
    const users: Array<{ id: string; email?: string }> = body.users ?? []
    const match = users.find((user) => user.email?.toLowerCase() === email.toLowerCase())
    if (match || users.length < 100) return match?.id
  }
  return undefined
}

const created = await call("/admin/users", {
  method: "POST",
  headers: admin,
  body: JSON.stringify({ email, password: values.password, email_confirm: true, app_metadata })
})
if (created.status === 422 && created.body.error_code === "email_exists") {
  const id = (await findUserId()) ?? fail(`${email} exists but could not be found`)
  const updated = await call(`/admin/users/${id}`, {
    method: "PUT",
    headers: admin,
    body: JSON.stringify({ password: values.password, app_metadata })
  })
  if (updated.status !== 200) fail(`Could not update ${email}: ${updated.status} ${JSON.stringify(updated.body)}`)
} else if (created.status !== 200) {
  fail(`Could not create ${email}: ${created.status} ${JSON.stringify(created.body)}`)
}

const session = await call("/token?grant_type=password", {
  method: "POST",
  headers: { apikey: anonKey, "content-type": "application/json" },
  body: JSON.stringify({ email, password: values.password })
})
if (session.status !== 200) fail(`Sign-in failed: ${session.status} ${JSON.stringify(session.body)}`)
process.stdout.write(`${session.body.access_token}\n`)
