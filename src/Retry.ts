/**
 * Retries failed calls to the `Llm` service with exponential backoff, jitter and a cap on each
 * delay.
 *
 * Only errors with `retryable: true` that the provider reported (not `local` ones, such as the rate
 * limiter's own refusal) are retried, at most `maxRetries` times after the first
 * attempt. When an error carries `retryAfter` (a provider's `Retry-After`), that wait replaces the
 * backoff; when it is longer than `maxRetryAfter` the call fails at once with that error instead
 * of sleeping. A stream is retried only while it has emitted nothing: after its first event a
 * failure ends it with the error, whose `textEmitted` counts the characters already delivered.
 * Waiting goes through Effect's `Clock`, so `TestClock` drives it in tests.
 *
 * @example
 * import { Duration, Effect, Layer } from "effect"
 * import { Llm, LlmMock, Retry } from "@clearside/llm"
 *
 * const layer = Retry.layer({ maxRetries: 2, base: Duration.millis(200) }).pipe(
 *   Layer.provide(LlmMock.layer([LlmMock.fail("OverloadedError"), LlmMock.reply("ok")]))
 * )
 * const program = Llm.complete({ messages: [{ role: "user", content: "hi" }] }).pipe(Effect.provide(layer))
 *
 * @since 0.1.0
 */
import type { Layer} from "effect";
import { Config, type ConfigError, Duration, Effect, Schedule } from "effect"
import * as Llm from "./Llm.js"
import * as LlmConfig from "./LlmConfig.js"
import type { LlmError } from "./LlmError.js"
import * as Answer from "./internal/answer.js"

/**
 * What `onRetry` is told before each wait: the retry number (1 for the first retry), the delay
 * about to be waited, and the error that caused it.
 *
 * @example
 * import type { Retry } from "@clearside/llm"
 * const describe = (info: Retry.RetryInfo) => `retry ${info.attempt} in ${info.delay} after ${info.error._tag}`
 *
 * @since 0.1.0
 * @category Models
 */
export interface RetryInfo {
  readonly attempt: number
  readonly delay: Duration.Duration
  readonly error: LlmError
}

/**
 * Retry options. Defaults: `maxRetries` 3, `base` 500 ms, `factor` 2, `maxDelay` 10 s (the cap on
 * each backoff delay, applied after jitter), `maxRetryAfter` 60 s. Each backoff delay is
 * `base * factor ** (retry - 1)`, jittered to between 80% and 120%, then capped. `onRetry` runs
 * before each wait (e.g. to count retries in a metric); every retry is also logged at warn.
 *
 * @example
 * import { Duration, Effect } from "effect"
 * import type { Retry } from "@clearside/llm"
 *
 * const options: Retry.Options = {
 *   maxRetries: 5,
 *   base: Duration.millis(250),
 *   maxDelay: Duration.seconds(5),
 *   onRetry: (info) => Effect.log(`retrying after ${info.error._tag}`)
 * }
 *
 * @since 0.1.0
 * @category Models
 */
export interface Options {
  readonly maxRetries?: number
  readonly base?: Duration.DurationInput
  readonly factor?: number
  readonly maxDelay?: Duration.DurationInput
  readonly maxRetryAfter?: Duration.DurationInput
  readonly onRetry?: (info: RetryInfo) => Effect.Effect<void>
}

const retryAfterOf = (error: LlmError): Duration.Duration | undefined =>
  error._tag === "RateLimitError" || error._tag === "CircuitOpenError" ? error.retryAfter : undefined

/**
 * The retry `Schedule` itself, for use outside the `Llm` service (e.g. `Effect.retry(effect,
 * Retry.schedule())`). Its input is the failed call's `LlmError`.
 *
 * @example
 * import { Effect } from "effect"
 * import { Llm, Retry } from "@clearside/llm"
 *
 * const call = Llm.complete({ messages: [{ role: "user", content: "hi" }] }).pipe(
 *   Effect.retry(Retry.schedule({ maxRetries: 2 }))
 * )
 *
 * @since 0.1.0
 * @category Constructors
 */
