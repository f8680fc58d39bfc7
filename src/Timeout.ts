/**
 * Time limits on calls to the `Llm` service.
 *
 * {@link make} limits each attempt: a whole answer must arrive within `timeout` (default 30 s, or the
 * request's own `timeout`); a stream must deliver its first part within `firstToken` and each
 * next part within `idle` of the previous one (both default to the attempt timeout). There is no
 * limit on a stream's total length. A timed-out attempt is interrupted, which aborts its HTTP
 * request, and fails with a retryable `TimeoutError` whose `phase` is `"attempt"`, `"first-token"`
 * or `"idle"`. Put it inside `Retry` so each attempt gets its own limit.
 *
 * {@link makeDeadline} is the optional overall limit across all attempts (`phase: "deadline"`, not
 * retryable); put it outside `Retry` and `Fallback`.
 *
 * @example
 * import { Duration, Layer } from "effect"
 * import { LlmMock, Retry, Timeout } from "@clearside/llm"
 *
 * const layer = Timeout.layerDeadline({ deadline: Duration.minutes(2) }).pipe(
 *   Layer.provide(Retry.layer()),
 *   Layer.provide(Timeout.layer({ timeout: Duration.seconds(20), idle: Duration.seconds(5) })),
 *   Layer.provide(LlmMock.layerEcho())
 * )
 *
 * @since 0.1.0
 */
import type { Layer} from "effect";
import { Config, type ConfigError, Duration, Effect, Option } from "effect"
import * as Answer from "./internal/answer.js"
import * as Llm from "./Llm.js"
import * as LlmConfig from "./LlmConfig.js"
import { TimeoutError } from "./LlmError.js"
import type { LlmRequest } from "./LlmRequest.js"

/**
 * Per-attempt limits. `timeout` (default 30 s) bounds a whole answer; `firstToken` and `idle`
 * bound a stream's wait for its first part and between parts, and default to `timeout`. A
 * request's own `timeout` replaces all three for that request.
 *
 * @example
 * import { Duration } from "effect"
 * import type { Timeout } from "@clearside/llm"
 * const options: Timeout.Options = { timeout: Duration.seconds(30), firstToken: Duration.seconds(10) }
 *
 * @since 0.1.0
 * @category Models
 */
export interface Options {
  readonly timeout?: Duration.DurationInput
  readonly firstToken?: Duration.DurationInput
  readonly idle?: Duration.DurationInput
}

const providerOf = (request: LlmRequest): string => request.provider ?? "unknown"

const timeoutError = (request: LlmRequest, phase: "attempt" | "first-token" | "idle" | "deadline", limit: Duration.Duration) =>
  new TimeoutError({
    provider: providerOf(request),
    phase,
    retryable: phase !== "deadline",
    message:
      phase === "attempt"
        ? `No answer from ${providerOf(request)} within ${Duration.format(limit)}`
        : phase === "first-token"
          ? `No first token from ${providerOf(request)} within ${Duration.format(limit)}`
          : phase === "idle"
            ? `The ${providerOf(request)} stream sent nothing for ${Duration.format(limit)}`
            : `The call to ${providerOf(request)} did not finish within its ${Duration.format(limit)} deadline`
  })

/**
 * The per-attempt time limits: a whole answer must arrive within `timeout` (the request's own
 * `timeout` when it sets one); a stream's first part within `firstToken` and each next one within
 * `idle` of the previous. There is no limit on a stream's total length. A timed-out attempt is
 * interrupted, which aborts its HTTP request, and fails with a retryable `TimeoutError` whose
 * `phase` is `"attempt"`, `"first-token"` or `"idle"`. Put it inside `Retry`, so that each attempt
 * gets its own limit. Time is Effect's `Clock`, so `TestClock` drives it in tests.
 *
 * @example
 * import { Duration, Effect } from "effect"
 * import { Llm, LlmMock, Timeout } from "@clearside/llm"
 *
 * const limited = Effect.map(Timeout.make({ timeout: Duration.seconds(10) }), (timeout) => Llm.fromCall(timeout(LlmMock.echo().call)))
 *
 * @since 0.1.0
 * @category Constructors
 */
export const make = (options: Options = {}): Effect.Effect<Llm.Policy> =>
  Effect.sync(() => {
    const timeout = Duration.decode(options.timeout ?? Duration.seconds(30))
    const firstToken = Duration.decode(options.firstToken ?? timeout)
    const idle = Duration.decode(options.idle ?? timeout)
    const watch = Answer.makeWatch()
    return (next) => (request, mode) => {
      if (mode === "whole") {
        const limit = request.timeout ?? timeout
        const wait = { millis: Duration.toMillis(limit), error: () => timeoutError(request, "attempt", limit) }
        return Answer.limitPulls(next(request, mode), watch, () => wait)
      }
      const first = request.timeout ?? firstToken
      const between = request.timeout ?? idle
      const firstWait = { millis: Duration.toMillis(first), error: () => timeoutError(request, "first-token", first) }
      const idleWait = { millis: Duration.toMillis(between), error: () => timeoutError(request, "idle", between) }
      return Answer.limitPulls(next(request, mode), watch, (started) => (started ? idleWait : firstWait))
    }
  })

