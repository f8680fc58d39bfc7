/**
 * Token usage, cost and latency of every provider attempt, as Effect `Metric`s named after the
 * OpenTelemetry GenAI conventions, and {@link withUsage} to attribute the tokens and dollars of a
 * piece of work to it.
 *
 * {@link make} is a policy over the stream of parts: it measures when the stream starts and
 * records once, on the `Finish` (which carries the usage) or on failure or interruption, the same
 * for `complete` and `stream`. Place it inside the retry policy, around the provider, so that every
 * attempt is measured and counted (retries included). Metrics are Effect's own: the host runtime
 * decides where they go (e.g. `@effect/opentelemetry`).
 *
 * | metric | kind | labels (besides provider, model, operation) |
 * | --- | --- | --- |
 * | `gen_ai.client.token.usage` | histogram (tokens) | `gen_ai.token.type`: `input`, `output`, `cached_input`, `reasoning` |
 * | `gen_ai.client.operation.duration` | histogram (s) | `error.type` on failure |
 * | `gen_ai.client.operation.time_to_first_chunk` | histogram (s) | streams only |
 * | `llm.client.requests` | counter | `llm.outcome` (`success`, `failure`, `interrupted`), `error.type` |
 * | `llm.client.cost` | counter (USD) | |
 * | `llm.client.retries` | counter | `error.type` (see {@link recordRetry}) |
 * | `llm.client.rate_limit.waits` / `.wait.duration` | counter / histogram (s) | (see {@link recordRateLimitWait}) |
 * | `llm.client.circuit_breaker.transitions` | counter | `llm.circuit_breaker.from`, `.to` (see {@link recordCircuitTransition}) |
 *
 * Every metric carries `gen_ai.provider.name`, `gen_ai.request.model` (the request's model, else
 * the model that answered, else `unknown`), `gen_ai.operation.name` (`chat`) and `llm.operation`
 * (`complete` for a whole answer, `stream` for a streamed one). `cached_input` tokens are part of
 * `input` and `reasoning` tokens part of `output`: add only `input` and `output` for a total.
 *
 * @example
 * import { Effect, Layer } from "effect"
 * import { Llm, LlmMock, Usage } from "@clearside/llm"
 *
 * const program = Effect.gen(function* () {
 *   const [answers, usage] = yield* Usage.withUsage(
 *     Effect.all([
 *       Llm.complete({ messages: [{ role: "user", content: "first" }] }),
 *       Llm.complete({ messages: [{ role: "user", content: "second" }] })
 *     ], { concurrency: 2 })
 *   )
 *   return `${answers.length} answers, ${usage.totalTokens} tokens, $${usage.costUsd.toFixed(6)}`
 * })
 *
 * program.pipe(Effect.provide(Usage.layer().pipe(Layer.provide(LlmMock.layerEcho()))))
 *
 * @since 0.1.0
 */
import {
  Cause,
  Clock,
  Config,
  type ConfigError,
  Context,
  Duration,
  Effect,
  type Exit,
  FiberRef,
  type Layer,
  Metric,
  MetricBoundaries,
  MetricKey,
  MetricLabel,
  Option
} from "effect"
import * as Answer from "./internal/answer.js"
import * as Instrument from "./internal/instrument.js"
import * as TokenEstimate from "./internal/tokenEstimate.js"
import * as Accumulator from "./internal/usageAccumulator.js"
import * as StructuredOutput from "./internal/structuredOutput.js"
import * as Llm from "./Llm.js"
import type { LlmError } from "./LlmError.js"
import type * as LlmRequest from "./LlmRequest.js"
import * as Pricing from "./Pricing.js"

// Bucket boundaries recommended by the GenAI conventions.
const tokenBoundaries = MetricBoundaries.fromIterable([
  1, 4, 16, 64, 256, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304, 16777216, 67108864
])
const durationBoundaries = MetricBoundaries.fromIterable([
  0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92
])
const firstChunkBoundaries = MetricBoundaries.fromIterable([
  0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10
])

