/**
 * Real provider responses (recorded by the vercel/ai project) replayed over HTTP through the real
 * SDKs: each must give the exact text, finish reason and usage.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect, Stream } from "effect"
import * as Llm from "../../src/Llm.js"
import { readFileSync } from "node:fs"
import type * as LlmRequest from "../../src/LlmRequest.js"
import { collect, failure, hello, type Provider, recorded, setup, summarize } from "./support.js"

interface Case {
  readonly file: string
  readonly provider: Provider
  /** Exact text, or how to derive it independently from the recording. */
  readonly text: string
  readonly finishReason: LlmRequest.FinishReason
  readonly usage: LlmRequest.Usage
  readonly id?: string
}

const lines = (file: string): Array<Record<string, unknown>> =>
  readFileSync(recorded(file), "utf8")
    .split("\n")
    .filter((line) => line.trim() !== "")
    .map((line) => JSON.parse(line) as Record<string, unknown>)

/** The concatenated `delta.content` of an OpenAI-format recording, read without the library. */
const openAiStreamText = (file: string) =>
  lines(file)
    .map((chunk) => {
      const choice = (chunk.choices as Array<{ delta?: { content?: string | null } }> | undefined)?.[0]
      return choice?.delta?.content ?? ""
    })
    .join("")

/** `choices[0].message.content` of an OpenAI-format recording, read without the library. */
const openAiJsonText = (file: string) =>
  (JSON.parse(readFileSync(recorded(file), "utf8")) as { choices: Array<{ message: { content: string } }> }).choices[0]!
    .message.content

const completions: ReadonlyArray<Case> = [
  {
    file: "openai-chat/openai-text.json",
    provider: "openai",
    text: openAiJsonText("openai-chat/openai-text.json"),
    finishReason: "stop",
    usage: { inputTokens: 16, outputTokens: 363, totalTokens: 379, cachedInputTokens: 0, reasoningTokens: 0 },
    id: "chatcmpl-D8Z5f52zQqikDBEKQMQoYcWMcWPeU"
  },
  {
    file: "openai-chat/xai-text.json",
    provider: "compatible",
    text: "Grok",
    finishReason: "stop",
    usage: { inputTokens: 12, outputTokens: 2, totalTokens: 334, cachedInputTokens: 2, reasoningTokens: 320 }
  },
  {
    file: "openai-chat/groq-text.json",
    provider: "compatible",
    text: openAiJsonText("openai-chat/groq-text.json"),
    finishReason: "stop",
    usage: { inputTokens: 45, outputTokens: 607, totalTokens: 652 }
  },
  {
    file: "openai-chat/mistral-text.json",
    provider: "compatible",
    text: openAiJsonText("openai-chat/mistral-text.json"),
    finishReason: "stop",
    usage: { inputTokens: 13, outputTokens: 434, totalTokens: 447 }
  },
  {
    file: "openai-chat/deepseek-text.json",
    provider: "compatible",
    text: openAiJsonText("openai-chat/deepseek-text.json"),
    finishReason: "length",
    usage: { inputTokens: 13, outputTokens: 300, totalTokens: 313, cachedInputTokens: 0 }
  },
  {
    file: "anthropic-messages/anthropic-text.json",
    provider: "anthropic",
    text: "Hello! I'm doing well, thanks for asking. How are you doing today? Is there anything I can help you with?",
    finishReason: "stop",
    usage: { inputTokens: 12, outputTokens: 29, totalTokens: 41, cachedInputTokens: 0 },
    id: "msg_01VdEjxAP5ahtHKrrRdNBteQ"
  },
  {
    file: "anthropic-messages/anthropic-refusal.json",
    provider: "anthropic",
    text: "",
    finishReason: "refusal",
    usage: { inputTokens: 18, outputTokens: 5, totalTokens: 23, cachedInputTokens: 0 }
  },
  {
    file: "anthropic-messages/anthropic-refusal-no-details.json",
    provider: "anthropic",
    text: "",
    finishReason: "refusal",
    usage: { inputTokens: 18, outputTokens: 5, totalTokens: 23, cachedInputTokens: 0 }
  }
]

