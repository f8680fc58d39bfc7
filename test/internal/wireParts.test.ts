/**
 * The wire mappings of parts beyond text, on the shapes endpoints really send and on hostile
 * ones: tool calls without ids, names or `index`, arguments as objects, refusals in pieces,
 * thinking blocks that start with text, tool results next to user messages.
 */
import { describe, expect, it } from "@effect/vitest"
import { Either } from "effect"
import * as AnthropicWire from "../../src/internal/anthropicWire.js"
import * as OpenAiWire from "../../src/internal/openAiWire.js"
import * as TokenEstimate from "../../src/internal/tokenEstimate.js"
import * as ToolArguments from "../../src/internal/toolArguments.js"
import type * as LlmRequest from "../../src/LlmRequest.js"
import { emitted } from "../integration/support.js"

const ctx = { provider: "p", now: 0, secret: undefined }

const completion = (message: Record<string, unknown>) => ({
  id: "c",
  model: "m",
  choices: [{ index: 0, message: { role: "assistant", ...message }, finish_reason: "tool_calls" }]
})

const rightOf = <A, E>(either: Either.Either<A, E>): A => {
  if (Either.isLeft(either)) throw new Error(`expected a right, got ${String(either.left)}`)
  return either.right
}

describe("OpenAI whole answers: tool calls as endpoints send them", () => {
  it("skips entries that are no calls; arguments as objects, null or missing; ids and names missing", () => {
    const response = rightOf(
      OpenAiWire.response(
        completion({
          content: null,
          tool_calls: [
            null,
            { id: "x" },
            { id: "a", function: { name: "f", arguments: { q: 1 } } },
            { id: "", function: { name: "g", arguments: null } },
            { function: { arguments: "{\"broken\": " } }
          ]
        }),
        ctx,
        "m"
      )
    )
    expect(response.toolCalls).toStrictEqual([
      { id: "a", name: "f", arguments: { q: 1 }, argumentsText: '{"q":1}' },
      { id: "call_1", name: "g", arguments: {}, argumentsText: "" },
      { id: "call_2", name: "", arguments: undefined, argumentsText: '{"broken": ' }
    ])
    expect(response.content).toBe("")
    expect(response.finishReason).toBe("tool_calls")
  })

  it("an empty refusal is no refusal; a Groq-style reasoning field is the reasoning", () => {
    const response = rightOf(OpenAiWire.response(completion({ content: "hi", refusal: "", reasoning: "because" }), ctx, "m"))
    expect(response.refusal).toBeUndefined()
    expect(response.reasoning).toBe("because")
  })
})

describe("OpenAI streams: tool-call deltas as endpoints send them", () => {
  const chunk = (delta: Record<string, unknown>, finish: string | null = null) => ({ id: "c", model: "m", choices: [{ delta, finish_reason: finish }] })

  it("deltas matched by id without index, a name that arrives late, arguments as an object", () => {
    const state = OpenAiWire.streamState("p", "m")
    expect(emitted(state, chunk({ tool_calls: [null, { id: "a", function: { name: "", arguments: "{\"x\":" } }] }))).toStrictEqual([
      { _tag: "ToolCallStart", id: "a", name: "" },
      { _tag: "ToolCallDelta", id: "a", argumentsDelta: '{"x":' }
    ])
    expect(emitted(state, chunk({ tool_calls: [{ id: "a", function: { name: "f", arguments: "1}" } }] }))).toStrictEqual([
      { _tag: "ToolCallDelta", id: "a", argumentsDelta: "1}" }
    ])
    expect(emitted(state, chunk({ tool_calls: [{ id: "b", function: { name: "g", arguments: { y: 2 } } }] }))).toStrictEqual([
      { _tag: "ToolCallStart", id: "b", name: "g" },
      { _tag: "ToolCallDelta", id: "b", argumentsDelta: '{"y":2}' }
    ])
    // Neither index nor id: the last call's.
    expect(emitted(state, chunk({ tool_calls: [{ function: { arguments: 7 } }] }))).toStrictEqual([])
    expect(emitted(state, chunk({}, "tool_calls"))).toStrictEqual([
      { _tag: "ToolCall", id: "a", name: "f", arguments: { x: 1 }, argumentsText: '{"x":1}' },
      { _tag: "ToolCall", id: "b", name: "g", arguments: { y: 2 }, argumentsText: '{"y":2}' }
    ])
    // A repeated finish reason completes nothing twice.
    expect(emitted(state, chunk({}, "tool_calls"))).toStrictEqual([])
  })

  it("a first delta without id or index gets an id of its own; a call without a function has no name", () => {
    const state = OpenAiWire.streamState("p", "m")
    expect(emitted(state, chunk({ tool_calls: [{ type: "function" }] }))).toStrictEqual([{ _tag: "ToolCallStart", id: "call_0", name: "" }])
  })

  it("a streamed refusal is joined and put on the Finish with finish reason refusal", () => {
    const state = OpenAiWire.streamState("p", "m")
    emitted(state, chunk({ refusal: "I can't " }))
    emitted(state, chunk({ refusal: "help." }, "stop"))
    expect(rightOf(state.finish())).toMatchObject({ refusal: "I can't help.", finishReason: "refusal" })
  })
})

