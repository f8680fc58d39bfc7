/**
 * The OpenAI wire format against Prism serving OpenAI's own API description, a description neither
 * the SDK nor this library wrote: every request shape the library sends passes Prism's request
 * validation, and answers Prism makes up at random (valid for the description, so as odd as the
 * description allows: empty `choices`, negative token counts, `null` content) each become a valid
 * response or a typed error with a readable message.
 */
import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import { Effect, Either, Exit, Redacted, Schema } from "effect"
import * as Llm from "../../src/Llm.js"
import { isLlmError } from "../../src/LlmError.js"
import * as LlmRequest from "../../src/LlmRequest.js"
import * as OpenAi from "../../src/OpenAi.js"
import * as OpenAiCompatible from "../../src/OpenAiCompatible.js"
import { type Prism, startPrism } from "../prism.js"
import { collect, failure } from "./support.js"

const key = Redacted.make("sk-test-PRISM-1a2b3c4d5e6f")

/** Every request shape the library sends: each option alone and all of them, one turn and several. */
const shapes: ReadonlyArray<readonly [string, LlmRequest.LlmRequest]> = [
  ["one user message", { messages: [{ role: "user", content: "hi" }] }],
  [
    "system, user and assistant turns",
    {
      messages: [
        { role: "system", content: "Answer in one line." },
        { role: "user", content: "hi" },
        { role: "assistant", content: "hello" },
        { role: "user", content: "and now?" }
      ]
    }
  ],
  ["a model named", { model: "gpt-4.1-mini", messages: [{ role: "user", content: "hi" }] }],
  ["temperature", { temperature: 0.2, messages: [{ role: "user", content: "hi" }] }],
  ["topP", { topP: 0.9, messages: [{ role: "user", content: "hi" }] }],
  ["stop sequences", { stop: ["\n\n", "END"], messages: [{ role: "user", content: "hi" }] }],
  ["maxTokens", { maxTokens: 64, messages: [{ role: "user", content: "hi" }] }],
  [
    "every option at its bounds",
    { temperature: 2, topP: 0, maxTokens: 1, stop: ["a", "b", "c", "d"], messages: [{ role: "user", content: "hi" }] }
  ]
]

describe("request validation against OpenAI's API description", () => {
  let prism: Prism
  beforeAll(async () => {
    prism = await startPrism("validate")
  }, 40_000)
  afterAll(() => prism?.stop())

  const providers = () => [
    ["openai (max_completion_tokens)", OpenAi.make({ apiKey: key, baseURL: prism.url })],
    ["compatible (max_tokens)", OpenAiCompatible.make({ name: "prism", baseURL: prism.url, apiKey: key, model: "gpt-4o-mini" })]
  ] as const

  it.live("every whole request shape passes, for both OpenAI providers", () =>
    Effect.gen(function* () {
      for (const [name, make] of providers()) {
        const service = Llm.fromProvider(yield* make)
        for (const [shape, request] of shapes) {
          const exit = yield* Effect.exit(service.complete(request))
          expect(Exit.isSuccess(exit) ? "answered" : exit.cause.toString(), `${name}: ${shape}`).toBe("answered")
        }
      }
    })
  )

  it.live("every streamed request shape passes too (Prism answers it with a whole JSON completion, read as the answer)", () =>
    Effect.gen(function* () {
      for (const [name, make] of providers()) {
        const service = Llm.fromProvider(yield* make)
        for (const [shape, request] of shapes) {
          const exit = yield* Effect.exit(collect(service.stream(request)))
          expect(Exit.isSuccess(exit) ? "answered" : exit.cause.toString(), `${name}: ${shape}`).toBe("answered")
        }
      }
    })
  )

  it.live("an invalid request is Prism's 422, with its problem title and detail as the message", () =>
    Effect.gen(function* () {
      // No valid LlmRequest is invalid for the description: the provider is called directly, past validation.
      const provider = yield* OpenAi.make({ apiKey: key, baseURL: prism.url })
      const error = yield* failure(collect(provider.call({ messages: [] }, "whole")))
      expect(error).toMatchObject({ _tag: "InvalidRequestError", status: 422 })
      expect(error.message).toMatch(/^openai answered 422: Invalid request: Your request is not valid/)
    })
  )
})

describe("300 random answers valid for the description", () => {
  let prism: Prism
  beforeAll(async () => {
    prism = await startPrism("random")
  }, 40_000)
  afterAll(() => prism?.stop())

  it.live("each is a valid response with sane usage, or a typed error with a readable message", () =>
    Effect.gen(function* () {
      const service = Llm.fromProvider(yield* OpenAi.make({ apiKey: key, baseURL: prism.url }))
      const isResponse = Schema.is(LlmRequest.LlmResponse)
      const outcomes = yield* Effect.forEach(
        Array.from({ length: 300 }, (_, i) => i),
        () => Effect.either(service.complete({ messages: [{ role: "user", content: "hi" }] })),
        { concurrency: 8 }
      )
      const errors: Record<string, number> = {}
      for (const outcome of outcomes) {
        if (Either.isRight(outcome)) {
          const response = outcome.right
          expect(isResponse(response)).toBe(true)
          for (const count of Object.values(response.usage)) {
            expect(count === undefined || (Number.isFinite(count) && count >= 0)).toBe(true)
          }
        } else {
          const error = outcome.left
          expect(isLlmError(error)).toBe(true)
          expect(error.message).toMatch(/^openai /)
          expect(error.message.length).toBeLessThan(400)
          errors[error._tag] = (errors[error._tag] ?? 0) + 1
        }
      }
      // The description allows an empty `choices`: asking again would get the same, so it is not retryable.
      const empty = outcomes.filter(
        (outcome) => Either.isLeft(outcome) && outcome.left.message.includes("no choices")
      )
      for (const outcome of empty) expect(Either.isLeft(outcome) && outcome.left.retryable).toBe(false)
      expect(outcomes.filter(Either.isRight).length).toBeGreaterThan(0)
    })
  , 60_000)
})
