import { afterEach, describe, expect, it, vi } from "@effect/vitest"
import {
  ConfigProvider,
  Duration,
  Effect,
  Equal,
  Fiber,
  FiberRef,
  HashMap,
  type HashSet,
  Layer,
  Logger,
  LogLevel,
  Stream,
  TestClock
} from "effect"
import * as Llm from "../src/Llm.js"
import * as LlmMock from "../src/LlmMock.js"
import type * as LlmRequest from "../src/LlmRequest.js"
import * as Logging from "../src/Logging.js"
import * as Pricing from "../src/Pricing.js"
import * as Retry from "../src/Retry.js"
import * as Tracing from "../src/Tracing.js"
import * as Usage from "../src/Usage.js"

interface Line {
  readonly level: string
  readonly message: string
  readonly fields: Record<string, unknown>
  readonly spans: ReadonlyArray<string>
}

// The application's logger: it keeps every line it is given, in place of the default one.
const capture = () => {
  const lines: Array<Line> = []
  const logger = Logger.make(({ annotations, logLevel, message, spans }) => {
    lines.push({
      level: logLevel.label,
      message: Array.isArray(message) ? message.join(" ") : String(message),
      fields: Object.fromEntries(HashMap.toEntries(annotations)),
      spans: [...spans].map((span) => span.label)
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

/** A service over a scripted mock with the given policies, the first outermost. */
const stack = (script: ReadonlyArray<LlmMock.Step>, ...policies: ReadonlyArray<Effect.Effect<Llm.Policy>>) =>
  Effect.gen(function* () {
    const mock = yield* LlmMock.make(script)
    return Llm.fromCall(Llm.compose(mock.call, yield* Effect.all(policies)))
  })

const runFor = <A, E>(effect: Effect.Effect<A, E>, time: Duration.DurationInput = Duration.minutes(1)) =>
  Effect.gen(function* () {
    const fiber = yield* Effect.fork(effect)
    yield* TestClock.adjust(time)
    return yield* Fiber.join(fiber)
  })

const debug = Logger.withMinimumLogLevel(LogLevel.Debug)

describe("Logging.make: one line per call", () => {
  it.effect("logs provider, model, outcome, latency, attempts, tokens, cost, request id and metadata", () => {
    const { layer, lines } = capture()
    return Effect.gen(function* () {
      const llm = yield* stack([paris], Logging.make())
      yield* runFor(llm.complete(ask))
      const [line, ...rest] = calls(lines)
      expect(rest).toHaveLength(0)
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
      expect(line!.fields).not.toHaveProperty("first_chunk_ms")
      expect(line!.fields).not.toHaveProperty("request_body")
      expect(line!.fields).not.toHaveProperty("response_body")
    }).pipe(Effect.provide(layer), debug)
  })

  it.effect("logs a failure with its tag, message, retryability and the provider's request id", () => {
    const { layer, lines } = capture()
    return Effect.gen(function* () {
      const llm = yield* stack(
        [LlmMock.fail("QuotaExceededError", { message: "You exceeded your current quota", requestId: "req_9" })],
        Logging.make()
      )
      yield* Effect.flip(llm.complete(ask))
      expect(calls(lines)[0]!.fields).toMatchObject({
        outcome: "failure",
        error_tag: "QuotaExceededError",
        error_message: "You exceeded your current quota",
        retryable: false,
        request_id: "req_9"
      })
    }).pipe(Effect.provide(layer), debug)
  })

  it.effect("logs a retried call once, with the attempts and the tokens of every attempt", () => {
    const { layer, lines } = capture()
    return Effect.gen(function* () {
      const llm = yield* stack(
        [LlmMock.fail("ServerError", { status: 502 }), LlmMock.fail("ConnectionError"), paris],
        Logging.make(),
        Retry.make({ maxRetries: 3 }),
        Logging.make({ level: "attempt" }),
        Usage.make()
      )
      yield* runFor(llm.complete(ask))
      const [line, ...rest] = calls(lines)
      expect(rest).toHaveLength(0)
      expect(line!.fields).toMatchObject({ outcome: "success", attempts: 3, input_tokens: 1_000, output_tokens: 200 })
    }).pipe(Effect.provide(layer), debug)
  })

  it.effect("logs a stream once when it ends, with the time to its first chunk", () => {
    const { layer, lines } = capture()
    return Effect.gen(function* () {
      const llm = yield* stack(
        [
          LlmMock.chunks(["a", "b", "c"], {
            latency: Duration.millis(100),
            chunkDelay: Duration.millis(50),
            usage: { inputTokens: 1, outputTokens: 3, totalTokens: 4 }
          })
        ],
        Logging.make()
      )
      yield* runFor(Stream.runDrain(llm.stream(ask)))
      const [line, ...rest] = calls(lines)
      expect(rest).toHaveLength(0)
      expect(line!.fields).toMatchObject({ operation: "stream", outcome: "success", output_tokens: 3, first_chunk_ms: 100, latency_ms: 200 })
    }).pipe(Effect.provide(layer), debug)
  })

  it.effect("logs an interrupted stream as interrupted, with its estimated usage", () => {
    const { layer, lines } = capture()
    return Effect.gen(function* () {
      const llm = yield* stack([LlmMock.chunks(["abcdefgh"], { hang: true })], Logging.make(), Usage.make())
      const fiber = yield* Effect.fork(Stream.runDrain(llm.stream(ask)))
      yield* TestClock.adjust(Duration.seconds(1))
      yield* Fiber.interrupt(fiber)
      expect(calls(lines)[0]!.fields).toMatchObject({ outcome: "interrupted", output_tokens: 2, usage_estimated: true })
    }).pipe(Effect.provide(layer), debug)
  })
})

describe("Logging.make: levels belong to the application", () => {
  it.effect("carries the application's own log annotations and log spans", () => {
    const { layer, lines } = capture()
    return Effect.gen(function* () {
      const llm = yield* stack([LlmMock.reply("ok")], Logging.make({ callLevel: "info" }))
      yield* llm.complete(ask).pipe(Effect.annotateLogs("debate_id", "d-42"), Effect.withLogSpan("turn"))
      expect(calls(lines)[0]).toMatchObject({ fields: { debate_id: "d-42", outcome: "success" }, spans: ["turn"] })
    }).pipe(Effect.provide(layer))
  })

  it.effect("logs the call line at debug by default", () => {
    const { layer, lines } = capture()
    return Effect.gen(function* () {
      const llm = yield* stack([LlmMock.reply("ok")], Logging.make())
      yield* llm.complete(ask)
      expect(calls(lines).map((line) => line.level)).toEqual(["DEBUG"])
    }).pipe(Effect.provide(layer), debug)
  })

  it.effect("logs the call line at info with callLevel: info", () => {
    const { layer, lines } = capture()
    return Effect.gen(function* () {
      const llm = yield* stack([LlmMock.reply("ok")], Logging.make({ callLevel: "info" }))
      yield* llm.complete(ask)
      expect(calls(lines).map((line) => line.level)).toEqual(["INFO"])
    }).pipe(Effect.provide(layer), debug)
  })

  it.effect("emits no default call line when the application's minimum level is Info", () => {
    const { layer, lines } = capture()
    return Effect.gen(function* () {
      const llm = yield* stack([LlmMock.reply("ok"), LlmMock.reply("ok")], Logging.make(), Logging.make({ callLevel: "info" }))
      yield* llm.complete(ask)
      // only the info line of the inner policy is kept
      expect(calls(lines).map((line) => line.level)).toEqual(["INFO"])
    }).pipe(Effect.provide(layer), Logger.withMinimumLogLevel(LogLevel.Info))
  })

  it.effect("drops its debug and info lines with minimumLevel: warn, while the application's own info line appears", () => {
    const { layer, lines } = capture()
    return Effect.gen(function* () {
      const llm = yield* stack(
        [LlmMock.reply("ok")],
        Logging.make({ callLevel: "info", minimumLevel: "warn" }),
        Logging.make({ level: "attempt", minimumLevel: "warn" })
      )
      yield* llm.complete(ask)
      yield* Effect.logInfo("the application's own line")
      expect(lines.map((line) => [line.level, line.message])).toEqual([["INFO", "the application's own line"]])
    }).pipe(Effect.provide(layer), debug)
  })

  it.effect("keeps its info line with minimumLevel: info and drops the debug attempt lines", () => {
    const { layer, lines } = capture()
    return Effect.gen(function* () {
      const llm = yield* stack(
        [LlmMock.reply("ok")],
        Logging.make({ callLevel: "info", minimumLevel: "info" }),
        Logging.make({ level: "attempt", minimumLevel: "info" })
      )
      yield* llm.complete(ask)
      expect(lines.map((line) => [line.level, line.message])).toEqual([["INFO", "llm call"]])
    }).pipe(Effect.provide(layer), debug)
  })

  it.effect("leaves the application's Logger and minimum level as it set them, around and inside the call", () => {
    const { layer, lines } = capture()
    return Effect.gen(function* () {
      const before = { loggers: yield* FiberRef.get(FiberRef.currentLoggers), level: yield* FiberRef.get(FiberRef.currentMinimumLogLevel) }
      const seen: Array<{ loggers: HashSet.HashSet<Logger.Logger<unknown, unknown>>; level: LogLevel.LogLevel }> = []
      const provider: Llm.Call = (request, mode) =>
        Effect.flatten(
          Effect.gen(function* () {
            seen.push({ loggers: yield* FiberRef.get(FiberRef.currentLoggers), level: yield* FiberRef.get(FiberRef.currentMinimumLogLevel) })
            return LlmMock.echo().call(request, mode)
          })
        )
      const policies = yield* Effect.all([
        Logging.make({ callLevel: "info", minimumLevel: "warn" }),
        Tracing.make(),
        Retry.make(),
        Logging.make({ level: "attempt" }),
        Tracing.make({ level: "attempt" }),
        Usage.make()
      ])
      const llm = Llm.fromCall(Llm.compose(provider, policies))
      yield* llm.complete(ask)
      yield* Stream.runDrain(llm.stream(ask))
      yield* Llm.complete(ask).pipe(
        Effect.provide(Logging.layerConfig.pipe(Layer.provide(Layer.succeed(Llm.Llm, llm)))),
        Effect.withConfigProvider(ConfigProvider.fromMap(new Map([["LLM_LOG_LEVEL", "error"]])))
      )
      const after = { loggers: yield* FiberRef.get(FiberRef.currentLoggers), level: yield* FiberRef.get(FiberRef.currentMinimumLogLevel) }
      expect(seen).toHaveLength(3)
      for (const state of [...seen, after]) {
        expect(Equal.equals(state.loggers, before.loggers)).toBe(true)
        expect(state.level).toBe(LogLevel.Warning)
      }
      // the application's own warn line still goes through its logger
      yield* Effect.logWarning("the application's warning")
      expect(lines.map((line) => line.message)).toEqual(["the application's warning"])
    }).pipe(Effect.provide(layer), Logger.withMinimumLogLevel(LogLevel.Warning))
  })
})

describe("Logging.make with level: attempt", () => {
  it.effect("numbers the attempts and logs each one's outcome at debug", () => {
    const { layer, lines } = capture()
    return Effect.gen(function* () {
      const llm = yield* stack(
        [LlmMock.fail("OverloadedError"), paris],
        Logging.make(),
        Retry.make({ maxRetries: 3 }),
        Logging.make({ level: "attempt" })
      )
      yield* runFor(llm.complete(ask))
      const lined = attempts(lines)
      expect(lined.map((line) => line.level)).toEqual(["DEBUG", "DEBUG"])
      expect(lined.map((line) => [line.fields.attempt, line.fields.outcome, line.fields.error_tag])).toEqual([
        [1, "failure", "OverloadedError"],
        [2, "success", undefined]
      ])
      expect(calls(lines)[0]!.fields.attempts).toBe(2)
    }).pipe(Effect.provide(layer), debug)
  })

  it.effect("keeps attempt lines at debug when the call line is at info", () => {
    const { layer, lines } = capture()
    return Effect.gen(function* () {
      const llm = yield* stack([paris], Logging.make({ callLevel: "info" }), Logging.make({ level: "attempt", callLevel: "info" }))
      yield* runFor(llm.complete(ask))
      expect(lines.map((line) => [line.message, line.level])).toEqual([
        ["llm attempt", "DEBUG"],
        ["llm call", "INFO"]
      ])
    }).pipe(Effect.provide(layer), debug)
  })
})

describe("Logging bodies", () => {
  it.effect("logs request and response bodies only when enabled, truncated", () => {
    const { layer, lines } = capture()
    return Effect.gen(function* () {
      const long = "x".repeat(300)
      yield* Effect.flatMap(stack([LlmMock.reply(long)], Logging.make()), (llm) => llm.complete(ask))
      yield* Effect.flatMap(stack([LlmMock.reply(long)], Logging.make({ bodies: true, maxBodyChars: 100 })), (llm) =>
        llm.complete(ask)
      )
      const [off, on] = calls(lines)
      expect(off!.fields).not.toHaveProperty("response_body")
      expect(on!.fields.response_body).toBe(`${"x".repeat(100)}… (200 more characters)`)
      expect(String(on!.fields.request_body)).toContain("What is the capital of France?")
    }).pipe(Effect.provide(layer), debug)
  })

  it.effect("logs the streamed text as the response body of a stream", () => {
    const { layer, lines } = capture()
    return Effect.gen(function* () {
      const llm = yield* stack([LlmMock.reply("one two three")], Logging.make({ bodies: true }))
      yield* Stream.runDrain(llm.stream(ask))
      expect(calls(lines)[0]!.fields).toMatchObject({ operation: "stream", outcome: "success", response_body: "one two three" })
    }).pipe(Effect.provide(layer), debug)
  })
})

describe("Logging.config and layers", () => {
  const env = (entries: Record<string, string>) =>
    Effect.withConfigProvider(ConfigProvider.fromMap(new Map(Object.entries(entries))))

  it.effect("defaults to no filter of its own, call lines at debug and no bodies", () =>
    Effect.gen(function* () {
      expect(yield* Logging.config).toEqual({
        minimumLevel: "trace",
        callLevel: "debug",
        bodies: false,
        prices: Pricing.defaults,
        secrets: []
      })
    }).pipe(env({})))

  it.effect("reads LLM_LOG_LEVEL, LLM_LOG_CALL_LEVEL and LLM_LOG_BODIES, in any case", () =>
    Effect.gen(function* () {
      expect(yield* Logging.config).toMatchObject({ minimumLevel: "warn", callLevel: "info", bodies: true })
    }).pipe(env({ LLM_LOG_LEVEL: "WARN", LLM_LOG_CALL_LEVEL: "Info", LLM_LOG_BODIES: "true" })))

  it.effect("rejects an unknown level with a ConfigError naming the variable", () =>
    Effect.gen(function* () {
      expect(String(yield* Effect.flip(Logging.config.pipe(env({ LLM_LOG_LEVEL: "loud" }))))).toContain("LLM_LOG_LEVEL")
      expect(String(yield* Effect.flip(Logging.config.pipe(env({ LLM_LOG_CALL_LEVEL: "warn" }))))).toContain(
        "LLM_LOG_CALL_LEVEL"
      )
      expect(String(yield* Effect.flip(Logging.formatConfig.pipe(env({ LLM_LOG_FORMAT: "xml" }))))).toContain(
        "LLM_LOG_FORMAT"
      )
    }))

  it.effect("reads LLM_LOG_FORMAT for layerLogger only", () =>
    Effect.gen(function* () {
      expect(yield* Logging.formatConfig.pipe(env({ LLM_LOG_FORMAT: "json" }))).toBe("json")
      expect(yield* Logging.formatConfig.pipe(env({}))).toBeUndefined()
      expect(yield* Logging.config.pipe(env({ LLM_LOG_FORMAT: "json" }))).not.toHaveProperty("format")
    }))

  it.effect("layerConfig logs as the environment says, through the application's logger", () => {
    const { layer, lines } = capture()
    return Llm.complete(ask).pipe(
      Effect.provide(Logging.layerConfig.pipe(Layer.provide(LlmMock.layerEcho()))),
      env({ LLM_LOG_CALL_LEVEL: "info", LLM_LOG_BODIES: "true" }),
      Effect.provide(layer),
      Effect.andThen(() => {
        expect(calls(lines)).toHaveLength(1)
        expect(calls(lines)[0]).toMatchObject({
          level: "INFO",
          fields: { outcome: "success", "metadata.agent": "moderator", response_body: "echo: What is the capital of France?" }
        })
      })
    )
  })

  it.effect("layer wraps the Llm in context", () => {
    const { layer, lines } = capture()
    return Llm.complete(ask).pipe(
      Effect.provide(Logging.layer({ callLevel: "info" }).pipe(Layer.provide(LlmMock.layerEcho()))),
      Effect.provide(layer),
      Effect.andThen(() => {
        expect(calls(lines)).toHaveLength(1)
      })
    )
  })
})

describe("Logging.layerLogger: a logger for programs that ask for one", () => {
  afterEach(() => {
    vi.restoreAllMocks()
  })

  const printedTo = (method: "log" | "error") => {
    const printed: Array<string> = []
    const keep = (line?: unknown) => {
      printed.push(String(line))
    }
    if (method === "log") vi.spyOn(console, "log").mockImplementation(keep)
    else vi.spyOn(console, "error").mockImplementation(keep)
    return printed
  }

  it.effect("installs Effect's json logger and the level asked for", () =>
    Effect.gen(function* () {
      const printed = printedTo("log")
      yield* Effect.logDebug("shown").pipe(Effect.provide(Logging.layerLogger({ format: "json", level: "debug" })))
      yield* Effect.logInfo("hidden").pipe(Effect.provide(Logging.layerLogger({ format: "json", level: "error" })))
      expect(printed.map((line) => (JSON.parse(line) as { message: string }).message)).toEqual(["shown"])
    }))

  it.effect("writes logfmt lines to standard error with stderr: true", () =>
    Effect.gen(function* () {
      const out = printedTo("log")
      const err = printedTo("error")
      yield* Effect.logWarning("to stderr").pipe(Effect.provide(Logging.layerLogger({ format: "logfmt", stderr: true })))
      expect(out).toEqual([])
      expect(err.some((line) => line.includes("level=WARN") && line.includes('message="to stderr"'))).toBe(true)
    }))

  it.effect("keeps the program's logger and level when given neither", () => {
    const { layer, lines } = capture()
    return Effect.gen(function* () {
      yield* Effect.logInfo("kept").pipe(Effect.provide(Logging.layerLogger({})))
      expect(lines.map((line) => line.message)).toEqual(["kept"])
    }).pipe(Effect.provide(layer))
  })
})
