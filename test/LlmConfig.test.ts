import { describe, expect, it } from "@effect/vitest"
import { ConfigError, ConfigProvider, Duration, Effect, Option, Redacted } from "effect"
import * as LlmConfig from "../src/LlmConfig.js"

const read = (env: Record<string, string>) =>
  LlmConfig.config.pipe(Effect.withConfigProvider(ConfigProvider.fromMap(new Map(Object.entries(env)))))

const failure = (env: Record<string, string>) => Effect.flip(read(env))

/** The variables a ConfigError names, from its paths. */
const named = (error: ConfigError.ConfigError): ReadonlyArray<string> => {
  switch (error._op) {
    case "And":
    case "Or":
      return [...named(error.left), ...named(error.right)]
    default:
      return [error.path.join(".")]
  }
}

describe("defaults apply when nothing is set", () => {
  it.effect("timeout 30000 ms, 3 retries, no provider", () =>
    Effect.gen(function* () {
      const config = yield* read({})
      expect(Duration.toMillis(config.timeout)).toBe(30_000)
      expect(config.maxRetries).toBe(3)
      expect(config.provider).toBeUndefined()
      expect(config.defaultModel).toBeUndefined()
      expect(LlmConfig.configuredProviders(config)).toEqual([])
      expect(LlmConfig.defaultProvider(config)).toEqual(Option.none())
    }))

  it.effect("blank values, as in a copied .env.example, count as unset", () =>
    Effect.gen(function* () {
      const config = yield* read({
        LLM_PROVIDER: "",
        LLM_DEFAULT_MODEL: " ",
        LLM_TIMEOUT_MS: "",
        LLM_MAX_RETRIES: "",
        OPENAI_API_KEY: "",
        OPENAI_BASE_URL: "",
        ANTHROPIC_API_KEY: "  ",
        ANTHROPIC_BASE_URL: "",
        OPENAI_COMPATIBLE_NAME: "",
        OPENAI_COMPATIBLE_BASE_URL: "",
        OPENAI_COMPATIBLE_API_KEY: ""
      })
      expect(Duration.toMillis(config.timeout)).toBe(30_000)
      expect(config.maxRetries).toBe(3)
      expect(LlmConfig.configuredProviders(config)).toEqual([])
    }))
})

describe("values that are set are read", () => {
  it.effect("reads every variable into the typed record", () =>
    Effect.gen(function* () {
      const config = yield* read({
        LLM_PROVIDER: "anthropic",
        LLM_DEFAULT_MODEL: "claude-sonnet-4-5",
        LLM_TIMEOUT_MS: "1500",
        LLM_MAX_RETRIES: "0",
        OPENAI_API_KEY: "sk-openai-secret",
        OPENAI_BASE_URL: "http://127.0.0.1:9999/v1",
        ANTHROPIC_API_KEY: "sk-ant-secret",
        OPENAI_COMPATIBLE_NAME: "ollama",
        OPENAI_COMPATIBLE_BASE_URL: "http://127.0.0.1:11434/v1"
      })
      expect(config.provider).toBe("anthropic")
      expect(config.defaultModel).toBe("claude-sonnet-4-5")
      expect(Duration.toMillis(config.timeout)).toBe(1500)
      expect(config.maxRetries).toBe(0)
      expect(config.openai?.baseURL).toBe("http://127.0.0.1:9999/v1")
      expect(config.openai && Redacted.value(config.openai.apiKey)).toBe("sk-openai-secret")
      expect(config.anthropic?.baseURL).toBeUndefined()
      expect(config.openaiCompatible).toEqual({ name: "ollama", baseURL: "http://127.0.0.1:11434/v1" })
      expect(LlmConfig.configuredProviders(config)).toEqual(["openai", "anthropic", "ollama"])
      expect(LlmConfig.defaultProvider(config)).toEqual(Option.some("anthropic"))
    }))

  it.effect("the default provider is the first configured one when LLM_PROVIDER is unset", () =>
    Effect.gen(function* () {
      const config = yield* read({ ANTHROPIC_API_KEY: "k", OPENAI_COMPATIBLE_NAME: "groq", OPENAI_COMPATIBLE_BASE_URL: "https://api.groq.com/openai/v1" })
      expect(LlmConfig.defaultProvider(config)).toEqual(Option.some("anthropic"))
    }))

  it.effect("a compatible endpoint may carry a key, and LLM_PROVIDER may name it", () =>
    Effect.gen(function* () {
      const config = yield* read({
        LLM_PROVIDER: "groq",
        OPENAI_COMPATIBLE_NAME: "groq",
        OPENAI_COMPATIBLE_BASE_URL: "https://api.groq.com/openai/v1",
        OPENAI_COMPATIBLE_API_KEY: "gsk-secret",
        OPENAI_COMPATIBLE_MODEL: "llama-3.3-70b"
      })
      expect(config.openaiCompatible?.model).toBe("llama-3.3-70b")
      expect(config.openaiCompatible?.apiKey && Redacted.value(config.openaiCompatible.apiKey)).toBe("gsk-secret")
      expect(LlmConfig.defaultProvider(config)).toEqual(Option.some("groq"))
    }))
})

