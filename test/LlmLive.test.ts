import { RateLimiter } from "@effect/experimental"
import { describe, expect, it } from "@effect/vitest"
import { Chunk, ConfigProvider, Effect, FiberRef, HashMap, Layer, Logger, LogLevel, Metric, Stream } from "effect"
import * as Simulator from "../simulator/Simulator.js"
import * as Llm from "../src/Llm.js"
import * as LlmLive from "../src/LlmLive.js"
import type * as LlmRequest from "../src/LlmRequest.js"

const withEnv = (env: Record<string, string>) =>
  Effect.withConfigProvider(ConfigProvider.fromMap(new Map(Object.entries(env))))

const ask = (content: string, extra: Partial<LlmRequest.LlmRequest> = {}): LlmRequest.LlmRequest => ({
  messages: [{ role: "user", content }],
  ...extra
})

const modelOf = (request: Simulator.RecordedRequest): unknown =>
  typeof request.body === "object" && request.body !== null && "model" in request.body ? request.body.model : undefined

/** Both built-in providers and a compatible endpoint, all pointed at one simulator. */
const simulatorEnv = (sim: Simulator.Simulator, extra: Record<string, string> = {}) => ({
  OPENAI_API_KEY: "sk-test-openai",
  OPENAI_BASE_URL: `${sim.url}/v1`,
  ANTHROPIC_API_KEY: "sk-test-anthropic",
  ANTHROPIC_BASE_URL: sim.url,
  OPENAI_COMPATIBLE_NAME: "local",
  OPENAI_COMPATIBLE_BASE_URL: `${sim.url}/v1`,
  ...extra
})

describe("without any provider configured, LlmLive fails clearly", () => {
  it.effect("building the layer fails with a ConfigError saying what to set", () =>
    Effect.gen(function* () {
      const error = yield* Effect.flip(Layer.build(LlmLive.layer).pipe(Effect.scoped, withEnv({})))
      expect(String(error)).toContain("no LLM provider is configured")
      expect(String(error)).toContain("OPENAI_API_KEY")
      expect(String(error)).toContain("ANTHROPIC_API_KEY")
    }))

  it.effect("blank keys from a copied .env.example do not count as configured", () =>
    Effect.gen(function* () {
      const env = { OPENAI_API_KEY: "", ANTHROPIC_API_KEY: "", LLM_TIMEOUT_MS: "30000" }
      expect(yield* LlmLive.configuredProviders.pipe(withEnv(env))).toEqual([])
      const error = yield* Effect.flip(LlmLive.make.pipe(Effect.provide(RateLimiter.layerStoreMemory), withEnv(env)))
      expect(String(error)).toContain("no LLM provider is configured")
    }))
})

describe("configuredProviders tells which providers the environment enables", () => {
  it.effect("lists openai, anthropic and the compatible endpoint by name", () =>
    Effect.gen(function* () {
      const names = yield* LlmLive.configuredProviders.pipe(
        withEnv({
          ANTHROPIC_API_KEY: "k",
          OPENAI_API_KEY: "k",
          OPENAI_COMPATIBLE_NAME: "groq",
          OPENAI_COMPATIBLE_BASE_URL: "https://api.groq.com/openai/v1"
        })
      )
      expect(names).toEqual(["openai", "anthropic", "groq"])
    }))
})

describe("LLM_PROVIDER must name a configured provider", () => {
  it.effect("an unconfigured LLM_PROVIDER is a ConfigError naming LLM_PROVIDER", () =>
    Effect.gen(function* () {
      const error = yield* Effect.flip(LlmLive.make.pipe(Effect.provide(RateLimiter.layerStoreMemory), withEnv({ LLM_PROVIDER: "anthropic", OPENAI_API_KEY: "k" })))
      expect(String(error)).toContain("LLM_PROVIDER")
      expect(String(error)).toContain("configured: openai")
    }))
})

