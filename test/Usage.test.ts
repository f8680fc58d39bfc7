import { describe, expect, it } from "@effect/vitest"
import { ConfigProvider, Duration, Effect, Fiber, Metric, type MetricState, Stream, TestClock } from "effect"
import * as Llm from "../src/Llm.js"
import * as LlmMock from "../src/LlmMock.js"
import type * as LlmRequest from "../src/LlmRequest.js"
import * as Pricing from "../src/Pricing.js"
import * as Retry from "../src/Retry.js"
import * as Usage from "../src/Usage.js"

// Effect metrics are global: each test uses its own provider name so its series are its own.
let seq = 0
const uniqueProvider = (name: string) => `${name}-${++seq}-${Math.random().toString(36).slice(2, 8)}`

const ask = (provider: string, content = "hello there", model = "gpt-4o-mini"): LlmRequest.LlmRequest => ({
  provider,
  model,
  messages: [{ role: "user", content }]
})

const usage = (inputTokens: number, outputTokens: number, extra: Partial<LlmRequest.Usage> = {}): LlmRequest.Usage => ({
  inputTokens,
  outputTokens,
  totalTokens: inputTokens + outputTokens,
  ...extra
})

const base = (provider: string, operation: "complete" | "stream", model = "gpt-4o-mini") =>
  <Type, In, Out>(metric: Metric.Metric<Type, In, Out>) =>
    metric.pipe(
      Metric.tagged("gen_ai.provider.name", provider),
      Metric.tagged("gen_ai.request.model", model),
      Metric.tagged("gen_ai.operation.name", "chat"),
      Metric.tagged("llm.operation", operation)
    )

const histogram = <Type, In>(metric: Metric.Metric<Type, In, MetricState.MetricState.Histogram>) =>
  Effect.map(Metric.value(metric), (state) => ({ count: state.count, sum: state.sum }))

const tokens = (provider: string, operation: "complete" | "stream", type: string, model?: string) =>
  histogram(base(provider, operation, model)(Usage.tokenUsage).pipe(Metric.tagged("gen_ai.token.type", type)))

const requestCount = (provider: string, operation: "complete" | "stream", outcome: string, errorType = "none") =>
  Effect.map(
    Metric.value(
      base(provider, operation)(Usage.requests).pipe(
        Metric.tagged("llm.outcome", outcome),
        Metric.tagged("error.type", errorType)
      )
    ),
    (state) => state.count
  )

const costOf = (provider: string, operation: "complete" | "stream", model?: string) =>
  Effect.map(Metric.value(base(provider, operation, model)(Usage.cost)), (state) => state.count)

/** A service over a mock with the given policies, the first outermost (the usage policy alone by default). */
const over = (mock: LlmMock.Mock, ...policies: ReadonlyArray<Effect.Effect<Llm.Policy>>) =>
  Effect.map(Effect.all(policies.length === 0 ? [Usage.make()] : policies), (built) => Llm.fromCall(Llm.compose(mock.call, built)))

const scripted = (script: ReadonlyArray<LlmMock.Step>) => Effect.flatMap(LlmMock.make(script), (mock) => over(mock))

