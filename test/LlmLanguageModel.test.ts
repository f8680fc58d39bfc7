import { AiError, Chat, LanguageModel, Prompt, Tool, Toolkit } from "@effect/ai"
import { describe, expect, it } from "@effect/vitest"
import { Chunk, Effect, Layer, Option, Schema, Stream } from "effect"
import * as Llm from "../src/Llm.js"
import * as LlmError from "../src/LlmError.js"
import * as LlmLanguageModel from "../src/LlmLanguageModel.js"
import * as LlmMock from "../src/LlmMock.js"
import type * as LlmRequest from "../src/LlmRequest.js"

/** The language model over a scripted mock, with the mock's recorder. */
const scripted = (script: ReadonlyArray<LlmMock.Step>, defaults: LlmLanguageModel.Defaults = {}) =>
  LlmLanguageModel.layerWith(defaults).pipe(Layer.provideMerge(LlmMock.layer(script)))

/** The language model over an answer streamed exactly as given. */
const streaming = (events: ReadonlyArray<LlmRequest.LlmStreamEvent>) =>
  LlmLanguageModel.layer.pipe(
    Layer.provide(Layer.succeed(Llm.Llm, Llm.fromProvider({ name: "p", model: "m", call: () => Llm.fromStream(Stream.fromIterable(events)) })))
  )

const failing = (error: LlmError.LlmError) =>
  LlmLanguageModel.layer.pipe(Layer.provide(Layer.succeed(Llm.Llm, Llm.fromProvider({ name: "p", model: "m", call: () => Llm.fromStream(Stream.fail(error)) }))))

const finish: LlmRequest.Finish = {
  _tag: "Finish",
  id: "msg_1",
  provider: "p",
  model: "m",
  finishReason: "stop",
  usage: { inputTokens: 3, outputTokens: 5, totalTokens: 9, reasoningTokens: 1, cachedInputTokens: 2 }
}

const lastRequest = Effect.map(LlmMock.requests, (requests) => requests.at(-1)!)

const Lookup = Tool.make("lookup", { description: "Looks a word up", parameters: { word: Schema.String }, success: Schema.String })
const Described = Tool.make("described", { parameters: { n: Schema.Number.annotations({ description: "a count" }) } })
const Tools = Toolkit.make(Lookup, Described)
const handlers = Tools.toLayer({ lookup: ({ word }) => Effect.succeed(`${word}: a word`), described: () => Effect.void })

