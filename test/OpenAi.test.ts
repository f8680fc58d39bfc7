import { describe, expect, it } from "@effect/vitest"
import { ConfigProvider, Effect, Either, Layer, Redacted } from "effect"
import * as OpenAiWire from "../src/internal/openAiWire.js"
import * as Llm from "../src/Llm.js"
import * as OpenAi from "../src/OpenAi.js"
import * as Simulator from "../simulator/Simulator.js"
import { collect, emitted, failure, hello, openAiKey, setup, summarize } from "./integration/support.js"

const lastBody = (sim: Simulator.Simulator) => sim.requests().at(-1)?.body as Record<string, unknown>

describe("request mapping", () => {
  it.scoped("sends messages as they are, the default model, and temperature, top_p, stop, max_completion_tokens", () =>
    Effect.gen(function* () {
      const { service, sim } = yield* setup("openai")
      yield* service.complete({
        messages: [
          { role: "system", content: "Be brief." },
          { role: "user", content: "hi" }
        ],
        temperature: 0.3,
        topP: 0.9,
        stop: ["END"],
        maxTokens: 64
      })
      expect(lastBody(sim)).toStrictEqual({
        model: "gpt-4o-mini",
        messages: [
          { role: "system", content: "Be brief." },
          { role: "user", content: "hi" }
        ],
        temperature: 0.3,
        top_p: 0.9,
        stop: ["END"],
        max_completion_tokens: 64
      })
    })
  )

  it.scoped("the request's model wins over the configured one", () =>
    Effect.gen(function* () {
      const sim = yield* Simulator.make()
      const service = Llm.fromProvider(
        yield* OpenAi.make({ apiKey: Redacted.make(openAiKey), baseURL: `${sim.url}/v1`, model: "gpt-4.1" })
      )
      yield* service.complete(hello)
      expect(lastBody(sim).model).toBe("gpt-4.1")
      yield* service.complete({ ...hello, model: "o4-mini" })
      expect(lastBody(sim).model).toBe("o4-mini")
    })
  )

  it.scoped("streams always ask for usage with stream_options.include_usage", () =>
    Effect.gen(function* () {
      const { service, sim } = yield* setup("openai")
      yield* collect(service.stream(hello))
      expect(lastBody(sim)).toMatchObject({ stream: true, stream_options: { include_usage: true } })
    })
  )

  it.scoped("sends an authorization header, no organization header, and no SDK retry count above 0", () =>
    Effect.gen(function* () {
      const { service, sim } = yield* setup("openai")
      yield* service.complete(hello)
      const headers = sim.requests().at(-1)?.headers ?? {}
      expect(headers.authorization).toBe("<redacted>")
      expect(headers["openai-organization"]).toBeUndefined()
      expect(headers["x-stainless-retry-count"]).toBe("0")
    })
  )
})

describe("the provider", () => {
  it.effect("make gives the provider's name, its default model and one call", () =>
    Effect.gen(function* () {
      const provider = yield* OpenAi.make({ apiKey: Redacted.make(openAiKey), baseURL: "http://127.0.0.1:1/v1" })
      expect(provider.name).toBe("openai")
      expect(provider.model).toBe(OpenAi.defaultModel)
      const named = yield* OpenAi.make({ apiKey: Redacted.make(openAiKey), model: "gpt-4.1-mini" })
      expect(named.model).toBe("gpt-4.1-mini")
    })
  )

  it.scoped("call in whole mode makes the non-streaming request and emits one TextDelta then the Finish", () =>
    Effect.gen(function* () {
      const { provider, route, sim } = yield* setup("openai")
      sim.enqueue(route, { text: "A cap on calls.", usage: { inputTokens: 9, outputTokens: 5 } })
      const events = yield* collect(Llm.toStream(provider.call({ ...hello, model: "gpt-4o-mini" }, "whole")))
      expect(lastBody(sim).stream).toBeUndefined()
      expect(events.map((e) => e._tag)).toStrictEqual(["TextDelta", "Finish"])
      expect(events[0]).toStrictEqual({ _tag: "TextDelta", text: "A cap on calls." })
      expect(events[1]).toMatchObject({ provider: "openai", finishReason: "stop", usage: { inputTokens: 9, outputTokens: 5 } })
    })
  )

  it.scoped("call in whole mode with an empty answer emits the Finish alone", () =>
    Effect.gen(function* () {
      const { provider, route, sim } = yield* setup("openai")
      sim.enqueue(route, { text: "" })
      const events = yield* collect(Llm.toStream(provider.call(hello, "whole")))
      expect(events.map((e) => e._tag)).toStrictEqual(["Finish"])
    })
  )

  it.scoped("call in streamed mode makes the SSE request and emits its deltas then the Finish", () =>
    Effect.gen(function* () {
      const { provider, route, sim } = yield* setup("openai")
      sim.enqueue(route, { text: "one two" })
      const { text } = summarize(yield* collect(Llm.toStream(provider.call(hello, "streamed"))))
      expect(text).toBe("one two")
      expect(lastBody(sim).stream).toBe(true)
    })
  )
})

