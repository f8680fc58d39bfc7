import { describe, expect, it } from "@effect/vitest"
import { Cause, Chunk, Duration, Effect, Exit, Fiber, Schema, Stream } from "effect"
import * as Llm from "../src/Llm.js"
import * as LlmMock from "../src/LlmMock.js"
import * as LlmRequest from "../src/LlmRequest.js"

const user = [{ role: "user", content: "hi" }] as const

/** A router over one recording mock, as a real provider layer would be routed. */
const routed = Effect.map(LlmMock.make([], { provider: "openai", fallback: LlmMock.reply("answered") }), (mock) => ({
  mock,
  llm: Llm.router({ providers: [mock], defaultProvider: "openai" })
}))

/** Lets a test hand the service a value its types would refuse, as an untyped caller could. */
const unchecked = (input: unknown): LlmRequest.LlmRequest => input as LlmRequest.LlmRequest

const invalid: ReadonlyArray<readonly [string, unknown, string, string]> = [
  ["no messages field", {}, "messages", "messages is required"],
  ["an empty messages array", { messages: [] }, "messages", "messages must hold at least one message"],
  ["messages as a string", { messages: "hi" }, "messages", "messages must be an array of { role, content } messages"],
  ["a null message", { messages: [null] }, "messages[0]", "messages[0] must be a message object with role and content"],
  ["a message without content", { messages: [{ role: "user" }] }, "messages[0].content", "messages[0].content is required"],
  ["empty content", { messages: [{ role: "user", content: "" }] }, "messages[0].content", "content must be a non-empty string"],
  ["numeric content", { messages: [{ role: "user", content: 42 }] }, "messages[0].content", "content must be a non-empty string or an array of parts"],
  ["an unknown role", { messages: [{ role: "bot", content: "x" }] }, "messages[0].role", 'role must be one of "system", "user", "assistant" or "tool"'],
  ["a message without role", { messages: [{ content: "x" }] }, "messages[0].role", "messages[0].role is required"],
  ["a bad second message", { messages: [...user, { role: "assistant", content: "" }] }, "messages[1].content", "content must be a non-empty string"],
  ["an extra message field", { messages: [{ role: "user", content: "x", name: "bob" }] }, "messages[0].name", "messages[0].name is not a request field"],
  ["temperature below 0", { messages: user, temperature: -0.1 }, "temperature", "temperature must be a number between 0 and 2"],
  ["temperature above 2", { messages: user, temperature: 2.5 }, "temperature", "temperature must be a number between 0 and 2"],
  ["temperature as text", { messages: user, temperature: "hot" }, "temperature", "temperature must be a number between 0 and 2"],
  ["temperature NaN", { messages: user, temperature: Number.NaN }, "temperature", "temperature must be a number between 0 and 2"],
  ["temperature Infinity", { messages: user, temperature: Number.POSITIVE_INFINITY }, "temperature", "temperature must be a number between 0 and 2"],
  ["maxTokens 0", { messages: user, maxTokens: 0 }, "maxTokens", "maxTokens must be a positive integer"],
  ["maxTokens negative", { messages: user, maxTokens: -3 }, "maxTokens", "maxTokens must be a positive integer"],
  ["maxTokens fractional", { messages: user, maxTokens: 1.5 }, "maxTokens", "maxTokens must be a positive integer"],
  ["maxTokens as text", { messages: user, maxTokens: "10" }, "maxTokens", "maxTokens must be a positive integer"],
  ["maxTokens beyond safe integers", { messages: user, maxTokens: 2 ** 60 }, "maxTokens", "maxTokens must be a positive integer"],
  ["topP above 1", { messages: user, topP: 1.5 }, "topP", "topP must be a number between 0 and 1"],
  ["topP below 0", { messages: user, topP: -1 }, "topP", "topP must be a number between 0 and 1"],
  ["five stop sequences", { messages: user, stop: ["a", "b", "c", "d", "e"] }, "stop", "stop must hold at most 4 sequences"],
  ["an empty stop sequence", { messages: user, stop: ["END", ""] }, "stop[1]", "stop sequence must be a non-empty string"],
  ["stop as a string", { messages: user, stop: "END" }, "stop", "stop must be an array of at most 4 non-empty strings"],
  ["a zero timeout", { messages: user, timeout: Duration.zero }, "timeout", "timeout must be a positive duration"],
  ["a timeout in bare milliseconds", { messages: user, timeout: 1000 }, "timeout", "timeout must be a positive duration"],
  ["a numeric metadata value", { messages: user, metadata: { agent: 1 } }, "metadata.agent", "metadata values must be strings"],
  ["metadata as a string", { messages: user, metadata: "x" }, "metadata", "metadata must be a record of string values"],
  ["an unknown request field", { messages: user, prompt: "x" }, "prompt", "prompt is not a request field"],
  ["an empty provider", { messages: user, provider: "" }, "provider", "provider must be a non-empty string"],
  ["a numeric provider", { messages: user, provider: 5 }, "provider", "provider must be a non-empty string"],
  ["an empty model", { messages: user, model: "" }, "model", "model must be a non-empty string"],
  ["a provider that is not configured", { messages: user, provider: "mistral" }, "provider", 'provider "mistral" is not configured (configured: openai)'],
  ["null instead of a request", null, "request", "request must be an object with messages"],
  ["a tool role with string content", { messages: [...user, { role: "tool", content: "42" }] }, "messages[1].content", 'a tool message\'s content must be "tool-result" parts'],
  ["an empty part list", { messages: [{ role: "user", content: [] }] }, "messages[0].content", "content must be a non-empty string or an array of parts"],
  ["an empty text part", { messages: [{ role: "user", content: [{ type: "text", text: "" }] }] }, "messages[0].content[0].text", "text must be a non-empty string"],
  ["an unknown part type", { messages: [{ role: "user", content: [{ type: "audio" }] }] }, "messages[0].content[0].type", 'type must be one of "text", "image", "tool-call", "reasoning" or "tool-result"'],
  ["a null part", { messages: [{ role: "user", content: [null] }] }, "messages[0].content[0]", "messages[0].content[0] must be a part object with a type"],
  ["an extra part field", { messages: [{ role: "user", content: [{ type: "text", text: "x", style: "bold" }] }] }, "messages[0].content[0].style", "messages[0].content[0].style is not a request field"],
  ["an image in a system message", { messages: [{ role: "system", content: [{ type: "image", url: "https://x.io/a.png" }] }] }, "messages[0].content[0].type", 'a system message may hold only "text" parts, not "image"'],
  ["a tool call in a user message", { messages: [{ role: "user", content: [{ type: "tool-call", id: "c", name: "f", arguments: {} }] }] }, "messages[0].content[0].type", 'a user message may hold only "text", "image" parts, not "tool-call"'],
  ["an image media type of TIFF", { messages: [{ role: "user", content: [{ type: "image", data: "aGk=", mediaType: "image/tiff" }] }] }, "messages[0].content[0].mediaType", "mediaType must be one of image/png, image/jpeg, image/gif or image/webp"],
  ["base64 data without a media type", { messages: [{ role: "user", content: [{ type: "image", data: "aGk=" }] }] }, "messages[0].content[0].mediaType", "mediaType is required with data"],
  ["an image with neither url nor data", { messages: [{ role: "user", content: [{ type: "image" }] }] }, "messages[0].content[0].url", "an image needs a url, or data with its mediaType"],
  ["an image with both url and data", { messages: [{ role: "user", content: [{ type: "image", url: "https://x.io/a.png", data: "aGk=", mediaType: "image/png" }] }] }, "messages[0].content[0].data", "an image has either url or data, not both"],
  ["an image url with mediaType", { messages: [{ role: "user", content: [{ type: "image", url: "https://x.io/a.png", mediaType: "image/png" }] }] }, "messages[0].content[0].mediaType", "mediaType goes with data, not with url"],
  ["an ftp image url", { messages: [{ role: "user", content: [{ type: "image", url: "ftp://x.io/a.png" }] }] }, "messages[0].content[0].url", "url must be an http(s) URL or a data:image/(png|jpeg|gif|webp);base64 URL"],
  ["a data URL of a PDF", { messages: [{ role: "user", content: [{ type: "image", url: "data:application/pdf;base64,aGk=" }] }] }, "messages[0].content[0].url", "url must be an http(s) URL or a data:image/(png|jpeg|gif|webp);base64 URL"],
  ["base64 data that is not base64", { messages: [{ role: "user", content: [{ type: "image", data: "not base64!", mediaType: "image/png" }] }] }, "messages[0].content[0].data", "data must be non-empty base64 text"],
  ["a tool result answering no call", { messages: [...user, { role: "tool", content: [{ type: "tool-result", id: "call_9", name: "f", result: 1 }] }] }, "messages[1].content[0].id", 'tool result "call_9" answers no tool call of an earlier assistant message'],
  ["a tool result before its call", {
    messages: [
      ...user,
      { role: "tool", content: [{ type: "tool-result", id: "call_1", name: "f", result: 1 }] },
      { role: "assistant", content: [{ type: "tool-call", id: "call_1", name: "f", arguments: {} }] }
    ]
  }, "messages[1].content[0].id", 'tool result "call_1" answers no tool call of an earlier assistant message'],
  ["a tool call with an empty id", { messages: [...user, { role: "assistant", content: [{ type: "tool-call", id: "", name: "f", arguments: {} }] }] }, "messages[1].content[0].id", "id must be a non-empty string"],
  ["a tool call with a bigint argument", { messages: [...user, { role: "assistant", content: [{ type: "tool-call", id: "c", name: "f", arguments: { n: 1n } }] }] }, "messages[1].content[0].arguments", "arguments must be a JSON value"],
  ["a tool result that is undefined", {
    messages: [
      ...user,
      { role: "assistant", content: [{ type: "tool-call", id: "c", name: "f", arguments: {} }] },
      { role: "tool", content: [{ type: "tool-result", id: "c", name: "f", result: undefined }] }
    ]
  }, "messages[2].content[0].result", "result must be a JSON value"],
  ["a tool name with a space", { messages: user, tools: [{ name: "get weather", parameters: {} }] }, "tools[0].name", "name must match ^[a-zA-Z0-9_-]{1,64}$"],
  ["a tool name of 65 characters", { messages: user, tools: [{ name: "a".repeat(65), parameters: {} }] }, "tools[0].name", "name must match ^[a-zA-Z0-9_-]{1,64}$"],
  ["a tool without parameters", { messages: user, tools: [{ name: "f" }] }, "tools[0].parameters", "tools[0].parameters is required"],
  ["tool parameters as a string", { messages: user, tools: [{ name: "f", parameters: "{}" }] }, "tools[0].parameters", "parameters must be a JSON Schema object"],
  ["a tool defined twice", { messages: user, tools: [{ name: "f", parameters: {} }, { name: "f", parameters: {} }] }, "tools[1].name", 'tool "f" is defined twice'],
  ["tools as an object", { messages: user, tools: { f: {} } }, "tools", "tools must be an array of { name, description?, parameters } tools"],
  ["a toolChoice naming no given tool", { messages: user, tools: [{ name: "f", parameters: {} }], toolChoice: { name: "g" } }, "toolChoice.name", 'toolChoice names "g", which is not one of the request\'s tools'],
  ["a toolChoice of sometimes", { messages: user, toolChoice: "sometimes" }, "toolChoice", 'toolChoice must be "auto", "none", "required" or { name }'],
  ["parallelToolCalls as text", { messages: user, parallelToolCalls: "yes" }, "parallelToolCalls", "parallelToolCalls must be a boolean"],
  ["a reasoning effort of max", { messages: user, reasoning: { effort: "max" } }, "reasoning.effort", 'reasoning.effort must be one of "low", "medium" or "high"'],
  ["a zero reasoning budget", { messages: user, reasoning: { budgetTokens: 0 } }, "reasoning.budgetTokens", "reasoning.budgetTokens must be a positive integer"],
  ["cache as text", { messages: [{ role: "user", content: [{ type: "text", text: "x", cache: "yes" }] }] }, "messages[0].content[0].cache", "cache must be a boolean"],
  ["a string instead of a request", "hello", "request", "request must be an object with messages"]
]

