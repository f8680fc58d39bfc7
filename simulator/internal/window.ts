/**
 * Fixed-window request and token limits over real time, as a provider enforces requests per
 * minute and tokens per minute.
 *
 * @internal
 */

/** @internal */
export interface WindowCount {
  /** Epoch milliseconds at which the window opened. */
  readonly start: number
  /** Requests let through in this window. */
  readonly accepted: number
  /** Requests answered 429 in this window. */
  readonly rejected: number
  /** Tokens charged by the accepted requests. */
  readonly tokens: number
}

/** @internal */
export interface Decision {
  readonly accepted: boolean
  /** Which limit refused the request, when one did. */
  readonly reason?: "requests" | "tokens"
  readonly remainingRequests: number
  readonly remainingTokens: number
  /** Milliseconds until the window closes. */
  readonly resetMs: number
}

/** @internal */
export interface Limiter {
  readonly rpm: number | undefined
  readonly tpm: number | undefined
  readonly check: (tokens: number, now: number) => Decision
  readonly windows: () => ReadonlyArray<WindowCount>
  readonly reset: () => void
}

/** Builds a limiter; with neither limit set every request is accepted and still counted. */
export const makeLimiter = (options: {
  readonly rpm: number | undefined
  readonly tpm: number | undefined
  readonly windowMs: number
}): Limiter => {
  const { rpm, tpm, windowMs } = options
  let closed: Array<WindowCount> = []
  let current: { start: number; accepted: number; rejected: number; tokens: number } | undefined

  const roll = (now: number) => {
    if (current === undefined) {
      current = { start: now, accepted: 0, rejected: 0, tokens: 0 }
    } else if (now - current.start >= windowMs) {
      closed.push({ ...current })
      const elapsed = Math.floor((now - current.start) / windowMs) * windowMs
      current = { start: current.start + elapsed, accepted: 0, rejected: 0, tokens: 0 }
    }
    return current
  }

  return {
    rpm,
    tpm,
    check: (tokens, now) => {
      const window = roll(now)
      const resetMs = Math.max(0, window.start + windowMs - now)
      const reason =
        rpm !== undefined && window.accepted + 1 > rpm
          ? "requests"
          : tpm !== undefined && window.tokens + tokens > tpm
            ? "tokens"
            : undefined
      if (reason === undefined) {
        window.accepted++
        window.tokens += tokens
      } else {
        window.rejected++
      }
      return {
        accepted: reason === undefined,
        ...(reason === undefined ? {} : { reason }),
        remainingRequests: Math.max(0, (rpm ?? Number.POSITIVE_INFINITY) - window.accepted),
        remainingTokens: Math.max(0, (tpm ?? Number.POSITIVE_INFINITY) - window.tokens),
        resetMs
      }
    },
    windows: () => (current === undefined ? [...closed] : [...closed, { ...current }]),
    reset: () => {
      closed = []
      current = undefined
    }
  }
}
