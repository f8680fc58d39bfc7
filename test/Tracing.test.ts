import { describe, expect, it } from "@effect/vitest"
import { ConfigProvider, Duration, Effect, Exit, Fiber, Layer, Option, Redacted, Stream, TestClock, type Tracer } from "effect"
import * as Llm from "../src/Llm.js"
import * as LlmMock from "../src/LlmMock.js"
import type * as LlmRequest from "../src/LlmRequest.js"
import * as Retry from "../src/Retry.js"
import * as Tracing from "../src/Tracing.js"
import { recording } from "./recordingTracer.js"

const named = (spans: ReadonlyArray<Tracer.Span>, name: string) => spans.filter((span) => span.name === name)

const parentOf = (span: Tracer.Span) => Option.getOrUndefined(span.parent)

const ask: LlmRequest.LlmRequest = {
  provider: "openai",
  model: "gpt-4o-mini",
  messages: [{ role: "user", content: "hello there" }],
  maxTokens: 64,
  temperature: 0.3
}

const answer = LlmMock.reply("hi you", {
  id: "chatcmpl-42",
  model: "gpt-4o-mini-2024-07-18",
  usage: { inputTokens: 2, outputTokens: 2, totalTokens: 4, cachedInputTokens: 1, reasoningTokens: 0 }
})

/** A service over a scripted mock with the given policies, the first outermost. */
const stack = (script: ReadonlyArray<LlmMock.Step>, ...policies: ReadonlyArray<Effect.Effect<Llm.Policy>>) =>
  Effect.gen(function* () {
    const mock = yield* LlmMock.make(script)
    return Llm.fromCall(Llm.compose(mock.call, yield* Effect.all(policies)))
  })

const perCall = Tracing.make()
const perAttempt = Tracing.make({ level: "attempt" })

describe("Tracing.make spans for complete", () => {
  it.effect("opens one client span named chat {model} with request and response attributes", () =>
    Effect.gen(function* () {
      const { spans, tracer } = yield* recording
      const llm = yield* stack([answer], perCall)
      yield* llm.complete(ask).pipe(Effect.withTracer(tracer))
      const [span] = named(spans, "chat gpt-4o-mini")
      expect(span).toBeDefined()
      expect(span!.kind).toBe("client")
      expect(Object.fromEntries(span!.attributes)).toMatchObject({
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": "openai",
        "gen_ai.request.model": "gpt-4o-mini",
        "gen_ai.request.max_tokens": 64,
        "gen_ai.request.temperature": 0.3,
        "gen_ai.response.model": "gpt-4o-mini-2024-07-18",
        "gen_ai.response.id": "chatcmpl-42",
        "gen_ai.response.finish_reasons": ["stop"],
        "gen_ai.usage.input_tokens": 2,
        "gen_ai.usage.output_tokens": 2,
        "gen_ai.usage.cache_read.input_tokens": 1,
        "gen_ai.usage.reasoning.output_tokens": 0
      })
      expect(span!.status._tag).toBe("Ended")
      expect(span!.attributes.has("error.type")).toBe(false)
    }))

  it.effect("names the span chat when the request names no model", () =>
    Effect.gen(function* () {
      const { spans, tracer } = yield* recording
      const llm = yield* stack([answer], perCall)
      yield* llm.complete({ messages: ask.messages }).pipe(Effect.withTracer(tracer))
      expect(named(spans, "chat")).toHaveLength(1)
    }))

  it.effect("sets error.type to the error tag and ends the span with the failure", () =>
    Effect.gen(function* () {
      const { spans, tracer } = yield* recording
      const llm = yield* stack([LlmMock.fail("AuthenticationError", { status: 401 })], perCall)
      const error = yield* Effect.flip(llm.complete(ask).pipe(Effect.withTracer(tracer)))
      expect(error._tag).toBe("AuthenticationError")
      const [span] = named(spans, "chat gpt-4o-mini")
      expect(span!.attributes.get("error.type")).toBe("AuthenticationError")
      expect(span!.status._tag === "Ended" && Exit.isFailure(span!.status.exit)).toBe(true)
    }))

  it.effect("is the parent of spans the caller's code opens around it", () =>
    Effect.gen(function* () {
      const { spans, tracer } = yield* recording
      const llm = yield* stack([answer], perCall)
      yield* llm.complete(ask).pipe(Effect.withSpan("debate.turn"), Effect.withTracer(tracer))
      const [turn] = named(spans, "debate.turn")
      const [chat] = named(spans, "chat gpt-4o-mini")
      expect(parentOf(chat!)).toBe(turn)
    }))
})