describe("an invalid request is rejected before any provider call", () => {
  for (const [what, input, field, rule] of invalid) {
    it.effect(`rejects ${what}: ${field} (${rule})`, () =>
      Effect.gen(function* () {
        const { llm, mock } = yield* routed
        const fromComplete = yield* Effect.flip(llm.complete(unchecked(input)))
        const fromStream = yield* Effect.flip(Stream.runDrain(llm.stream(unchecked(input))))
        for (const error of [fromComplete, fromStream]) {
          expect(error._tag).toBe("InvalidRequestError")
          expect(error._tag === "InvalidRequestError" && error.field).toBe(field)
          expect(error.message).toBe(`Invalid request: ${rule}`)
          expect(error.retryable).toBe(false)
        }
        expect(yield* mock.requests).toEqual([])
      }))
  }

  it("covers at least 25 distinct invalid requests", () => {
    expect(new Set(invalid.map(([what]) => what)).size).toBe(invalid.length)
    expect(invalid.length).toBeGreaterThanOrEqual(25)
  })

  it.effect("names the provider the request was meant for on the error", () =>
    Effect.gen(function* () {
      const { llm } = yield* routed
      const named = yield* Effect.flip(llm.complete(unchecked({ messages: [], provider: "openai" })))
      const byDefault = yield* Effect.flip(llm.complete(unchecked({ messages: [] })))
      expect(named.provider).toBe("openai")
      expect(byDefault.provider).toBe("openai")
    }))
})