const tokenUsageKey = MetricKey.histogram("gen_ai.client.token.usage", tokenBoundaries, "Tokens used per LLM call")
const durationKey = MetricKey.histogram(
  "gen_ai.client.operation.duration",
  durationBoundaries,
  "Duration of LLM calls in seconds"
)
const firstChunkKey = MetricKey.histogram(
  "gen_ai.client.operation.time_to_first_chunk",
  firstChunkBoundaries,
  "Time to the first streamed text in seconds"
)
const requestsKey = MetricKey.counter("llm.client.requests", {
  description: "LLM provider attempts by outcome",
  incremental: true
})
const costKey = MetricKey.counter("llm.client.cost", { description: "LLM cost in USD", incremental: true })

/**
 * Tokens per attempt, by `gen_ai.token.type`.
 *
 * @example
 * import { Effect, Metric } from "effect"
 * import { Usage } from "@clearside/llm"
 *
 * const inputTokens = Metric.value(
 *   Usage.tokenUsage.pipe(Metric.tagged("gen_ai.token.type", "input"), Metric.tagged("gen_ai.provider.name", "openai"))
 * )
 *
 * @since 0.1.0
 * @category Metrics
 */
export const tokenUsage = Metric.fromMetricKey(tokenUsageKey)

/**
 * Seconds per attempt, from the call to its answer (for a stream: to its end).
 *
 * @example
 * import { Metric } from "effect"
 * import { Usage } from "@clearside/llm"
 * const seconds = Metric.value(Usage.operationDuration)
 *
 * @since 0.1.0
 * @category Metrics
 */
export const operationDuration = Metric.fromMetricKey(durationKey)

/**
 * Seconds from the start of a stream to its first text.
 *
 * @example
 * import { Metric } from "effect"
 * import { Usage } from "@clearside/llm"
 * const seconds = Metric.value(Usage.timeToFirstChunk)
 *
 * @since 0.1.0
 * @category Metrics
 */
export const timeToFirstChunk = Metric.fromMetricKey(firstChunkKey)

/**
 * Provider attempts, by `llm.outcome` and `error.type` (the `LlmError` tag, or `none`).
 *
 * @example
 * import { Metric } from "effect"
 * import { Usage } from "@clearside/llm"
 * const rateLimited = Metric.value(Usage.requests.pipe(Metric.tagged("error.type", "RateLimitError")))
 *
 * @since 0.1.0
 * @category Metrics
 */
export const requests = Metric.fromMetricKey(requestsKey)

/**
 * US dollars spent, priced with the configured {@link Pricing} table (unknown models add 0).
 *
 * @example
 * import { Metric } from "effect"
 * import { Usage } from "@clearside/llm"
 * const dollars = Metric.value(Usage.cost)
 *
 * @since 0.1.0
 * @category Metrics
 */
export const cost = Metric.fromMetricKey(costKey)

/**
 * Retries scheduled by a retry policy, by `error.type`. Incremented by {@link recordRetry}.
 *
 * @example
 * import { Metric } from "effect"
 * import { Usage } from "@clearside/llm"
 * const retried = Metric.value(Usage.retries)
 *
 * @since 0.1.0
 * @category Metrics
 */
export const retries = Metric.counter("llm.client.retries", { description: "LLM retries", incremental: true })

/**
 * Repair turns of structured output: answers of `Llm.generateObject` and `Llm.streamObject` that did
 * not decode and were sent back to the model, labelled with provider and model.
 *
 * @example
 * import { Metric } from "effect"
 * import { Usage } from "@clearside/llm"
 * const repaired = Metric.value(Usage.outputRepairs)
 *
 * @since 0.1.0
 * @category Metrics
 */
export const outputRepairs = StructuredOutput.repairs

/**
 * Times a call waited for a rate limiter. Incremented by {@link recordRateLimitWait}.
 *
 * @example
 * import { Metric } from "effect"
 * import { Usage } from "@clearside/llm"
 * const waits = Metric.value(Usage.rateLimitWaits)
 *
 * @since 0.1.0
 * @category Metrics
 */
export const rateLimitWaits = Metric.counter("llm.client.rate_limit.waits", {
  description: "Calls that waited for the rate limiter",
  incremental: true
})

