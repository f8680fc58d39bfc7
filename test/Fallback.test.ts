import { describe, expect, it } from "@effect/vitest"
import { Cause, Chunk, ConfigProvider, Duration, Effect, Either, Exit, Layer, Option, Stream, TestClock, Fiber } from "effect"
import * as CircuitBreaker from "../src/CircuitBreaker.js"
import * as Fallback from "../src/Fallback.js"
import * as Llm from "../src/Llm.js"
import * as LlmMock from "../src/LlmMock.js"
import * as Retry from "../src/Retry.js"

const request = { messages: [{ role: "user" as const, content: "hello" }] }

const errorOf = <A, E>(exit: Exit.Exit<A, E>) =>
  Exit.isFailure(exit) ? Option.getOrUndefined(Cause.failureOption(exit.cause)) : undefined

/** Three providers, each a scripted mock, behind a router whose default is `openai`. */
const providers = (scripts: {
  readonly openai?: ReadonlyArray<LlmMock.Step>
  readonly anthropic?: ReadonlyArray<LlmMock.Step>
  readonly groq?: ReadonlyArray<LlmMock.Step>
}) =>
  Effect.gen(function* () {
    const openai = yield* LlmMock.make(scripts.openai ?? [], { provider: "openai" })
    const anthropic = yield* LlmMock.make(scripts.anthropic ?? [], { provider: "anthropic" })
    const groq = yield* LlmMock.make(scripts.groq ?? [], { provider: "groq" })
    const routed = Llm.router({ providers: { openai, anthropic, groq }, defaultProvider: "openai" })
    const calls = Effect.map(
      Effect.all([openai.requests, anthropic.requests, groq.requests]),
      ([o, a, g]) => ({ openai: o, anthropic: a, groq: g })
    )
    return { routed, calls }
  })

const chain: ReadonlyArray<Fallback.Target> = [
  { provider: "anthropic", model: "claude-sonnet-4-5" },
  { provider: "groq", model: "llama-3.3-70b" }
]

