/**
 * Client-side rate limiting per provider: requests per minute, tokens per minute and calls in
 * flight, so a busy process stays under its provider limits instead of collecting 429s.
 *
 * A policy over the stream of parts, so it holds for `complete` and `stream` alike. A call is
 * admitted when its stream starts, its tokens are settled on its `Finish`, and its slot is given
 * back when the stream ends, fails or is interrupted.
 *
 * Limits are kept per provider (the request's `provider`, set inside `Llm.router`) as token
 * buckets of `@effect/experimental`'s `RateLimiter`: a full minute's budget may be spent at once,
 * then it refills evenly (`rpm: 60` admits 60 calls at once, then one a second; `burst` sets how
 * many go at once). The buckets live in a `RateLimiter.RateLimiterStore` the caller provides:
 * `RateLimitStore.layerMemory` for one process, `RateLimitStore.layerRedis` to share limits between
 * processes, or any other store, without changing any caller.
 *
 * - Calls in flight (`maxConcurrency`) take slots in arrival order: a slot given back goes to the
 *   oldest waiter alone, so thousands of waiters cost one wake-up per call, and a caller that
 *   stops waiting (`maxWait`, or interrupted) leaves the queue without a slot.
 * - A caller without capacity waits for it, up to `maxWait` (default 30 s) in all; when the wait
 *   would be longer it fails with a `RateLimitError` marked `local: true` whose message names the
 *   limit, and whose `retryAfter` says when capacity returns (none when it waited for a slot).
 *   `Retry` does not retry these (the wait is spent) and `CircuitBreaker` does not count them;
 *   `Fallback` may move to another provider.
 * - Tokens per minute: each call is charged an estimate before it starts (prompt characters / 4,
 *   plus 4 tokens a message and 3 for the reply's framing, plus `maxTokens` or
 *   `defaultOutputTokens`, as providers reserve the maximum output) and settled against the real
 *   `usage` of its `Finish`: the difference is charged, or refunded. The store has no refund
 *   operation, so a refund is a negative charge, capped so a bucket never rises above its limit.
 *   A failed call keeps its charge. A request whose estimate exceeds the whole budget fails at once
 *   with a local, non-retryable `RateLimitError`.
 * - A provider's 429 with `retryAfter` pauses that provider for every caller of this process, for
 *   `retryAfter` but never longer than `maxRetryAfter` (default 60 s), so a burst does not turn one
 *   429 into fifty and an absurd `retry-after` cannot stop a provider for days. With a shared store
 *   (`RateLimitStore.layerRedis`), the pause reaches every instance through it.
 * - `keyNamespaces` (e.g. `RateLimitStore.keyNamespaces(config)`) puts each provider's API-key
 *   fingerprint in its store keys, so two keys never share a budget.
 *
 * @example
 * import { Layer } from "effect"
 * import { LlmMock, RateLimit, RateLimitStore } from "@clearside/llm"
 *
 * const layer = RateLimit.layer({ rpm: 500, tpm: 200_000, maxConcurrency: 16, providers: { anthropic: { rpm: 50 } } }).pipe(
 *   Layer.provide(LlmMock.layerEcho()),
 *   Layer.provide(RateLimitStore.layerMemory)
 * )
 *
 * @since 0.1.0
 */
import { RateLimiter } from "@effect/experimental"
import {
  type Chunk,
  type Clock,
  Config,
  type Context,
  Deferred,
  Duration,
  Effect,
  Exit,
  type Fiber,
  FiberId,
  Option,
  Scope
} from "effect"
import * as Llm from "./Llm.js"
import * as LlmConfig from "./LlmConfig.js"
import { type LlmError, RateLimitError } from "./LlmError.js"
import type { LlmStreamEvent, Usage } from "./LlmRequest.js"
import { SharedPauses } from "./RateLimitStore.js"
import * as Rules from "./internal/configRules.js"
import * as Answer from "./internal/answer.js"
import * as TokenEstimate from "./internal/tokenEstimate.js"

