/**
 * The library's environment configuration: every variable it knows, read once through Effect's
 * `Config` into one typed record. Which providers are enabled (a provider is enabled by its key,
 * or for an OpenAI-compatible endpoint by its base URL), the default provider and model, and a
 * section per policy holding that policy's options (`retry`, `timeout`, `rateLimit`, `store`,
 * `circuitBreaker`, `logging`, `prices`), so each policy's `config` is a projection of this one.
 *
 * Blank values count as unset, so a copied `.env.example` with empty lines works; values are
 * trimmed. Every malformed or out-of-range value is a `ConfigError` (`InvalidData` at the
 * variable's path) that names the variable, the rule and the value:
 * `LLM_RETRY_BASE_DELAY_MS must be a whole number of milliseconds from 0 to 600000, got "-5"`.
 * Numbers are plain decimal digits (`1e3`, `0x10`, `1.5` where a whole number is due, `Infinity`
 * are rejected), and every range fits a timer. Keys and `REDIS_URL` are only held as `Redacted`
 * values, and no error repeats a key or a URL's password.
 *
 * | variable | default | rule |
 * | --- | --- | --- |
 * | `LLM_PROVIDER` | the first configured provider | must name a configured provider |
 * | `LLM_DEFAULT_MODEL` | per provider | |
 * | `OPENAI_API_KEY`, `OPENAI_BASE_URL` | none | base URL: http(s) URL |
 * | `ANTHROPIC_API_KEY`, `ANTHROPIC_BASE_URL` | none | base URL: http(s) URL |
 * | `OPENAI_HEADERS`, `ANTHROPIC_HEADERS` | none | JSON object of header names to strings; values are secrets, never shown |
 * | `AZURE_OPENAI_ENDPOINT`, `AZURE_OPENAI_API_KEY`, `OPENAI_API_VERSION`, `AZURE_OPENAI_DEPLOYMENT` | none | the endpoint (http(s) URL) needs the key and an API version such as `2024-10-21` |
 * | `OPENAI_COMPATIBLE_NAME`, `OPENAI_COMPATIBLE_BASE_URL`, `OPENAI_COMPATIBLE_API_KEY`, `OPENAI_COMPATIBLE_MODEL` | none | name and base URL go together |
 * | `OPENAI_COMPATIBLE_HEADERS`, `OPENAI_COMPATIBLE_QUERY` | none | JSON objects of strings; header values are secrets |
 * | `OPENAI_COMPATIBLE_STRUCTURED_OUTPUT` | `json_schema` | `json_schema` or `json_object` |
 * | `ANTHROPIC_STRUCTURED_OUTPUT` | `auto` | `auto`, `native` or `tool` |
 * | `OPENAI_COMPATIBLE_ENDPOINTS` | none | 1 to 50 distinct names; each has `OPENAI_COMPATIBLE_<NAME>_BASE_URL` (required), `_API_KEY_VAR`, `_MODEL`, `_HEADERS`, `_QUERY`, read by {@link load} |
 * | `LLM_MAX_RETRIES` | `3` | 0 to 100 |
 * | `LLM_RETRY_BASE_DELAY_MS`, `LLM_RETRY_MAX_DELAY_MS`, `LLM_RETRY_MAX_RETRY_AFTER_MS` | `500`, `10000`, `60000` | ms, 0 to 600000 |
 * | `LLM_TIMEOUT_MS` | `30000` | ms, 1 to 2147483647 |
 * | `LLM_STREAM_FIRST_TOKEN_TIMEOUT_MS`, `LLM_STREAM_IDLE_TIMEOUT_MS`, `LLM_DEADLINE_MS` | none | ms, 1 to 2147483647 |
 * | `LLM_RATE_LIMIT_RPM`, `LLM_RATE_LIMIT_BURST` (and `_<PROVIDER>`) | none | 1 to 1000000 |
 * | `LLM_RATE_LIMIT_TPM` (and `_<PROVIDER>`) | none | 1 to 1000000000 |
 * | `LLM_MAX_CONCURRENCY` (and `_<PROVIDER>`) | none | 1 to 100000 |
 * | `LLM_RATE_LIMIT_MAX_WAIT_MS` | `30000` | ms, 0 to 600000 |
 * | `LLM_RATE_LIMIT_STORE` | `memory` | `memory` or `redis` |
 * | `REDIS_URL` | none | `redis://` or `rediss://` URL, required with `redis` |
 * | `LLM_RATE_LIMIT_INSTANCES` | `1` | 1 to 1000 |
 * | `LLM_RATE_LIMIT_REDIS_TIMEOUT_MS` | `500` | ms, 1 to 60000 |
 * | `LLM_CIRCUIT_MODE` | `ratio` | `ratio` or `consecutive` |
 * | `LLM_CIRCUIT_FAILURE_RATIO` | `0.5` | greater than 0, at most 1 (ratio mode) |
 * | `LLM_CIRCUIT_MINIMUM_CALLS` | `20` | 1 to 100000 (ratio mode) |
 * | `LLM_CIRCUIT_WINDOW_MS` | `10000` | ms, 1000 to 3600000 (ratio mode) |
 * | `LLM_CIRCUIT_FAILURE_THRESHOLD` | `5` | 1 to 100000 (consecutive mode) |
 * | `LLM_CIRCUIT_COOLDOWN_MS` | `30000` | ms, 1 to 3600000 |
 * | `LLM_LOG_LEVEL` | `trace` (the library drops none of its lines) | `trace`, `debug`, `info`, `warn`, `error`, `fatal`, `none` |
 * | `LLM_LOG_CALL_LEVEL` | `debug` | `debug` or `info` |
 * | `LLM_LOG_FORMAT` | the program's logger | `pretty`, `json`, `logfmt` |
 * | `LLM_LOG_BODIES` | `false` | `true` or `false` |
 * | `LLM_PRICES` | none | JSON `{"model":{"input":1,"cachedInput":0.5,"output":2}}` |
 *
 * `LLM_FALLBACK` is read by `Fallback.config`. The named endpoints' own variables
 * (`OPENAI_COMPATIBLE_<NAME>_*`) are read by {@link load}, which `LlmLive` uses.
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
import { Config, ConfigError, Duration, Effect, Either, Option, ParseResult, Redacted, Schema } from "effect"
import * as BlankIsUnset from "./internal/blankIsUnset.js"
import * as Rules from "./internal/configRules.js"

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
  /** `OPENAI_HEADERS`, `ANTHROPIC_HEADERS`: headers sent with every request, each value a secret. */
  readonly headers?: Readonly<Record<string, Redacted.Redacted<string>>>
  /** `ANTHROPIC_STRUCTURED_OUTPUT` (Anthropic only): how structured output is asked for. */
  readonly structuredOutput?: "auto" | "native" | "tool"
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
  /** `OPENAI_COMPATIBLE_HEADERS`: headers sent with every request, each value a secret. */
  readonly headers?: Readonly<Record<string, Redacted.Redacted<string>>>
  /** `OPENAI_COMPATIBLE_QUERY`: query parameters sent with every request. */
  readonly query?: Readonly<Record<string, string>>
  /** `OPENAI_COMPATIBLE_STRUCTURED_OUTPUT`: `json_schema`, or `json_object` for an endpoint that knows only JSON mode. */
  readonly structuredOutput?: "json_schema" | "json_object"
}

