import { afterEach, describe, expect, it, vi } from "@effect/vitest"
import { ConfigProvider, Duration, Effect, Fiber, HashMap, Layer, Logger, LogLevel, Stream, TestClock } from "effect"
import * as Llm from "../src/Llm.js"
import * as LlmMock from "../src/LlmMock.js"
import type * as LlmRequest from "../src/LlmRequest.js"
import * as Logging from "../src/Logging.js"
import * as Retry from "../src/Retry.js"
import * as Usage from "../src/Usage.js"

interface Line {
  readonly level: string
  readonly message: string
  readonly fields: Record<string, unknown>
}

// A logger that keeps every line it is given, in place of the default one.
const capture = () => {
  const lines: Array<Line> = []
  const logger = Logger.make(({ annotations, logLevel, message }) => {
    lines.push({
      level: logLevel.label,
      message: Array.isArray(message) ? message.join(" ") : String(message),
      fields: Object.fromEntries(HashMap.toEntries(annotations))
    })
  })
  return { lines, layer: Logger.replace(Logger.defaultLogger, logger) }
}

const calls = (lines: ReadonlyArray<Line>) => lines.filter((line) => line.message === "llm call")
const attempts = (lines: ReadonlyArray<Line>) => lines.filter((line) => line.message === "llm attempt")

const ask: LlmRequest.LlmRequest = {
  provider: "openai",
  model: "gpt-4o-mini",
  messages: [{ role: "user", content: "What is the capital of France?" }],
  metadata: { agent: "moderator", debate: "d-17" }
}

const paris = LlmMock.reply("Paris.", {
  id: "chatcmpl-7",
  model: "gpt-4o-mini-2024-07-18",
  latency: Duration.millis(250),
  usage: { inputTokens: 1_000, outputTokens: 200, totalTokens: 1_200 }
})

const runFor = <A, E>(effect: Effect.Effect<A, E>, time: Duration.DurationInput = Duration.minutes(1)) =>
  Effect.gen(function* () {
    const fiber = yield* Effect.fork(effect)
    yield* TestClock.adjust(time)
    return yield* Fiber.join(fiber)
  })

describe("Logging.wrap: one info line per call", () => {
  it.effect("logs provider, model, outcome, latency, attempts, tokens, cost, request id and metadata", () => {
    const { layer, lines } = capture()
    return Effect.gen(function* () {
      const llm = Logging.wrap(yield* LlmMock.make([paris]))
      yield* runFor(llm.complete(ask))
      const [line, ...rest] = calls(lines)
      expect(rest).toHaveLength(0)
      expect(line!.level).toBe("INFO")
      expect(line!.fields).toMatchObject({
        provider: "openai",
        model: "gpt-4o-mini-2024-07-18",
        operation: "complete",
        outcome: "success",
        latency_ms: 250,
        attempts: 1,
        input_tokens: 1_000,
        output_tokens: 200,
        total_tokens: 1_200,
        response_id: "chatcmpl-7",
        finish_reason: "stop",
        "metadata.agent": "moderator",
        "metadata.debate": "d-17"
      })
      expect(line!.fields.cost_usd).toBeCloseTo((1_000 * 0.15 + 200 * 0.6) / 1e6, 12)
      expect(line!.fields).not.toHaveProperty("request_body")
      expect(line!.fields).not.toHaveProperty("response_body")
    }).pipe(Effect.provide(layer))
  })

  it.effect("logs a failure with its tag, message and retryability", () => {
    const { layer, lines } = capture()
    return Effect.gen(function* () {
      const llm = Logging.wrap(
        yield* LlmMock.make([LlmMock.fail("QuotaExceededError", { message: "You exceeded your current quota", requestId: "req_9" })])
      )
      yield* Effect.flip(llm.complete(ask))
      expect(calls(lines)[0]!.fields).toMatchObject({
        outcome: "failure",
        error_tag: "QuotaExceededError",
        error_message: "You exceeded your current quota",
        retryable: false,
        request_id: "req_9"
      })
    }).pipe(Effect.provide(layer))
  })

  it.effect("logs a retried call once, with the attempts and the tokens of every attempt", () => {
    const { layer, lines } = capture()
    return Effect.gen(function* () {
      const mock = yield* LlmMock.make([
        LlmMock.fail("ServerError", { status: 502 }),
        LlmMock.chunks(["Pa"], { error: "ConnectionError" }),
        paris
      ])
      const llm = Logging.wrap(Retry.make({ maxRetries: 3 })(Logging.wrapAttempt(Usage.wrap(mock))))
      yield* runFor(llm.complete(ask))
      const [line, ...rest] = calls(lines)
      expect(rest).toHaveLength(0)
      expect(line!.fields).toMatchObject({ outcome: "success", attempts: 3, input_tokens: 1_000, output_tokens: 200 })
    }).pipe(Effect.provide(layer), Logger.withMinimumLogLevel(LogLevel.Debug))
  })
})