describe("complete and stream", () => {
  it.scoped("complete returns the answer text, finish reason and usage", () =>
    Effect.gen(function* () {
      const { route, service, sim } = yield* setup("openai")
      sim.enqueue(route, { text: "A cap on calls.", usage: { inputTokens: 9, outputTokens: 5 } })
      const response = yield* service.complete(hello)
      expect(response).toMatchObject({
        provider: "openai",
        content: "A cap on calls.",
        finishReason: "stop",
        usage: { inputTokens: 9, outputTokens: 5, totalTokens: 14 }
      })
    })
  )

  it.scoped("stream emits the text as deltas then exactly one Finish", () =>
    Effect.gen(function* () {
      const { route, service, sim } = yield* setup("openai")
      sim.enqueue(route, { text: "one two three", usage: { inputTokens: 4, outputTokens: 3 } })
      const events = yield* collect(service.stream(hello))
      const { emptyDeltas, finish, text } = summarize(events)
      expect(text).toBe("one two three")
      expect(emptyDeltas).toBe(0)
      expect(finish).toMatchObject({ provider: "openai", finishReason: "stop", usage: { inputTokens: 4, outputTokens: 3, totalTokens: 7 } })
    })
  )

  it.scoped("the SDK does not retry: one failing answer is one attempt", () =>
    Effect.gen(function* () {
      const { route, service, sim } = yield* setup("openai")
      sim.enqueue(route, { status: 500 })
      yield* failure(service.complete(hello))
      expect(sim.attempts(route)).toBe(1)
    })
  )
})

describe("layer", () => {
  it.scoped("validates requests before sending them", () =>
    Effect.gen(function* () {
      const sim = yield* Simulator.make()
      const layer = OpenAi.layer({ apiKey: Redacted.make(openAiKey), baseURL: `${sim.url}/v1` })
      const error = yield* failure(
        Effect.provide(Llm.complete({ messages: [{ role: "user", content: "hi" }], temperature: 5 }), layer)
      )
      expect(error).toMatchObject({ _tag: "InvalidRequestError", field: "temperature", provider: "openai" })
      expect(sim.attempts()).toBe(0)
      const ok = yield* Effect.provide(Llm.complete(hello), layer)
      expect(ok.provider).toBe("openai")
    })
  )

  it.scoped("layerConfig reads OPENAI_API_KEY, OPENAI_BASE_URL and LLM_DEFAULT_MODEL", () =>
    Effect.gen(function* () {
      const sim = yield* Simulator.make()
      const config = ConfigProvider.fromMap(
        new Map([
          ["OPENAI_API_KEY", openAiKey],
          ["OPENAI_BASE_URL", `${sim.url}/v1`],
          ["LLM_DEFAULT_MODEL", "gpt-4.1-nano"]
        ])
      )
      const layer = OpenAi.layerConfig.pipe(Layer.provide(Layer.setConfigProvider(config)))
      const response = yield* Effect.provide(Llm.complete(hello), layer)
      expect(response.model).toBe("gpt-4.1-nano")
      expect(sim.requests().at(-1)?.headers.authorization).toBe("<redacted>")
    })
  )

  it.effect("layerConfig fails with a ConfigError naming OPENAI_API_KEY when it is missing", () =>
    Effect.gen(function* () {
      const missing = OpenAi.layerConfig.pipe(
        Layer.provide(Layer.setConfigProvider(ConfigProvider.fromMap(new Map([["OPENAI_BASE_URL", "http://127.0.0.1:1/v1"]]))))
      )
      const result = yield* Effect.either(Layer.build(missing).pipe(Effect.scoped))
      expect(Either.isLeft(result)).toBe(true)
      if (Either.isLeft(result)) expect(String(result.left)).toContain("OPENAI_API_KEY")
    })
  )
})

