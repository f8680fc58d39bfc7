/**
 * What a model costs: a table of USD prices per million tokens (input, cached input, output), the
 * defaults for common OpenAI and Anthropic models, and the cost of a call's `Usage`.
 *
 * Dated or prefixed model ids find their base entry by the longest matching prefix
 * (`gpt-4o-mini-2024-07-18` is priced as `gpt-4o-mini`, `openai/gpt-4o` as `gpt-4o`). A model that
 * is not in the table costs 0: pricing never fails a call. Override or extend the table with the
 * `LLM_PRICES` environment variable (JSON, see {@link config}) or by passing a table to
 * `Usage.layer({ prices })`.
 *
 * @example
 * import { Pricing } from "@clearside/llm"
 *
 * const usd = Pricing.cost(Pricing.defaults, "gpt-4o-mini-2024-07-18", {
 *   inputTokens: 1_000, outputTokens: 200, totalTokens: 1_200
 * })
 * // 1000 * 0.15 / 1e6 + 200 * 0.60 / 1e6 = 0.00027
 *
 * @since 0.1.0
 */
import { Config, Option, Schema } from "effect"
import type * as LlmRequest from "./LlmRequest.js"
import * as LlmConfig from "./LlmConfig.js"

/**
 * USD per million tokens. `cachedInput` is the price of input tokens read from the provider's
 * prompt cache; when absent they cost the full `input` price.
 *
 * @example
 * import { Pricing } from "@clearside/llm"
 * const price: Pricing.Price = { input: 2.5, cachedInput: 1.25, output: 10 }
 *
 * @since 0.1.0
 * @category Models
 */
export const Price = Schema.Struct({
  input: Schema.NonNegative,
  output: Schema.NonNegative,
  cachedInput: Schema.optional(Schema.NonNegative)
})

/**
 * @since 0.1.0
 * @category Models
 */
export type Price = typeof Price.Type

/**
 * Prices by model id (or id prefix).
 *
 * @example
 * import { Pricing } from "@clearside/llm"
 * const table: Pricing.PriceTable = { "my-finetune": { input: 3, output: 12 } }
 *
 * @since 0.1.0
 * @category Models
 */
export type PriceTable = Readonly<Record<string, Price>>

/**
 * The date the {@link defaults} were copied from the providers' public price lists. Prices change:
 * override them with `LLM_PRICES` when they do.
 *
 * @example
 * import { Pricing } from "@clearside/llm"
 * console.log(`prices as of ${Pricing.pricesAsOf}`)
 *
 * @since 0.1.0
 * @category Models
 */
export const pricesAsOf = "2025-10-01"

/**
 * List prices (standard tier, USD per million tokens) for common models, as of {@link pricesAsOf}.
 * Anthropic's `cachedInput` is the cache-read price; cache writes are not priced separately.
 *
 * @example
 * import { Pricing } from "@clearside/llm"
 * Pricing.defaults["gpt-4.1-mini"] // { input: 0.4, cachedInput: 0.1, output: 1.6 }
 *
 * @since 0.1.0
 * @category Models
 */
export const defaults: PriceTable = {
  // OpenAI
  "gpt-4o": { input: 2.5, cachedInput: 1.25, output: 10 },
  "gpt-4o-mini": { input: 0.15, cachedInput: 0.075, output: 0.6 },
  "gpt-4.1": { input: 2, cachedInput: 0.5, output: 8 },
  "gpt-4.1-mini": { input: 0.4, cachedInput: 0.1, output: 1.6 },
  "gpt-4.1-nano": { input: 0.1, cachedInput: 0.025, output: 0.4 },
  "gpt-5": { input: 1.25, cachedInput: 0.125, output: 10 },
  "gpt-5-mini": { input: 0.25, cachedInput: 0.025, output: 2 },
  "gpt-5-nano": { input: 0.05, cachedInput: 0.005, output: 0.4 },
  o1: { input: 15, cachedInput: 7.5, output: 60 },
  o3: { input: 2, cachedInput: 0.5, output: 8 },
  "o3-mini": { input: 1.1, cachedInput: 0.55, output: 4.4 },
  "o4-mini": { input: 1.1, cachedInput: 0.275, output: 4.4 },
  // Anthropic
  "claude-opus-4-1": { input: 15, cachedInput: 1.5, output: 75 },
  "claude-opus-4": { input: 15, cachedInput: 1.5, output: 75 },
  "claude-sonnet-4-5": { input: 3, cachedInput: 0.3, output: 15 },
  "claude-sonnet-4": { input: 3, cachedInput: 0.3, output: 15 },
  "claude-3-7-sonnet": { input: 3, cachedInput: 0.3, output: 15 },
  "claude-haiku-4-5": { input: 1, cachedInput: 0.1, output: 5 },
  "claude-3-5-haiku": { input: 0.8, cachedInput: 0.08, output: 4 }
}

