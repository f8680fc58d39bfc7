/**
 * Messages and answers beyond text over real HTTP through the real SDKs: tool-call conversations,
 * images, reasoning sent back with its signature, refusals, broken tool arguments, cache marks and
 * a fallback that carries tool calls across providers. Each checks the wire body the provider
 * received as well as what the caller gets.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect, Stream } from "effect"
import * as Simulator from "../../simulator/Simulator.js"
import * as Fallback from "../../src/Fallback.js"
import * as Llm from "../../src/Llm.js"
import * as LlmRequest from "../../src/LlmRequest.js"
import { collect, failure, type Provider, providerAt, setup } from "./support.js"

const tools: ReadonlyArray<LlmRequest.Tool> = [
  {
    name: "get_weather",
    description: "The weather in a city",
    parameters: { type: "object", properties: { city: { type: "string" } }, required: ["city"] }
  }
]

const question: LlmRequest.LlmRequest = {
  messages: [{ role: "user", content: "Weather in Oslo?" }],
  tools,
  toolChoice: "auto"
}

/** The last request body the simulator received. */
const lastBody = (sim: Simulator.Simulator): Record<string, unknown> =>
  sim.requests().at(-1)?.body as Record<string, unknown>

const modes = ["whole", "streamed"] as const

const ask = (service: Llm.Service, request: LlmRequest.LlmRequest, mode: Llm.Mode) => Llm.collect(service.call(request, mode))

const providers: ReadonlyArray<Provider> = ["openai", "anthropic", "compatible"]

const openAiSecondTurn = [
  { role: "user", content: "Weather in Oslo?" },
  {
    role: "assistant",
    content: null,
    tool_calls: [{ id: "call_1", type: "function", function: { name: "get_weather", arguments: '{"city":"Oslo"}' } }]
  },
  { role: "tool", tool_call_id: "call_1", content: '{"tempC":4}' }
]

const anthropicSecondTurn = [
  { role: "user", content: "Weather in Oslo?" },
  { role: "assistant", content: [{ type: "tool_use", id: "call_1", name: "get_weather", input: { city: "Oslo" } }] },
  { role: "user", content: [{ type: "tool_result", tool_use_id: "call_1", content: '{"tempC":4}' }] }
]

describe("a two-turn tool conversation: the model calls a tool, the result goes back, the model answers", () => {
  for (const provider of providers) {
    for (const mode of modes) {
      it.scoped(`${provider}, ${mode}`, () =>
        Effect.gen(function* () {
          const { route, service, sim } = yield* setup(provider)
          sim.enqueue(route, { toolCalls: [{ id: "call_1", name: "get_weather", arguments: { city: "Oslo" } }] })
          const first = yield* ask(service, question, mode)
          expect(first.toolCalls).toStrictEqual([
            { id: "call_1", name: "get_weather", arguments: { city: "Oslo" }, argumentsText: '{"city":"Oslo"}' }
          ])
          expect(first.finishReason).toBe("tool_calls")
          expect(first.content).toBe("")

          sim.enqueue(route, { text: "It is 4 degrees in Oslo." })
          const second = yield* ask(
            service,
            {
              ...question,
              messages: [
                ...question.messages,
                LlmRequest.assistantMessage(first),
                { role: "tool", content: [{ type: "tool-result", id: "call_1", name: "get_weather", result: { tempC: 4 } }] }
              ]
            },
            mode
          )
          expect(second.content).toBe("It is 4 degrees in Oslo.")
          expect(second.toolCalls).toStrictEqual([])

          const body = lastBody(sim)
          if (provider === "anthropic") {
            expect(body.messages).toStrictEqual(anthropicSecondTurn)
            expect(body.tools).toStrictEqual([
              { name: "get_weather", description: "The weather in a city", input_schema: tools[0]!.parameters }
            ])
            expect(body.tool_choice).toStrictEqual({ type: "auto" })
          } else {
            expect(body.messages).toStrictEqual(openAiSecondTurn)
            expect(body.tools).toStrictEqual([
              {
                type: "function",
                function: { name: "get_weather", description: "The weather in a city", parameters: tools[0]!.parameters }
              }
            ])
            expect(body.tool_choice).toBe("auto")
          }
        })
      )
    }
  }

  it.scoped("parallel tool calls come back in order, each with its own arguments (OpenAI stream)", () =>
    Effect.gen(function* () {
      const { route, service, sim } = yield* setup("openai")
      sim.enqueue(route, {
        toolCalls: [
          { id: "call_a", name: "get_weather", arguments: { city: "Oslo" } },
          { id: "call_b", name: "get_weather", arguments: { city: "Rome" } }
        ]
      })
      const events = yield* collect(service.stream(question))
      expect(events.filter((e) => e._tag === "ToolCall").map((e) => (e._tag === "ToolCall" ? [e.id, e.arguments] : []))).toStrictEqual([
        ["call_a", { city: "Oslo" }],
        ["call_b", { city: "Rome" }]
      ])
      expect(events.map((e) => e._tag).filter((t) => t.startsWith("ToolCall"))).toStrictEqual([
        "ToolCallStart",
        "ToolCallDelta",
        "ToolCallDelta",
        "ToolCallStart",
        "ToolCallDelta",
        "ToolCallDelta",
        "ToolCall",
        "ToolCall"
      ])
    })
  )
})

