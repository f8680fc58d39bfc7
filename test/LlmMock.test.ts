import { describe, expect, it } from "@effect/vitest"
import { Chunk, Duration, Effect, Exit, Fiber, Option, Stream, TestClock } from "effect"
import * as Llm from "../src/Llm.js"
import * as LlmError from "../src/LlmError.js"
import * as LlmMock from "../src/LlmMock.js"
import type * as LlmRequest from "../src/LlmRequest.js"

const ask = (content: string, extra: Partial<LlmRequest.LlmRequest> = {}): LlmRequest.LlmRequest => ({
  messages: [{ role: "user", content }],
  ...extra
})

const collect = <R>(stream: Stream.Stream<LlmRequest.LlmStreamEvent, LlmError.LlmError, R>) =>
  Effect.map(Stream.runCollect(stream), Chunk.toReadonlyArray)

const texts = (events: ReadonlyArray<LlmRequest.LlmStreamEvent>) =>
  events.flatMap((e) => (e._tag === "TextDelta" ? [e.text] : []))

describe("scripted steps are used in order", () => {
  it.effect("answers, fails and answers again in the order written", () =>
    Effect.gen(function* () {
      const mock = yield* LlmMock.make([
        LlmMock.reply("first"),
        LlmMock.fail("RateLimitError", { retryAfter: Duration.seconds(2) }),
        LlmMock.reply("third")
      ])
      const first = yield* mock.complete(ask("a"))
      const second = yield* Effect.flip(mock.complete(ask("b")))
      const third = yield* mock.complete(ask("c"))
      expect(first.content).toBe("first")
      expect(second._tag).toBe("RateLimitError")
      expect(second).toBeInstanceOf(LlmError.RateLimitError)
      expect(second._tag === "RateLimitError" && second.retryAfter).toEqual(Duration.seconds(2))
      expect(third.content).toBe("third")
      expect(yield* mock.remaining).toBe(0)
    }))

  it.effect("complete and stream calls share one script", () =>
    Effect.gen(function* () {
      const mock = yield* LlmMock.make([LlmMock.chunks(["Hel", "lo"]), LlmMock.reply("whole")])
      const streamed = yield* collect(mock.stream(ask("a")))
      const whole = yield* mock.complete(ask("b"))
      expect(texts(streamed)).toEqual(["Hel", "lo"])
      expect(whole.content).toBe("whole")
    }))

  it.effect("a scripted LlmError value is raised as given", () =>
    Effect.gen(function* () {
      const given = LlmMock.error("ServerError", { provider: "openai", status: 503, requestId: "req_1" })
      const mock = yield* LlmMock.make([LlmMock.fail(given)])
      const failure = yield* Effect.flip(mock.complete(ask("a")))
      expect(failure).toBe(given)
    }))

  it.effect("an error scripted by tag carries the provider the request was routed to", () =>
    Effect.gen(function* () {
      const mock = yield* LlmMock.make([LlmMock.fail("OverloadedError"), LlmMock.fail("AuthenticationError")])
      const routed = yield* Effect.flip(mock.complete(ask("a", { provider: "anthropic" })))
      const unnamed = yield* Effect.flip(mock.complete(ask("b")))
      expect(routed.provider).toBe("anthropic")
      expect(unnamed.provider).toBe("mock")
      expect(unnamed.retryable).toBe(false)
    }))

  it.effect("respond chooses the step from the request", () =>
    Effect.gen(function* () {
      const byModel = LlmMock.respond((request) =>
        request.model === "missing" ? LlmMock.fail("NotFoundError") : LlmMock.reply(`model ${request.model}`)
      )
      const mock = yield* LlmMock.make([byModel, byModel])
      const found = yield* mock.complete(ask("a", { model: "m1" }))
      const missing = yield* Effect.flip(mock.complete(ask("a", { model: "missing" })))
      expect(found.content).toBe("model m1")
      expect(missing._tag).toBe("NotFoundError")
    }))
})

