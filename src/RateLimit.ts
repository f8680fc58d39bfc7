/**
 * Client-side rate limiting per provider: requests per minute, tokens per minute and calls in
 * flight, so a busy process stays under its provider limits instead of collecting 429s.
 *
 * Limits are kept per provider (the request's `provider`) as token buckets of
 * `@effect/experimental`'s `RateLimiter`: a full minute's budget may be spent at once, then it
 * refills evenly (`rpm: 60` admits 60 calls at once, then one a second; `burst` sets how many
 * go at once). The buckets live in a
 * `RateLimiter.RateLimiterStore` the caller provides: `RateLimitStore.layerMemory` for one
 * process (read and settled without running an Effect), `RateLimitStore.layerRedis` to share limits
 * between processes, or any other store, without changing any caller. The limiter calls the
 * store's token-bucket operation directly (as `RateLimiter.consume` does), with each provider's
 * refill rate computed once. Calls in flight are capped with a counter of free slots and a queue of
 * waiters.
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
import {
  Cause,
  Channel,
  Chunk,
  Clock,
  Config,
  type ConfigError,
  Context,
  Duration,
  Effect,
  Exit,
  Fiber,
  FiberRef,
  Layer,
  Option,
  Stream
} from "effect"
import * as Llm from "./Llm.js"
import { type LlmError, RateLimitError } from "./LlmError.js"
import type { LlmRequest, LlmResponse, LlmStreamEvent, Usage } from "./LlmRequest.js"
import { SharedPauses } from "./RateLimitStore.js"
import * as LocalRejection from "./internal/localRejection.js"
import * as MemoryStore from "./internal/memoryRateLimitStore.js"
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

/**
 * The calls in flight of one provider: a counting semaphore whose free slot is taken at once,
 * without running an Effect. A waiter is woken on the fiber scheduler when a slot is given back,
 * and takes it if it is still free (as `Effect.Semaphore` does).
 */
class Slots {
  taken = 0
  private readonly waiters = new Set<() => void>()
  constructor(readonly permits: number) {}

  tryTake(): boolean {
    if (this.taken >= this.permits) return false
    this.taken++
    return true
  }

  /** Waits for a free slot and takes it; interruptible while it waits. */
  readonly take: Effect.Effect<void> = Effect.async<void>((resume) => {
    const attempt = Effect.suspend(() => (this.tryTake() ? Effect.void : this.take))
    if (this.taken < this.permits) {
      resume(attempt)
      return
    }
    const observer = () => {
      if (this.taken >= this.permits) return
      this.waiters.delete(observer)
      resume(attempt)
    }
    this.waiters.add(observer)
    return Effect.sync(() => {
      this.waiters.delete(observer)
    })
  })

  private readonly wake = () => {
    for (const observer of this.waiters) {
      if (this.taken >= this.permits) return
      observer()
    }
  }

  /** Gives a slot back; `fiber` is the fiber giving it, whose scheduler wakes the waiters. */
  release(fiber: Fiber.RuntimeFiber<unknown, unknown>): void {
    this.taken--
    if (this.waiters.size > 0) {
      fiber.currentScheduler.scheduleTask(this.wake, fiber.getFiberRef(FiberRef.currentSchedulingPriority), fiber)
    }
  }
}