describe("tool settings reach each wire format", () => {
  const settings: LlmRequest.LlmRequest = { ...question, toolChoice: { name: "get_weather" }, parallelToolCalls: false }

  it.scoped("OpenAI: a named tool choice and parallel_tool_calls", () =>
    Effect.gen(function* () {
      const { service, sim } = yield* setup("openai")
      yield* service.complete(settings)
      expect(lastBody(sim).tool_choice).toStrictEqual({ type: "function", function: { name: "get_weather" } })
      expect(lastBody(sim).parallel_tool_calls).toBe(false)
    })
  )

  it.scoped("Anthropic: a named tool choice with disable_parallel_tool_use; required is any; none is none", () =>
    Effect.gen(function* () {
      const { service, sim } = yield* setup("anthropic")
      yield* service.complete(settings)
      expect(lastBody(sim).tool_choice).toStrictEqual({ type: "tool", name: "get_weather", disable_parallel_tool_use: true })
      yield* service.complete({ ...question, toolChoice: "required" })
      expect(lastBody(sim).tool_choice).toStrictEqual({ type: "any" })
      yield* service.complete({ ...question, toolChoice: "none" })
      expect(lastBody(sim).tool_choice).toStrictEqual({ type: "none" })
      yield* service.complete({ ...question, toolChoice: undefined, parallelToolCalls: false })
      expect(lastBody(sim).tool_choice).toStrictEqual({ type: "auto", disable_parallel_tool_use: true })
    })
  )
})

describe("broken tool-call arguments: the call succeeds with arguments undefined and the text kept", () => {
  const cases: ReadonlyArray<readonly [Provider, Llm.Mode]> = [
    ["openai", "whole"],
    ["openai", "streamed"],
    ["compatible", "streamed"],
    ["anthropic", "streamed"]
  ]
  for (const [provider, mode] of cases) {
    it.scoped(`${provider}, ${mode}`, () =>
      Effect.gen(function* () {
        const { route, service, sim } = yield* setup(provider)
        sim.enqueue(route, { toolCalls: [{ id: "call_x", name: "get_weather", argumentsText: '{"city": "Os' }] })
        const response = yield* ask(service, question, mode)
        expect(response.toolCalls).toStrictEqual([
          { id: "call_x", name: "get_weather", arguments: undefined, argumentsText: '{"city": "Os' }
        ])
        expect(response.finishReason).toBe("tool_calls")
      })
    )
  }
})

const image = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg=="

