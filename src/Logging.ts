/**
 * Structured logs of `Llm` calls through Effect's `Logger`: one info line per call, one debug line
 * per provider attempt. The lines carry their fields as log annotations, so Effect's `json` and
 * `logfmt` loggers print them as fields. The library never writes to the console itself: lines go
 * to whatever logger the program runs with; {@link layerConfig} installs one of Effect's built-in
 * loggers chosen by `LLM_LOG_FORMAT`, at the level of `LLM_LOG_LEVEL`.
 *
 * The call line (message `llm call`) has `provider`, `model`, `operation` (`complete` or
 * `stream`), `outcome` (`success`, `failure`, `interrupted`), `latency_ms`, `attempts`,
 * `input_tokens`, `output_tokens`, `total_tokens`, `cost_usd`, `response_id` (or, for a failure, the
 * provider's `request_id`), `finish_reason`, for a
 * stream `first_chunk_ms`, on failure `error_tag`, `error_message` and `retryable`, and each entry
 * of the request's `metadata` as `metadata.<key>`. Tokens and cost are the sums over all attempts
 * when `Usage.wrap` measures them inside; otherwise they are the answer's own. With
 * `bodies: true` (`LLM_LOG_BODIES=true`) it also has `request_body` and `response_body`,
 * truncated. Retries are logged at warn by the retry policy itself.
 *
 * Nothing secret is logged: no headers, and text that looks like a provider key or bearer token,
 * or equals one of the given `secrets`, is replaced by `<redacted>`.
 *
 * @example
 * import { Effect, Layer } from "effect"
 * import { Llm, LlmMock, Logging, Retry, Usage } from "@clearside/llm"
 *
 * const logged = Layer.succeed(
 *   Llm.Llm,
 *   Logging.wrap(Retry.make()(Logging.wrapAttempt(Usage.wrap(LlmMock.echo()))))
 * )
 * const program = Llm.complete({ messages: [{ role: "user", content: "hi" }], metadata: { agent: "judge" } }).pipe(
 *   Effect.provide(logged),
 *   Effect.provide(Logging.layerLogger({ format: "logfmt" }))
 * )
 * // timestamp=... level=INFO fiber=#1 message="llm call" provider=mock model=mock-echo operation=complete outcome=success ...
 *
 * @since 0.1.0
 */
import { Config, ConfigError, Effect, Either, Layer, Logger, LogLevel, Option, type Redacted } from "effect"
import * as Instrument from "./internal/instrument.js"
import * as Redaction from "./internal/redaction.js"
import * as Llm from "./Llm.js"
import type * as Pricing from "./Pricing.js"

/**
 * Options of {@link wrap} and {@link wrapAttempt}.
 *
 * @example
 * import type { Logging } from "@clearside/llm"
 * const options: Logging.Options = { bodies: true, maxBodyChars: 500 }
 *
 * @since 0.1.0
 * @category Models
 */
export interface Options {
  /** Log the request messages and the answer text (default false). */
  readonly bodies?: boolean | undefined
  /** Longest body logged, in characters (default 2000); the rest is cut. */
  readonly maxBodyChars?: number | undefined
  /** Key values to scrub, besides anything shaped like a provider key. */
  readonly secrets?: ReadonlyArray<Redacted.Redacted<string>> | undefined
  /** Prices for the call line's `cost_usd` when no `Usage.wrap` measures the attempts (default `Pricing.defaults`). */
  readonly prices?: Pricing.PriceTable | undefined
}

/**
 * The logger formats {@link layerLogger} can install: Effect's `prettyLogger`, `jsonLogger` and
 * `logfmtLogger`.
 *
 * @example
 * import type { Logging } from "@clearside/llm"
 * const format: Logging.Format = "json"
 *
 * @since 0.1.0
 * @category Models
 */
export type Format = "pretty" | "json" | "logfmt"

/**
 * Logs one info line per call (message `llm call`). Place it outside the retry policy, so that a
 * call retried three times is still one line, with `attempts` counted by {@link wrapAttempt} (or
 * `Tracing.wrapAttempt`) inside the policy.
 *
 * @example
 * import { Llm, LlmMock, Logging } from "@clearside/llm"
 * const logged: Llm.Service = Logging.wrap(LlmMock.echo(), { bodies: true, maxBodyChars: 200 })
 *
 * @since 0.1.0
 * @category Combinators
 */
export const wrap = (service: Llm.Service, options: Options = {}): Llm.Service =>
  Instrument.make(service, { level: "call", log: options, secrets: options.secrets })

/**
 * Logs one debug line per provider attempt (message `llm attempt`, with `attempt`, 1 for the
 * first). Place it inside the retry policy, around the provider.
 *
 * @example
 * import { Llm, LlmMock, Logging, Retry } from "@clearside/llm"
 * const logged: Llm.Service = Logging.wrap(Retry.make()(Logging.wrapAttempt(LlmMock.echo())))
 *
 * @since 0.1.0
 * @category Combinators
 */
export const wrapAttempt = (service: Llm.Service, options: Options = {}): Llm.Service =>
  Instrument.make(service, { level: "attempt", log: options, secrets: options.secrets })