describe("OpenAI request bodies", () => {
  it("a tool without description has none; a tool call without arguments sends {}", () => {
    const body = OpenAiWire.requestBody(
      {
        messages: [
          { role: "user", content: "x" },
          { role: "assistant", content: [{ type: "tool-call", id: "c", name: "f", arguments: undefined }] },
          { role: "tool", content: [{ type: "tool-result", id: "c", name: "f", result: "done" }] }
        ],
        tools: [{ name: "f", parameters: {} }]
      },
      "m",
      "max_tokens"
    )
    expect(body.tools).toStrictEqual([{ type: "function", function: { name: "f", parameters: {} } }])
    expect(body.messages[1]).toStrictEqual({
      role: "assistant",
      content: null,
      tool_calls: [{ id: "c", type: "function", function: { name: "f", arguments: "{}" } }]
    })
    expect(body.messages[2]).toStrictEqual({ role: "tool", tool_call_id: "c", content: "done" })
  })

  it("an assistant message of reasoning only keeps an empty content, as Chat Completions takes no reasoning", () => {
    const body = OpenAiWire.requestBody(
      { messages: [{ role: "user", content: "x" }, { role: "assistant", content: [{ type: "reasoning", text: "hm" }] }, { role: "user", content: "y" }] },
      "m",
      "max_tokens"
    )
    expect(body.messages[1]).toStrictEqual({ role: "assistant", content: "" })
  })
})

describe("Anthropic whole answers and streams", () => {
  it("a tool_use block without id, name or input is a call with {} arguments", () => {
    const response = rightOf(
      AnthropicWire.response({ id: "m", model: "c", content: [null, { type: "tool_use" }], stop_reason: "tool_use", usage: {} }, ctx, "c")
    )
    expect(response.toolCalls).toStrictEqual([{ id: "", name: "", arguments: {}, argumentsText: "{}" }])
  })

  it("a thinking block that starts with text, a tool_use block without id or name, deltas of unknown blocks ignored", () => {
    const state = AnthropicWire.streamState("p", "c")
    expect(emitted(state, { type: "content_block_start", index: 0, content_block: { type: "thinking", thinking: "Hm" } })).toStrictEqual([
      { _tag: "ReasoningDelta", text: "Hm" }
    ])
    expect(emitted(state, { type: "content_block_delta", index: 0, delta: { type: "signature_delta", signature: "" } })).toStrictEqual([])
    expect(emitted(state, { type: "content_block_start", index: 1, content_block: { type: "tool_use" } })).toStrictEqual([
      { _tag: "ToolCallStart", id: "", name: "" }
    ])
    expect(emitted(state, { type: "content_block_delta", index: 9, delta: { type: "input_json_delta", partial_json: "{}" } })).toStrictEqual([])
    expect(emitted(state, { type: "content_block_stop", index: 9 })).toStrictEqual([])
    expect(emitted(state, { type: "content_block_stop", index: 1 })).toStrictEqual([
      { _tag: "ToolCall", id: "", name: "", arguments: {}, argumentsText: "{}" }
    ])
  })

  it("a streamed refusal without stop_details keeps the text Claude wrote as the refusal", () => {
    const state = AnthropicWire.streamState("p", "c")
    emitted(state, { type: "content_block_delta", index: 0, delta: { type: "text_delta", text: "I won't." } })
    emitted(state, { type: "message_delta", delta: { stop_reason: "refusal", stop_details: null } })
    emitted(state, { type: "message_stop" })
    expect(rightOf(state.finish())).toMatchObject({ finishReason: "refusal", refusal: "I won't." })
  })
})