describe("wire mapping", () => {
  it("normalises OpenAI finish reasons", () => {
    expect(
      ["stop", "length", "tool_calls", "function_call", "content_filter", "something_new", null].map(OpenAiWire.finishReason)
    ).toStrictEqual(["stop", "length", "tool_calls", "tool_calls", "content_filter", "other", "other"])
  })

  it("keeps cached and reasoning tokens and the provider's own total", () => {
    expect(
      OpenAiWire.usage({
        prompt_tokens: 12,
        completion_tokens: 2,
        total_tokens: 334,
        prompt_tokens_details: { cached_tokens: 2 },
        completion_tokens_details: { reasoning_tokens: 320 }
      })
    ).toStrictEqual({ inputTokens: 12, outputTokens: 2, totalTokens: 334, cachedInputTokens: 2, reasoningTokens: 320 })
    expect(OpenAiWire.usage({ prompt_tokens: 3, completion_tokens: 4 })).toStrictEqual({
      inputTokens: 3,
      outputTokens: 4,
      totalTokens: 7
    })
    expect(OpenAiWire.usage(null)).toBeUndefined()
  })

  it("stream events are read as the SDK reads them: nothing after [DONE], Assistants events skipped, error chunks thrown", () => {
    const state = OpenAiWire.streamState("openai", "gpt-4o-mini")
    expect(state.decode({ event: undefined, data: '{"id":"c","choices":[]}' })).toStrictEqual({ id: "c", choices: [] })
    expect(state.decode({ event: "thread.run.created", data: "{}" })).toBeUndefined()
    expect(() => state.decode({ event: undefined, data: '{"error":{"type":"server_error"}}' })).toThrow(
      expect.objectContaining({ body: { type: "server_error" } })
    )
    expect(() => state.decode({ event: undefined, data: "{not json" })).toThrow(SyntaxError)
    expect(state.decode({ event: undefined, data: "[DONE]" })).toBeUndefined()
    expect(state.decode({ event: undefined, data: '{"id":"late"}' })).toBeUndefined()
  })

  it("a stream with a finish reason but no usage finishes with zero usage", () => {
    const state = OpenAiWire.streamState("openai", "gpt-4o-mini")
    expect(emitted(state, { id: "c", choices: [{ delta: { content: "hi" }, finish_reason: null }] })).toStrictEqual([
      { _tag: "TextDelta", text: "hi" }
    ])
    expect(emitted(state, { id: "c", choices: [{ delta: {}, finish_reason: "stop" }] })).toStrictEqual([])
    expect(state.finish()).toStrictEqual(
      Either.right({
        _tag: "Finish",
        id: "c",
        provider: "openai",
        model: "gpt-4o-mini",
        finishReason: "stop",
        usage: OpenAiWire.noUsage
      })
    )
  })

  it("a null content with a refusal is an empty answer, not a parse error", () => {
    const result = OpenAiWire.response(
      { id: "x", model: "m", choices: [{ message: { content: null, refusal: "no" }, finish_reason: "stop" }] },
      { provider: "openai", now: 0 },
      "m"
    )
    expect(Either.map(result, (r) => r.content)).toStrictEqual(Either.right(""))
  })

  it("a non-string content is a ResponseParseError", () => {
    const result = OpenAiWire.response(
      { choices: [{ message: { content: 42 } }] },
      { provider: "openai", now: 0 },
      "m"
    )
    expect(Either.getLeft(result).pipe((o) => o._tag === "Some" && o.value._tag)).toBe("ResponseParseError")
  })
})
