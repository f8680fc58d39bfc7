import type { RateLimitError } from "../LlmError.js"

/**
 * Rate limit errors raised by the local limiter (a caller waited as long as allowed for capacity),
 * as opposed to a provider's 429. Retry does not retry them (the wait was already spent) and the
 * circuit breaker does not count them (the provider did nothing wrong).
 */
const local = new WeakSet<object>()

/** @internal */
export const mark = (error: RateLimitError): RateLimitError => {
  local.add(error)
  return error
}

/** @internal */
export const isLocal = (error: object): boolean => local.has(error)
