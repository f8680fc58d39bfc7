/**
 * A circuit breaker per provider: after repeated failures it stops sending calls to a provider
 * for a while, so callers fail fast (and `Fallback` moves on) instead of waiting on a provider
 * that is down.
 *
 * - **closed**: calls go through. `failureThreshold` (default 5) consecutive retryable failures
 *   open the circuit. Non-retryable errors (a bad request, a bad key) and a provider's 429 show
 *   that it is up: they do not count, and like a success they reset the count. Local rate limit
 *   rejections say nothing about the provider and change nothing.
 * - **open**: calls fail at once with `CircuitOpenError`, whose `retryAfter` is the remaining
 *   cooldown (default 30 s).
 * - **half-open**: after the cooldown exactly one call goes through as a probe while other callers
 *   keep failing fast. The probe's success (or a non-retryable answer or a 429, which show the
 *   provider is up) closes the circuit; its retryable failure opens it again for another cooldown.
 *
 * With `failureRatio` set, the circuit opens instead on the share of failures over a sliding time
 * `window` (default 10 s): once at least `minimumCalls` (default 20) outcomes were recorded in it,
 * a share of retryable failures at or above `failureRatio` opens it. Successes, 429s and
 * non-retryable errors count as healthy outcomes; local rejections and interruptions are not
 * recorded; `failureThreshold` is not used. This suits many calls in flight at once, where one
 * stall fails them all together. The window is a ring of buckets (1 s for windows of 10 s and more),
 * so old outcomes leave it a bucket at a time; it starts empty whenever the circuit closes.
 *
 * State is kept per provider (the request's `provider`). Every change is logged (warn when it
 * opens, info otherwise) and passed to `onStateChange`; `state(provider)` reads it. A stream
 * counts as one call that ends when the stream does.
 *
 * @example
 * import { Duration, Effect } from "effect"
 * import { CircuitBreaker, LlmMock } from "@clearside/llm"
 *
 * const program = Effect.gen(function* () {
 *   const breaker = yield* CircuitBreaker.make({ failureThreshold: 3, cooldown: Duration.seconds(20) })
 *   const llm = breaker(LlmMock.echo({ provider: "openai" }))
 *   yield* llm.complete({ provider: "openai", messages: [{ role: "user", content: "hi" }] })
 *   return yield* breaker.state("openai") // "closed"
 * })
 *
 * @since 0.1.0
 */
import { Cause, Channel, Config, type ConfigError, Duration, Effect, Exit, Layer, Option, Stream } from "effect"
import * as Llm from "./Llm.js"
import { CircuitOpenError, type LlmError } from "./LlmError.js"
import type { LlmResponse } from "./LlmRequest.js"
import * as LocalRejection from "./internal/localRejection.js"

/**
 * The state of one provider's circuit.
 *
 * @example
 * import type { CircuitBreaker } from "@clearside/llm"
 * const state: CircuitBreaker.State = "half-open"
 *
 * @since 0.1.0
 * @category Models
 */
export type State = "closed" | "open" | "half-open"

/**
 * A change of state, as passed to `onStateChange`.
 *
 * @example
 * import type { CircuitBreaker } from "@clearside/llm"
 * const describe = (c: CircuitBreaker.StateChange) => `${c.provider}: ${c.from} -> ${c.to}`
 *
 * @since 0.1.0
 * @category Models
 */
export interface StateChange {
  readonly provider: string
  readonly from: State
  readonly to: State
}

/**
 * Breaker options. Defaults: `failureThreshold` 5, `cooldown` 30 s. Setting `failureRatio` (0..1)
 * switches from consecutive failures to a failure ratio over `window` (10 s), decided once
 * `minimumCalls` (20) outcomes are in it.
 *
 * @example
 * import { Duration, Effect } from "effect"
 * import type { CircuitBreaker } from "@clearside/llm"
 *
 * const options: CircuitBreaker.Options = {
 *   failureThreshold: 3,
 *   cooldown: Duration.seconds(10),
 *   onStateChange: (change) => Effect.log(`${change.provider} is now ${change.to}`)
 * }
 *
 * @since 0.1.0
 * @category Models
 */
