import { describe, expect, it } from "@effect/vitest"
import { ConfigProvider, Effect, Option, Schema } from "effect"
import * as Pricing from "../src/Pricing.js"

const withEnv = (env: Record<string, string>) => Effect.withConfigProvider(ConfigProvider.fromMap(new Map(Object.entries(env))))

describe("Pricing.defaults", () => {
  it("prices the common OpenAI and Anthropic models", () => {
    for (const model of [
      "gpt-4o", "gpt-4o-mini", "gpt-4.1", "gpt-4.1-mini", "gpt-4.1-nano", "o3", "o4-mini",
      "claude-sonnet-4-5", "claude-opus-4-1", "claude-haiku-4-5"
    ]) {
      expect(Option.isSome(Pricing.lookup(Pricing.defaults, model)), model).toBe(true)
    }
  })

  it("states the date of its prices", () => {
    expect(Pricing.pricesAsOf).toMatch(/^\d{4}-\d{2}-\d{2}$/)
  })
})

describe("Pricing.lookup", () => {
  it("matches a dated model id by its longest prefix", () => {
    expect(Pricing.lookup(Pricing.defaults, "gpt-4o-mini-2024-07-18")).toEqual(Option.some(Pricing.defaults["gpt-4o-mini"]))
    expect(Pricing.lookup(Pricing.defaults, "gpt-4o-2024-08-06")).toEqual(Option.some(Pricing.defaults["gpt-4o"]))
    expect(Pricing.lookup(Pricing.defaults, "gpt-4.1-nano-2025-04-14")).toEqual(Option.some(Pricing.defaults["gpt-4.1-nano"]))
    expect(Pricing.lookup(Pricing.defaults, "claude-sonnet-4-5-20250929")).toEqual(Option.some(Pricing.defaults["claude-sonnet-4-5"]))
  })

  it("only matches a prefix at a boundary", () => {
    expect(Pricing.lookup(Pricing.defaults, "o3x")).toEqual(Option.none())
    expect(Pricing.lookup(Pricing.defaults, "o3-2025-04-16")).toEqual(Option.some(Pricing.defaults["o3"]))
  })

  it("drops a routing prefix such as openai/", () => {
    expect(Pricing.lookup(Pricing.defaults, "openai/gpt-4.1-mini")).toEqual(Option.some(Pricing.defaults["gpt-4.1-mini"]))
  })

  it("knows nothing of an unknown model", () => {
    expect(Pricing.lookup(Pricing.defaults, "llama-3.1-8b")).toEqual(Option.none())
  })
})

describe("Pricing.cost", () => {
  it("charges cached input at the cached price and the rest at the input price", () => {
    const usd = Pricing.costAt(
      { input: 2, cachedInput: 0.5, output: 8 },
      { inputTokens: 1_000_000, cachedInputTokens: 400_000, outputTokens: 500_000, totalTokens: 1_500_000 }
    )
    expect(usd).toBeCloseTo(0.6 * 2 + 0.4 * 0.5 + 0.5 * 8, 10)
  })

  it("charges cached input at the input price when the model has no cached price", () => {
    const usd = Pricing.costAt(
      { input: 1, output: 1 },
      { inputTokens: 1_000_000, cachedInputTokens: 1_000_000, outputTokens: 0, totalTokens: 1_000_000 }
    )
    expect(usd).toBeCloseTo(1, 10)
  })

  it("is zero for an unknown model", () => {
    expect(Pricing.cost(Pricing.defaults, "my-model", { inputTokens: 100, outputTokens: 100, totalTokens: 200 })).toBe(0)
  })

  it("prices a dated id like its base model", () => {
    const usage = { inputTokens: 1_000, outputTokens: 200, totalTokens: 1_200 }
    expect(Pricing.cost(Pricing.defaults, "gpt-4o-mini-2024-07-18", usage)).toBeCloseTo(0.00027, 12)
  })
})

describe("Pricing.config", () => {
  it.effect("is the defaults when LLM_PRICES is unset", () =>
    Effect.gen(function* () {
      expect(yield* Pricing.config).toEqual(Pricing.defaults)
    }).pipe(withEnv({})))

  it.effect("adds and replaces entries from LLM_PRICES", () =>
    Effect.gen(function* () {
      const table = yield* Pricing.config
      expect(table["house-model"]).toEqual({ input: 1, output: 2 })
      expect(table["gpt-4o"]).toEqual({ input: 2, output: 8, cachedInput: 1 })
      expect(table["gpt-4.1"]).toEqual(Pricing.defaults["gpt-4.1"])
    }).pipe(withEnv({ LLM_PRICES: '{"house-model":{"input":1,"output":2},"gpt-4o":{"input":2,"output":8,"cachedInput":1}}' })))

  it.effect("fails with a ConfigError naming LLM_PRICES on malformed JSON or negative prices", () =>
    Effect.gen(function* () {
      const bad = yield* Effect.flip(Pricing.config.pipe(withEnv({ LLM_PRICES: "{not json" })))
      expect(String(bad)).toContain("LLM_PRICES")
      const negative = yield* Effect.flip(Pricing.config.pipe(withEnv({ LLM_PRICES: '{"m":{"input":-1,"output":1}}' })))
      expect(String(negative)).toContain("LLM_PRICES")
    }))

  it("decodes a price table from JSON", () => {
    expect(Schema.decodeUnknownSync(Pricing.PriceTableFromJson)('{"m":{"input":1,"output":2}}')).toEqual({ m: { input: 1, output: 2 } })
  })
})