/**
 * {@link wrap} as a layer over the `Llm` in context.
 *
 * @example
 * import { Layer } from "effect"
 * import { LlmMock, Logging } from "@clearside/llm"
 * const logged = Logging.layer().pipe(Layer.provide(LlmMock.layerEcho()))
 *
 * @since 0.1.0
 * @category Layers
 */
export const layer = (options: Options = {}): Layer.Layer<Llm.Llm, never, Llm.Llm> =>
  Layer.effect(
    Llm.Llm,
    Effect.map(Llm.Llm, (service) => wrap(service, options))
  )

/**
 * {@link wrapAttempt} as a layer over the `Llm` in context.
 *
 * @example
 * import { Layer } from "effect"
 * import { LlmMock, Logging } from "@clearside/llm"
 * const logged = Logging.layerAttempt().pipe(Layer.provide(LlmMock.layerEcho()))
 *
 * @since 0.1.0
 * @category Layers
 */
export const layerAttempt = (options: Options = {}): Layer.Layer<Llm.Llm, never, Llm.Llm> =>
  Layer.effect(
    Llm.Llm,
    Effect.map(Llm.Llm, (service) => wrapAttempt(service, options))
  )

const loggers = {
  pretty: Logger.pretty,
  json: Logger.json,
  logfmt: Logger.logFmt
} as const

/**
 * Installs one of Effect's built-in loggers (replacing the default one) and the minimum level.
 * Without `format` the program's logger is kept; without `level` the level is kept.
 *
 * @example
 * import { Effect, LogLevel } from "effect"
 * import { Logging } from "@clearside/llm"
 * const program = Effect.logDebug("shown").pipe(Effect.provide(Logging.layerLogger({ format: "json", level: LogLevel.Debug })))
 *
 * @since 0.1.0
 * @category Layers
 */
export const layerLogger = (options: {
  readonly format?: Format | undefined
  readonly level?: LogLevel.LogLevel | undefined
}): Layer.Layer<never> =>
  Layer.mergeAll(
    options.format === undefined ? Layer.empty : loggers[options.format],
    options.level === undefined ? Layer.empty : Logger.minimumLogLevel(options.level)
  )

const levels: Record<string, LogLevel.LogLevel> = {
  all: LogLevel.All,
  trace: LogLevel.Trace,
  debug: LogLevel.Debug,
  info: LogLevel.Info,
  warn: LogLevel.Warning,
  warning: LogLevel.Warning,
  error: LogLevel.Error,
  fatal: LogLevel.Fatal,
  none: LogLevel.None
}

/**
 * The logging settings of the environment: `LLM_LOG_LEVEL` (`trace`, `debug`, `info`, `warn`,
 * `error`, `fatal`, `none`; default `info`), `LLM_LOG_FORMAT` (`pretty`, `json`, `logfmt`; default:
 * keep the program's logger) and `LLM_LOG_BODIES` (`true` to log bodies; default `false`).
 *
 * @example
 * import { Effect } from "effect"
 * import { Logging } from "@clearside/llm"
 * const settings = Effect.runSync(Logging.config)
 *
 * @since 0.1.0
 * @category Config
 */
export const config: Config.Config<{
  readonly level: LogLevel.LogLevel
  readonly format: Format | undefined
  readonly bodies: boolean
}> = Config.all({
  level: Config.string("LLM_LOG_LEVEL").pipe(
    Config.mapOrFail((raw) => {
      const level = levels[raw.trim().toLowerCase()]
      return level === undefined
        ? Either.left(
            ConfigError.InvalidData(
              [],
              `LLM_LOG_LEVEL must be one of ${Object.keys(levels).join(", ")} (got "${raw}")`
            )
          )
        : Either.right(level)
    }),
    Config.withDefault(LogLevel.Info)
  ),
  format: Config.option(Config.literal("pretty", "json", "logfmt")("LLM_LOG_FORMAT")).pipe(
    Config.map(Option.getOrUndefined)
  ),
  bodies: Config.boolean("LLM_LOG_BODIES").pipe(Config.withDefault(false))
})

/**
 * The logger chosen by the environment (see {@link config}) and {@link wrap} over the `Llm` in
 * context, with bodies as `LLM_LOG_BODIES` says and the environment's provider keys scrubbed.
 *
 * @example
 * import { Layer } from "effect"
 * import { LlmMock, Logging } from "@clearside/llm"
 * // LLM_LOG_FORMAT=json LLM_LOG_LEVEL=debug
 * const logged = Logging.layerConfig.pipe(Layer.provide(LlmMock.layerEcho()))
 *
 * @since 0.1.0
 * @category Layers
 */
export const layerConfig: Layer.Layer<Llm.Llm, ConfigError.ConfigError, Llm.Llm> = Layer.unwrapEffect(
  Effect.map(Config.all([config, Redaction.secretsConfig]), ([settings, secrets]) =>
    Layer.merge(
      layer({ bodies: settings.bodies, secrets }),
      layerLogger({ format: settings.format, level: settings.level })
    )
  )
)