export interface Options {
  readonly failureThreshold?: number
  readonly cooldown?: Duration.DurationInput
  readonly failureRatio?: number
  readonly minimumCalls?: number
  readonly window?: Duration.DurationInput
  readonly onStateChange?: (change: StateChange) => Effect.Effect<void>
}

/**
 * A breaker: apply it to a service (all services it wraps share its per-provider state), and read
 * a provider's state with `state`.
 *
 * @example
 * import { Effect } from "effect"
 * import { CircuitBreaker, LlmMock } from "@clearside/llm"
 *
 * const state = Effect.flatMap(CircuitBreaker.make(), (breaker) => breaker.state("openai"))
 *
 * @since 0.1.0
 * @category Models
 */
export interface Breaker {
  (service: Llm.Service): Llm.Service
  readonly state: (provider: string) => Effect.Effect<State>
}

interface Circuit {
  readonly provider: string
  state: State
  failures: number
  openedAt: number
  probing: boolean
  /** Outcomes over the sliding window; only in failure-ratio mode. */
  readonly window: Window | undefined
  /** Records the outcome of a call admitted while closed, built once per circuit. */
  readonly onCall: {
    readonly onFailure: (cause: Cause.Cause<LlmError>) => Effect.Effect<never, LlmError>
    readonly onSuccess: (response: LlmResponse) => Effect.Effect<LlmResponse>
  }
  /** Records the end of a stream admitted while closed, built once per circuit. */
  readonly onCallEnd: (exit: Exit.Exit<unknown, LlmError>) => Effect.Effect<void>
}

/**
 * Outcome counts in a ring of time buckets. `head` is the number (time / bucket size) of the newest
 * bucket; slot `n % size` holds bucket `n`, and the totals are the sums over the ring.
 */
interface Window {
  readonly successes: Float64Array
  readonly failures: Float64Array
  head: number
  totalSuccesses: number
  totalFailures: number
}

const emptyWindow = (size: number): Window => ({
  successes: new Float64Array(size),
  failures: new Float64Array(size),
  head: 0,
  totalSuccesses: 0,
  totalFailures: 0
})

const clearWindow = (window: Window): void => {
  window.successes.fill(0)
  window.failures.fill(0)
  window.totalSuccesses = 0
  window.totalFailures = 0
}

/** Moves the window to bucket `bucket`, dropping the buckets that left it. Amortised O(1). */
const advance = (window: Window, bucket: number): void => {
  const size = window.successes.length
  const gap = bucket - window.head
  if (gap <= 0) return
  if (gap >= size) {
    clearWindow(window)
  } else {
    for (let n = window.head + 1; n <= bucket; n++) {
      const slot = n % size
      window.totalSuccesses -= window.successes[slot]!
      window.totalFailures -= window.failures[slot]!
      window.successes[slot] = 0
      window.failures[slot] = 0
    }
  }
  window.head = bucket
}

/** How a call was admitted: as an ordinary call or as the half-open probe. */
type Admission = "call" | "probe"

/**
 * Builds a breaker.
 *
 * @example
 * import { Effect } from "effect"
 * import { CircuitBreaker, LlmMock } from "@clearside/llm"
 *
 * const guarded = Effect.map(CircuitBreaker.make({ failureThreshold: 5 }), (breaker) => breaker(LlmMock.echo()))
 *
 * @since 0.1.0
 * @category Constructors
 */
