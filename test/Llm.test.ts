import { describe, expect, it } from "@effect/vitest"
import { Chunk, Duration, Effect, Fiber, Layer, Stream, TestClock } from "effect"
import * as Llm from "../src/Llm.js"
import { ServerError } from "../src/LlmError.js"
import * as LlmMock from "../src/LlmMock.js"
import type * as LlmRequest from "../src/LlmRequest.js"
import * as Retry from "../src/Retry.js"

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

describe("router names the model a provider answers with", () => {
  it.effect("a request naming no model gets its provider's; an explicit one is kept", () =>
    Effect.gen(function* () {
      const fast = yield* LlmMock.make([], { provider: "fast", model: "fast-1", fallback: LlmMock.reply("ok") })
      const careful = yield* LlmMock.make([], { provider: "careful", model: "careful-1", fallback: LlmMock.reply("ok") })
      const llm = Llm.router({ providers: [fast, careful], defaultProvider: "fast" })
      yield* llm.complete(ask)
      yield* llm.complete({ ...ask, model: "mine" })
      yield* llm.complete({ ...ask, provider: "careful" })
      yield* Stream.runDrain(llm.stream({ ...ask, provider: "fast" }))
      const seen = [...(yield* fast.requests), ...(yield* careful.requests)].map((request) => [request.provider, request.model])
      expect(seen).toEqual([["fast", "fast-1"], ["fast", "mine"], ["fast", "fast-1"], ["careful", "careful-1"]])
    }))
})

describe("router dispatches by the request's provider", () => {
  const make = Effect.gen(function* () {
    const fast = yield* LlmMock.make([], { provider: "fast", fallback: LlmMock.reply("fast answer") })
    const careful = yield* LlmMock.make([], { provider: "careful", fallback: LlmMock.reply("careful answer") })
    const llm = Llm.router({ providers: [fast, careful], defaultProvider: "fast" })
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
      const llm = Llm.router({ providers: [], defaultProvider: "none" })
      const error = yield* Effect.flip(llm.complete(ask))
      expect(error.message).toContain("(configured: none)")
    }))
})

/** A provider written by hand: one call, answering whole or streamed from the same parts. */
const handWritten = (script: Array<"fail" | "answer">): Llm.Provider & { readonly modes: Array<Llm.Mode> } => {
  const modes: Array<Llm.Mode> = []
  return {
    name: "local",
    model: "tiny-1",
    modes,
    call: (request, mode) =>
      Llm.fromStream(Stream.suspend(() => {
        modes.push(mode)
        return script.shift() === "fail"
          ? Stream.fail(new ServerError({ provider: "local", message: "boom", status: 500 }))
          : Stream.make<Array<LlmRequest.LlmStreamEvent>>(
              { _tag: "TextDelta", text: "he" },
              { _tag: "TextDelta", text: "llo" },
              {
                _tag: "Finish",
                id: "a-1",
                provider: "local",
                model: request.model ?? "tiny-1",
                finishReason: "stop",
                usage: { inputTokens: 1, outputTokens: 2, totalTokens: 3 }
              }
            )
      }))
  }
}

