/**
 * Turns what a provider (or its SDK) threw into exactly one `LlmError`. Pure: the caller passes the
 * current time (for `retry-after` HTTP dates) and the sanitiser every provider text goes through
 * before it is stored on the error (message, request id, rate-limit headers, code).
 *
 * @internal
 */
import { Predicate } from "effect"
import * as Headers from "./headers.js"
import * as Redaction from "./redaction.js"
import {
  AuthenticationError,
  ConnectionError,
  InvalidRequestError,
  isLlmError,
  type LlmError,
  NotFoundError,
  OverloadedError,
  QuotaExceededError,
  RateLimitError,
  ResponseParseError,
  ServerError,
  TimeoutError
} from "../LlmError.js"

/**
 * What every mapping needs besides the failure itself.
 *
 * @internal
 */
export interface Context {
  readonly provider: string
  /** Epoch milliseconds, to read `retry-after` HTTP dates. */
  readonly now: number
  /**
   * The sanitiser of every text the provider sent (the configured secrets, key shapes, lengths);
   * key shapes and lengths only when unset.
   */
  readonly scrub?: Redaction.Scrub | undefined
  /** Characters of answer text a stream had delivered before it failed. */
  readonly textEmitted?: number | undefined
}

/**
 * An HTTP error answer. `body` is the parsed JSON error (either `{ error: {...} }` or the inner
 * object), `text` the raw body when it was not JSON.
 *
 * @internal
 */
export interface HttpFailure {
  readonly status: number
  readonly headers?: Headers.HeadersLike | undefined
  readonly body?: unknown
  readonly text?: string | undefined
}

/**
 * The SDK error classes the mapping recognises (both official SDKs share this shape).
 *
 * @internal
 */
export interface SdkErrors {
  readonly APIError: abstract new (...args: never[]) => {
    readonly status?: number | undefined
    readonly headers?: Headers.HeadersLike | undefined
    readonly error?: unknown
    readonly message: string
  }
  readonly APIConnectionError: abstract new (...args: never[]) => Error
  readonly APIConnectionTimeoutError: abstract new (...args: never[]) => Error
}

interface Detail {
  readonly type?: string | undefined
  readonly code?: string | undefined
  readonly message?: string | undefined
}

const maxMessageLength = 300

/** Provider error codes are short words (`context_length_exceeded`); anything longer is cut. */
const maxCodeLength = 100

const stringField = (record: unknown, key: string): string | undefined =>
  Predicate.isRecord(record) && typeof record[key] === "string" && record[key] !== "" ? record[key] : undefined

/** A code as text: gateways send `"code": "content_filter"` and also `"code": 400`. */
const codeField = (record: unknown): string | undefined =>
  Predicate.isRecord(record) && typeof record.code === "number" && Number.isFinite(record.code)
    ? String(record.code)
    : stringField(record, "code")

/**
 * The `type`, `code` and `message` of an error body, whether it is OpenAI's `{ error: { ... } }`,
 * Anthropic's `{ type: "error", error: { ... } }`, the inner object itself, or another shape that
 * gateways and frameworks send: the message is the first of `error.message`, `message`, `detail`
 * (with `title` before it: RFC 9457 problem details), `title`, and `error` as a string.
 *
 * @internal
 */
export const errorDetail = (body: unknown): Detail => {
  if (typeof body === "string") return { message: body }
  const inner = Predicate.isRecord(body) && Predicate.isRecord(body.error) ? body.error : body
  const title = stringField(inner, "title")
  const detail = stringField(inner, "detail")
  const message =
    stringField(inner, "message") ??
    (detail !== undefined ? (title !== undefined ? `${title}: ${detail}` : detail) : title) ??
    stringField(inner, "error") ??
    (inner !== body ? stringField(body, "message") : undefined)
  return { type: stringField(inner, "type"), code: codeField(inner) ?? codeField(body), message }
}

/** Provider text past this point is never read: a message keeps 300 characters of it anyway. */
const maxTextRead = 64 * 1024

/**
 * Makes provider text safe and short for an error message: no secret (scrubbed before the markup
 * goes, so that a tag inside a key does not hide it, and again after), no markup, one line, at most
 * 300 characters. Linear in the text's length (a hostile body may be megabytes of markup): the
 * patterns never scan past the next `<`.
 *
 * @internal
 */
export const clean = (text: string, scrub: Redaction.Scrub = Redaction.shapesOnly): string => {
  let out = scrub(text.length > maxTextRead ? text.slice(0, maxTextRead) : text)
  const title = /<title[^<>]*>([^<]*)<\/title>/i.exec(out)
  if (title?.[1] !== undefined && title[1].trim() !== "") out = title[1]
  else if (/<[a-z!/][^<>]*>/i.test(out)) out = out.replace(/<[^<>]*>/g, " ")
  return scrub(out.replace(/\s+/g, " ").trim(), maxMessageLength)
}