describe("requests are routed by provider name over real HTTP", () => {
  it.scopedLive("a request naming a provider reaches that provider's API", () =>
    Effect.gen(function* () {
      const sim = yield* Simulator.make()
      const llm = yield* LlmLive.make.pipe(Effect.provide(RateLimiter.layerStoreMemory), withEnv(simulatorEnv(sim)))
      const viaAnthropic = yield* llm.complete(ask("to anthropic", { provider: "anthropic", model: "claude-haiku-4-5" }))
      const viaOpenAi = yield* llm.complete(ask("to openai", { provider: "openai", model: "gpt-4o-mini" }))
      const viaLocal = yield* llm.complete(ask("to local", { provider: "local", model: "llama3.2" }))
      expect(sim.requests().map((r) => r.route)).toEqual(["anthropic", "openai", "openai"])
      expect([viaAnthropic.provider, viaOpenAi.provider, viaLocal.provider]).toEqual(["anthropic", "openai", "local"])
      expect(viaAnthropic.content).toContain("to anthropic")
    }))

  it.scopedLive("a request naming no provider goes to the first configured one", () =>
    Effect.gen(function* () {
      const sim = yield* Simulator.make()
      const { OPENAI_API_KEY: _drop, ...env } = simulatorEnv(sim)
      const llm = yield* LlmLive.make.pipe(Effect.provide(RateLimiter.layerStoreMemory), withEnv(env))
      const response = yield* llm.complete(ask("hello"))
      expect(response.provider).toBe("anthropic")
      expect(sim.requests().map((r) => r.route)).toEqual(["anthropic"])
    }))

  it.scopedLive("LLM_PROVIDER picks the default, and LLM_DEFAULT_MODEL is that provider's model only", () =>
    Effect.gen(function* () {
      const sim = yield* Simulator.make()
      const llm = yield* LlmLive.make.pipe(Effect.provide(RateLimiter.layerStoreMemory), 
        withEnv(simulatorEnv(sim, { LLM_PROVIDER: "local", LLM_DEFAULT_MODEL: "llama3.2" }))
      )
      const byDefault = yield* llm.complete(ask("hello"))
      yield* llm.complete(ask("hello", { provider: "anthropic" }))
      expect(byDefault.provider).toBe("local")
      const [first, second] = sim.requests()
      expect(first && modelOf(first)).toBe("llama3.2")
      expect(second?.route).toBe("anthropic")
      expect(second && modelOf(second)).not.toBe("llama3.2")
    }))

  it.scopedLive("OPENAI_COMPATIBLE_MODEL is the compatible endpoint's model, even when it is the default", () =>
    Effect.gen(function* () {
      const sim = yield* Simulator.make()
      const llm = yield* LlmLive.make.pipe(Effect.provide(RateLimiter.layerStoreMemory), 
        withEnv(simulatorEnv(sim, { LLM_PROVIDER: "local", LLM_DEFAULT_MODEL: "general", OPENAI_COMPATIBLE_MODEL: "llama3.2" }))
      )
      const response = yield* llm.complete(ask("hello"))
      expect(response.provider).toBe("local")
      expect(sim.requests().map(modelOf)).toEqual(["llama3.2"])
    }))

  it.scopedLive("streams are routed the same way", () =>
    Effect.gen(function* () {
      const sim = yield* Simulator.make()
      sim.enqueue("anthropic", { text: "streamed answer" })
      const llm = yield* LlmLive.make.pipe(Effect.provide(RateLimiter.layerStoreMemory), withEnv(simulatorEnv(sim)))
      const events = Chunk.toReadonlyArray(yield* Stream.runCollect(llm.stream(ask("x", { provider: "anthropic" }))))
      const text = events.flatMap((e) => (e._tag === "TextDelta" ? [e.text] : [])).join("")
      expect(text).toBe("streamed answer")
      expect(events.at(-1)?._tag).toBe("Finish")
      expect(sim.requests().map((r) => r.route)).toEqual(["anthropic"])
    }))

  it.scopedLive("an unknown provider or an invalid request never reaches the network", () =>
    Effect.gen(function* () {
      const sim = yield* Simulator.make()
      const llm = yield* LlmLive.make.pipe(Effect.provide(RateLimiter.layerStoreMemory), withEnv(simulatorEnv(sim)))
      const unknown = yield* Effect.flip(llm.complete(ask("x", { provider: "mistral" })))
      const invalid = yield* Effect.flip(llm.complete(ask("x", { temperature: 3 })))
      expect(unknown._tag === "InvalidRequestError" && unknown.field).toBe("provider")
      expect(unknown.message).toContain("configured: openai, anthropic, local")
      expect(invalid._tag === "InvalidRequestError" && invalid.field).toBe("temperature")
      expect(sim.requests()).toEqual([])
    }))
})