describe("responses report provider, model and deterministic usage", () => {
  it.effect("usage counts one token per word of the request and of the answer", () =>
    Effect.gen(function* () {
      const mock = yield* LlmMock.make([LlmMock.reply("three word answer")])
      const response = yield* mock.complete({
        messages: [
          { role: "system", content: "be brief" },
          { role: "user", content: "what is it" }
        ]
      })
      expect(response.usage).toEqual({ inputTokens: 5, outputTokens: 3, totalTokens: 8 })
      expect(response.finishReason).toBe("stop")
    }))

  it.effect("the model is the step's, else the request's, else the mock's", () =>
    Effect.gen(function* () {
      const mock = yield* LlmMock.make(
        [LlmMock.reply("a", { model: "step-model" }), LlmMock.reply("b"), LlmMock.reply("c")],
        { model: "mock-default" }
      )
      expect((yield* mock.complete(ask("x"))).model).toBe("step-model")
      expect((yield* mock.complete(ask("x", { model: "asked" }))).model).toBe("asked")
      expect((yield* mock.complete(ask("x"))).model).toBe("mock-default")
    }))

  it.effect("the provider option overrides the routed name on responses and errors", () =>
    Effect.gen(function* () {
      const mock = yield* LlmMock.make([LlmMock.reply("a"), LlmMock.fail("ConnectionError")], { provider: "openai" })
      expect((yield* mock.complete(ask("x", { provider: "primary" }))).provider).toBe("openai")
      expect((yield* Effect.flip(mock.complete(ask("x")))).provider).toBe("openai")
    }))

  it.effect("ids are distinct per answer unless scripted", () =>
    Effect.gen(function* () {
      const mock = yield* LlmMock.make([LlmMock.reply("a"), LlmMock.reply("b"), LlmMock.reply("c", { id: "fixed" })])
      const ids = [
        (yield* mock.complete(ask("x"))).id,
        (yield* mock.complete(ask("x"))).id,
        (yield* mock.complete(ask("x"))).id
      ]
      expect(new Set(ids).size).toBe(3)
      expect(ids[2]).toBe("fixed")
    }))
})

describe("every received request is recorded", () => {
  it.effect("records validated requests in order with their method", () =>
    Effect.gen(function* () {
      const mock = yield* LlmMock.make([LlmMock.reply("a"), LlmMock.reply("b")])
      yield* mock.complete(ask("one", { provider: "anthropic" }))
      yield* collect(mock.stream(ask("two")))
      const calls = yield* mock.calls
      expect(calls.map((c) => c.method)).toEqual(["complete", "stream"])
      expect(calls.map((c) => c.request.messages[0]?.content)).toEqual(["one", "two"])
      expect(calls.map((c) => c.request.provider)).toEqual(["anthropic", "mock"])
      expect((yield* mock.requests).length).toBe(2)
    }))

  it.effect("a stream is recorded when it runs, not when it is built", () =>
    Effect.gen(function* () {
      const mock = yield* LlmMock.make([LlmMock.reply("a")])
      const built = mock.stream(ask("x"))
      expect(yield* mock.requests).toEqual([])
      yield* collect(built)
      expect((yield* mock.requests).length).toBe(1)
    }))

  it.effect("an invalid request is rejected before the mock sees it and uses no step", () =>
    Effect.gen(function* () {
      const mock = yield* LlmMock.make([LlmMock.reply("a")])
      const failure = yield* Effect.flip(mock.complete({ messages: [] }))
      expect(failure._tag).toBe("InvalidRequestError")
      expect(failure._tag === "InvalidRequestError" && failure.field).toBe("messages")
      expect(yield* mock.requests).toEqual([])
      expect(yield* mock.remaining).toBe(1)
    }))

  it.effect("layer provides the mock as Llm and its Recorder", () =>
    Effect.gen(function* () {
      const response = yield* Llm.complete(ask("hello"))
      const seen = yield* LlmMock.requests
      const calls = yield* LlmMock.calls
      expect(response.content).toBe("from the layer")
      expect(seen.map((r) => r.messages[0]?.content)).toEqual(["hello"])
      expect(calls[0]?.method).toBe("complete")
    }).pipe(Effect.provide(LlmMock.layer([LlmMock.reply("from the layer")]))))

  it.effect("each build of a layer starts a fresh script", () =>
    Effect.gen(function* () {
      const layer = LlmMock.layer([LlmMock.reply("only")])
      const once = Llm.complete(ask("x")).pipe(Effect.provide(layer))
      expect((yield* once).content).toBe("only")
      expect((yield* once).content).toBe("only")
    }))
})