const common = (ctx: Context, message: string, headers: Headers.HeadersLike | undefined) => {
  const scrub = ctx.scrub ?? Redaction.shapesOnly
  const clean = (value: string) => scrub(value, Headers.maxValueLength)
  const requestId = Headers.requestId(headers, clean)
  const rateLimit = Headers.rateLimitHeaders(headers, clean)
  const retry = Headers.shouldRetry(headers)
  return {
    provider: ctx.provider,
    message,
    ...(requestId !== undefined ? { requestId } : {}),
    ...(rateLimit !== undefined ? { headers: rateLimit } : {}),
    ...(ctx.textEmitted !== undefined && ctx.textEmitted > 0 ? { textEmitted: ctx.textEmitted } : {}),
    ...(retry !== undefined ? { retryable: retry } : {})
  }
}

// Anthropic reports an empty balance as a 400 `invalid_request_error` whose message names the credit
// balance, and billing problems as `billing_error`; OpenAI uses `insufficient_quota`.
const creditBalance = /credit balance is too low/i

type Fields = ReturnType<typeof common>

/**
 * One row of {@link table}: the statuses that mean `tag`, and the error `type`s (or `code`s) that
 * mean it, each with the status its HTTP answer would have had (an error event has none).
 */
interface Row {
  readonly tag: LlmError["_tag"]
  readonly status: (status: number) => boolean
  readonly types: Readonly<Record<string, number>>
  /** Whether a matching body outranks the status (an overloaded 503 is overloaded, not a 503). */
  readonly bodyWins: boolean
  /** A provider message that also means `tag`. */
  readonly message?: RegExp
  readonly make: (fields: Fields, status: number, detail: Detail, ctx: Context, headers: Headers.HeadersLike | undefined) => LlmError
}

/**
 * The classification, in priority order, shared by HTTP error answers and errors reported inside a
 * 200 answer (SSE `error` events, `{ error }` bodies): a row whose body matches and `bodyWins` is
 * taken first; then, for an HTTP answer, the first row whose status matches, and for an error event
 * the first row listing its `type`, else its `code`. Anything else is a `ServerError` (500 for an
 * event). `retryable` is the error class's default unless the provider sent `x-should-retry`.
 */
const table: ReadonlyArray<Row> = [
  {
    tag: "QuotaExceededError",
    status: (status) => status === 402,
    types: { insufficient_quota: 429, billing_error: 402 },
    bodyWins: true,
    message: creditBalance,
    make: (fields) => new QuotaExceededError(fields)
  },
  {
    tag: "OverloadedError",
    status: (status) => status === 529,
    types: { overloaded_error: 529 },
    bodyWins: true,
    make: (fields) => new OverloadedError(fields)
  },
  {
    tag: "RateLimitError",
    status: (status) => status === 429,
    types: { rate_limit_error: 429, rate_limit_exceeded: 429 },
    bodyWins: false,
    make: (fields, _status, _detail, ctx, headers) => {
      const wait = Headers.retryAfter(headers, ctx.now)
      return new RateLimitError({ ...fields, ...(wait !== undefined ? { retryAfter: wait } : {}) })
    }
  },
  {
    tag: "AuthenticationError",
    status: (status) => status === 401 || status === 403,
    types: { authentication_error: 401, permission_error: 403 },
    bodyWins: false,
    make: (fields, status) => new AuthenticationError({ ...fields, status })
  },
  {
    tag: "NotFoundError",
    status: (status) => status === 404,
    types: { not_found_error: 404 },
    bodyWins: false,
    make: (fields) => new NotFoundError(fields)
  },
  {
    tag: "TimeoutError",
    status: (status) => status === 408,
    types: {},
    bodyWins: false,
    make: (fields) => new TimeoutError({ ...fields, phase: "provider" })
  },
  {
    tag: "ServerError",
    status: (status) => status === 409 || status >= 500,
    types: { api_error: 500, server_error: 500, timeout_error: 504 },
    bodyWins: false,
    make: (fields, status) => new ServerError({ ...fields, status })
  },
  {
    tag: "InvalidRequestError",
    status: (status) => status >= 400 && status < 500,
    types: { invalid_request_error: 400, request_too_large: 413 },
    bodyWins: false,
    make: (fields, status, detail, ctx) => {
      const given = detail.code ?? detail.type
      const code = given === undefined ? undefined : (ctx.scrub ?? Redaction.shapesOnly)(given, maxCodeLength)
      return new InvalidRequestError({ ...fields, status, ...(code !== undefined ? { code } : {}) })
    }
  }
]

const unclassified: Row = {
  tag: "ServerError",
  status: () => true,
  types: {},
  bodyWins: false,
  make: (fields, status) => new ServerError({ ...fields, status })
}

const listed = (row: Row, key: string | undefined): number | undefined =>
  key !== undefined && Object.hasOwn(row.types, key) ? row.types[key] : undefined

const bodyMatches = (row: Row, detail: Detail): boolean =>
  listed(row, detail.type) !== undefined ||
  listed(row, detail.code) !== undefined ||
  (row.message !== undefined && detail.message !== undefined && row.message.test(detail.message))