/**
 * An Azure OpenAI resource (provider `azure`): its key, its endpoint, the `api-version` every
 * request carries, and the deployment used when a request names no model.
 *
 * @example
 * import { Redacted } from "effect"
 * import type { LlmConfig } from "@clearside/llm"
 * const azure: LlmConfig.AzureProvider = {
 *   apiKey: Redacted.make("..."), endpoint: "https://my-resource.openai.azure.com", apiVersion: "2024-10-21"
 * }
 *
 * @since 0.1.0
 * @category Models
 */
export interface AzureProvider {
  /** `AZURE_OPENAI_API_KEY`. */
  readonly apiKey: Redacted.Redacted<string>
  /** `AZURE_OPENAI_ENDPOINT`. */
  readonly endpoint: string
  /** `OPENAI_API_VERSION`. */
  readonly apiVersion: string
  /** `AZURE_OPENAI_DEPLOYMENT`. */
  readonly deployment?: string
}

/**
 * The retry policy's options (`Retry.Options`).
 *
 * @example
 * import { Duration } from "effect"
 * import type { LlmConfig } from "@clearside/llm"
 * const retry: LlmConfig.RetrySettings = {
 *   maxRetries: 3, base: Duration.millis(500), maxDelay: Duration.seconds(10), maxRetryAfter: Duration.minutes(1)
 * }
 *
 * @since 0.1.0
 * @category Models
 */
export interface RetrySettings {
  /** `LLM_MAX_RETRIES`: retries after the first attempt. */
  readonly maxRetries: number
  /** `LLM_RETRY_BASE_DELAY_MS`: the first backoff. */
  readonly base: Duration.Duration
  /** `LLM_RETRY_MAX_DELAY_MS`: the cap on each backoff. */
  readonly maxDelay: Duration.Duration
  /** `LLM_RETRY_MAX_RETRY_AFTER_MS`: a provider's `Retry-After` above this fails at once. */
  readonly maxRetryAfter: Duration.Duration
}

/**
 * The time limits (`Timeout.Options`, and the overall `deadline`). A stream limit left out
 * defaults, in the policy, to the attempt `timeout`.
 *
 * @example
 * import { Duration } from "effect"
 * import type { LlmConfig } from "@clearside/llm"
 * const timeout: LlmConfig.TimeoutSettings = { timeout: Duration.seconds(30), deadline: Duration.minutes(2) }
 *
 * @since 0.1.0
 * @category Models
 */
export interface TimeoutSettings {
  /** `LLM_TIMEOUT_MS`: the per-attempt timeout. */
  readonly timeout: Duration.Duration
  /** `LLM_STREAM_FIRST_TOKEN_TIMEOUT_MS`: a stream's wait for its first part. */
  readonly firstToken?: Duration.Duration
  /** `LLM_STREAM_IDLE_TIMEOUT_MS`: a stream's longest pause between parts. */
  readonly idle?: Duration.Duration
  /** `LLM_DEADLINE_MS`: the overall limit per call, across retries and fallback. */
  readonly deadline?: Duration.Duration
}

/**
 * One set of client-side limits (`RateLimit.Limits`); a limit left out is off.
 *
 * @example
 * import type { LlmConfig } from "@clearside/llm"
 * const limits: LlmConfig.RateLimits = { rpm: 500, burst: 1 }
 *
 * @since 0.1.0
 * @category Models
 */
export interface RateLimits {
  /** `LLM_RATE_LIMIT_RPM`: requests per minute. */
  readonly rpm?: number
  /** `LLM_RATE_LIMIT_BURST`: requests admitted at once (the rpm bucket's size). */
  readonly burst?: number
  /** `LLM_RATE_LIMIT_TPM`: tokens per minute. */
  readonly tpm?: number
  /** `LLM_MAX_CONCURRENCY`: calls in flight. */
  readonly maxConcurrency?: number
}

/**
 * The rate limiter's options (`RateLimit.Options`): the shared limits, each provider's own
 * (`LLM_RATE_LIMIT_RPM_OPENAI`, which win over the shared ones) and the longest wait.
 *
 * @example
 * import { Duration } from "effect"
 * import type { LlmConfig } from "@clearside/llm"
 * const rateLimit: LlmConfig.RateLimitSettings = { rpm: 60, providers: { openai: { rpm: 500 } }, maxWait: Duration.seconds(30) }
 *
 * @since 0.1.0
 * @category Models
 */
export interface RateLimitSettings extends RateLimits {
  /** Each provider's own limits, only for providers with at least one set. */
  readonly providers: Readonly<Record<string, RateLimits>>
  /** `LLM_RATE_LIMIT_MAX_WAIT_MS`: longest a call waits for capacity. */
  readonly maxWait: Duration.Duration
}

