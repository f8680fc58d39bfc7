/**
 * Reading the response headers that matter to callers: request ids, rate-limit headers,
 * `retry-after` and `x-should-retry`. Works on the fetch `Headers` the SDKs expose. Headers come
 * from the network, so every reading is bounded: values kept on errors are cut short, and a wait is
 * always a finite `Duration` of at most {@link maxRetryAfter}.
 *
 * @internal
 */
import { Duration } from "effect"

/**
 * The part of `Headers` this module reads.
 *
 * @internal
 */
export interface HeadersLike {
  get(name: string): string | null
  forEach(callback: (value: string, key: string) => void): void
}

/**
 * The longest header value kept on an error: real request ids and rate-limit values are far
 * shorter, so anything longer is noise that must not bloat every error and log line.
 *
 * @internal
 */
export const maxValueLength = 200

/** At most this many rate-limit headers are kept (providers send six to a dozen). */
const maxRateLimitHeaders = 32

const bounded = (value: string): string =>
  value.length > maxValueLength ? `${value.slice(0, maxValueLength - 1)}…` : value

/**
 * The provider's request id: OpenAI's `x-request-id`, Anthropic's `request-id`. `clean` makes
 * the value safe to keep (by default it is only cut short); it sees the whole value, so that
 * whatever it removes is removed before the cut.
 *
 * @internal
 */
export const requestId = (headers: HeadersLike | undefined, clean: (value: string) => string = bounded): string | undefined => {
  const id = headers?.get("x-request-id") ?? headers?.get("request-id") ?? undefined
  return id === undefined || id === "" ? undefined : clean(id)
}

const rateLimitPrefixes = ["x-ratelimit-", "anthropic-ratelimit-"] as const

/**
 * The rate-limit headers (`x-ratelimit-*`, `anthropic-ratelimit-*`), or `undefined` when there are
 * none; names and values pass through `clean` as in {@link requestId}.
 *
 * @internal
 */
export const rateLimitHeaders = (
  headers: HeadersLike | undefined,
  clean: (value: string) => string = bounded
): Record<string, string> | undefined => {
  if (headers === undefined) return undefined
  let found: Record<string, string> | undefined
  let count = 0
  headers.forEach((value, key) => {
    const name = key.toLowerCase()
    if (count < maxRateLimitHeaders && rateLimitPrefixes.some((prefix) => name.startsWith(prefix))) {
      found ??= {}
      found[clean(name)] = clean(value)
      count++
    }
  })
  return found
}

/**
 * The ceiling on a provider's requested wait: one day. A longer wait (`retry-after: 1e300`, a date
 * in the year 9999, `retry-after-ms: 1e303`) is read as one day: still "much later" for a caller,
 * and a `Duration` every timer, schedule and BigInt conversion can hold.
 *
 * @internal
 */
export const maxRetryAfter: Duration.Duration = Duration.days(1)

const maxRetryAfterMillis = Duration.toMillis(maxRetryAfter)

/** A wait in milliseconds as a bounded `Duration`; negative or non-numeric waits are none. */
const wait = (millis: number): Duration.Duration | undefined =>
  Number.isNaN(millis) || millis < 0 ? undefined : Duration.millis(Math.min(millis, maxRetryAfterMillis))

/**
 * How long the provider asked to wait: `retry-after-ms`, else `retry-after` as seconds or as an
 * HTTP date (relative to `now`, in epoch milliseconds; a past date is no wait). Negative, empty
 * and unreadable values are ignored; waits beyond {@link maxRetryAfter} (including ones too large
 * for a number) are clamped to it.
 *
 * @internal
 */
export const retryAfter = (headers: HeadersLike | undefined, now: number): Duration.Duration | undefined => {
  if (headers === undefined) return undefined
  const ms = headers.get("retry-after-ms")
  if (ms !== null && ms.trim() !== "") {
    const found = wait(Number(ms))
    if (found !== undefined) return found
  }
  const raw = headers.get("retry-after")
  if (raw === null || raw.trim() === "") return undefined
  // Anything `Number` reads is delta-seconds (so "-3" is a negative wait, not the year -3).
  const seconds = Number(raw)
  if (!Number.isNaN(seconds)) return wait(seconds * 1000)
  const date = Date.parse(raw)
  return Number.isNaN(date) ? undefined : wait(Math.max(0, date - now))
}

/**
 * The provider's own verdict on retrying (`x-should-retry: true|false`), when it gave one.
 *
 * @internal
 */
export const shouldRetry = (headers: HeadersLike | undefined): boolean | undefined => {
  const value = headers?.get("x-should-retry")?.trim().toLowerCase()
  return value === "true" ? true : value === "false" ? false : undefined
}