export const make = (options: Options = {}): Effect.Effect<Breaker> =>
  Effect.sync(() => {
    const threshold = options.failureThreshold ?? 5
    const cooldown = Duration.decode(options.cooldown ?? Duration.seconds(30))
    const cooldownMs = Duration.toMillis(cooldown)
    const circuits = new Map<string, Circuit>()
    const ratio = options.failureRatio
    const minimumCalls = Math.max(1, options.minimumCalls ?? 20)
    const windowMs = Math.max(1, Duration.toMillis(Duration.decode(options.window ?? Duration.seconds(10))))
    // 1 s buckets for windows of 10 s and more (at most 1000 of them); a tenth of shorter windows.
    const bucketMs = Math.max(Math.min(1000, Math.ceil(windowMs / 10)), Math.ceil(windowMs / 1000))
    const buckets = Math.ceil(windowMs / bucketMs)

    const circuitFor = (provider: string): Circuit => {
      let circuit = circuits.get(provider)
      if (circuit === undefined) {
        const window = ratio === undefined ? undefined : emptyWindow(buckets)
        const created: Circuit = {
          provider,
          state: "closed",
          failures: 0,
          openedAt: 0,
          probing: false,
          window,
          onCall: {
            onFailure: (cause) => Effect.zipRight(record(created, "call", Exit.failCause(cause)), Effect.failCause(cause)),
            onSuccess: (response) => {
              // The common case settled at once: a success of a closed circuit counting failures.
              if (created.state === "closed" && created.window === undefined) {
                created.failures = 0
                return Effect.succeed(response)
              }
              return Effect.as(healthy(created), response)
            }
          },
          onCallEnd: (exit) => record(created, "call", exit)
        }
        circuit = created
        circuits.set(provider, circuit)
      }
      return circuit
    }

    /** Changes the state now; the returned effect reports the change. */
    const moveTo = (circuit: Circuit, to: State, now: number): Effect.Effect<void> => {
      const from = circuit.state
      circuit.state = to
      circuit.probing = false
      if (to === "open") circuit.openedAt = now
      if (to !== "open") {
        circuit.failures = 0
        if (circuit.window !== undefined) clearWindow(circuit.window)
      }
      const message =
        to === "open"
          ? `Circuit for ${circuit.provider} opened: calls fail fast for ${Duration.format(cooldown)}`
          : to === "half-open"
            ? `Circuit for ${circuit.provider} is half-open: one probe call goes through`
            : `Circuit for ${circuit.provider} closed: calls go through again`
      const log = (to === "open" ? Effect.logWarning(message) : Effect.logInfo(message)).pipe(
        Effect.annotateLogs({ provider: circuit.provider, from, to })
      )
      return options.onStateChange === undefined
        ? log
        : Effect.zipRight(log, options.onStateChange({ provider: circuit.provider, from, to }))
    }

    const rejection = (circuit: Circuit, now: number) =>
      new CircuitOpenError(
        circuit.state === "open"
          ? {
              provider: circuit.provider,
              message: `Circuit for ${circuit.provider} is open after repeated failures; calls fail fast for ${Duration.format(Duration.millis(cooldownMs - (now - circuit.openedAt)))}`,
              retryAfter: Duration.millis(cooldownMs - (now - circuit.openedAt))
            }
          : {
              provider: circuit.provider,
              message: `Circuit for ${circuit.provider} is half-open and its probe call is still running; calls fail fast until it ends`
            }
      )

    const admit = (circuit: Circuit): Effect.Effect<Admission, CircuitOpenError> =>
      circuit.state === "closed"
        ? Effect.succeed("call")
        : Effect.clockWith((clock) => {
            const now = clock.unsafeCurrentTimeMillis()
            if (circuit.state === "open" && now - circuit.openedAt >= cooldownMs) {
              const report = moveTo(circuit, "half-open", now)
              circuit.probing = true
              return Effect.as(report, "probe" as const)
            }
            if (circuit.state === "half-open" && !circuit.probing) {
              circuit.probing = true
              return Effect.succeed("probe" as const)
            }
            return Effect.fail(rejection(circuit, now))
          })

    const open = (circuit: Circuit) => Effect.clockWith((clock) => moveTo(circuit, "open", clock.unsafeCurrentTimeMillis()))

    /** Failure-ratio mode: counts one outcome of a closed circuit, and opens it at the ratio. */
    const recordInWindow = (circuit: Circuit, window: Window, failed: boolean): Effect.Effect<void> =>
      Effect.clockWith((clock) => {
        const now = clock.unsafeCurrentTimeMillis()
        advance(window, Math.floor(now / bucketMs))
        // A clock that stepped back records into the newest bucket.
        const slot = window.head % buckets
        if (failed) {
          window.failures[slot]! += 1
          window.totalFailures += 1
          const total = window.totalFailures + window.totalSuccesses
          if (total >= minimumCalls && window.totalFailures / total >= ratio!) return moveTo(circuit, "open", now)
        } else {
          window.successes[slot]! += 1
          window.totalSuccesses += 1
        }
        return Effect.void
      })

    /** A healthy outcome (success, 429, non-retryable answer) of a call that was not the probe. */
    const healthy = (circuit: Circuit): Effect.Effect<void> => {
      if (circuit.state !== "closed") return Effect.void
      if (circuit.window !== undefined) return recordInWindow(circuit, circuit.window, false)
      circuit.failures = 0
      return Effect.void
    }

    // Settled synchronously; the clock is read only when the circuit opens, or in failure-ratio
    // mode when an outcome is recorded.
    const record = (circuit: Circuit, admission: Admission, exit: Exit.Exit<unknown, LlmError>): Effect.Effect<void> => {
      const isProbe = admission === "probe" && circuit.state === "half-open"
      if (Exit.isSuccess(exit)) {
        if (isProbe) return moveTo(circuit, "closed", 0)
        return healthy(circuit)
      }
      const failure = Option.getOrUndefined(Cause.failureOption(exit.cause))
      if (failure === undefined || LocalRejection.isLocal(failure)) {
        // Interrupted, or rejected locally before reaching the provider: no news about its health.
        if (isProbe) circuit.probing = false
        return Effect.void
      }
      // A provider that answers, even with a refusal or a 429, is up: throttling is the limiter's
      // business, and opening the circuit on it would turn a slowdown into an outage.
      if (!failure.retryable || failure._tag === "RateLimitError") {
        if (isProbe) return moveTo(circuit, "closed", 0)
        return healthy(circuit)
      }
      if (isProbe) return open(circuit)
      if (circuit.window !== undefined) return circuit.state === "closed" ? recordInWindow(circuit, circuit.window, true) : Effect.void
      if (circuit.state === "closed" && ++circuit.failures >= threshold) return open(circuit)
      return Effect.void
    }

    const wrap = (service: Llm.Service): Llm.Service => ({
      complete: (request) => {
        const circuit = circuitFor(request.provider ?? "default")
        const call = service.complete(request)
        // A closed circuit admits at once; its outcome is recorded uninterruptibly, as `onExit` does.
        return Effect.suspend(() =>
          circuit.state === "closed"
            ? Effect.matchCauseEffect(call, circuit.onCall)
            : Effect.flatMap(admit(circuit), (admission) => Effect.onExit(call, (exit) => record(circuit, admission, exit)))
        )
      },
      stream: (request) => {
        const circuit = circuitFor(request.provider ?? "default")
        const events = Stream.toChannel(service.stream(request))
        return Stream.fromChannel(
          Channel.suspend(() => {
            if (circuit.state === "closed") return Channel.ensuringWith(events, circuit.onCallEnd)
            // Per run: how the stream was admitted, recorded when it ends (however it ends).
            let admission: Admission | undefined
            return Channel.ensuringWith(
              Channel.unwrap(
                Effect.map(admit(circuit), (admitted) => {
                  admission = admitted
                  return events
                })
              ),
              (exit) => (admission === undefined ? Effect.void : record(circuit, admission, exit))
            )
          })
        )
      }
    })

    return Object.assign(wrap, {
      state: (provider: string) =>
        Effect.clockWith((clock) => {
          const circuit = circuitFor(provider)
          // An open circuit whose cooldown has passed admits a probe: report it as half-open.
          return Effect.succeed(
            circuit.state === "open" && clock.unsafeCurrentTimeMillis() - circuit.openedAt >= cooldownMs
              ? ("half-open" as const)
              : circuit.state
          )
        })
    })
  })

