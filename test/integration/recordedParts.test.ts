/**
 * Recorded answers with tool calls, reasoning and structured output (recorded by the vercel/ai
 * project) replayed over HTTP through the real SDKs, whole and streamed: each must give the exact
 * calls, arguments, reasoning text and signature, text, finish reason and usage. What a recording
 * holds is read here from the recording itself, without the library.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect, Stream } from "effect"
import { readFileSync } from "node:fs"
import * as Llm from "../../src/Llm.js"
import type * as LlmRequest from "../../src/LlmRequest.js"
import { collect, hello, type Provider, recorded, setup } from "./support.js"

type Json = Record<string, unknown>

const json = (file: string): Json => JSON.parse(readFileSync(recorded(file), "utf8")) as Json

const lines = (file: string): Array<Json> =>
  readFileSync(recorded(file), "utf8")
    .split("\n")
    .filter((line) => line.trim() !== "")
    .map((line) => JSON.parse(line) as Json)

interface Expected {
  readonly content: string
  readonly toolCalls: ReadonlyArray<LlmRequest.ResponseToolCall>
  readonly reasoning: string | undefined
  readonly signature: string | undefined
}

const call = (id: string, name: string, argumentsText: string): LlmRequest.ResponseToolCall => ({
  id,
  name,
  arguments: JSON.parse(argumentsText === "" ? "{}" : argumentsText) as unknown,
  argumentsText
})

/** An OpenAI-format completion, read by hand. */
const openAiWhole = (file: string): Expected => {
  const message = (json(file).choices as Array<{ message: Json }>)[0]!.message
  const calls = (message.tool_calls as Array<{ id: string; function: { name: string; arguments: string } }> | undefined) ?? []
  const reasoning = (message.reasoning_content ?? message.reasoning) as string | undefined
  return {
    content: (message.content as string | null | undefined) ?? "",
    toolCalls: calls.map((c) => call(c.id, c.function.name, c.function.arguments)),
    reasoning,
    signature: undefined
  }
}

/** The text and reasoning of an OpenAI-format stream, read by hand (tool calls are stated per case). */
const openAiStreamed = (file: string): Omit<Expected, "toolCalls"> => {
  let content = ""
  let reasoning: string | undefined
  for (const chunk of lines(file)) {
    const delta = (chunk.choices as Array<{ delta?: Json }> | undefined)?.[0]?.delta
    if (delta === undefined) continue
    if (typeof delta.content === "string") content += delta.content
    const r = delta.reasoning_content ?? delta.reasoning
    if (typeof r === "string") reasoning = (reasoning ?? "") + r
  }
  return { content, reasoning, signature: undefined }
}

/** An Anthropic message, read by hand. */
const anthropicWhole = (file: string): Expected => {
  let content = ""
  let reasoning: string | undefined
  let signature: string | undefined
  const toolCalls: Array<LlmRequest.ResponseToolCall> = []
  for (const block of json(file).content as Array<Json>) {
    if (block.type === "text") content += block.text as string
    if (block.type === "thinking") {
      reasoning = (reasoning ?? "") + (block.thinking as string)
      signature = block.signature as string
    }
    if (block.type === "tool_use") toolCalls.push(call(block.id as string, block.name as string, JSON.stringify(block.input)))
  }
  return { content, toolCalls, reasoning, signature }
}

/** An Anthropic stream, read by hand: text, thinking and signature deltas, tool_use blocks and their JSON. */
const anthropicStreamed = (file: string): Expected => {
  let content = ""
  let reasoning: string | undefined
  let signature: string | undefined
  const open = new Map<number, { id: string; name: string; text: string }>()
  const toolCalls: Array<LlmRequest.ResponseToolCall> = []
  for (const event of lines(file)) {
    const index = event.index as number
    if (event.type === "content_block_start") {
      const block = event.content_block as Json
      if (block.type === "tool_use") open.set(index, { id: block.id as string, name: block.name as string, text: "" })
    }
    if (event.type === "content_block_delta") {
      const delta = event.delta as Json
      if (delta.type === "text_delta") content += delta.text as string
      if (delta.type === "thinking_delta") reasoning = (reasoning ?? "") + (delta.thinking as string)
      if (delta.type === "signature_delta") signature = delta.signature as string
      if (delta.type === "input_json_delta") open.get(index)!.text += delta.partial_json as string
    }
    if (event.type === "content_block_stop" && open.has(index)) {
      const { id, name, text } = open.get(index)!
      toolCalls.push(call(id, name, text === "" ? "{}" : text))
    }
  }
  return { content, toolCalls, reasoning, signature }
}