const withImages: LlmRequest.LlmRequest = {
  messages: [
    {
      role: "user",
      content: [
        { type: "text", text: "What do these show?" },
        { type: "image", url: "https://example.com/cat.png" },
        { type: "image", data: image, mediaType: "image/png" },
        { type: "image", url: `data:image/webp;base64,${image}` }
      ]
    }
  ]
}

describe("images by URL and by base64 reach both wire formats", () => {
  for (const provider of ["openai", "compatible"] as const) {
    it.scoped(`${provider}: image_url parts, base64 as a data: URL`, () =>
      Effect.gen(function* () {
        const { service, sim } = yield* setup(provider)
        const response = yield* service.complete(withImages)
        expect(response.content).toBe("What do these show?")
        expect(lastBody(sim).messages).toStrictEqual([
          {
            role: "user",
            content: [
              { type: "text", text: "What do these show?" },
              { type: "image_url", image_url: { url: "https://example.com/cat.png" } },
              { type: "image_url", image_url: { url: `data:image/png;base64,${image}` } },
              { type: "image_url", image_url: { url: `data:image/webp;base64,${image}` } }
            ]
          }
        ])
      })
    )
  }

  it.scoped("anthropic: image blocks with a url source and base64 sources (a data: URL too)", () =>
    Effect.gen(function* () {
      const { service, sim } = yield* setup("anthropic")
      yield* service.stream(withImages).pipe(Stream.runDrain)
      expect(lastBody(sim).messages).toStrictEqual([
        {
          role: "user",
          content: [
            { type: "text", text: "What do these show?" },
            { type: "image", source: { type: "url", url: "https://example.com/cat.png" } },
            { type: "image", source: { type: "base64", media_type: "image/png", data: image } },
            { type: "image", source: { type: "base64", media_type: "image/webp", data: image } }
          ]
        }
      ])
    })
  )
})

describe("reasoning", () => {
  for (const mode of modes) {
    it.scoped(`Anthropic, ${mode}: thinking comes back with its signature and goes back as a signed thinking block`, () =>
      Effect.gen(function* () {
        const { route, service, sim } = yield* setup("anthropic")
        sim.enqueue(route, {
          reasoning: "Oslo in winter is cold.",
          signature: "sig-abc",
          toolCalls: [{ id: "toolu_1", name: "get_weather", arguments: { city: "Oslo" } }]
        })
        const request: LlmRequest.LlmRequest = { ...question, reasoning: { budgetTokens: 2048 } }
        const first = yield* ask(service, request, mode)
        expect(lastBody(sim).thinking).toStrictEqual({ type: "enabled", budget_tokens: 2048 })
        expect(lastBody(sim).max_tokens).toBe(4096 + 2048)
        expect(first.reasoning).toBe("Oslo in winter is cold.")
        expect(first.reasoningSignature).toBe("sig-abc")

        sim.enqueue(route, { text: "Cold: 4 degrees." })
        yield* ask(
          service,
          {
            ...request,
            messages: [
              ...request.messages,
              LlmRequest.assistantMessage(first),
              { role: "tool", content: [{ type: "tool-result", id: "toolu_1", name: "get_weather", result: "4 degrees", isError: false }] }
            ]
          },
          mode
        )
        expect((lastBody(sim).messages as Array<unknown>)[1]).toStrictEqual({
          role: "assistant",
          content: [
            { type: "thinking", thinking: "Oslo in winter is cold.", signature: "sig-abc" },
            { type: "tool_use", id: "toolu_1", name: "get_weather", input: { city: "Oslo" } }
          ]
        })
      })
    )
  }

  it.scoped("OpenAI: effort is reasoning_effort; reasoning parts are not sent back; reasoning_content is read", () =>
    Effect.gen(function* () {
      const { route, service, sim } = yield* setup("openai")
      sim.enqueue(route, { reasoning: "Think first.", text: "Done." })
      const response = yield* service.complete({
        messages: [
          { role: "user", content: "hi" },
          { role: "assistant", content: [{ type: "reasoning", text: "earlier" }, { type: "text", text: "hello" }] },
          { role: "user", content: "again" }
        ],
        reasoning: { effort: "high", budgetTokens: 5000 }
      })
      expect(response.reasoning).toBe("Think first.")
      expect(response.content).toBe("Done.")
      expect(lastBody(sim).reasoning_effort).toBe("high")
      expect(lastBody(sim).messages).toStrictEqual([
        { role: "user", content: "hi" },
        { role: "assistant", content: "hello" },
        { role: "user", content: "again" }
      ])
    })
  )

  it.scoped("Anthropic: a reasoning part without a signature is left out; effort sets a budget", () =>
    Effect.gen(function* () {
      const { service, sim } = yield* setup("anthropic")
      yield* service.complete({
        messages: [
          { role: "user", content: "hi" },
          { role: "assistant", content: [{ type: "reasoning", text: "unsigned" }, { type: "text", text: "hello" }] },
          { role: "user", content: "again" }
        ],
        reasoning: { effort: "low" },
        maxTokens: 2000
      })
      expect((lastBody(sim).messages as Array<unknown>)[1]).toStrictEqual({ role: "assistant", content: [{ type: "text", text: "hello" }] })
      expect(lastBody(sim).thinking).toStrictEqual({ type: "enabled", budget_tokens: 1024 })
      expect(lastBody(sim).max_tokens).toBe(2000)
    })
  )
})

