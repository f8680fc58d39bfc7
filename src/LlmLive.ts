/**
 * The `Llm` service wired from the environment: every provider that `LlmConfig` finds configured
 * (OpenAI, Anthropic, an OpenAI-compatible endpoint), routed by each request's `provider` with
 * `Llm.router`. Requests naming no provider go to `LLM_PROVIDER`, else to the first configured one;
 * `LLM_DEFAULT_MODEL` is that default provider's model (`OPENAI_COMPATIBLE_MODEL`, when set, is the
 * compatible endpoint's).
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
import type { Redacted } from "effect"
import { type Duration, ConfigError, Effect, Layer, Option } from "effect"
import * as Anthropic from "./Anthropic.js"
import * as CircuitBreaker from "./CircuitBreaker.js"
import * as Fallback from "./Fallback.js"
import * as Llm from "./Llm.js"
import * as LlmConfig from "./LlmConfig.js"
import * as Logging from "./Logging.js"
import * as OpenAi from "./OpenAi.js"
import * as OpenAiCompatible from "./OpenAiCompatible.js"
import * as Pricing from "./Pricing.js"
import * as RateLimit from "./RateLimit.js"
import * as RateLimitStore from "./RateLimitStore.js"
import * as Retry from "./Retry.js"
import * as Timeout from "./Timeout.js"
import * as Usage from "./Usage.js"
import * as BlankIsUnset from "./internal/blankIsUnset.js"
import * as Dispatch from "./internal/dispatch.js"
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
  LlmConfig.config,
  LlmConfig.configuredProviders
)

/**
 * The error when no provider is configured.
 */
const noProvider = ConfigError.MissingData(
  ["OPENAI_API_KEY"],
  "no LLM provider is configured: set OPENAI_API_KEY, ANTHROPIC_API_KEY, or OPENAI_COMPATIBLE_NAME " +
    "with OPENAI_COMPATIBLE_BASE_URL (see .env.example)"
)

/**
 * The settings of every policy, as read from the environment by each policy's own `config`.
 *
 * @example
 * import { Effect } from "effect"
 * import { LlmLive } from "@clearside/llm"
 *
 * const retries = Effect.map(LlmLive.policiesConfig(["openai"]), (policies) => policies.retry.maxRetries)
 *
 * @since 0.1.0
 * @category Models
 */
export interface Policies {
  readonly retry: Retry.Options
  readonly timeout: Timeout.Options
  readonly deadline: Option.Option<Duration.Duration>
  readonly rateLimit: RateLimit.Options
  readonly circuitBreaker: CircuitBreaker.Options
  readonly fallback: ReadonlyArray<Fallback.Target>
  readonly logBodies: boolean
  readonly prices: Pricing.PriceTable
}

/**
 * Reads every policy's settings for the given provider names (per-provider rate limits such as
 * `LLM_RATE_LIMIT_RPM_OPENAI` are read for each).
 *
 * @example
 * import { Effect } from "effect"
 * import { LlmLive } from "@clearside/llm"
 *
 * const policies = LlmLive.policiesConfig(["openai", "anthropic"])
 *
 * @since 0.1.0
 * @category Config
 */
export const policiesConfig = (providers: ReadonlyArray<string>) =>
  Effect.all({
    retry: Retry.config,
    timeout: Timeout.config,
    deadline: Timeout.deadlineConfig,
    rateLimit: RateLimit.config(providers),
    circuitBreaker: CircuitBreaker.config,
    fallback: Fallback.config,
    logBodies: Effect.map(Logging.config, (logging) => logging.bodies),
    prices: Pricing.config
  }) satisfies Effect.Effect<Policies, ConfigError.ConfigError>

/**
 * Builds the providers a configuration names, each with its model.
 */
const buildProviders = (config: LlmConfig.LlmConfig, defaultProvider: string) =>
  Effect.gen(function* () {
    // LLM_DEFAULT_MODEL is the default provider's model; each other provider keeps its own default.
    const modelFor = (name: string) => (name === defaultProvider ? config.defaultModel : undefined)
    const providers: Record<string, Llm.Service> = {}
    const models: Record<string, string> = {}
    if (config.openai) {
      const model = modelFor("openai") ?? OpenAi.defaultModel
      providers.openai = yield* OpenAi.make({ ...config.openai, model })
      models.openai = model
    }
    if (config.anthropic) {
      const model = modelFor("anthropic") ?? Anthropic.defaultModel
      providers.anthropic = yield* Anthropic.make({ ...config.anthropic, model })
      models.anthropic = model
    }
    if (config.openaiCompatible) {
      const name = config.openaiCompatible.name
      const model = config.openaiCompatible.model ?? modelFor(name)
      providers[name] = yield* OpenAiCompatible.make({ ...config.openaiCompatible, ...(model === undefined ? {} : { model }) })
      if (model !== undefined) models[name] = model
    }
    return { providers, models }
  })

const circuitLabel = (state: CircuitBreaker.State): Usage.CircuitState => (state === "half-open" ? "half_open" : state)

/**
 * Applies every policy, in the order of this module's documentation, to already-built providers.
 * The limiter's state lives in the `RateLimiterStore` in context.
 *
 * @example
 * import { RateLimiter } from "@effect/experimental"
 * import { Effect, Option } from "effect"
 * import { LlmLive, LlmMock, Pricing } from "@clearside/llm"
 *
 * const service = LlmLive.compose({
 *   providers: { echo: LlmMock.echo({ provider: "echo" }) },
 *   defaultProvider: "echo",
 *   policies: {
 *     retry: { maxRetries: 2 }, timeout: {}, deadline: Option.none(), rateLimit: { rpm: 600 },
 *     circuitBreaker: {}, fallback: [], logBodies: false, prices: Pricing.defaults
 *   }
 * }).pipe(Effect.provide(RateLimiter.layerStoreMemory))
 *
 * @since 0.1.0
 * @category Constructors
 */