/**
 * Limits of one provider. Each is off when absent (or not a positive number).
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
 * name, `maxWait` (default 30 s) the longest a caller waits for capacity, `maxRetryAfter` (default
 * 60 s) the longest a provider's 429 pauses it, `defaultOutputTokens` (default 1024) the output
 * budget charged when a request sets no `maxTokens`, `keyPrefix` (default `"llm:"`) the prefix of
 * the store keys (`llm:openai:rpm`, `llm:openai:tpm`), and `keyNamespaces` a namespace per
 * provider name placed after it (`llm:openai:<namespace>:rpm`), normally the API key's
 * `RateLimitStore.fingerprint`. Durations are held to what a timer can hold (about 24.8 days).
 *
 * @example
 * import { Duration } from "effect"
 * import type { RateLimit } from "@clearside/llm"
 *
 * const options: RateLimit.Options = {
 *   maxConcurrency: 8,
 *   providers: { openai: { rpm: 500, tpm: 200_000 }, anthropic: { rpm: 50, tpm: 40_000 } },
 *   maxWait: Duration.seconds(10),
 *   maxRetryAfter: Duration.seconds(30)
 * }
 *
 * @since 0.1.0
 * @category Models
 */
export interface Options extends Limits {
  readonly providers?: Readonly<Record<string, Limits>>
  readonly maxWait?: Duration.DurationInput
  readonly maxRetryAfter?: Duration.DurationInput
  readonly defaultOutputTokens?: number
  readonly keyPrefix?: string
  readonly keyNamespaces?: Readonly<Record<string, string>>
  /** Runs before a call waits for rate capacity (e.g. `Usage.recordRateLimitWait`). */
  readonly onWait?: (info: { readonly provider: string; readonly delay: Duration.Duration }) => Effect.Effect<void>
}

type Store = Context.Tag.Service<RateLimiter.RateLimiterStore>

/** Which limit held a call back, as its refusal names it. */
type Limit = "requests per minute" | "tokens per minute" | "pause after the provider's 429"

/** A token bucket of one provider: its store key, size and refill interval. */
interface Bucket {
  readonly key: string
  readonly limit: number
  readonly refillRate: Duration.Duration
  readonly refillMs: number
}

/**
 * The calls in flight of one provider. A slot given back goes straight to the oldest waiter, so a
 * free slot means nobody waits and a newcomer never overtakes a waiter.
 */
interface Slots {
  readonly permits: number
  /** Takes a slot, waiting (interruptibly) at most the limiter's `maxWait`; true when taken. */
  readonly take: Effect.Effect<boolean>
  readonly release: Effect.Effect<void>
}

/**
 * A caller waiting for a slot. `state` is decided once, synchronously, by whichever comes first: a
 * release (granted), its deadline or its interruption (left).
 */
interface Waiter {
  readonly decided: Deferred.Deferred<boolean>
  readonly deadline: number
  state: "waiting" | "granted" | "left"
}

/** The expiry timer of a queue; `fiber` is set once it has been forked. */
interface Timer {
  fiber: Fiber.RuntimeFiber<void> | undefined
}

const decidedTrue = Exit.succeed(true)
const decidedFalse = Exit.succeed(false)

/**
 * FIFO slots on a `Deferred` per waiter. `Effect.Semaphore` is not used: its release wakes every
 * waiter and only the first to run takes the permit, the others queueing again at the back (2,000
 * callers through 10 permits with a 1 ms call did not finish in 120 s). Nor is `Queue.take` on a
 * pool of permits: it drops the item when the taker is interrupted after the hand-off (a timeout at
 * the instant of a release would leak a slot), and removes an interrupted taker by copying the queue.
 *
 * Every waiter of a queue waits the same `maxWait`, so deadlines come in arrival order and one timer
 * serves the whole queue: it sleeps until the oldest waiter's deadline, refuses every waiter whose
 * deadline has come, and sleeps again, and is stopped when nobody waits. A timer per waiter
 * (`Effect.timeoutOption`) costs two forked fibers each, and under `TestClock` 3,000 waiters timing
 * out together took 24 s (one clock step each) against one step here.
 */
