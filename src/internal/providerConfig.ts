/**
 * A provider's layers: the provider alone as the `Llm` service, from options or from `LlmConfig`.
 *
 * @internal
 */
import { ConfigError, Effect, Layer, type Redacted } from "effect"
import * as Llm from "../Llm.js"
import * as LlmConfig from "../LlmConfig.js"

/**
 * One provider's layer from the environment as `LlmConfig` reads it: `settings` picks the
 * provider's options from the configuration, or `undefined` when the provider is not configured,
 * which fails with `MissingData` for `required` and `message`.
 *
 * @internal
 */
export const layerFromConfig = <Options>(
  settings: (config: LlmConfig.LlmConfig) => Options | undefined,
  layerOf: (options: Options) => Layer.Layer<Llm.Llm>,
  missing: { readonly required: string; readonly message: string }
): Layer.Layer<Llm.Llm, ConfigError.ConfigError> =>
  Layer.unwrapEffect(
    Effect.flatMap(LlmConfig.config, (config) => {
      const options = settings(config)
      return options === undefined
        ? Effect.fail(ConfigError.MissingData([missing.required], missing.message))
        : Effect.succeed(layerOf(options))
    })
  )

/**
 * One provider as the `Llm` layer: requests are validated and answered by it alone
 * (`Llm.fromProvider`).
 *
 * @internal
 */
export const layer = (provider: Effect.Effect<Llm.Provider>): Layer.Layer<Llm.Llm> =>
  Layer.effect(Llm.Llm, Effect.map(provider, Llm.fromProvider))

/**
 * The layer of a keyed provider (`openai` or `anthropic`) from `LlmConfig`: its key and base URL,
 * and `LLM_DEFAULT_MODEL` as its model when set; `keyVariable` is required.
 *
 * @internal
 */
export const keyedLayerFromConfig = (
  provider: "openai" | "anthropic",
  keyVariable: string,
  layerOf: (
    options: LlmConfig.KeyedProvider & { readonly model?: string; readonly secrets: ReadonlyArray<Redacted.Redacted<string>> }
  ) => Layer.Layer<Llm.Llm>
): Layer.Layer<Llm.Llm, ConfigError.ConfigError> =>
  layerFromConfig(
    (config) => {
      const settings = config[provider]
      if (settings === undefined) return undefined
      // Every configured secret, not only this provider's key, stays out of its errors.
      const secrets = LlmConfig.secrets(config)
      return config.defaultModel === undefined ? { ...settings, secrets } : { ...settings, model: config.defaultModel, secrets }
    },
    layerOf,
    { required: keyVariable, message: `${keyVariable} is required` }
  )