describe("valid edge cases are accepted and reach the provider unchanged", () => {
  const valid: ReadonlyArray<readonly [string, LlmRequest.LlmRequest]> = [
    ["temperature 0", { messages: user, temperature: 0 }],
    ["temperature 2", { messages: user, temperature: 2 }],
    ["topP 0 and 1", { messages: user, topP: 1 }],
    ["maxTokens 1", { messages: user, maxTokens: 1 }],
    ["four stop sequences", { messages: user, stop: ["a", "b", "c", "d"] }],
    ["no stop sequences", { messages: user, stop: [] }],
    ["empty metadata", { messages: user, metadata: {} }],
    ["a system message alone", { messages: [{ role: "system", content: "rules" }] }],
    ["a conversation ending with the assistant", { messages: [...user, { role: "assistant", content: "Hello" }] }],
    ["whitespace content", { messages: [{ role: "user", content: " " }] }],
    ["non-ASCII content", { messages: [{ role: "user", content: "¿Qué tal? 你好 👋" }] }],
    ["a one-millisecond timeout", { messages: user, timeout: Duration.millis(1) }],
    ["a whole tool conversation", {
      messages: [
        { role: "system", content: [{ type: "text", text: "rules", cache: true }] },
        { role: "user", content: [{ type: "text", text: "look" }, { type: "image", url: "https://x.io/a.png" }, { type: "image", data: "aGk=", mediaType: "image/webp" }] },
        {
          role: "assistant",
          content: [
            { type: "reasoning", text: "", signature: "sig" },
            { type: "tool-call", id: "call_1", name: "get-weather_2", arguments: { city: "Oslo" } },
            { type: "tool-call", id: "call_2", name: "now", arguments: undefined }
          ]
        },
        {
          role: "tool",
          content: [
            { type: "tool-result", id: "call_1", name: "get-weather_2", result: { tempC: 4 } },
            { type: "tool-result", id: "call_2", name: "now", result: "failed", isError: true }
          ]
        }
      ],
      tools: [{ name: "get-weather_2", description: "d", parameters: { type: "object" } }, { name: "now", parameters: {} }],
      toolChoice: { name: "now" },
      parallelToolCalls: false,
      reasoning: { effort: "medium", budgetTokens: 2048 }
    }],
    ["a 64-character tool name", { messages: user, tools: [{ name: "a".repeat(64), parameters: {} }], toolChoice: "required" }],
    ["every field at once", {
      provider: "openai",
      model: "gpt-4o-mini",
      messages: user,
      temperature: 0.7,
      maxTokens: 256,
      topP: 0.9,
      stop: ["\n\n"],
      timeout: Duration.seconds(10),
      metadata: { agent: "moderator" }
    }]
  ]
  for (const [what, request] of valid) {
    it.effect(`accepts ${what}`, () =>
      Effect.gen(function* () {
        const { llm, mock } = yield* routed
        const response = yield* llm.complete(request)
        expect(response.content).toBe("answered")
        expect(yield* mock.requests).toEqual([{ ...request, provider: "openai", model: request.model ?? "mock-model" }])
      }))
  }

  it.effect("reads a request once: later changes to the caller's object do not reach the provider", () =>
    Effect.gen(function* () {
      const { llm, mock } = yield* routed
      const messages = [{ role: "user" as const, content: "first" }]
      const fiber = yield* Effect.fork(llm.complete({ messages }))
      messages[0]!.content = "changed"
      yield* Fiber.join(fiber)
      expect((yield* mock.requests)[0]?.messages[0]?.content).toBe("first")
    }))

  it.effect("a streamed valid request reaches the provider once", () =>
    Effect.gen(function* () {
      const { llm, mock } = yield* routed
      const events = yield* Stream.runCollect(llm.stream({ messages: user, maxTokens: 5 }))
      expect(Chunk.last(events).pipe((last) => last._tag === "Some" && last.value._tag)).toBe("Finish")
      expect((yield* mock.calls).map((c) => c.method)).toEqual(["stream"])
    }))
})