const streams: ReadonlyArray<Case> = [
  {
    file: "openai-chat/openai-text.chunks.txt",
    provider: "openai",
    text: openAiStreamText("openai-chat/openai-text.chunks.txt"),
    finishReason: "stop",
    usage: { inputTokens: 16, outputTokens: 300, totalTokens: 316, cachedInputTokens: 0, reasoningTokens: 0 },
    id: "chatcmpl-D8Z5oo6uDh67AD85p73ksdT1KxhE0"
  },
  {
    file: "openai-chat/azure-model-router.chunks.txt",
    provider: "compatible",
    text: "Capital of Denmark.",
    finishReason: "stop",
    usage: { inputTokens: 15, outputTokens: 78, totalTokens: 93, cachedInputTokens: 0, reasoningTokens: 64 },
    id: "chatcmpl-CYPS1lijGoK8gd9lYzY3r9Sx50nbt"
  },
  {
    file: "openai-chat/xai-text.chunks.txt",
    provider: "compatible",
    text: "Grok",
    finishReason: "stop",
    usage: { inputTokens: 12, outputTokens: 2, totalTokens: 354, cachedInputTokens: 11, reasoningTokens: 340 }
  },
  {
    file: "openai-chat/groq-text.chunks.txt",
    provider: "compatible",
    text: openAiStreamText("openai-chat/groq-text.chunks.txt"),
    finishReason: "stop",
    usage: { inputTokens: 45, outputTokens: 662, totalTokens: 707 }
  },
  {
    file: "openai-chat/mistral-text.chunks.txt",
    provider: "compatible",
    text: "Hello, world! This is a test response.",
    finishReason: "stop",
    usage: { inputTokens: 13, outputTokens: 8, totalTokens: 21 }
  },
  {
    file: "openai-chat/deepseek-text.chunks.txt",
    provider: "compatible",
    text: openAiStreamText("openai-chat/deepseek-text.chunks.txt"),
    finishReason: "length",
    usage: { inputTokens: 13, outputTokens: 400, totalTokens: 413, cachedInputTokens: 0 }
  },
  {
    file: "anthropic-messages/anthropic-text.chunks.txt",
    provider: "anthropic",
    text: "Hello! I'm doing well, thank you for asking. How are you doing today? Is there anything I can help you with?",
    finishReason: "stop",
    usage: { inputTokens: 12, outputTokens: 30, totalTokens: 42, cachedInputTokens: 0 },
    id: "msg_01QC4g3HwBThD4BaNtBckFDJ"
  },
  {
    file: "anthropic-messages/anthropic-message-delta-input-tokens.chunks.txt",
    provider: "anthropic",
    text: "pong",
    finishReason: "stop",
    usage: { inputTokens: 61, outputTokens: 2, totalTokens: 63 }
  },
  {
    file: "anthropic-messages/duplicate-message-start.chunks.txt",
    provider: "anthropic",
    text: "Hello, World!",
    finishReason: "stop",
    usage: { inputTokens: 17, outputTokens: 227, totalTokens: 244 }
  },
  {
    file: "anthropic-messages/spliced-message-start.chunks.txt",
    provider: "anthropic",
    text: "",
    finishReason: "tool_calls",
    usage: { inputTokens: 17, outputTokens: 65, totalTokens: 82 },
    id: "msg_second"
  },
  {
    file: "anthropic-messages/anthropic-refusal.chunks.txt",
    provider: "anthropic",
    text: "",
    finishReason: "refusal",
    usage: { inputTokens: 18, outputTokens: 5, totalTokens: 23, cachedInputTokens: 0 }
  }
]

describe("recorded whole responses give the recorded text, finish reason and usage", () => {
  for (const c of completions) {
    it.scoped(`${c.file} through ${c.provider}`, () =>
      Effect.gen(function* () {
        const { route, service, sim } = yield* setup(c.provider)
        sim.enqueue(route, { replay: recorded(c.file) })
        const response = yield* service.complete(hello)
        expect(response.content).toBe(c.text)
        expect(response.finishReason).toBe(c.finishReason)
        expect(response.usage).toStrictEqual(c.usage)
        if (c.id !== undefined) expect(response.id).toBe(c.id)
      })
    )
  }
})

describe("recorded streams give the recorded text, one Finish, finish reason and usage", () => {
  for (const c of streams) {
    it.scoped(`${c.file} through ${c.provider}`, () =>
      Effect.gen(function* () {
        const { route, service, sim } = yield* setup(c.provider)
        sim.enqueue(route, { replay: recorded(c.file) })
        const { emptyDeltas, finish, text } = summarize(yield* collect(service.stream(hello)))
        expect(text).toBe(c.text)
        expect(emptyDeltas).toBe(0)
        expect(finish.finishReason).toBe(c.finishReason)
        expect(finish.usage).toStrictEqual(c.usage)
        if (c.id !== undefined) expect(finish.id).toBe(c.id)
      })
    )
  }

  it.scoped("a spliced Anthropic stream leaks no thinking or tool input into the text; only the second message's call completes", () =>
    Effect.gen(function* () {
      const { route, service, sim } = yield* setup("anthropic")
      sim.enqueue(route, { replay: recorded("anthropic-messages/spliced-message-start.chunks.txt") })
      const events = yield* collect(service.stream(hello))
      expect(events.filter((e) => e._tag === "TextDelta")).toStrictEqual([])
      const response = yield* Llm.collect(Llm.fromStream(Stream.fromIterable(events)))
      expect(response.content).toBe("")
      expect(response.toolCalls).toStrictEqual([
        { id: "toolu_second", name: "test-tool", arguments: { value: "Sparkle Day" }, argumentsText: '{"value":"Sparkle Day"}' }
      ])
      expect(response.reasoningSignature).toBe("sig-second")
      // Parts already streamed cannot be taken back: the first message's reasoning stays before the second's.
      expect(response.reasoning).toBe("I will call the tool.Let me call the tool.")
    })
  )
})

describe("a recorded error body maps to its typed error", () => {
  it.scoped("OpenAI's unsupported_parameter 400 is an InvalidRequestError keeping the code", () =>
    Effect.gen(function* () {
      const { route, service, sim } = yield* setup("openai")
      sim.enqueue(route, { replay: recorded("openai-chat/reasoning-model-legacy-parameter-error.json") })
      const error = yield* failure(service.complete(hello))
      expect(error._tag).toBe("InvalidRequestError")
      if (error._tag !== "InvalidRequestError") return
      expect(error.code).toBe("unsupported_parameter")
      expect(error.status).toBe(400)
      expect(error.retryable).toBe(false)
      expect(error.message).toBe(
        "openai answered 400: Unsupported parameter: 'max_tokens' is not supported with this model. Use 'max_completion_tokens' instead."
      )
    })
  )
})