describe("latency is simulated with Effect.sleep", () => {
  it.effect("a reply with latency does not complete until the clock passes it", () =>
    Effect.gen(function* () {
      const mock = yield* LlmMock.make([LlmMock.reply("late", { latency: Duration.seconds(5) })])
      const fiber = yield* Effect.fork(mock.complete(ask("x")))
      yield* TestClock.adjust(Duration.millis(4999))
      expect(Option.isNone(yield* Fiber.poll(fiber))).toBe(true)
      yield* TestClock.adjust(Duration.millis(1))
      const exit = yield* Fiber.await(fiber)
      expect(Exit.isSuccess(exit) && exit.value.content).toBe("late")
    }))

  it.effect("the mock's latency applies to steps that set none, and to failures", () =>
    Effect.gen(function* () {
      const mock = yield* LlmMock.make([LlmMock.fail("ServerError")], { latency: "2 seconds" })
      const fiber = yield* Effect.fork(Effect.either(mock.complete(ask("x"))))
      yield* TestClock.adjust(Duration.seconds(1))
      expect(Option.isNone(yield* Fiber.poll(fiber))).toBe(true)
      yield* TestClock.adjust(Duration.seconds(1))
      const result = yield* Fiber.join(fiber)
      expect(result._tag === "Left" && result.left._tag).toBe("ServerError")
    }))

  it.effect("stream chunks arrive one chunkDelay apart after the first-chunk latency", () =>
    Effect.gen(function* () {
      const mock = yield* LlmMock.make([
        LlmMock.chunks(["a", "b", "c"], { latency: Duration.seconds(1), chunkDelay: Duration.millis(100) })
      ])
      const seen: Array<string> = []
      const fiber = yield* mock.stream(ask("x")).pipe(
        Stream.runForEach((e) => Effect.sync(() => seen.push(e._tag === "TextDelta" ? e.text : "finish"))),
        Effect.fork
      )
      yield* TestClock.adjust(Duration.millis(999))
      expect(seen).toEqual([])
      yield* TestClock.adjust(Duration.millis(1))
      expect(seen).toEqual(["a"])
      yield* TestClock.adjust(Duration.millis(100))
      expect(seen).toEqual(["a", "b"])
      yield* TestClock.adjust(Duration.millis(100))
      yield* Fiber.join(fiber)
      expect(seen).toEqual(["a", "b", "c", "finish"])
    }))

  it.effect("hang never answers, so a timeout decides", () =>
    Effect.gen(function* () {
      const mock = yield* LlmMock.make([LlmMock.hang()])
      const fiber = yield* Effect.fork(mock.complete(ask("x")).pipe(Effect.timeout(Duration.seconds(30))))
      yield* TestClock.adjust(Duration.seconds(30))
      const exit = yield* Fiber.await(fiber)
      expect(Exit.isFailure(exit)).toBe(true)
    }))
})