describe("Usage.make metrics for complete", () => {
  it.effect("records input and output tokens, cost and one successful request per call", () =>
    Effect.gen(function* () {
      const provider = uniqueProvider("ok")
      const llm = yield* scripted([
        LlmMock.reply("a", { usage: usage(1_000, 200), model: "gpt-4o-mini-2024-07-18" }),
        LlmMock.reply("b", { usage: usage(3_000, 0, { cachedInputTokens: 2_000, reasoningTokens: 0 }) })
      ])
      yield* llm.complete(ask(provider))
      yield* llm.complete(ask(provider))
      expect(yield* tokens(provider, "complete", "input")).toEqual({ count: 2, sum: 4_000 })
      expect(yield* tokens(provider, "complete", "output")).toEqual({ count: 2, sum: 200 })
      expect(yield* tokens(provider, "complete", "cached_input")).toEqual({ count: 1, sum: 2_000 })
      expect(yield* tokens(provider, "complete", "reasoning")).toEqual({ count: 1, sum: 0 })
      expect(yield* requestCount(provider, "complete", "success")).toBe(2)
      // gpt-4o-mini: 0.15 in, 0.075 cached in, 0.60 out per million
      const expected = (1_000 * 0.15 + 200 * 0.6 + 1_000 * 0.15 + 2_000 * 0.075) / 1e6
      expect(yield* costOf(provider, "complete")).toBeCloseTo(expected, 12)
    }))

  it.effect("labels failures with the error tag and records no tokens for them", () =>
    Effect.gen(function* () {
      const provider = uniqueProvider("fail")
      const llm = yield* scripted([LlmMock.fail("RateLimitError"), LlmMock.fail("ServerError", { status: 502 })])
      yield* Effect.flip(llm.complete(ask(provider)))
      yield* Effect.flip(llm.complete(ask(provider)))
      expect(yield* requestCount(provider, "complete", "failure", "RateLimitError")).toBe(1)
      expect(yield* requestCount(provider, "complete", "failure", "ServerError")).toBe(1)
      expect(yield* requestCount(provider, "complete", "success")).toBe(0)
      expect((yield* tokens(provider, "complete", "input")).count).toBe(0)
      const failedDuration = yield* histogram(
        base(provider, "complete")(Usage.operationDuration).pipe(Metric.tagged("error.type", "ServerError"))
      )
      expect(failedDuration.count).toBe(1)
    }))

  it.effect("measures the duration on the Effect clock, so TestClock drives it", () =>
    Effect.gen(function* () {
      const provider = uniqueProvider("slow")
      const llm = yield* scripted([LlmMock.reply("late", { latency: Duration.millis(1_500) })])
      const fiber = yield* Effect.fork(llm.complete(ask(provider)))
      yield* TestClock.adjust(Duration.millis(1_500))
      yield* Fiber.join(fiber)
      expect(yield* histogram(base(provider, "complete")(Usage.operationDuration))).toEqual({ count: 1, sum: 1.5 })
    }))

  it.effect("counts tokens of a model missing from the price table at zero cost without failing", () =>
    Effect.gen(function* () {
      const provider = uniqueProvider("unpriced")
      const llm = yield* scripted([LlmMock.reply("x", { usage: usage(10, 5), model: "my-local-llama" })])
      const response = yield* llm.complete(ask(provider, "hi", "my-local-llama"))
      expect(response.content).toBe("x")
      expect(yield* tokens(provider, "complete", "input", "my-local-llama")).toEqual({ count: 1, sum: 10 })
      expect(yield* costOf(provider, "complete", "my-local-llama")).toBe(0)
    }))

  it.effect("prices with the table given in the options", () =>
    Effect.gen(function* () {
      const provider = uniqueProvider("custom")
      const mock = yield* LlmMock.make([LlmMock.reply("x", { usage: usage(1_000_000, 1_000_000), model: "house" })])
      const llm = yield* over(mock, Usage.make({ prices: { house: { input: 1, output: 3 } } }))
      yield* llm.complete(ask(provider, "hi", "house"))
      expect(yield* costOf(provider, "complete", "house")).toBeCloseTo(4, 10)
    }))

  it.effect("labels the model that answered when the request names none", () =>
    Effect.gen(function* () {
      const provider = uniqueProvider("nomodel")
      const llm = yield* scripted([LlmMock.reply("x", { usage: usage(7, 1), model: "claude-haiku-4-5-20251001" })])
      yield* llm.complete({ provider, messages: [{ role: "user", content: "hi" }] })
      expect(yield* tokens(provider, "complete", "input", "claude-haiku-4-5-20251001")).toEqual({ count: 1, sum: 7 })
    }))
})