/**
 * Seconds waited for a rate limiter. Updated by {@link recordRateLimitWait}.
 *
 * @example
 * import { Metric } from "effect"
 * import { Usage } from "@clearside/llm"
 * const waited = Metric.value(Usage.rateLimitWaitDuration)
 *
 * @since 0.1.0
 * @category Metrics
 */
export const rateLimitWaitDuration = Metric.histogram(
  "llm.client.rate_limit.wait.duration",
  durationBoundaries,
  "Seconds waited for the rate limiter"
)

/**
 * Circuit breaker state changes, by `llm.circuit_breaker.from` and `llm.circuit_breaker.to`.
 * Incremented by {@link recordCircuitTransition}.
 *
 * @example
 * import { Metric } from "effect"
 * import { Usage } from "@clearside/llm"
 * const opened = Metric.value(Usage.circuitTransitions.pipe(Metric.tagged("llm.circuit_breaker.to", "open")))
 *
 * @since 0.1.0
 * @category Metrics
 */
export const circuitTransitions = Metric.counter("llm.client.circuit_breaker.transitions", {
  description: "Circuit breaker state changes",
  incremental: true
})

/**
 * What a retry policy reports before it waits and tries again (the shape of `Retry.RetryInfo`, so
 * `Retry.layer({ onRetry: Usage.recordRetry })` counts retries).
 *
 * @example
 * import { Duration } from "effect"
 * import { LlmError, type Usage } from "@clearside/llm"
 *
 * const info: Usage.RetryInfo = {
 *   attempt: 1,
 *   delay: Duration.millis(500),
 *   error: new LlmError.RateLimitError({ provider: "openai", message: "Too many requests" })
 * }
 *
 * @since 0.1.0
 * @category Models
 */
export interface RetryInfo {
  /** The retry number, 1 for the first retry. */
  readonly attempt: number
  /** How long the policy waits before the next attempt. */
  readonly delay: Duration.DurationInput
  /** The failure that caused the retry; its `provider` labels the metric. */
  readonly error: LlmError
}

const label = MetricLabel.make

/**
 * Counts a retry in {@link retries}, labelled with the failed call's provider and error tag. Pass it
 * as the retry policy's `onRetry`.
 *
 * @example
 * import { Layer } from "effect"
 * import { LlmMock, Retry, Usage } from "@clearside/llm"
 *
 * const retried = Retry.layer({ onRetry: Usage.recordRetry }).pipe(Layer.provide(LlmMock.layerEcho()))
 *
 * @since 0.1.0
 * @category Recording
 */
export const recordRetry = (info: RetryInfo): Effect.Effect<void> =>
  Metric.increment(
    Metric.taggedWithLabels(retries, [
      label("gen_ai.provider.name", info.error.provider),
      label("error.type", info.error._tag)
    ])
  )

/**
 * Counts a wait for a rate limiter in {@link rateLimitWaits} and its length in
 * {@link rateLimitWaitDuration}. The limiter calls it when a call had to wait.
 *
 * @example
 * import { Duration } from "effect"
 * import { Usage } from "@clearside/llm"
 * const counted = Usage.recordRateLimitWait({ provider: "anthropic", delay: Duration.millis(250) })
 *
 * @since 0.1.0
 * @category Recording
 */
export const recordRateLimitWait = (info: {
  readonly provider: string
  readonly delay: Duration.DurationInput
}): Effect.Effect<void> => {
  const labels = [label("gen_ai.provider.name", info.provider)]
  return Effect.zipRight(
    Metric.increment(Metric.taggedWithLabels(rateLimitWaits, labels)),
    Metric.update(Metric.taggedWithLabels(rateLimitWaitDuration, labels), Duration.toSeconds(info.delay))
  )
}

/**
 * The states of a circuit breaker, as metric label values.
 *
 * @example
 * import type { Usage } from "@clearside/llm"
 * const state: Usage.CircuitState = "half_open"
 *
 * @since 0.1.0
 * @category Models
 */
export type CircuitState = "closed" | "open" | "half_open"

/**
 * Counts a circuit breaker state change in {@link circuitTransitions}.
 *
 * @example
 * import { Usage } from "@clearside/llm"
 * const counted = Usage.recordCircuitTransition({ provider: "openai", from: "closed", to: "open" })
 *
 * @since 0.1.0
 * @category Recording
 */