const makeSlots = (permits: number, maxWaitMs: number): Slots => {
  let free = permits
  // Waiters in arrival order from `head`; those that left are skipped when reached.
  let queue: Array<Waiter> = []
  let head = 0
  let waiting = 0
  let timer: Timer | undefined

  const stopTimer = () => {
    timer?.fiber?.unsafeInterruptAsFork(FiberId.none)
    timer = undefined
  }

  const decide = (waiter: Waiter, state: "granted" | "left") => {
    waiter.state = state
    waiting--
    Deferred.unsafeDone(waiter.decided, state === "granted" ? decidedTrue : decidedFalse)
  }

  const oldest = (): Waiter | undefined => {
    while (head < queue.length && queue[head]!.state !== "waiting") head++
    if (head === queue.length || head > 1024) {
      queue = queue.slice(head)
      head = 0
    }
    return queue[head]
  }

  /** Gives a slot to the oldest waiter; false when nobody waits. */
  const grant = (): boolean => {
    const waiter = oldest()
    if (waiter === undefined) return false
    decide(waiter, "granted")
    if (waiting === 0) stopTimer()
    return true
  }

  const release = Effect.sync(() => {
    if (!grant()) free++
  })

  /** Refuses the waiters whose deadline has come, then sleeps until the next one's. */
  const expire = (self: Timer, clock: Clock.Clock): Effect.Effect<void> =>
    Effect.suspend(() => {
      if (timer !== self) return Effect.void
      const now = clock.unsafeCurrentTimeMillis()
      let next = oldest()
      while (next !== undefined && next.deadline <= now) {
        decide(next, "left")
        next = oldest()
      }
      if (next === undefined) {
        timer = undefined
        return Effect.void
      }
      return Effect.zipRight(clock.sleep(Duration.millis(next.deadline - now)), expire(self, clock))
    })

  const startTimer = (clock: Clock.Clock): Effect.Effect<void> => {
    const self: Timer = { fiber: undefined }
    timer = self
    return Effect.map(Effect.forkDaemon(Effect.interruptible(expire(self, clock))), (fiber) => {
      // Stopped before it was forked: nobody waits any more.
      if (timer === self) self.fiber = fiber
      else fiber.unsafeInterruptAsFork(FiberId.none)
    })
  }

  const take: Effect.Effect<boolean> = Effect.clockWith((clock) =>
    Effect.suspend(() => {
      if (free > 0) {
        free--
        return Effect.succeed(true)
      }
      if (maxWaitMs <= 0) return Effect.succeed(false)
      const waiter: Waiter = {
        decided: Deferred.unsafeMake<boolean>(FiberId.none),
        deadline: clock.unsafeCurrentTimeMillis() + maxWaitMs,
        state: "waiting"
      }
      queue.push(waiter)
      waiting++
      const wait = Effect.onInterrupt(Effect.interruptible(Deferred.await(waiter.decided)), () =>
        Effect.sync(() => {
          if (waiter.state === "waiting") {
            decide(waiter, "left")
            if (waiting === 0) stopTimer()
          } else if (waiter.state === "granted" && !grant()) {
            // Granted as the caller was interrupted: the slot goes on to the next waiter.
            free++
          }
        })
      )
      return timer === undefined ? Effect.zipRight(startTimer(clock), wait) : wait
    })
  )

  return { permits, take, release }
}

/** Per-provider state, built once on the provider's first call. */
interface ProviderLimiter {
  readonly name: string
  /** Store key of the provider's 429 pause, shared when the store shares pauses. */
  readonly pauseKey: string
  readonly rpm: Bucket | undefined
  readonly tpm: Bucket | undefined
  readonly slots: Slots | undefined
  /** When the provider's 429 pause ends, on the limiter's clock (0: not paused). */
  pausedUntil: number
}

