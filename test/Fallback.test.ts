import { describe, expect, it } from "@effect/vitest"
import { Cause, Chunk, ConfigProvider, Duration, Effect, Either, Exit, HashMap, Layer, Logger, Option, Stream, TestClock } from "effect"
import * as CircuitBreaker from "../src/CircuitBreaker.js"
import * as Fallback from "../src/Fallback.js"
import * as Llm from "../src/Llm.js"
import type { LlmError } from "../src/LlmError.js"
import * as LlmMock from "../src/LlmMock.js"
import type { LlmResponse } from "../src/LlmRequest.js"

const request = { messages: [{ role: "user" as const, content: "hello" }] }

const errorOf = <A, E>(exit: Exit.Exit<A, E>) =>
  Exit.isFailure(exit) ? Option.getOrUndefined(Cause.failureOption(exit.cause)) : undefined

const chain: ReadonlyArray<Fallback.Target> = [
  { provider: "anthropic", model: "claude-sonnet-4-5" },
  { provider: "groq", model: "llama-3.3-70b" }
]

interface Scripts {
  readonly openai?: ReadonlyArray<LlmMock.Step>
  readonly anthropic?: ReadonlyArray<LlmMock.Step>
  readonly groq?: ReadonlyArray<LlmMock.Step>
}

/** Three scripted providers behind a router whose default is `openai`, with `policies` around the dispatch. */
const providers = (scripts: Scripts, policies: ReadonlyArray<Llm.Policy>) =>
  Effect.gen(function* () {
    const openai = yield* LlmMock.make(scripts.openai ?? [], { provider: "openai", model: "gpt-4o" })
    const anthropic = yield* LlmMock.make(scripts.anthropic ?? [], { provider: "anthropic", model: "claude-default" })
    const groq = yield* LlmMock.make(scripts.groq ?? [], { provider: "groq", model: "groq-default" })
    const llm = Llm.router({ providers: [openai, anthropic, groq], defaultProvider: "openai", policies })
    const calls = Effect.map(Effect.all([openai.requests, anthropic.requests, groq.requests]), ([o, a, g]) => ({
      openai: o,
      anthropic: a,
      groq: g
    }))
    return { llm, calls }
  })

/** The providers behind a router with the fallback policy over `options.chain` (default {@link chain}). */
const fallingBack = (scripts: Scripts, options: Fallback.Options = { chain }) =>
  Effect.flatMap(Fallback.make(options), (fallback) => providers(scripts, [fallback]))

const modes = ["whole", "streamed"] as const

/** One call in `mode`, collected into the whole answer either way. */
const ask = (llm: Llm.Service, mode: Llm.Mode, req: Parameters<Llm.Call>[0] = request): Effect.Effect<LlmResponse, LlmError> =>
  Llm.collect(llm.call(req, mode))

describe("Fallback: chain order", () => {
  for (const mode of modes) {
    it.effect(`${mode}: tries the chain in order after retryable failures, and the answer says who gave it`, () =>
      Effect.gen(function* () {
        const seen: Array<string> = []
        const { calls, llm } = yield* fallingBack(
          { openai: [LlmMock.fail("ServerError")], anthropic: [LlmMock.fail("OverloadedError")], groq: [LlmMock.reply("groq answers")] },
          { chain, onFallback: (info) => Effect.sync(() => seen.push(`${info.from}->${info.to.provider}:${info.error._tag}`)) }
        )
        const response = yield* ask(llm, mode, { ...request, model: "gpt-4o-mini" })
        expect(response).toMatchObject({ provider: "groq", model: "llama-3.3-70b", content: "groq answers" })
        const { anthropic, groq, openai } = yield* calls
        expect(openai.map((r) => r.model)).toEqual(["gpt-4o-mini"])
        expect(anthropic.map((r) => [r.provider, r.model])).toEqual([["anthropic", "claude-sonnet-4-5"]])
        expect(groq.map((r) => [r.provider, r.model])).toEqual([["groq", "llama-3.3-70b"]])
        expect(seen).toEqual(["openai->anthropic:ServerError", "anthropic->groq:OverloadedError"])
      })
    )
  }

  it.effect("does not call the chain when the first provider answers", () =>
    Effect.gen(function* () {
      const { calls, llm } = yield* fallingBack({ openai: [LlmMock.reply("fine")] })
      expect((yield* llm.complete(request)).provider).toBe("openai")
      const { anthropic, groq } = yield* calls
      expect(anthropic.length + groq.length).toBe(0)
    })
  )

  it.effect("returns the last error when every target fails", () =>
    Effect.gen(function* () {
      const { llm } = yield* fallingBack({
        openai: [LlmMock.fail("ServerError")],
        anthropic: [LlmMock.fail("OverloadedError")],
        groq: [LlmMock.fail("ConnectionError")]
      })
      expect(errorOf(yield* Effect.exit(llm.complete(request)))).toMatchObject({ _tag: "ConnectionError", provider: "groq" })
    })
  )

  it.effect("skips a target equal to the one that just failed", () =>
    Effect.gen(function* () {
      const { calls, llm } = yield* fallingBack({ anthropic: [LlmMock.fail("OverloadedError")], groq: [LlmMock.reply("groq answers")] })
      const response = yield* llm.complete({ ...request, provider: "anthropic", model: "claude-sonnet-4-5" })
      expect(response.provider).toBe("groq")
      expect((yield* calls).anthropic).toHaveLength(1)
    })
  )

  it.effect("a target naming no model is asked for its provider's default model", () =>
    Effect.gen(function* () {
      const { calls, llm } = yield* fallingBack(
        { openai: [LlmMock.fail("ServerError")], anthropic: [LlmMock.reply("ok")] },
        { chain: [{ provider: "anthropic" }] }
      )
      const response = yield* llm.complete({ ...request, model: "gpt-4o-mini" })
      expect(response.model).toBe("claude-default")
      expect((yield* calls).anthropic.map((r) => r.model)).toEqual(["claude-default"])
    })
  )

  it.effect("each run of a stream starts from the request's own provider again", () =>
    Effect.gen(function* () {
      const { calls, llm } = yield* fallingBack({
        openai: [LlmMock.fail("ServerError"), LlmMock.fail("ServerError")],
        anthropic: [LlmMock.reply("one"), LlmMock.reply("two")]
      })
      const stream = llm.stream(request)
      yield* Stream.runDrain(stream)
      yield* Stream.runDrain(stream)
      const { anthropic, openai } = yield* calls
      expect([openai.length, anthropic.length]).toEqual([2, 2])
    })
  )

  it.effect("an empty chain leaves the call as it was", () =>
    Effect.gen(function* () {
      const { calls, llm } = yield* fallingBack({ openai: [LlmMock.fail("ServerError")] }, {})
      expect(errorOf(yield* Effect.exit(llm.complete(request)))?._tag).toBe("ServerError")
      const { anthropic, groq } = yield* calls
      expect(anthropic.length + groq.length).toBe(0)
    })
  )
})

