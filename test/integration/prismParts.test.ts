/**
 * Requests with tools, tool calls, tool results, images and reasoning, as the OpenAI provider sends
 * them, validated by Prism against OpenAI's own API description (a violation is answered 422).
 */
import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import { Effect, Either, Redacted } from "effect"
import * as Llm from "../../src/Llm.js"
import type * as LlmRequest from "../../src/LlmRequest.js"
import * as OpenAi from "../../src/OpenAi.js"
import * as OpenAiCompatible from "../../src/OpenAiCompatible.js"
import { type Prism, startPrism } from "../prism.js"

let prism: Prism

beforeAll(async () => {
  prism = await startPrism("validate")
}, 60_000)
afterAll(() => prism?.stop())

const image = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg=="

const tools: ReadonlyArray<LlmRequest.Tool> = [
  {
    name: "get_weather",
    description: "The weather in a city",
    parameters: { type: "object", properties: { city: { type: "string" } }, required: ["city"] }
  },
  { name: "now", parameters: { type: "object", properties: {} } }
]

const requests: ReadonlyArray<readonly [string, LlmRequest.LlmRequest]> = [
  ["tools with every tool choice", { messages: [{ role: "user", content: "Weather?" }], tools, toolChoice: "auto" }],
  ["a named tool choice and no parallel calls", { messages: [{ role: "user", content: "Weather?" }], tools, toolChoice: { name: "now" }, parallelToolCalls: false }],
  ["required tools", { messages: [{ role: "user", content: "Weather?" }], tools, toolChoice: "required" }],
  ["no tools allowed", { messages: [{ role: "user", content: "Weather?" }], tools, toolChoice: "none" }],
  [
    "a tool call and its results (one an error), then text",
    {
      messages: [
        { role: "system", content: [{ type: "text", text: "Be brief.", cache: true }] },
        { role: "user", content: "Weather in Oslo and the time?" },
        {
          role: "assistant",
          content: [
            { type: "reasoning", text: "Two tools.", signature: "sig" },
            { type: "text", text: "Checking." },
            { type: "tool-call", id: "call_1", name: "get_weather", arguments: { city: "Oslo" } },
            { type: "tool-call", id: "call_2", name: "now", arguments: undefined }
          ]
        },
        {
          role: "tool",
          content: [
            { type: "tool-result", id: "call_1", name: "get_weather", result: { tempC: 4 } },
            { type: "tool-result", id: "call_2", name: "now", result: "clock unavailable", isError: true }
          ]
        },
        { role: "user", content: "Thanks" }
      ],
      tools
    }
  ],
  [
    "images by URL, base64 and data URL",
    {
      messages: [
        {
          role: "user",
          content: [
            { type: "text", text: "What is this?" },
            { type: "image", url: "https://example.com/cat.png" },
            { type: "image", data: image, mediaType: "image/png" },
            { type: "image", url: `data:image/jpeg;base64,${image}` }
          ]
        }
      ]
    }
  ],
  ["reasoning effort", { messages: [{ role: "user", content: "Think." }], reasoning: { effort: "low", budgetTokens: 2000 }, maxTokens: 100 }]
]

/** A 422 from Prism is an InvalidRequestError carrying its status; anything else means the body was valid. */
const notRejected = (result: Either.Either<LlmRequest.LlmResponse, unknown>) => {
  if (Either.isRight(result)) return true
  const error = result.left as { readonly _tag?: string; readonly status?: number; readonly message?: string }
  return error.status !== 422 ? true : error.message
}

describe("requests with parts pass OpenAI's API description", () => {
  for (const [what, request] of requests) {
    it.effect(`${what} (openai and a compatible endpoint)`, () =>
      Effect.gen(function* () {
        const openai = yield* OpenAi.make({ apiKey: Redacted.make("sk-prism"), baseURL: prism.url, model: "gpt-4o" })
        const compatible = yield* OpenAiCompatible.make({ name: "gateway", baseURL: prism.url, model: "gpt-4o" })
        for (const provider of [openai, compatible]) {
          const result = yield* Effect.either(Llm.fromProvider(provider).complete(request))
          expect(notRejected(result)).toBe(true)
        }
      })
    )
  }

  it("Prism does reject a tool message without tool_call_id (the check can fail)", async () => {
    const response = await fetch(`${prism.url}/chat/completions`, {
      method: "POST",
      headers: { "content-type": "application/json", authorization: "Bearer sk-prism" },
      body: JSON.stringify({ model: "gpt-4o", messages: [{ role: "tool", content: "x" }] })
    })
    await response.arrayBuffer()
    expect(response.status).toBe(422)
  })
})