/** A logger keeping the fields of every line whose message passes `keep`, in place of the default one. */
const captureFields = (keep: (message: string) => boolean) => {
  const lines: Array<Record<string, unknown>> = []
  const capture = Logger.replace(
    Logger.defaultLogger,
    Logger.make(({ annotations, message }) => {
      if (keep(String(message))) lines.push(Object.fromEntries(HashMap.toEntries(annotations)))
    })
  )
  return { capture, lines }
}

describe("a call that names no model is reported under the model its provider uses", () => {
  it.scopedLive("a failed call's log line and metrics name the default model, not 'unknown'", () =>
    Effect.gen(function* () {
      const sim = yield* Simulator.make()
      const { capture, lines } = captureFields((message) => message === "llm call")
      const env = simulatorEnv(sim, { LLM_PROVIDER: "anthropic", LLM_DEFAULT_MODEL: "claude-reported-1", LLM_MAX_RETRIES: "0", LLM_LOG_CALL_LEVEL: "info" })
      const llm = yield* LlmLive.make.pipe(Effect.provide(RateLimiter.layerStoreMemory), withEnv(env))
      sim.enqueue("anthropic", { status: 400 })
      yield* Effect.flip(llm.complete(ask("hello"))).pipe(Effect.provide(capture))
      yield* llm.complete(ask("hello", { provider: "openai" })).pipe(Effect.provide(capture))
      expect(lines.map((line) => [line.outcome, line.provider, line.model])).toEqual([
        ["failure", "anthropic", "claude-reported-1"],
        ["success", "openai", "gpt-4o-mini"]
      ])
      const failures = (yield* Metric.snapshot).filter(
        (pair) =>
          pair.metricKey.name === "llm.client.requests" &&
          pair.metricKey.tags.some((tag) => tag.key === "gen_ai.request.model" && tag.value === "claude-reported-1") &&
          pair.metricKey.tags.some((tag) => tag.key === "llm.outcome" && tag.value === "failure")
      )
      expect(failures.length).toBe(1)
    }))

  it.scopedLive("a fallback target naming no model asks for its provider's, and the call's own provider and model are not asked twice", () =>
    Effect.gen(function* () {
      const sim = yield* Simulator.make()
      const { capture, lines: warnings } = captureFields((message) => message.startsWith("Falling back"))
      const env = simulatorEnv(sim, { LLM_PROVIDER: "openai", LLM_FALLBACK: "openai,anthropic", LLM_MAX_RETRIES: "0" })
      const llm = yield* LlmLive.make.pipe(Effect.provide(RateLimiter.layerStoreMemory), withEnv(env))
      sim.enqueue("openai", { status: 500 })
      const answer = yield* llm.complete(ask("hello")).pipe(Effect.provide(capture))
      expect(answer.provider).toBe("anthropic")
      expect(sim.requests().map((request) => [request.route, modelOf(request)])).toEqual([
        ["openai", "gpt-4o-mini"],
        ["anthropic", "claude-sonnet-4-6"]
      ])
      expect(warnings.map((line) => [line.provider, line.model, line.target])).toEqual([["openai", "gpt-4o-mini", "anthropic:claude-sonnet-4-6"]])
    }))
})


describe("LlmLive.layer leaves logging to the application", () => {
  it.scopedLive("the application's logger and minimum level stay as it set them, and the call line is at debug", () =>
    Effect.gen(function* () {
      const sim = yield* Simulator.make()
      const seen: Array<[string, string]> = []
      const appLogger = Logger.make(({ logLevel, message }) => void seen.push([logLevel.label, String(message)]))
      const app = Layer.mergeAll(Logger.replace(Logger.defaultLogger, appLogger), Logger.minimumLogLevel(LogLevel.Debug))
      sim.enqueue("openai", { text: "hi back" })
      yield* Effect.gen(function* () {
        yield* Llm.complete(ask("hello", { provider: "openai" }))
        yield* Effect.logDebug("the application's own line")
        expect(yield* FiberRef.get(FiberRef.currentMinimumLogLevel)).toEqual(LogLevel.Debug)
      }).pipe(Effect.provide(LlmLive.layer), Effect.provide(app), withEnv(simulatorEnv(sim)))
      expect(seen).toContainEqual(["DEBUG", "llm call"])
      expect(seen).toContainEqual(["DEBUG", "the application's own line"])
    }))
})