export const recordCircuitTransition = (info: {
  readonly provider: string
  readonly from: CircuitState
  readonly to: CircuitState
}): Effect.Effect<void> =>
  Metric.increment(
    Metric.taggedWithLabels(circuitTransitions, [
      label("gen_ai.provider.name", info.provider),
      label("llm.circuit_breaker.from", info.from),
      label("llm.circuit_breaker.to", info.to)
    ])
  )

/**
 * The summed usage of every provider attempt made inside {@link withUsage}. `estimated` is true
 * when some of it was estimated from the text of a stream that ended before the provider reported
 * its usage (about four characters per token).
 *
 * @example
 * import type { Usage } from "@clearside/llm"
 * const show = (s: Usage.Summary) => `${s.attempts} attempts, ${s.totalTokens} tokens, $${s.costUsd}`
 *
 * @since 0.1.0
 * @category Models
 */
export interface Summary {
  readonly attempts: number
  readonly inputTokens: number
  readonly outputTokens: number
  readonly cachedInputTokens: number
  readonly reasoningTokens: number
  readonly totalTokens: number
  readonly costUsd: number
  readonly estimated: boolean
  /** Repair turns of structured output (`Llm.generateObject`, `Llm.streamObject`); their calls count in `attempts` too. */
  readonly repairs: number
}

/**
 * Runs an effect and returns its result with the usage and cost of every call made inside it:
 * retries, concurrent and forked fibers and interrupted streams included. Regions nest: a call
 * counts in every enclosing `withUsage`. Only calls through the {@link make} policy are seen.
 *
 * @example
 * import { Effect } from "effect"
 * import { Llm, Usage } from "@clearside/llm"
 *
 * const debateTurn = Usage.withUsage(Llm.complete({ messages: [{ role: "user", content: "Your move" }] })).pipe(
 *   Effect.tap(([, usage]) => Effect.log(`turn cost $${usage.costUsd}`))
 * )
 *
 * @since 0.1.0
 * @category Attribution
 */
export const withUsage = <A, E, R>(self: Effect.Effect<A, E, R>): Effect.Effect<[A, Summary], E, R> =>
  Effect.suspend(() => {
    let summary: Summary = Accumulator.empty()
    return Effect.map(
      Accumulator.track(self, (_exit, totals) =>
        Effect.sync(() => {
          summary = { ...totals }
        })
      ),
      (a): [A, Summary] => [a, summary]
    )
  })

/**
 * Options of {@link make}.
 *
 * @example
 * import type { Usage } from "@clearside/llm"
 * const options: Usage.Options = { prices: { "my-model": { input: 1, output: 4 } } }
 *
 * @since 0.1.0
 * @category Models
 */
export interface Options {
  /** The price table (default: `Pricing.defaults`). */
  readonly prices?: Pricing.PriceTable | undefined
}

type Operation = "complete" | "stream"

type Histogram = Metric.Metric.Histogram<number>
type Counter = Metric.Metric.Counter<number>

interface Instruments {
  readonly input: Histogram
  readonly output: Histogram
  readonly cachedInput: Histogram
  readonly reasoning: Histogram
  readonly duration: Histogram
  readonly firstChunk: Histogram
  readonly cost: Counter
  readonly byOutcome: Map<string, { readonly requests: Counter; readonly duration: Histogram }>
  readonly labels: ReadonlyArray<MetricLabel.MetricLabel>
}

// Tagged metrics are built once per provider, model and operation, straight from their keys:
// `Metric.tagged` on every call would rebuild and look up the key each time.
const instrumentCache = new Map<string, Instruments>()
const cacheLimit = 1_000