interface Case {
  readonly file: string
  readonly provider: Provider
  readonly expected: Expected
  readonly finishReason: LlmRequest.FinishReason
  readonly usage: LlmRequest.Usage
}

const weatherSf = '{"location": "San Francisco"}'

const whole: ReadonlyArray<Case> = [
  {
    file: "openai-chat/groq-tool-call.json",
    provider: "compatible",
    expected: openAiWhole("openai-chat/groq-tool-call.json"),
    finishReason: "tool_calls",
    usage: { inputTokens: 218, outputTokens: 15, totalTokens: 233 }
  },
  {
    file: "openai-chat/mistral-tool-call.json",
    provider: "compatible",
    expected: openAiWhole("openai-chat/mistral-tool-call.json"),
    finishReason: "tool_calls",
    usage: { inputTokens: 124, outputTokens: 22, totalTokens: 146 }
  },
  {
    file: "openai-chat/xai-tool-call.json",
    provider: "compatible",
    expected: openAiWhole("openai-chat/xai-tool-call.json"),
    finishReason: "tool_calls",
    usage: { inputTokens: 307, outputTokens: 26, totalTokens: 588, cachedInputTokens: 244, reasoningTokens: 255 }
  },
  {
    file: "openai-chat/deepseek-tool-call.json",
    provider: "compatible",
    expected: openAiWhole("openai-chat/deepseek-tool-call.json"),
    finishReason: "tool_calls",
    usage: { inputTokens: 339, outputTokens: 92, totalTokens: 431, cachedInputTokens: 320, reasoningTokens: 48 }
  },
  {
    file: "openai-chat/deepseek-reasoning.json",
    provider: "compatible",
    expected: openAiWhole("openai-chat/deepseek-reasoning.json"),
    finishReason: "stop",
    usage: { inputTokens: 18, outputTokens: 345, totalTokens: 363, cachedInputTokens: 0, reasoningTokens: 315 }
  },
  {
    file: "openai-chat/groq-reasoning.json",
    provider: "compatible",
    expected: openAiWhole("openai-chat/groq-reasoning.json"),
    finishReason: "stop",
    usage: { inputTokens: 17, outputTokens: 649, totalTokens: 666, reasoningTokens: 570 }
  },
  {
    file: "openai-chat/deepseek-json.json",
    provider: "compatible",
    expected: openAiWhole("openai-chat/deepseek-json.json"),
    finishReason: "stop",
    usage: { inputTokens: 495, outputTokens: 144, totalTokens: 639, cachedInputTokens: 320, reasoningTokens: 118 }
  },
  {
    file: "anthropic-messages/anthropic-json-tool.1.json",
    provider: "anthropic",
    expected: anthropicWhole("anthropic-messages/anthropic-json-tool.1.json"),
    finishReason: "tool_calls",
    usage: { inputTokens: 1151, outputTokens: 87, totalTokens: 1238, cachedInputTokens: 0 }
  },
  {
    file: "anthropic-messages/anthropic-json-output-format.1.json",
    provider: "anthropic",
    expected: anthropicWhole("anthropic-messages/anthropic-json-output-format.1.json"),
    finishReason: "stop",
    usage: { inputTokens: 371, outputTokens: 629, totalTokens: 1000, cachedInputTokens: 0 }
  },
  {
    file: "anthropic-messages/anthropic-tool-no-args.json",
    provider: "anthropic",
    expected: anthropicWhole("anthropic-messages/anthropic-tool-no-args.json"),
    finishReason: "tool_calls",
    usage: { inputTokens: 602, outputTokens: 93, totalTokens: 695, cachedInputTokens: 0 }
  },
  {
    file: "anthropic-messages/anthropic-clear-thinking.1.json",
    provider: "anthropic",
    expected: anthropicWhole("anthropic-messages/anthropic-clear-thinking.1.json"),
    finishReason: "stop",
    usage: { inputTokens: 69, outputTokens: 33, totalTokens: 102, cachedInputTokens: 0 }
  },
  {
    file: "anthropic-messages/anthropic-claude-opus-5-reasoning-high.1.json",
    provider: "anthropic",
    expected: anthropicWhole("anthropic-messages/anthropic-claude-opus-5-reasoning-high.1.json"),
    finishReason: "stop",
    usage: { inputTokens: 51, outputTokens: 1699, totalTokens: 1750, cachedInputTokens: 0 }
  }
]