// A prefix only matches at a boundary, so `o3` prices `o3-2025-04-16` but not `o3x`.
const isBoundary = (char: string | undefined) => char === undefined || char === "-" || char === "@" || char === ":"

const longestPrefix = (table: PriceTable, model: string): Price | undefined => {
  let best: string | undefined
  for (const key in table) {
    if (
      Object.hasOwn(table, key) &&
      model.startsWith(key) &&
      isBoundary(model[key.length]) &&
      (best === undefined || key.length > best.length)
    ) {
      best = key
    }
  }
  return best === undefined ? undefined : table[best]
}

/**
 * The price of a model: its exact entry, else the longest entry it starts with (at a `-`, `@` or
 * `:` boundary), also after dropping a routing prefix such as `openai/`.
 *
 * @example
 * import { Option } from "effect"
 * import { Pricing } from "@clearside/llm"
 *
 * Pricing.lookup(Pricing.defaults, "claude-sonnet-4-5-20250929") // Option.some({ input: 3, ... })
 * Pricing.lookup(Pricing.defaults, "my-local-model") // Option.none()
 *
 * @since 0.1.0
 * @category Lookup
 */
export const lookup = (table: PriceTable, model: string): Option.Option<Price> => Option.fromNullable(priceOf(table, model))

// Every call prices its model: each table remembers the models it has priced (tables are not
// changed once built; a bounded number of models is kept).
const priced = new WeakMap<PriceTable, Map<string, Price | undefined>>()
const pricedLimit = 1_000

const priceOf = (table: PriceTable, model: string): Price | undefined => {
  let known = priced.get(table)
  if (known === undefined) priced.set(table, (known = new Map()))
  if (known.has(model)) return known.get(model)
  const slash = model.lastIndexOf("/")
  const price =
    longestPrefix(table, model) ?? (slash >= 0 ? longestPrefix(table, model.slice(slash + 1)) : undefined)
  if (known.size >= pricedLimit) known.clear()
  known.set(model, price)
  return price
}

/**
 * The USD cost of a usage at a price. Cached input tokens are part of `inputTokens` and are
 * charged at `cachedInput`; reasoning tokens are part of `outputTokens`.
 *
 * @example
 * import { Pricing } from "@clearside/llm"
 *
 * Pricing.costAt({ input: 2, cachedInput: 0.5, output: 8 }, {
 *   inputTokens: 1_000_000, cachedInputTokens: 500_000, outputTokens: 0, totalTokens: 1_000_000
 * }) // 1 + 0.25 = 1.25
 *
 * @since 0.1.0
 * @category Cost
 */
export const costAt = (price: Price, usage: LlmRequest.Usage): number => {
  const cached = Math.min(Math.max(usage.cachedInputTokens ?? 0, 0), Math.max(usage.inputTokens, 0))
  const fresh = Math.max(usage.inputTokens, 0) - cached
  const output = Math.max(usage.outputTokens, 0)
  return (fresh * price.input + cached * (price.cachedInput ?? price.input) + output * price.output) / 1_000_000
}

/**
 * The USD cost of a model's usage under a table; 0 for a model the table does not know.
 *
 * @example
 * import { Pricing } from "@clearside/llm"
 * Pricing.cost(Pricing.defaults, "unknown-model", { inputTokens: 10, outputTokens: 10, totalTokens: 20 }) // 0
 *
 * @since 0.1.0
 * @category Cost
 */
export const cost = (table: PriceTable, model: string, usage: LlmRequest.Usage): number => {
  const price = priceOf(table, model)
  return price === undefined ? 0 : costAt(price, usage)
}

/**
 * A price table as JSON: `{"model-id": {"input": 1, "cachedInput": 0.5, "output": 2}}`.
 *
 * @example
 * import { Schema } from "effect"
 * import { Pricing } from "@clearside/llm"
 * const table = Schema.decodeUnknownSync(Pricing.PriceTableFromJson)('{"my-model":{"input":1,"output":2}}')
 *
 * @since 0.1.0
 * @category Models
 */
export const PriceTableFromJson = Schema.parseJson(Schema.Record({ key: Schema.String, value: Price }))

/**
 * The price table from the environment: {@link defaults} with the entries of `LLM_PRICES` (JSON,
 * see {@link PriceTableFromJson}) added or replacing theirs. Malformed JSON is a configuration
 * error at startup, not a failure of any call.
 *
 * @example
 * import { Effect } from "effect"
 * import { Pricing } from "@clearside/llm"
 *
 * // LLM_PRICES='{"gpt-4o":{"input":2,"output":8}}'
 * const table = Effect.runSync(Pricing.config)
 *
 * @since 0.1.0
 * @category Config
 */
export const config: Config.Config<PriceTable> = Config.map(LlmConfig.config, (settings) => ({ ...defaults, ...settings.prices }))
