/**
 * Reading provider settings from the environment: empty variables (as left by a copied
 * `.env.example`) count as unset.
 *
 * @internal
 */
import { Config, Effect, Layer, Option, Redacted } from "effect"
import * as Llm from "../Llm.js"

/**
 * An optional, non-blank string variable.
 *
 * @internal
 */
export const optionalString = (name: string): Config.Config<Option.Option<string>> =>
  Config.map(Config.option(Config.string(name)), Option.filter((value) => value.trim() !== ""))

/**
 * A required, non-empty secret variable.
 *
 * @internal
 */
export const requiredSecret = (name: string) => Config.redacted(Config.nonEmptyString(name))

/**
 * An optional, non-blank secret variable.
 *
 * @internal
 */
export const optionalSecret = (name: string) =>
  Config.map(
    Config.option(Config.redacted(Config.string(name))),
    Option.filter((value) => Redacted.value(value).trim() !== "")
  )

/**
 * `{ [key]: value }` when the option holds a value, else `{}`: for spreading into options objects
 * under `exactOptionalPropertyTypes`.
 *
 * @internal
 */
export const field = <K extends string, A>(key: K, option: Option.Option<A>): { [P in K]?: A } =>
  Option.isSome(option) ? ({ [key]: option.value } as { [P in K]?: A }) : {}

/**
 * A keyed provider's options from the environment: `keyVariable` (required, `Redacted`),
 * `baseUrlVariable` and `LLM_DEFAULT_MODEL` (optional).
 *
 * @internal
 */
export const keyed = (
  keyVariable: string,
  baseUrlVariable: string
): Config.Config<{ readonly apiKey: Redacted.Redacted<string>; readonly baseURL?: string; readonly model?: string }> =>
  Config.map(
    Config.all({
      apiKey: requiredSecret(keyVariable),
      baseURL: optionalString(baseUrlVariable),
      model: optionalString("LLM_DEFAULT_MODEL")
    }),
    ({ apiKey, baseURL, model }) => ({ apiKey, ...field("baseURL", baseURL), ...field("model", model) })
  )

/**
 * One provider as the `Llm` layer: requests are validated and answered by it alone
 * (`Llm.fromProvider`).
 *
 * @internal
 */
export const layer = (provider: Effect.Effect<Llm.Provider>): Layer.Layer<Llm.Llm> =>
  Layer.effect(Llm.Llm, Effect.map(provider, Llm.fromProvider))