describe("a hostile request object is an InvalidRequestError, not a defect", () => {
  const hostile: ReadonlyArray<readonly [string, () => unknown]> = [
    ["a throwing getter on messages", () => ({ get messages(): never { throw new Error("no messages for you") } })],
    ["a throwing getter on a message's content", () => ({
      messages: [{ role: "user", get content(): never { throw new Error("nope") } }]
    })],
    ["a throwing getter on provider", () => ({ messages: user, get provider(): never { throw new Error("nope") } })],
    ["a Proxy whose traps throw", () => new Proxy({}, {
      get: () => { throw new Error("trap") },
      has: () => { throw new Error("trap") },
      ownKeys: () => { throw new Error("trap") },
      getOwnPropertyDescriptor: () => { throw new Error("trap") }
    })],
    ["a revoked Proxy", () => {
      const { proxy, revoke } = Proxy.revocable({ messages: user }, {})
      revoke()
      return proxy
    }]
  ]
  for (const [what, make] of hostile) {
    it.effect(`${what}: complete and stream fail with InvalidRequestError`, () =>
      Effect.gen(function* () {
        const { llm, mock } = yield* routed
        const completed = yield* Effect.exit(Effect.asVoid(llm.complete(unchecked(make()))))
        const streamed = yield* Effect.exit(Stream.runDrain(llm.stream(unchecked(make()))))
        for (const exit of [completed, streamed]) {
          expect(Exit.isFailure(exit) && Cause.failureOption(exit.cause)).toMatchObject({
            _tag: "Some",
            value: { _tag: "InvalidRequestError", field: "request", provider: "openai", local: true }
          })
        }
        expect((yield* mock.requests).length).toBe(0)
      }))
  }
})

