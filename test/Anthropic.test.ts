import { describe, expect, it } from "@effect/vitest"
import { ConfigProvider, Effect, Either, Layer, Redacted } from "effect"
import * as Anthropic from "../src/Anthropic.js"
import * as AnthropicWire from "../src/internal/anthropicWire.js"
import * as Llm from "../src/Llm.js"
import * as Simulator from "../simulator/Simulator.js"
import { anthropicKey, collect, emitted, failure, hello, setup, summarize } from "./integration/support.js"

const lastBody = (sim: Simulator.Simulator) => sim.requests().at(-1)?.body as Record<string, unknown>

describe("request mapping", () => {
  it.scoped("system messages become system; temperature, top_p and stop_sequences pass through", () =>
    Effect.gen(function* () {
      const { service, sim } = yield* setup("anthropic")
      yield* service.complete({
        messages: [
          { role: "system", content: "Be brief." },
          { role: "user", content: "hi" },
          { role: "assistant", content: "hello" },
          { role: "system", content: "No lists." },
          { role: "user", content: "again" }
        ],
        temperature: 0.3,
        topP: 0.9,
        stop: ["END"],
        maxTokens: 64
      })
      expect(lastBody(sim)).toStrictEqual({
        model: "claude-sonnet-4-6",
        max_tokens: 64,
        system: "Be brief.\n\nNo lists.",
        messages: [
          { role: "user", content: "hi" },
          { role: "assistant", content: "hello" },
          { role: "user", content: "again" }
        ],
        temperature: 0.3,
        top_p: 0.9,
        stop_sequences: ["END"]
      })
    })
  )

  it.scoped(`max_tokens defaults to defaultMaxTokens (${Anthropic.defaultMaxTokens}) and the options can change it`, () =>
    Effect.gen(function* () {
      const { service, sim } = yield* setup("anthropic")
      yield* service.complete(hello)
      expect(lastBody(sim).max_tokens).toBe(4096)
      expect(lastBody(sim).system).toBeUndefined()
      const small = yield* Anthropic.make({ apiKey: Redacted.make(anthropicKey), baseURL: sim.url, maxTokens: 256 })
      yield* Llm.collect(small.call(hello, "whole"))
      expect(lastBody(sim).max_tokens).toBe(256)
    })
  )

  it.scoped("streams send stream: true, the request's model, and the key in the SDK's credential header", () =>
    Effect.gen(function* () {
      const { service, sim } = yield* setup("anthropic")
      yield* collect(service.stream({ ...hello, model: "claude-haiku-4-5" }))
      expect(lastBody(sim)).toMatchObject({ stream: true, model: "claude-haiku-4-5" })
      const headers = sim.requests().at(-1)?.headers ?? {}
      // This SDK version sends the key as `authorization`; older ones used `x-api-key`.
      expect(headers.authorization ?? headers["x-api-key"]).toBe("<redacted>")
    })
  )
})

describe("the provider", () => {
  it.effect("make gives the provider's name, its default model and one call", () =>
    Effect.gen(function* () {
      const provider = yield* Anthropic.make({ apiKey: Redacted.make(anthropicKey) })
      expect(provider.name).toBe("anthropic")
      expect(provider.model).toBe(Anthropic.defaultModel)
      expect((yield* Anthropic.make({ apiKey: Redacted.make(anthropicKey), model: "claude-haiku-4-5" })).model).toBe("claude-haiku-4-5")
    })
  )

  it.scoped("call in whole mode makes the non-streaming request and emits one TextDelta then the Finish", () =>
    Effect.gen(function* () {
      const { provider, route, sim } = yield* setup("anthropic")
      sim.enqueue(route, { text: "Forty-two", usage: { inputTokens: 3, outputTokens: 2 } })
      const events = yield* collect(Llm.toStream(provider.call(hello, "whole")))
      expect(lastBody(sim).stream).toBeUndefined()
      expect(events).toStrictEqual([
        { _tag: "TextDelta", text: "Forty-two" },
        expect.objectContaining({ _tag: "Finish", provider: "anthropic", finishReason: "stop" })
      ])
    })
  )

  it.scoped("call in streamed mode makes the SSE request and emits its deltas then the Finish", () =>
    Effect.gen(function* () {
      const { provider, route, sim } = yield* setup("anthropic")
      sim.enqueue(route, { text: "one two" })
      const { text } = summarize(yield* collect(Llm.toStream(provider.call(hello, "streamed"))))
      expect(text).toBe("one two")
      expect(lastBody(sim).stream).toBe(true)
    })
  )
})