describe("Logging.wrapAttempt: one debug line per attempt", () => {
  it.effect("numbers the attempts and logs each one's outcome at debug", () => {
    const { layer, lines } = capture()
    return Effect.gen(function* () {
      const mock = yield* LlmMock.make([LlmMock.fail("OverloadedError"), paris])
      const llm = Logging.wrap(Retry.make({ maxRetries: 3 })(Logging.wrapAttempt(mock)))
      yield* runFor(llm.complete(ask))
      const debug = attempts(lines)
      expect(debug.map((line) => line.level)).toEqual(["DEBUG", "DEBUG"])
      expect(debug.map((line) => [line.fields.attempt, line.fields.outcome, line.fields.error_tag])).toEqual([
        [1, "failure", "OverloadedError"],
        [2, "success", undefined]
      ])
      expect(calls(lines)[0]!.fields.attempts).toBe(2)
      // the retry policy logs its own warn line between the attempts
      expect(lines.filter((line) => line.level === "WARN")).toHaveLength(1)
    }).pipe(Effect.provide(layer), Logger.withMinimumLogLevel(LogLevel.Debug))
  })

  it.effect("stays silent at the default info level", () => {
    const { layer, lines } = capture()
    return Effect.gen(function* () {
      const llm = Logging.wrap(Logging.wrapAttempt(yield* LlmMock.make([paris])))
      yield* runFor(llm.complete(ask))
      expect(attempts(lines)).toHaveLength(0)
      expect(calls(lines)).toHaveLength(1)
    }).pipe(Effect.provide(layer))
  })
})

describe("Logging bodies", () => {
  it.effect("logs request and response bodies only when enabled, truncated", () => {
    const { layer, lines } = capture()
    return Effect.gen(function* () {
      const long = "x".repeat(300)
      const mock = yield* LlmMock.make([LlmMock.reply(long), LlmMock.reply(long)])
      yield* Logging.wrap(mock).complete(ask)
      yield* Logging.wrap(mock, { bodies: true, maxBodyChars: 100 }).complete(ask)
      const [off, on] = calls(lines)
      expect(off!.fields).not.toHaveProperty("response_body")
      expect(on!.fields.response_body).toBe(`${"x".repeat(100)}… (200 more characters)`)
      expect(String(on!.fields.request_body)).toContain("What is the capital of France?")
    }).pipe(Effect.provide(layer))
  })

  it.effect("logs the streamed text as the response body of a stream", () => {
    const { layer, lines } = capture()
    return Effect.gen(function* () {
      const llm = Logging.wrap(yield* LlmMock.make([LlmMock.reply("one two three")]), { bodies: true })
      yield* Stream.runDrain(llm.stream(ask))
      expect(calls(lines)[0]!.fields).toMatchObject({ operation: "stream", outcome: "success", response_body: "one two three" })
    }).pipe(Effect.provide(layer))
  })
})

describe("Logging for streams", () => {
  it.effect("logs one line when the stream ends, with the time to the first chunk", () => {
    const { layer, lines } = capture()
    return Effect.gen(function* () {
      const llm = Logging.wrap(
        yield* LlmMock.make([
          LlmMock.chunks(["a", "b", "c"], { latency: Duration.millis(100), chunkDelay: Duration.millis(50), usage: { inputTokens: 1, outputTokens: 3, totalTokens: 4 } })
        ])
      )
      yield* runFor(Stream.runDrain(llm.stream(ask)))
      const [line, ...rest] = calls(lines)
      expect(rest).toHaveLength(0)
      expect(line!.fields).toMatchObject({ operation: "stream", outcome: "success", output_tokens: 3 })
      expect(line!.fields.first_chunk_ms).toBeGreaterThanOrEqual(100)
      expect(line!.fields.latency_ms).toBeGreaterThanOrEqual(200)
    }).pipe(Effect.provide(layer))
  })

  it.effect("logs an interrupted stream as interrupted, with its estimated usage", () => {
    const { layer, lines } = capture()
    return Effect.gen(function* () {
      const llm = Logging.wrap(Usage.wrap(yield* LlmMock.make([LlmMock.chunks(["abcdefgh"], { hang: true })])))
      const fiber = yield* Effect.fork(Stream.runDrain(llm.stream(ask)))
      yield* TestClock.adjust(Duration.seconds(1))
      yield* Fiber.interrupt(fiber)
      expect(calls(lines)[0]!.fields).toMatchObject({ outcome: "interrupted", output_tokens: 2, usage_estimated: true })
    }).pipe(Effect.provide(layer))
  })
})