/**
 * Where the rate limiter's buckets live (`RateLimitStore.StoreConfig`).
 *
 * @example
 * import type { LlmConfig } from "@clearside/llm"
 * const store: LlmConfig.StoreSettings = { store: "memory" }
 *
 * @since 0.1.0
 * @category Models
 */
export type StoreSettings =
  | { readonly store: "memory" }
  | {
    readonly store: "redis"
    /** `REDIS_URL`. */
    readonly url: Redacted.Redacted<string>
    /** `LLM_RATE_LIMIT_INSTANCES`: instances sharing the limits. */
    readonly instances: number
    /** `LLM_RATE_LIMIT_REDIS_TIMEOUT_MS`: each Redis connect and command. */
    readonly timeout: Duration.Duration
  }

/**
 * The circuit breaker's options (`CircuitBreaker.Options`), for the mode `LLM_CIRCUIT_MODE`
 * chooses. Only that mode's fields are present; the other mode's variables are still checked.
 *
 * @example
 * import { Duration } from "effect"
 * import type { LlmConfig } from "@clearside/llm"
 * const breaker: LlmConfig.CircuitBreakerSettings = { mode: "consecutive", failureThreshold: 5, cooldown: Duration.seconds(30) }
 *
 * @since 0.1.0
 * @category Models
 */
export type CircuitBreakerSettings =
  | {
    readonly mode: "ratio"
    /** `LLM_CIRCUIT_FAILURE_RATIO`: the share of retryable failures that opens the circuit. */
    readonly failureRatio: number
    /** `LLM_CIRCUIT_MINIMUM_CALLS`: fewest outcomes in the window before the ratio counts. */
    readonly minimumCalls: number
    /** `LLM_CIRCUIT_WINDOW_MS`: the sliding window the ratio is measured over. */
    readonly window: Duration.Duration
    /** `LLM_CIRCUIT_COOLDOWN_MS`: how long an open circuit fails fast. */
    readonly cooldown: Duration.Duration
  }
  | {
    readonly mode: "consecutive"
    /** `LLM_CIRCUIT_FAILURE_THRESHOLD`: consecutive retryable failures that open the circuit. */
    readonly failureThreshold: number
    /** `LLM_CIRCUIT_COOLDOWN_MS`: how long an open circuit fails fast. */
    readonly cooldown: Duration.Duration
  }

/**
 * Logging settings (`Logging.Options`, and the `format` for `Logging.layerLogger`). The library
 * never sets the program's own minimum level: `minimumLevel` only drops the library's lines.
 *
 * @example
 * import type { LlmConfig } from "@clearside/llm"
 * const logging: LlmConfig.LoggingSettings = { minimumLevel: "info", callLevel: "debug", bodies: false, format: "json" }
 *
 * @since 0.1.0
 * @category Models
 */
export interface LoggingSettings {
  /** `LLM_LOG_LEVEL`: the library's own minimum; its lines below it are not emitted. */
  readonly minimumLevel: LogLevelName
  /** `LLM_LOG_CALL_LEVEL`: the level of each call's log line. */
  readonly callLevel: "debug" | "info"
  /** `LLM_LOG_BODIES`: log request messages and answer text. */
  readonly bodies: boolean
  /** `LLM_LOG_FORMAT`: Effect's built-in logger for `Logging.layerLogger` to install; unset keeps the program's. */
  readonly format?: "pretty" | "json" | "logfmt"
}

/**
 * A log level's name, lowest first: `trace` keeps every line, `none` none.
 *
 * @example
 * import type { LlmConfig } from "@clearside/llm"
 * const quiet: LlmConfig.LogLevelName = "warn"
 *
 * @since 0.1.0
 * @category Models
 */
export type LogLevelName = "trace" | "debug" | "info" | "warn" | "error" | "fatal" | "none"

/**
 * USD per million tokens for one model (`Pricing.Price`).
 *
 * @example
 * import type { LlmConfig } from "@clearside/llm"
 * const price: LlmConfig.Price = { input: 2.5, cachedInput: 1.25, output: 10 }
 *
 * @since 0.1.0
 * @category Models
 */
export interface Price {
  readonly input: number
  readonly output: number
  readonly cachedInput?: number
}

/**
 * The configuration as read from the environment. A provider field is present only when that
 * provider is configured.
 *
 * @example
 * import { Duration } from "effect"
 * import type { LlmConfig } from "@clearside/llm"
 * const none: LlmConfig.LlmConfig = {
 *   retry: { maxRetries: 3, base: Duration.millis(500), maxDelay: Duration.seconds(10), maxRetryAfter: Duration.minutes(1) },
 *   timeout: { timeout: Duration.seconds(30) },
 *   rateLimit: { providers: {}, maxWait: Duration.seconds(30) },
 *   store: { store: "memory" },
 *   circuitBreaker: { mode: "ratio", failureRatio: 0.5, minimumCalls: 20, window: Duration.seconds(10), cooldown: Duration.seconds(30) },
 *   logging: { minimumLevel: "trace", callLevel: "debug", bodies: false },
 *   prices: {}
 * }
 *
 * @since 0.1.0
 * @category Models
 */
export interface LlmConfig {
  /** `LLM_PROVIDER`: the default provider's name, when set. */
  readonly provider?: string
  /** `LLM_DEFAULT_MODEL`: the model of the default provider when a request names none. */
  readonly defaultModel?: string
  readonly openai?: KeyedProvider
  readonly anthropic?: KeyedProvider
  readonly azure?: AzureProvider
  readonly openaiCompatible?: CompatibleProvider
  /**
   * The named endpoints of `OPENAI_COMPATIBLE_ENDPOINTS`, each its own provider. Only {@link load}
   * reads them (their variables' names depend on the list); `config` leaves this out.
   */
  readonly compatibleEndpoints?: ReadonlyArray<CompatibleProvider>
  readonly retry: RetrySettings
  readonly timeout: TimeoutSettings
  readonly rateLimit: RateLimitSettings
  readonly store: StoreSettings
  readonly circuitBreaker: CircuitBreakerSettings
  readonly logging: LoggingSettings
  /** `LLM_PRICES`: the entries to add to or replace in `Pricing.defaults` (empty when unset). */
  readonly prices: Readonly<Record<string, Price>>
}