/**
 * Wraps the `Llm` service in context with a breaker.
 *
 * @example
 * import { Layer } from "effect"
 * import { CircuitBreaker, LlmMock } from "@clearside/llm"
 *
 * const layer = CircuitBreaker.layer({ failureThreshold: 5 }).pipe(Layer.provide(LlmMock.layerEcho()))
 *
 * @since 0.1.0
 * @category Layers
 */
export const layer = (options: Options = {}): Layer.Layer<Llm.Llm, never, Llm.Llm> =>
  Layer.effect(Llm.Llm, Effect.zipWith(make(options), Llm.Llm, (breaker, service) => breaker(service)))

/**
 * Breaker options from the environment: `LLM_CIRCUIT_FAILURE_THRESHOLD` (5),
 * `LLM_CIRCUIT_COOLDOWN_MS` (30000), and for the failure-ratio mode `LLM_CIRCUIT_FAILURE_RATIO`
 * (0..1, unset by default), `LLM_CIRCUIT_MINIMUM_CALLS` (20) and `LLM_CIRCUIT_WINDOW_MS` (10000),
 * the last two passed on only when a ratio is set.
 *
 * @example
 * import { Effect } from "effect"
 * import { CircuitBreaker } from "@clearside/llm"
 * const options = Effect.runSync(CircuitBreaker.config)
 *
 * @since 0.1.0
 * @category Config
 */
