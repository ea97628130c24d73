/**
 * HTTP plumbing of the Supabase Auth stand-in (see `SupabaseStandIn.ts`): path groups, JSON bodies
 * decoded the way GoTrue does (a wrong type is `bad_json`), Supabase error bodies, and the admin
 * handlers that only need the user store (list with pagination headers, generate_link).
 */
import { createHash, randomInt, randomUUID } from "node:crypto"
import type { IncomingMessage, ServerResponse } from "node:http"
import * as JsonDepth from "../core/http/JsonDepth.js"
import {
  type CreateUserInput,
  type StandInUserStore,
  SupabaseStandInError,
  type UpdateUserInput,
  validateEmail
} from "./SupabaseStandInStore.js"

export type PathGroup = "jwks" | "user" | "admin" | "token" | "other"

const MAX_BODY = 1024 * 1024
// GoTrue's JSON decoder stops at 10 000 levels; JavaScript's serialiser and structuredClone overflow well before
// that, so the stand-in refuses deeper bodies the way GoTrue refuses those (a stored user must stay serialisable).
const MAX_DEPTH = 512

export const groupOf = (path: string): PathGroup => {
  if (path === "/auth/v1/.well-known/jwks.json") return "jwks"
  if (path === "/auth/v1/user") return "user"
  if (path === "/auth/v1/token") return "token"
  if (path.startsWith("/auth/v1/admin/") || path === "/auth/v1/admin" || path === "/auth/v1/invite") return "admin"
  return "other"
}

export const errorCodeForStatus = (status: number): string =>
  status === 429
    ? "over_request_rate_limit"
    : status >= 500
    ? "unexpected_failure"
    : status === 404
    ? "not_found"
    : "request_failed"

export const setOrDelete = (
  target: Record<string, unknown>,
  overrides: Readonly<Record<string, unknown>> | undefined
): void => {
  if (overrides === undefined) return
  for (const key of Object.keys(overrides)) {
    const value = overrides[key]
    if (value === undefined) delete target[key]
    else target[key] = value
  }
}

// -- request body helpers (GoTrue decodes JSON into typed structs: a wrong type is `bad_json`) ------

export type Body = Readonly<Record<string, unknown>>

const badJson = (detail: string) =>
  new SupabaseStandInError(400, "bad_json", `Could not parse request body as JSON: ${detail}`)

export const optString = (body: Body, key: string): string | undefined => {
  const v = body[key]
  if (v === undefined || v === null) return undefined
  if (typeof v !== "string") throw badJson(`json: cannot unmarshal ${typeof v} into field .${key} of type string`)
  return v
}

const optBool = (body: Body, key: string): boolean | undefined => {
  const v = body[key]
  if (v === undefined || v === null) return undefined
  if (typeof v !== "boolean") throw badJson(`json: cannot unmarshal ${typeof v} into field .${key} of type bool`)
  return v
}

const optObject = (body: Body, key: string): Record<string, unknown> | undefined => {
  const v = body[key]
  if (v === undefined || v === null) return undefined
  if (typeof v !== "object" || Array.isArray(v)) {
    throw badJson(
      `json: cannot unmarshal ${
        Array.isArray(v) ? "array" : typeof v
      } into field .${key} of type map[string]interface {}`
    )
  }
  return v as Record<string, unknown>
}

export const defined = <A extends Record<string, unknown>>(a: A): { [K in keyof A]: Exclude<A[K], undefined> } =>
  Object.fromEntries(Object.entries(a).filter(([, v]) => v !== undefined)) as {
    [K in keyof A]: Exclude<A[K], undefined>
  }

export const adminUserParams = (body: Body): CreateUserInput & UpdateUserInput =>
  defined({
    id: optString(body, "id"),
    email: optString(body, "email"),
    phone: optString(body, "phone"),
    password: optString(body, "password"),
    emailConfirm: optBool(body, "email_confirm"),
    phoneConfirm: optBool(body, "phone_confirm"),
    role: optString(body, "role"),
    appMetadata: optObject(body, "app_metadata"),
    userMetadata: optObject(body, "user_metadata"),
    banDuration: optString(body, "ban_duration")
  })

const readBody = (req: IncomingMessage): Promise<string> =>
  new Promise((resolve, reject) => {
    const chunks: Array<Buffer> = []
    let size = 0
    req.on("data", (chunk: Buffer) => {
      size += chunk.length
      // Past the limit the rest is read and dropped, so the client reads the 413 instead of a reset connection.
      if (size > MAX_BODY) {
        chunks.length = 0
        reject(new SupabaseStandInError(413, "request_too_large", "Request body too large"))
      } else chunks.push(chunk)
    })
    req.on("end", () => resolve(Buffer.concat(chunks).toString("utf8")))
    req.on("error", reject)
  })