describe("refusals are refusals, not empty successes", () => {
  for (const mode of modes) {
    it.scoped(`OpenAI, ${mode}: content null with refusal is refusal on the answer, finish reason refusal`, () =>
      Effect.gen(function* () {
        const { route, service, sim } = yield* setup("openai")
        sim.enqueue(route, { refusal: "I can't help with that." })
        const response = yield* ask(service, { messages: [{ role: "user", content: "something bad" }] }, mode)
        expect(response.refusal).toBe("I can't help with that.")
        expect(response.finishReason).toBe("refusal")
        expect(response.content).toBe("")
      })
    )

    it.scoped(`Anthropic, ${mode}: stop_reason refusal gives its explanation as the refusal`, () =>
      Effect.gen(function* () {
        const { route, service, sim } = yield* setup("anthropic")
        sim.enqueue(route, { refusal: "Blocked under the usage policy." })
        const response = yield* ask(service, { messages: [{ role: "user", content: "something bad" }] }, mode)
        expect(response.refusal).toBe("Blocked under the usage policy.")
        expect(response.finishReason).toBe("refusal")
      })
    )
  }

  it.scoped("an OpenAI completion body exactly as OpenAI sends a refusal", () =>
    Effect.gen(function* () {
      const { route, service, sim } = yield* setup("openai")
      sim.enqueue(route, {
        body: {
          id: "chatcmpl-r",
          object: "chat.completion",
          created: 1,
          model: "gpt-4o",
          choices: [
            { index: 0, message: { role: "assistant", content: null, refusal: "No.", annotations: [] }, logprobs: null, finish_reason: "stop" }
          ],
          usage: { prompt_tokens: 5, completion_tokens: 2, total_tokens: 7 }
        }
      })
      const response = yield* service.complete({ messages: [{ role: "user", content: "x" }] })
      expect(response).toMatchObject({ content: "", refusal: "No.", finishReason: "refusal", toolCalls: [] })
    })
  )

  it.scoped("the streamed refusal is on the Finish", () =>
    Effect.gen(function* () {
      const { route, service, sim } = yield* setup("openai")
      sim.enqueue(route, { refusal: "Not this one." })
      const events = yield* collect(service.stream({ messages: [{ role: "user", content: "x" }] }))
      expect(events.at(-1)).toMatchObject({ _tag: "Finish", refusal: "Not this one.", finishReason: "refusal" })
    })
  )
})

