/**
 * Client-side rate limiting per provider: requests per minute, tokens per minute and calls in
 * flight, so a busy process stays under its provider limits instead of collecting 429s.
 *
 * Limits are kept per provider (the request's `provider`) as token buckets of
 * `@effect/experimental`'s `RateLimiter`: a full minute's budget may be spent at once, then it
 * refills evenly (`rpm: 60` admits 60 calls at once, then one a second; `burst` sets how many
 * go at once). The buckets live in a
 * `RateLimiter.RateLimiterStore` the caller provides: `RateLimiter.layerStoreMemory` for one
 * process, or the Redis store (`@effect/experimental/RateLimiter/Redis`) to share limits between
 * processes, without changing any caller. The limiter calls the store's token-bucket operation
 * directly (as `RateLimiter.consume` does), with each provider's refill rate computed once. Calls
 * in flight are capped with a `Semaphore`.
 *
 * - A caller without capacity waits for it, up to `maxWait` (default 30 s); when the wait would be
 *   longer it fails at once with a local `RateLimitError` whose `retryAfter` says when capacity
 *   returns (none when it waited for a free slot). `Retry` does not retry these (the wait is spent)
 *   and `CircuitBreaker` does not count them; `Fallback` may move to another provider.
 * - Tokens per minute: each call is charged an estimate before it starts (prompt characters / 4,
 *   plus 4 tokens a message and 3 for the reply's framing, plus `maxTokens` or
 *   `defaultOutputTokens`, as providers reserve the maximum output) and settled against the real
 *   `usage` when it answers: the difference is charged, or refunded. The store has no refund
 *   operation, so a refund is a negative charge, capped so a bucket never rises above its limit.
 *   A failed call keeps its charge. A request whose estimate exceeds the whole budget fails at once
 *   with a non-retryable `RateLimitError`.
 * - A provider's 429 with `retryAfter` pauses that provider for every caller of this process until
 *   `retryAfter` has passed, so a burst does not turn one 429 into fifty. With a shared store
 *   (`RateLimitStore.layerRedis`), the pause reaches every instance through it.
 * - `keyNamespaces` (e.g. `RateLimitStore.keyNamespaces(config)`) puts each provider's API-key
 *   fingerprint in its store keys, so two keys never share a budget.
 *
 * @example
 * import { RateLimiter } from "@effect/experimental"
 * import { Layer } from "effect"
 * import { LlmMock, RateLimit } from "@clearside/llm"
 *
 * const layer = RateLimit.layer({ rpm: 500, tpm: 200_000, maxConcurrency: 16, providers: { anthropic: { rpm: 50 } } }).pipe(
 *   Layer.provide(LlmMock.layerEcho()),
 *   Layer.provide(RateLimiter.layerStoreMemory)
 * )
 *
 * @since 0.1.0
 */
import { RateLimiter } from "@effect/experimental"
import { type Clock, Config, type ConfigError, type Context, Duration, Effect, Layer, Option, type Scope, Stream } from "effect"
import * as Llm from "./Llm.js"
import { type LlmError, RateLimitError } from "./LlmError.js"
import type { LlmRequest, LlmResponse, Usage } from "./LlmRequest.js"
import { SharedPauses } from "./RateLimitStore.js"
import * as LocalRejection from "./internal/localRejection.js"
import * as TokenEstimate from "./internal/tokenEstimate.js"

/**
 * Limits of one provider. Each is off when absent.
 *
 * @example
 * import type { RateLimit } from "@clearside/llm"
 * const limits: RateLimit.Limits = { rpm: 500, tpm: 200_000, maxConcurrency: 16 }
 *
 * @since 0.1.0
 * @category Models
 */
export interface Limits {
  readonly rpm?: number
  /**
   * Requests admitted at once: the size of the rpm bucket (default `rpm`, a whole minute's worth).
   * Providers that enforce a per-minute limit over shorter windows (OpenAI quantizes 600 rpm to 10
   * a second) answer a full-minute burst with 429s; `burst: 1` spaces every request evenly.
   */
  readonly burst?: number
  readonly tpm?: number
  readonly maxConcurrency?: number
}