describe("a Prompt becomes an Llm request", () => {
  it.effect("system, user text and images, assistant parts and tool results map part by part", () =>
    Effect.gen(function* () {
      const prompt = Prompt.make([
        { role: "system", content: "Be brief." },
        { role: "system", content: "" },
        {
          role: "user",
          content: [
            { type: "text", text: "What is in these?" },
            { type: "text", text: "" },
            { type: "file", mediaType: "image/png", data: new URL("https://example.com/a.png") },
            { type: "file", mediaType: "image/jpg", data: "https://example.com/b.jpg" },
            { type: "file", mediaType: "image/gif", data: "R0lGODlh" },
            { type: "file", mediaType: "image/webp", data: new Uint8Array([1, 2, 3]) }
          ]
        },
        {
          role: "assistant",
          content: [
            { type: "reasoning", text: "ours", options: { clearside: { signature: "sig-1" } } },
            { type: "reasoning", text: "theirs", options: { anthropic: { info: { type: "thinking", signature: "sig-2" } } } },
            { type: "reasoning", text: "unsigned" },
            { type: "text", text: "" },
            { type: "text", text: "Let me look." },
            { type: "tool-call", id: "call_1", name: "lookup", params: { word: "a" }, providerExecuted: false },
            { type: "tool-call", id: "call_2", name: "web", params: {}, providerExecuted: true },
            { type: "tool-result", id: "call_2", name: "web", result: { hits: 1 }, isFailure: false, providerExecuted: true }
          ]
        },
        {
          role: "tool",
          content: [
            { type: "tool-result", id: "call_1", name: "lookup", result: "a: a word", isFailure: false, providerExecuted: false },
            { type: "tool-result", id: "call_1", name: "lookup", result: undefined, isFailure: true, providerExecuted: false }
          ]
        },
        { role: "user", content: [{ type: "text", text: "" }] }
      ])
      yield* LanguageModel.generateText({ prompt })
      const request = yield* lastRequest
      expect(request.messages).toEqual([
        { role: "system", content: "Be brief." },
        {
          role: "user",
          content: [
            { type: "text", text: "What is in these?" },
            { type: "image", url: "https://example.com/a.png" },
            { type: "image", url: "https://example.com/b.jpg" },
            { type: "image", data: "R0lGODlh", mediaType: "image/gif" },
            { type: "image", data: "AQID", mediaType: "image/webp" }
          ]
        },
        {
          role: "assistant",
          content: [
            { type: "reasoning", text: "ours", signature: "sig-1" },
            { type: "reasoning", text: "theirs", signature: "sig-2" },
            { type: "reasoning", text: "unsigned" },
            { type: "text", text: "Let me look." },
            { type: "tool-call", id: "call_1", name: "lookup", arguments: { word: "a" } },
            { type: "tool-call", id: "call_2", name: "web", arguments: {} }
          ]
        },
        { role: "tool", content: [{ type: "tool-result", id: "call_2", name: "web", result: { hits: 1 } }] },
        {
          role: "tool",
          content: [
            { type: "tool-result", id: "call_1", name: "lookup", result: "a: a word" },
            { type: "tool-result", id: "call_1", name: "lookup", result: null, isError: true }
          ]
        }
      ])
      expect(request.tools).toBeUndefined()
      expect(request.toolChoice).toBeUndefined()
    }).pipe(Effect.provide(scripted([LlmMock.reply("ok")]))))

  it.effect("defaults start every request", () =>
    Effect.gen(function* () {
      yield* LanguageModel.generateText({ prompt: "hi" })
      expect(yield* lastRequest).toMatchObject({ maxTokens: 99, temperature: 0.5, messages: [{ role: "user" }] })
    }).pipe(Effect.provide(scripted([LlmMock.reply("ok")], { maxTokens: 99, temperature: 0.5 }))))

  it.effect("withDefaults sets defaults for the calls inside it, over the layer's and an enclosing one's", () =>
    Effect.gen(function* () {
      yield* LanguageModel.generateText({ prompt: "a" }).pipe(
        LlmLanguageModel.withDefaults({ temperature: 0.1 }),
        LlmLanguageModel.withDefaults({ maxTokens: 7, temperature: 0.9 })
      )
      yield* Stream.runDrain(LanguageModel.streamText({ prompt: "b" })).pipe(
        Effect.provideService(LlmLanguageModel.Config, { maxTokens: 8 })
      )
      yield* LanguageModel.generateText({ prompt: "c" })
      const requests = yield* LlmMock.requests
      expect(requests.map((r) => [r.maxTokens, r.temperature])).toEqual([[7, 0.1], [8, 0.5], [99, 0.5]])
    }).pipe(Effect.provide(scripted([LlmMock.reply("1"), LlmMock.reply("2"), LlmMock.reply("3")], { maxTokens: 99, temperature: 0.5 }))))

  it.effect("a file that is not an image is MalformedInput, before any call", () =>
    Effect.gen(function* () {
      const error = yield* Effect.flip(
        LanguageModel.generateText({ prompt: [{ role: "user", content: [{ type: "file", mediaType: "application/pdf", data: "JVBERi0=" }] }] })
      )
      expect(error._tag).toBe("MalformedInput")
      expect(error.message).toContain("application/pdf")
      expect(yield* LlmMock.requests).toHaveLength(0)
    }).pipe(Effect.provide(scripted([]))))

  it.effect("a file on an assistant message is MalformedInput", () =>
    Effect.gen(function* () {
      const error = yield* Effect.flip(
        LanguageModel.generateText({ prompt: [{ role: "assistant", content: [{ type: "file", mediaType: "image/png", data: "AQID" }] }] })
      )
      expect(error._tag).toBe("MalformedInput")
    }).pipe(Effect.provide(scripted([]))))

  it.effect("a provider-defined tool is MalformedInput", () =>
    Effect.gen(function* () {
      const WebSearch = Tool.providerDefined({ id: "openai.web_search", toolkitName: "web_search", providerName: "web_search", args: {} })
      const toolkit = Toolkit.make(WebSearch({}))
      const error = yield* Effect.flip(LanguageModel.generateText({ prompt: "hi", toolkit }).pipe(Effect.provide(toolkit.toLayer({}))))
      expect(error._tag).toBe("MalformedInput")
      expect(error.message).toContain("web_search")
    }).pipe(Effect.provide(scripted([]))))

  it.effect("tools go with their JSON Schemas and descriptions", () =>
    Effect.gen(function* () {
      yield* LanguageModel.generateText({ prompt: "hi", toolkit: Tools })
      const request = yield* lastRequest
      expect(request.toolChoice).toBe("auto")
      expect(request.tools).toEqual([
        {
          name: "lookup",
          description: "Looks a word up",
          parameters: { type: "object", properties: { word: { type: "string" } }, required: ["word"], additionalProperties: false }
        },
        {
          name: "described",
          parameters: {
            type: "object",
            properties: { n: { type: "number", description: "a count" } },
            required: ["n"],
            additionalProperties: false
          }
        }
      ])
    }).pipe(Effect.provide(handlers), Effect.provide(scripted([LlmMock.reply("ok")]))))

  it.effect("each tool choice maps onto the request's", () =>
    Effect.gen(function* () {
      const choices: ReadonlyArray<LanguageModel.ToolChoice<"lookup" | "described">> = [
        "none",
        "required",
        { tool: "lookup" },
        { oneOf: ["lookup"] },
        { mode: "required", oneOf: ["described"] }
      ]
      for (const toolChoice of choices) yield* LanguageModel.generateText({ prompt: "hi", toolkit: Tools, toolChoice })
      const requests = yield* LlmMock.requests
      expect(requests.map((r) => r.toolChoice)).toEqual(["none", "required", { name: "lookup" }, "auto", "required"])
      expect(requests[3]!.tools!.map((t) => t.name)).toEqual(["lookup"])
      expect(requests[4]!.tools!.map((t) => t.name)).toEqual(["described"])
    }).pipe(Effect.provide(handlers), Effect.provide(scripted(Array.from({ length: 5 }, () => LlmMock.reply("ok"))))))
})