/**
 * The overall deadline: the whole call, with every retry and fallback inside it and, for a stream,
 * every part, must finish within `deadline`, else it is interrupted and fails with a non-retryable
 * `TimeoutError` (`phase: "deadline"`). Put it outside `Retry` and `Fallback`.
 *
 * @example
 * import { Duration, Effect } from "effect"
 * import { Llm, LlmMock, Timeout } from "@clearside/llm"
 *
 * const bounded = Effect.map(Timeout.makeDeadline({ deadline: Duration.minutes(1) }), (deadline) =>
 *   Llm.fromCall(deadline(LlmMock.echo().call))
 * )
 *
 * @since 0.1.0
 * @category Constructors
 */
export const makeDeadline = (options: { readonly deadline: Duration.DurationInput }): Effect.Effect<Llm.Policy> =>
  Effect.sync(() => {
    const limit = Duration.decode(options.deadline)
    const limitMs = Duration.toMillis(limit)
    const watch = Answer.makeWatch()
    return (next) => (request, mode) =>
      Effect.clockWith((clock) => {
        const start = clock.unsafeCurrentTimeMillis()
        const error = () => timeoutError(request, "deadline", limit)
        return Answer.limitPulls(next(request, mode), watch, () => ({ millis: limitMs - (clock.unsafeCurrentTimeMillis() - start), error }))
      })
  })

/**
 * Wraps the `Llm` service in context with per-attempt limits.
 *
 * @example
 * import { Duration, Layer } from "effect"
 * import { LlmMock, Timeout } from "@clearside/llm"
 *
 * const layer = Timeout.layer({ timeout: Duration.seconds(20) }).pipe(Layer.provide(LlmMock.layerEcho()))
 *
 * @since 0.1.0
 * @category Layers
 */
export const layer = (options: Options = {}): Layer.Layer<Llm.Llm, never, Llm.Llm> => Llm.layerPolicy(make(options))

/**
 * Wraps the `Llm` service in context with an overall deadline.
 *
 * @example
 * import { Duration, Layer } from "effect"
 * import { LlmMock, Timeout } from "@clearside/llm"
 *
 * const layer = Timeout.layerDeadline({ deadline: Duration.minutes(2) }).pipe(Layer.provide(LlmMock.layerEcho()))
 *
 * @since 0.1.0
 * @category Layers
 */
export const layerDeadline = (options: { readonly deadline: Duration.DurationInput }): Layer.Layer<Llm.Llm, never, Llm.Llm> =>
  Llm.layerPolicy(makeDeadline(options))

/**
 * Per-attempt limits from the environment: `LLM_TIMEOUT_MS` (30000),
 * `LLM_STREAM_FIRST_TOKEN_TIMEOUT_MS` and `LLM_STREAM_IDLE_TIMEOUT_MS` (both default to the
 * attempt timeout).
 *
 * @example
 * import { Effect } from "effect"
 * import { Timeout } from "@clearside/llm"
 * const options = Effect.runSync(Timeout.config)
 *
 * @since 0.1.0
 * @category Config
 */
export const config: Config.Config<Options> = Config.map(LlmConfig.config, ({ timeout: { deadline: _, ...limits } }) => limits)

/**
 * The overall deadline from `LLM_DEADLINE_MS`, if set.
 *
 * @example
 * import { Effect } from "effect"
 * import { Timeout } from "@clearside/llm"
 * const deadline = Effect.runSync(Timeout.deadlineConfig) // Option.none() when unset
 *
 * @since 0.1.0
 * @category Config
 */
export const deadlineConfig: Config.Config<Option.Option<Duration.Duration>> = Config.map(LlmConfig.config, (settings) =>
  Option.fromNullable(settings.timeout.deadline)
)

/**
 * {@link layer} with options read from {@link config}.
 *
 * @example
 * import { Layer } from "effect"
 * import { LlmMock, Timeout } from "@clearside/llm"
 * const layer = Timeout.layerConfig.pipe(Layer.provide(LlmMock.layerEcho()))
 *
 * @since 0.1.0
 * @category Layers
 */
export const layerConfig: Layer.Layer<Llm.Llm, ConfigError.ConfigError, Llm.Llm> = Llm.layerPolicy(
  Effect.flatMap(config, make)
)

/**
 * {@link layerDeadline} with the deadline read from `LLM_DEADLINE_MS`; leaves the service
 * unchanged when the variable is unset.
 *
 * @example
 * import { Layer } from "effect"
 * import { LlmMock, Timeout } from "@clearside/llm"
 * const layer = Timeout.layerDeadlineConfig.pipe(Layer.provide(LlmMock.layerEcho()))
 *
 * @since 0.1.0
 * @category Layers
 */
export const layerDeadlineConfig: Layer.Layer<Llm.Llm, ConfigError.ConfigError, Llm.Llm> = Llm.layerPolicy(
  Effect.flatMap(deadlineConfig, (limit) =>
    Option.isSome(limit) ? makeDeadline({ deadline: limit.value }) : Effect.succeed<Llm.Policy>((next) => next)
  )
)