const instrumentsFor = (provider: string, model: string, operation: Operation): Instruments => {
  const key = `${provider}\u0000${model}\u0000${operation}`
  const cached = instrumentCache.get(key)
  if (cached !== undefined) return cached
  if (instrumentCache.size >= cacheLimit) instrumentCache.clear()
  const labels = [
    label("gen_ai.provider.name", provider),
    label("gen_ai.request.model", model),
    label("gen_ai.operation.name", "chat"),
    label("llm.operation", operation)
  ]
  const tokens = (type: string) =>
    Metric.fromMetricKey(MetricKey.taggedWithLabels(tokenUsageKey, [...labels, label("gen_ai.token.type", type)]))
  const made: Instruments = {
    input: tokens("input"),
    output: tokens("output"),
    cachedInput: tokens("cached_input"),
    reasoning: tokens("reasoning"),
    duration: Metric.fromMetricKey(MetricKey.taggedWithLabels(durationKey, labels)),
    firstChunk: Metric.fromMetricKey(MetricKey.taggedWithLabels(firstChunkKey, labels)),
    cost: Metric.fromMetricKey(MetricKey.taggedWithLabels(costKey, labels)),
    byOutcome: new Map(),
    labels
  }
  instrumentCache.set(key, made)
  return made
}

const outcomeInstruments = (instruments: Instruments, outcome: string, errorType: string) => {
  const key = `${outcome}\u0000${errorType}`
  const cached = instruments.byOutcome.get(key)
  if (cached !== undefined) return cached
  const made = {
    requests: Metric.fromMetricKey(
      MetricKey.taggedWithLabels(requestsKey, [
        ...instruments.labels,
        label("llm.outcome", outcome),
        label("error.type", errorType)
      ])
    ),
    duration:
      errorType === "none"
        ? instruments.duration
        : Metric.fromMetricKey(
            MetricKey.taggedWithLabels(durationKey, [...instruments.labels, label("error.type", errorType)])
          )
  }
  instruments.byOutcome.set(key, made)
  return made
}

/** About four characters per token, the usual rule of thumb for English text. */
const estimateTokens = (chars: number) => Math.ceil(chars / 4)


interface Outcome {
  readonly outcome: "success" | "failure" | "interrupted"
  readonly errorType: string
  readonly provider: string | undefined
}

const outcomeOf = (exit: Exit.Exit<unknown, LlmError>, finished: boolean): Outcome => {
  if (exit._tag === "Success") {
    return { outcome: finished ? "success" : "interrupted", errorType: "none", provider: undefined }
  }
  const failure = Cause.failureOption(exit.cause)
  if (Option.isSome(failure)) {
    return { outcome: "failure", errorType: failure.value._tag, provider: failure.value.provider }
  }
  return Cause.isInterruptedOnly(exit.cause)
    ? { outcome: "interrupted", errorType: "none", provider: undefined }
    : { outcome: "failure", errorType: "Defect", provider: undefined }
}

const seconds = (from: bigint, to: bigint) => Number(to - from) / 1e9

/** The usage of an answer cut short, estimated from the prompt and the text delivered. */
const estimatedUsage = (request: LlmRequest.LlmRequest, chars: number): LlmRequest.Usage => {
  const inputTokens = estimateTokens(TokenEstimate.promptChars(request))
  const outputTokens = estimateTokens(chars)
  return { inputTokens, outputTokens, totalTokens: inputTokens + outputTokens }
}

/**
 * The usage policy: measures every attempt (tokens, cost, duration, time to the first streamed
 * text, outcome) and adds its usage to the enclosing {@link withUsage} regions and to the call's
 * log line. An attempt that ends before its `Finish` (interrupted, failed mid-stream, or not read
 * to the end) counts an estimate from the text it delivered and the prompt. Place it inside the
 * retry policy, around the provider.
 *
 * @example
 * import { Effect } from "effect"
 * import { Llm, LlmMock, Usage } from "@clearside/llm"
 *
 * const measured = Effect.map(Usage.make({ prices: { "mock-echo": { input: 1, output: 2 } } }), (usage) =>
 *   Llm.fromCall(usage(LlmMock.echo().call))
 * )
 *
 * @since 0.1.0
 * @category Constructors
 */