/** The longest delay a timer holds; every wait and pause is kept within it. */
const maxTimerMs = Rules.maxTimerMillis

/** Milliseconds within what a timer holds; `fallback` for anything that is not a duration. */
const boundedMillis = (input: unknown, fallback: number): number => {
  const decoded = Option.map(Duration.decodeUnknown(input), Duration.toMillis)
  const ms = Option.getOrElse(decoded, () => fallback)
  return Number.isNaN(ms) ? fallback : Math.min(Math.max(ms, 0), maxTimerMs)
}

/** A limit that is on: a positive, finite number, rounded down to a whole one (at least 1). */
const limitOf = (value: number | undefined): number | undefined =>
  value !== undefined && Number.isFinite(value) && value > 0 ? Math.max(1, Math.floor(value)) : undefined

const formatMs = (ms: number) => Duration.format(Duration.millis(Math.ceil(ms)))

const usedTokens = (usage: Usage) => usage.totalTokens || usage.inputTokens + usage.outputTokens

/** A provider's own 429 that asks for a pause (not the limiter's own refusal). */
const isProviderPause = (error: LlmError): error is RateLimitError =>
  error._tag === "RateLimitError" && error.retryAfter !== undefined && !error.local

/** The usage of the first `Finish` of a chunk. */
const finishUsage = (chunk: Chunk.Chunk<LlmStreamEvent>): Usage | undefined => {
  for (const part of chunk) if (part._tag === "Finish") return part.usage
  return undefined
}

/**
 * Builds the limiter on the `RateLimiterStore` in context (and its `SharedPauses`, when the store
 * shares them). Every call through the policy shares its per-provider limits.
 *
 * @example
 * import { Effect } from "effect"
 * import { Llm, LlmMock, RateLimit, RateLimitStore } from "@clearside/llm"
 *
 * const program = Effect.gen(function* () {
 *   const limit = yield* RateLimit.make({ rpm: 60, maxConcurrency: 4 })
 *   const llm = Llm.router({ providers: [LlmMock.echo({ provider: "openai" })], policies: [limit] })
 *   return yield* llm.complete({ messages: [{ role: "user", content: "hi" }] })
 * }).pipe(Effect.provide(RateLimitStore.layerMemory))
 *
 * @since 0.1.0
 * @category Constructors
 */
export const make = (options: Options = {}): Effect.Effect<Llm.Policy, never, RateLimiter.RateLimiterStore> =>
  Effect.gen(function* () {
    const store = yield* RateLimiter.RateLimiterStore
    const pauses = Option.getOrUndefined(yield* Effect.serviceOption(SharedPauses))
    const clock = yield* Effect.clock
    return policy(options, store, pauses, clock)
  })