describe("a malformed value is a ConfigError naming its variable", () => {
  const cases: ReadonlyArray<readonly [string, Record<string, string>, string]> = [
    ["LLM_TIMEOUT_MS", { LLM_TIMEOUT_MS: "abc" }, "positive integer"],
    ["LLM_TIMEOUT_MS", { LLM_TIMEOUT_MS: "-5" }, "positive integer"],
    ["LLM_TIMEOUT_MS", { LLM_TIMEOUT_MS: "0" }, "positive integer"],
    ["LLM_TIMEOUT_MS", { LLM_TIMEOUT_MS: "1.5" }, "positive integer"],
    ["LLM_MAX_RETRIES", { LLM_MAX_RETRIES: "three" }, "integer from 0 to 100"],
    ["LLM_MAX_RETRIES", { LLM_MAX_RETRIES: "-1" }, "integer from 0 to 100"],
    ["LLM_MAX_RETRIES", { LLM_MAX_RETRIES: "1000" }, "integer from 0 to 100"],
    ["OPENAI_BASE_URL", { OPENAI_API_KEY: "k", OPENAI_BASE_URL: "not a url" }, "http(s) URL"],
    ["ANTHROPIC_BASE_URL", { ANTHROPIC_API_KEY: "k", ANTHROPIC_BASE_URL: "ftp://example.test" }, "http(s) URL"],
    ["OPENAI_COMPATIBLE_BASE_URL", { OPENAI_COMPATIBLE_NAME: "x", OPENAI_COMPATIBLE_BASE_URL: "localhost:8080" }, "http(s) URL"],
    ["OPENAI_COMPATIBLE_NAME", { OPENAI_COMPATIBLE_BASE_URL: "http://127.0.0.1:1/v1" }, "is required"],
    ["OPENAI_COMPATIBLE_NAME", { OPENAI_COMPATIBLE_NAME: "openai", OPENAI_COMPATIBLE_BASE_URL: "http://127.0.0.1:1/v1" }, "not \"openai\""],
    ["OPENAI_COMPATIBLE_NAME", { OPENAI_COMPATIBLE_NAME: "my endpoint", OPENAI_COMPATIBLE_BASE_URL: "http://127.0.0.1:1/v1" }, "letters, digits"],
    ["OPENAI_COMPATIBLE_BASE_URL", { OPENAI_COMPATIBLE_NAME: "groq" }, "is required"],
    ["OPENAI_COMPATIBLE_BASE_URL", { OPENAI_COMPATIBLE_API_KEY: "k" }, "is required"],
    ["OPENAI_COMPATIBLE_BASE_URL", { OPENAI_COMPATIBLE_MODEL: "llama3.2" }, "is required"],
    ["LLM_PROVIDER", { LLM_PROVIDER: "openai", ANTHROPIC_API_KEY: "k" }, "not configured (configured: anthropic)"],
    ["LLM_PROVIDER", { LLM_PROVIDER: "anthropic" }, "set ANTHROPIC_API_KEY"],
    ["LLM_PROVIDER", { LLM_PROVIDER: "groq" }, "set OPENAI_COMPATIBLE_NAME"]
  ]
  for (const [variable, env, rule] of cases) {
    it.effect(`${variable}=${JSON.stringify(Object.values(env).at(-1))} is rejected: ${rule}`, () =>
      Effect.gen(function* () {
        const error = yield* failure(env)
        expect(ConfigError.isConfigError(error)).toBe(true)
        expect(named(error)).toEqual([variable])
        expect(String(error)).toContain(variable)
        expect(String(error)).toContain(rule)
      }))
  }
})

describe("keys stay Redacted", () => {
  it.effect("no key appears in String() or JSON of the config", () =>
    Effect.gen(function* () {
      const config = yield* read({
        OPENAI_API_KEY: "sk-openai-0123456789",
        ANTHROPIC_API_KEY: "sk-ant-0123456789",
        OPENAI_COMPATIBLE_NAME: "groq",
        OPENAI_COMPATIBLE_BASE_URL: "https://api.groq.com/openai/v1",
        OPENAI_COMPATIBLE_API_KEY: "gsk-0123456789"
      })
      expect(Redacted.isRedacted(config.openai?.apiKey)).toBe(true)
      expect(Redacted.isRedacted(config.anthropic?.apiKey)).toBe(true)
      expect(Redacted.isRedacted(config.openaiCompatible?.apiKey)).toBe(true)
      const shown = `${String(config.openai?.apiKey)} ${JSON.stringify(config)} ${String(config.anthropic?.apiKey)}`
      for (const secret of ["sk-openai-0123456789", "sk-ant-0123456789", "gsk-0123456789"]) {
        expect(shown).not.toContain(secret)
      }
      expect(JSON.stringify(config)).toContain("<redacted>")
    }))

  it.effect("a malformed value's error never carries a key", () =>
    Effect.gen(function* () {
      const error = yield* failure({ OPENAI_API_KEY: "sk-openai-0123456789", LLM_PROVIDER: "anthropic" })
      expect(String(error)).not.toContain("sk-openai-0123456789")
    }))
})