/**
 * Limiter options: the limits for every provider, `providers` to override them per provider
 * name, `maxWait` (default 30 s) the longest a caller waits for capacity, `defaultOutputTokens`
 * (default 1024) the output budget charged when a request sets no `maxTokens`, `keyPrefix`
 * (default `"llm:"`) the prefix of the store keys (`llm:openai:rpm`, `llm:openai:tpm`), and
 * `keyNamespaces` a namespace per provider name placed after it (`llm:openai:<namespace>:rpm`),
 * normally the API key's `RateLimitStore.fingerprint`.
 *
 * @example
 * import { Duration } from "effect"
 * import type { RateLimit } from "@clearside/llm"
 *
 * const options: RateLimit.Options = {
 *   maxConcurrency: 8,
 *   providers: { openai: { rpm: 500, tpm: 200_000 }, anthropic: { rpm: 50, tpm: 40_000 } },
 *   maxWait: Duration.seconds(10)
 * }
 *
 * @since 0.1.0
 * @category Models
 */
export interface Options extends Limits {
  readonly providers?: Readonly<Record<string, Limits>>
  readonly maxWait?: Duration.DurationInput
  readonly defaultOutputTokens?: number
  readonly keyPrefix?: string
  readonly keyNamespaces?: Readonly<Record<string, string>>
  /** Runs before a call waits for capacity (e.g. `Usage.recordRateLimitWait`). */
  readonly onWait?: (info: { readonly provider: string; readonly delay: Duration.Duration }) => Effect.Effect<void>
}

/** A token bucket of one provider: its store key, size and refill interval. */
interface Bucket {
  readonly key: string
  readonly limit: number
  readonly refillRate: Duration.Duration
  readonly refillMs: number
}

/** Per-provider state, built once on the provider's first call. */
interface ProviderLimiter {
  readonly name: string
  /** Store key of the provider's 429 pause, shared when the store shares pauses. */
  readonly pauseKey: string
  readonly rpm: Bucket | undefined
  readonly tpm: Bucket | undefined
  readonly maxConcurrency: number
  readonly semaphore: Effect.Semaphore | undefined
  /** Takes one request from the rpm bucket; the delay before it may start, in ms. Built once. */
  readonly takeRequest: Effect.Effect<number> | undefined
  readonly release: Effect.Effect<void>
  readonly onError: (error: LlmError) => Effect.Effect<void>
  inFlight: number
  pausedUntil: number
}

const minute = Duration.minutes(1)

const localError = (provider: string, message: string, retryAfterMs?: number) =>
  LocalRejection.mark(
    new RateLimitError(
      retryAfterMs === undefined
        ? { provider, message }
        : { provider, message, retryAfter: Duration.millis(Math.ceil(retryAfterMs)) }
    )
  )

const formatMs = (ms: number) => Duration.format(Duration.millis(Math.ceil(ms)))

const usedTokens = (usage: Usage) => usage.totalTokens || usage.inputTokens + usage.outputTokens

/**
 * A rate-limiting wrapper: apply it to a service. All services it wraps share its per-provider
 * limits.
 *
 * @example
 * import { Effect } from "effect"
 * import { LlmMock, RateLimit } from "@clearside/llm"
 *
 * const wrapped = Effect.map(RateLimit.make({ rpm: 60 }), (limit) => limit(LlmMock.echo()))
 *
 * @since 0.1.0
 * @category Models
 */
export type Limiter = (service: Llm.Service) => Llm.Service

/**
 * Builds a limiter on the `RateLimiterStore` in context.
 *
 * @example
 * import { RateLimiter } from "@effect/experimental"
 * import { Effect } from "effect"
 * import { LlmMock, RateLimit } from "@clearside/llm"
 *
 * const program = Effect.gen(function* () {
 *   const limit = yield* RateLimit.make({ rpm: 60, maxConcurrency: 4 })
 *   const llm = limit(LlmMock.echo({ provider: "openai" }))
 *   return yield* llm.complete({ provider: "openai", messages: [{ role: "user", content: "hi" }] })
 * }).pipe(Effect.provide(RateLimiter.layerStoreMemory))
 *
 * @since 0.1.0
 * @category Constructors
 */
export const make = (options: Options = {}): Effect.Effect<Limiter, never, RateLimiter.RateLimiterStore> =>
  Effect.gen(function* () {
    const store = yield* RateLimiter.RateLimiterStore
    const pauses = Option.getOrUndefined(yield* Effect.serviceOption(SharedPauses))
    const ownClock = yield* Effect.clock
    return limiter(options, store, pauses, ownClock)
  })