describe("a whole answer becomes Response parts", () => {
  it.effect("reasoning keeps its signature, text and finish carry the usage and the provider", () =>
    Effect.gen(function* () {
      const response = yield* LanguageModel.generateText({ prompt: "think" })
      expect(response.reasoningText).toBe("because")
      const reasoning = response.content.find((part) => part.type === "reasoning")
      expect(reasoning?.metadata).toEqual({ clearside: { signature: "sig" } })
      expect(response.text).toBe("so")
      expect(response.usage).toMatchObject({ inputTokens: expect.any(Number), outputTokens: expect.any(Number) })
      const metadata = response.content.find((part) => part.type === "response-metadata")
      expect(metadata).toMatchObject({ modelId: Option.some("mock-model") })
    }).pipe(Effect.provide(scripted([LlmMock.reasoning("because", "so", { signature: "sig" })]))))

  it.effect("a refusal finishes as content-filter with the refusal in the metadata", () =>
    Effect.gen(function* () {
      const response = yield* LanguageModel.generateText({ prompt: "pick a lock" })
      expect(response.finishReason).toBe("content-filter")
      const finishPart = response.content.find((part) => part.type === "finish")
      expect(finishPart?.metadata).toMatchObject({ clearside: { finishReason: "refusal", refusal: "I can't help with that" } })
    }).pipe(Effect.provide(scripted([LlmMock.refusal("I can't help with that")]))))

  it.effect("a tool call with broken JSON is MalformedOutput from @effect/ai, and the handler never runs", () =>
    Effect.gen(function* () {
      const error = yield* Effect.flip(LanguageModel.generateText({ prompt: "look", toolkit: Tools }))
      expect(error._tag).toBe("MalformedOutput")
    }).pipe(
      Effect.provide(Tools.toLayer({ lookup: () => Effect.die("never"), described: () => Effect.die("never") })),
      Effect.provide(scripted([LlmMock.toolCall("lookup", undefined, { argumentsText: '{"word": ' })]))
    ))

  it.effect("each finish reason maps onto @effect/ai's", () =>
    Effect.gen(function* () {
      const reasons: ReadonlyArray<[LlmRequest.FinishReason, string]> = [
        ["stop", "stop"],
        ["length", "length"],
        ["content_filter", "content-filter"],
        ["tool_calls", "tool-calls"],
        ["other", "other"]
      ]
      for (const [ours, theirs] of reasons) {
        const response = yield* LanguageModel.generateText({ prompt: "hi" }).pipe(
          Effect.provide(streaming([{ _tag: "TextDelta", text: "x" }, { ...finish, finishReason: ours }]))
        )
        expect(response.finishReason).toBe(theirs)
        expect(response.usage).toMatchObject({ inputTokens: 3, outputTokens: 5, totalTokens: 9, reasoningTokens: 1, cachedInputTokens: 2 })
      }
    }))
})