describe("streams emit TextDeltas then exactly one Finish", () => {
  it.effect("whitespace in a reply is kept: trailing spaces stay on the last piece", () =>
    Effect.gen(function* () {
      const mock = yield* LlmMock.make([LlmMock.reply("a b \n"), LlmMock.reply("   ")])
      expect(texts(yield* collect(mock.stream(ask("x"))))).toEqual(["a", " b \n"])
      expect(texts(yield* collect(mock.stream(ask("x"))))).toEqual(["   "])
    }))

  it.effect("a hung step never emits, on a stream as on complete", () =>
    Effect.gen(function* () {
      const hung = yield* LlmMock.make([LlmMock.hang()])
      const stalled = yield* LlmMock.make([LlmMock.chunks(["a"], { hang: true })])
      const streamed = yield* Effect.fork(collect(hung.stream(ask("x"))))
      const completed = yield* Effect.fork(stalled.complete(ask("y")))
      yield* TestClock.adjust(Duration.hours(1))
      expect(Option.isNone(yield* Fiber.poll(streamed))).toBe(true)
      expect(Option.isNone(yield* Fiber.poll(completed))).toBe(true)
      yield* Fiber.interrupt(streamed)
      yield* Fiber.interrupt(completed)
    }))

  it.effect("a failure step waits for its own latency", () =>
    Effect.gen(function* () {
      const mock = yield* LlmMock.make([LlmMock.fail(LlmMock.error("OverloadedError"), { latency: "3 seconds" })])
      const fiber = yield* Effect.fork(Effect.flip(collect(mock.stream(ask("x")))))
      yield* TestClock.adjust(Duration.millis(2999))
      expect(Option.isNone(yield* Fiber.poll(fiber))).toBe(true)
      yield* TestClock.adjust(Duration.millis(1))
      expect((yield* Fiber.join(fiber))._tag).toBe("OverloadedError")
    }))

  it.effect("scripted chunks become TextDeltas and a Finish with usage", () =>
    Effect.gen(function* () {
      const mock = yield* LlmMock.make([LlmMock.chunks(["The sky", " is", " blue."], { model: "m" })])
      const events = yield* collect(mock.stream(ask("sky colour?")))
      expect(texts(events)).toEqual(["The sky", " is", " blue."])
      expect(events.filter((e) => e._tag === "Finish")).toHaveLength(1)
      const last = events.at(-1)
      expect(last?._tag).toBe("Finish")
      expect(last?._tag === "Finish" && last.usage).toEqual({ inputTokens: 2, outputTokens: 4, totalTokens: 6 })
      expect(last?._tag === "Finish" && last.model).toBe("m")
    }))

  it.effect("a reply streams word by word and joins back to the reply", () =>
    Effect.gen(function* () {
      const mock = yield* LlmMock.make([LlmMock.reply("one two  three")])
      const events = yield* collect(mock.stream(ask("x")))
      expect(texts(events)).toEqual(["one", " two", "  three"])
      expect(texts(events).join("")).toBe("one two  three")
    }))

  it.effect("a mid-stream failure comes after the scripted chunks, with textEmitted", () =>
    Effect.gen(function* () {
      const mock = yield* LlmMock.make([LlmMock.chunks(["Once", " upon"], { error: "ConnectionError" })])
      const seen: Array<string> = []
      const failure = yield* mock.stream(ask("x")).pipe(
        Stream.runForEach((e) => Effect.sync(() => seen.push(e._tag))),
        Effect.flip
      )
      expect(seen).toEqual(["TextDelta", "TextDelta"])
      expect(failure._tag).toBe("ConnectionError")
      expect(failure.textEmitted).toBe(9)
    }))

  it.effect("complete on a chunk script with an error fails with that error", () =>
    Effect.gen(function* () {
      const mock = yield* LlmMock.make([LlmMock.chunks(["a"], { error: LlmMock.error("TimeoutError", { phase: "idle" }) })])
      const failure = yield* Effect.flip(mock.complete(ask("x")))
      expect(failure._tag === "TimeoutError" && failure.phase).toBe("idle")
    }))

  it.effect("a stream that hangs after its chunks emits them and then stalls", () =>
    Effect.gen(function* () {
      const mock = yield* LlmMock.make([LlmMock.chunks(["a", "b"], { hang: true })])
      const seen: Array<string> = []
      const fiber = yield* mock.stream(ask("x")).pipe(
        Stream.runForEach((e) => Effect.sync(() => seen.push(e._tag))),
        Effect.fork
      )
      yield* TestClock.adjust(Duration.hours(1))
      expect(seen).toEqual(["TextDelta", "TextDelta"])
      expect(Option.isNone(yield* Fiber.poll(fiber))).toBe(true)
      yield* Fiber.interrupt(fiber)
    }))

  it.effect("a failing step fails the stream before any event", () =>
    Effect.gen(function* () {
      const mock = yield* LlmMock.make([LlmMock.fail("QuotaExceededError")])
      const failure = yield* Effect.flip(collect(mock.stream(ask("x"))))
      expect(failure._tag).toBe("QuotaExceededError")
    }))

  it.effect("an empty reply streams only a Finish", () =>
    Effect.gen(function* () {
      const mock = yield* LlmMock.make([LlmMock.reply("")])
      const events = yield* collect(mock.stream(ask("x")))
      expect(events.map((e) => e._tag)).toEqual(["Finish"])
    }))
})