const limiter = (
  options: Options,
  store: Context.Tag.Service<RateLimiter.RateLimiterStore>,
  pauses: Context.Tag.Service<SharedPauses> | undefined,
  ownClock: Clock.Clock
): Limiter => {
  const maxWaitMs = Duration.toMillis(Duration.decode(options.maxWait ?? Duration.seconds(30)))
  const defaultOutputTokens = options.defaultOutputTokens ?? 1024
  const prefix = options.keyPrefix ?? "llm:"
  const providers = new Map<string, ProviderLimiter>()

  // The store's own token-bucket operation, as `RateLimiter.consume` uses it, called directly
  // with the refill rate computed once per provider (a call far below the limits allocates
  // almost nothing). With `allowOverflow` a bucket goes negative: the debt is the wait.
  // Store failures (e.g. Redis down) fail open: the call goes through without waiting.
  const take = (bucket: Bucket, tokens: number): Effect.Effect<number> =>
    Effect.orElseSucceed(
      Effect.map(
        store.tokenBucket({ key: bucket.key, tokens, limit: bucket.limit, refillRate: bucket.refillRate, allowOverflow: true }),
        (remaining) => (remaining < 0 ? -remaining * bucket.refillMs : 0)
      ),
      () => 0
    )

  const keyOf = (name: string, kind: "rpm" | "tpm" | "pause") => {
    const namespace = options.keyNamespaces?.[name]
    return namespace === undefined ? `${prefix}${name}:${kind}` : `${prefix}${name}:${namespace}:${kind}`
  }

  /** A bucket refilled with `perMinute` tokens a minute, holding at most `size` (default `perMinute`). */
  const bucketOf = (
    name: string,
    kind: "rpm" | "tpm",
    perMinute: number | undefined,
    size?: number
  ): Bucket | undefined => {
    if (perMinute === undefined) return undefined
    const refillRate = Duration.unsafeDivide(minute, perMinute)
    return { key: keyOf(name, kind), limit: size ?? perMinute, refillRate, refillMs: Duration.toMillis(refillRate) }
  }

  const limiterFor = (name: string): ProviderLimiter => {
    let state = providers.get(name)
    if (state === undefined) {
      const own = options.providers?.[name]
      const rpm = bucketOf(name, "rpm", own?.rpm ?? options.rpm, own?.burst ?? options.burst)
      const maxConcurrency = own?.maxConcurrency ?? options.maxConcurrency
      const semaphore = maxConcurrency === undefined ? undefined : Effect.unsafeMakeSemaphore(maxConcurrency)
      const created: ProviderLimiter = {
        name,
        pauseKey: keyOf(name, "pause"),
        rpm,
        tpm: bucketOf(name, "tpm", own?.tpm ?? options.tpm),
        maxConcurrency: maxConcurrency ?? Infinity,
        semaphore,
        takeRequest: rpm === undefined ? undefined : take(rpm, 1),
        release:
          semaphore === undefined
            ? Effect.void
            : Effect.suspend(() => {
                created.inFlight--
                return semaphore.release(1)
              }),
        onError: (error) => onProviderError(created, error),
        inFlight: 0,
        pausedUntil: 0
      }
      state = created
      providers.set(name, state)
      // A pause announced by another instance extends this one's, as a 429 seen here would.
      pauses?.watch(created.pauseKey, (millis) => {
        const until = ownClock.unsafeCurrentTimeMillis() + millis
        if (until > created.pausedUntil) created.pausedUntil = until
      })
    }
    return state
  }

  /** Charges (delta > 0) or refunds (delta < 0) tokens, never lifting a bucket above its limit. */
  const adjust = (bucket: Bucket, delta: number): Effect.Effect<void> => {
    if (delta === 0) return Effect.void
    if (delta > 0) return Effect.asVoid(take(bucket, delta))
    return Effect.flatMap(
      Effect.orElseSucceed(
        store.tokenBucket({ key: bucket.key, tokens: 0, limit: bucket.limit, refillRate: bucket.refillRate, allowOverflow: true }),
        () => bucket.limit
      ),
      (remaining) => {
        const refund = Math.min(-delta, bucket.limit - remaining)
        return refund > 0 ? Effect.asVoid(take(bucket, -refund)) : Effect.void
      }
    )
  }

  /** Gives back what {@link reserve} took, when the call will not be made. */
  const unreserve = (s: ProviderLimiter, tokens: number): Effect.Effect<void> =>
    Effect.zipRight(
      s.rpm === undefined ? Effect.void : adjust(s.rpm, -1),
      s.tpm === undefined ? Effect.void : adjust(s.tpm, -tokens)
    )

  /**
   * Waits `rateDelay` (or until a 429 pause ends, whichever is later) if that fits in the
   * caller's remaining `budgetMs`; else gives the reservation back and fails.
   */
  const wait = (s: ProviderLimiter, tokens: number, rateDelay: number, budgetMs: number): Effect.Effect<void, RateLimitError> =>
    Effect.clockWith((clock) => {
      let paused = s.pausedUntil - clock.unsafeCurrentTimeMillis()
      if (paused <= 0) {
        s.pausedUntil = 0
        paused = 0
      }
      const delay = paused > rateDelay ? paused : rateDelay
      if (delay <= 0) return Effect.void
      if (delay > budgetMs) {
        return Effect.zipRight(
          unreserve(s, tokens),
          Effect.fail(
            localError(
              s.name,
              `Local rate limit for ${s.name}: capacity returns in ${formatMs(delay)}, more than the ${formatMs(maxWaitMs)} a call may wait`,
              delay
            )
          )
        )
      }
      const sleep = Effect.onInterrupt(Effect.sleep(Duration.millis(delay)), () => unreserve(s, tokens))
      return options.onWait === undefined
        ? sleep
        : Effect.zipRight(options.onWait({ provider: s.name, delay: Duration.millis(delay) }), sleep)
    })

  /** Reserves a request and `tokens` in the buckets, then waits for them if needed. */
  const reserve = (s: ProviderLimiter, tokens: number, budgetMs: number): Effect.Effect<void, RateLimitError> => {
    const tpm = s.tpm
    const rate =
      tpm === undefined
        ? s.takeRequest
        : s.takeRequest === undefined
          ? take(tpm, tokens)
          : Effect.zipWith(s.takeRequest, take(tpm, tokens), (a, b) => (a > b ? a : b))
    if (rate === undefined) return s.pausedUntil === 0 ? Effect.void : wait(s, tokens, 0, budgetMs)
    return Effect.flatMap(rate, (delay) => (delay <= 0 && s.pausedUntil === 0 ? Effect.void : wait(s, tokens, delay, budgetMs)))
  }

  /** Takes a slot, waiting at most `maxWait`; true when taken. */
  const takeSlot = (semaphore: Effect.Semaphore): Effect.Effect<boolean> => {
    let held = false
    const taken = Effect.uninterruptibleMask((restore) =>
      Effect.flatMap(restore(semaphore.take(1)), () =>
        Effect.sync(() => {
          held = true
        })
      )
    )
    // `held` also covers a slot taken in the same instant the wait timed out.
    return Effect.map(Effect.timeoutOption(taken, Duration.millis(maxWaitMs)), () => held)
  }

  const onProviderError = (s: ProviderLimiter, error: LlmError): Effect.Effect<void> => {
    if (error._tag !== "RateLimitError" || error.retryAfter === undefined || LocalRejection.isLocal(error)) {
      return Effect.void
    }
    const retryAfterMs = Duration.toMillis(error.retryAfter)
    return Effect.clockWith((clock) => {
      const until = clock.unsafeCurrentTimeMillis() + retryAfterMs
      if (until <= s.pausedUntil) return Effect.void
      s.pausedUntil = until
      const logged = Effect.logWarning(`Pausing calls to ${s.name} for ${formatMs(retryAfterMs)} after a rate limit answer`).pipe(
        Effect.annotateLogs({ provider: s.name, retryAfterMs })
      )
      return pauses === undefined ? logged : Effect.zipRight(pauses.announce(s.pauseKey, retryAfterMs), logged)
    })
  }

  const overBudget = (s: ProviderLimiter, tokens: number) =>
    LocalRejection.mark(
      new RateLimitError({
        provider: s.name,
        retryable: false,
        message: `Request needs about ${tokens} tokens, more than the whole budget of ${s.tpm?.limit} tokens per minute for ${s.name}`
      })
    )

  const noSlot = (s: ProviderLimiter) =>
    localError(s.name, `Local concurrency limit for ${s.name}: no free slot of ${s.maxConcurrency} within ${formatMs(maxWaitMs)}`)

  /**
   * Admits a call: takes a slot (if capped), then a request and its tokens, waiting as needed;
   * runs `use` and releases the slot when it ends. Decisions are taken when the effect runs.
   */
  const admitted = <A>(s: ProviderLimiter, tokens: number, use: Effect.Effect<A, LlmError>): Effect.Effect<A, LlmError> => {
    if (s.tpm !== undefined && tokens > s.tpm.limit) return Effect.fail(overBudget(s, tokens))
    const semaphore = s.semaphore
    if (semaphore === undefined) return Effect.zipRight(Effect.suspend(() => reserve(s, tokens, maxWaitMs)), use)
    return Effect.uninterruptibleMask((restore) => {
      if (s.inFlight < s.maxConcurrency) {
        return Effect.flatMap(restore(semaphore.take(1)), () => {
          s.inFlight++
          return Effect.ensuring(restore(Effect.zipRight(reserve(s, tokens, maxWaitMs), use)), s.release)
        })
      }
      return Effect.clockWith((clock) => {
        const start = clock.unsafeCurrentTimeMillis()
        return Effect.flatMap(restore(takeSlot(semaphore)), (taken) => {
          if (!taken) return Effect.fail(noSlot(s))
          s.inFlight++
          const budget = maxWaitMs - (clock.unsafeCurrentTimeMillis() - start)
          return Effect.ensuring(restore(Effect.zipRight(reserve(s, tokens, budget), use)), s.release)
        })
      })
    })
  }

  /** {@link admitted} for streams: the slot is released when the enclosing scope closes. */
  const admittedScoped = (s: ProviderLimiter, tokens: number): Effect.Effect<void, LlmError, Scope.Scope> => {
    if (s.tpm !== undefined && tokens > s.tpm.limit) return Effect.fail(overBudget(s, tokens))
    const semaphore = s.semaphore
    if (semaphore === undefined) return Effect.suspend(() => reserve(s, tokens, maxWaitMs))
    return Effect.uninterruptibleMask((restore) =>
      Effect.clockWith((clock) => {
        const start = clock.unsafeCurrentTimeMillis()
        const slot = s.inFlight < s.maxConcurrency ? Effect.as(semaphore.take(1), true) : takeSlot(semaphore)
        return Effect.flatMap(restore(slot), (taken) => {
          if (!taken) return Effect.fail(noSlot(s))
          s.inFlight++
          const budget = maxWaitMs - (clock.unsafeCurrentTimeMillis() - start)
          return Effect.zipRight(Effect.addFinalizer(() => s.release), restore(reserve(s, tokens, budget)))
        })
      })
    )
  }

  const settle = (s: ProviderLimiter, charged: number, usage: Usage): Effect.Effect<void> =>
    s.tpm === undefined ? Effect.void : adjust(s.tpm, usedTokens(usage) - charged)

  const estimate = (s: ProviderLimiter, request: LlmRequest) =>
    s.tpm === undefined ? 0 : TokenEstimate.estimate(request, defaultOutputTokens)

  return (service) => ({
    complete: (request) => {
      const s = limiterFor(request.provider ?? "default")
      const tokens = estimate(s, request)
      const call = service.complete(request)
      return admitted(
        s,
        tokens,
        s.tpm === undefined
          ? Effect.tapError(call, s.onError)
          : Effect.tapBoth(call, { onFailure: s.onError, onSuccess: (response: LlmResponse) => settle(s, tokens, response.usage) })
      )
    },
    stream: (request) => {
      const s = limiterFor(request.provider ?? "default")
      const tokens = estimate(s, request)
      // Per chunk, not per event: `Stream.tap` would run an Effect per event and split every chunk.
      const events = service.stream(request).pipe(
        Stream.mapChunksEffect((chunk) => {
          for (const event of chunk) if (event._tag === "Finish") return Effect.as(settle(s, tokens, event.usage), chunk)
          return Effect.succeed(chunk)
        }),
        Stream.tapError(s.onError)
      )
      // The slot is held until the stream ends: it is released by the stream's scope.
      return Stream.unwrapScoped(Effect.as(admittedScoped(s, tokens), events))
    }
  })
}