describe("complete and stream", () => {
  it.scoped("complete returns the text of text blocks only, with thinking as reasoning and tool_use as tool calls", () =>
    Effect.gen(function* () {
      const { route, service, sim } = yield* setup("anthropic")
      sim.enqueue(route, {
        body: {
          id: "msg_1",
          type: "message",
          role: "assistant",
          model: "claude-sonnet-4-6",
          content: [
            { type: "thinking", thinking: "Let me think.", signature: "sig" },
            { type: "text", text: "Forty" },
            { type: "tool_use", id: "t", name: "calc", input: {} },
            { type: "text", text: "-two" }
          ],
          stop_reason: "max_tokens",
          usage: { input_tokens: 10, output_tokens: 7, cache_read_input_tokens: 100, cache_creation_input_tokens: 20 }
        }
      })
      const response = yield* service.complete(hello)
      expect(response).toStrictEqual({
        id: "msg_1",
        provider: "anthropic",
        model: "claude-sonnet-4-6",
        content: "Forty-two",
        toolCalls: [{ id: "t", name: "calc", arguments: {}, argumentsText: "{}" }],
        reasoning: "Let me think.",
        reasoningSignature: "sig",
        finishReason: "length",
        usage: { inputTokens: 130, outputTokens: 7, totalTokens: 137, cachedInputTokens: 100 }
      })
    })
  )

  it.scoped("stream emits the text as deltas then exactly one Finish", () =>
    Effect.gen(function* () {
      const { route, service, sim } = yield* setup("anthropic")
      sim.enqueue(route, { text: "one two three", usage: { inputTokens: 4, outputTokens: 3 } })
      const { emptyDeltas, finish, text } = summarize(yield* collect(service.stream(hello)))
      expect(text).toBe("one two three")
      expect(emptyDeltas).toBe(0)
      expect(finish).toMatchObject({
        provider: "anthropic",
        finishReason: "stop",
        usage: { inputTokens: 4, outputTokens: 3, totalTokens: 7, cachedInputTokens: 0 }
      })
    })
  )

  it.scoped("the SDK does not retry: one overloaded answer is one attempt", () =>
    Effect.gen(function* () {
      const { route, service, sim } = yield* setup("anthropic")
      sim.enqueue(route, { status: 529 })
      yield* failure(service.complete(hello))
      expect(sim.attempts(route)).toBe(1)
    })
  )
})

describe("layer", () => {
  it.scoped("validates requests before sending them", () =>
    Effect.gen(function* () {
      const sim = yield* Simulator.make()
      const layer = Anthropic.layer({ apiKey: Redacted.make(anthropicKey), baseURL: sim.url })
      const error = yield* failure(Effect.provide(Llm.complete({ messages: [] }), layer))
      expect(error).toMatchObject({ _tag: "InvalidRequestError", field: "messages", provider: "anthropic" })
      expect(sim.attempts()).toBe(0)
    })
  )

  it.scoped("layerConfig reads ANTHROPIC_API_KEY, ANTHROPIC_BASE_URL and LLM_DEFAULT_MODEL", () =>
    Effect.gen(function* () {
      const sim = yield* Simulator.make()
      const config = ConfigProvider.fromMap(
        new Map([
          ["ANTHROPIC_API_KEY", anthropicKey],
          ["ANTHROPIC_BASE_URL", sim.url],
          ["LLM_DEFAULT_MODEL", "claude-haiku-4-5"]
        ])
      )
      const response = yield* Effect.provide(
        Llm.complete(hello),
        Anthropic.layerConfig.pipe(Layer.provide(Layer.setConfigProvider(config)))
      )
      expect(response).toMatchObject({ provider: "anthropic", model: "claude-haiku-4-5" })
    })
  )

  it.effect("layerConfig fails with a ConfigError naming ANTHROPIC_API_KEY when it is empty", () =>
    Effect.gen(function* () {
      const layer = Anthropic.layerConfig.pipe(
        Layer.provide(Layer.setConfigProvider(ConfigProvider.fromMap(new Map([["ANTHROPIC_API_KEY", ""]]))))
      )
      const result = yield* Effect.either(Effect.scoped(Layer.build(layer)))
      expect(Either.isLeft(result)).toBe(true)
      if (Either.isLeft(result)) expect(String(result.left)).toContain("ANTHROPIC_API_KEY")
    })
  )
})