describe("the echo model is deterministic", () => {
  it.effect("answers the last user message, prefixed with echo:", () =>
    Effect.gen(function* () {
      const echo = LlmMock.echo()
      const response = yield* echo.complete({
        messages: [
          { role: "user", content: "first question" },
          { role: "assistant", content: "an answer" },
          { role: "user", content: "hello there" }
        ]
      })
      expect(response.content).toBe("echo: hello there")
      expect(response.model).toBe("mock-echo")
      expect(response.usage).toEqual({ inputTokens: 6, outputTokens: 3, totalTokens: 9 })
    }))

  it.effect("streams its answer word by word", () =>
    Effect.gen(function* () {
      const events = yield* collect(LlmMock.echo().stream(ask("one two three")))
      expect(texts(events)).toEqual(["echo:", " one", " two", " three"])
      expect(events.at(-1)?._tag).toBe("Finish")
    }))

  it.effect("with no user message it echoes the last message", () =>
    Effect.gen(function* () {
      const response = yield* LlmMock.echo().complete({ messages: [{ role: "system", content: "rules here" }] })
      expect(response.content).toBe("echo: rules here")
    }))

  it.effect("stops at maxTokens words with finish reason length", () =>
    Effect.gen(function* () {
      const response = yield* LlmMock.echo().complete(ask("one two three four", { maxTokens: 2 }))
      expect(response.content).toBe("echo: one")
      expect(response.finishReason).toBe("length")
      expect(response.usage.outputTokens).toBe(2)
    }))

  it.effect("echoes every call, with its chunk delay under TestClock", () =>
    Effect.gen(function* () {
      const fiber = yield* Effect.fork(collect(Llm.stream(ask("a b"))))
      yield* TestClock.adjust(Duration.millis(50))
      expect(Option.isNone(yield* Fiber.poll(fiber))).toBe(true)
      yield* TestClock.adjust(Duration.millis(50))
      expect(texts(yield* Fiber.join(fiber))).toEqual(["echo:", " a", " b"])
      expect((yield* Llm.complete(ask("again"))).content).toBe("echo: again")
      expect((yield* LlmMock.requests).length).toBe(2)
    }).pipe(Effect.provide(LlmMock.layerEcho({ chunkDelay: Duration.millis(50) }))))
})

describe("an exhausted script fails clearly instead of hanging", () => {
  it.effect("the call after the last step fails with mock_script_exhausted", () =>
    Effect.gen(function* () {
      const mock = yield* LlmMock.make([LlmMock.reply("only")])
      yield* mock.complete(ask("x"))
      const failure = yield* Effect.flip(mock.complete(ask("y")))
      expect(failure._tag).toBe("InvalidRequestError")
      expect(failure._tag === "InvalidRequestError" && failure.code).toBe("mock_script_exhausted")
      expect(failure.message).toContain("LlmMock script exhausted: call 2 arrived after all 1 scripted step was used")
      expect(failure.retryable).toBe(false)
    }))

  it.effect("an exhausted stream fails too", () =>
    Effect.gen(function* () {
      const mock = yield* LlmMock.make([])
      const failure = yield* Effect.flip(collect(mock.stream(ask("x"))))
      expect(failure.message).toContain("script exhausted")
    }))

  it.effect("a fallback step answers every call after the script", () =>
    Effect.gen(function* () {
      const mock = yield* LlmMock.make([LlmMock.reply("scripted")], { fallback: LlmMock.echoing() })
      expect((yield* mock.complete(ask("x"))).content).toBe("scripted")
      expect((yield* mock.complete(ask("y"))).content).toBe("echo: y")
      expect((yield* mock.complete(ask("z"))).content).toBe("echo: z")
    }))
})

describe("error builds any LlmError with defaults", () => {
  it("fills provider, a readable message, and ServerError's status", () => {
    for (const tag of LlmError.tags) {
      const built = LlmMock.error(tag)
      expect(built._tag).toBe(tag)
      expect(built.provider).toBe("mock")
      expect(built.message.length).toBeGreaterThan(0)
      expect(LlmError.isLlmError(built)).toBe(true)
    }
    const server = LlmMock.error("ServerError")
    expect(server.status).toBe(500)
    expect(LlmMock.error("ServerError", { status: 502, message: "Bad gateway" })).toMatchObject({
      status: 502,
      message: "Bad gateway",
      retryable: true
    })
  })
})

