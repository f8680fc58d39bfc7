/**
 * The library's environment configuration, read through Effect's `Config`: which providers are
 * enabled (a provider is enabled by its key, or for an OpenAI-compatible endpoint by its base URL),
 * the default provider and model, the per-attempt timeout and the retry budget.
 *
 * Blank values count as unset, so a copied `.env.example` with empty lines works. A malformed value
 * is a `ConfigError` that names the variable (`LLM_TIMEOUT_MS must be a positive integer ...`).
 * Keys are only ever held as `Redacted` values.
 *
 * | variable | default | rule |
 * | --- | --- | --- |
 * | `LLM_PROVIDER` | the first configured provider | must name a configured provider |
 * | `LLM_DEFAULT_MODEL` | per provider | |
 * | `LLM_TIMEOUT_MS` | `30000` | positive integer |
 * | `LLM_MAX_RETRIES` | `3` | integer, 0 to 100 |
 * | `OPENAI_API_KEY`, `OPENAI_BASE_URL` | none | base URL: http(s) URL |
 * | `ANTHROPIC_API_KEY`, `ANTHROPIC_BASE_URL` | none | base URL: http(s) URL |
 * | `OPENAI_COMPATIBLE_NAME`, `OPENAI_COMPATIBLE_BASE_URL`, `OPENAI_COMPATIBLE_API_KEY`, `OPENAI_COMPATIBLE_MODEL` | none | name and base URL go together |
 *
 * @example
 * import { ConfigProvider, Effect } from "effect"
 * import { LlmConfig } from "@clearside/llm"
 *
 * const program = Effect.gen(function* () {
 *   const config = yield* LlmConfig.config
 *   return LlmConfig.configuredProviders(config) // ["anthropic"]
 * }).pipe(Effect.withConfigProvider(ConfigProvider.fromMap(new Map([["ANTHROPIC_API_KEY", "sk-ant-..."]]))))
 *
 * @since 0.1.0
 */
import { Config, ConfigError, Duration, Either, Option, Redacted } from "effect"

/**
 * A provider reached with a key: OpenAI or Anthropic.
 *
 * @example
 * import { Redacted } from "effect"
 * import type { LlmConfig } from "@clearside/llm"
 * const openai: LlmConfig.KeyedProvider = { apiKey: Redacted.make("sk-..."), baseURL: "http://127.0.0.1:8080/v1" }
 *
 * @since 0.1.0
 * @category Models
 */
export interface KeyedProvider {
  readonly apiKey: Redacted.Redacted<string>
  readonly baseURL?: string
}

/**
 * An OpenAI-compatible endpoint: its provider `name`, its `baseURL`, and a key if it needs one.
 *
 * @example
 * import type { LlmConfig } from "@clearside/llm"
 * const ollama: LlmConfig.CompatibleProvider = { name: "ollama", baseURL: "http://127.0.0.1:11434/v1" }
 *
 * @since 0.1.0
 * @category Models
 */
export interface CompatibleProvider {
  readonly name: string
  readonly baseURL: string
  readonly apiKey?: Redacted.Redacted<string>
  /** `OPENAI_COMPATIBLE_MODEL`: the endpoint's model when a request names none. */
  readonly model?: string
}

/**
 * The configuration as read from the environment. A provider field is present only when that
 * provider is configured.
 *
 * @example
 * import { Duration } from "effect"
 * import type { LlmConfig } from "@clearside/llm"
 * const none: LlmConfig.LlmConfig = { timeout: Duration.seconds(30), maxRetries: 3 }
 *
 * @since 0.1.0
 * @category Models
 */
export interface LlmConfig {
  /** `LLM_PROVIDER`: the default provider's name, when set. */
  readonly provider?: string
  /** `LLM_DEFAULT_MODEL`: the model of the default provider when a request names none. */
  readonly defaultModel?: string
  /** `LLM_TIMEOUT_MS`: the per-attempt timeout. */
  readonly timeout: Duration.Duration
  /** `LLM_MAX_RETRIES`: retries after the first attempt. */
  readonly maxRetries: number
  readonly openai?: KeyedProvider
  readonly anthropic?: KeyedProvider
  readonly openaiCompatible?: CompatibleProvider
}

const invalid = (name: string, rule: string) => ConfigError.InvalidData([name], rule)