const streamed: ReadonlyArray<Case> = [
  {
    file: "openai-chat/groq-tool-call.chunks.txt",
    provider: "compatible",
    expected: { ...openAiStreamed("openai-chat/groq-tool-call.chunks.txt"), toolCalls: [call("tk85n1k4m", "weather", "{}")] },
    finishReason: "tool_calls",
    usage: { inputTokens: 210, outputTokens: 15, totalTokens: 225 }
  },
  {
    file: "openai-chat/mistral-tool-call.chunks.txt",
    provider: "compatible",
    expected: { ...openAiStreamed("openai-chat/mistral-tool-call.chunks.txt"), toolCalls: [call("gSIMJiOkT", "weather", weatherSf)] },
    finishReason: "tool_calls",
    usage: { inputTokens: 124, outputTokens: 22, totalTokens: 146 }
  },
  {
    file: "openai-chat/mistral-incremental-tool-call.chunks.txt",
    provider: "compatible",
    expected: {
      ...openAiStreamed("openai-chat/mistral-incremental-tool-call.chunks.txt"),
      toolCalls: [call("chatcmpl-tool-9f149c74c42f265b", "webSearchTool", '{"query": "current Berlin weather"}')]
    },
    finishReason: "tool_calls",
    usage: { inputTokens: 171, outputTokens: 14, totalTokens: 185, cachedInputTokens: 128 }
  },
  {
    file: "openai-chat/xai-tool-call.chunks.txt",
    provider: "compatible",
    expected: {
      ...openAiStreamed("openai-chat/xai-tool-call.chunks.txt"),
      toolCalls: [call("call_79382389", "weather", '{"location":"San Francisco"}')]
    },
    finishReason: "tool_calls",
    usage: { inputTokens: 307, outputTokens: 26, totalTokens: 560, cachedInputTokens: 306, reasoningTokens: 227 }
  },
  {
    file: "openai-chat/deepseek-tool-call.chunks.txt",
    provider: "compatible",
    expected: {
      ...openAiStreamed("openai-chat/deepseek-tool-call.chunks.txt"),
      toolCalls: [call("call_00_ioIn7yN9p1ZOMNpDLwd4MgAF", "weather", weatherSf)]
    },
    finishReason: "tool_calls",
    usage: { inputTokens: 339, outputTokens: 83, totalTokens: 422, cachedInputTokens: 320, reasoningTokens: 39 }
  },
  {
    file: "openai-chat/deepseek-reasoning.chunks.txt",
    provider: "compatible",
    expected: { ...openAiStreamed("openai-chat/deepseek-reasoning.chunks.txt"), toolCalls: [] },
    finishReason: "stop",
    usage: { inputTokens: 18, outputTokens: 219, totalTokens: 237, cachedInputTokens: 0, reasoningTokens: 205 }
  },
  {
    file: "openai-chat/groq-reasoning.chunks.txt",
    provider: "compatible",
    expected: { ...openAiStreamed("openai-chat/groq-reasoning.chunks.txt"), toolCalls: [] },
    finishReason: "stop",
    usage: { inputTokens: 17, outputTokens: 1107, totalTokens: 1124, reasoningTokens: 963 }
  },
  {
    file: "anthropic-messages/anthropic-json-tool.1.chunks.txt",
    provider: "anthropic",
    expected: anthropicStreamed("anthropic-messages/anthropic-json-tool.1.chunks.txt"),
    finishReason: "tool_calls",
    usage: { inputTokens: 849, outputTokens: 47, totalTokens: 896, cachedInputTokens: 0 }
  },
  {
    file: "anthropic-messages/anthropic-json-output-format.1.chunks.txt",
    provider: "anthropic",
    expected: anthropicStreamed("anthropic-messages/anthropic-json-output-format.1.chunks.txt"),
    finishReason: "stop",
    usage: { inputTokens: 313, outputTokens: 305, totalTokens: 618, cachedInputTokens: 0 }
  },
  {
    file: "anthropic-messages/anthropic-tool-no-args.chunks.txt",
    provider: "anthropic",
    expected: anthropicStreamed("anthropic-messages/anthropic-tool-no-args.chunks.txt"),
    finishReason: "tool_calls",
    usage: { inputTokens: 565, outputTokens: 48, totalTokens: 613, cachedInputTokens: 0 }
  },
  {
    file: "anthropic-messages/anthropic-clear-thinking.1.chunks.txt",
    provider: "anthropic",
    expected: anthropicStreamed("anthropic-messages/anthropic-clear-thinking.1.chunks.txt"),
    finishReason: "stop",
    usage: { inputTokens: 69, outputTokens: 53, totalTokens: 122, cachedInputTokens: 0 }
  }
]

