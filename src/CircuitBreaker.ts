/**
 * A circuit breaker per provider: when a provider is down it stops sending it calls for a while, so
 * callers fail fast (and `Fallback` moves on) instead of waiting on it, and it lets calls through
 * again once a probe call succeeds.
 *
 * - **closed**: calls go through. By default (`mode: "ratio"`) the circuit opens when at least
 *   `failureRatio` (0.5) of the outcomes recorded over the last `window` (10 s) are failures, once
 *   there are at least `minimumCalls` (20) of them. A provider that answers most calls never trips
 *   it, and one that is down trips it within one wave of calls in flight (30 callers against a dead
 *   provider: it opens at the 20th failure). `mode: "consecutive"` opens instead after
 *   `failureThreshold` (5) failures in a row, any healthy outcome resetting the count.
 * - **open**: calls fail at once with a `CircuitOpenError` (`local: true`) whose `retryAfter` is the
 *   time left of the `cooldown` (30 s).
 * - **half-open**: after the cooldown one call goes through as a probe while the others keep
 *   failing fast. A healthy probe closes the circuit (with an empty window); a failed one opens it
 *   for another cooldown.
 *
 * What is recorded, when the stream of parts ends:
 * - a **failure**: a retryable `ServerError`, `OverloadedError`, `ConnectionError`, `TimeoutError`
 *   or `ResponseParseError` from the provider, whether it came before the first part or after some;
 * - a **healthy outcome**: a `Finish`, or the provider refusing the call, which shows it is up
 *   (`RateLimitError`, `InvalidRequestError`, `AuthenticationError`, `NotFoundError`,
 *   `QuotaExceededError`: opening on a 429 would turn throttling into an outage);
 * - **nothing**: a failure with `local: true` (the limiter's own refusal, validation, another
 *   breaker's `CircuitOpenError`), a non-retryable timeout (the caller's deadline), an interruption,
 *   or a consumer that stopped reading before the `Finish`. None says whether the provider is up;
 *   a probe that ends so lets the next caller probe.
 *
 * Outcomes are recorded in an uninterruptible finalizer, and count only for the state they were
 * admitted in: a call admitted before the circuit opened changes nothing when it ends after.
 * State is kept per `request.provider` (set inside `Llm.router`; a request naming none outside it
 * shares the circuit `"default"`). Every change is logged (warn when it opens, info otherwise) and
 * passed to `onStateChange`.
 *
 * @example
 * import { Duration, Effect } from "effect"
 * import { CircuitBreaker, Llm, LlmMock } from "@clearside/llm"
 *
 * const service = Effect.map(
 *   CircuitBreaker.make({ cooldown: Duration.seconds(20) }),
 *   (breaker) => Llm.router({ providers: [LlmMock.echo({ provider: "openai" })], policies: [breaker] })
 * )
 *
 * @since 0.1.0
 */
import { Config, Duration, Effect, Option, Scope } from "effect"
import * as Answer from "./internal/answer.js"
import * as Llm from "./Llm.js"
import * as LlmConfig from "./LlmConfig.js"
import { CircuitOpenError, type LlmError } from "./LlmError.js"

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
 * How a closed circuit decides to open: on the share of failures over a sliding time window
 * (`"ratio"`, the default), or on a run of consecutive failures (`"consecutive"`).
 *
 * @example
 * import type { CircuitBreaker } from "@clearside/llm"
 * const mode: CircuitBreaker.Mode = "consecutive"
 *
 * @since 0.1.0
 * @category Models
 */
export type Mode = "ratio" | "consecutive"

/**
 * Breaker options. Defaults: `mode` `"ratio"`, `failureRatio` 0.5, `minimumCalls` 20, `window`
 * 10 s, `cooldown` 30 s; `failureThreshold` 5 in `"consecutive"` mode. Values out of range are
 * brought into it (a ratio into (0, 1], counts to at least 1); an unreadable duration takes its
 * default.
 *
 * @example
 * import { Duration, Effect } from "effect"
 * import type { CircuitBreaker } from "@clearside/llm"
 *
 * const options: CircuitBreaker.Options = {
 *   failureRatio: 0.6,
 *   minimumCalls: 50,
 *   window: Duration.seconds(30),
 *   onStateChange: (change) => Effect.log(`${change.provider} is now ${change.to}`)
 * }
 *
 * @since 0.1.0
 * @category Models
 */