describe("decode validates without a service", () => {
  it.effect("returns the decoded request for a valid input", () =>
    Effect.gen(function* () {
      const request = yield* LlmRequest.decode({ messages: user, topP: 0 }, "openai")
      expect(request).toEqual({ messages: user, topP: 0 })
    }))

  it.effect("reports the given provider on the error", () =>
    Effect.gen(function* () {
      const error = yield* Effect.flip(LlmRequest.decode({ messages: [] }, "anthropic"))
      expect(error.provider).toBe("anthropic")
      expect(error.field).toBe("messages")
    }))
})

describe("responses and stream events are Schemas", () => {
  it("a response round-trips through its Schema", () => {
    const response: LlmRequest.LlmResponse = {
      id: "1",
      provider: "openai",
      model: "m",
      content: "x",
      toolCalls: [{ id: "c1", name: "lookup", arguments: { q: 1 }, argumentsText: '{"q":1}' }],
      reasoning: "thought",
      reasoningSignature: "sig",
      refusal: "no",
      finishReason: "length",
      usage: { inputTokens: 1, outputTokens: 2, totalTokens: 3, cachedInputTokens: 0, reasoningTokens: 1 }
    }
    expect(Schema.decodeUnknownSync(LlmRequest.LlmResponse)(Schema.encodeSync(LlmRequest.LlmResponse)(response))).toEqual(
      response
    )
  })

  it("stream events are told apart by _tag", () => {
    const decode = Schema.decodeUnknownSync(LlmRequest.LlmStreamEvent)
    expect(decode({ _tag: "TextDelta", text: "a" })._tag).toBe("TextDelta")
    expect(() => decode({ _tag: "Finish", text: "a" })).toThrow()
  })
})