/** Per-provider state, built once on the provider's first call. */
interface ProviderLimiter {
  readonly name: string
  /** Store key of the provider's 429 pause, shared when the store shares pauses. */
  readonly pauseKey: string
  readonly rpm: Bucket | undefined
  readonly tpm: Bucket | undefined
  readonly slots: Slots | undefined
  readonly maxConcurrency: number
  /** Takes one request from the rpm bucket; the delay before it may start, in ms. Built once. */
  readonly takeRequest: Effect.Effect<number> | undefined
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

/** A provider's 429 that pauses it (one with `retryAfter`, not raised here), found in `cause`. */
const pauseOf = (cause: Cause.Cause<LlmError>): RateLimitError | undefined => {
  const failure = Cause.failureOption(cause)
  if (failure._tag === "None") return undefined
  const error = failure.value
  return error._tag === "RateLimitError" && error.retryAfter !== undefined && !LocalRejection.isLocal(error) ? error : undefined
}

/** The time on the clock of `fiber`, as `Clock.currentTimeMillis` would read it there. */
const nowOf = (fiber: Fiber.RuntimeFiber<unknown, unknown>): number =>
  Context.get(fiber.currentDefaultServices, Clock.Clock).unsafeCurrentTimeMillis()

const releaseOn = (slots: Slots, fiber: Fiber.RuntimeFiber<unknown, unknown>): Effect.Effect<void> =>
  Effect.sync(() => {
    slots.release(fiber)
  })

/** The usage of the first `Finish` event of a chunk. */
const finishUsage = (chunk: Chunk.Chunk<LlmStreamEvent>): Usage | undefined => {
  const events = Chunk.toReadonlyArray(chunk)
  for (let i = 0; i < events.length; i++) {
    const event = events[i]!
    if (event._tag === "Finish") return event.usage
  }
  return undefined
}

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

type Restore = <A, E, R>(effect: Effect.Effect<A, E, R>) => Effect.Effect<A, E, R>

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
  // The in-process store answers at once: its buckets are taken and settled without an Effect.
  const bucketNow = MemoryStore.tokenBucketOf(store)

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
      const created: ProviderLimiter = {
        name,
        pauseKey: keyOf(name, "pause"),
        rpm,
        tpm: bucketOf(name, "tpm", own?.tpm ?? options.tpm),
        slots: maxConcurrency === undefined ? undefined : new Slots(maxConcurrency),
        maxConcurrency: maxConcurrency ?? Infinity,
        takeRequest: rpm === undefined ? undefined : take(rpm, 1),
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

  /** {@link take} on the in-process store, at `now`. */
  const takeNow = (tokenBucket: MemoryStore.TokenBucket, bucket: Bucket, tokens: number, now: number): number => {
    const remaining = tokenBucket(bucket.key, tokens, bucket.limit, bucket.refillMs, true, now)
    return remaining < 0 ? -remaining * bucket.refillMs : 0
  }

  /** {@link adjust} on the in-process store, at `now`. */
  const adjustNow = (tokenBucket: MemoryStore.TokenBucket, bucket: Bucket, delta: number, now: number): void => {
    if (delta === 0) return
    if (delta > 0) {
      tokenBucket(bucket.key, delta, bucket.limit, bucket.refillMs, true, now)
      return
    }
    const remaining = tokenBucket(bucket.key, 0, bucket.limit, bucket.refillMs, true, now)
    const refund = Math.min(-delta, bucket.limit - remaining)
    if (refund > 0) tokenBucket(bucket.key, -refund, bucket.limit, bucket.refillMs, true, now)
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

  /**
   * Reserves a request and `tokens` in the buckets, then waits for them if needed. Undefined when
   * the call may start at once (decided without an Effect on the in-process store).
   */
  const reserve = (
    s: ProviderLimiter,
    tokens: number,
    budgetMs: number,
    fiber: Fiber.RuntimeFiber<unknown, unknown>
  ): Effect.Effect<void, RateLimitError> | undefined => {
    const tpm = s.tpm
    if (bucketNow !== undefined || (s.rpm === undefined && tpm === undefined)) {
      let delay = 0
      if (s.rpm !== undefined || tpm !== undefined) {
        const now = nowOf(fiber)
        if (s.rpm !== undefined) delay = takeNow(bucketNow!, s.rpm, 1, now)
        if (tpm !== undefined) {
          const tokenDelay = takeNow(bucketNow!, tpm, tokens, now)
          if (tokenDelay > delay) delay = tokenDelay
        }
      }
      return delay <= 0 && s.pausedUntil === 0 ? undefined : wait(s, tokens, delay, budgetMs)
    }
    const rate =
      tpm === undefined
        ? s.takeRequest!
        : s.takeRequest === undefined
          ? take(tpm, tokens)
          : Effect.zipWith(s.takeRequest, take(tpm, tokens), (a, b) => (a > b ? a : b))
    return Effect.flatMap(rate, (delay) => (delay <= 0 && s.pausedUntil === 0 ? Effect.void : wait(s, tokens, delay, budgetMs)))
  }

  /** Takes a slot, waiting at most `maxWait`; true when taken. */
  const takeSlot = (slots: Slots): Effect.Effect<boolean> => {
    let held = false
    const taken = Effect.uninterruptibleMask((restore) =>
      Effect.flatMap(restore(slots.take), () =>
        Effect.sync(() => {
          held = true
        })
      )
    )
    // `held` also covers a slot taken in the same instant the wait timed out.
    return Effect.map(Effect.timeoutOption(taken, Duration.millis(maxWaitMs)), () => held)
  }

  const onProviderError = (s: ProviderLimiter, error: RateLimitError): Effect.Effect<void> => {
    const retryAfterMs = Duration.toMillis(error.retryAfter!)
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
   * Waits (interruptibly, through `restore`) for a slot when none is free, then reserves the
   * call's request and tokens. On success the slot is held; on failure it is not.
   */
  const waitForSlot = (
    s: ProviderLimiter,
    slots: Slots,
    tokens: number,
    fiber: Fiber.RuntimeFiber<unknown, unknown>,
    restore: Restore
  ): Effect.Effect<void, RateLimitError> => {
    const start = nowOf(fiber)
    return Effect.flatMap(restore(takeSlot(slots)), (taken) => {
      if (!taken) return Effect.fail(noSlot(s))
      const waiting = reserve(s, tokens, maxWaitMs - (nowOf(fiber) - start), fiber)
      if (waiting === undefined) return Effect.void
      return Effect.onError(restore(waiting), () =>
        Effect.sync(() => {
          slots.release(fiber)
        })
      )
    })
  }

  const estimate = (s: ProviderLimiter, request: LlmRequest) =>
    s.tpm === undefined ? 0 : TokenEstimate.estimate(request, defaultOutputTokens)

  /**
   * Passes a stream's chunks on and settles the tokens against the usage of its `Finish` event
   * before handing it on (at once on the in-process store).
   */
  const settling = (tpm: Bucket, charged: number) => {
    const reader: Channel.Channel<
      Chunk.Chunk<LlmStreamEvent>,
      Chunk.Chunk<LlmStreamEvent>,
      LlmError,
      LlmError,
      unknown,
      unknown
    > = Channel.readWithCause({
      onInput: (chunk: Chunk.Chunk<LlmStreamEvent>) => {
        const usage = finishUsage(chunk)
        if (usage !== undefined) {
          if (bucketNow === undefined) {
            return Channel.flatMap(Channel.fromEffect(adjust(tpm, usedTokens(usage) - charged)), () =>
              Channel.flatMap(Channel.write(chunk), next)
            )
          }
          const tokenBucket = bucketNow
          const used = usedTokens(usage)
          return Channel.flatMap(
            Channel.fromEffect(
              Effect.withFiberRuntime<void>((fiber) => {
                adjustNow(tokenBucket, tpm, used - charged, nowOf(fiber))
                return Effect.void
              })
            ),
            () => Channel.flatMap(Channel.write(chunk), next)
          )
        }
        return Channel.flatMap(Channel.write(chunk), next)
      },
      onFailure: Channel.failCause,
      onDone: Channel.succeed
    })
    const next = () => reader
    return reader
  }

  /**
   * Runs an admitted call: settles its tokens against the usage it reports, pauses the provider on
   * its 429, then gives its slot back (`held`), however it ends.
   */
  const run = (
    s: ProviderLimiter,
    tokens: number,
    call: Effect.Effect<LlmResponse, LlmError>,
    held: boolean,
    fiber: Fiber.RuntimeFiber<unknown, unknown>,
    restore: Restore
  ): Effect.Effect<LlmResponse, LlmError> =>
    Effect.matchCauseEffect(restore(call), {
      onFailure(cause) {
        const limited = pauseOf(cause)
        if (limited === undefined) {
          if (held) s.slots!.release(fiber)
          return Effect.failCause(cause)
        }
        const failed = Effect.zipRight(restore(onProviderError(s, limited)), Effect.failCause(cause))
        return held ? Effect.ensuring(failed, releaseOn(s.slots!, fiber)) : failed
      },
      onSuccess(response) {
        const tpm = s.tpm
        if (tpm === undefined || bucketNow !== undefined) {
          if (held) s.slots!.release(fiber)
          if (tpm !== undefined) adjustNow(bucketNow!, tpm, usedTokens(response.usage) - tokens, nowOf(fiber))
          return Effect.succeed(response)
        }
        const settled = Effect.as(restore(adjust(tpm, usedTokens(response.usage) - tokens)), response)
        return held ? Effect.ensuring(settled, releaseOn(s.slots!, fiber)) : settled
      }
    })

  return (service) => ({
    complete: (request) => {
      const s = limiterFor(request.provider ?? "default")
      const tokens = estimate(s, request)
      if (s.tpm !== undefined && tokens > s.tpm.limit) return Effect.fail(overBudget(s, tokens))
      const call = service.complete(request)
      return Effect.uninterruptibleMask((restore) =>
        Effect.withFiberRuntime<LlmResponse, LlmError>((fiber) => {
          const slots = s.slots
          if (slots !== undefined && !slots.tryTake()) {
            return Effect.flatMap(waitForSlot(s, slots, tokens, fiber, restore), () => run(s, tokens, call, true, fiber, restore))
          }
          const waiting = reserve(s, tokens, maxWaitMs, fiber)
          if (waiting === undefined) return run(s, tokens, call, slots !== undefined, fiber, restore)
          return Effect.matchCauseEffect(restore(waiting), {
            onFailure(cause) {
              if (slots !== undefined) slots.release(fiber)
              return Effect.failCause(cause)
            },
            onSuccess() {
              return run(s, tokens, call, slots !== undefined, fiber, restore)
            }
          })
        })
      )
    },
    stream: (request) => {
      const s = limiterFor(request.provider ?? "default")
      const tokens = estimate(s, request)
      if (s.tpm !== undefined && tokens > s.tpm.limit) return Stream.fail(overBudget(s, tokens))
      const events = Stream.toChannel(service.stream(request))
      return Stream.fromChannel(
        Channel.suspend(() => {
          // Per run of the stream: whether it holds a slot, released when the stream ends.
          let held = false
          const end = (exit: Exit.Exit<unknown, LlmError>): Effect.Effect<void> => {
            const limited = Exit.isFailure(exit) ? pauseOf(exit.cause) : undefined
            const release = held
              ? Effect.withFiberRuntime<void>((fiber) => {
                  held = false
                  s.slots!.release(fiber)
                  return Effect.void
                })
              : Effect.void
            return limited === undefined ? release : Effect.ensuring(onProviderError(s, limited), release)
          }
          const body = s.tpm === undefined ? events : Channel.pipeTo(events, settling(s.tpm, tokens))
          // Admitted at once when a slot is free: the slot is taken and its finalizer registered in
          // one synchronous step of the stream's executor, so nothing can interrupt in between.
          const current = Fiber.getCurrentFiber()
          const slotsNow = s.slots
          if (current._tag === "Some" && (slotsNow === undefined || slotsNow.tryTake())) {
            held = slotsNow !== undefined
            const waiting = reserve(s, tokens, maxWaitMs, current.value)
            return Channel.ensuringWith(waiting === undefined ? body : Channel.unwrap(Effect.as(waiting, body)), end)
          }
          const admission = Effect.uninterruptibleMask((restore) =>
            Effect.withFiberRuntime<void, RateLimitError>((fiber) => {
              const slots = s.slots
              if (slots !== undefined && !slots.tryTake()) {
                return Effect.map(waitForSlot(s, slots, tokens, fiber, restore), () => {
                  held = true
                })
              }
              held = slots !== undefined
              const waiting = reserve(s, tokens, maxWaitMs, fiber)
              return waiting === undefined ? Effect.void : restore(waiting)
            })
          )
          // The slot is held until the stream ends, however it ends; a provider's 429 pauses the
          // provider before the error is passed on.
          return Channel.ensuringWith(Channel.unwrap(Effect.as(admission, body)), end)
        })
      )
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