/**
 * Wraps the `Llm` service in context with a limiter on the `RateLimiterStore` the caller
 * provides (`RateLimiter.layerStoreMemory`, or a shared Redis store).
 *
 * @example
 * import { RateLimiter } from "@effect/experimental"
 * import { Layer } from "effect"
 * import { LlmMock, RateLimit } from "@clearside/llm"
 *
 * const layer = RateLimit.layer({ rpm: 60 }).pipe(
 *   Layer.provide(LlmMock.layerEcho()),
 *   Layer.provide(RateLimiter.layerStoreMemory)
 * )
 *
 * @since 0.1.0
 * @category Layers
 */
export const layer = (options: Options = {}): Layer.Layer<Llm.Llm, never, Llm.Llm | RateLimiter.RateLimiterStore> =>
  Layer.effect(Llm.Llm, Effect.zipWith(make(options), Llm.Llm, (limit, service) => limit(service)))

/** `LLM_RATE_LIMIT_RPM_OPENAI` for `openai`; names are upper-cased, other characters become `_`. */
const variable = (base: string, provider?: string) =>
  provider === undefined ? base : `${base}_${provider.toUpperCase().replace(/[^A-Z0-9]/g, "_")}`

const positiveInteger = (name: string) =>
  Config.option(
    Config.integer(name).pipe(
      Config.validate({ message: `${name} must be a positive whole number`, validation: (n) => n > 0 })
    )
  )