describe("Logging.config and layers", () => {
  const env = (entries: Record<string, string>) =>
    Effect.withConfigProvider(ConfigProvider.fromMap(new Map(Object.entries(entries))))

  it.effect("defaults to info, the program's own logger and no bodies", () =>
    Effect.gen(function* () {
      expect(yield* Logging.config).toEqual({ level: LogLevel.Info, format: undefined, bodies: false })
    }).pipe(env({})))

  it.effect("reads LLM_LOG_LEVEL, LLM_LOG_FORMAT and LLM_LOG_BODIES", () =>
    Effect.gen(function* () {
      expect(yield* Logging.config).toEqual({ level: LogLevel.Debug, format: "json", bodies: true })
    }).pipe(env({ LLM_LOG_LEVEL: "DEBUG", LLM_LOG_FORMAT: "json", LLM_LOG_BODIES: "true" })))

  it.effect("rejects an unknown level or format with a ConfigError naming the variable", () =>
    Effect.gen(function* () {
      expect(String(yield* Effect.flip(Logging.config.pipe(env({ LLM_LOG_LEVEL: "loud" }))))).toContain("LLM_LOG_LEVEL")
      expect(String(yield* Effect.flip(Logging.config.pipe(env({ LLM_LOG_FORMAT: "xml" }))))).toContain("LLM_LOG_FORMAT")
    }))

  describe("layerConfig", () => {
    afterEach(() => {
      vi.restoreAllMocks()
    })

    it.effect("installs Effect's json logger and logs bodies as configured", () =>
      Effect.gen(function* () {
        const printed: Array<string> = []
        vi.spyOn(console, "log").mockImplementation((line: unknown) => {
          printed.push(String(line))
        })
        yield* Llm.complete(ask).pipe(
          Effect.provide(Logging.layerConfig.pipe(Layer.provide(LlmMock.layerEcho()))),
          env({ LLM_LOG_FORMAT: "json", LLM_LOG_BODIES: "true" })
        )
        const entries = printed.map((line) => JSON.parse(line) as { message: string; annotations: Record<string, unknown> })
        const call = entries.find((entry) => entry.message === "llm call")
        expect(call?.annotations).toMatchObject({ provider: "openai", outcome: "success", "metadata.agent": "moderator" })
        expect(call?.annotations.response_body).toBe("echo: What is the capital of France?")
      }))

    it.effect("installs the logfmt logger at the configured level", () =>
      Effect.gen(function* () {
        const printed: Array<string> = []
        vi.spyOn(console, "log").mockImplementation((line: unknown) => {
          printed.push(String(line))
        })
        yield* Llm.complete(ask).pipe(
          Effect.provide(Logging.layerConfig.pipe(Layer.provide(LlmMock.layerEcho()))),
          env({ LLM_LOG_FORMAT: "logfmt", LLM_LOG_LEVEL: "error" })
        )
        yield* Effect.logError("kept").pipe(
          Effect.provide(Logging.layerLogger({ format: "logfmt", level: LogLevel.Error }))
        )
        expect(printed.some((line) => line.includes("llm call"))).toBe(false)
        expect(printed.some((line) => line.includes("level=ERROR") && line.includes("message=kept"))).toBe(true)
      }))
  })

  it.effect("layer wraps the Llm in context", () => {
    const { layer, lines } = capture()
    return Llm.complete(ask).pipe(
      Effect.provide(Logging.layer().pipe(Layer.provide(Logging.layerAttempt()), Layer.provide(LlmMock.layerEcho()))),
      Effect.provide(layer),
      Effect.andThen(() => {
        expect(calls(lines)).toHaveLength(1)
      })
    )
  })
})