const invalid = (name: string, message: string) => ConfigError.InvalidData([name], message)

const field = <K extends string, A>(key: K, option: Option.Option<A>): { readonly [P in K]?: A } =>
  Option.isSome(option) ? ({ [key]: option.value } as { readonly [P in K]?: A }) : {}

const httpUrl = Rules.url("an http(s) URL", ["http:", "https:"])
const redisUrl = Rules.url("a redis:// or rediss:// URL such as redis://127.0.0.1:6379", ["redis:", "rediss:"])

/** Retry delays: long enough for any provider's Retry-After, short enough that a failing call cannot hang. */
const retryDelay = Rules.milliseconds(0, 600_000)
/** Time limits: positive and within what a timer holds. */
const timeLimit = Rules.milliseconds(1, Rules.maxTimerMillis)

/**
 * The names of the built-in providers.
 *
 * @example
 * import { LlmConfig } from "@clearside/llm"
 * LlmConfig.builtInProviders // ["openai", "anthropic", "azure"]
 *
 * @since 0.1.0
 * @category Constants
 */
export const builtInProviders: ReadonlyArray<string> = ["openai", "anthropic", "azure"]

const compatibleName = /^[a-z0-9][a-z0-9._-]*$/i

/** `LLM_RATE_LIMIT_RPM_OPENAI` for `openai`; names are upper-cased, other characters become `_`. */
const variable = (base: string, provider?: string) =>
  provider === undefined ? base : `${base}_${provider.toUpperCase().replace(/[^A-Z0-9]/g, "_")}`

const limits = (provider?: string): Config.Config<RateLimits> =>
  Config.map(
    Config.all({
      rpm: Rules.optional(variable("LLM_RATE_LIMIT_RPM", provider), Rules.wholeNumber(1, 1_000_000)),
      burst: Rules.optional(variable("LLM_RATE_LIMIT_BURST", provider), Rules.wholeNumber(1, 1_000_000)),
      tpm: Rules.optional(variable("LLM_RATE_LIMIT_TPM", provider), Rules.wholeNumber(1, 1_000_000_000)),
      maxConcurrency: Rules.optional(variable("LLM_MAX_CONCURRENCY", provider), Rules.wholeNumber(1, 100_000))
    }),
    ({ burst, maxConcurrency, rpm, tpm }): RateLimits => ({
      ...field("rpm", rpm),
      ...field("burst", burst),
      ...field("tpm", tpm),
      ...field("maxConcurrency", maxConcurrency)
    })
  )

const rateLimit = (providers: ReadonlyArray<string>): Config.Config<RateLimitSettings> =>
  Config.map(
    Config.all({
      shared: limits(),
      own: Config.all(providers.map((name) => Config.map(limits(name), (own) => [name, own] as const))),
      maxWait: Rules.withDefault("LLM_RATE_LIMIT_MAX_WAIT_MS", retryDelay, Duration.seconds(30))
    }),
    ({ maxWait, own, shared }): RateLimitSettings => ({
      ...shared,
      // No prototype: a provider named like an Object member reads as absent, not as a function.
      providers: Object.assign(
        Object.create(null) as Record<string, RateLimits>,
        Object.fromEntries(own.filter(([, set]) => Object.keys(set).length > 0))
      ),
      maxWait
    })
  )

const retry: Config.Config<RetrySettings> = Config.all({
  maxRetries: Rules.withDefault("LLM_MAX_RETRIES", Rules.wholeNumber(0, 100), 3),
  base: Rules.withDefault("LLM_RETRY_BASE_DELAY_MS", retryDelay, Duration.millis(500)),
  maxDelay: Rules.withDefault("LLM_RETRY_MAX_DELAY_MS", retryDelay, Duration.seconds(10)),
  maxRetryAfter: Rules.withDefault("LLM_RETRY_MAX_RETRY_AFTER_MS", retryDelay, Duration.minutes(1))
})

const timeout: Config.Config<TimeoutSettings> = Config.map(
  Config.all({
    timeout: Rules.withDefault("LLM_TIMEOUT_MS", timeLimit, Duration.seconds(30)),
    firstToken: Rules.optional("LLM_STREAM_FIRST_TOKEN_TIMEOUT_MS", timeLimit),
    idle: Rules.optional("LLM_STREAM_IDLE_TIMEOUT_MS", timeLimit),
    deadline: Rules.optional("LLM_DEADLINE_MS", timeLimit)
  }),
  ({ deadline, firstToken, idle, timeout }): TimeoutSettings => ({
    timeout,
    ...field("firstToken", firstToken),
    ...field("idle", idle),
    ...field("deadline", deadline)
  })
)

const store: Config.Config<StoreSettings> = Config.all({
  store: Rules.withDefault("LLM_RATE_LIMIT_STORE", Rules.words(["memory", "redis"] as const), "memory"),
  url: BlankIsUnset.optionalSecret("REDIS_URL"),
  instances: Rules.withDefault("LLM_RATE_LIMIT_INSTANCES", Rules.wholeNumber(1, 1000), 1),
  timeout: Rules.withDefault("LLM_RATE_LIMIT_REDIS_TIMEOUT_MS", Rules.milliseconds(1, 60_000), Duration.millis(500))
}).pipe(
  Config.mapOrFail(({ instances, store, timeout, url }): Either.Either<StoreSettings, ConfigError.ConfigError> => {
    // REDIS_URL is a common name other software sets too: it is checked only when it is used.
    if (store === "memory") return Either.right({ store })
    if (Option.isNone(url)) {
      return Either.left(
        ConfigError.MissingData(["REDIS_URL"], "REDIS_URL is required when LLM_RATE_LIMIT_STORE=redis (e.g. redis://127.0.0.1:6379)")
      )
    }
    const text = Redacted.value(url.value)
    return Option.isSome(redisUrl.parse(text))
      ? Either.right({ store, url: url.value, instances, timeout })
      : Either.left(Rules.invalid("REDIS_URL", redisUrl.rule, Rules.showUrl(text)))
  })
)