describe("Fallback: order", () => {
  it.effect("tries the chain in order after retryable failures, and the response says who answered", () =>
    Effect.gen(function* () {
      const { calls, routed } = yield* providers({
        openai: [LlmMock.fail("ServerError")],
        anthropic: [LlmMock.fail("OverloadedError")],
        groq: [LlmMock.reply("groq answers")]
      })
      const seen: Array<string> = []
      const llm = Fallback.make({ chain, onFallback: (info) => Effect.sync(() => seen.push(`${info.from}->${info.to.provider}:${info.error._tag}`)) })(routed)
      const response = yield* llm.complete({ ...request, model: "gpt-4o" })
      expect(response.provider).toBe("groq")
      expect(response.content).toBe("groq answers")
      const { anthropic, groq, openai } = yield* calls
      expect(openai.map((r) => r.model)).toEqual(["gpt-4o"])
      expect(anthropic.map((r) => [r.provider, r.model])).toEqual([["anthropic", "claude-sonnet-4-5"]])
      expect(groq.map((r) => [r.provider, r.model])).toEqual([["groq", "llama-3.3-70b"]])
      expect(seen).toEqual(["openai->anthropic:ServerError", "anthropic->groq:OverloadedError"])
    })
  )

  it.effect("does not call the chain when the first provider answers", () =>
    Effect.gen(function* () {
      const { calls, routed } = yield* providers({ openai: [LlmMock.reply("fine")] })
      const response = yield* Fallback.make({ chain })(routed).complete(request)
      expect(response.provider).toBe("openai")
      const { anthropic, groq } = yield* calls
      expect(anthropic.length + groq.length).toBe(0)
    })
  )

  it.effect("falls back on an open circuit", () =>
    Effect.gen(function* () {
      const { routed } = yield* providers({
        openai: [LlmMock.fail("CircuitOpenError", { retryAfter: Duration.seconds(10) })],
        anthropic: [LlmMock.reply("anthropic answers")]
      })
      const response = yield* Fallback.make({ chain })(routed).complete(request)
      expect(response.provider).toBe("anthropic")
    })
  )

  it.effect("returns the last error when every target fails", () =>
    Effect.gen(function* () {
      const { routed } = yield* providers({
        openai: [LlmMock.fail("ServerError")],
        anthropic: [LlmMock.fail("OverloadedError")],
        groq: [LlmMock.fail("ConnectionError")]
      })
      const error = errorOf(yield* Effect.exit(Fallback.make({ chain })(routed).complete(request)))
      expect(error).toMatchObject({ _tag: "ConnectionError", provider: "groq" })
    })
  )

  it.effect("skips a target equal to the one that just failed", () =>
    Effect.gen(function* () {
      const { calls, routed } = yield* providers({
        anthropic: [LlmMock.fail("OverloadedError")],
        groq: [LlmMock.reply("groq answers")]
      })
      const llm = Fallback.make({ chain })(routed)
      const response = yield* llm.complete({ ...request, provider: "anthropic", model: "claude-sonnet-4-5" })
      expect(response.provider).toBe("groq")
      expect((yield* calls).anthropic).toHaveLength(1)
    })
  )

  it.effect("drops the request's model for a target that names none", () =>
    Effect.gen(function* () {
      const { calls, routed } = yield* providers({ openai: [LlmMock.fail("ServerError")], anthropic: [LlmMock.reply("ok")] })
      yield* Fallback.make({ chain: [{ provider: "anthropic" }] })(routed).complete({ ...request, model: "gpt-4o" })
      expect((yield* calls).anthropic[0]?.model).toBeUndefined()
    })
  )

  it.effect("falls back only after the provider's own retries are spent", () =>
    Effect.gen(function* () {
      const { calls, routed } = yield* providers({
        openai: [LlmMock.fail("ServerError"), LlmMock.fail("ServerError"), LlmMock.fail("ServerError")],
        anthropic: [LlmMock.reply("anthropic answers")]
      })
      // Per provider: retry inside, fallback outside.
      const perProvider = Llm.router({
        providers: {
          openai: Retry.make({ maxRetries: 2 })({ complete: routed.complete, stream: routed.stream }),
          anthropic: routed
        },
        defaultProvider: "openai"
      })
      const fiber = yield* Effect.fork(Fallback.make({ chain })(perProvider).complete(request))
      yield* TestClock.adjust(Duration.minutes(1))
      expect((yield* Fiber.join(fiber)).provider).toBe("anthropic")
      expect((yield* calls).openai).toHaveLength(3)
    })
  )
})

describe("Fallback: errors that end the call", () => {
  for (const tag of ["InvalidRequestError", "AuthenticationError", "QuotaExceededError", "NotFoundError"] as const) {
    it.effect(`does not fall back on ${tag}`, () =>
      Effect.gen(function* () {
        const { calls, routed } = yield* providers({ openai: [LlmMock.fail(tag)], anthropic: [LlmMock.reply("never")] })
        const error = errorOf(yield* Effect.exit(Fallback.make({ chain })(routed).complete(request)))
        expect(error?._tag).toBe(tag)
        expect((yield* calls).anthropic).toHaveLength(0)
      })
    )
  }

  it.effect("does not fall back on a non-retryable error of a retryable kind", () =>
    Effect.gen(function* () {
      const { calls, routed } = yield* providers({
        openai: [LlmMock.fail("TimeoutError", { phase: "deadline", retryable: false })],
        anthropic: [LlmMock.reply("never")]
      })
      const error = errorOf(yield* Effect.exit(Fallback.make({ chain })(routed).complete(request)))
      expect(error).toMatchObject({ _tag: "TimeoutError", phase: "deadline" })
      expect((yield* calls).anthropic).toHaveLength(0)
    })
  )
})

