import { describe, expect, it } from "@effect/vitest"
import { Chunk, Duration, Effect, Fiber, Option, Redacted, Stream, TestClock } from "effect"
import OpenAI from "openai"
import * as Llm from "../../src/Llm.js"
import * as LlmMock from "../../src/LlmMock.js"
import * as OpenAi from "../../src/OpenAi.js"
import { TimeoutError } from "../../src/LlmError.js"
import * as NativeLimits from "../../src/internal/nativeLimits.js"
import * as OpenAiWire from "../../src/internal/openAiWire.js"
import * as SdkCall from "../../src/internal/sdkCall.js"
import * as Timeout from "../../src/Timeout.js"
import { collect, eventually, failure, hello, openAiKey, setup } from "../integration/support.js"

const caller: SdkCall.Caller = {
  provider: "openai",
  secret: undefined,
  sdk: { APIError: OpenAI.APIError, APIConnectionError: OpenAI.APIConnectionError, APIConnectionTimeoutError: OpenAI.APIConnectionTimeoutError }
}
const limits: NativeLimits.WaitLimits = {
  first: 10_000,
  idle: 1_000,
  onTimeout: (started) => new TimeoutError({ provider: "openai", message: "late", phase: started ? "idle" : "first-token" })
}
const chunk = (text: string) => ({ id: "c1", model: "m", choices: [{ index: 0, delta: { content: text }, finish_reason: null }] })

const sse = (value: unknown) => new TextEncoder().encode(`data: ${JSON.stringify(value)}\n\n`)

/** A streamed response whose body sends `first` at once and then waits for `next` (which may never come). */
const sdkStream = (next: Promise<unknown>, aborted: { value: boolean }) =>
  SdkCall.stream(
    caller,
    (signal) => {
      signal.addEventListener("abort", () => (aborted.value = true))
      let sent = 0
      const body = new ReadableStream<Uint8Array>({
        async pull(controller) {
          if (sent++ === 0) return controller.enqueue(sse(chunk("first")))
          controller.enqueue(sse(await next))
          controller.close()
        }
      })
      return Promise.resolve(new Response(body))
    },
    () => OpenAiWire.streamState("openai", "m"),
    limits
  )

const isDone = (fiber: Fiber.RuntimeFiber<unknown, unknown>) => Effect.map(Fiber.poll(fiber), Option.isSome)

