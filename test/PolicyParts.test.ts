/**
 * The policies over answers beyond text: retry and fallback restart only before the first part,
 * whatever part it is; the tokens-per-minute estimate counts tool definitions, tool calls, tool
 * results and images; usage is recorded for answers that are only tool calls.
 */
import { RateLimiter } from "@effect/experimental"
import { describe, expect, it } from "@effect/vitest"
import { Cause, Effect, Exit, Fiber, Option, Stream, TestClock } from "effect"
import * as TokenEstimate from "../src/internal/tokenEstimate.js"
import * as Fallback from "../src/Fallback.js"
import * as Llm from "../src/Llm.js"
import type { LlmError } from "../src/LlmError.js"
import * as LlmMock from "../src/LlmMock.js"
import type * as LlmRequest from "../src/LlmRequest.js"
import * as RateLimit from "../src/RateLimit.js"
import * as Retry from "../src/Retry.js"
import * as Usage from "../src/Usage.js"

const request: LlmRequest.LlmRequest = { provider: "openai", messages: [{ role: "user", content: "Weather in Oslo?" }] }

const failureOf = <A>(exit: Exit.Exit<A, LlmError>): LlmError | undefined =>
  Exit.isFailure(exit) ? Option.getOrUndefined(Cause.failureOption(exit.cause)) : undefined

/** A provider whose first call sends `first` and then fails with a ServerError; later calls answer with a tool call. */
const failingAfter = (first: ReadonlyArray<LlmRequest.LlmStreamEvent>) => {
  let calls = 0
  const answer = LlmMock.toolCall("get_weather", { city: "Oslo" }, { id: "call_2" })
  return Effect.map(LlmMock.make([], { provider: "openai", fallback: answer }), (mock) => {
    const provider: Llm.Provider = {
      name: "openai",
      model: "m",
      call: (r, mode) =>
        Effect.suspend(() =>
          calls++ === 0
            ? Llm.fromStream(Stream.concat(Stream.fromIterable(first), Stream.fail(LlmMock.error("ServerError", { provider: "openai" }))))
            : mock.call(r, mode)
        )
    }
    return { provider, calls: () => calls }
  })
}

const runAll = <A, E>(effect: Effect.Effect<A, E>) =>
  Effect.gen(function* () {
    const fiber = yield* Effect.fork(effect)
    yield* TestClock.adjust("10 minutes")
    return yield* Fiber.await(fiber)
  })

describe("retry restarts only before the first part, whatever it is", () => {
  it.effect("a stream that failed before any part is retried and answers with its tool call", () =>
    Effect.gen(function* () {
      const { calls, provider } = yield* failingAfter([])
      const llm = Llm.router({ providers: [provider], policies: [yield* Retry.make({ maxRetries: 2 })] })
      const exit = yield* runAll(Llm.collect(Llm.fromStream(llm.stream(request))))
      expect(Exit.isSuccess(exit) && exit.value.toolCalls.map((c) => c.id)).toStrictEqual(["call_2"])
      expect(calls()).toBe(2)
    })
  )

  const firsts: ReadonlyArray<readonly [string, LlmRequest.LlmStreamEvent]> = [
    ["a ToolCallStart", { _tag: "ToolCallStart", id: "call_1", name: "get_weather" }],
    ["a ReasoningDelta", { _tag: "ReasoningDelta", text: "Let me think" }]
  ]
  for (const [what, first] of firsts) {
    it.effect(`a stream that sent ${what} and then failed is not retried`, () =>
      Effect.gen(function* () {
        const { calls, provider } = yield* failingAfter([first])
        const llm = Llm.router({ providers: [provider], policies: [yield* Retry.make({ maxRetries: 2 })] })
        const exit = yield* runAll(Stream.runDrain(llm.stream(request)))
        expect(failureOf(exit)?._tag).toBe("ServerError")
        expect(calls()).toBe(1)
      })
    )

    it.effect(`a fallback does not move on after ${what}`, () =>
      Effect.gen(function* () {
        const { calls, provider } = yield* failingAfter([first])
        const other = yield* LlmMock.make([LlmMock.reply("never")], { provider: "anthropic" })
        const fallback = yield* Fallback.make({ chain: [{ provider: "anthropic" }] })
        const llm = Llm.router({ providers: [provider, other], defaultProvider: "openai", policies: [fallback] })
        const exit = yield* Effect.exit(Stream.runDrain(llm.stream(request)))
        expect(failureOf(exit)?._tag).toBe("ServerError")
        expect(calls()).toBe(1)
        expect(yield* other.requests).toHaveLength(0)
      })
    )
  }
})