describe("Usage.make metrics for stream", () => {
  it.effect("records tokens from the Finish event and the time to the first chunk", () =>
    Effect.gen(function* () {
      const provider = uniqueProvider("stream")
      const llm = yield* scripted([
        LlmMock.chunks(["one", " two"], { latency: Duration.millis(400), chunkDelay: Duration.millis(100), usage: usage(4, 2) })
      ])
      const fiber = yield* Effect.fork(Stream.runCollect(llm.stream(ask(provider))))
      yield* TestClock.adjust(Duration.seconds(5))
      yield* Fiber.join(fiber)
      expect(yield* tokens(provider, "stream", "input")).toEqual({ count: 1, sum: 4 })
      expect(yield* tokens(provider, "stream", "output")).toEqual({ count: 1, sum: 2 })
      expect(yield* requestCount(provider, "stream", "success")).toBe(1)
      const first = yield* histogram(base(provider, "stream")(Usage.timeToFirstChunk))
      expect(first.count).toBe(1)
      expect(first.sum).toBeGreaterThanOrEqual(0.4)
      expect(first.sum).toBeLessThan(0.6)
      expect((yield* histogram(base(provider, "stream")(Usage.operationDuration))).sum).toBeGreaterThanOrEqual(0.5)
    }))

  it.effect("does not record time to first chunk for complete", () =>
    Effect.gen(function* () {
      const provider = uniqueProvider("nottft")
      const llm = yield* scripted([LlmMock.reply("whole")])
      yield* llm.complete(ask(provider))
      expect((yield* histogram(base(provider, "complete")(Usage.timeToFirstChunk))).count).toBe(0)
    }))

  it.effect("estimates the usage of a stream that fails mid-way from the text received", () =>
    Effect.gen(function* () {
      const provider = uniqueProvider("cut")
      const llm = yield* scripted([LlmMock.chunks(["0123456789", "0123456789"], { error: "ConnectionError" })])
      const error = yield* Effect.flip(Stream.runDrain(llm.stream(ask(provider, "12345678"))))
      expect(error._tag).toBe("ConnectionError")
      expect(yield* tokens(provider, "stream", "output")).toEqual({ count: 1, sum: 5 }) // 20 chars / 4
      expect(yield* tokens(provider, "stream", "input")).toEqual({ count: 1, sum: 2 }) // 8 chars / 4
      expect(yield* requestCount(provider, "stream", "failure", "ConnectionError")).toBe(1)
    }))

  it.effect("counts a stream read only in part as interrupted, with estimated usage", () =>
    Effect.gen(function* () {
      const provider = uniqueProvider("partial")
      const llm = yield* scripted([LlmMock.reply("aaaa bbbb cccc dddd")])
      yield* Stream.runDrain(Stream.take(llm.stream(ask(provider)), 2))
      expect(yield* requestCount(provider, "stream", "interrupted")).toBe(1)
      expect(yield* requestCount(provider, "stream", "success")).toBe(0)
      expect(yield* tokens(provider, "stream", "output")).toEqual({ count: 1, sum: 3 }) // "aaaa bbbb" = 9 chars
    }))
})

describe("Usage counters for the resilience policies", () => {
  it.effect("counts retries by provider and error tag through Retry's onRetry", () =>
    Effect.gen(function* () {
      const provider = uniqueProvider("retry")
      const mock = yield* LlmMock.make(
        [LlmMock.fail("OverloadedError"), LlmMock.fail("OverloadedError"), LlmMock.reply("ok", { usage: usage(3, 1) })],
        { provider }
      )
      const llm = yield* over(mock, Retry.make({ maxRetries: 3, onRetry: Usage.recordRetry }), Usage.make())
      const fiber = yield* Effect.fork(llm.complete(ask(provider)))
      yield* TestClock.adjust(Duration.minutes(1))
      yield* Fiber.join(fiber)
      const retried = yield* Metric.value(
        Usage.retries.pipe(Metric.tagged("gen_ai.provider.name", provider), Metric.tagged("error.type", "OverloadedError"))
      )
      expect(retried.count).toBe(2)
      expect(yield* requestCount(provider, "complete", "failure", "OverloadedError")).toBe(2)
      expect(yield* requestCount(provider, "complete", "success")).toBe(1)
    }))

  it.effect("counts rate-limit waits and their length", () =>
    Effect.gen(function* () {
      const provider = uniqueProvider("limited")
      yield* Usage.recordRateLimitWait({ provider, delay: Duration.millis(250) })
      yield* Usage.recordRateLimitWait({ provider, delay: Duration.millis(750) })
      const waits = yield* Metric.value(Usage.rateLimitWaits.pipe(Metric.tagged("gen_ai.provider.name", provider)))
      expect(waits.count).toBe(2)
      expect(
        yield* histogram(Usage.rateLimitWaitDuration.pipe(Metric.tagged("gen_ai.provider.name", provider)))
      ).toEqual({ count: 2, sum: 1 })
    }))

  it.effect("counts circuit breaker transitions by from and to state", () =>
    Effect.gen(function* () {
      const provider = uniqueProvider("breaker")
      yield* Usage.recordCircuitTransition({ provider, from: "closed", to: "open" })
      yield* Usage.recordCircuitTransition({ provider, from: "open", to: "half_open" })
      yield* Usage.recordCircuitTransition({ provider, from: "half_open", to: "open" })
      const toOpen = yield* Metric.value(
        Usage.circuitTransitions.pipe(
          Metric.tagged("gen_ai.provider.name", provider),
          Metric.tagged("llm.circuit_breaker.from", "closed"),
          Metric.tagged("llm.circuit_breaker.to", "open")
        )
      )
      expect(toOpen.count).toBe(1)
    }))
})