describe("Fallback: errors that end the call", () => {
  for (const mode of modes) {
    for (const tag of ["InvalidRequestError", "AuthenticationError", "QuotaExceededError", "NotFoundError"] as const) {
      it.effect(`${mode}: does not fall back on ${tag}`, () =>
        Effect.gen(function* () {
          const { calls, llm } = yield* fallingBack({ openai: [LlmMock.fail(tag)], anthropic: [LlmMock.reply("never")] })
          expect(errorOf(yield* Effect.exit(ask(llm, mode)))).toMatchObject({ _tag: tag, provider: "openai" })
          expect((yield* calls).anthropic).toHaveLength(0)
        })
      )
    }
  }

  it.effect("does not fall back on a non-retryable error of a retryable kind (a caller's deadline)", () =>
    Effect.gen(function* () {
      const { calls, llm } = yield* fallingBack({
        openai: [LlmMock.fail("TimeoutError", { phase: "deadline", retryable: false })],
        anthropic: [LlmMock.reply("never")]
      })
      expect(errorOf(yield* Effect.exit(llm.complete(request)))).toMatchObject({ _tag: "TimeoutError", phase: "deadline" })
      expect((yield* calls).anthropic).toHaveLength(0)
    })
  )
})

describe("Fallback: before the first part only", () => {
  it.effect("a stream that fails before its first part continues on the next target", () =>
    Effect.gen(function* () {
      const { llm } = yield* fallingBack({ openai: [LlmMock.fail("ConnectionError")], anthropic: [LlmMock.reply("streamed answer")] })
      const parts = Chunk.toReadonlyArray(yield* Stream.runCollect(llm.stream(request)))
      expect(parts.map((p) => (p._tag === "TextDelta" ? p.text : p._tag === "Finish" ? p.provider : p._tag))).toEqual(["streamed", " answer", "anthropic"])
    })
  )

  it.effect("a stream that sent a part and then fails is not restarted elsewhere: it fails with textEmitted", () =>
    Effect.gen(function* () {
      const { calls, llm } = yield* fallingBack({
        openai: [LlmMock.chunks(["Half", " an"], { error: "ServerError" })],
        anthropic: [LlmMock.reply("never")]
      })
      const exit = yield* Effect.exit(Stream.runDrain(llm.stream(request)))
      expect(errorOf(exit)).toMatchObject({ _tag: "ServerError", provider: "openai", textEmitted: 7 })
      expect((yield* calls).anthropic).toHaveLength(0)
    })
  )

  it.effect("a fallback stream that fails after its first part is not moved on again", () =>
    Effect.gen(function* () {
      const { calls, llm } = yield* fallingBack({
        openai: [LlmMock.fail("ServerError")],
        anthropic: [LlmMock.chunks(["Half"], { error: "ConnectionError" })],
        groq: [LlmMock.reply("never")]
      })
      const exit = yield* Effect.exit(Stream.runDrain(llm.stream(request)))
      expect(errorOf(exit)).toMatchObject({ _tag: "ConnectionError", provider: "anthropic", textEmitted: 4 })
      expect((yield* calls).groq).toHaveLength(0)
    })
  )

  it.effect("a whole answer arrives at once, so the same failure falls back for complete", () =>
    Effect.gen(function* () {
      const { llm } = yield* fallingBack({
        openai: [LlmMock.chunks(["Half", " an"], { error: "ServerError" })],
        anthropic: [LlmMock.reply("whole answer")]
      })
      expect(yield* llm.complete(request)).toMatchObject({ provider: "anthropic", content: "whole answer" })
    })
  )
})