describe("the tokens-per-minute estimate counts what a request sends beyond text", () => {
  const image: LlmRequest.LlmRequest = {
    ...request,
    messages: [{ role: "user", content: [{ type: "text", text: "What is this?" }, { type: "image", url: "https://x.io/a.png" }] }],
    maxTokens: 10
  }

  it("an image counts about 1,000 tokens", () => {
    const plain = TokenEstimate.estimate({ ...request, maxTokens: 10 }, 0)
    expect(TokenEstimate.estimate(image, 0)).toBe(Math.ceil(("What is this?".length + TokenEstimate.imageChars) / 4) + 4 + 3 + 10)
    expect(TokenEstimate.estimate(image, 0) - plain).toBeGreaterThanOrEqual(990)
  })

  it("tool definitions, tool calls and tool results count their JSON", () => {
    const parameters = { type: "object", properties: { city: { type: "string", description: "x".repeat(400) } } }
    const withTools: LlmRequest.LlmRequest = {
      ...request,
      tools: [{ name: "get_weather", parameters }],
      messages: [
        ...request.messages,
        { role: "assistant", content: [{ type: "tool-call", id: "c", name: "get_weather", arguments: { city: "y".repeat(200) } }] },
        { role: "tool", content: [{ type: "tool-result", id: "c", name: "get_weather", result: { report: "z".repeat(800) } }] }
      ]
    }
    const chars =
      "Weather in Oslo?".length +
      "get_weather".length * 2 +
      JSON.stringify({ city: "y".repeat(200) }).length +
      JSON.stringify({ report: "z".repeat(800) }).length +
      JSON.stringify([{ name: "get_weather", parameters }]).length
    expect(TokenEstimate.estimate(withTools, 5)).toBe(Math.ceil(chars / 4) + 4 * 3 + 3 + 5)
  })

  it.effect("a request whose images exceed the budget is refused at once; the same without them passes", () =>
    Effect.gen(function* () {
      const mock = yield* LlmMock.make([], { provider: "openai", fallback: LlmMock.reply("ok") })
      const limit = yield* RateLimit.make({ providers: { openai: { tpm: 800 } } })
      const llm = Llm.router({ providers: [mock], policies: [limit] })
      expect(failureOf(yield* Effect.exit(llm.complete(image)))).toMatchObject({ _tag: "RateLimitError", local: true })
      const text = yield* llm.complete({ ...request, maxTokens: 10 })
      expect(text.content).toBe("ok")
    }).pipe(Effect.provide(RateLimiter.layerStoreMemory))
  )
})

describe("usage over answers beyond text", () => {
  it.effect("an answer that is only a tool call is recorded with its usage", () =>
    Effect.gen(function* () {
      const mock = yield* LlmMock.make([
        LlmMock.toolCall("get_weather", { city: "Oslo" }, { usage: { inputTokens: 7, outputTokens: 3, totalTokens: 10 } })
      ], { provider: "openai" })
      const usage = yield* Usage.make()
      const llm = Llm.router({ providers: [mock], policies: [usage] })
      const [response, totals] = yield* Usage.withUsage(llm.complete(request))
      expect(response.toolCalls).toHaveLength(1)
      expect(totals).toMatchObject({ inputTokens: 7, outputTokens: 3, totalTokens: 10 })
    })
  )
})
