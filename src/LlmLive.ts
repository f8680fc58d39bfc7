/**
 * The `Llm` service wired from the environment: every provider that `LlmConfig` finds configured
 * (OpenAI, Anthropic, an OpenAI-compatible endpoint), routed by each request's `provider` with
 * `Llm.router`. Requests naming no provider go to `LLM_PROVIDER`, else to the first configured one;
 * `LLM_DEFAULT_MODEL` is that default provider's model (`OPENAI_COMPATIBLE_MODEL`, when set, is the
 * compatible endpoint's). Every policy wraps every provider, in the order {@link compose} lists.
 *
 * With no provider configured, building the layer fails with a `ConfigError` that says which
 * variables to set. It never falls back to a fake model: use `LlmMock` for that, on purpose.
 *
 * @example
 * import { Effect } from "effect"
 * import { Llm, LlmLive } from "@clearside/llm"
 *
 * const program = Effect.gen(function* () {
 *   const response = yield* Llm.complete({ messages: [{ role: "user", content: "Explain rate limits in one line" }] })
 *   yield* Effect.log(`${response.provider}/${response.model}: ${response.content}`)
 * })
 *
 * // OPENAI_API_KEY or ANTHROPIC_API_KEY must be set
 * Effect.runPromise(program.pipe(Effect.provide(LlmLive.layer)))
 *
 * @since 0.1.0
 */
import type { RateLimiter } from "@effect/experimental"
import { ConfigError, type Duration, Effect, Layer, Option, type Redacted } from "effect"
import * as Anthropic from "./Anthropic.js"
import * as AzureOpenAi from "./AzureOpenAi.js"
import * as CircuitBreaker from "./CircuitBreaker.js"
import * as Fallback from "./Fallback.js"
import * as Llm from "./Llm.js"
import * as LlmConfig from "./LlmConfig.js"
import * as OpenAi from "./OpenAi.js"
import * as OpenAiCompatible from "./OpenAiCompatible.js"
import * as Pricing from "./Pricing.js"
import * as RateLimit from "./RateLimit.js"
import * as RateLimitStore from "./RateLimitStore.js"
import * as Retry from "./Retry.js"
import * as Timeout from "./Timeout.js"
import * as Usage from "./Usage.js"
import * as Instrument from "./internal/instrument.js"

/**
 * The names of the providers the environment configures, in the order `openai`, `anthropic`, the
 * compatible endpoint; empty when none is. Lets a program decide what to do before building
 * {@link layer}.
 *
 * @example
 * import { Effect } from "effect"
 * import { LlmLive } from "@clearside/llm"
 *
 * const anyProvider = Effect.map(LlmLive.configuredProviders, (names) => names.length > 0)
 *
 * @since 0.1.0
 * @category Accessors
 */
export const configuredProviders: Effect.Effect<ReadonlyArray<string>, ConfigError.ConfigError> = Effect.map(
  LlmConfig.load,
  LlmConfig.configuredProviders
)

/** The error when no provider is configured. */
const noProvider = ConfigError.MissingData(
  ["OPENAI_API_KEY"],
  "no LLM provider is configured: set OPENAI_API_KEY, ANTHROPIC_API_KEY, AZURE_OPENAI_ENDPOINT, " +
    "OPENAI_COMPATIBLE_NAME with OPENAI_COMPATIBLE_BASE_URL, or OPENAI_COMPATIBLE_ENDPOINTS (see .env.example)"
)

/**
 * The settings of every policy in the stack.
 *
 * @example
 * import { Duration } from "effect"
 * import type { LlmLive } from "@clearside/llm"
 *
 * const policies: LlmLive.Policies = {
 *   retry: { maxRetries: 2 },
 *   timeout: { timeout: Duration.seconds(20) },
 *   rateLimit: { rpm: 600 },
 *   circuitBreaker: {},
 *   fallback: []
 * }
 *
 * @since 0.1.0
 * @category Models
 */
export interface Policies {
  readonly retry: Retry.Options
  readonly timeout: Timeout.Options
  /** The whole call's budget across retries and fallback; none when unset. */
  readonly deadline?: Duration.DurationInput | undefined
  readonly rateLimit: RateLimit.Options
  readonly circuitBreaker: CircuitBreaker.Options
  readonly fallback: ReadonlyArray<Fallback.Target>
  readonly logging?: Instrument.LogOptions | undefined
  readonly prices?: Pricing.PriceTable | undefined
}

