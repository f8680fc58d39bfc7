/**
 * A blank value counts as no value: users copy `.env.example` with its blank lines, and
 * `LLM_RATE_LIMIT_RPM=` should mean "no limit", not "not a number". Values are trimmed before they
 * are parsed, since `.env` files and shells leave stray spaces and carriage returns.
 *
 * `optionalText` and `optionalSecret` apply the rule to one variable (what `LlmConfig` reads
 * through); `wrap` and `within` apply it to a whole `ConfigProvider`, for readers that use Effect's
 * own `Config.integer` and friends.
 *
 * @internal
 */
import { Config, ConfigError, ConfigProvider, Effect, Option, Redacted } from "effect"

const text = Config.string() as Config.Config.Primitive<string>

/**
 * A variable as trimmed text; unset, empty or blank is `None`.
 *
 * @internal
 */
export const optionalText = (name: string): Config.Config<Option.Option<string>> =>
  Config.string(name).pipe(
    Config.option,
    Config.map(Option.flatMap((value) => Option.liftPredicate(value.trim(), (trimmed) => trimmed !== "")))
  )

/**
 * A secret variable, trimmed and never held as plain text past this point; unset, empty or blank is
 * `None`.
 *
 * @internal
 */
export const optionalSecret = (name: string): Config.Config<Option.Option<Redacted.Redacted<string>>> =>
  Config.redacted(name).pipe(
    Config.option,
    Config.map(
      Option.flatMap((secret) => {
        const trimmed = Redacted.value(secret).trim()
        return trimmed === "" ? Option.none() : Option.some(Redacted.make(trimmed))
      })
    )
  )

/**
 * Wraps `inner` so that a blank value is `MissingData` (so `Config.withDefault` and `Config.option`
 * apply) and every other value is trimmed.
 *
 * @internal
 */
export const wrap = (inner: ConfigProvider.ConfigProvider): ConfigProvider.ConfigProvider => {
  const flat = inner.flattened
  return ConfigProvider.fromFlat(
    ConfigProvider.makeFlat({
      load: (path, primitive, split) =>
        Effect.flatMap(flat.load(path, text, split), (values) =>
          values.some((value) => value.trim() === "")
            ? Effect.fail(ConfigError.MissingData([...path], `Expected ${path.join(".")} to be set, but it is blank`))
            : Effect.forEach(values, (value) => primitive.parse(value.trim()))
        ),
      enumerateChildren: flat.enumerateChildren,
      patch: flat.patch
    })
  )
}

/**
 * Runs `self` with the current `ConfigProvider` wrapped by {@link wrap}.
 *
 * @internal
 */
export const within = <A, E, R>(self: Effect.Effect<A, E, R>): Effect.Effect<A, E, R> =>
  Effect.configProviderWith((current) => Effect.withConfigProvider(self, wrap(current)))
