/**
 * The composed `LlmLive` end to end: real SDKs over real HTTP against the simulator, with faults
 * scripted per attempt. The simulator runs on real time, so backoff is configured in milliseconds.
 */
import { describe, expect, it } from "@effect/vitest"
import { Chunk, ConfigProvider, Effect, Layer, Stream } from "effect"
import * as Simulator from "../../simulator/Simulator.js"
import { eventually, liveEnv } from "./support.js"
import * as Llm from "../../src/Llm.js"
import * as LlmLive from "../../src/LlmLive.js"
import type * as LlmRequest from "../../src/LlmRequest.js"

const key = "sk-test-LIVE-5e1f0c2b9a7d4e3f"

const envFor = (sim: Simulator.Simulator, extra: Record<string, string> = {}) => liveEnv(sim, key, extra)

/** `LlmLive.layer` read from `env`, as an application builds it. */
const live = (env: Map<string, string>) =>
  Layer.build(LlmLive.layer).pipe(
    Effect.map((context) => Effect.provide(context)),
    Effect.withConfigProvider(ConfigProvider.fromMap(env))
  )

const ask = (extra: Partial<LlmRequest.LlmRequest> = {}): LlmRequest.LlmRequest => ({
  messages: [{ role: "user", content: "ride it out" }],
  ...extra
})

describe("LlmLive rides out transient faults", () => {
  it.scopedLive("a 429 with retry-after, a 500 and a 503 are retried until the answer", () =>
    Effect.gen(function* () {
      const sim = yield* Simulator.make()
      sim.enqueue("openai", { status: 429, headers: { "retry-after-ms": "30" } }, { status: 500 }, { status: 503 })
      const provide = yield* live(envFor(sim))
      const response = yield* provide(Llm.complete(ask()))
      expect(response.content).toBe("ride it out")
      expect(response.provider).toBe("openai")
      expect(sim.attempts("openai")).toBe(4)
    }))

  it.scopedLive("a 529 and a connection reset are retried for Anthropic, streaming", () =>
    Effect.gen(function* () {
      const sim = yield* Simulator.make()
      sim.enqueue("anthropic", { status: 529 }, { destroyBeforeHeaders: true })
      const provide = yield* live(envFor(sim))
      const events = yield* provide(Stream.runCollect(Llm.stream(ask({ provider: "anthropic" }))))
      const text = Chunk.toArray(events)
        .map((event) => (event._tag === "TextDelta" ? event.text : ""))
        .join("")
      expect(text).toBe("ride it out")
      expect(Chunk.last(events)).toMatchObject({ value: { _tag: "Finish", finishReason: "stop" } })
      expect(sim.attempts("anthropic")).toBe(3)
    }))

  it.scopedLive("retries stop after LLM_MAX_RETRIES and the last error is returned", () =>
    Effect.gen(function* () {
      const sim = yield* Simulator.make()
      sim.enqueue("openai", { status: 500 }, { status: 502 }, { status: 503 })
      const provide = yield* live(envFor(sim, { LLM_MAX_RETRIES: "2" }))
      const error = yield* Effect.flip(provide(Llm.complete(ask())))
      expect(error).toMatchObject({ _tag: "ServerError", status: 503 })
      expect(sim.attempts("openai")).toBe(3)
    }))

  it.scopedLive("a 401 is not retried", () =>
    Effect.gen(function* () {
      const sim = yield* Simulator.make()
      sim.enqueue("openai", { status: 401 })
      const provide = yield* live(envFor(sim))
      const error = yield* Effect.flip(provide(Llm.complete(ask())))
      expect(error._tag).toBe("AuthenticationError")
      expect(sim.attempts("openai")).toBe(1)
      expect(JSON.stringify(error)).not.toContain(key)
    }))

  it.scopedLive("a hung attempt times out, its connection is closed, and the retry answers", () =>
    Effect.gen(function* () {
      const sim = yield* Simulator.make()
      sim.enqueue("openai", { hang: true })
      const provide = yield* live(envFor(sim, { LLM_TIMEOUT_MS: "150" }))
      const response = yield* provide(Llm.complete(ask()))
      expect(response.content).toBe("ride it out")
      expect(sim.attempts("openai")).toBe(2)
    }))

  it.scopedLive("attempts that time out are aborted: the simulator is left with no open connection", () =>
    Effect.gen(function* () {
      const sim = yield* Simulator.make()
      sim.enqueue("openai", { hang: true }, { hang: true })
      const provide = yield* live(envFor(sim, { LLM_TIMEOUT_MS: "100", LLM_MAX_RETRIES: "1" }))
      const error = yield* Effect.flip(provide(Llm.complete(ask())))
      expect(error).toMatchObject({ _tag: "TimeoutError", phase: "attempt", retryable: true })
      expect(sim.attempts("openai")).toBe(2)
      expect(yield* eventually(() => sim.openConnections() === 0, 100)).toBe(true)
    }))

  it.scopedLive("when OpenAI keeps failing, LLM_FALLBACK sends the call to Anthropic and says who answered", () =>
    Effect.gen(function* () {
      const sim = yield* Simulator.make()
      sim.enqueue("openai", { status: 503 }, { status: 503 })
      const provide = yield* live(envFor(sim, { LLM_MAX_RETRIES: "1", LLM_FALLBACK: "anthropic:claude-haiku-4-5" }))
      const response = yield* provide(Llm.complete(ask()))
      expect(response.provider).toBe("anthropic")
      expect(response.content).toBe("ride it out")
      expect(sim.requests().map((r) => r.route)).toEqual(["openai", "openai", "anthropic"])
    }))

  it.scopedLive("no fallback on an invalid request: the provider's 400 is returned as it is", () =>
    Effect.gen(function* () {
      const sim = yield* Simulator.make()
      sim.enqueue("openai", { status: 400 })
      const provide = yield* live(envFor(sim, { LLM_FALLBACK: "anthropic" }))
      const error = yield* Effect.flip(provide(Llm.complete(ask())))
      expect(error._tag).toBe("InvalidRequestError")
      expect(sim.requests().map((r) => r.route)).toEqual(["openai"])
    }))

  it.scopedLive("LLM_FALLBACK naming a provider that is not configured is a ConfigError naming it", () =>
    Effect.gen(function* () {
      const sim = yield* Simulator.make()
      const error = yield* Effect.flip(live(envFor(sim, { LLM_FALLBACK: "groq:llama" })))
      expect(String(error)).toContain("LLM_FALLBACK")
      expect(String(error)).toContain("groq")
    }))
})