/** A variable as text; unset, empty or blank is `None`. */
const optionalText = (name: string): Config.Config<Option.Option<string>> =>
  Config.string(name).pipe(
    Config.option,
    Config.map(Option.flatMap((value) => (value.trim() === "" ? Option.none() : Option.some(value.trim()))))
  )

const optionalKey = (name: string): Config.Config<Option.Option<Redacted.Redacted<string>>> =>
  Config.redacted(name).pipe(
    Config.option,
    Config.map(Option.filter((key) => Redacted.value(key).trim() !== ""))
  )

const integer = (name: string, options: { readonly min: number; readonly max: number; readonly default: number; readonly rule: string }) =>
  optionalText(name).pipe(
    Config.mapOrFail(
      Option.match({
        onNone: () => Either.right(options.default),
        onSome: (text) => {
          const value = /^[+-]?\d+$/.test(text) ? Number(text) : Number.NaN
          return Number.isSafeInteger(value) && value >= options.min && value <= options.max
            ? Either.right(value)
            : Either.left(invalid(name, `${name} must be ${options.rule}, got "${text}"`))
        }
      })
    )
  )

const baseUrl = (name: string) =>
  optionalText(name).pipe(
    Config.mapOrFail((value): Either.Either<Option.Option<string>, ConfigError.ConfigError> => {
      if (Option.isNone(value)) return Either.right(value)
      const parsed = URL.canParse(value.value) ? new URL(value.value) : undefined
      return parsed !== undefined && (parsed.protocol === "http:" || parsed.protocol === "https:")
        ? Either.right(value)
        : Either.left(invalid(name, `${name} must be an http(s) URL, got "${value.value}"`))
    })
  )

/**
 * The names of the built-in providers.
 *
 * @example
 * import { LlmConfig } from "@clearside/llm"
 * LlmConfig.builtInProviders // ["openai", "anthropic"]
 *
 * @since 0.1.0
 * @category Constants
 */
export const builtInProviders: ReadonlyArray<string> = ["openai", "anthropic"]

const compatibleName = /^[a-z0-9][a-z0-9._-]*$/i

/**
 * Reads and validates the whole configuration. Fails with a `ConfigError` naming the variable at
 * fault; never with a key in the message.
 *
 * @example
 * import { Effect } from "effect"
 * import { LlmConfig } from "@clearside/llm"
 *
 * const timeoutMs = Effect.map(LlmConfig.config, (config) => config.timeout)
 *
 * @since 0.1.0
 * @category Config
 */