const circuitBreaker: Config.Config<CircuitBreakerSettings> = Config.map(
  Config.all({
    mode: Rules.withDefault("LLM_CIRCUIT_MODE", Rules.words(["ratio", "consecutive"] as const), "ratio"),
    failureRatio: Rules.withDefault("LLM_CIRCUIT_FAILURE_RATIO", Rules.ratio, 0.5),
    minimumCalls: Rules.withDefault("LLM_CIRCUIT_MINIMUM_CALLS", Rules.wholeNumber(1, 100_000), 20),
    window: Rules.withDefault("LLM_CIRCUIT_WINDOW_MS", Rules.milliseconds(1000, 3_600_000), Duration.seconds(10)),
    failureThreshold: Rules.withDefault("LLM_CIRCUIT_FAILURE_THRESHOLD", Rules.wholeNumber(1, 100_000), 5),
    cooldown: Rules.withDefault("LLM_CIRCUIT_COOLDOWN_MS", Rules.milliseconds(1, 3_600_000), Duration.seconds(30))
  }),
  ({ cooldown, failureRatio, failureThreshold, minimumCalls, mode, window }): CircuitBreakerSettings =>
    mode === "ratio"
      ? { mode, failureRatio, minimumCalls, window, cooldown }
      : { mode, failureThreshold, cooldown }
)

const logLevels: ReadonlyArray<LogLevelName> = ["trace", "debug", "info", "warn", "error", "fatal", "none"]

const logging: Config.Config<LoggingSettings> = Config.map(
  Config.all({
    minimumLevel: Rules.withDefault("LLM_LOG_LEVEL", Rules.words(logLevels), "trace"),
    callLevel: Rules.withDefault("LLM_LOG_CALL_LEVEL", Rules.words(["debug", "info"] as const), "debug"),
    bodies: Rules.withDefault("LLM_LOG_BODIES", Rules.boolean, false),
    format: Rules.optional("LLM_LOG_FORMAT", Rules.words(["pretty", "json", "logfmt"] as const))
  }),
  ({ format, ...rest }): LoggingSettings => ({ ...rest, ...field("format", format) })
)

const usd = Schema.Number.pipe(Schema.finite(), Schema.nonNegative())
const PricesFromJson = Schema.parseJson(
  Schema.Record({ key: Schema.String, value: Schema.Struct({ input: usd, output: usd, cachedInput: Schema.optional(usd) }) })
)
// A misspelt field (`cachedinput`) is an error, not a price silently left at the default.
const decodePrices = Schema.decodeUnknownEither(PricesFromJson, { onExcessProperty: "error", errors: "all" })

const prices: Config.Config<Readonly<Record<string, Price>>> = BlankIsUnset.optionalText("LLM_PRICES").pipe(
  Config.mapOrFail(
    Option.match({
      onNone: () => Either.right({}),
      onSome: (json) =>
        Either.mapLeft(decodePrices(json), (error) =>
          invalid(
            "LLM_PRICES",
            `LLM_PRICES must be a JSON object of USD prices per million tokens such as ` +
              `{"my-model":{"input":1,"cachedInput":0.5,"output":2}}, got ${Rules.shown(json)}: ` +
              ParseResult.ArrayFormatter.formatErrorSync(error)
                .map((issue) => `${issue.path.length === 0 ? "" : `at ${issue.path.map(String).join(".")}: `}${issue.message}`)
                .join("; ")
          ))
    })
  )
)

const compatibleStructuredOutput = Rules.words(["json_schema", "json_object"] as const)
const anthropicStructuredOutput = Rules.words(["auto", "native", "tool"] as const)

const providerVariables = Config.all({
  provider: BlankIsUnset.optionalText("LLM_PROVIDER"),
  defaultModel: BlankIsUnset.optionalText("LLM_DEFAULT_MODEL"),
  openaiKey: BlankIsUnset.optionalSecret("OPENAI_API_KEY"),
  openaiBaseURL: Rules.optional("OPENAI_BASE_URL", httpUrl),
  anthropicKey: BlankIsUnset.optionalSecret("ANTHROPIC_API_KEY"),
  anthropicBaseURL: Rules.optional("ANTHROPIC_BASE_URL", httpUrl),
  compatibleName: BlankIsUnset.optionalText("OPENAI_COMPATIBLE_NAME"),
  compatibleBaseURL: Rules.optional("OPENAI_COMPATIBLE_BASE_URL", httpUrl),
  compatibleKey: BlankIsUnset.optionalSecret("OPENAI_COMPATIBLE_API_KEY"),
  compatibleModel: BlankIsUnset.optionalText("OPENAI_COMPATIBLE_MODEL"),
  openaiHeaders: Rules.optional("OPENAI_HEADERS", Rules.headers),
  anthropicHeaders: Rules.optional("ANTHROPIC_HEADERS", Rules.headers),
  compatibleHeaders: Rules.optional("OPENAI_COMPATIBLE_HEADERS", Rules.headers),
  compatibleQuery: Rules.optional("OPENAI_COMPATIBLE_QUERY", Rules.query),
  compatibleStructuredOutput: Rules.optional("OPENAI_COMPATIBLE_STRUCTURED_OUTPUT", compatibleStructuredOutput),
  anthropicStructuredOutput: Rules.optional("ANTHROPIC_STRUCTURED_OUTPUT", anthropicStructuredOutput),
  endpoints: BlankIsUnset.optionalText("OPENAI_COMPATIBLE_ENDPOINTS"),
  azureKey: BlankIsUnset.optionalSecret("AZURE_OPENAI_API_KEY"),
  azureEndpoint: Rules.optional("AZURE_OPENAI_ENDPOINT", httpUrl),
  // A common name other software sets too: checked only when Azure is configured.
  apiVersion: BlankIsUnset.optionalText("OPENAI_API_VERSION"),
  azureDeployment: BlankIsUnset.optionalText("AZURE_OPENAI_DEPLOYMENT")
})

type Providers = Pick<LlmConfig, "provider" | "defaultModel" | "openai" | "anthropic" | "azure" | "openaiCompatible">

