import { describe, expect, it } from "@effect/vitest"
import { Chunk, Effect, Layer, Stream } from "effect"
import * as Llm from "../src/Llm.js"
import * as LlmMock from "../src/LlmMock.js"

const ask = { messages: [{ role: "user", content: "hello there" }] } as const

describe("the accessors use the Llm service in context", () => {
  it.effect("complete asks the service in context", () =>
    Effect.gen(function* () {
      const response = yield* Llm.complete(ask)
      expect(response.content).toBe("echo: hello there")
    }).pipe(Effect.provide(LlmMock.layerEcho())))

  it.effect("stream emits the service's events", () =>
    Effect.gen(function* () {
      const events = Chunk.toReadonlyArray(yield* Stream.runCollect(Llm.stream(ask)))
      expect(events.map((e) => e._tag)).toEqual(["TextDelta", "TextDelta", "TextDelta", "Finish"])
    }).pipe(Effect.provide(LlmMock.layerEcho())))

  it.effect("the tag resolves to the provided service", () =>
    Effect.gen(function* () {
      const service = LlmMock.echo({ provider: "tagged" })
      const llm = yield* Effect.provide(Llm.Llm, Layer.succeed(Llm.Llm, service))
      expect(llm).toBe(service)
    }))
})

describe("validated names the model a provider answers with", () => {
  it.effect("a request naming no model gets its provider's; an explicit one is kept; a provider without one is left alone", () =>
    Effect.gen(function* () {
      const provider = yield* LlmMock.make([], { fallback: LlmMock.reply("ok") })
      const llm = Llm.validated(provider, { providers: ["fast", "careful"], defaultProvider: "fast", models: { fast: "fast-1" } })
      yield* llm.complete(ask)
      yield* llm.complete({ ...ask, model: "mine" })
      yield* llm.complete({ ...ask, provider: "careful" })
      yield* Stream.runDrain(llm.stream({ ...ask, provider: "fast" }))
      const seen = (yield* provider.requests).map((request) => [request.provider, request.model])
      expect(seen).toEqual([["fast", "fast-1"], ["fast", "mine"], ["careful", undefined], ["fast", "fast-1"]])
    }))
})

describe("router dispatches by the request's provider", () => {
  const make = Effect.gen(function* () {
    const fast = yield* LlmMock.make([], { fallback: LlmMock.reply("fast answer") })
    const careful = yield* LlmMock.make([], { fallback: LlmMock.reply("careful answer") })
    const llm = Llm.router({ providers: { fast, careful }, defaultProvider: "fast" })
    return { fast, careful, llm }
  })

  it.effect("a named provider answers its own requests", () =>
    Effect.gen(function* () {
      const { careful, fast, llm } = yield* make
      const response = yield* llm.complete({ ...ask, provider: "careful" })
      expect(response.content).toBe("careful answer")
      expect(response.provider).toBe("careful")
      expect((yield* careful.requests).length).toBe(1)
      expect((yield* fast.requests).length).toBe(0)
    }))

  it.effect("a request naming no provider goes to the default, with provider filled in", () =>
    Effect.gen(function* () {
      const { fast, llm } = yield* make
      const response = yield* llm.complete(ask)
      expect(response.content).toBe("fast answer")
      expect((yield* fast.requests)[0]?.provider).toBe("fast")
    }))

  it.effect("streams are dispatched the same way", () =>
    Effect.gen(function* () {
      const { careful, llm } = yield* make
      yield* Stream.runDrain(llm.stream({ ...ask, provider: "careful" }))
      expect((yield* careful.calls).map((c) => c.method)).toEqual(["stream"])
    }))

  it.effect("an unknown provider is an InvalidRequestError listing the configured ones", () =>
    Effect.gen(function* () {
      const { careful, fast, llm } = yield* make
      const error = yield* Effect.flip(llm.complete({ ...ask, provider: "mistral" }))
      expect(error._tag).toBe("InvalidRequestError")
      expect(error._tag === "InvalidRequestError" && error.field).toBe("provider")
      expect(error.message).toBe('Invalid request: provider "mistral" is not configured (configured: fast, careful)')
      expect(error.provider).toBe("mistral")
      expect((yield* fast.requests).length + (yield* careful.requests).length).toBe(0)
    }))

  it.effect("a provider name from Object.prototype is not a provider", () =>
    Effect.gen(function* () {
      const { llm } = yield* make
      const error = yield* Effect.flip(llm.complete({ ...ask, provider: "toString" }))
      expect(error._tag === "InvalidRequestError" && error.field).toBe("provider")
    }))

  it.effect("with no providers every request is refused", () =>
    Effect.gen(function* () {
      const llm = Llm.router({ providers: {}, defaultProvider: "none" })
      const error = yield* Effect.flip(llm.complete(ask))
      expect(error.message).toContain("(configured: none)")
    }))
})