const limitsConfig = (provider?: string): Config.Config<Limits> =>
  Config.map(
    Config.all({
      rpm: positiveInteger(variable("LLM_RATE_LIMIT_RPM", provider)),
      burst: positiveInteger(variable("LLM_RATE_LIMIT_BURST", provider)),
      tpm: positiveInteger(variable("LLM_RATE_LIMIT_TPM", provider)),
      maxConcurrency: positiveInteger(variable("LLM_MAX_CONCURRENCY", provider))
    }),
    (limits): Limits => ({
      ...(Option.isSome(limits.rpm) ? { rpm: limits.rpm.value } : {}),
      ...(Option.isSome(limits.burst) ? { burst: limits.burst.value } : {}),
      ...(Option.isSome(limits.tpm) ? { tpm: limits.tpm.value } : {}),
      ...(Option.isSome(limits.maxConcurrency) ? { maxConcurrency: limits.maxConcurrency.value } : {})
    })
  )

/**
 * Limiter options from the environment: `LLM_RATE_LIMIT_RPM`, `LLM_RATE_LIMIT_BURST`,
 * `LLM_RATE_LIMIT_TPM` and `LLM_MAX_CONCURRENCY` for every provider (each off when unset), the same with the provider's name
 * appended for each of `providers` (e.g. `LLM_RATE_LIMIT_RPM_OPENAI`, which wins over the shared
 * one), and `LLM_RATE_LIMIT_MAX_WAIT_MS` (30000).
 *
 * @example
 * import { Effect } from "effect"
 * import { RateLimit } from "@clearside/llm"
 * const options = Effect.runSync(RateLimit.config(["openai", "anthropic", "groq"]))
 *
 * @since 0.1.0
 * @category Config
 */