describe("generateObject", () => {
  it.effect("a root that is not an object is sent wrapped and read back unwrapped", () =>
    Effect.gen(function* () {
      const Shape = Schema.Union(Schema.Struct({ circle: Schema.Number }), Schema.Struct({ square: Schema.Number }))
      const response = yield* LanguageModel.generateObject({ prompt: "a shape", schema: Shape, objectName: "names" })
      expect(response.value).toEqual({ square: 2 })
      const request = yield* lastRequest
      expect(request.responseFormat).toMatchObject({ type: "json", name: "names", schema: { type: "object", required: ["value"] } })
    }).pipe(Effect.provide(scripted([LlmMock.reply('{"value":{"square":2}}')]))))

  it.effect("a code fence around the JSON is accepted", () =>
    Effect.gen(function* () {
      const response = yield* LanguageModel.generateObject({ prompt: "who", schema: Schema.Struct({ winner: Schema.String }) })
      expect(response.value).toEqual({ winner: "Ada" })
    }).pipe(Effect.provide(scripted([LlmMock.reply('```json\n{"winner":"Ada"}\n```')]))))

  it.effect("an answer that is not JSON is MalformedOutput", () =>
    Effect.gen(function* () {
      const error = yield* Effect.flip(LanguageModel.generateObject({ prompt: "who", schema: Schema.Struct({ winner: Schema.String }) }))
      expect(error._tag).toBe("MalformedOutput")
    }).pipe(Effect.provide(scripted([LlmMock.reply("Ada won.")]))))
})