describe("Usage.withUsage attribution", () => {
  it.effect("sums usage and cost of sequential calls and returns the result", () =>
    Effect.gen(function* () {
      const provider = uniqueProvider("sum")
      const llm = yield* scripted([
        LlmMock.reply("a", { usage: usage(1_000_000, 0), model: "gpt-4o" }),
        LlmMock.reply("b", { usage: usage(0, 1_000_000, { reasoningTokens: 10 }), model: "gpt-4o" })
      ])
      const [result, summary] = yield* Usage.withUsage(
        Effect.zipWith(llm.complete(ask(provider)), llm.complete(ask(provider)), (a, b) => a.content + b.content)
      )
      expect(result).toBe("ab")
      expect(summary).toMatchObject({
        attempts: 2,
        inputTokens: 1_000_000,
        outputTokens: 1_000_000,
        reasoningTokens: 10,
        totalTokens: 2_000_000,
        estimated: false
      })
      expect(summary.costUsd).toBeCloseTo(12.5, 10)
    }))

  it.effect("adds up concurrent and forked calls into the same total", () =>
    Effect.gen(function* () {
      const provider = uniqueProvider("conc")
      const mock = yield* LlmMock.make([], {
        provider,
        fallback: LlmMock.reply("x", { usage: usage(10, 1), latency: Duration.millis(100) })
      })
      const llm = yield* over(mock)
      const work = Effect.gen(function* () {
        yield* Effect.all(
          Array.from({ length: 8 }, () => llm.complete(ask(provider))),
          { concurrency: "unbounded", discard: true }
        )
        const forked = yield* Effect.fork(Stream.runDrain(llm.stream(ask(provider))))
        yield* Fiber.join(forked)
      })
      const fiber = yield* Effect.fork(Usage.withUsage(work))
      yield* TestClock.adjust(Duration.seconds(2))
      const [, summary] = yield* Fiber.join(fiber)
      expect(summary.attempts).toBe(9)
      expect(summary.inputTokens).toBe(90)
      expect(summary.outputTokens).toBe(9)
    }))

  it.effect("includes failed retries as attempts and the successful one's tokens", () =>
    Effect.gen(function* () {
      const provider = uniqueProvider("retries")
      const mock = yield* LlmMock.make(
        [LlmMock.fail("ServerError", { status: 503 }), LlmMock.reply("ok", { usage: usage(5, 5) })],
        { provider }
      )
      const llm = yield* over(mock, Retry.make({ maxRetries: 2 }), Usage.make())
      const fiber = yield* Effect.fork(Usage.withUsage(llm.complete(ask(provider))))
      yield* TestClock.adjust(Duration.minutes(1))
      const [, summary] = yield* Fiber.join(fiber)
      expect(summary.attempts).toBe(2)
      expect(summary.totalTokens).toBe(10)
    }))

  it.effect("counts the text of an interrupted stream as an estimate", () =>
    Effect.gen(function* () {
      const provider = uniqueProvider("interrupt")
      const llm = yield* scripted([LlmMock.chunks(["abcdefgh", "ijklmnop"], { hang: true })])
      const fiber = yield* Effect.fork(
        Usage.withUsage(
          Effect.gen(function* () {
            const inner = yield* Effect.fork(Stream.runDrain(llm.stream(ask(provider, "1234"))))
            yield* Effect.sleep(Duration.seconds(1))
            yield* Fiber.interrupt(inner)
          })
        )
      )
      yield* TestClock.adjust(Duration.seconds(2))
      const [, summary] = yield* Fiber.join(fiber)
      expect(summary).toMatchObject({ attempts: 1, inputTokens: 1, outputTokens: 4, estimated: true })
      expect(yield* requestCount(provider, "stream", "interrupted")).toBe(1)
    }))

  it.effect("nests: a call counts in every enclosing region", () =>
    Effect.gen(function* () {
      const provider = uniqueProvider("nest")
      const llm = yield* scripted([
        LlmMock.reply("a", { usage: usage(1, 1) }),
        LlmMock.reply("b", { usage: usage(2, 2) })
      ])
      const [[, inner], outer] = yield* Usage.withUsage(
        Effect.zipRight(llm.complete(ask(provider)), Usage.withUsage(llm.complete(ask(provider))))
      )
      expect(inner.totalTokens).toBe(4)
      expect(outer.totalTokens).toBe(6)
    }))

  it.effect("does not count calls made outside the region", () =>
    Effect.gen(function* () {
      const provider = uniqueProvider("outside")
      const llm = yield* scripted([LlmMock.reply("a", { usage: usage(1, 1) }), LlmMock.reply("b", { usage: usage(2, 2) })])
      yield* llm.complete(ask(provider))
      const [, summary] = yield* Usage.withUsage(llm.complete(ask(provider)))
      expect(summary.totalTokens).toBe(4)
    }))
})