describe("Fallback: with a circuit breaker per provider", () => {
  it.effect("moves straight to the next provider while the first one's circuit is open", () =>
    Effect.gen(function* () {
      const breaker = yield* CircuitBreaker.make({ failureRatio: 1, minimumCalls: 1, cooldown: Duration.seconds(30) })
      const fallback = yield* Fallback.make({ chain })
      const { calls, llm } = yield* providers(
        { openai: [LlmMock.fail("ServerError")], anthropic: [LlmMock.reply("one"), LlmMock.reply("two")] },
        [fallback, breaker]
      )
      expect((yield* llm.complete(request)).provider).toBe("anthropic")
      yield* TestClock.adjust(Duration.seconds(10))
      expect((yield* llm.complete(request)).provider).toBe("anthropic")
      expect((yield* calls).openai).toHaveLength(1)
    })
  )
})

describe("Fallback: logging", () => {
  it.effect("logs one warning per move, naming the failed provider and model, the target and the error", () =>
    Effect.gen(function* () {
      const lines: Array<{ level: string; message: string; fields: Record<string, unknown> }> = []
      const capture = Logger.replace(
        Logger.defaultLogger,
        Logger.make(({ annotations, logLevel, message }) => {
          lines.push({
            level: logLevel.label,
            message: Array.isArray(message) ? message.join(" ") : String(message),
            fields: Object.fromEntries(HashMap.toEntries(annotations))
          })
        })
      )
      const { llm } = yield* fallingBack(
        { openai: [LlmMock.fail("ServerError")], anthropic: [LlmMock.fail("OverloadedError")], groq: [LlmMock.reply("ok")] },
        { chain: [{ provider: "anthropic" }, { provider: "groq", model: "llama-3.3-70b" }] }
      )
      yield* llm.complete(request).pipe(Effect.provide(capture))
      expect(lines.map((l) => [l.level, l.fields])).toEqual([
        ["WARN", { provider: "openai", model: "gpt-4o", target: "anthropic", error: "ServerError" }],
        // A target naming no model leaves it to the provider: the policy does not know which it used.
        ["WARN", { provider: "anthropic", model: "default", target: "groq:llama-3.3-70b", error: "OverloadedError" }]
      ])
      expect(lines[0]?.message).toMatch(/^Falling back from openai to anthropic after ServerError: /)
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
      expect(Either.isLeft(result) && result.left).toMatch(/is not a fallback target/)
    }
  })

  it.effect("config reads the chain, and fails with a readable ConfigError on bad input", () =>
    Effect.gen(function* () {
      const options = yield* Effect.withConfigProvider(
        Fallback.config,
        ConfigProvider.fromMap(new Map([["LLM_FALLBACK", "anthropic:claude-sonnet-4-5,groq"]]))
      )
      expect(options).toEqual({ chain: [{ provider: "anthropic", model: "claude-sonnet-4-5" }, { provider: "groq" }] })
      const result = yield* Effect.either(
        Effect.withConfigProvider(Fallback.config, ConfigProvider.fromMap(new Map([["LLM_FALLBACK", "anthropic:,openai"]])))
      )
      expect(Either.isLeft(result) && String(result.left)).toMatch(/LLM_FALLBACK.*"anthropic:" is not a fallback target/)
    })
  )
})

describe("Fallback: layers", () => {
  const routed = (scripts: Scripts) => Layer.effect(Llm.Llm, Effect.map(providers(scripts, []), (p) => p.llm))

  it.effect("layer wraps the router in context", () =>
    Effect.gen(function* () {
      expect((yield* Llm.complete(request)).provider).toBe("groq")
    }).pipe(
      Effect.provide(
        Fallback.layer({ chain: [{ provider: "groq" }] }).pipe(
          Layer.provide(routed({ openai: [LlmMock.fail("OverloadedError")], groq: [LlmMock.reply("ok")] }))
        )
      )
    )
  )

  it.effect("layerConfig reads the chain, and an unset LLM_FALLBACK changes nothing", () =>
    Effect.gen(function* () {
      const run = (entries: ReadonlyArray<readonly [string, string]>) =>
        Effect.exit(
          Llm.complete(request).pipe(
            Effect.provide(
              Fallback.layerConfig.pipe(Layer.provide(routed({ openai: [LlmMock.fail("ServerError")], anthropic: [LlmMock.reply("ok")] })))
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
