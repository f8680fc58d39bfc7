/**
 * `@effect/ai` on `LlmLive`: `LanguageModel`, `Toolkit` and `Chat` through the real SDKs over real
 * HTTP against the simulator, with every policy of the composed stack.
 */
import { Chat, LanguageModel, Tool, Toolkit } from "@effect/ai"
import { describe, expect, it } from "@effect/vitest"
import { Chunk, ConfigProvider, Effect, Layer, Option, Schema, Stream } from "effect"
import * as Simulator from "../../simulator/Simulator.js"
import { liveEnv } from "./support.js"
import * as LlmLanguageModel from "../../src/LlmLanguageModel.js"
import * as LlmLive from "../../src/LlmLive.js"

const key = "sk-test-EFFECT-AI-7c2d9e4f1a"

const envFor = (sim: Simulator.Simulator, extra: Record<string, string> = {}) => liveEnv(sim, key, extra)

/** `@effect/ai`'s `LanguageModel` over `LlmLive.layer` read from `env`, for one provider. */
const model = (env: Map<string, string>, provider: "openai" | "anthropic") =>
  Layer.build(LlmLanguageModel.layerWith({ provider }).pipe(Layer.provide(LlmLive.layer))).pipe(
    Effect.map((context) => Effect.provide(context)),
    Effect.withConfigProvider(ConfigProvider.fromMap(env))
  )

const GetWeather = Tool.make("get_weather", {
  description: "The weather in a city",
  parameters: { city: Schema.String },
  success: Schema.Struct({ city: Schema.String, tempC: Schema.Number })
})
const Weather = Toolkit.make(GetWeather)

/** The toolkit with a handler that counts its runs. */
const weatherHandlers = (runs: { count: number }) =>
  Weather.toLayer({
    get_weather: ({ city }) => Effect.sync(() => ((runs.count += 1), { city, tempC: 4 }))
  })

const Verdict = Schema.Struct({ winner: Schema.String, margin: Schema.optional(Schema.Number) })