describe("wire mapping", () => {
  it("normalises Anthropic stop reasons", () => {
    expect(
      [
        "end_turn",
        "stop_sequence",
        "max_tokens",
        "model_context_window_exceeded",
        "tool_use",
        "refusal",
        "pause_turn",
        "new_reason",
        null
      ].map(AnthropicWire.finishReason)
    ).toStrictEqual(["stop", "stop", "length", "length", "tool_calls", "refusal", "other", "other", "other"])
  })

  it("inputTokens counts cache reads and writes; cachedInputTokens is the cache read", () => {
    expect(
      AnthropicWire.usage(
        AnthropicWire.mergeUsage({}, {
          input_tokens: 5,
          output_tokens: 9,
          cache_read_input_tokens: 1000,
          cache_creation_input_tokens: 200
        })
      )
    ).toStrictEqual({ inputTokens: 1205, outputTokens: 9, totalTokens: 1214, cachedInputTokens: 1000 })
  })

  it("message_delta usage overwrites message_start usage field by field", () => {
    const state = AnthropicWire.streamState("anthropic", "claude")
    emitted(state, { type: "message_start", message: { id: "m", model: "claude-x", usage: { input_tokens: 10, output_tokens: 1, cache_read_input_tokens: 4 } } })
    emitted(state, { type: "message_delta", delta: { stop_reason: "end_turn" }, usage: { output_tokens: 20 } })
    emitted(state, { type: "message_stop" })
    expect(state.finish()).toStrictEqual(
      Either.right({
        _tag: "Finish",
        id: "m",
        provider: "anthropic",
        model: "claude-x",
        finishReason: "stop",
        usage: { inputTokens: 14, outputTokens: 20, totalTokens: 34, cachedInputTokens: 4 }
      })
    )
  })

  it("a text block that starts with text emits it; empty text emits nothing; thinking is reasoning, not text", () => {
    const state = AnthropicWire.streamState("anthropic", "claude")
    expect(emitted(state, { type: "content_block_start", index: 0, content_block: { type: "text", text: "Hi" } })).toStrictEqual([
      { _tag: "TextDelta", text: "Hi" }
    ])
    expect(emitted(state, { type: "content_block_delta", index: 0, delta: { type: "text_delta", text: "" } })).toStrictEqual([])
    expect(emitted(state, { type: "content_block_delta", index: 1, delta: { type: "thinking_delta", thinking: "hmm" } })).toStrictEqual([
      { _tag: "ReasoningDelta", text: "hmm" }
    ])
    expect(state.emitted()).toBe(2)
  })

  it("stream events are read as the SDK reads them: pings and unnamed events skipped, error events thrown", () => {
    const state = AnthropicWire.streamState("anthropic", "claude")
    expect(state.decode({ event: "message_stop", data: '{"type":"message_stop"}' })).toStrictEqual({ type: "message_stop" })
    expect(state.decode({ event: "ping", data: '{"type":"ping"}' })).toBeUndefined()
    expect(state.decode({ event: undefined, data: '{"type":"message_stop"}' })).toBeUndefined()
    expect(state.decode({ event: "content_block_stop", data: "" })).toBeUndefined()
    const body = { type: "error", error: { type: "overloaded_error", message: "Overloaded" } }
    expect(() => state.decode({ event: "error", data: JSON.stringify(body) })).toThrow(expect.objectContaining({ body }))
    expect(() => state.decode({ event: "error", data: "upstream gone" })).toThrow(expect.objectContaining({ body: "upstream gone" }))
    expect(() => state.decode({ event: "error", data: "null" })).toThrow(expect.objectContaining({ body: "null" }))
    expect(() => state.decode({ event: "message_start", data: "{cut" })).toThrow(SyntaxError)
  })

  it("a body that is an error object maps like an error event", () => {
    const result = AnthropicWire.response(
      { type: "error", error: { type: "overloaded_error", message: "Overloaded" } },
      { provider: "anthropic", now: 0 },
      "claude"
    )
    expect(Either.isLeft(result) && result.left._tag).toBe("OverloadedError")
  })
})
