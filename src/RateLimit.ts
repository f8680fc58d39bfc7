/**
 * Client-side rate limiting per provider: requests per minute, tokens per minute and calls in
 * flight, so a busy process stays under its provider limits instead of collecting 429s.
 *
 * Limits are kept per provider (the request's `provider`) in `@effect/experimental`'s
 * `RateLimiter`, as token buckets: a full minute's budget may be spent at once, then it refills
 * evenly (`rpm: 60` admits 60 calls at once, then one a second). The buckets live in a
 * `RateLimiterStore` the caller provides: `RateLimiter.layerStoreMemory` for one process, or the
 * Redis store (`@effect/experimental/RateLimiter/Redis`) to share limits between processes,
 * without changing any caller. Calls in flight are capped with a `Semaphore`.
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
 *   `retryAfter` has passed, so a burst does not turn one 429 into fifty.
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
import { Config, type ConfigError, Duration, Effect, Layer, Option, type Scope, Stream } from "effect"
import * as Llm from "./Llm.js"
import { type LlmError, RateLimitError } from "./LlmError.js"
import type { LlmRequest, LlmResponse, Usage } from "./LlmRequest.js"
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
  readonly tpm?: number
  readonly maxConcurrency?: number
}

/**
 * Limiter options: the limits for every provider, `providers` to override them per provider
 * name, `maxWait` (default 30 s) the longest a caller waits for capacity, `defaultOutputTokens`
 * (default 1024) the output budget charged when a request sets no `maxTokens`, and `keyPrefix`
 * (default `"llm:"`) the prefix of the store keys (`llm:openai:rpm`, `llm:openai:tpm`).
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
}

/** Per-provider state, built once on the provider's first call. */
interface ProviderLimiter {
  readonly name: string
  readonly rpm: number | undefined
  readonly tpm: number | undefined
  readonly maxConcurrency: number | undefined
  readonly semaphore: Effect.Semaphore | undefined
  readonly rpmKey: string
  readonly tpmKey: string
  readonly takeRequest: Parameters<RateLimiter.RateLimiter["consume"]>[0] | undefined
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
  Effect.map(RateLimiter.make, (limiter): Limiter => {
    const maxWaitMs = Duration.toMillis(Duration.decode(options.maxWait ?? Duration.seconds(30)))
    const defaultOutputTokens = options.defaultOutputTokens ?? 1024
    const prefix = options.keyPrefix ?? "llm:"
    const providers = new Map<string, ProviderLimiter>()

    const limiterFor = (name: string): ProviderLimiter => {
      let state = providers.get(name)
      if (state === undefined) {
        const own = options.providers?.[name]
        const rpm = own?.rpm ?? options.rpm
        const tpm = own?.tpm ?? options.tpm
        const maxConcurrency = own?.maxConcurrency ?? options.maxConcurrency
        const rpmKey = `${prefix}${name}:rpm`
        state = {
          name,
          rpm,
          tpm,
          maxConcurrency,
          semaphore: maxConcurrency === undefined ? undefined : Effect.unsafeMakeSemaphore(maxConcurrency),
          rpmKey,
          tpmKey: `${prefix}${name}:tpm`,
          takeRequest:
            rpm === undefined
              ? undefined
              : { key: rpmKey, limit: rpm, window: minute, algorithm: "token-bucket", onExceeded: "delay", tokens: 1 },
          inFlight: 0,
          pausedUntil: 0
        }
        providers.set(name, state)
      }
      return state
    }

    // The stores fail only on infrastructure errors (e.g. Redis down); the library then fails
    // open, letting the call through rather than blocking every caller on the limiter.
    const consume = (key: string, limit: number, tokens: number): Effect.Effect<number> =>
      Effect.orElseSucceed(
        Effect.map(
          limiter.consume({ key, limit, window: minute, algorithm: "token-bucket", onExceeded: "delay", tokens }),
          (result) => Duration.toMillis(result.delay)
        ),
        () => 0
      )

    /** Charges (delta > 0) or refunds (delta < 0) tokens, never lifting a bucket above its limit. */
    const adjust = (key: string, limit: number, delta: number): Effect.Effect<void> => {
      if (delta === 0) return Effect.void
      if (delta > 0) return Effect.asVoid(consume(key, limit, delta))
      return Effect.flatMap(
        Effect.orElseSucceed(
          Effect.map(
            limiter.consume({ key, limit, window: minute, algorithm: "token-bucket", onExceeded: "delay", tokens: 0 }),
            (result) => result.remaining
          ),
          () => limit
        ),
        (remaining) => {
          const refund = Math.min(-delta, limit - remaining)
          return refund > 0 ? Effect.asVoid(consume(key, limit, -refund)) : Effect.void
        }
      )
    }

    /** Gives back what {@link reserve} took, when the call will not be made. */
    const unreserve = (s: ProviderLimiter, tokens: number): Effect.Effect<void> =>
      Effect.zipRight(
        s.rpm === undefined ? Effect.void : adjust(s.rpmKey, s.rpm, -1),
        s.tpm === undefined || tokens === 0 ? Effect.void : adjust(s.tpmKey, s.tpm, -tokens)
      )

    /**
     * Reserves a request and `tokens`, then waits for them (and for any 429 pause) if that fits in
     * the caller's remaining budget `budgetMs`; otherwise gives them back and fails.
     */
    const reserve = (s: ProviderLimiter, tokens: number, budgetMs: number): Effect.Effect<void, RateLimitError> =>
      Effect.clockWith((clock) => {
        const rpmDelay = s.takeRequest === undefined ? Effect.succeed(0) : Effect.map(limiter.consume(s.takeRequest), (r) => Duration.toMillis(r.delay))
        const tpmDelay = s.tpm === undefined || tokens === 0 ? Effect.succeed(0) : consume(s.tpmKey, s.tpm, tokens)
        return Effect.flatMap(
          Effect.zipWith(Effect.orElseSucceed(rpmDelay, () => 0), tpmDelay, (a, b) => (a > b ? a : b)),
          (rateDelay) => {
            const paused = s.pausedUntil - clock.unsafeCurrentTimeMillis()
            const wait = paused > rateDelay ? paused : rateDelay
            if (wait <= 0) return Effect.void
            if (wait > budgetMs) {
              return Effect.zipRight(
                unreserve(s, tokens),
                Effect.fail(
                  localError(
                    s.name,
                    `Local rate limit for ${s.name}: capacity returns in ${formatMs(wait)}, more than the ${formatMs(maxWaitMs)} a call may wait`,
                    wait
                  )
                )
              )
            }
            return Effect.onInterrupt(Effect.sleep(Duration.millis(wait)), () => unreserve(s, tokens))
          }
        )
      })

    /** Takes a slot, waiting at most `budgetMs`; true when taken. */
    const takeSlot = (s: ProviderLimiter, semaphore: Effect.Semaphore): Effect.Effect<boolean> => {
      if (s.inFlight < s.maxConcurrency!) {
        return Effect.as(semaphore.take(1), true)
      }
      let held = false
      const take = Effect.uninterruptibleMask((restore) =>
        Effect.flatMap(restore(semaphore.take(1)), () =>
          Effect.sync(() => {
            held = true
          })
        )
      )
      return Effect.map(Effect.timeoutOption(take, Duration.millis(maxWaitMs)), () => held)
    }

    const release = (s: ProviderLimiter, semaphore: Effect.Semaphore) =>
      Effect.suspend(() => {
        s.inFlight--
        return semaphore.release(1)
      })

    const onProviderError = (s: ProviderLimiter) => (error: LlmError) => {
      if (error._tag !== "RateLimitError" || error.retryAfter === undefined || LocalRejection.isLocal(error)) {
        return Effect.void
      }
      const retryAfterMs = Duration.toMillis(error.retryAfter)
      return Effect.clockWith((clock) => {
        const until = clock.unsafeCurrentTimeMillis() + retryAfterMs
        if (until <= s.pausedUntil) return Effect.void
        s.pausedUntil = until
        return Effect.logWarning(`Pausing calls to ${s.name} for ${formatMs(retryAfterMs)} after a rate limit answer`).pipe(
          Effect.annotateLogs({ provider: s.name, retryAfterMs })
        )
      })
    }

    const overBudget = (s: ProviderLimiter, tokens: number) =>
      LocalRejection.mark(
        new RateLimitError({
          provider: s.name,
          retryable: false,
          message: `Request needs about ${tokens} tokens, more than the whole budget of ${s.tpm} tokens per minute for ${s.name}`
        })
      )

    const noSlot = (s: ProviderLimiter) =>
      localError(s.name, `Local concurrency limit for ${s.name}: no free slot of ${s.maxConcurrency} within ${formatMs(maxWaitMs)}`)

    /**
     * Admits a call: takes a slot (if capped), then a request and its token estimate. Runs `use`
     * with the number of tokens charged; releases the slot when `use` ends.
     */
    const admitted = <A>(
      s: ProviderLimiter,
      request: LlmRequest,
      use: (charged: number) => Effect.Effect<A, LlmError>
    ): Effect.Effect<A, LlmError> => {
      const tokens = s.tpm === undefined ? 0 : TokenEstimate.estimate(request, defaultOutputTokens)
      if (s.tpm !== undefined && tokens > s.tpm) return Effect.fail(overBudget(s, tokens))
      const run = (budgetMs: number) => Effect.zipRight(reserve(s, tokens, budgetMs), use(tokens))
      const semaphore = s.semaphore
      if (semaphore === undefined) return run(maxWaitMs)
      return Effect.clockWith((clock) => {
        const start = clock.unsafeCurrentTimeMillis()
        return Effect.uninterruptibleMask((restore) =>
          Effect.flatMap(restore(takeSlot(s, semaphore)), (taken) => {
            if (!taken) return Effect.fail(noSlot(s))
            s.inFlight++
            return Effect.ensuring(
              restore(run(maxWaitMs - (clock.unsafeCurrentTimeMillis() - start))),
              release(s, semaphore)
            )
          })
        )
      })
    }

    /** {@link admitted} for streams: the slot is released when the enclosing scope closes. */
    const admittedScoped = (s: ProviderLimiter, request: LlmRequest): Effect.Effect<number, LlmError, Scope.Scope> => {
      const tokens = s.tpm === undefined ? 0 : TokenEstimate.estimate(request, defaultOutputTokens)
      if (s.tpm !== undefined && tokens > s.tpm) return Effect.fail(overBudget(s, tokens))
      const semaphore = s.semaphore
      if (semaphore === undefined) return Effect.as(reserve(s, tokens, maxWaitMs), tokens)
      return Effect.clockWith((clock) => {
        const start = clock.unsafeCurrentTimeMillis()
        return Effect.uninterruptibleMask((restore) =>
          Effect.flatMap(restore(takeSlot(s, semaphore)), (taken) => {
            if (!taken) return Effect.fail(noSlot(s))
            s.inFlight++
            return Effect.zipRight(
              Effect.addFinalizer(() => release(s, semaphore)),
              Effect.as(restore(reserve(s, tokens, maxWaitMs - (clock.unsafeCurrentTimeMillis() - start))), tokens)
            )
          })
        )
      })
    }

    const settle = (s: ProviderLimiter, charged: number, usage: Usage): Effect.Effect<void> =>
      s.tpm === undefined ? Effect.void : adjust(s.tpmKey, s.tpm, usedTokens(usage) - charged)

    return (service) => ({
      complete: (request) => {
        const s = limiterFor(request.provider ?? "default")
        return admitted(s, request, (charged): Effect.Effect<LlmResponse, LlmError> =>
          Effect.tapBoth(service.complete(request), {
            onFailure: onProviderError(s),
            onSuccess: (response) => settle(s, charged, response.usage)
          })
        )
      },
      stream: (request) => {
        const s = limiterFor(request.provider ?? "default")
        // The slot is held until the stream ends: it is released by the stream's scope.
        return Stream.unwrapScoped(
          Effect.map(admittedScoped(s, request), (charged) =>
            service.stream(request).pipe(
              Stream.tap((event) => (event._tag === "Finish" ? settle(s, charged, event.usage) : Effect.void)),
              Stream.tapError(onProviderError(s))
            )
          )
        )
      }
    })
  })

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
      tpm: positiveInteger(variable("LLM_RATE_LIMIT_TPM", provider)),
      maxConcurrency: positiveInteger(variable("LLM_MAX_CONCURRENCY", provider))
    }),
    (limits): Limits => ({
      ...(Option.isSome(limits.rpm) ? { rpm: limits.rpm.value } : {}),
      ...(Option.isSome(limits.tpm) ? { tpm: limits.tpm.value } : {}),
      ...(Option.isSome(limits.maxConcurrency) ? { maxConcurrency: limits.maxConcurrency.value } : {})
    })
  )

/**
 * Limiter options from the environment: `LLM_RATE_LIMIT_RPM`, `LLM_RATE_LIMIT_TPM` and
 * `LLM_MAX_CONCURRENCY` for every provider (each off when unset), the same with the provider's name
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