/**
 * Applies every policy to already-built providers. The stack, outermost first, is the two lists in
 * this function: per call (validation and routing come first, in `Llm.router`), the call's span and
 * log line, the deadline and the fallback; then per provider, retry, the attempt's span and log
 * line, the circuit breaker, the rate limiter, usage metrics and the attempt's time limits.
 * The limiter's state lives in the `RateLimiterStore` in context.
 *
 * @example
 * import { RateLimiter } from "@effect/experimental"
 * import { Effect } from "effect"
 * import { LlmLive, LlmMock } from "@clearside/llm"
 *
 * const service = LlmLive.compose({
 *   providers: [LlmMock.echo({ provider: "echo" })],
 *   policies: { retry: { maxRetries: 2 }, timeout: {}, rateLimit: { rpm: 600 }, circuitBreaker: {}, fallback: [] }
 * }).pipe(Effect.provide(RateLimiter.layerStoreMemory))
 *
 * @since 0.1.0
 * @category Constructors
 */
export const compose = (options: {
  readonly providers: ReadonlyArray<Llm.Provider>
  /** Where a request naming no provider goes; the first provider when unset. */
  readonly defaultProvider?: string | undefined
  readonly policies: Policies
  /** Values to scrub from log lines and spans (the providers' keys). */
  readonly secrets?: ReadonlyArray<Redacted.Redacted<string>> | undefined
}): Effect.Effect<Llm.Service, ConfigError.ConfigError, RateLimiter.RateLimiterStore> =>
  Effect.gen(function* () {
    const { policies } = options
    const models = new Map(options.providers.map((provider) => [provider.name, provider.model]))
    for (const target of policies.fallback) {
      if (!models.has(target.provider)) {
        return yield* Effect.fail(
          ConfigError.InvalidData(
            ["LLM_FALLBACK"],
            `LLM_FALLBACK names provider "${target.provider}", which is not configured (configured: ${[...models.keys()].join(", ")})`
          )
        )
      }
    }
    const prices = policies.prices ?? Pricing.defaults
    const secrets = options.secrets ?? []
    const logging = { ...policies.logging, prices }

    // Per call.
    // The span and the log line of a call, and of an attempt, are one policy each.
    const callTelemetry = Instrument.make({ level: "call", trace: true, log: logging, secrets })
    const deadline = policies.deadline === undefined ? [] : [yield* Timeout.makeDeadline({ deadline: policies.deadline })]
    // A target naming no model asks for its provider's, as a request naming none does.
    const chain = policies.fallback.map((target) => (target.model === undefined ? { ...target, model: models.get(target.provider)! } : target))
    const fallback = yield* Fallback.make({ chain })

    // Per provider.
    const retry = yield* Retry.make({ ...policies.retry, onRetry: Usage.recordRetry })
    const attemptTelemetry = Instrument.make({ level: "attempt", trace: true, log: logging, secrets })
    const breaker = yield* CircuitBreaker.make({
      ...policies.circuitBreaker,
      onStateChange: (change) =>
        Usage.recordCircuitTransition({
          provider: change.provider,
          from: circuitLabel(change.from),
          to: circuitLabel(change.to)
        })
    })
    const rateLimit = yield* RateLimit.make({ ...policies.rateLimit, onWait: Usage.recordRateLimitWait })
    const usage = yield* Usage.make({ prices })
    const timeout = yield* Timeout.make(policies.timeout)

    const perCall: ReadonlyArray<Llm.Policy> = [callTelemetry, ...deadline, fallback]
    const perProvider: ReadonlyArray<Llm.Policy> = [retry, attemptTelemetry, breaker, rateLimit, usage, timeout]
    return Llm.router({
      providers: options.providers.map((provider) => ({ ...provider, call: Llm.compose(provider.call, perProvider) })),
      defaultProvider: options.defaultProvider,
      policies: perCall
    })
  })

const circuitLabel = (state: CircuitBreaker.State): Usage.CircuitState => (state === "half-open" ? "half_open" : state)

/**
 * Builds the providers a configuration names; `LLM_DEFAULT_MODEL` is the default provider's model,
 * each other provider keeps its own.
 */
const buildProviders = (config: LlmConfig.LlmConfig, defaultProvider: string) =>
  Effect.gen(function* () {
    const modelFor = (name: string) => (name === defaultProvider ? config.defaultModel : undefined)
    // Every provider keeps every configured secret out of what it reports, not only its own key.
    const secrets = LlmConfig.secrets(config)
    const providers: Array<Llm.Provider> = []
    if (config.openai) {
      providers.push(yield* OpenAi.make({ ...config.openai, model: modelFor("openai") ?? OpenAi.defaultModel, secrets }))
    }
    if (config.anthropic) {
      providers.push(yield* Anthropic.make({ ...config.anthropic, model: modelFor("anthropic") ?? Anthropic.defaultModel, secrets }))
    }
    if (config.azure) {
      const deployment = config.azure.deployment ?? modelFor("azure")
      providers.push(yield* AzureOpenAi.make({ ...config.azure, ...(deployment === undefined ? {} : { deployment }), secrets }))
    }
    for (const endpoint of [...(config.openaiCompatible ? [config.openaiCompatible] : []), ...(config.compatibleEndpoints ?? [])]) {
      const model = endpoint.model ?? modelFor(endpoint.name)
      providers.push(yield* OpenAiCompatible.make({ ...endpoint, ...(model === undefined ? {} : { model }), secrets }))
    }
    return providers
  })

