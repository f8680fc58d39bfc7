import { describe, expect, it } from "@effect/vitest"
import {
  Context,
  Duration,
  Effect,
  Fiber,
  FiberRef,
  FiberRefs,
  HashMap,
  Logger,
  LogLevel,
  Option,
  Stream,
  TestClock,
  Tracer
} from "effect"
import * as Instrument from "../src/internal/instrument.js"
import * as Llm from "../src/Llm.js"
import * as LlmMock from "../src/LlmMock.js"
import type * as LlmRequest from "../src/LlmRequest.js"
import * as Logging from "../src/Logging.js"
import * as Retry from "../src/Retry.js"
import * as Tracing from "../src/Tracing.js"
import { recording } from "./recordingTracer.js"

interface Line {
  readonly message: string
  readonly fields: Record<string, unknown>
  /** The span in the fiber's context when the line was logged, as a log exporter sees it. */
  readonly span: string | undefined
}

const capture = () => {
  const lines: Array<Line> = []
  const logger = Logger.make(({ annotations, context, message }) => {
    const parent = Context.getOption(FiberRefs.getOrDefault(context, FiberRef.currentContext), Tracer.ParentSpan)
    lines.push({
      message: Array.isArray(message) ? message.join(" ") : String(message),
      fields: Object.fromEntries(HashMap.toEntries(annotations)),
      span: Option.isSome(parent) && parent.value._tag === "Span" ? parent.value.name : undefined
    })
  })
  return { lines, logger: Logger.replace(Logger.defaultLogger, logger) }
}

const ask: LlmRequest.LlmRequest = { provider: "openai", model: "gpt-4o-mini", messages: [{ role: "user", content: "hi" }] }

const flaky = [
  LlmMock.fail("ServerError", { status: 500 }),
  LlmMock.fail("OverloadedError"),
  LlmMock.reply("hello", { usage: { inputTokens: 3, outputTokens: 2, totalTokens: 5 } })
]

/** A service over a scripted mock with the given policies, the first outermost. */
const stack = (script: ReadonlyArray<LlmMock.Step>, ...policies: ReadonlyArray<Effect.Effect<Llm.Policy> | Llm.Policy>) =>
  Effect.gen(function* () {
    const mock = yield* LlmMock.make(script)
    const built: Array<Llm.Policy> = []
    for (const policy of policies) built.push(Effect.isEffect(policy) ? yield* policy : policy)
    return Llm.fromCall(Llm.compose(mock.call, built))
  })

const both = { trace: true, log: {} }

const retried = <A, E>(effect: Effect.Effect<A, E>) =>
  Effect.gen(function* () {
    const fiber = yield* Effect.fork(effect)
    yield* TestClock.adjust(Duration.minutes(1))
    return yield* Fiber.join(fiber)
  })

