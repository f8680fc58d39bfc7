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
import { ConfigError, Effect, Layer, Option } from "effect"
import * as Anthropic from "./Anthropic.js"
import * as Llm from "./Llm.js"
import * as LlmConfig from "./LlmConfig.js"
import * as OpenAi from "./OpenAi.js"
import * as OpenAiCompatible from "./OpenAiCompatible.js"

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
 * Builds the routed service from a configuration already read.
 *
 * @example
 * import { Duration, Effect, Redacted } from "effect"
 * import { LlmLive } from "@clearside/llm"
 *
 * const service = LlmLive.fromConfig({
 *   timeout: Duration.seconds(30),
 *   maxRetries: 3,
 *   openaiCompatible: { name: "ollama", baseURL: "http://127.0.0.1:11434/v1" },
 *   defaultModel: "llama3.2"
 * })
 *
 * @since 0.1.0
 * @category Constructors
 */
export const fromConfig = (config: LlmConfig.LlmConfig): Effect.Effect<Llm.Service, ConfigError.ConfigError> =>
  Effect.gen(function* () {
    const defaultProvider = LlmConfig.defaultProvider(config)
    if (Option.isNone(defaultProvider)) return yield* Effect.fail(noProvider)
    const modelFor = (name: string) =>
      name === defaultProvider.value && config.defaultModel !== undefined ? { model: config.defaultModel } : {}

    const providers: Record<string, Llm.Service> = {}
    if (config.openai) providers.openai = yield* OpenAi.make({ ...config.openai, ...modelFor("openai") })
    if (config.anthropic) providers.anthropic = yield* Anthropic.make({ ...config.anthropic, ...modelFor("anthropic") })
    if (config.openaiCompatible) {
      const name = config.openaiCompatible.name
      providers[name] = yield* OpenAiCompatible.make({ ...modelFor(name), ...config.openaiCompatible })
    }
    return Llm.router({ providers, defaultProvider: defaultProvider.value })
  })

/**
 * Reads `LlmConfig.config` and builds the routed service.
 *
 * @example
 * import { Effect } from "effect"
 * import { LlmLive } from "@clearside/llm"
 *
 * const answer = Effect.flatMap(LlmLive.make, (llm) => llm.complete({ messages: [{ role: "user", content: "hi" }] }))
 *
 * @since 0.1.0
 * @category Constructors
 */
export const make: Effect.Effect<Llm.Service, ConfigError.ConfigError> = Effect.flatMap(LlmConfig.config, fromConfig)

/**
 * The `Llm` layer built from the environment. Fails with a `ConfigError` naming the variable at
 * fault, or saying that no provider is configured.
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
export const layer: Layer.Layer<Llm.Llm, ConfigError.ConfigError> = Layer.effect(Llm.Llm, make)