const check = (response: LlmRequest.LlmResponse, c: Case) => {
  expect(response.content).toBe(c.expected.content)
  expect(response.toolCalls).toStrictEqual(c.expected.toolCalls)
  expect(response.reasoning).toBe(c.expected.reasoning)
  expect(response.reasoningSignature).toBe(c.expected.signature)
  expect(response.refusal).toBeUndefined()
  expect(response.finishReason).toBe(c.finishReason)
  expect(response.usage).toStrictEqual(c.usage)
}

describe("recorded whole answers with tool calls, reasoning or structured output", () => {
  for (const c of whole) {
    it.scoped(`${c.file} through ${c.provider}`, () =>
      Effect.gen(function* () {
        const { route, service, sim } = yield* setup(c.provider)
        sim.enqueue(route, { replay: recorded(c.file) })
        check(yield* service.complete(hello), c)
      })
    )
  }
})

describe("recorded streams with tool calls, reasoning or structured output", () => {
  for (const c of streamed) {
    it.scoped(`${c.file} through ${c.provider}: the parts collect into the recorded answer`, () =>
      Effect.gen(function* () {
        const { route, service, sim } = yield* setup(c.provider)
        sim.enqueue(route, { replay: recorded(c.file) })
        const events = yield* collect(service.stream(hello))
        check(yield* Llm.collect(Llm.fromStream(Stream.fromIterable(events))), c)
        // Each call starts, streams its arguments and completes once, before the one Finish.
        for (const expected of c.expected.toolCalls) {
          const mine = events.filter((e) => "id" in e && e._tag !== "Finish" && e.id === expected.id)
          expect(mine[0]?._tag).toBe("ToolCallStart")
          expect(mine.at(-1)?._tag).toBe("ToolCall")
          const deltas = mine.filter((e) => e._tag === "ToolCallDelta").map((e) => (e._tag === "ToolCallDelta" ? e.argumentsDelta : ""))
          expect(deltas.join("") === expected.argumentsText || (deltas.length === 0 && expected.argumentsText === "{}")).toBe(true)
        }
        expect(events.filter((e) => e._tag === "Finish")).toHaveLength(1)
        expect(events.at(-1)?._tag).toBe("Finish")
      })
    )
  }
})

describe("structured output comes back as JSON", () => {
  it.scoped("DeepSeek's JSON mode answer is a JSON document in the text", () =>
    Effect.gen(function* () {
      const { route, service, sim } = yield* setup("compatible")
      sim.enqueue(route, { replay: recorded("openai-chat/deepseek-json.json") })
      const response = yield* service.complete(hello)
      expect(JSON.parse(response.content)).toStrictEqual(JSON.parse(openAiWhole("openai-chat/deepseek-json.json").content))
    })
  )

  it.scoped("Anthropic's forced json tool gives the object as the call's arguments, whole and streamed alike", () =>
    Effect.gen(function* () {
      const { route, service, sim } = yield* setup("anthropic")
      sim.enqueue(route, { replay: recorded("anthropic-messages/anthropic-json-tool.1.chunks.txt") })
      const response = yield* Llm.collect(Llm.fromStream(service.stream(hello)))
      expect(response.toolCalls[0]?.name).toBe("json")
      expect(response.toolCalls[0]?.arguments).toStrictEqual({
        elements: [{ location: "San Francisco", temperature: 58, condition: "sunny" }]
      })
    })
  )
})