describe("Anthropic request bodies", () => {
  const base = (messages: LlmRequest.LlmRequest["messages"], extra: Partial<LlmRequest.LlmRequest> = {}) =>
    AnthropicWire.requestBody({ messages, ...extra }, "c", 1000)

  it("tool results join the user message after them; is_error is sent; a tool without description has none", () => {
    const body = base(
      [
        { role: "user", content: "x" },
        { role: "assistant", content: [{ type: "tool-call", id: "t", name: "f", arguments: undefined }] },
        { role: "tool", content: [{ type: "tool-result", id: "t", name: "f", result: "boom", isError: true, cache: true }] },
        { role: "user", content: "and now?" },
        { role: "user", content: "separate" }
      ],
      { tools: [{ name: "f", parameters: { type: "object" } }] }
    )
    expect(body.messages).toStrictEqual([
      { role: "user", content: "x" },
      { role: "assistant", content: [{ type: "tool_use", id: "t", name: "f", input: {} }] },
      {
        role: "user",
        content: [
          { type: "tool_result", tool_use_id: "t", content: "boom", is_error: true, cache_control: { type: "ephemeral" } },
          { type: "text", text: "and now?" }
        ]
      },
      { role: "user", content: "separate" }
    ])
    expect(body.tools).toStrictEqual([{ name: "f", input_schema: { type: "object" } }])
  })

  it("reasoning without effort or budget thinks with the medium budget; system strings join as before", () => {
    const body = base(
      [
        { role: "system", content: "one" },
        { role: "system", content: [{ type: "text", text: "two" }] },
        { role: "user", content: "x" }
      ],
      { reasoning: {} }
    )
    expect(body.thinking).toStrictEqual({ type: "enabled", budget_tokens: 2048 })
    expect(body.max_tokens).toBe(1000 + 2048)
    expect(body.system).toBe("one\n\ntwo")
  })
})

describe("token estimates and tool arguments", () => {
  it("counts a string result by its length and a value it cannot serialise as nothing", () => {
    const cyclic: Record<string, unknown> = {}
    cyclic.self = cyclic
    const message = (result: unknown): LlmRequest.Message => ({ role: "tool", content: [{ type: "tool-result", id: "c", name: "f", result }] })
    expect(TokenEstimate.contentChars(message("abcd").content)).toBe(5)
    expect(TokenEstimate.contentChars(message(cyclic).content)).toBe(1)
    expect(TokenEstimate.contentChars(message(undefined).content)).toBe(1)
  })

  it("counts the characters of answer each event carries", () => {
    expect(TokenEstimate.eventChars({ _tag: "TextDelta", text: "abc" })).toBe(3)
    expect(TokenEstimate.eventChars({ _tag: "ReasoningDelta", text: "ab" })).toBe(2)
    expect(TokenEstimate.eventChars({ _tag: "ToolCallStart", id: "c", name: "fn" })).toBe(2)
    expect(TokenEstimate.eventChars({ _tag: "ToolCallDelta", id: "c", argumentsDelta: "{}" })).toBe(2)
    expect(TokenEstimate.eventChars({ _tag: "ToolCall", id: "c", name: "fn", arguments: {}, argumentsText: "{}" })).toBe(0)
  })

  it("parses arguments: blank text is {}, broken JSON undefined", () => {
    expect(ToolArguments.parse("  ")).toStrictEqual({})
    expect(ToolArguments.parse("[1]")).toStrictEqual([1])
    expect(ToolArguments.parse("{")).toBeUndefined()
    expect(ToolArguments.text(undefined)).toBe("{}")
    expect(ToolArguments.resultText({ a: 1 })).toBe('{"a":1}')
  })
})