describe("answers beyond text", () => {
  it.effect("toolCall answers with one call, finish reason tool_calls, whole and streamed alike", () =>
    Effect.gen(function* () {
      const step = LlmMock.toolCall("get_weather", { city: "Oslo" }, { id: "call_1", text: "Checking." })
      const mock = yield* LlmMock.make([step, step])
      const whole = yield* mock.complete(ask("weather?"))
      expect(whole.toolCalls).toStrictEqual([
        { id: "call_1", name: "get_weather", arguments: { city: "Oslo" }, argumentsText: '{"city":"Oslo"}' }
      ])
      expect(whole.content).toBe("Checking.")
      expect(whole.finishReason).toBe("tool_calls")
      const events = yield* collect(mock.stream(ask("weather?")))
      expect(events.map((e) => e._tag)).toStrictEqual(["TextDelta", "ToolCallStart", "ToolCallDelta", "ToolCall", "Finish"])
      expect({ ...(yield* Llm.collect(Llm.fromStream(Stream.fromIterable(events)))), id: "" }).toStrictEqual({ ...whole, id: "" })
    }))

  it.effect("toolCalls scripts parallel calls with default ids numbered across answers; argumentsText scripts broken JSON", () =>
    Effect.gen(function* () {
      const mock = yield* LlmMock.make([
        LlmMock.toolCalls([{ name: "a", arguments: 1 }, { name: "b", argumentsText: "" }]),
        LlmMock.toolCall("lookup", undefined, { argumentsText: '{"q": ' })
      ])
      const parallel = yield* mock.complete(ask("x"))
      expect(parallel.toolCalls).toStrictEqual([
        { id: "call_1", name: "a", arguments: 1, argumentsText: "1" },
        { id: "call_2", name: "b", arguments: {}, argumentsText: "" }
      ])
      const broken = yield* mock.complete(ask("x"))
      expect(broken.toolCalls).toStrictEqual([{ id: "call_3", name: "lookup", arguments: undefined, argumentsText: '{"q": ' }])
    }))

  it.effect("reasoning streams ReasoningDeltas with the signature last, and collects to reasoning and its signature", () =>
    Effect.gen(function* () {
      const step = LlmMock.reasoning("925 / 5 = 185", "185", { signature: "sig-1" })
      const mock = yield* LlmMock.make([step, step, LlmMock.reasoning("unsigned", "ok")])
      const events = yield* collect(mock.stream(ask("x")))
      expect(events.filter((e) => e._tag === "ReasoningDelta")).toStrictEqual([
        { _tag: "ReasoningDelta", text: "925" },
        { _tag: "ReasoningDelta", text: " /" },
        { _tag: "ReasoningDelta", text: " 5" },
        { _tag: "ReasoningDelta", text: " =" },
        { _tag: "ReasoningDelta", text: " 185" },
        { _tag: "ReasoningDelta", text: "", signature: "sig-1" }
      ])
      const whole = yield* mock.complete(ask("x"))
      expect(whole).toMatchObject({ reasoning: "925 / 5 = 185", reasoningSignature: "sig-1", content: "185", finishReason: "stop" })
      const unsigned = yield* mock.complete(ask("x"))
      expect(unsigned.reasoning).toBe("unsigned")
      expect(unsigned.reasoningSignature).toBeUndefined()
    }))

  it.effect("refusal answers with no text, the refusal on the answer and on the Finish", () =>
    Effect.gen(function* () {
      const mock = yield* LlmMock.make([LlmMock.refusal("I can't help with that."), LlmMock.refusal("No.", { latency: "1 second" })])
      const whole = yield* mock.complete(ask("x"))
      expect(whole).toMatchObject({ content: "", refusal: "I can't help with that.", finishReason: "refusal", toolCalls: [] })
      const fiber = yield* Effect.fork(collect(mock.stream(ask("x"))))
      yield* TestClock.adjust("1 second")
      const events = yield* Fiber.join(fiber)
      expect(events).toHaveLength(1)
      expect(events[0]).toMatchObject({ _tag: "Finish", refusal: "No.", finishReason: "refusal" })
    }))

  it.effect("usage and the echo read the text parts of a message", () =>
    Effect.gen(function* () {
      const echo = LlmMock.echo()
      const response = yield* echo.complete({
        messages: [{ role: "user", content: [{ type: "text", text: "two words" }, { type: "image", url: "https://x.io/a.png" }] }]
      })
      expect(response.content).toBe("echo: two words")
      expect(response.usage.inputTokens).toBe(2)
    }))
})