describe("the quick check of common requests agrees with the schema", () => {
  const decodeBySchema = Schema.decodeUnknownEither(LlmRequest.LlmRequest, { errors: "first", onExcessProperty: "error" })
  /** Keys in order, all the way down, so a difference of field order shows. */
  const shape = (value: unknown): unknown =>
    Array.isArray(value)
      ? value.map(shape)
      : typeof value === "object" && value !== null && !Duration.isDuration(value)
        ? Object.entries(value).map(([key, inner]) => [key, shape(inner)])
        : value
  const base = { provider: "openai", model: "gpt-4o", messages: [{ role: "user", content: "hi" }], maxTokens: 32 }
  const fields: Record<string, ReadonlyArray<unknown>> = {
    provider: ["openai", "", 1, undefined, null],
    model: ["m", "", undefined, ["m"]],
    messages: [
      [{ role: "system", content: "s" }, { content: "u", role: "user" }],
      [],
      [{ role: "user", content: "" }],
      [{ role: "user", content: "x", name: "n" }],
      [{ role: "user" }],
      [{ role: "robot", content: "x" }],
      [null],
      [, { role: "user", content: "x" }],
      Object.assign([{ role: "user", content: "x" }], { extra: 1 }),
      [{ role: "user", content: "x", [Symbol.for("s")]: 1 }],
      "hi",
      undefined
    ],
    temperature: [0, 2, 1.5, -0.1, 2.1, Number.NaN, Infinity, "1", undefined],
    maxTokens: [1, 0, 1.5, -1, 2 ** 60, "5", undefined],
    topP: [0, 1, 0.5, 1.1, Number.NaN, undefined],
    stop: [[], ["a"], ["a", "b", "c", "d"], ["a", "b", "c", "d", "e"], [""], [1], "a", undefined],
    timeout: [Duration.seconds(1), Duration.zero, Duration.millis(-1), 1000, undefined],
    metadata: [{}, { a: "b" }, { a: 1 }, Object.create(null), [], { [Symbol.for("s")]: "x" }, undefined, "x"],
    extra: [1, undefined]
  }
  const inputs: Array<unknown> = [base, { messages: base.messages }, null, "x", [], new (class { messages = base.messages })()]
  for (const [field, values] of Object.entries(fields)) for (const value of values) inputs.push({ ...base, [field]: value })
  inputs.push({ ...base, [Symbol.for("s")]: 1 })

  it("decodes every input as the schema does, field order and all", () => {
    for (const input of inputs) {
      const expected = decodeBySchema(input)
      const checked = Effect.runSync(Effect.either(LlmRequest.decode(input, "openai")))
      expect(checked._tag).toBe(expected._tag)
      if (expected._tag === "Right" && checked._tag === "Right") {
        expect(shape(checked.right)).toEqual(shape(expected.right))
        if (input !== null && typeof input === "object" && "timeout" in input) expect(checked.right.timeout).toBe(expected.right.timeout)
      }
    }
  })
})