describe("parts beside Anthropic structured output through a forced tool", () => {
  const format: LlmRequest.ResponseFormat = { type: "json", name: "verdict", schema: { type: "object", properties: {} } }

  it("the forced tool goes beside the request's own tools", () => {
    const body = AnthropicWire.requestBody(
      { messages: [{ role: "user", content: "x" }], tools: [{ name: "lookup", parameters: { type: "object" } }], responseFormat: format },
      "c",
      1000,
      "tool"
    )
    expect((body.tools ?? []).map((t) => ("name" in t ? t.name : undefined))).toStrictEqual(["lookup", "verdict"])
    expect(body.tool_choice).toStrictEqual({ type: "tool", name: "verdict" })
  })

  it("whole: the forced tool's input is the text, another tool_use stays a call, thinking stays reasoning", () => {
    const response = rightOf(
      AnthropicWire.response(
        {
          id: "m",
          model: "c",
          content: [
            { type: "thinking", thinking: "hm", signature: "s" },
            { type: "text", text: "ignored" },
            { type: "tool_use", id: "t1", name: "lookup", input: { q: 1 } },
            { type: "tool_use", id: "t2", name: "verdict", input: { ok: true } }
          ],
          stop_reason: "tool_use",
          usage: {}
        },
        ctx,
        "c",
        "verdict"
      )
    )
    expect(response.content).toBe('{"ok":true}')
    expect(response.toolCalls).toStrictEqual([{ id: "t1", name: "lookup", arguments: { q: 1 }, argumentsText: '{"q":1}' }])
    expect(response.reasoning).toBe("hm")
    expect(response.finishReason).toBe("stop")
  })

  it("streamed: the forced tool's JSON is text; text blocks are not; another tool and thinking stream as parts", () => {
    const state = AnthropicWire.streamState("p", "c", undefined, "verdict")
    const events = [
      { type: "content_block_start", index: 0, content_block: { type: "thinking", thinking: "" } },
      { type: "content_block_delta", index: 0, delta: { type: "thinking_delta", thinking: "hm" } },
      { type: "content_block_start", index: 1, content_block: { type: "text", text: "no" } },
      { type: "content_block_delta", index: 1, delta: { type: "text_delta", text: "no" } },
      { type: "content_block_start", index: 2, content_block: { type: "tool_use", id: "t1", name: "lookup", input: {} } },
      { type: "content_block_delta", index: 2, delta: { type: "input_json_delta", partial_json: "{}" } },
      { type: "content_block_stop", index: 2 },
      { type: "content_block_start", index: 3, content_block: { type: "tool_use", id: "t2", name: "verdict", input: {} } },
      { type: "content_block_delta", index: 3, delta: { type: "input_json_delta", partial_json: '{"ok":' } },
      { type: "content_block_delta", index: 3, delta: { type: "input_json_delta", partial_json: "true}" } },
      { type: "content_block_stop", index: 3 },
      { type: "message_delta", delta: { stop_reason: "tool_use" } },
      { type: "message_stop" }
    ].flatMap((event) => emitted(state, event))
    expect(events).toStrictEqual([
      { _tag: "ReasoningDelta", text: "hm" },
      { _tag: "ToolCallStart", id: "t1", name: "lookup" },
      { _tag: "ToolCallDelta", id: "t1", argumentsDelta: "{}" },
      { _tag: "ToolCall", id: "t1", name: "lookup", arguments: {}, argumentsText: "{}" },
      { _tag: "TextDelta", text: '{"ok":' },
      { _tag: "TextDelta", text: "true}" }
    ])
    expect(rightOf(state.finish()).finishReason).toBe("stop")
  })
})