export const config: Config.Config<LlmConfig> = Config.all({
  provider: optionalText("LLM_PROVIDER"),
  defaultModel: optionalText("LLM_DEFAULT_MODEL"),
  timeoutMs: integer("LLM_TIMEOUT_MS", {
    min: 1,
    max: Number.MAX_SAFE_INTEGER,
    default: 30_000,
    rule: "a positive integer number of milliseconds"
  }),
  maxRetries: integer("LLM_MAX_RETRIES", { min: 0, max: 100, default: 3, rule: "an integer from 0 to 100" }),
  openaiKey: optionalKey("OPENAI_API_KEY"),
  openaiBaseURL: baseUrl("OPENAI_BASE_URL"),
  anthropicKey: optionalKey("ANTHROPIC_API_KEY"),
  anthropicBaseURL: baseUrl("ANTHROPIC_BASE_URL"),
  compatibleName: optionalText("OPENAI_COMPATIBLE_NAME"),
  compatibleBaseURL: baseUrl("OPENAI_COMPATIBLE_BASE_URL"),
  compatibleKey: optionalKey("OPENAI_COMPATIBLE_API_KEY"),
  compatibleModel: optionalText("OPENAI_COMPATIBLE_MODEL")
}).pipe(
  Config.mapOrFail((raw): Either.Either<LlmConfig, ConfigError.ConfigError> => {
    const keyed = (key: Option.Option<Redacted.Redacted<string>>, baseURL: Option.Option<string>) =>
      Option.map(key, (apiKey): KeyedProvider => (Option.isSome(baseURL) ? { apiKey, baseURL: baseURL.value } : { apiKey }))
    const openai = keyed(raw.openaiKey, raw.openaiBaseURL)
    const anthropic = keyed(raw.anthropicKey, raw.anthropicBaseURL)

    let openaiCompatible = Option.none<CompatibleProvider>()
    if (Option.isSome(raw.compatibleBaseURL)) {
      if (Option.isNone(raw.compatibleName)) {
        return Either.left(
          invalid("OPENAI_COMPATIBLE_NAME", "OPENAI_COMPATIBLE_NAME is required when OPENAI_COMPATIBLE_BASE_URL is set")
        )
      }
      const name = raw.compatibleName.value
      if (!compatibleName.test(name) || builtInProviders.includes(name.toLowerCase())) {
        return Either.left(
          invalid(
            "OPENAI_COMPATIBLE_NAME",
            `OPENAI_COMPATIBLE_NAME must be letters, digits, ".", "_" or "-" and not "openai" or "anthropic", got "${name}"`
          )
        )
      }
      const baseURL = raw.compatibleBaseURL.value
      openaiCompatible = Option.some({
        name,
        baseURL,
        ...(Option.isSome(raw.compatibleKey) ? { apiKey: raw.compatibleKey.value } : {}),
        ...(Option.isSome(raw.compatibleModel) ? { model: raw.compatibleModel.value } : {})
      })
    } else if (Option.isSome(raw.compatibleName) || Option.isSome(raw.compatibleKey) || Option.isSome(raw.compatibleModel)) {
      return Either.left(
        invalid(
          "OPENAI_COMPATIBLE_BASE_URL",
          "OPENAI_COMPATIBLE_BASE_URL is required when another OPENAI_COMPATIBLE_* variable is set"
        )
      )
    }

    const result: LlmConfig = {
      timeout: Duration.millis(raw.timeoutMs),
      maxRetries: raw.maxRetries,
      ...(Option.isSome(raw.provider) ? { provider: raw.provider.value } : {}),
      ...(Option.isSome(raw.defaultModel) ? { defaultModel: raw.defaultModel.value } : {}),
      ...(Option.isSome(openai) ? { openai: openai.value } : {}),
      ...(Option.isSome(anthropic) ? { anthropic: anthropic.value } : {}),
      ...(Option.isSome(openaiCompatible) ? { openaiCompatible: openaiCompatible.value } : {})
    }
    const configured = configuredProviders(result)
    if (result.provider !== undefined && !configured.includes(result.provider)) {
      const enable =
        result.provider === "openai"
          ? "set OPENAI_API_KEY"
          : result.provider === "anthropic"
            ? "set ANTHROPIC_API_KEY"
            : "set OPENAI_COMPATIBLE_NAME and OPENAI_COMPATIBLE_BASE_URL"
      return Either.left(
        invalid(
          "LLM_PROVIDER",
          `LLM_PROVIDER is "${result.provider}" but that provider is not configured ` +
            `(configured: ${configured.join(", ") || "none"}); ${enable} or change LLM_PROVIDER`
        )
      )
    }
    return Either.right(result)
  })
)

/**
 * The names of the configured providers, in the order `openai`, `anthropic`, the compatible
 * endpoint. Empty when none is configured.
 *
 * @example
 * import { Duration, Redacted } from "effect"
 * import { LlmConfig } from "@clearside/llm"
 * LlmConfig.configuredProviders({ timeout: Duration.seconds(30), maxRetries: 3, openai: { apiKey: Redacted.make("k") } }) // ["openai"]
 *
 * @since 0.1.0
 * @category Accessors
 */
export const configuredProviders = (config: LlmConfig): ReadonlyArray<string> => [
  ...(config.openai ? ["openai"] : []),
  ...(config.anthropic ? ["anthropic"] : []),
  ...(config.openaiCompatible ? [config.openaiCompatible.name] : [])
]

/**
 * The provider that answers requests naming none: `LLM_PROVIDER`, else the first configured one.
 *
 * @example
 * import { Duration, Redacted } from "effect"
 * import { LlmConfig } from "@clearside/llm"
 * LlmConfig.defaultProvider({ timeout: Duration.seconds(30), maxRetries: 3, anthropic: { apiKey: Redacted.make("k") } }) // Option.some("anthropic")
 *
 * @since 0.1.0
 * @category Accessors
 */
export const defaultProvider = (config: LlmConfig): Option.Option<string> =>
  config.provider !== undefined ? Option.some(config.provider) : Option.fromNullable(configuredProviders(config)[0])