/** The row for an HTTP answer (`status` given) or an error event (`status` undefined), and its status. */
const lookup = (status: number | undefined, detail: Detail): { readonly row: Row; readonly status: number } => {
  const byBody = table.find((row) => row.bodyWins && bodyMatches(row, detail))
  if (status !== undefined) return { row: byBody ?? table.find((row) => row.status(status)) ?? unclassified, status }
  for (const key of [detail.type, detail.code]) {
    for (const row of table) {
      const implied = listed(row, key)
      if (implied !== undefined) return { row: byBody ?? row, status: implied }
    }
  }
  return byBody !== undefined
    ? { row: byBody, status: Object.values(byBody.types)[0] ?? 500 }
    : { row: unclassified, status: 500 }
}

const build = (
  status: number | undefined,
  detail: Detail,
  headers: Headers.HeadersLike | undefined,
  ctx: Context,
  message: string
): LlmError => {
  const found = lookup(status, detail)
  return found.row.make(common(ctx, message, headers), found.status, detail, ctx, headers)
}

/**
 * Maps an HTTP error answer by {@link table}: 400/413/422 (and other 4xx) to `InvalidRequestError`
 * keeping the provider's code, 401/403 to `AuthenticationError`, 404 to `NotFoundError`, 408 to
 * `TimeoutError`, 409 and 5xx to `ServerError`, 429 to `RateLimitError` (quota and billing errors
 * to `QuotaExceededError`), 529 and `overloaded_error` to `OverloadedError`.
 *
 * @internal
 */
export const fromHttp = (failure: HttpFailure, ctx: Context): LlmError => {
  const detail = errorDetail(failure.body)
  const text = clean(detail.message ?? failure.text ?? "", ctx.scrub)
  const message = `${ctx.provider} answered ${failure.status}${text === "" ? "" : `: ${text}`}`
  return build(failure.status, detail, failure.headers, ctx, message)
}

/**
 * Maps an error reported inside a 200 answer (an SSE `error` event, or an `error` object in place of
 * the body) by {@link table}: the tag follows the error's `type` (else its `code`) as if it were
 * the matching HTTP status; unknown types are server errors (500).
 *
 * @internal
 */
export const fromErrorEvent = (
  body: unknown,
  headers: Headers.HeadersLike | undefined,
  ctx: Context
): LlmError => {
  const detail = errorDetail(body)
  const what = [detail.type, detail.message].filter((s) => s !== undefined).join(": ")
  const text = clean(what, ctx.scrub)
  return build(undefined, detail, headers, ctx, `${ctx.provider} reported an error in its answer${text === "" ? "" : `: ${text}`}`)
}

const causeCode = (error: unknown): string | undefined => {
  let current: unknown = error
  for (let depth = 0; depth < 5 && Predicate.isRecord(current); depth++) {
    if (typeof current.code === "string") return current.code
    current = current.cause
  }
  return undefined
}

/** What was thrown, as text; a value whose conversion throws is described by its type. */
const describe = (cause: unknown): string => {
  try {
    return cause instanceof Error ? String(cause.message) : String(cause)
  } catch {
    return `a thrown ${typeof cause}`
  }
}

/**
 * The SDK puts a non-JSON error body in its message as `"<status> <body>"`; take the body back.
 */
const rawText = (status: number, message: string): string | undefined => {
  const prefix = `${status} `
  const text = message.startsWith(prefix) ? message.slice(prefix.length) : message
  return text === "status code (no body)" ? undefined : text
}

/**
 * Maps anything an SDK call or its stream threw. `LlmError`s pass through unchanged.
 *
 * @internal
 */
export const fromCause = (cause: unknown, ctx: Context, sdk: SdkErrors): LlmError => {
  if (isLlmError(cause)) return cause
  const emitted = ctx.textEmitted !== undefined && ctx.textEmitted > 0 ? { textEmitted: ctx.textEmitted } : {}
  if (cause instanceof sdk.APIConnectionTimeoutError) {
    return new TimeoutError({
      provider: ctx.provider,
      message: `${ctx.provider} did not answer before the client's own timeout`,
      phase: "provider",
      ...emitted
    })
  }
  if (cause instanceof sdk.APIConnectionError) {
    const code = causeCode(cause)
    return new ConnectionError({
      provider: ctx.provider,
      message: `${ctx.provider} could not be reached${code !== undefined ? ` (${clean(code, ctx.scrub)})` : ""}`,
      ...emitted
    })
  }
  if (cause instanceof sdk.APIError) {
    if (typeof cause.status === "number") {
      const body = cause.error
      return fromHttp(
        {
          status: cause.status,
          headers: cause.headers,
          body,
          text: body === undefined ? rawText(cause.status, cause.message) : undefined
        },
        ctx
      )
    }
    return fromErrorEvent(cause.error, cause.headers, ctx)
  }
  if (cause instanceof SyntaxError) {
    return new ResponseParseError({
      provider: ctx.provider,
      message: `${ctx.provider} sent an answer that is not valid JSON`,
      ...emitted
    })
  }
  const code = causeCode(cause)
  const detail = describe(cause)
  return new ConnectionError({
    provider: ctx.provider,
    message: `${ctx.provider} connection failed before the answer was complete: ${clean(detail, ctx.scrub)}${
      code !== undefined ? ` (${clean(code, ctx.scrub)})` : ""
    }`,
    ...emitted
  })
}