describe("SDK calls enforce the limits Timeout hands them", () => {
  it.scopedLive("complete: a hung request fails with phase attempt and its connection is closed", () =>
    Effect.gen(function* () {
      const { service, sim } = yield* setup("openai")
      sim.enqueue("openai", { hang: true })
      const error = yield* failure(Timeout.make({ timeout: Duration.millis(100) })(service).complete(hello))
      expect(error).toMatchObject({ _tag: "TimeoutError", phase: "attempt", retryable: true })
      expect(yield* eventually(() => sim.openConnections() === 0, 200)).toBe(true)
    })
  )

  it.scopedLive("stream: no headers within the first-token limit fails with phase first-token and closes the connection", () =>
    Effect.gen(function* () {
      const { service, sim } = yield* setup("anthropic")
      sim.enqueue("anthropic", { hang: true })
      const limited = Timeout.make({ timeout: Duration.seconds(30), firstToken: Duration.millis(100) })(service)
      const error = yield* failure(collect(limited.stream(hello)))
      expect(error).toMatchObject({ _tag: "TimeoutError", phase: "first-token" })
      expect(yield* eventually(() => sim.openConnections() === 0, 200)).toBe(true)
    })
  )

  it.scopedLive("stream: a stall after the first events fails with phase idle and closes the connection", () =>
    Effect.gen(function* () {
      const { service, sim } = yield* setup("openai")
      sim.enqueue("openai", { text: "one two three four", hangAfterChunks: 2 })
      const limited = Timeout.make({ timeout: Duration.seconds(30), idle: Duration.millis(100) })(service)
      const events: Array<string> = []
      const exit = yield* Effect.exit(
        Stream.runForEach(limited.stream(hello), (event) => Effect.sync(() => events.push(event._tag)))
      )
      expect(events.length).toBeGreaterThan(0)
      expect(exit).toMatchObject({ cause: { error: { _tag: "TimeoutError", phase: "idle" } } })
      expect(yield* eventually(() => sim.openConnections() === 0, 200)).toBe(true)
    })
  )

  it.scopedLive("a stream and a call in time go through", () =>
    Effect.gen(function* () {
      const { service } = yield* setup("openai")
      const limited = Timeout.make({ timeout: Duration.seconds(5) })(service)
      expect((yield* limited.complete(hello)).content).toBe("hello there")
      const events = yield* collect(limited.stream(hello))
      expect(events.at(-1)).toMatchObject({ _tag: "Finish", finishReason: "stop" })
    })
  )

  it.effect("on TestClock, a stream's idle limit follows the clock and aborts the request", () =>
    Effect.gen(function* () {
      const aborted = { value: false }
      const fiber = yield* Effect.fork(Stream.runCollect(sdkStream(new Promise(() => {}), aborted)))
      // The first event arrives a macrotask later, in real time.
      yield* Effect.promise(() => new Promise((resolve) => setTimeout(resolve, 20)))
      yield* TestClock.adjust(Duration.millis(999))
      expect(yield* isDone(fiber)).toBe(false)
      yield* TestClock.adjust(Duration.millis(1))
      expect(yield* Fiber.await(fiber)).toMatchObject({ cause: { error: { _tag: "TimeoutError", phase: "idle" } } })
      expect(aborted.value).toBe(true)
    })
  )

  it.effect("on TestClock, a stream that never opens fails with phase first-token at the first-token limit", () =>
    Effect.gen(function* () {
      const stream = SdkCall.stream(caller, () => new Promise<Response>(() => {}), () => OpenAiWire.streamState("openai", "m"), limits)
      const fiber = yield* Effect.fork(Stream.runCollect(stream))
      yield* TestClock.adjust(Duration.millis(9_999))
      expect(yield* isDone(fiber)).toBe(false)
      yield* TestClock.adjust(Duration.millis(1))
      expect(yield* Fiber.await(fiber)).toMatchObject({ cause: { error: { _tag: "TimeoutError", phase: "first-token" } } })
    })
  )

  it.effect("on TestClock, events in time are delivered with the finish", () =>
    Effect.gen(function* () {
      const last = { id: "c1", model: "m", choices: [{ index: 0, delta: {}, finish_reason: "stop" }] }
      const events = yield* Stream.runCollect(sdkStream(Promise.resolve(last), { value: false }))
      expect(Chunk.toArray(events).map((event) => event._tag)).toEqual(["TextDelta", "Finish"])
    })
  )

  const carrier = (handed: Array<number>) =>
    NativeLimits.attach(
      { complete: () => Effect.never, stream: () => Stream.never },
      {
        complete: (_request, millis) =>
          Effect.sync(() => {
            handed.push(millis)
            return { id: "", provider: "openai", model: "m", content: "native", finishReason: "stop" as const, usage: { inputTokens: 0, outputTokens: 0, totalTokens: 0 } }
          }),
        stream: (_request, limits) => {
          handed.push(limits.first)
          return Stream.empty
        }
      }
    )

  it.live("on the live clock, Timeout hands a service that carries limits its attempt limit", () =>
    Effect.gen(function* () {
      const handed: Array<number> = []
      const answer = yield* Timeout.make({ timeout: Duration.seconds(3) })(carrier(handed)).complete(hello)
      expect(answer.content).toBe("native")
      expect(handed).toEqual([3000])
    })
  )

  it.effect("on TestClock, Timeout limits such a service itself, on the clock", () =>
    Effect.gen(function* () {
      const handed: Array<number> = []
      const fiber = yield* Effect.fork(Timeout.make({ timeout: Duration.seconds(3) })(carrier(handed)).complete(hello))
      yield* TestClock.adjust(Duration.seconds(3))
      expect(yield* Fiber.await(fiber)).toMatchObject({ cause: { error: { _tag: "TimeoutError", phase: "attempt" } } })
      expect(handed).toEqual([])
    })
  )

  it.live("behind Llm.router, as in a provider's layer, Timeout still hands the provider its limits", () =>
    Effect.gen(function* () {
      const handed: Array<number> = []
      const routed = Llm.router({ providers: { openai: carrier(handed) }, defaultProvider: "openai" })
      const limited = Timeout.make({ timeout: Duration.seconds(3), firstToken: Duration.seconds(2) })(routed)
      expect((yield* limited.complete(hello)).content).toBe("native")
      yield* Stream.runDrain(limited.stream(hello))
      expect(handed).toEqual([3000, 2000])
      const invalid = yield* Effect.flip(limited.complete({ messages: [] }))
      expect(invalid).toMatchObject({ _tag: "InvalidRequestError", field: "messages" })
    })
  )

  it.live("a router with a provider that does not limit itself is limited by Timeout for every provider", () =>
    Effect.gen(function* () {
      const handed: Array<number> = []
      const routed = Llm.router({ providers: { openai: carrier(handed), echo: LlmMock.echo() }, defaultProvider: "openai" })
      const error = yield* Effect.flip(Timeout.make({ timeout: Duration.millis(20) })(routed).complete(hello))
      expect(error).toMatchObject({ _tag: "TimeoutError", phase: "attempt" })
      expect(handed).toEqual([])
    })
  )
})

describe("a provider's layer keeps its own limits", () => {
  it.scopedLive("Timeout over OpenAi.layer: a hung request fails with phase attempt and its connection is closed", () =>
    Effect.gen(function* () {
      const { sim } = yield* setup("openai")
      const service = yield* Effect.provide(Llm.Llm, OpenAi.layer({ apiKey: Redacted.make(openAiKey), baseURL: `${sim.url}/v1` }))
      sim.enqueue("openai", { hang: true })
      const error = yield* failure(Timeout.make({ timeout: Duration.millis(100) })(service).complete(hello))
      expect(error).toMatchObject({ _tag: "TimeoutError", phase: "attempt" })
      expect(yield* eventually(() => sim.openConnections() === 0, 200)).toBe(true)
    })
  )
})