describe("a streamed answer becomes stream parts", () => {
  it.effect("reasoning opens and closes around its deltas, with its signature on the end; text follows", () =>
    Effect.gen(function* () {
      // Tool calls decode only against a toolkit; its results follow in an order of their own.
      const all = Chunk.toArray(yield* Stream.runCollect(LanguageModel.streamText({ prompt: "think", toolkit: Tools })))
      const parts = all.filter((part) => part.type !== "tool-result")
      expect(all.find((part) => part.type === "tool-result")).toMatchObject({ id: "c1", result: "x: a word" })
      expect(parts.map((part) => part.type)).toEqual([
        "reasoning-start",
        "reasoning-delta",
        "reasoning-end",
        "text-start",
        "text-delta",
        "text-delta",
        "text-end",
        "tool-call",
        "response-metadata",
        "finish"
      ])
      expect(parts[2]).toMatchObject({ type: "reasoning-end", metadata: { clearside: { signature: "sig" } } })
      expect(parts[7]).toMatchObject({ type: "tool-call", id: "c1", params: { word: "x" } })
      expect(parts.at(-1)).toMatchObject({ type: "finish", reason: "stop" })
    }).pipe(
      Effect.provide(
        streaming([
          { _tag: "ReasoningDelta", text: "hmm" },
          { _tag: "ReasoningDelta", text: "", signature: "sig" },
          { _tag: "TextDelta", text: "" },
          { _tag: "TextDelta", text: "a" },
          { _tag: "TextDelta", text: "b" },
          { _tag: "ToolCallDelta", id: "unseen", argumentsDelta: "{" },
          { _tag: "ToolCall", id: "c1", name: "lookup", arguments: { word: "x" }, argumentsText: '{"word":"x"}' },
          finish
        ])
      ),
      Effect.provide(handlers)
    ))

  it.effect("text closes before reasoning that follows it, and reasoning without a signature ends plain", () =>
    Effect.gen(function* () {
      const parts = Chunk.toArray(yield* Stream.runCollect(LanguageModel.streamText({ prompt: "x" })))
      expect(parts.map((part) => part.type)).toEqual([
        "text-start",
        "text-delta",
        "text-end",
        "reasoning-start",
        "reasoning-delta",
        "reasoning-end",
        "response-metadata",
        "finish"
      ])
      expect(parts[5]).toEqual(expect.not.objectContaining({ metadata: { clearside: expect.anything() } }))
    }).pipe(Effect.provide(streaming([{ _tag: "TextDelta", text: "a" }, { _tag: "ReasoningDelta", text: "b" }, finish]))))

  it.effect("a streamed turn joins Chat's history as the assistant's text", () =>
    Effect.gen(function* () {
      const chat = yield* Chat.empty
      yield* Stream.runDrain(chat.streamText({ prompt: "first" }))
      yield* chat.generateText({ prompt: "second" })
      const second = (yield* LlmMock.requests)[1]!
      expect(second.messages).toEqual([
        { role: "user", content: [{ type: "text", text: "first" }] },
        { role: "assistant", content: [{ type: "text", text: "one two three" }] },
        { role: "user", content: [{ type: "text", text: "second" }] }
      ])
    }).pipe(Effect.provide(scripted([LlmMock.reply("one two three"), LlmMock.reply("ok")]))))

  it.effect("a stream that fails is an AiError with the original", () =>
    Effect.gen(function* () {
      const error = yield* Effect.flip(Stream.runDrain(LanguageModel.streamText({ prompt: "x" })))
      expect(Option.map(LlmLanguageModel.llmError(error), (e) => e._tag)).toEqual(Option.some("TimeoutError"))
      expect(LlmLanguageModel.isRetryable(error)).toBe(true)
    }).pipe(Effect.provide(failing(new LlmError.TimeoutError({ provider: "p", message: "slow", phase: "idle" })))))
})

describe("LlmError onto AiError", () => {
  it("a rejected request is MalformedInput, an unreadable answer MalformedOutput, the rest UnknownError", () => {
    const invalid = LlmLanguageModel.toAiError(new LlmError.InvalidRequestError({ provider: "p", message: "bad", field: "messages" }), "generateText")
    expect(invalid._tag).toBe("MalformedInput")
    expect(invalid.cause).toMatchObject({ _tag: "InvalidRequestError", field: "messages", retryable: false })
    expect(LlmLanguageModel.toAiError(new LlmError.ResponseParseError({ provider: "p", message: "garbled" }), "m")._tag).toBe("MalformedOutput")
    expect(
      LlmLanguageModel.toAiError(new LlmError.OutputValidationError({ provider: "p", message: "no", text: "", attempts: 1 }), "m")._tag
    ).toBe("MalformedOutput")
    const limited = LlmLanguageModel.toAiError(new LlmError.RateLimitError({ provider: "p", message: "slow down" }), "streamText")
    expect(limited).toMatchObject({ _tag: "UnknownError", module: "LlmLanguageModel", method: "streamText" })
    expect(limited.message).toContain("RateLimitError: slow down")
    expect(LlmLanguageModel.isRetryable(limited)).toBe(true)
  })

  it("an AiError of @effect/ai's own has no LlmError and is not retryable", () => {
    const own = new AiError.MalformedOutput({ module: "LanguageModel", method: "generateObject", description: "no object" })
    expect(LlmLanguageModel.llmError(own)).toEqual(Option.none())
    expect(LlmLanguageModel.isRetryable(own)).toBe(false)
  })

  it.effect("a request the router rejects arrives as MalformedInput naming the field", () =>
    Effect.gen(function* () {
      const error = yield* Effect.flip(LanguageModel.generateText({ prompt: "hi" }))
      expect(error._tag).toBe("MalformedInput")
      expect(Option.getOrThrow(LlmLanguageModel.llmError(error))).toMatchObject({ _tag: "InvalidRequestError", field: "temperature" })
    }).pipe(Effect.provide(scripted([], { temperature: 7 }))))
})
