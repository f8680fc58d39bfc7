/**
 * Reading the response headers that matter to callers: request ids, rate-limit headers,
 * `retry-after` and `x-should-retry`. Works on the fetch `Headers` the SDKs expose.
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
 * The provider's request id: OpenAI's `x-request-id`, Anthropic's `request-id`.
 *
 * @internal
 */
export const requestId = (headers: HeadersLike | undefined): string | undefined =>
  headers?.get("x-request-id") ?? headers?.get("request-id") ?? undefined

const rateLimitPrefixes = ["x-ratelimit-", "anthropic-ratelimit-"] as const

/**
 * The rate-limit headers (`x-ratelimit-*`, `anthropic-ratelimit-*`), or `undefined` when there are none.
 *
 * @internal
 */
export const rateLimitHeaders = (headers: HeadersLike | undefined): Record<string, string> | undefined => {
  if (headers === undefined) return undefined
  let found: Record<string, string> | undefined
  headers.forEach((value, key) => {
    const name = key.toLowerCase()
    if (rateLimitPrefixes.some((prefix) => name.startsWith(prefix))) {
      found ??= {}
      found[name] = value
    }
  })
  return found
}

/**
 * How long the provider asked to wait: `retry-after-ms`, else `retry-after` as seconds or as an
 * HTTP date (relative to `now`, in epoch milliseconds). Negative or unreadable values are ignored.
 *
 * @internal
 */
export const retryAfter = (headers: HeadersLike | undefined, now: number): Duration.Duration | undefined => {
  if (headers === undefined) return undefined
  const ms = headers.get("retry-after-ms")
  if (ms !== null && ms.trim() !== "") {
    const value = Number(ms)
    if (Number.isFinite(value) && value >= 0) return Duration.millis(value)
  }
  const raw = headers.get("retry-after")
  if (raw === null || raw.trim() === "") return undefined
  const seconds = Number(raw)
  if (Number.isFinite(seconds)) return seconds >= 0 ? Duration.millis(seconds * 1000) : undefined
  const date = Date.parse(raw)
  return Number.isNaN(date) ? undefined : Duration.millis(Math.max(0, date - now))
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