describe("Instrument: span and log line in one pass", () => {
  it.effect("logs each line inside its own span, so log records carry the call and attempt spans", () => {
    const { lines, logger } = capture()
    return Effect.gen(function* () {
      const { spans, tracer } = yield* recording
      const llm = yield* stack(
        flaky,
        Instrument.make({ level: "call", ...both }),
        Retry.make({ maxRetries: 3 }),
        Instrument.make({ level: "attempt", ...both })
      )
      yield* retried(llm.complete(ask).pipe(Effect.withTracer(tracer)))
      const call = lines.filter((line) => line.message === "llm call")
      const attempts = lines.filter((line) => line.message === "llm attempt")
      expect(call).toHaveLength(1)
      expect(call[0]!.span).toBe("chat gpt-4o-mini")
      expect(call[0]!.fields.attempts).toBe(3)
      expect(attempts.map((line) => [line.fields.attempt, line.span])).toEqual([
        [1, "llm.attempt"],
        [2, "llm.attempt"],
        [3, "llm.attempt"]
      ])
      const attemptSpans = spans.filter((span) => span.name === "llm.attempt")
      expect(attemptSpans.map((span) => span.attributes.get("llm.attempt.number"))).toEqual([1, 2, 3])
      const callSpan = spans.find((span) => span.name === "chat gpt-4o-mini")
      for (const span of attemptSpans) expect(Option.getOrUndefined(span.parent)).toBe(callSpan)
    }).pipe(Effect.provide(logger), Logger.withMinimumLogLevel(LogLevel.Debug))
  })

  it.effect("numbers attempts once when separate tracing and logging instruments sit around the same attempt", () => {
    const { lines, logger } = capture()
    return Effect.gen(function* () {
      const { spans, tracer } = yield* recording
      const llm = yield* stack(
        flaky,
        Logging.make(),
        Tracing.make(),
        Retry.make({ maxRetries: 3 }),
        Tracing.make({ level: "attempt" }),
        Logging.make({ level: "attempt" })
      )
      yield* retried(llm.complete(ask).pipe(Effect.withTracer(tracer)))
      expect(lines.filter((line) => line.message === "llm attempt").map((line) => line.fields.attempt)).toEqual([1, 2, 3])
      expect(
        spans.filter((span) => span.name === "llm.attempt").map((span) => span.attributes.get("llm.attempt.number"))
      ).toEqual([1, 2, 3])
      expect(lines.find((line) => line.message === "llm call")?.fields.attempts).toBe(3)
    }).pipe(Effect.provide(logger), Logger.withMinimumLogLevel(LogLevel.Debug))
  })

  it.effect("logs the lines of separate logging policies inside the spans of the tracing policies around them", () => {
    const { lines, logger } = capture()
    return Effect.gen(function* () {
      const { tracer } = yield* recording
      const llm = yield* stack(
        flaky,
        Tracing.make(),
        Logging.make(),
        Retry.make({ maxRetries: 3 }),
        Tracing.make({ level: "attempt" }),
        Logging.make({ level: "attempt" })
      )
      yield* retried(Stream.runDrain(llm.stream(ask)).pipe(Effect.withTracer(tracer)))
      expect(lines.filter((line) => line.message.startsWith("llm ")).map((line) => [line.message, line.span])).toEqual([
        ["llm attempt", "llm.attempt"],
        ["llm attempt", "llm.attempt"],
        ["llm attempt", "llm.attempt"],
        ["llm call", "chat gpt-4o-mini"]
      ])
    }).pipe(Effect.provide(logger), Logger.withMinimumLogLevel(LogLevel.Debug))
  })

  it.effect("counts the attempts of a call even when the attempt lines are below the log level", () => {
    const { lines, logger } = capture()
    return Effect.gen(function* () {
      const llm = yield* stack(
        flaky,
        Logging.make({ callLevel: "info" }),
        Retry.make({ maxRetries: 3 }),
        Logging.make({ level: "attempt" })
      )
      yield* retried(llm.complete(ask))
      expect(lines.filter((line) => line.message === "llm attempt")).toHaveLength(0)
      expect(lines.find((line) => line.message === "llm call")?.fields.attempts).toBe(3)
    }).pipe(Effect.provide(logger))
  })

  it.effect("numbers the attempts of a retried stream and ends the stream's spans", () => {
    const { lines, logger } = capture()
    return Effect.gen(function* () {
      const { spans, tracer } = yield* recording
      const llm = yield* stack(
        [LlmMock.fail("ServerError", { status: 500 }), LlmMock.chunks(["a ", "b"])],
        Instrument.make({ level: "call", ...both }),
        Retry.make({ maxRetries: 3 }),
        Instrument.make({ level: "attempt", ...both })
      )
      const events = yield* retried(Stream.runCollect(llm.stream(ask)).pipe(Effect.withTracer(tracer)))
      expect([...events].map((event) => event._tag)).toEqual(["TextDelta", "TextDelta", "Finish"])
      expect(lines.filter((line) => line.message === "llm attempt").map((line) => line.fields.attempt)).toEqual([1, 2])
      expect(lines.find((line) => line.message === "llm call")?.fields).toMatchObject({ attempts: 2, outcome: "success" })
      expect(spans.map((span) => span.status._tag)).toEqual(["Ended", "Ended", "Ended"])
    }).pipe(Effect.provide(logger), Logger.withMinimumLogLevel(LogLevel.Debug))
  })
})

describe("Instrument: spans only for a tracer that exports them", () => {
  // What the provider sees as its parent span, if any.
  const parentSeen = Effect.gen(function* () {
    let seen: string | undefined = "not called"
    const provider: Llm.Call = (request) =>
      Llm.fromStream(Stream.fromEffect(
        Effect.map(Effect.serviceOption(Tracer.ParentSpan), (parent) => {
          seen = Option.isSome(parent) && parent.value._tag === "Span" ? parent.value.name : undefined
          return {
            _tag: "Finish" as const,
            id: "1",
            provider: request.provider ?? "openai",
            model: "m",
            finishReason: "stop" as const,
            usage: { inputTokens: 0, outputTokens: 0, totalTokens: 0 }
          }
        })
      ))
    const probe = Llm.fromCall(Instrument.make({ level: "call", trace: true })(provider))
    return { probe, seen: () => seen }
  })

  it.effect("makes no span under Effect's built-in tracer", () =>
    Effect.gen(function* () {
      const { probe, seen } = yield* parentSeen
      yield* probe.complete(ask)
      expect(seen()).toBeUndefined()
    }))

  it.effect("makes the call span under any other tracer", () =>
    Effect.gen(function* () {
      const { spans, tracer } = yield* recording
      const { probe, seen } = yield* parentSeen
      yield* probe.complete(ask).pipe(Effect.withTracer(tracer))
      expect(seen()).toBe("chat gpt-4o-mini")
      expect(spans.map((span) => span.name)).toEqual(["chat gpt-4o-mini"])
    }))
})