/** Headers as read, each value held as `Redacted` from here on. */
const redactedHeaders = (headers: Option.Option<Record<string, string>>) =>
  Option.map(headers, (record) =>
    Object.fromEntries(Object.entries(record).map(([name, value]) => [name, Redacted.make(value)]))
  )

const isBadName = (name: string) =>
  !compatibleName.test(name) || builtInProviders.includes(name.toLowerCase()) || name in Object.prototype

const maxEndpoints = 50

/**
 * The names of `OPENAI_COMPATIBLE_ENDPOINTS` (`groq,vllm`): each a provider name as
 * `OPENAI_COMPATIBLE_NAME` allows, distinct also as variable names, and not the single endpoint's.
 */
const endpointNames = (
  text: Option.Option<string>,
  single: Option.Option<string>
): Either.Either<ReadonlyArray<string>, ConfigError.ConfigError> => {
  if (Option.isNone(text)) return Either.right([])
  const names = text.value.split(",").map((name) => name.trim()).filter((name) => name !== "")
  const rule =
    `a comma-separated list of 1 to ${maxEndpoints} distinct provider names (letters, digits, ".", "_" or "-"; ` +
    `not openai, anthropic, azure, OPENAI_COMPATIBLE_NAME nor a name JavaScript objects already carry) such as groq,vllm`
  const prefixes = names.map((name) => variable("OPENAI_COMPATIBLE", name))
  const taken = Option.map(single, (name) => name.toLowerCase())
  const bad =
    names.length === 0 ||
    names.length > maxEndpoints ||
    new Set(prefixes).size !== names.length ||
    names.some((name) => isBadName(name) || (Option.isSome(taken) && name.toLowerCase() === taken.value))
  return bad ? Either.left(Rules.invalid("OPENAI_COMPATIBLE_ENDPOINTS", rule, Rules.shown(text.value))) : Either.right(names)
}

const checkProviders = (raw: Config.Config.Success<typeof providerVariables>): Either.Either<Providers, ConfigError.ConfigError> => {
  const keyed = (key: Option.Option<Redacted.Redacted<string>>, baseURL: Option.Option<string>) =>
    Option.map(key, (apiKey): KeyedProvider => ({ apiKey, ...field("baseURL", baseURL) }))

  let openaiCompatible = Option.none<CompatibleProvider>()
  if (Option.isSome(raw.compatibleBaseURL)) {
    if (Option.isNone(raw.compatibleName)) {
      return Either.left(
        invalid("OPENAI_COMPATIBLE_NAME", "OPENAI_COMPATIBLE_NAME is required when OPENAI_COMPATIBLE_BASE_URL is set")
      )
    }
    const name = raw.compatibleName.value
    // The name keys records throughout the library: one that an object already carries
    // (`constructor`, `toString`) would read as a provider that is there.
    if (isBadName(name)) {
      return Either.left(
        invalid(
          "OPENAI_COMPATIBLE_NAME",
          `OPENAI_COMPATIBLE_NAME must be letters, digits, ".", "_" or "-", not "openai", "anthropic" or "azure" ` +
            `nor a name JavaScript objects already carry, got ${Rules.shown(name)}`
        )
      )
    }
    openaiCompatible = Option.some({
      name,
      baseURL: raw.compatibleBaseURL.value,
      ...field("apiKey", raw.compatibleKey),
      ...field("model", raw.compatibleModel),
      ...field("headers", redactedHeaders(raw.compatibleHeaders)),
      ...field("query", raw.compatibleQuery),
      ...field("structuredOutput", raw.compatibleStructuredOutput)
    })
  } else if (
    Option.isSome(raw.compatibleName) ||
    Option.isSome(raw.compatibleKey) ||
    Option.isSome(raw.compatibleModel) ||
    Option.isSome(raw.compatibleHeaders) ||
    Option.isSome(raw.compatibleQuery) ||
    Option.isSome(raw.compatibleStructuredOutput)
  ) {
    return Either.left(
      invalid(
        "OPENAI_COMPATIBLE_BASE_URL",
        "OPENAI_COMPATIBLE_BASE_URL is required when another OPENAI_COMPATIBLE_* variable is set"
      )
    )
  }

  const names = endpointNames(raw.endpoints, raw.compatibleName)
  if (Either.isLeft(names)) return Either.left(names.left)

  let azure = Option.none<AzureProvider>()
  if (Option.isSome(raw.azureEndpoint)) {
    if (Option.isNone(raw.azureKey)) {
      return Either.left(ConfigError.MissingData(["AZURE_OPENAI_API_KEY"], "AZURE_OPENAI_API_KEY is required when AZURE_OPENAI_ENDPOINT is set"))
    }
    if (Option.isNone(raw.apiVersion)) {
      return Either.left(
        ConfigError.MissingData(["OPENAI_API_VERSION"], "OPENAI_API_VERSION is required when AZURE_OPENAI_ENDPOINT is set (e.g. 2024-10-21)")
      )
    }
    if (Option.isNone(Rules.apiVersion.parse(raw.apiVersion.value))) {
      return Either.left(Rules.invalid("OPENAI_API_VERSION", Rules.apiVersion.rule, Rules.shown(raw.apiVersion.value)))
    }
    azure = Option.some({
      apiKey: raw.azureKey.value,
      endpoint: raw.azureEndpoint.value,
      apiVersion: raw.apiVersion.value,
      ...field("deployment", raw.azureDeployment)
    })
  } else if (Option.isSome(raw.azureKey) || Option.isSome(raw.azureDeployment)) {
    return Either.left(
      ConfigError.MissingData(["AZURE_OPENAI_ENDPOINT"], "AZURE_OPENAI_ENDPOINT is required when AZURE_OPENAI_API_KEY or AZURE_OPENAI_DEPLOYMENT is set")
    )
  }

  const result: Providers = {
    ...field("provider", raw.provider),
    ...field("defaultModel", raw.defaultModel),
    ...field("openai", Option.map(keyed(raw.openaiKey, raw.openaiBaseURL), (set) => ({ ...set, ...field("headers", redactedHeaders(raw.openaiHeaders)) }))),
    ...field(
      "anthropic",
      Option.map(keyed(raw.anthropicKey, raw.anthropicBaseURL), (set) => ({
        ...set,
        ...field("headers", redactedHeaders(raw.anthropicHeaders)),
        ...field("structuredOutput", raw.anthropicStructuredOutput)
      }))
    ),
    ...field("azure", azure),
    ...field("openaiCompatible", openaiCompatible)
  }
  const configured = [...configuredProviders(result), ...names.right]
  if (result.provider !== undefined && !configured.includes(result.provider)) {
    const enable =
      result.provider === "openai"
        ? "set OPENAI_API_KEY"
        : result.provider === "anthropic"
          ? "set ANTHROPIC_API_KEY"
          : result.provider === "azure"
            ? "set AZURE_OPENAI_ENDPOINT, AZURE_OPENAI_API_KEY and OPENAI_API_VERSION"
            : "set OPENAI_COMPATIBLE_NAME and OPENAI_COMPATIBLE_BASE_URL, or list it in OPENAI_COMPATIBLE_ENDPOINTS"
    return Either.left(
      invalid(
        "LLM_PROVIDER",
        `LLM_PROVIDER is ${Rules.shown(result.provider)} but that provider is not configured ` +
          `(configured: ${configured.join(", ") || "none"}); ${enable} or change LLM_PROVIDER`
      )
    )
  }
  return Either.right(result)
}