export const parseJsonBody = async (req: IncomingMessage, allowEmpty = false): Promise<Body> => {
  const text = await readBody(req)
  if (text.trim() === "" && allowEmpty) return {}
  if (JsonDepth.textExceeds(text, MAX_DEPTH)) throw badJson("exceeded max depth")
  let parsed: unknown
  try {
    parsed = JSON.parse(text)
  } catch (e) {
    throw badJson(text.trim() === "" ? "unexpected end of JSON input" : (e as Error).message)
  }
  if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) throw badJson("expected a JSON object")
  return parsed as Body
}

export const sendJson = (
  res: ServerResponse,
  status: number,
  body: unknown,
  headers: Readonly<Record<string, string>> = {}
): void => {
  if (res.headersSent || res.destroyed) return
  const text = JSON.stringify(body)
  res.writeHead(status, { "Content-Type": "application/json", "Content-Length": Buffer.byteLength(text), ...headers })
  res.end(text)
}

export const sendError = (
  res: ServerResponse,
  error: SupabaseStandInError,
  headers: Readonly<Record<string, string>> = {}
): void => sendJson(res, error.status, error.body, { "x-sb-error-code": error.errorCode, ...headers })

/** GoTrue's adminUsers: newest first, `page` (1-based) / `per_page` (default 50), `X-Total-Count` and `Link`. */
export const listUsers = (store: StandInUserStore, res: ServerResponse, url: URL): void => {
  const pageText = url.searchParams.get("page") ?? ""
  const perPageText = url.searchParams.get("per_page") ?? ""
  const bad = (detail: string) =>
    new SupabaseStandInError(400, "validation_failed", `Bad Pagination Parameters: ${detail}`)
  if (pageText !== "" && !/^\d+$/.test(pageText)) throw bad(`strconv.ParseUint: parsing "${pageText}": invalid syntax`)
  if (perPageText !== "" && !/^\d+$/.test(perPageText)) {
    throw bad(`strconv.ParseUint: parsing "${perPageText}": invalid syntax`)
  }
  const page = Math.max(1, pageText === "" ? 1 : Number(pageText))
  const perPage = perPageText === "" ? 50 : Number(perPageText)
  if (perPage === 0) throw bad("per_page must be greater than 0")
  const filter = (url.searchParams.get("filter") ?? "").toLowerCase()
  const all = store.list().filter((u) => filter === "" || u.email.includes(filter))
  const total = all.length
  const totalPages = Math.ceil(total / perPage)
  const users = all.slice((page - 1) * perPage, page * perPage)
  // GoTrue's addPaginationHeaders: the request URI with `page` replaced, query keys sorted.
  const linkTo = (p: number) => {
    const query = new URLSearchParams(url.searchParams)
    query.set("page", String(p))
    query.sort()
    return `<${url.pathname}?${query.toString()}>`
  }
  const link = (totalPages > page ? `${linkTo(page + 1)}; rel="next", ` : "") + `${linkTo(totalPages)}; rel="last"`
  sendJson(res, 200, { users, aud: "authenticated" }, { "X-Total-Count": String(total), Link: link })
}

/** GoTrue's adminGenerateLink: the user fields plus action_link, email_otp, hashed_token, redirect_to, verification_type. */
export const generateLink = (
  store: StandInUserStore,
  body: Body,
  urls: { readonly issuer: string; readonly siteUrl: string }
): Record<string, unknown> => {
  let type = optString(body, "type") ?? ""
  const email = validateEmail(optString(body, "email") ?? "")
  let password = optString(body, "password") ?? ""
  const data = optObject(body, "data")
  const redirectTo = optString(body, "redirect_to") ?? urls.siteUrl
  if (!["signup", "invite", "magiclink", "recovery"].includes(type)) {
    throw new SupabaseStandInError(400, "validation_failed", `Invalid email action link type requested: ${type}`)
  }
  let user = store.getByEmail(email)
  if (user === undefined) {
    if (type === "magiclink") {
      type = "signup"
      password = randomUUID()
    } else if (type === "recovery") {
      throw new SupabaseStandInError(404, "user_not_found", "User with this email not found")
    }
  }
  if (type === "signup" || type === "invite") {
    if (user !== undefined && store.isConfirmed(user.id)) {
      throw new SupabaseStandInError(422, "email_exists", "A user with this email address has already been registered")
    }
    if (user === undefined) {
      if (type === "signup" && password === "") {
        throw new SupabaseStandInError(422, "validation_failed", "Signup requires a valid password")
      }
      user = store.create(defined({ email, password: type === "signup" ? password : undefined, userMetadata: data }))
    } else if (data !== undefined && type === "signup") {
      store.mergeUserMetadata(user.id, data)
    }
  }
  const otp = String(randomInt(0, 1_000_000)).padStart(6, "0")
  const hashedToken = createHash("sha224").update(email + otp).digest("hex")
  const updated = store.markLinkSent(user!.id, type as "signup" | "invite" | "magiclink" | "recovery")
  const query = new URLSearchParams({ token: hashedToken, type, redirect_to: redirectTo })
  return {
    ...updated,
    action_link: `${urls.issuer}/verify?${query.toString()}`,
    email_otp: otp,
    hashed_token: hashedToken,
    verification_type: type,
    redirect_to: redirectTo
  }
}