export interface Options {
  readonly mode?: Mode
  readonly failureRatio?: number
  readonly minimumCalls?: number
  readonly window?: Duration.DurationInput
  readonly failureThreshold?: number
  readonly cooldown?: Duration.DurationInput
  readonly onStateChange?: (change: StateChange) => Effect.Effect<void>
}

/** Outcome counts over a ring of time buckets: slot `n % size` holds bucket `n`, `head` is the newest. */
interface Window {
  readonly successes: Array<number>
  readonly failures: Array<number>
  head: number
  total: number
  failed: number
}

interface Circuit {
  readonly provider: string
  state: State
  /** Bumped on every change of state: an outcome counts only in the epoch its call was admitted in. */
  epoch: number
  openedAt: number
  probing: boolean
  consecutive: number
  readonly window: Window
}

/** One admitted run of a stream, and what its parts said. */
interface Run {
  readonly circuit: Circuit
  readonly epoch: number
  readonly probe: boolean
  finished: boolean
  failure: LlmError | undefined
}

type Outcome = "failure" | "healthy" | "none"

const failureTags: ReadonlySet<LlmError["_tag"]> = new Set([
  "ServerError",
  "OverloadedError",
  "ConnectionError",
  "TimeoutError",
  "ResponseParseError"
])

const answeredTags: ReadonlySet<LlmError["_tag"]> = new Set([
  "RateLimitError",
  "InvalidRequestError",
  "AuthenticationError",
  "NotFoundError",
  "QuotaExceededError"
])

const outcomeOf = (run: Run): Outcome => {
  if (run.finished) return "healthy"
  const error = run.failure
  if (error === undefined || error.local) return "none"
  if (failureTags.has(error._tag)) return error.retryable ? "failure" : "none"
  return answeredTags.has(error._tag) ? "healthy" : "none"
}

const durationOr = (input: Duration.DurationInput | undefined, fallback: Duration.Duration): Duration.Duration =>
  input === undefined ? fallback : Option.getOrElse(Duration.decodeUnknown(input), () => fallback)

const countOr = (input: number | undefined, fallback: number): number =>
  input === undefined || Number.isNaN(input) ? fallback : Math.max(1, Math.floor(input))

/** A transition made synchronously, reported afterwards. */
interface Transition {
  readonly change: StateChange
  readonly message: string
}

/**
 * Builds a breaker: a policy that keeps one circuit per `request.provider`. Wrap each attempt with
 * it (inside `Retry`, outside `Timeout`, so an attempt's timeout counts as a failure).
 *
 * @example
 * import { Effect } from "effect"
 * import { CircuitBreaker, Llm, LlmMock } from "@clearside/llm"
 *
 * const guarded = Effect.map(CircuitBreaker.make({ mode: "consecutive", failureThreshold: 3 }), (breaker) =>
 *   Llm.compose(LlmMock.echo().call, [breaker])
 * )
 *
 * @since 0.1.0
 * @category Constructors
 */