describe("Tracing.make under Effect's built-in tracer", () => {
  it.effect("makes no span, so the provider sees the caller's parent span", () =>
    Effect.gen(function* () {
      const seen: Array<string | undefined> = []
      const provider: Llm.Call = (request, mode) =>
        Effect.flatten(
          Effect.map(Effect.currentParentSpan.pipe(Effect.option), (parent) => {
            seen.push(Option.isSome(parent) && parent.value._tag === "Span" ? parent.value.name : undefined)
            return LlmMock.echo().call(request, mode)
          })
        )
      const llm = Llm.fromCall(Llm.compose(provider, yield* Effect.all([perCall, perAttempt])))
      yield* llm.complete(ask)
      yield* llm.complete(ask).pipe(Effect.withSpan("debate.turn"))
      expect(seen).toEqual([undefined, "debate.turn"])
    }))
})

describe("Tracing.make spans per attempt", () => {
  it.effect("opens one numbered child span per attempt under the call span", () =>
    Effect.gen(function* () {
      const { spans, tracer } = yield* recording
      const llm = yield* stack(
        [LlmMock.fail("ServerError", { status: 503 }), LlmMock.fail("OverloadedError"), answer],
        perCall,
        Retry.make({ maxRetries: 3 }),
        perAttempt
      )
      const fiber = yield* Effect.fork(llm.complete(ask).pipe(Effect.withTracer(tracer)))
      yield* TestClock.adjust(Duration.minutes(1))
      yield* Fiber.join(fiber)
      const [call] = named(spans, "chat gpt-4o-mini")
      const attempts = named(spans, "llm.attempt")
      expect(attempts.map((span) => span.attributes.get("llm.attempt.number"))).toEqual([1, 2, 3])
      expect(attempts.map((span) => span.attributes.get("error.type"))).toEqual(["ServerError", "OverloadedError", undefined])
      for (const attempt of attempts) expect(parentOf(attempt)).toBe(call)
      expect(attempts[2]!.attributes.get("gen_ai.response.id")).toBe("chatcmpl-42")
      expect(call!.attributes.has("error.type")).toBe(false)
    }))

  it.effect("numbers attempts from 1 again for the next call", () =>
    Effect.gen(function* () {
      const { spans, tracer } = yield* recording
      const llm = yield* stack([answer, answer], perCall, perAttempt)
      yield* Effect.withTracer(Effect.zipRight(llm.complete(ask), llm.complete(ask)), tracer)
      expect(named(spans, "llm.attempt").map((span) => span.attributes.get("llm.attempt.number"))).toEqual([1, 1])
    }))

  it.effect("numbers stream attempts retried before their first event", () =>
    Effect.gen(function* () {
      const { spans, tracer } = yield* recording
      const llm = yield* stack([LlmMock.fail("ConnectionError"), answer], perCall, Retry.make({ maxRetries: 2 }), perAttempt)
      const fiber = yield* Effect.fork(Stream.runCollect(llm.stream(ask)).pipe(Effect.withTracer(tracer)))
      yield* TestClock.adjust(Duration.minutes(1))
      yield* Fiber.join(fiber)
      const [call] = named(spans, "chat gpt-4o-mini")
      const attempts = named(spans, "llm.attempt")
      expect(attempts.map((span) => span.attributes.get("llm.attempt.number"))).toEqual([1, 2])
      for (const attempt of attempts) expect(parentOf(attempt)).toBe(call)
    }))
})