export const schedule = (options: Options = {}): Schedule.Schedule<unknown, LlmError> => {
  const maxRetries = options.maxRetries ?? 3
  const cap = Duration.decode(options.maxDelay ?? Duration.seconds(10))
  const maxRetryAfter = Duration.decode(options.maxRetryAfter ?? Duration.seconds(60))
  const onRetry = options.onRetry
  return Schedule.exponential(options.base ?? Duration.millis(500), options.factor ?? 2).pipe(
    Schedule.jittered,
    Schedule.modifyDelay((_, delay) => Duration.min(delay, cap)),
    Schedule.intersect(Schedule.recurs(maxRetries)),
    Schedule.intersect(Schedule.identity<LlmError>()),
    Schedule.whileInput((error: LlmError) => {
      if (!error.retryable || error.local) return false
      const retryAfter = retryAfterOf(error)
      return retryAfter === undefined || Duration.lessThanOrEqualTo(retryAfter, maxRetryAfter)
    }),
    Schedule.modifyDelayEffect(([[, retries], error], backoff) => {
      const delay = retryAfterOf(error) ?? backoff
      const info: RetryInfo = { attempt: retries + 1, delay, error }
      const log = Effect.logWarning(`Retrying the ${error.provider} call after ${error._tag}`).pipe(
        Effect.annotateLogs({
          provider: error.provider,
          attempt: info.attempt,
          delayMs: Duration.toMillis(delay),
          error: error._tag
        })
      )
      return Effect.as(onRetry === undefined ? log : Effect.zipRight(log, onRetry(info)), delay)
    })
  )
}

/**
 * The retry policy: each failed attempt that may be retried is tried again after the schedule's
 * delay, while it has emitted nothing (a whole answer's parts arrive at once, so this covers
 * `complete` too).
 *
 * @example
 * import { Effect } from "effect"
 * import { Llm, LlmMock, Retry } from "@clearside/llm"
 *
 * const retried = Effect.map(Retry.make({ maxRetries: 2 }), (retry) => Llm.fromCall(retry(LlmMock.echo().call)))
 *
 * @since 0.1.0
 * @category Constructors
 */
export const make = (options: Options = {}): Effect.Effect<Llm.Policy> =>
  Effect.sync(() => {
    const policy = schedule(options)
    return (next) => (request, mode) =>
      Effect.suspend(() => {
        // The schedule's state is built only after a first failure, so a call answered at once
        // pays for no schedule.
        let driver: Schedule.ScheduleDriver<unknown, LlmError> | undefined
        const delay = (error: LlmError) =>
          Effect.catchAll(
            Effect.suspend(() =>
              driver === undefined
                ? Effect.flatMap(Schedule.driver(policy), (created) => {
                    driver = created
                    return created.next(error)
                  })
                : driver.next(error)
            ),
            () => Effect.fail(error)
          )
        return Answer.recoverBeforeFirst(next(request, mode), (error) => Effect.as(delay(error), next(request, mode)))
      })
  })

/**
 * Wraps the `Llm` service in context with the retry policy.
 *
 * @example
 * import { Layer } from "effect"
 * import { LlmMock, Retry } from "@clearside/llm"
 *
 * const layer = Retry.layer({ maxRetries: 3 }).pipe(Layer.provide(LlmMock.layerEcho()))
 *
 * @since 0.1.0
 * @category Layers
 */
export const layer = (options: Options = {}): Layer.Layer<Llm.Llm, never, Llm.Llm> => Llm.layerPolicy(make(options))

/**
 * Retry options from the environment, as `LlmConfig` reads them: `LLM_MAX_RETRIES` (3),
 * `LLM_RETRY_BASE_DELAY_MS` (500), `LLM_RETRY_MAX_DELAY_MS` (10000) and
 * `LLM_RETRY_MAX_RETRY_AFTER_MS` (60000).
 *
 * @example
 * import { Effect } from "effect"
 * import { Retry } from "@clearside/llm"
 *
 * const options = Effect.runSync(Retry.config)
 *
 * @since 0.1.0
 * @category Config
 */
export const config: Config.Config<Options> = Config.map(LlmConfig.config, (settings) => settings.retry)

/**
 * {@link layer} with options read from {@link config}.
 *
 * @example
 * import { Layer } from "effect"
 * import { LlmMock, Retry } from "@clearside/llm"
 *
 * const layer = Retry.layerConfig.pipe(Layer.provide(LlmMock.layerEcho()))
 *
 * @since 0.1.0
 * @category Layers
 */
export const layerConfig: Layer.Layer<Llm.Llm, ConfigError.ConfigError, Llm.Llm> = Llm.layerPolicy(
  Effect.flatMap(config, make)
)