export const make = (options: Options = {}): Effect.Effect<Llm.Policy> =>
  Effect.sync(() => {
    const consecutiveMode = options.mode === "consecutive"
    const ratio =
      options.failureRatio === undefined || Number.isNaN(options.failureRatio)
        ? 0.5
        : Math.min(1, Math.max(Number.EPSILON, options.failureRatio))
    const minimumCalls = countOr(options.minimumCalls, 20)
    const threshold = countOr(options.failureThreshold, 5)
    const cooldown = durationOr(options.cooldown, Duration.seconds(30))
    const cooldownMs = Duration.toMillis(cooldown)
    const window = durationOr(options.window, Duration.seconds(10))
    const windowMs = Math.max(1, Duration.toMillis(window))
    // 1 s buckets for windows of 10 s and more (at most 1000 of them), a tenth of shorter ones:
    // outcomes leave the window a bucket at a time, in bounded memory at any call rate.
    const bucketMs = Number.isFinite(windowMs)
      ? Math.max(Math.min(1000, Math.ceil(windowMs / 10)), Math.ceil(windowMs / 1000))
      : Number.POSITIVE_INFINITY
    const buckets = Number.isFinite(windowMs) ? Math.ceil(windowMs / bucketMs) : 1
    const circuits = new Map<string, Circuit>()

    const circuitFor = (provider: string): Circuit => {
      let circuit = circuits.get(provider)
      if (circuit === undefined) {
        circuit = {
          provider,
          state: "closed",
          epoch: 0,
          openedAt: 0,
          probing: false,
          consecutive: 0,
          window: {
            successes: consecutiveMode ? [] : new Array<number>(buckets).fill(0),
            failures: consecutiveMode ? [] : new Array<number>(buckets).fill(0),
            head: 0,
            total: 0,
            failed: 0
          }
        }
        circuits.set(provider, circuit)
      }
      return circuit
    }

    const moveTo = (circuit: Circuit, to: State, now: number, message: string): Transition => {
      const from = circuit.state
      circuit.state = to
      circuit.epoch += 1
      circuit.probing = to === "half-open"
      if (to === "open") circuit.openedAt = now
      if (to === "closed") {
        circuit.consecutive = 0
        const w = circuit.window
        w.successes.fill(0)
        w.failures.fill(0)
        w.total = 0
        w.failed = 0
      }
      return { change: { provider: circuit.provider, from, to }, message }
    }

    const report = (transition: Transition | undefined, annotations: Record<string, unknown> = {}): Effect.Effect<void> => {
      if (transition === undefined) return Effect.void
      const { change, message } = transition
      const log = (change.to === "open" ? Effect.logWarning(message) : Effect.logInfo(message)).pipe(
        Effect.annotateLogs({ ...annotations, provider: change.provider, from: change.from, to: change.to })
      )
      return options.onStateChange === undefined ? log : Effect.zipRight(log, options.onStateChange(change))
    }

    const fastFor = Duration.format(cooldown)

    /** Adds one outcome to the window at `now`; returns whether the circuit should open. */
    const recordInWindow = (w: Window, failed: boolean, now: number): boolean => {
      const bucket = Math.floor(now / bucketMs)
      const gap = bucket - w.head
      if (gap >= buckets) {
        w.successes.fill(0)
        w.failures.fill(0)
        w.total = 0
        w.failed = 0
      } else {
        for (let n = w.head + 1; n <= bucket; n++) {
          const slot = n % buckets
          w.total -= w.successes[slot]! + w.failures[slot]!
          w.failed -= w.failures[slot]!
          w.successes[slot] = 0
          w.failures[slot] = 0
        }
      }
      // A clock that stepped back records into the newest bucket.
      if (gap > 0) w.head = bucket
      const slot = w.head % buckets
      w.total += 1
      if (failed) {
        w.failures[slot]! += 1
        w.failed += 1
        return w.total >= minimumCalls && w.failed / w.total >= ratio
      }
      w.successes[slot]! += 1
      return false
    }

    const settle = (run: Run, now: number): Transition | undefined => {
      const circuit = run.circuit
      // A call admitted under an earlier state (before the circuit opened, or an older probe).
      if (run.epoch !== circuit.epoch) return undefined
      const outcome = outcomeOf(run)
      if (run.probe) {
        if (outcome === "none") {
          circuit.probing = false
          return undefined
        }
        return outcome === "failure"
          ? moveTo(circuit, "open", now, `Circuit for ${circuit.provider} opened again: its probe call failed; calls fail fast for ${fastFor}`)
          : moveTo(circuit, "closed", now, `Circuit for ${circuit.provider} closed: its probe call was answered, calls go through again`)
      }
      if (outcome === "none") return undefined
      if (consecutiveMode) {
        if (outcome === "healthy") {
          circuit.consecutive = 0
          return undefined
        }
        circuit.consecutive += 1
        return circuit.consecutive >= threshold
          ? moveTo(circuit, "open", now, `Circuit for ${circuit.provider} opened after ${circuit.consecutive} consecutive failures; calls fail fast for ${fastFor}`)
          : undefined
      }
      const w = circuit.window
      if (!recordInWindow(w, outcome === "failure", now)) return undefined
      return moveTo(
        circuit,
        "open",
        now,
        `Circuit for ${circuit.provider} opened: ${w.failed} of the last ${w.total} calls within ${Duration.format(window)} failed; calls fail fast for ${fastFor}`
      )
    }

    const admit = (provider: string): Effect.Effect<Run, CircuitOpenError> =>
      Effect.clockWith((clock) =>
        Effect.suspend(() => {
          const circuit = circuitFor(provider)
          const admitted = (probe: boolean): Run => ({ circuit, epoch: circuit.epoch, probe, finished: false, failure: undefined })
          if (circuit.state === "closed") return Effect.succeed(admitted(false))
          const now = clock.unsafeCurrentTimeMillis()
          if (circuit.state === "open") {
            const left = cooldownMs - (now - circuit.openedAt)
            if (left > 0) {
              return Effect.fail(
                new CircuitOpenError({
                  provider,
                  local: true,
                  retryAfter: Duration.millis(left),
                  message: `Circuit for ${provider} is open after repeated failures; calls fail fast for ${Duration.format(Duration.millis(left))}`
                })
              )
            }
            const transition = moveTo(circuit, "half-open", now, `Circuit for ${provider} is half-open: one probe call goes through`)
            return Effect.as(report(transition), admitted(true))
          }
          if (!circuit.probing) {
            // The last probe ended without news (interrupted, or stopped early): this call probes.
            circuit.probing = true
            return Effect.succeed(admitted(true))
          }
          return Effect.fail(
            new CircuitOpenError({
              provider,
              local: true,
              message: `Circuit for ${provider} is half-open and its probe call is still running; calls fail fast until it ends`
            })
          )
        })
      )

    const release = (run: Run): Effect.Effect<void> =>
      Effect.clockWith((clock) =>
        Effect.suspend(() => {
          const transition = settle(run, clock.unsafeCurrentTimeMillis())
          return report(transition, run.failure === undefined ? {} : { error: run.failure._tag })
        })
      )

    const policy: Llm.Policy = (next) => (request, mode) =>
      Effect.suspend(() => {
        let run: Run | undefined
        // The provider's own failure, seen here: the scope's exit would also carry the failures
        // of whatever runs downstream.
        const observed = Effect.map(next(request, mode), (pull) =>
          Effect.mapBoth(pull, {
            onFailure: (error) => {
              if (Option.isSome(error) && run !== undefined) run.failure = error.value
              return error
            },
            onSuccess: (parts) => {
              if (run !== undefined && Answer.hasFinish(parts)) run.finished = true
              return parts
            }
          })
        )
        // Admission and its settlement are tied uninterruptibly: a probe slot taken is always
        // given back, and an outcome seen is always recorded, when the call's scope closes.
        return Answer.first(observed, (scope) =>
          Effect.uninterruptible(
            Effect.flatMap(admit(request.provider ?? "default"), (admitted) => {
              run = admitted
              return Scope.addFinalizer(scope, Effect.suspend(() => release(admitted)))
            })
          )
        )
      })
    return policy
  })