describe("Tracing.make spans for stream", () => {
  it.effect("covers the whole stream and takes the response attributes from Finish", () =>
    Effect.gen(function* () {
      const { spans, tracer } = yield* recording
      const llm = yield* stack([answer], perCall)
      const events = yield* Stream.runCollect(llm.stream(ask)).pipe(Effect.withTracer(tracer))
      expect(events.length).toBe(3)
      const [span] = named(spans, "chat gpt-4o-mini")
      expect(span!.status._tag).toBe("Ended")
      expect(Object.fromEntries(span!.attributes)).toMatchObject({
        "gen_ai.response.id": "chatcmpl-42",
        "gen_ai.response.finish_reasons": ["stop"],
        "gen_ai.usage.output_tokens": 2
      })
    }))

  it.effect("sets error.type when the stream fails mid-way", () =>
    Effect.gen(function* () {
      const { spans, tracer } = yield* recording
      const llm = yield* stack([LlmMock.chunks(["a", "b"], { error: "ConnectionError" })], perCall)
      yield* Effect.flip(Stream.runDrain(llm.stream(ask)).pipe(Effect.withTracer(tracer)))
      const [span] = named(spans, "chat gpt-4o-mini")
      expect(span!.attributes.get("error.type")).toBe("ConnectionError")
      expect(span!.status._tag === "Ended" && Exit.isFailure(span!.status.exit)).toBe(true)
    }))
})

describe("Tracing layers", () => {
  it.effect("layer wraps the Llm in context, at the call and at the attempt level", () =>
    Effect.gen(function* () {
      const { spans, tracer } = yield* recording
      yield* Llm.complete(ask).pipe(
        Effect.provide(Tracing.layer().pipe(Layer.provide(Tracing.layer({ level: "attempt" })), Layer.provide(LlmMock.layerEcho()))),
        Effect.withTracer(tracer)
      )
      expect(named(spans, "chat gpt-4o-mini")).toHaveLength(1)
      expect(parentOf(named(spans, "llm.attempt")[0]!)).toBe(named(spans, "chat gpt-4o-mini")[0])
    }))

  it.effect("config reads the provider keys of the environment as the secrets to scrub", () =>
    Effect.gen(function* () {
      const options = yield* Tracing.config
      expect(options.secrets?.map(Redacted.value)).toEqual(["sk-ant-one-two-three", "house-key-1234"])
    }).pipe(
      Effect.withConfigProvider(
        ConfigProvider.fromMap(
          new Map([
            ["ANTHROPIC_API_KEY", "sk-ant-one-two-three"],
            ["OPENAI_COMPATIBLE_NAME", "house"],
            ["OPENAI_COMPATIBLE_BASE_URL", "http://127.0.0.1:9/v1"],
            ["OPENAI_COMPATIBLE_API_KEY", "house-key-1234"]
          ])
        )
      )
    ))

  it.effect("layerConfig scrubs the provider keys of the environment from errors", () =>
    Effect.gen(function* () {
      const secrets = yield* Tracing.secretsConfig
      expect(secrets).toHaveLength(1)
      const error = yield* Effect.flip(Llm.complete(ask))
      expect(error.message).not.toContain("plain-key-without-shape")
    }).pipe(
      Effect.provide(
        Tracing.layerConfig.pipe(
          Layer.provide(LlmMock.layer([LlmMock.fail("ConnectionError", { message: "socket closed, key plain-key-without-shape" })]))
        )
      ),
      Effect.withConfigProvider(
        ConfigProvider.fromMap(new Map([["OPENAI_API_KEY", "plain-key-without-shape"]]))
      )
    ))
})