describe("Usage.layer", () => {
  it.effect("wraps the Llm in context", () =>
    Effect.gen(function* () {
      const provider = uniqueProvider("layer")
      const [, summary] = yield* Usage.withUsage(Llm.complete(ask(provider, "one two three")))
      expect(summary.attempts).toBe(1)
      expect(summary.inputTokens).toBe(3)
    }).pipe(Effect.provide(Usage.layer()), Effect.provide(LlmMock.layerEcho())))

  it.effect("layerConfig reads LLM_PRICES over the defaults", () =>
    Effect.gen(function* () {
      const provider = uniqueProvider("layerconfig")
      const [, summary] = yield* Usage.withUsage(Llm.complete(ask(provider, "one two three", "mock-echo")))
      expect(summary.costUsd).toBeGreaterThan(0)
    }).pipe(
      Effect.provide(Usage.layerConfig),
      Effect.provide(LlmMock.layerEcho()),
      Effect.withConfigProvider(
        ConfigProvider.fromMap(new Map([["LLM_PRICES", '{"mock-echo":{"input":1,"output":1}}']]))
      )
    ))
})

describe("Usage.config", () => {
  it.effect("is the price table of LLM_PRICES over the defaults", () =>
    Effect.gen(function* () {
      const options = yield* Usage.config
      expect(options.prices?.["house"]).toEqual({ input: 1, output: 2 })
      expect(options.prices?.["gpt-4o"]).toEqual(Pricing.defaults["gpt-4o"])
    }).pipe(Effect.withConfigProvider(ConfigProvider.fromMap(new Map([["LLM_PRICES", '{"house":{"input":1,"output":2}}']])))))
})

describe("Usage.make records once per call, whole or streamed", () => {
  it.effect("counts one request and one duration for a whole answer and for a stream of many parts", () =>
    Effect.gen(function* () {
      const provider = uniqueProvider("once")
      const llm = yield* scripted([LlmMock.reply("one two three four five"), LlmMock.reply("one two three four five")])
      yield* llm.complete(ask(provider))
      yield* Stream.runDrain(llm.stream(ask(provider)))
      expect(yield* requestCount(provider, "complete", "success")).toBe(1)
      expect(yield* requestCount(provider, "stream", "success")).toBe(1)
      expect((yield* histogram(base(provider, "complete")(Usage.operationDuration))).count).toBe(1)
      expect((yield* histogram(base(provider, "stream")(Usage.operationDuration))).count).toBe(1)
      expect(yield* tokens(provider, "stream", "output")).toEqual({ count: 1, sum: 5 })
    }))
})
