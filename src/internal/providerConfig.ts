/**
 * A provider's layers: the provider alone as the `Llm` service, from options or from `LlmConfig`.
 *
 * @internal
 */
import { ConfigError, Effect, Layer } from "effect"
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