/**
 * {@link config}, with the `_<PROVIDER>` rate limits of each of `providers` read as well as the
 * built-in providers' (e.g. `LLM_RATE_LIMIT_RPM_GROQ` for `groq`). A `Config` cannot choose what to
 * read from what it has read, so a program that names a compatible endpoint reads
 * {@link config} first, then this with the endpoint's name.
 *
 * @example
 * import { Effect } from "effect"
 * import { LlmConfig } from "@clearside/llm"
 *
 * const config = Effect.flatMap(LlmConfig.config, (first) =>
 *   first.openaiCompatible === undefined ? Effect.succeed(first) : LlmConfig.configFor([first.openaiCompatible.name])
 * )
 *
 * @since 0.1.0
 * @category Config
 */
export const configFor = (providers: ReadonlyArray<string>): Config.Config<LlmConfig> =>
  Config.all({
    providers: providerVariables,
    retry,
    timeout,
    rateLimit: rateLimit([...new Set([...builtInProviders, ...providers])]),
    store,
    circuitBreaker,
    logging,
    prices
  }).pipe(
    Config.mapOrFail(({ providers, ...policies }) =>
      Either.map(checkProviders(providers), (checked): LlmConfig => ({ ...checked, ...policies }))
    )
  )

/**
 * Reads and validates the whole configuration, with the `_<PROVIDER>` rate limits of the built-in
 * providers. Fails with a `ConfigError` naming each variable at fault, its rule and its value;
 * never with a key in the message. The named endpoints of `OPENAI_COMPATIBLE_ENDPOINTS` are checked
 * by name here but read only by {@link load}.
 *
 * @example
 * import { Effect } from "effect"
 * import { LlmConfig } from "@clearside/llm"
 *
 * const maxRetries = Effect.map(LlmConfig.config, (config) => config.retry.maxRetries)
 *
 * @since 0.1.0
 * @category Config
 */
export const config: Config.Config<LlmConfig> = configFor([])

const endpointNamesConfig: Config.Config<ReadonlyArray<string>> = Config.all({
  endpoints: BlankIsUnset.optionalText("OPENAI_COMPATIBLE_ENDPOINTS"),
  single: BlankIsUnset.optionalText("OPENAI_COMPATIBLE_NAME")
}).pipe(Config.mapOrFail(({ endpoints, single }) => endpointNames(endpoints, single)))

/** One named endpoint's own variables, `OPENAI_COMPATIBLE_<NAME>_*`. */
const endpointVariables = (name: string) => {
  const prefix = variable("OPENAI_COMPATIBLE", name)
  return Config.all({
    name: Config.succeed(name),
    prefix: Config.succeed(prefix),
    baseURL: Rules.optional(`${prefix}_BASE_URL`, httpUrl),
    keyVariable: Rules.optional(`${prefix}_API_KEY_VAR`, Rules.variableName),
    model: BlankIsUnset.optionalText(`${prefix}_MODEL`),
    headers: Rules.optional(`${prefix}_HEADERS`, Rules.headers),
    query: Rules.optional(`${prefix}_QUERY`, Rules.query),
    structuredOutput: Rules.optional(`${prefix}_STRUCTURED_OUTPUT`, compatibleStructuredOutput)
  }).pipe(
    Config.mapOrFail((vars) =>
      Option.isSome(vars.baseURL)
        ? Either.right({ ...vars, baseURL: vars.baseURL.value })
        : Either.left(
            ConfigError.MissingData(
              [`${prefix}_BASE_URL`],
              `${prefix}_BASE_URL is required: OPENAI_COMPATIBLE_ENDPOINTS lists ${Rules.shown(name)}`
            )
          )
    )
  )
}

/** The key of a named endpoint, read from the variable its `_API_KEY_VAR` names, which must be set. */
const endpointKey = (prefix: string, keyVariable: string): Config.Config<Redacted.Redacted<string>> =>
  BlankIsUnset.optionalSecret(keyVariable).pipe(
    Config.mapOrFail(
      Option.match({
        onNone: () =>
          Either.left(
            ConfigError.MissingData(
              [keyVariable],
              `${keyVariable} is required: ${prefix}_API_KEY_VAR names it as the endpoint's key, but it is not set`
            )
          ),
        onSome: (key) => Either.right(key)
      })
    )
  )