describe("prompt-cache marks", () => {
  const cachedRequest: LlmRequest.LlmRequest = {
    messages: [
      { role: "system", content: [{ type: "text", text: "Long shared rules.", cache: true }] },
      { role: "user", content: [{ type: "text", text: "First question", cache: true }] }
    ]
  }

  it.scoped("Anthropic: cache: true becomes cache_control on the system and message blocks", () =>
    Effect.gen(function* () {
      const { service, sim } = yield* setup("anthropic")
      yield* service.complete(cachedRequest)
      expect(lastBody(sim).system).toStrictEqual([{ type: "text", text: "Long shared rules.", cache_control: { type: "ephemeral" } }])
      expect(lastBody(sim).messages).toStrictEqual([
        { role: "user", content: [{ type: "text", text: "First question", cache_control: { type: "ephemeral" } }] }
      ])
    })
  )

  it.scoped("OpenAI ignores them", () =>
    Effect.gen(function* () {
      const { service, sim } = yield* setup("openai")
      yield* service.complete(cachedRequest)
      expect(JSON.stringify(lastBody(sim))).not.toContain("cache")
    })
  )
})

describe("Anthropic's narrower ranges are checked before anything is sent", () => {
  const cases: ReadonlyArray<readonly [string, LlmRequest.LlmRequest, string]> = [
    ["temperature 1.5", { messages: [{ role: "user", content: "x" }], temperature: 1.5 }, "temperature"],
    ["a budget under 1024", { messages: [{ role: "user", content: "x" }], reasoning: { budgetTokens: 500 } }, "reasoning.budgetTokens"],
    ["a budget not below maxTokens", { messages: [{ role: "user", content: "x" }], reasoning: { budgetTokens: 2048 }, maxTokens: 2048 }, "reasoning.budgetTokens"]
  ]
  for (const [what, request, field] of cases) {
    it.scoped(`${what} is an InvalidRequestError on ${field}`, () =>
      Effect.gen(function* () {
        const { service, sim } = yield* setup("anthropic")
        const error = yield* failure(service.complete(request))
        expect(error._tag).toBe("InvalidRequestError")
        expect(error._tag === "InvalidRequestError" ? error.field : undefined).toBe(field)
        expect(sim.attempts()).toBe(0)
      })
    )
  }

  it.scoped("OpenAI takes temperature 1.5", () =>
    Effect.gen(function* () {
      const { service, sim } = yield* setup("openai")
      yield* service.complete({ messages: [{ role: "user", content: "x" }], temperature: 1.5 })
      expect(lastBody(sim).temperature).toBe(1.5)
    })
  )
})

describe("a fallback across providers carries tool calls and results, ids kept", () => {
  for (const mode of modes) {
    it.scoped(`OpenAI fails, Anthropic answers the tool conversation (${mode})`, () =>
      Effect.gen(function* () {
        const sim = yield* Simulator.make()
        const openai = yield* providerAt("openai", sim.url)
        const anthropic = yield* providerAt("anthropic", sim.url)
        const fallback = yield* Fallback.make({ chain: [{ provider: "anthropic" }] })
        const service = Llm.router({ providers: [openai, anthropic], defaultProvider: "openai", policies: [fallback] })
        sim.enqueue("openai", { status: 500 })
        sim.enqueue("anthropic", { text: "4 degrees." })
        const response = yield* ask(
          service,
          {
            ...question,
            messages: [
              ...question.messages,
              { role: "assistant", content: [{ type: "tool-call", id: "call_1", name: "get_weather", arguments: { city: "Oslo" } }] },
              { role: "tool", content: [{ type: "tool-result", id: "call_1", name: "get_weather", result: { tempC: 4 } }] }
            ]
          },
          mode
        )
        expect(response.provider).toBe("anthropic")
        expect(response.content).toBe("4 degrees.")
        expect(sim.requests().filter((r) => r.route === "openai").at(-1)?.body).toMatchObject({ messages: openAiSecondTurn })
        expect(sim.requests().filter((r) => r.route === "anthropic").at(-1)?.body).toMatchObject({ messages: anthropicSecondTurn })
      })
    )
  }
})