for (const provider of ["openai", "anthropic"] as const) {
  describe(`@effect/ai LanguageModel on ${provider}`, () => {
    it.scopedLive("generateText gives the answer's text, finish reason and usage", () =>
      Effect.gen(function* () {
        const sim = yield* Simulator.make()
        sim.enqueue(provider, { text: "hello from the simulator", usage: { inputTokens: 7, outputTokens: 4 } })
        const provide = yield* model(envFor(sim), provider)
        const response = yield* provide(LanguageModel.generateText({ prompt: "say hello" }))
        expect(response.text).toBe("hello from the simulator")
        expect(response.finishReason).toBe("stop")
        expect(response.usage).toMatchObject({ inputTokens: 7, outputTokens: 4 })
        expect(sim.requests()[0]?.route).toBe(provider)
      }))

    it.scopedLive("streamText streams text deltas between a start and an end, then the finish", () =>
      Effect.gen(function* () {
        const sim = yield* Simulator.make()
        sim.enqueue(provider, { text: "one two three" })
        const provide = yield* model(envFor(sim), provider)
        const parts = Chunk.toArray(yield* provide(Stream.runCollect(LanguageModel.streamText({ prompt: "count" }))))
        const types = parts.map((part) => part.type)
        expect(types[0]).toBe("text-start")
        expect(types.slice(-3)).toEqual(["text-end", "response-metadata", "finish"])
        const text = parts.map((part) => (part.type === "text-delta" ? part.delta : "")).join("")
        expect(text).toBe("one two three")
        expect(parts.at(-1)).toMatchObject({ type: "finish", reason: "stop" })
        expect(sim.requests()[0]?.body).toMatchObject({ stream: true })
      }))

    it.scopedLive("generateObject sends the schema and decodes the answer", () =>
      Effect.gen(function* () {
        const sim = yield* Simulator.make()
        // OpenAI's strict mode answers an absent optional property as null; it is read back as absent.
        sim.enqueue(provider, { text: JSON.stringify({ winner: "Ada", margin: null }) })
        const provide = yield* model(envFor(sim), provider)
        const response = yield* provide(LanguageModel.generateObject({ prompt: "who won?", schema: Verdict, objectName: "verdict" }))
        expect(response.value).toEqual({ winner: "Ada" })
        const body = sim.requests()[0]?.body as Record<string, unknown>
        // OpenAI names the schema; Anthropic's native output format takes the schema alone.
        const format = provider === "openai" ? body.response_format : body.output_config
        expect(JSON.stringify(format)).toContain(provider === "openai" ? '"name":"verdict"' : '"json_schema"')
        expect(JSON.stringify(format)).toContain('"winner"')
      }))

    it.scopedLive("a Toolkit with a handler completes a tool round, the result sent back to the model", () =>
      Effect.gen(function* () {
        const sim = yield* Simulator.make()
        sim.enqueue(
          provider,
          { toolCalls: [{ id: "call_oslo", name: "get_weather", arguments: { city: "Oslo" } }] },
          { text: "It is 4°C in Oslo." }
        )
        const runs = { count: 0 }
        const provide = yield* model(envFor(sim), provider)
        const answer = yield* provide(
          Effect.gen(function* () {
            const chat = yield* Chat.empty
            const first = yield* chat.generateText({ prompt: "What's the weather in Oslo?", toolkit: Weather })
            expect(first.toolCalls.map((call) => [call.name, call.params])).toEqual([["get_weather", { city: "Oslo" }]])
            expect(first.toolResults.map((result) => result.result)).toEqual([{ city: "Oslo", tempC: 4 }])
            expect(first.finishReason).toBe("tool-calls")
            return yield* chat.generateText({ prompt: "So?", toolkit: Weather })
          }).pipe(Effect.provide(weatherHandlers(runs)))
        )
        expect(answer.text).toBe("It is 4°C in Oslo.")
        expect(runs.count).toBe(1)
        const first = JSON.stringify(sim.requests()[0]?.body)
        expect(first).toContain("get_weather")
        expect(first).toContain("city")
        const second = JSON.stringify(sim.requests()[1]?.body)
        expect(second).toContain("call_oslo")
        expect(second).toContain("tempC")
      }))

    it.scopedLive("streamText with a toolkit streams the call's parameter deltas, then its result", () =>
      Effect.gen(function* () {
        const sim = yield* Simulator.make()
        sim.enqueue(provider, { toolCalls: [{ id: "call_bergen", name: "get_weather", arguments: { city: "Bergen" } }] })
        const runs = { count: 0 }
        const provide = yield* model(envFor(sim), provider)
        const parts = Chunk.toArray(
          yield* provide(
            Stream.runCollect(LanguageModel.streamText({ prompt: "Weather in Bergen?", toolkit: Weather })).pipe(
              Effect.provide(weatherHandlers(runs))
            )
          )
        )
        const types = parts.map((part) => part.type)
        expect(types).toContain("tool-params-start")
        expect(types).toContain("tool-params-end")
        const params = parts.map((part) => (part.type === "tool-params-delta" ? part.delta : "")).join("")
        expect(JSON.parse(params)).toEqual({ city: "Bergen" })
        expect(parts.find((part) => part.type === "tool-call")).toMatchObject({ id: "call_bergen", params: { city: "Bergen" } })
        expect(parts.find((part) => part.type === "tool-result")).toMatchObject({ id: "call_bergen", result: { city: "Bergen", tempC: 4 } })
        expect(runs.count).toBe(1)
      }))

    it.scopedLive("Chat holds a multi-turn conversation", () =>
      Effect.gen(function* () {
        const sim = yield* Simulator.make()
        sim.enqueue(provider, { text: "Nice to meet you, Ada." }, { text: "Your name is Ada." })
        const provide = yield* model(envFor(sim), provider)
        const answer = yield* provide(
          Effect.gen(function* () {
            const chat = yield* Chat.fromPrompt([{ role: "system", content: "You remember names." }])
            yield* chat.generateText({ prompt: "I am Ada." })
            return yield* chat.generateText({ prompt: "What is my name?" })
          })
        )
        expect(answer.text).toBe("Your name is Ada.")
        const second = JSON.stringify(sim.requests()[1]?.body)
        for (const said of ["You remember names.", "I am Ada.", "Nice to meet you, Ada.", "What is my name?"]) expect(second).toContain(said)
      }))
  })
}