export const config = (providers: ReadonlyArray<string> = ["openai", "anthropic"]): Config.Config<Options> =>
  Config.map(
    Config.all({
      shared: limitsConfig(),
      own: Config.all(providers.map((name) => Config.map(limitsConfig(name), (limits) => [name, limits] as const))),
      maxWait: Config.integer("LLM_RATE_LIMIT_MAX_WAIT_MS").pipe(
        Config.validate({ message: "LLM_RATE_LIMIT_MAX_WAIT_MS must be 0 or more", validation: (n) => n >= 0 }),
        Config.withDefault(30_000)
      )
    }),
    ({ maxWait, own, shared }): Options => ({
      ...shared,
      maxWait: Duration.millis(maxWait),
      providers: Object.fromEntries(own.filter(([, limits]) => Object.keys(limits).length > 0))
    })
  )

/**
 * {@link layer} with options read from {@link config} for the given provider names.
 *
 * @example
 * import { RateLimiter } from "@effect/experimental"
 * import { Layer } from "effect"
 * import { LlmMock, RateLimit } from "@clearside/llm"
 *
 * const layer = RateLimit.layerConfig().pipe(Layer.provide(LlmMock.layerEcho()), Layer.provide(RateLimiter.layerStoreMemory))
 *
 * @since 0.1.0
 * @category Layers
 */
export const layerConfig = (
  providers?: ReadonlyArray<string>
): Layer.Layer<Llm.Llm, ConfigError.ConfigError, Llm.Llm | RateLimiter.RateLimiterStore> =>
  Layer.unwrapEffect(Effect.map(config(providers), layer))