/**
 * The stack's policies from a configuration already read, and the fallback chain read from
 * `LLM_FALLBACK`.
 *
 * @example
 * import { Effect } from "effect"
 * import { LlmConfig, LlmLive } from "@clearside/llm"
 *
 * const policies = Effect.flatMap(LlmConfig.config, LlmLive.policiesOf)
 *
 * @since 0.1.0
 * @category Config
 */
export const policiesOf = (config: LlmConfig.LlmConfig): Effect.Effect<Policies, ConfigError.ConfigError> =>
  Effect.map(Fallback.config, (fallback) => {
    const { deadline, ...timeout } = config.timeout
    return {
      retry: config.retry,
      timeout,
      deadline,
      // Limits belong to an API key: store keys carry each key's fingerprint, never the key. A 429
      // pauses a provider no longer than a retry would wait for it.
      rateLimit: {
        ...config.rateLimit,
        maxRetryAfter: config.retry.maxRetryAfter,
        keyNamespaces: RateLimitStore.keyNamespaces(config)
      },
      circuitBreaker: config.circuitBreaker,
      fallback: fallback.chain ?? [],
      logging: config.logging,
      prices: { ...Pricing.defaults, ...config.prices }
    }
  })

/**
 * Builds the composed service from a configuration already read, with the fallback chain read
 * from the environment.
 *
 * @example
 * import { RateLimiter } from "@effect/experimental"
 * import { Effect } from "effect"
 * import { LlmConfig, LlmLive } from "@clearside/llm"
 *
 * const service = Effect.flatMap(LlmConfig.config, LlmLive.fromConfig).pipe(Effect.provide(RateLimiter.layerStoreMemory))
 *
 * @since 0.1.0
 * @category Constructors
 */
export const fromConfig = (
  config: LlmConfig.LlmConfig
): Effect.Effect<Llm.Service, ConfigError.ConfigError, RateLimiter.RateLimiterStore> =>
  Effect.gen(function* () {
    const defaultProvider = LlmConfig.defaultProvider(config)
    if (Option.isNone(defaultProvider)) return yield* Effect.fail(noProvider)
    const providers = yield* buildProviders(config, defaultProvider.value)
    const policies = yield* policiesOf(config)
    return yield* compose({ providers, defaultProvider: defaultProvider.value, policies, secrets: LlmConfig.secrets(config) })
  })

/**
 * Reads the configuration (`LlmConfig.load`: with the named compatible endpoints, and each
 * compatible endpoint's own rate limits) and builds the composed service.
 *
 * @example
 * import { RateLimiter } from "@effect/experimental"
 * import { Effect } from "effect"
 * import { LlmLive } from "@clearside/llm"
 *
 * const answer = Effect.flatMap(LlmLive.make, (llm) => llm.complete({ messages: [{ role: "user", content: "hi" }] })).pipe(
 *   Effect.provide(RateLimiter.layerStoreMemory)
 * )
 *
 * @since 0.1.0
 * @category Constructors
 */
export const make: Effect.Effect<Llm.Service, ConfigError.ConfigError, RateLimiter.RateLimiterStore> = Effect.flatMap(
  LlmConfig.load,
  fromConfig
)

/**
 * The `Llm` layer built from the environment, with the rate limiter's state where
 * `LLM_RATE_LIMIT_STORE` says (this process's memory by default, or Redis shared by every
 * instance). It leaves the application's logger and minimum log level alone. Fails with a
 * `ConfigError` naming the variable at fault, or saying that no provider is configured.
 *
 * @example
 * import { Effect } from "effect"
 * import { Llm, LlmLive } from "@clearside/llm"
 *
 * const program = Llm.complete({ messages: [{ role: "user", content: "hi" }] }).pipe(Effect.provide(LlmLive.layer))
 *
 * @since 0.1.0
 * @category Layers
 */
export const layer: Layer.Layer<Llm.Llm, ConfigError.ConfigError> = Layer.effect(Llm.Llm, make).pipe(
  Layer.provide(RateLimitStore.layerConfig)
)