describe("Fallback: streams", () => {
  it.effect("falls back before the first event", () =>
    Effect.gen(function* () {
      const { routed } = yield* providers({ openai: [LlmMock.fail("ConnectionError")], anthropic: [LlmMock.reply("streamed answer")] })
      const events = Chunk.toReadonlyArray(yield* Stream.runCollect(Fallback.make({ chain })(routed).stream(request)))
      expect(events.at(-1)).toMatchObject({ _tag: "Finish", provider: "anthropic" })
    })
  )

  it.effect("does not fall back after the first event: fails with textEmitted", () =>
    Effect.gen(function* () {
      const { calls, routed } = yield* providers({
        openai: [LlmMock.chunks(["Half", " an"], { error: "ServerError" })],
        anthropic: [LlmMock.reply("never")]
      })
      const exit = yield* Effect.exit(Stream.runDrain(Fallback.make({ chain })(routed).stream(request)))
      expect(errorOf(exit)).toMatchObject({ _tag: "ServerError", textEmitted: 7 })
      expect((yield* calls).anthropic).toHaveLength(0)
    })
  )

  it.effect("does not fall back on a non-retryable stream error", () =>
    Effect.gen(function* () {
      const { calls, routed } = yield* providers({ openai: [LlmMock.fail("AuthenticationError")] })
      const exit = yield* Effect.exit(Stream.runDrain(Fallback.make({ chain })(routed).stream(request)))
      expect(errorOf(exit)?._tag).toBe("AuthenticationError")
      expect((yield* calls).anthropic).toHaveLength(0)
    })
  )
})

describe("Fallback: with a circuit breaker per provider", () => {
  it.effect("moves straight to the next provider while the first one's circuit is open", () =>
    Effect.gen(function* () {
      const { calls, routed } = yield* providers({
        openai: [LlmMock.fail("ServerError")],
        anthropic: [LlmMock.reply("one"), LlmMock.reply("two")]
      })
      const breaker = yield* CircuitBreaker.make({ failureThreshold: 1 })
      const llm = Fallback.make({ chain })(breaker(routed))
      expect((yield* llm.complete(request)).provider).toBe("anthropic")
      expect((yield* llm.complete(request)).provider).toBe("anthropic")
      expect((yield* calls).openai).toHaveLength(1)
    })
  )
})

describe("Fallback: parsing LLM_FALLBACK", () => {
  it("parses provider:model pairs, with optional models and spaces", () => {
    expect(Fallback.parse(" anthropic:claude-sonnet-4-5 , openai:gpt-4o-mini,groq ")).toEqual(
      Either.right([
        { provider: "anthropic", model: "claude-sonnet-4-5" },
        { provider: "openai", model: "gpt-4o-mini" },
        { provider: "groq" }
      ])
    )
    expect(Fallback.parse("")).toEqual(Either.right([]))
  })

  it("rejects malformed entries with a message naming them", () => {
    for (const bad of ["openai:", ":gpt-4o", "openai,,anthropic", "a:b:c", "open ai:gpt"]) {
      const result = Fallback.parse(bad)
      expect(Either.isLeft(result)).toBe(true)
      expect(Either.isLeft(result) && result.left).toMatch(/is not a fallback target/)
    }
  })

  it.effect("config fails with a readable ConfigError on bad input", () =>
    Effect.gen(function* () {
      const result = yield* Effect.either(
        Effect.withConfigProvider(Fallback.config, ConfigProvider.fromMap(new Map([["LLM_FALLBACK", "anthropic:,openai"]])))
      )
      expect(Either.isLeft(result) && String(result.left)).toMatch(/LLM_FALLBACK.*"anthropic:" is not a fallback target/)
    })
  )

  it.effect("layerConfig reads the chain, and an unset LLM_FALLBACK changes nothing", () =>
    Effect.gen(function* () {
      const run = (entries: ReadonlyArray<readonly [string, string]>) =>
        Effect.exit(
          Llm.complete(request).pipe(
            Effect.provide(
              Fallback.layerConfig.pipe(
                Layer.provide(
                  Layer.effect(Llm.Llm, Effect.map(providers({ openai: [LlmMock.fail("ServerError")], anthropic: [LlmMock.reply("ok")] }), (p) => p.routed))
                )
              )
            ),
            Effect.withConfigProvider(ConfigProvider.fromMap(new Map(entries)))
          )
        )
      const withChain = yield* run([["LLM_FALLBACK", "anthropic:claude-sonnet-4-5"]])
      expect(Exit.isSuccess(withChain) && withChain.value.provider).toBe("anthropic")
      expect(errorOf(yield* run([]))?._tag).toBe("ServerError")
    })
  )
})
