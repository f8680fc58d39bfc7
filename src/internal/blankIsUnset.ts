/**
 * A `ConfigProvider` that reads a blank value as no value: users copy `.env.example` with its
 * blank lines, and `LLM_RATE_LIMIT_RPM=` should mean "no limit", not "not a number". Values are
 * trimmed before they are parsed.
 *
 * @internal
 */
import { Config, ConfigError, ConfigProvider, Effect } from "effect"

const text = Config.string() as Config.Config.Primitive<string>

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