const policy = (
  options: Options,
  store: Store,
  pauses: Context.Tag.Service<SharedPauses> | undefined,
  ownClock: Clock.Clock
): Llm.Policy => {
  const maxWaitMs = boundedMillis(options.maxWait, 30_000)
  const maxRetryAfterMs = boundedMillis(options.maxRetryAfter, 60_000)
  const defaultOutputTokens = limitOf(options.defaultOutputTokens) ?? 1024
  const prefix = options.keyPrefix ?? "llm:"
  const providers = new Map<string, ProviderLimiter>()

  const keyOf = (name: string, kind: "rpm" | "tpm" | "pause") => {
    const namespaces = options.keyNamespaces
    const namespace = namespaces !== undefined && Object.hasOwn(namespaces, name) ? namespaces[name] : undefined
    return namespace === undefined ? `${prefix}${name}:${kind}` : `${prefix}${name}:${namespace}:${kind}`
  }

  /** A bucket refilled with `perMinute` tokens a minute, holding at most `size` (default `perMinute`). */
  const bucketOf = (name: string, kind: "rpm" | "tpm", perMinute: number | undefined, size: number | undefined) => {
    if (perMinute === undefined) return undefined
    const refillMs = 60_000 / perMinute
    return { key: keyOf(name, kind), limit: size ?? perMinute, refillRate: Duration.millis(refillMs), refillMs }
  }

  /** Extends the provider's pause to `ms` from now (never shortens it); true when extended. */
  const pauseFor = (s: ProviderLimiter, ms: number, now: number): boolean => {
    const until = now + ms
    if (until <= s.pausedUntil) return false
    s.pausedUntil = until
    return true
  }

  const limiterFor = (name: string): ProviderLimiter => {
    let s = providers.get(name)
    if (s === undefined) {
      const own = options.providers !== undefined && Object.hasOwn(options.providers, name) ? options.providers[name] : undefined
      const maxConcurrency = limitOf(own?.maxConcurrency ?? options.maxConcurrency)
      const created: ProviderLimiter = {
        name,
        pauseKey: keyOf(name, "pause"),
        rpm: bucketOf(name, "rpm", limitOf(own?.rpm ?? options.rpm), limitOf(own?.burst ?? options.burst)),
        tpm: bucketOf(name, "tpm", limitOf(own?.tpm ?? options.tpm), undefined),
        slots: maxConcurrency === undefined ? undefined : makeSlots(maxConcurrency, maxWaitMs),
        pausedUntil: 0
      }
      s = created
      providers.set(name, created)
      // A pause announced by another instance extends this one's, as a 429 seen here would.
      pauses?.watch(created.pauseKey, (millis) => {
        if (Number.isFinite(millis) && millis > 0) pauseFor(created, Math.min(millis, maxRetryAfterMs), ownClock.unsafeCurrentTimeMillis())
      })
    }
    return s
  }

  // The store's own token-bucket operation, as `RateLimiter.consume` uses it, with each provider's
  // refill rate computed once. With `allowOverflow` a bucket goes negative: the debt is the wait.
  // Store failures (e.g. Redis down) fail open: the call goes through without waiting. On the
  // memory store one operation costs about 0.7 µs of CPU run as an Effect (measured over 200,000),
  // a few µs a call for its two takes and its settlement, so there is no synchronous twin.
  const level = (bucket: Bucket, tokens: number): Effect.Effect<number> =>
    Effect.orElseSucceed(
      store.tokenBucket({ key: bucket.key, tokens, limit: bucket.limit, refillRate: bucket.refillRate, allowOverflow: true }),
      () => bucket.limit
    )

  /** Takes `tokens` from the bucket; the delay before they are there, in ms. */
  const take = (bucket: Bucket | undefined, tokens: number): Effect.Effect<number> =>
    bucket === undefined
      ? Effect.succeed(0)
      : Effect.map(level(bucket, tokens), (remaining) => (remaining < 0 ? -remaining * bucket.refillMs : 0))

  /** Charges (delta > 0) or refunds (delta < 0) tokens, never lifting a bucket above its limit. */
  const adjust = (bucket: Bucket | undefined, delta: number): Effect.Effect<void> => {
    if (bucket === undefined || delta === 0) return Effect.void
    if (delta > 0) return Effect.asVoid(level(bucket, delta))
    return Effect.flatMap(level(bucket, 0), (remaining) => {
      const refund = Math.min(-delta, bucket.limit - remaining)
      return refund > 0 ? Effect.asVoid(level(bucket, -refund)) : Effect.void
    })
  }

  /** Gives back what {@link reserve} took, when the call will not be made. */
  const unreserve = (s: ProviderLimiter, tokens: number): Effect.Effect<void> =>
    Effect.zipRight(adjust(s.rpm, -1), adjust(s.tpm, -tokens))

  const refused = (s: ProviderLimiter, limit: Limit, delay: number, budgetMs: number) =>
    new RateLimitError({
      provider: s.name,
      local: true,
      retryAfter: Duration.millis(Math.ceil(delay)),
      message:
        `Local rate limit for ${s.name} (${limit}): capacity returns in ${formatMs(delay)}, more than the ` +
        (budgetMs < maxWaitMs ? `${formatMs(Math.max(budgetMs, 0))} left of the ` : "") +
        `${formatMs(maxWaitMs)} a call may wait (maxWait)`
    })

  const noSlot = (s: ProviderLimiter) =>
    new RateLimitError({
      provider: s.name,
      local: true,
      message: `Local concurrency limit for ${s.name}: no free slot of ${s.slots?.permits} calls in flight within ${formatMs(maxWaitMs)} (maxWait)`
    })

  const overBudget = (s: ProviderLimiter, tokens: number) =>
    new RateLimitError({
      provider: s.name,
      local: true,
      retryable: false,
      message: `Local rate limit for ${s.name} (tokens per minute): the request needs about ${tokens} tokens, more than the whole budget of ${s.tpm?.limit}`
    })

  /**
   * Reserves a request and `tokens` in the buckets, then waits until both are there and any 429
   * pause is over, if that fits in `budgetMs`; else gives the reservation back and fails.
   */
  const reserve = (s: ProviderLimiter, tokens: number, budgetMs: number): Effect.Effect<void, RateLimitError> =>
    Effect.flatMap(take(s.rpm, 1), (requestDelay) =>
      Effect.flatMap(take(s.tpm, tokens), (tokenDelay) =>
        Effect.clockWith((clock) => {
          const paused = s.pausedUntil - clock.unsafeCurrentTimeMillis()
          const delay = Math.max(paused, requestDelay, tokenDelay)
          if (delay <= 0) return Effect.void
          if (delay > budgetMs) {
            const limit: Limit =
              delay === paused ? "pause after the provider's 429" : delay === requestDelay ? "requests per minute" : "tokens per minute"
            return Effect.zipRight(unreserve(s, tokens), Effect.fail(refused(s, limit, delay, budgetMs)))
          }
          const sleep = Effect.onInterrupt(Effect.sleep(Duration.millis(delay)), () => unreserve(s, tokens))
          return options.onWait === undefined
            ? sleep
            : Effect.zipRight(options.onWait({ provider: s.name, delay: Duration.millis(delay) }), sleep)
        })
      )
    )

  /** Takes a slot, waiting at most `maxWait`; when it was taken, on the limiter's clock. */
  const takeSlot = (s: ProviderLimiter, slots: Slots): Effect.Effect<number, RateLimitError> =>
    Effect.clockWith((clock) => {
      const start = clock.unsafeCurrentTimeMillis()
      return Effect.flatMap(slots.take, (taken) => (taken ? Effect.succeed(start) : Effect.fail(noSlot(s))))
    })

  /** Reserves the call's request and tokens with what the slot wait left of `maxWait`. */
  const reserveAfter = (s: ProviderLimiter, tokens: number, start: number): Effect.Effect<void, RateLimitError> =>
    Effect.clockWith((clock) => reserve(s, tokens, maxWaitMs - (clock.unsafeCurrentTimeMillis() - start)))

  const onProviderPause = (s: ProviderLimiter, error: RateLimitError): Effect.Effect<void> =>
    Effect.clockWith((clock) => {
      const retryAfterMs = Math.min(boundedMillis(error.retryAfter, 0), maxRetryAfterMs)
      if (retryAfterMs <= 0 || !pauseFor(s, retryAfterMs, clock.unsafeCurrentTimeMillis())) return Effect.void
      const logged = Effect.logWarning(`Pausing calls to ${s.name} for ${formatMs(retryAfterMs)} after a rate limit answer`).pipe(
        Effect.annotateLogs({ provider: s.name, retryAfterMs })
      )
      return pauses === undefined ? logged : Effect.zipRight(pauses.announce(s.pauseKey, retryAfterMs), logged)
    })

  /** The call's parts, its tokens settled on its `Finish`, its provider paused on its 429. */
  const watched = (s: ProviderLimiter, tokens: number, answer: Llm.Answer): Llm.Answer => {
    const tpm = s.tpm
    const settled =
      tpm === undefined
        ? answer
        : Effect.map(answer, (pull) =>
            Effect.tap(pull, (parts) => {
              const usage = finishUsage(parts)
              return usage === undefined ? Effect.void : adjust(tpm, usedTokens(usage) - tokens)
            })
          )
    return Answer.tapError(settled, (error) => (isProviderPause(error) ? onProviderPause(s, error) : Effect.void))
  }

  return (next) => (request, mode) => {
    const s = limiterFor(request.provider ?? "default")
    const tokens = s.tpm === undefined ? 0 : TokenEstimate.estimate(request, defaultOutputTokens)
    if (s.tpm !== undefined && tokens > s.tpm.limit) return Answer.failed(overBudget(s, tokens))
    const answer = watched(s, tokens, next(request, mode))
    const slots = s.slots
    if (slots === undefined) return Answer.first(answer, () => reserve(s, tokens, maxWaitMs))
    // The slot is taken uninterruptibly (only its wait can be interrupted) and given back when the
    // call's scope closes, however it ends.
    return Answer.first(answer, (scope) =>
      Effect.flatMap(
        Effect.uninterruptible(Effect.flatMap(takeSlot(s, slots), (start) => Effect.as(Scope.addFinalizer(scope, slots.release), start))),
        (start) => reserveAfter(s, tokens, start)
      )
    )
  }
}

