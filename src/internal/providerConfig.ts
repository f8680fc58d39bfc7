/**
 * Reading provider settings from the environment: empty variables (as left by a copied
 * `.env.example`) count as unset.
 *
 * @internal
 */
import { Config, Option, Redacted } from "effect"

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
