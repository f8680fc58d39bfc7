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
import { Cause, Config, type ConfigError, Duration, Effect, Exit, Layer, Option, Stream } from "effect"
import * as Llm from "./Llm.js"
import { CircuitOpenError, type LlmError } from "./LlmError.js"
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
 * Breaker options. Defaults: `failureThreshold` 5, `cooldown` 30 s.
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

    const circuitFor = (provider: string): Circuit => {
      let circuit = circuits.get(provider)
      if (circuit === undefined) {
        circuit = { provider, state: "closed", failures: 0, openedAt: 0, probing: false }
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
      if (to !== "open") circuit.failures = 0
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

    // Settled synchronously; the clock is read only when the circuit opens.
    const record = (circuit: Circuit, admission: Admission, exit: Exit.Exit<unknown, LlmError>): Effect.Effect<void> => {
      const isProbe = admission === "probe" && circuit.state === "half-open"
      if (Exit.isSuccess(exit)) {
        if (isProbe) return moveTo(circuit, "closed", 0)
        if (circuit.state === "closed") circuit.failures = 0
        return Effect.void
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
        if (circuit.state === "closed") circuit.failures = 0
        return Effect.void
      }
      if (isProbe) return open(circuit)
      if (circuit.state === "closed" && ++circuit.failures >= threshold) return open(circuit)
      return Effect.void
    }

    const wrap = (service: Llm.Service): Llm.Service => ({
      complete: (request) => {
        const circuit = circuitFor(request.provider ?? "default")
        return Effect.flatMap(admit(circuit), (admission) =>
          Effect.onExit(service.complete(request), (exit) => record(circuit, admission, exit))
        )
      },
      stream: (request) => {
        const circuit = circuitFor(request.provider ?? "default")
        return Stream.unwrap(
          Effect.map(admit(circuit), (admission) =>
            Stream.ensuringWith(service.stream(request), (exit) => record(circuit, admission, exit as Exit.Exit<unknown, LlmError>))
          )
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
 * Breaker options from the environment: `LLM_CIRCUIT_FAILURE_THRESHOLD` (5) and
 * `LLM_CIRCUIT_COOLDOWN_MS` (30000).
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
  )
})

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