/**
 * Wraps the `Llm` service in context with a limiter on the `RateLimiterStore` the caller
 * provides (`RateLimitStore.layerMemory`, or a shared Redis store).
 *
 * @example
 * import { Layer } from "effect"
 * import { LlmMock, RateLimit, RateLimitStore } from "@clearside/llm"
 *
 * const layer = RateLimit.layer({ rpm: 60 }).pipe(
 *   Layer.provide(LlmMock.layerEcho()),
 *   Layer.provide(RateLimitStore.layerMemory)
 * )
 *
 * @since 0.1.0
 * @category Layers
 */
export const layer = (options?: Options) => Llm.layerPolicy(make(options))

/**
 * Limiter options from the environment: `LLM_RATE_LIMIT_RPM`, `LLM_RATE_LIMIT_BURST`,
 * `LLM_RATE_LIMIT_TPM` and `LLM_MAX_CONCURRENCY` for every provider (each off when unset), the
 * same with the provider's name appended for `openai` and `anthropic` (e.g.
 * `LLM_RATE_LIMIT_RPM_OPENAI`, which wins over the shared one; `LlmConfig` also reads them for an
 * OpenAI-compatible provider),
 * `LLM_RATE_LIMIT_MAX_WAIT_MS` (30000) and `LLM_RETRY_MAX_RETRY_AFTER_MS` (60000), as `LlmConfig`
 * reads them. A bad value is a `ConfigError` naming the variable.
 *
 * @example
 * import { Effect } from "effect"
 * import { RateLimit } from "@clearside/llm"
 * const options = Effect.runSync(RateLimit.config)
 *
 * @since 0.1.0
 * @category Config
 */
export const config: Config.Config<Options> = Config.map(LlmConfig.config, (settings) => ({
  ...settings.rateLimit,
  maxRetryAfter: settings.retry.maxRetryAfter
}))

/**
 * {@link layer} with options read from {@link config}.
 *
 * @example
 * import { Layer } from "effect"
 * import { LlmMock, RateLimit, RateLimitStore } from "@clearside/llm"
 *
 * const layer = RateLimit.layerConfig.pipe(Layer.provide(LlmMock.layerEcho()), Layer.provide(RateLimitStore.layerMemory))
 *
 * @since 0.1.0
 * @category Layers
 */
export const layerConfig = Llm.layerPolicy(Effect.flatMap(config, make))