export const compose = (options: {
  readonly providers: Readonly<Record<string, Llm.Service>>
  /** The model each provider answers with when a request names none, named in spans, metrics and logs. */
  readonly models?: Readonly<Record<string, string>>
  readonly defaultProvider: string
  readonly policies: Policies
  readonly secrets?: ReadonlyArray<Redacted.Redacted<string>>
}): Effect.Effect<Llm.Service, ConfigError.ConfigError, RateLimiter.RateLimiterStore> =>
  Effect.gen(function* () {
    const { policies } = options
    const names = Object.keys(options.providers)
    for (const target of policies.fallback) {
      if (!names.includes(target.provider)) {
        return yield* Effect.fail(
          ConfigError.InvalidData(
            ["LLM_FALLBACK"],
            `LLM_FALLBACK names provider "${target.provider}", which is not configured (configured: ${names.join(", ")})`
          )
        )
      }
    }
    // The span and the log line of each call, and of each attempt, are taken in one pass.
    const instruments = {
      trace: true,
      log: { bodies: policies.logBodies, prices: policies.prices },
      secrets: options.secrets ?? []
    }
    const limit = yield* RateLimit.make({ ...policies.rateLimit, onWait: Usage.recordRateLimitWait })
    const breaker = yield* CircuitBreaker.make({
      ...policies.circuitBreaker,
      onStateChange: (change) =>
        Usage.recordCircuitTransition({ provider: change.provider, from: circuitLabel(change.from), to: circuitLabel(change.to) })
    })
    const retry = Retry.make({ ...policies.retry, onRetry: Usage.recordRetry })
    const timeout = Timeout.make(policies.timeout)

    const guarded: Record<string, Llm.Service> = {}
    for (const name of names) {
      const provider = options.providers[name]!
      guarded[name] = retry(
        Instrument.make(breaker(limit(Usage.wrap(timeout(provider), { prices: policies.prices }))), {
          level: "attempt",
          ...instruments
        })
      )
    }
    // A target naming no model asks for its provider's, as a request naming none does.
    const models = options.models ?? {}
    const chain = policies.fallback.map((target) =>
      target.model === undefined && Object.hasOwn(models, target.provider) ? { ...target, model: models[target.provider]! } : target
    )
    const routed = Fallback.make({ chain })(Dispatch.make(guarded))
    const bounded = Option.match(policies.deadline, {
      onNone: () => routed,
      onSome: (deadline) => Timeout.deadline({ deadline })(routed)
    })
    return Llm.validated(Instrument.make(bounded, { level: "call", ...instruments }), {
      providers: names,
      defaultProvider: options.defaultProvider,
      models: options.models
    })
  })

/**
 * Builds the composed service from a configuration already read, with the policies' settings read
 * from the environment.
 *
 * @example
 * import { RateLimiter } from "@effect/experimental"
 * import { Duration, Effect } from "effect"
 * import { LlmLive } from "@clearside/llm"
 *
 * const service = LlmLive.fromConfig({
 *   timeout: Duration.seconds(30),
 *   maxRetries: 3,
 *   openaiCompatible: { name: "ollama", baseURL: "http://127.0.0.1:11434/v1" },
 *   defaultModel: "llama3.2"
 * }).pipe(Effect.provide(RateLimiter.layerStoreMemory))
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
    const { models, providers } = yield* buildProviders(config, defaultProvider.value)
    const read = yield* policiesConfig(Object.keys(providers))
    // Limits belong to an API key: store keys carry each key's fingerprint, never the key.
    const policies = {
      ...read,
      rateLimit: { ...read.rateLimit, keyNamespaces: RateLimitStore.keyNamespaces(config) }
    }
    const secrets = [config.openai?.apiKey, config.anthropic?.apiKey, config.openaiCompatible?.apiKey].filter(
      (key): key is Redacted.Redacted<string> => key !== undefined
    )
    return yield* compose({ providers, models, defaultProvider: defaultProvider.value, policies, secrets })
  })

/**
 * Reads `LlmConfig.config` and every policy's settings (a blank variable counts as unset) and
 * builds the composed service.
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
export const make: Effect.Effect<Llm.Service, ConfigError.ConfigError, RateLimiter.RateLimiterStore> = BlankIsUnset.within(
  Effect.flatMap(LlmConfig.config, fromConfig)
)

/**
 * The `Llm` layer built from the environment, with the rate limiter's state where
 * `LLM_RATE_LIMIT_STORE` says (this process's memory by default, or Redis shared by every instance)
 * and the logger that `LLM_LOG_FORMAT` / `LLM_LOG_LEVEL` select. Fails with a `ConfigError`
 * naming the variable at fault, or saying that no provider is configured.
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
export const layer: Layer.Layer<Llm.Llm, ConfigError.ConfigError> = Layer.merge(
  Layer.effect(Llm.Llm, make).pipe(Layer.provide(RateLimitStore.layerConfig)),
  Layer.unwrapEffect(
    BlankIsUnset.within(
      Effect.map(Logging.config, (logging) => Logging.layerLogger({ format: logging.format, level: logging.level }))
    )
  )
)