export const make = (options: Options = {}): Effect.Effect<Llm.Policy> =>
  Effect.sync(() => {
    const prices = options.prices ?? Pricing.defaults
    return (next) => (request, mode) =>
        // Everything the record needs is read when the attempt starts, in the caller's fiber: the
        // answer's finalizer may run in another fiber, outside the caller's context.
        Effect.withFiberRuntime((fiber) => {
          const clock = Context.get(fiber.currentDefaultServices, Clock.Clock)
          const call = Instrument.unsafeCall(fiber.currentContext)
          const sinks = fiber.getFiberRef(Accumulator.sinks)
          const tags = fiber.getFiberRef(FiberRef.currentMetricLabels)
          const operation = Instrument.operationOf(mode)
          const start = clock.unsafeCurrentTimeNanos()
          let firstPartAt: bigint | undefined
          let chars = 0
          let finish: LlmRequest.Finish | undefined
          const record = (exit: Exit.Exit<unknown, LlmError>) =>
            Effect.sync(() => {
              const outcome = outcomeOf(exit, finish !== undefined)
              const provider = request.provider ?? finish?.provider ?? outcome.provider ?? "unknown"
              const model = request.model ?? finish?.model ?? "unknown"
              const estimated = finish === undefined && chars > 0
              const usage = finish?.usage ?? (estimated ? estimatedUsage(request, chars) : undefined)
              const instruments = instrumentsFor(provider, model, operation)
              const byOutcome = outcomeInstruments(instruments, outcome.outcome, outcome.errorType)
              const usd = usage === undefined ? 0 : Pricing.cost(prices, finish?.model ?? model, usage)
              byOutcome.requests.unsafeUpdate(1, tags)
              byOutcome.duration.unsafeUpdate(seconds(start, clock.unsafeCurrentTimeNanos()), tags)
              // A whole answer's parts all arrive at its end: only a stream has a first part of its own.
              if (mode === "streamed" && firstPartAt !== undefined) {
                instruments.firstChunk.unsafeUpdate(seconds(start, firstPartAt), tags)
              }
              if (usage !== undefined) {
                instruments.input.unsafeUpdate(usage.inputTokens, tags)
                instruments.output.unsafeUpdate(usage.outputTokens, tags)
                instruments.cost.unsafeUpdate(usd, tags)
                if (usage.cachedInputTokens !== undefined) instruments.cachedInput.unsafeUpdate(usage.cachedInputTokens, tags)
                if (usage.reasoningTokens !== undefined) instruments.reasoning.unsafeUpdate(usage.reasoningTokens, tags)
              }
              for (const totals of sinks) Accumulator.unsafeAddTo(totals, usage, usd, estimated)
              if (call !== undefined) Accumulator.unsafeAddTo(call.totals, usage, usd, estimated)
            })
          return Answer.observe(
            next(request, mode),
            (parts) => {
              for (const part of parts) {
                if (part._tag === "Finish") {
                  finish = part
                } else {
                  chars += TokenEstimate.eventChars(part)
                  firstPartAt ??= clock.unsafeCurrentTimeNanos()
                }
              }
            },
            record
          )
        })
  })

/**
 * {@link make} as a layer over the `Llm` in context.
 *
 * @example
 * import { Layer } from "effect"
 * import { LlmMock, Usage } from "@clearside/llm"
 * const measured = Usage.layer().pipe(Layer.provide(LlmMock.layerEcho()))
 *
 * @since 0.1.0
 * @category Layers
 */
export const layer = (options?: Options): Layer.Layer<Llm.Llm, never, Llm.Llm> => Llm.layerPolicy(make(options))

/**
 * The usage options of the environment: the price table of `LLM_PRICES` (see `Pricing.config`).
 *
 * @example
 * import { Effect } from "effect"
 * import { Usage } from "@clearside/llm"
 * const options = Effect.runSync(Usage.config)
 *
 * @since 0.1.0
 * @category Config
 */
export const config: Config.Config<Options> = Config.map(Pricing.config, (prices): Options => ({ prices }))

/**
 * {@link layer} with the options of {@link config}.
 *
 * @example
 * import { Layer } from "effect"
 * import { LlmMock, Usage } from "@clearside/llm"
 * const measured = Usage.layerConfig.pipe(Layer.provide(LlmMock.layerEcho()))
 *
 * @since 0.1.0
 * @category Layers
 */
export const layerConfig: Layer.Layer<Llm.Llm, ConfigError.ConfigError, Llm.Llm> = Llm.layerPolicy(
  Effect.flatMap(config, make)
)
