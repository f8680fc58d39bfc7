/**
 * Several providers side by side from the environment alone: OpenAI and two named
 * OpenAI-compatible endpoints (`OPENAI_COMPATIBLE_ENDPOINTS`), each with its own base URL, key,
 * headers, query and rate limits, routed by name through the whole `LlmLive` stack.
 */
import { RateLimiter } from "@effect/experimental"
import { describe, expect, it } from "@effect/vitest"
import { ConfigProvider, Effect, Logger, LogLevel } from "effect"
import * as LlmLive from "../../src/LlmLive.js"
import * as Simulator from "../../simulator/Simulator.js"
import { failure, hello } from "./support.js"

const quiet = Logger.withMinimumLogLevel(LogLevel.None)

describe("OpenAI and two named compatible endpoints", () => {
  it.scoped("each is its own provider: its own upstream, key, headers, model and rate limit", () =>
    Effect.gen(function* () {
      const openai = yield* Simulator.make()
      const groq = yield* Simulator.make()
      const vllm = yield* Simulator.make()
      const env = {
        OPENAI_API_KEY: "sk-test-SIDE-BY-SIDE-openai",
        OPENAI_BASE_URL: `${openai.url}/v1`,
        OPENAI_COMPATIBLE_ENDPOINTS: "groq,vllm",
        OPENAI_COMPATIBLE_GROQ_BASE_URL: `${groq.url}/v1`,
        OPENAI_COMPATIBLE_GROQ_API_KEY_VAR: "GROQ_API_KEY",
        GROQ_API_KEY: "gsk_test_SIDE_BY_SIDE_groq",
        OPENAI_COMPATIBLE_GROQ_MODEL: "llama-3.3-70b-versatile",
        OPENAI_COMPATIBLE_GROQ_HEADERS: JSON.stringify({ "x-team": "fast-agents" }),
        OPENAI_COMPATIBLE_VLLM_BASE_URL: `${vllm.url}/v1`,
        OPENAI_COMPATIBLE_VLLM_MODEL: "qwen3-8b",
        OPENAI_COMPATIBLE_VLLM_QUERY: JSON.stringify({ tenant: "private" }),
        LLM_RATE_LIMIT_RPM_GROQ: "1",
        LLM_RATE_LIMIT_RPM_VLLM: "2",
        LLM_RATE_LIMIT_MAX_WAIT_MS: "0",
        LLM_MAX_RETRIES: "0"
      }
      const llm = yield* LlmLive.make.pipe(
        Effect.provide(RateLimiter.layerStoreMemory),
        Effect.withConfigProvider(ConfigProvider.fromMap(new Map(Object.entries(env))))
      )
      // Time stands still (TestClock): no bucket refills during the test.
      const groqAnswer = yield* llm.complete({ ...hello, provider: "groq" })
      const groqRefused = yield* failure(llm.complete({ ...hello, provider: "groq" }))
      const vllmAnswers = yield* Effect.forEach([1, 2], () => llm.complete({ ...hello, provider: "vllm" }))
      const vllmRefused = yield* failure(llm.complete({ ...hello, provider: "vllm" }))
      const openaiAnswers = yield* Effect.forEach([1, 2, 3, 4, 5], () => llm.complete(hello))

      expect(groqAnswer).toMatchObject({ provider: "groq", model: "llama-3.3-70b-versatile" })
      expect(vllmAnswers.map((answer) => answer.provider)).toEqual(["vllm", "vllm"])
      expect(openaiAnswers.every((answer) => answer.provider === "openai")).toBe(true)
      expect(groqRefused).toMatchObject({ _tag: "RateLimitError", provider: "groq", local: true })
      expect(vllmRefused).toMatchObject({ _tag: "RateLimitError", provider: "vllm", local: true })
      expect([openai.attempts(), groq.attempts(), vllm.attempts()]).toEqual([5, 1, 2])

      const groqRequest = groq.requests()[0]
      expect(groqRequest?.headers).toMatchObject({ "x-team": "fast-agents", authorization: "<redacted>" })
      expect(groqRequest?.body).toMatchObject({ model: "llama-3.3-70b-versatile" })
      const vllmRequest = vllm.requests()[0]
      expect(vllmRequest?.body).toMatchObject({ model: "qwen3-8b" })
      expect(vllmRequest?.headers.authorization).toBeUndefined()
      expect(vllmRequest?.headers["x-team"]).toBeUndefined()
      expect(openai.requests()[0]?.headers["x-team"]).toBeUndefined()
    }).pipe(quiet))

  it.scoped("a named endpoint is a fallback target like any provider", () =>
    Effect.gen(function* () {
      const groq = yield* Simulator.make()
      const vllm = yield* Simulator.make()
      groq.enqueue("openai", { status: 503 })
      const env = {
        OPENAI_COMPATIBLE_ENDPOINTS: "groq,vllm",
        OPENAI_COMPATIBLE_GROQ_BASE_URL: `${groq.url}/v1`,
        OPENAI_COMPATIBLE_GROQ_MODEL: "llama",
        OPENAI_COMPATIBLE_VLLM_BASE_URL: `${vllm.url}/v1`,
        OPENAI_COMPATIBLE_VLLM_MODEL: "qwen",
        LLM_FALLBACK: "vllm",
        LLM_MAX_RETRIES: "0"
      }
      const llm = yield* LlmLive.make.pipe(
        Effect.provide(RateLimiter.layerStoreMemory),
        Effect.withConfigProvider(ConfigProvider.fromMap(new Map(Object.entries(env))))
      )
      const answer = yield* llm.complete(hello)
      expect(answer).toMatchObject({ provider: "vllm", model: "qwen" })
      expect([groq.attempts(), vllm.attempts()]).toEqual([1, 1])
    }).pipe(quiet))
})

describe("OPENAI_HEADERS and ANTHROPIC_HEADERS", () => {
  it.scoped("reach the wire with every request, and their values never show in an error", () =>
    Effect.gen(function* () {
      const sim = yield* Simulator.make()
      const secret = "hdr-SECRET-value-13572468"
      const env = {
        OPENAI_API_KEY: "sk-test-HEADERS-openai-0000",
        OPENAI_BASE_URL: `${sim.url}/v1`,
        OPENAI_HEADERS: JSON.stringify({ "x-openai-gateway": secret }),
        ANTHROPIC_API_KEY: "sk-ant-test-HEADERS-0000",
        ANTHROPIC_BASE_URL: sim.url,
        ANTHROPIC_HEADERS: JSON.stringify({ "x-anthropic-gateway": "anthropic-hdr-value" }),
        LLM_MAX_RETRIES: "0"
      }
      const llm = yield* LlmLive.make.pipe(
        Effect.provide(RateLimiter.layerStoreMemory),
        Effect.withConfigProvider(ConfigProvider.fromMap(new Map(Object.entries(env))))
      )
      yield* llm.complete(hello)
      yield* llm.complete({ ...hello, provider: "anthropic" })
      const [openai, anthropic] = sim.requests()
      expect(openai).toMatchObject({ route: "openai", headers: { "x-openai-gateway": secret } })
      expect(anthropic).toMatchObject({ route: "anthropic", headers: { "x-anthropic-gateway": "anthropic-hdr-value" } })
      expect(anthropic?.headers["x-openai-gateway"]).toBeUndefined()
      sim.enqueue("openai", { status: 400, body: { error: { message: `header ${secret} rejected` } } })
      const error = yield* failure(llm.complete(hello))
      expect(error.message).toBe("openai answered 400: header [redacted] rejected")
    }).pipe(quiet))
})