describe("@effect/ai LanguageModel under the policies of Llm", () => {
  it.scopedLive("a 429 then a 500 are retried inside Llm: the caller sees one success and the handler runs once", () =>
    Effect.gen(function* () {
      const sim = yield* Simulator.make()
      sim.enqueue(
        "openai",
        { status: 429, headers: { "retry-after-ms": "10" } },
        { status: 500 },
        { toolCalls: [{ id: "call_1", name: "get_weather", arguments: { city: "Oslo" } }] }
      )
      const runs = { count: 0 }
      const provide = yield* model(envFor(sim), "openai")
      const response = yield* provide(
        LanguageModel.generateText({ prompt: "Weather in Oslo?", toolkit: Weather }).pipe(Effect.provide(weatherHandlers(runs)))
      )
      expect(response.toolResults.map((result) => result.result)).toEqual([{ city: "Oslo", tempC: 4 }])
      expect(sim.attempts("openai")).toBe(3)
      expect(runs.count).toBe(1)
    }))

  it.scopedLive("streamed, a 429 then a 529 are retried inside Llm too: one tool call, one handler run", () =>
    Effect.gen(function* () {
      const sim = yield* Simulator.make()
      sim.enqueue(
        "anthropic",
        { status: 429, headers: { "retry-after": "0" } },
        { status: 529 },
        { toolCalls: [{ id: "toolu_1", name: "get_weather", arguments: { city: "Oslo" } }] }
      )
      const runs = { count: 0 }
      const provide = yield* model(envFor(sim), "anthropic")
      const parts = Chunk.toArray(
        yield* provide(
          Stream.runCollect(LanguageModel.streamText({ prompt: "Weather in Oslo?", toolkit: Weather })).pipe(
            Effect.provide(weatherHandlers(runs))
          )
        )
      )
      expect(parts.filter((part) => part.type === "tool-call")).toHaveLength(1)
      expect(parts.filter((part) => part.type === "tool-result")).toHaveLength(1)
      expect(sim.attempts("anthropic")).toBe(3)
      expect(runs.count).toBe(1)
    }))

  it.scopedLive("an LlmError arrives as an AiError that keeps the original, its tag and retryable", () =>
    Effect.gen(function* () {
      const sim = yield* Simulator.make()
      sim.enqueue("openai", { status: 503 }, { status: 503 })
      const provide = yield* model(envFor(sim, { LLM_MAX_RETRIES: "1" }), "openai")
      const error = yield* Effect.flip(provide(LanguageModel.generateText({ prompt: "hi" })))
      expect(error._tag).toBe("UnknownError")
      const cause = Option.getOrThrow(LlmLanguageModel.llmError(error))
      expect(cause).toMatchObject({ _tag: "ServerError", status: 503, retryable: true, provider: "openai" })
      expect(LlmLanguageModel.isRetryable(error)).toBe(true)
      expect(sim.attempts("openai")).toBe(2)
      expect(JSON.stringify(error)).not.toContain(key)
    }))

  it.scopedLive("withDefaults sends the calls inside it to another provider and model", () =>
    Effect.gen(function* () {
      const sim = yield* Simulator.make()
      const provide = yield* model(envFor(sim), "openai")
      yield* provide(
        LanguageModel.generateText({ prompt: "hi" }).pipe(LlmLanguageModel.withDefaults({ provider: "anthropic", model: "claude-haiku-4-5" }))
      )
      yield* provide(LanguageModel.generateText({ prompt: "hi" }))
      expect(sim.requests().map((r) => r.route)).toEqual(["anthropic", "openai"])
      expect(sim.requests()[0]?.body).toMatchObject({ model: "claude-haiku-4-5" })
    }))

  it.scopedLive("a 401 is an AiError that is not retryable, and is not retried", () =>
    Effect.gen(function* () {
      const sim = yield* Simulator.make()
      sim.enqueue("anthropic", { status: 401 })
      const provide = yield* model(envFor(sim), "anthropic")
      const error = yield* Effect.flip(provide(Stream.runDrain(LanguageModel.streamText({ prompt: "hi" }))))
      expect(Option.map(LlmLanguageModel.llmError(error), (cause) => cause._tag)).toEqual(Option.some("AuthenticationError"))
      expect(LlmLanguageModel.isRetryable(error)).toBe(false)
      expect(sim.attempts("anthropic")).toBe(1)
    }))
})
