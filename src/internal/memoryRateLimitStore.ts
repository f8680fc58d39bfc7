/**
 * The in-process `RateLimiterStore`: the same buckets and windows as
 * `RateLimiter.layerStoreMemory`, with the same arithmetic, whose token bucket can also be read
 * synchronously. `RateLimit` uses that to take a call's request and tokens without running an
 * Effect per bucket; every other user sees an ordinary store.
 *
 * @internal
 */
import type { RateLimiter } from "@effect/experimental"
import { type Context, Duration, Effect } from "effect"

type Store = Context.Tag.Service<RateLimiter.RateLimiterStore>

/**
 * A token bucket operation answered at once: takes `tokens` (a negative count gives tokens back)
 * from the bucket `key` at time `now` (ms) and returns the level left, which may be negative with
 * `allowOverflow`. The same rule as the store's `tokenBucket`.
 *
 * @internal
 */
export type TokenBucket = (
  key: string,
  tokens: number,
  limit: number,
  refillMs: number,
  allowOverflow: boolean,
  now: number
) => number

const synchronous = new WeakMap<object, TokenBucket>()

/**
 * The synchronous token bucket of a store built by {@link make}, else undefined.
 *
 * @internal
 */
export const tokenBucketOf = (store: Store): TokenBucket | undefined => synchronous.get(store)

/**
 * A new, empty in-process store.
 *
 * @internal
 */
export const make = (): Store => {
  const fixedCounters = new Map<string, { count: number; expiresAt: number }>()
  const tokenBuckets = new Map<string, { tokens: number; lastRefill: number }>()

  const tokenBucket: TokenBucket = (key, tokens, limit, refillMs, allowOverflow, now) => {
    let bucket = tokenBuckets.get(key)
    if (bucket === undefined) {
      bucket = { tokens: limit, lastRefill: now }
      tokenBuckets.set(key, bucket)
    } else {
      const tokensToAdd = Math.floor((now - bucket.lastRefill) / refillMs)
      if (tokensToAdd > 0) {
        bucket.tokens = Math.min(limit, bucket.tokens + tokensToAdd)
        bucket.lastRefill += tokensToAdd * refillMs
      }
    }
    const level = bucket.tokens - tokens
    if (allowOverflow || level >= 0) bucket.tokens = level
    return level
  }

  const store: Store = {
    fixedWindow: (options) =>
      Effect.clockWith((clock) =>
        Effect.sync((): readonly [count: number, ttl: number] => {
          const refillMs = Duration.toMillis(options.refillRate)
          const now = clock.unsafeCurrentTimeMillis()
          let counter = fixedCounters.get(options.key)
          if (counter === undefined || counter.expiresAt <= now) {
            counter = { count: 0, expiresAt: now }
            fixedCounters.set(options.key, counter)
          }
          if (options.limit && counter.count + options.tokens > options.limit) {
            return [counter.count + options.tokens, counter.expiresAt - now]
          }
          counter.count += options.tokens
          counter.expiresAt += refillMs * options.tokens
          return [counter.count, counter.expiresAt - now]
        })
      ),
    tokenBucket: (options) =>
      Effect.clockWith((clock) =>
        Effect.sync(() =>
          tokenBucket(
            options.key,
            options.tokens,
            options.limit,
            Duration.toMillis(options.refillRate),
            options.allowOverflow,
            clock.unsafeCurrentTimeMillis()
          )
        )
      )
  }
  synchronous.set(store, tokenBucket)
  return store
}
