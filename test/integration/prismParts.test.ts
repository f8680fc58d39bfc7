/**
 * Requests with tools, tool calls, tool results, images and reasoning, as the OpenAI provider sends
 * them, validated by Prism against OpenAI's own API description (a violation is answered 422).
 */
import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import { Effect, Either, Redacted } from "effect"
import * as Http from "node:http"
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

describe("random answers valid for OpenAI's API description", () => {
  let random: Prism
  let proxy: Http.Server
  let proxyUrl = ""
  const bodies: Array<string> = []

  beforeAll(async () => {
    random = await startPrism("random")
    // Forwards to Prism and keeps each answer's body, to compare what the library made of it.
    proxy = Http.createServer((request, response) => {
      const chunks: Array<Buffer> = []
      request.on("data", (chunk: Buffer) => chunks.push(chunk))
      request.on("end", () => {
        void fetch(`${random.url}${request.url ?? "/"}`, {
          method: request.method ?? "POST",
          headers: { "content-type": "application/json", authorization: "Bearer sk-prism" },
          body: Buffer.concat(chunks)
        }).then(async (answer) => {
          const text = await answer.text()
          bodies.push(text)
          response.writeHead(answer.status, { "content-type": answer.headers.get("content-type") ?? "application/json" })
          response.end(text)
        })
      })
    })
    await new Promise<void>((resolve) => proxy.listen(0, "127.0.0.1", () => resolve()))
    const address = proxy.address()
    proxyUrl = `http://127.0.0.1:${typeof address === "object" && address !== null ? address.port : 0}`
  }, 60_000)
  afterAll(async () => {
    await new Promise<void>((resolve) => proxy?.close(() => resolve()))
    await random?.stop()
  })

  it.effect("each is an answer or a typed error; a refusal is a refusal, tool calls keep their ids and text", () =>
    Effect.gen(function* () {
      const openai = yield* OpenAi.make({ apiKey: Redacted.make("sk-prism"), baseURL: proxyUrl, model: "gpt-4o" })
      const service = Llm.fromProvider(openai)
      let refusals = 0
      let withCalls = 0
      for (let i = 0; i < 60; i++) {
        const result = yield* Effect.either(service.complete({ messages: [{ role: "user", content: `question ${i}` }], tools }))
        const body = JSON.parse(bodies.at(-1) ?? "null") as {
          choices?: Array<{ message?: { refusal?: unknown; tool_calls?: Array<{ id?: unknown; function?: { arguments?: unknown } }> } }>
        } | null
        const message = Array.isArray(body?.choices) ? body.choices[0]?.message : undefined
        if (Either.isLeft(result)) {
          expect(typeof result.left._tag).toBe("string")
          continue
        }
        const response = result.right
        if (typeof message?.refusal === "string" && message.refusal !== "") {
          refusals++
          expect(response.refusal).toBe(message.refusal)
          expect(response.finishReason).toBe("refusal")
        } else {
          expect(response.refusal).toBeUndefined()
        }
        const calls = (Array.isArray(message?.tool_calls) ? message.tool_calls : []).filter(
          (c) => typeof c === "object" && c !== null && typeof c.function === "object" && c.function !== null
        )
        if (calls.length > 0) withCalls++
        expect(response.toolCalls.map((c) => c.id)).toStrictEqual(
          calls.map((c, n) => (typeof c.id === "string" && c.id !== "" ? c.id : `call_${n}`))
        )
        for (let n = 0; n < calls.length; n++) {
          const text = calls[n]!.function!.arguments
          if (typeof text === "string") expect(response.toolCalls[n]?.argumentsText).toBe(text)
        }
      }
      // Random answers are drawn from the description: some refuse, some call tools.
      expect(refusals + withCalls).toBeGreaterThan(0)
    })
  , 120_000)
})