describe("a provider's narrower limits", () => {
  const request = (fields: Partial<LlmRequest.LlmRequest>): LlmRequest.LlmRequest => ({ messages: user, ...fields })

  it("Anthropic's temperature is 0 to 1: 1 fits, 1.01 names the field", () => {
    expect(LlmRequest.checkLimits(request({ temperature: 1 }), "anthropic", LlmRequest.anthropicLimits)).toBeUndefined()
    const error = LlmRequest.checkLimits(request({ temperature: 1.01 }), "anthropic", LlmRequest.anthropicLimits)
    expect(error?.field).toBe("temperature")
    expect(error?.message).toBe("Invalid request: temperature must be a number between 0 and 1 for anthropic")
    expect(error?.local).toBe(true)
  })

  it("a thinking budget is at least 1024 and below maxTokens", () => {
    expect(LlmRequest.checkLimits(request({ reasoning: { budgetTokens: 1024 } }), "anthropic", LlmRequest.anthropicLimits)).toBeUndefined()
    expect(LlmRequest.checkLimits(request({ reasoning: { budgetTokens: 1023 } }), "anthropic", LlmRequest.anthropicLimits)?.message).toBe(
      "Invalid request: reasoning.budgetTokens must be at least 1024 for anthropic"
    )
    expect(
      LlmRequest.checkLimits(request({ reasoning: { budgetTokens: 2000 }, maxTokens: 1500 }), "anthropic", LlmRequest.anthropicLimits)?.field
    ).toBe("reasoning.budgetTokens")
  })

  it("no limits, no errors", () => {
    expect(LlmRequest.checkLimits(request({ temperature: 2, reasoning: { budgetTokens: 1 } }), "openai", {})).toBeUndefined()
  })
})

describe("assistantMessage sends an answer back", () => {
  const answer: LlmRequest.LlmResponse = {
    id: "1",
    provider: "anthropic",
    model: "m",
    content: "Checking.",
    toolCalls: [{ id: "toolu_1", name: "f", arguments: { a: 1 }, argumentsText: '{"a":1}' }],
    reasoning: "think",
    reasoningSignature: "sig",
    finishReason: "tool_calls",
    usage: { inputTokens: 1, outputTokens: 1, totalTokens: 2 }
  }

  it("as reasoning with its signature, text and tool calls, in that order", () => {
    expect(LlmRequest.assistantMessage(answer)).toStrictEqual({
      role: "assistant",
      content: [
        { type: "reasoning", text: "think", signature: "sig" },
        { type: "text", text: "Checking." },
        { type: "tool-call", id: "toolu_1", name: "f", arguments: { a: 1 } }
      ]
    })
  })

  it("reasoning without a signature, and an empty refusal as its text", () => {
    const { reasoningSignature: _, ...unsigned } = answer
    expect(LlmRequest.assistantMessage({ ...unsigned, toolCalls: [], content: "" }).content).toStrictEqual([{ type: "reasoning", text: "think" }])
    const refused = { ...answer, content: "", toolCalls: [], reasoning: undefined, refusal: "No." }
    const { reasoning: _r, ...rest } = refused
    expect(LlmRequest.assistantMessage(rest).content).toStrictEqual([{ type: "text", text: "No." }])
    expect(LlmRequest.assistantMessage({ ...rest, refusal: "" }).content).toStrictEqual([{ type: "text", text: "(no answer)" }])
  })
})