/**
 * Wraps the `Llm` service in context with a breaker.
 *
 * @example
 * import { Layer } from "effect"
 * import { CircuitBreaker, LlmMock } from "@clearside/llm"
 *
 * const layer = CircuitBreaker.layer({ minimumCalls: 10 }).pipe(Layer.provide(LlmMock.layerEcho()))
 *
 * @since 0.1.0
 * @category Layers
 */
export const layer = (options?: Options) => Llm.layerPolicy(make(options))

/**
 * Breaker options from the environment: `LLM_CIRCUIT_MODE` (`ratio`, the default, or
 * `consecutive`), `LLM_CIRCUIT_FAILURE_RATIO` (0.5; more than 0, at most 1),
 * `LLM_CIRCUIT_MINIMUM_CALLS` (20; 1 to 100000), `LLM_CIRCUIT_WINDOW_MS` (10000),
 * `LLM_CIRCUIT_FAILURE_THRESHOLD` (5, consecutive mode) and `LLM_CIRCUIT_COOLDOWN_MS` (30000), as
 * `LlmConfig` reads them. A bad value is a `ConfigError` naming the variable.
 *
 * @example
 * import { Effect } from "effect"
 * import { CircuitBreaker } from "@clearside/llm"
 * const options = Effect.runSync(CircuitBreaker.config)
 *
 * @since 0.1.0
 * @category Config
 */
export const config: Config.Config<Options> = Config.map(LlmConfig.config, (settings) => settings.circuitBreaker)

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
export const layerConfig = Llm.layerPolicy(Effect.flatMap(config, make))