export const config: Config.Config<Options> = Config.all({
  failureThreshold: Config.integer("LLM_CIRCUIT_FAILURE_THRESHOLD").pipe(
    Config.validate({ message: "LLM_CIRCUIT_FAILURE_THRESHOLD must be 1 or more", validation: (n) => n >= 1 }),
    Config.withDefault(5)
  ),
  cooldown: Config.integer("LLM_CIRCUIT_COOLDOWN_MS").pipe(
    Config.validate({ message: "LLM_CIRCUIT_COOLDOWN_MS must be a positive number of milliseconds", validation: (n) => n > 0 }),
    Config.withDefault(30_000),
    Config.map(Duration.millis)
  ),
  failureRatio: Config.option(
    Config.number("LLM_CIRCUIT_FAILURE_RATIO").pipe(
      Config.validate({ message: "LLM_CIRCUIT_FAILURE_RATIO must be between 0 and 1, e.g. 0.5", validation: (n) => n >= 0 && n <= 1 })
    )
  ),
  minimumCalls: Config.integer("LLM_CIRCUIT_MINIMUM_CALLS").pipe(
    Config.validate({ message: "LLM_CIRCUIT_MINIMUM_CALLS must be 1 or more", validation: (n) => n >= 1 }),
    Config.withDefault(20)
  ),
  window: Config.integer("LLM_CIRCUIT_WINDOW_MS").pipe(
    Config.validate({ message: "LLM_CIRCUIT_WINDOW_MS must be a positive number of milliseconds", validation: (n) => n > 0 }),
    Config.withDefault(10_000),
    Config.map(Duration.millis)
  )
}).pipe(
  Config.map(({ cooldown, failureRatio, failureThreshold, minimumCalls, window }): Options =>
    Option.match(failureRatio, {
      onNone: () => ({ failureThreshold, cooldown }),
      onSome: (ratio) => ({ failureThreshold, cooldown, failureRatio: ratio, minimumCalls, window })
    })
  )
)

/**
 * {@link layer} with options read from {@link config}.
 *
 * @example
 * import { Layer } from "effect"
 * import { CircuitBreaker, LlmMock } from "@clearside/llm"
 * const layer = CircuitBreaker.layerConfig.pipe(Layer.provide(LlmMock.layerEcho()))
 *
 * @since 0.1.0
 * @category Layers
 */
export const layerConfig: Layer.Layer<Llm.Llm, ConfigError.ConfigError, Llm.Llm> = Layer.unwrapEffect(
  Effect.map(config, layer)
)