describe("the provider contract: one call", () => {
  it.effect("complete asks for a whole answer and collects its parts; stream asks for a stream", () =>
    Effect.gen(function* () {
      const provider = handWritten(["answer", "answer"])
      const llm = Llm.fromProvider(provider)
      const response = yield* llm.complete(ask)
      expect(response).toEqual({
        id: "a-1",
        provider: "local",
        model: "tiny-1",
        content: "hello",
        toolCalls: [],
        finishReason: "stop",
        usage: { inputTokens: 1, outputTokens: 2, totalTokens: 3 }
      })
      const events = Chunk.toReadonlyArray(yield* Stream.runCollect(llm.stream(ask)))
      expect(events.map((e) => e._tag)).toEqual(["TextDelta", "TextDelta", "Finish"])
      expect(provider.modes).toEqual(["whole", "streamed"])
    }))

  it.effect("a hand-written provider gets a policy with nothing to forward: Retry retries its whole and streamed calls", () =>
    Effect.gen(function* () {
      const provider = handWritten(["fail", "answer", "fail", "answer"])
      const retry = yield* Retry.make({ base: Duration.millis(10) })
      const llm = Llm.router({ providers: [{ ...provider, call: Llm.compose(provider.call, [retry]) }] })
      const fiber = yield* Effect.fork(Effect.zip(llm.complete(ask), Stream.runCollect(llm.stream(ask))))
      yield* TestClock.adjust(Duration.seconds(1))
      const [response, events] = yield* Fiber.join(fiber)
      expect(response.content).toBe("hello")
      expect(Chunk.size(events)).toBe(3)
      expect(provider.modes).toEqual(["whole", "whole", "streamed", "streamed"])
    }))

  it.effect("an answer that ends without a Finish is a ResponseParseError, not an empty success", () =>
    Effect.gen(function* () {
      const llm = Llm.fromCall(() => Llm.fromStream(Stream.make({ _tag: "TextDelta" as const, text: "half" })))
      const error = yield* Effect.flip(llm.complete(ask))
      expect(error._tag).toBe("ResponseParseError")
      expect(error.retryable).toBe(false)
    }))

  it("compose applies policies with the first outermost", () => {
    const order: Array<string> = []
    const tag = (name: string): Llm.Policy => (next) => (request, mode) => {
      order.push(name)
      return next(request, mode)
    }
    Llm.compose(LlmMock.echo().call, [tag("outer"), tag("inner")])(ask, "whole")
    expect(order).toEqual(["outer", "inner"])
  })

  it.effect("router policies run after validation and routing, around every provider", () =>
    Effect.gen(function* () {
      const seen: Array<string | undefined> = []
      const spy: Llm.Policy = (next) => (request, mode) => {
        seen.push(`${request.provider}/${request.model}`)
        return next(request, mode)
      }
      const llm = Llm.router({ providers: [LlmMock.echo({ provider: "echo", model: "echo-1" })], policies: [spy] })
      yield* llm.complete(ask)
      yield* Effect.flip(llm.complete({ messages: [] }))
      expect(seen).toEqual(["echo/echo-1"])
    }))

  it.effect("layerPolicy wraps the service in context", () =>
    Effect.gen(function* () {
      const upper: Llm.Policy = (next) => (request, mode) =>
        Effect.map(next(request, mode), (pull) =>
          Effect.map(pull, Chunk.map((part) => (part._tag === "TextDelta" ? { ...part, text: part.text.toUpperCase() } : part)))
        )
      const response = yield* Llm.complete(ask).pipe(
        Effect.provide(Llm.layerPolicy(Effect.succeed(upper)).pipe(Layer.provide(LlmMock.layerEcho())))
      )
      expect(response.content).toBe("ECHO: HELLO THERE")
    }))
})

describe("collect gathers every kind of part", () => {
  it.effect("text, reasoning with its last signature, completed tool calls in order, and the refusal", () =>
    Effect.gen(function* () {
      const response = yield* Llm.collect(Llm.fromStream(
        Stream.fromIterable<LlmRequest.LlmStreamEvent>([
          { _tag: "ReasoningDelta", text: "think " },
          { _tag: "ReasoningDelta", text: "more", signature: "s1" },
          { _tag: "ReasoningDelta", text: "", signature: "s2" },
          { _tag: "TextDelta", text: "Hi" },
          { _tag: "ToolCallStart", id: "a", name: "f" },
          { _tag: "ToolCallDelta", id: "a", argumentsDelta: "{}" },
          { _tag: "ToolCallStart", id: "b", name: "g" },
          { _tag: "ToolCall", id: "a", name: "f", arguments: {}, argumentsText: "{}" },
          { _tag: "ToolCall", id: "b", name: "g", arguments: undefined, argumentsText: "{" },
          {
            _tag: "Finish", id: "1", provider: "p", model: "m", finishReason: "refusal", refusal: "no",
            usage: { inputTokens: 1, outputTokens: 1, totalTokens: 2 }
          }
        ])
      ))
      expect(response).toStrictEqual({
        id: "1",
        provider: "p",
        model: "m",
        finishReason: "refusal",
        refusal: "no",
        usage: { inputTokens: 1, outputTokens: 1, totalTokens: 2 },
        content: "Hi",
        toolCalls: [
          { id: "a", name: "f", arguments: {}, argumentsText: "{}" },
          { id: "b", name: "g", arguments: undefined, argumentsText: "{" }
        ],
        reasoning: "think more",
        reasoningSignature: "s2"
      })
    }))

  it.effect("a stream of tool-call progress without a Finish is still an unfinished answer", () =>
    Effect.gen(function* () {
      const error = yield* Effect.flip(Llm.collect(Llm.fromStream(Stream.make({ _tag: "ToolCallStart", id: "a", name: "f" } as const))))
      expect(error._tag).toBe("ResponseParseError")
    }))
})
