/**
 * What each policy and instrument costs in CPU, with no network in the way: every wrapper alone
 * around an in-process provider that answers at once (a resolved promise, so each call still
 * suspends its fiber as a real one does), and the whole stack `LlmLive.compose` builds. Reported
 * as microseconds added to the bare provider, per `complete` call and per 2,001-event stream of 21
 * chunks.
 */
import { Chunk, Duration, Effect, Layer, Logger, LogLevel, ManagedRuntime, Option, Stream } from "effect"
import { performance } from "node:perf_hooks"
import type { LlmRequest } from "../src/index.js"
import { CircuitBreaker, Fallback, Llm, LlmLive, Logging, Pricing, RateLimit, RateLimitStore, Retry, Timeout, Tracing, Usage } from "../src/index.js"
import { median, round } from "./stats.js"

const usage = { inputTokens: 10, outputTokens: 5, totalTokens: 15 }
const response: LlmRequest.LlmResponse = {
  id: "r1",
  provider: "openai",
  model: "sim-gpt",
  content: "hello",
  finishReason: "stop",
  usage
}
const finish: LlmRequest.Finish = { _tag: "Finish", id: "r1", provider: "openai", model: "sim-gpt", finishReason: "stop", usage }
const deltas = Chunk.unsafeFromArray(
  Array.from({ length: 100 }, (_, i): LlmRequest.LlmStreamEvent => ({ _tag: "TextDelta", text: `w${i} ` }))
)

/** Answers at once: one resolved promise per call, 20 chunks of 100 deltas then a `Finish` per stream. */
const instant: Llm.Service = {
  complete: () => Effect.promise(() => Promise.resolve(response)),
  stream: () =>
    Stream.concat(
      Stream.fromChunks(...Array.from({ length: 20 }, () => deltas)),
      Stream.fromEffect(Effect.promise(() => Promise.resolve(finish)))
    )
}

const request: LlmRequest.LlmRequest = { provider: "openai", messages: [{ role: "user", content: "Say hello" }], maxTokens: 32 }
const limits = { rpm: 100_000_000, tpm: 100_000_000_000, maxConcurrency: 100_000 }

/**
 * Per-call and per-stream CPU cost of each wrapper alone and of the composed stack, in µs over the
 * bare provider (medians of `rounds` runs).
 */
export const measure = async (options: { readonly calls: number; readonly streams: number; readonly rounds: number }) => {
  // Info lines are formatted (logfmt) and dropped, as in the other cases.
  const discard = Logger.map(Logger.logfmtLogger, () => undefined)
  const runtime = ManagedRuntime.make(
    Layer.mergeAll(RateLimitStore.layerMemory, Logger.replace(Logger.defaultLogger, discard), Logger.minimumLogLevel(LogLevel.Info))
  )
  const prices = Pricing.defaults
  const limit = await runtime.runPromise(RateLimit.make(limits))
  const breaker = await runtime.runPromise(CircuitBreaker.make({}))
  const stack = await runtime.runPromise(
    LlmLive.compose({
      providers: { openai: instant },
      defaultProvider: "openai",
      policies: {
        retry: { maxRetries: 3 },
        timeout: { timeout: Duration.seconds(30) },
        deadline: Option.none(),
        rateLimit: limits,
        circuitBreaker: {},
        fallback: [],
        logBodies: false,
        prices
      }
    })
  )
  const services: Record<string, Llm.Service> = {
    bare: instant,
    "Timeout.make": Timeout.make({ timeout: Duration.seconds(30) })(instant),
    "Usage.wrap": Usage.wrap(instant, { prices }),
    "RateLimit.make (rpm, tpm, concurrency)": limit(instant),
    "CircuitBreaker.make": breaker(instant),
    "Logging.wrapAttempt (debug, below the level)": Logging.wrapAttempt(instant),
    "Tracing.wrapAttempt": Tracing.wrapAttempt(instant),
    "Retry.make": Retry.make({ maxRetries: 3 })(instant),
    "Fallback.make": Fallback.make({ chain: [] })(instant),
    "Logging.wrap (info line)": Logging.wrap(instant, { prices }),
    "Tracing.wrap": Tracing.wrap(instant),
    "Llm.validated": Llm.validated(instant, { providers: ["openai"], defaultProvider: "openai" }),
    "LlmLive.compose (all of them)": stack
  }
  const complete = (service: Llm.Service) => async () => {
    const start = performance.now()
    await runtime.runPromise(
      Effect.gen(function* () {
        for (let i = 0; i < options.calls; i++) yield* service.complete(request)
      })
    )
    return ((performance.now() - start) * 1000) / options.calls
  }
  const stream = (service: Llm.Service) => async () => {
    const start = performance.now()
    await runtime.runPromise(
      Effect.gen(function* () {
        for (let i = 0; i < options.streams; i++) yield* Stream.runDrain(service.stream(request))
      })
    )
    return ((performance.now() - start) * 1000) / options.streams
  }
  const run = async (make: (service: Llm.Service) => () => Promise<number>) => {
    const samples: Record<string, Array<number>> = {}
    for (const service of Object.values(services)) await make(service)()
    for (let r = 0; r < options.rounds; r++) {
      for (const [name, service] of Object.entries(services)) (samples[name] ??= []).push(await make(service)())
    }
    const bare = median(samples.bare!)
    return Object.fromEntries(
      Object.entries(samples).map(([name, values]) => [name, name === "bare" ? round(bare) : round(median(values) - bare)])
    )
  }
  const result = { completeUs: await run(complete), streamUs: await run(stream) }
  await runtime.dispose()
  return result
}

/** The markdown table of {@link measure}'s result. */
export const markdown = (result: Awaited<ReturnType<typeof measure>>): ReadonlyArray<string> => [
  "| wrapper | µs added per `complete` | µs added per stream (21 chunks) |",
  "| --- | ---: | ---: |",
  ...Object.keys(result.completeUs).map((name) =>
    name === "bare"
      ? `| bare in-process provider (absolute) | ${result.completeUs[name]} | ${result.streamUs[name]} |`
      : `| ${name} | ${result.completeUs[name]} | ${result.streamUs[name]} |`
  )
]