/**
 * Reads the whole configuration as {@link config} does, and also the named OpenAI-compatible
 * endpoints that `OPENAI_COMPATIBLE_ENDPOINTS` lists (`groq,vllm`), each its own provider with its
 * own `_<PROVIDER>` rate limits. For each name (upper-cased, other characters as `_`):
 * `OPENAI_COMPATIBLE_<NAME>_BASE_URL` (required), `OPENAI_COMPATIBLE_<NAME>_API_KEY_VAR` (the
 * name of the variable that holds the key, never the key itself), `OPENAI_COMPATIBLE_<NAME>_MODEL`,
 * `OPENAI_COMPATIBLE_<NAME>_HEADERS` and `OPENAI_COMPATIBLE_<NAME>_QUERY`. A `Config` cannot choose
 * what to read from what it has read, so this is an `Effect` that reads in steps.
 *
 * @example
 * import { ConfigProvider, Effect } from "effect"
 * import { LlmConfig } from "@clearside/llm"
 *
 * const names = Effect.map(LlmConfig.load, LlmConfig.configuredProviders).pipe(
 *   Effect.withConfigProvider(
 *     ConfigProvider.fromMap(
 *       new Map([
 *         ["OPENAI_COMPATIBLE_ENDPOINTS", "groq,vllm"],
 *         ["OPENAI_COMPATIBLE_GROQ_BASE_URL", "https://api.groq.com/openai/v1"],
 *         ["OPENAI_COMPATIBLE_GROQ_API_KEY_VAR", "GROQ_API_KEY"],
 *         ["GROQ_API_KEY", "gsk_..."],
 *         ["OPENAI_COMPATIBLE_VLLM_BASE_URL", "http://127.0.0.1:8000/v1"]
 *       ])
 *     )
 *   )
 * ) // ["groq", "vllm"]
 *
 * @since 0.1.0
 * @category Config
 */
export const load: Effect.Effect<LlmConfig, ConfigError.ConfigError> = Effect.gen(function* () {
  const first = yield* config
  const names = yield* endpointNamesConfig
  const found = yield* Config.all(names.map(endpointVariables))
  const compatibleEndpoints = yield* Config.all(
    found.map((endpoint) =>
      Config.map(
        Option.match(endpoint.keyVariable, {
          onNone: () => Config.succeed(Option.none<Redacted.Redacted<string>>()),
          onSome: (keyVariable) => Config.map(endpointKey(endpoint.prefix, keyVariable), Option.some)
        }),
        (apiKey): CompatibleProvider => ({
          name: endpoint.name,
          baseURL: endpoint.baseURL,
          ...field("apiKey", apiKey),
          ...field("model", endpoint.model),
          ...field("headers", redactedHeaders(endpoint.headers)),
          ...field("query", endpoint.query),
          ...field("structuredOutput", endpoint.structuredOutput)
        })
      )
    )
  )
  const own = [...(first.openaiCompatible === undefined ? [] : [first.openaiCompatible.name]), ...names]
  const all = own.length === 0 ? first : yield* configFor(own)
  return names.length === 0 ? all : { ...all, compatibleEndpoints }
})

/**
 * The names of the configured providers, in the order `openai`, `anthropic`, `azure`, the compatible
 * endpoint, the named endpoints (as {@link load} reads them). Empty when none is configured.
 *
 * @example
 * import { Redacted } from "effect"
 * import { LlmConfig } from "@clearside/llm"
 * LlmConfig.configuredProviders({ openai: { apiKey: Redacted.make("k") } }) // ["openai"]
 *
 * @since 0.1.0
 * @category Accessors
 */
export const configuredProviders = (
  config: Pick<LlmConfig, "openai" | "anthropic" | "openaiCompatible"> & Pick<Partial<LlmConfig>, "azure" | "compatibleEndpoints">
): ReadonlyArray<string> => [
  ...(config.openai ? ["openai"] : []),
  ...(config.anthropic ? ["anthropic"] : []),
  ...(config.azure ? ["azure"] : []),
  ...(config.openaiCompatible ? [config.openaiCompatible.name] : []),
  ...(config.compatibleEndpoints ?? []).map((endpoint) => endpoint.name)
]

/**
 * The provider that answers requests naming none: `LLM_PROVIDER`, else the first configured one.
 *
 * @example
 * import { Redacted } from "effect"
 * import { LlmConfig } from "@clearside/llm"
 * LlmConfig.defaultProvider({ anthropic: { apiKey: Redacted.make("k") } }) // Option.some("anthropic")
 *
 * @since 0.1.0
 * @category Accessors
 */
export const defaultProvider = (
  config: Pick<LlmConfig, "provider" | "openai" | "anthropic" | "openaiCompatible"> & Pick<Partial<LlmConfig>, "azure" | "compatibleEndpoints">
): Option.Option<string> =>
  config.provider !== undefined ? Option.some(config.provider) : Option.fromNullable(configuredProviders(config)[0])

/**
 * The secrets of the configuration, to scrub wherever they might surface (`Logging`, `Tracing`):
 * the provider keys, the values of every provider's custom headers (a gateway key often travels in
 * one) and the Redis password.
 *
 * @example
 * import { Redacted } from "effect"
 * import { LlmConfig } from "@clearside/llm"
 * LlmConfig.secrets({ openai: { apiKey: Redacted.make("k") }, store: { store: "memory" } }) // [<redacted>]
 *
 * @since 0.1.0
 * @category Accessors
 */
export const secrets = (
  config: Pick<LlmConfig, "openai" | "anthropic" | "openaiCompatible" | "store"> & Pick<Partial<LlmConfig>, "azure" | "compatibleEndpoints">
): ReadonlyArray<Redacted.Redacted<string>> => {
  const providers = [config.openai, config.anthropic, config.openaiCompatible, ...(config.compatibleEndpoints ?? [])]
  const keys = [
    config.azure?.apiKey,
    ...providers.flatMap((provider) => [provider?.apiKey, ...Object.values(provider?.headers ?? {})])
  ]
  if (config.store.store === "redis") {
    const url = Redacted.value(config.store.url)
    const written = URL.canParse(url) ? new URL(url).password : ""
    // As written in the URL and as sent to Redis: either form may surface in an error.
    for (const password of new Set([written, Either.getOrElse(Either.try(() => decodeURIComponent(written)), () => "")])) {
      if (password !== "") keys.push(Redacted.make(password))
    }
  }
  return keys.filter((key): key is Redacted.Redacted<string> => key !== undefined)
}
