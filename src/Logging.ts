/**
 * Structured log lines of `Llm` calls, through the application's own `Logger`: one line per call
 * (message `llm call`, at debug by default, like the official SDKs, or at info with
 * `callLevel: "info"` for an access log) and, with `level: "attempt"`, one debug line per provider
 * attempt (message `llm attempt`, numbered by the call-level policy that records the call). Retries, an opened circuit and a fallback are logged at warn by
 * those policies themselves.
 *
 * Logging belongs to the application. The library never installs a logger or changes the minimum
 * level: its lines go to the fiber's loggers as `Effect.logWithLevel` sends them (with the
 * program's own log annotations and log spans), so the program's logger decides where they go and
 * the program's minimum level (`Logger.withMinimumLogLevel`, Info by default) which it keeps.
 * `minimumLevel` (`LLM_LOG_LEVEL`) filters only the library's own lines, on top of that. A program
 * that wants the library to install one of Effect's loggers asks for it with {@link layerLogger}
 * (the CLI does); `LlmLive.layer` no longer does.
 *
 * The call line has `provider`, `model`, `operation` (`complete` or `stream`), `outcome`
 * (`success`, `failure`, `interrupted`), `latency_ms`, `attempts`, `input_tokens`, `output_tokens`,
 * `total_tokens`, `cost_usd`, `response_id` (or, for a failure, the provider's `request_id`),
 * `finish_reason`, for a stream `first_chunk_ms`, on failure `error_tag`, `error_message` and
 * `retryable`, and each entry of the request's `metadata` as `metadata.<key>`. Tokens and cost are
 * the sums over all attempts when the `Usage` policy measures them inside; otherwise they are the
 * answer's own. With `bodies: true` (`LLM_LOG_BODIES=true`) it also has `request_body` and
 * `response_body`, truncated. The fields are log annotations, so Effect's `json` and `logfmt`
 * loggers print them as fields.
 *
 * Nothing secret is logged: no headers, and text that looks like a provider key or bearer token,
 * or equals one of the given `secrets`, is replaced by `[redacted]` (in the errors callers get,
 * too).
 *
 * @example
 * import { Effect, Layer, Logger, LogLevel } from "effect"
 * import { Llm, LlmMock, Logging, Retry, Usage } from "@clearside/llm"
 *
 * const logged = Effect.gen(function* () {
 *   const policies = [
 *     yield* Logging.make({ callLevel: "info" }),
 *     yield* Retry.make(),
 *     yield* Logging.make({ level: "attempt" }),
 *     yield* Usage.make()
 *   ]
 *   return Llm.fromCall(Llm.compose(LlmMock.echo().call, policies))
 * })
 * const program = Llm.complete({ messages: [{ role: "user", content: "hi" }], metadata: { agent: "judge" } }).pipe(
 *   Effect.provide(Layer.effect(Llm.Llm, logged)),
 *   Effect.provide(Logger.logFmt),
 *   Logger.withMinimumLogLevel(LogLevel.Info)
 * )
 * // timestamp=... level=INFO fiber=#1 message="llm call" provider=mock model=mock-echo operation=complete outcome=success ...
 *
 * @since 0.1.0
 */
import { Config, type ConfigError, Effect, Layer, Logger, type Redacted } from "effect"
import * as Instrument from "./internal/instrument.js"
import * as Llm from "./Llm.js"
import * as LlmConfig from "./LlmConfig.js"
import * as Pricing from "./Pricing.js"

/**
 * The level names the options and the environment take, lowest first: `trace`, `debug`, `info`,
 * `warn`, `error`, `fatal`, `none`.
 *
 * @example
 * import type { Logging } from "@clearside/llm"
 * const quiet: Logging.LevelName = "warn"
 *
 * @since 0.1.0
 * @category Models
 */
export type LevelName = Instrument.LevelName

/**
 * Every {@link LevelName}, lowest first, for validating a value.
 *
 * @example
 * import { Logging } from "@clearside/llm"
 * Logging.levelNames.includes("warn") // true
 *
 * @since 0.1.0
 * @category Models
 */
export const levelNames: ReadonlyArray<LevelName> = Instrument.levelNames

/**
 * Options of {@link make}. Defaults: `level` `"call"`, `callLevel` `"debug"`, `minimumLevel`
 * `"trace"` (the library drops none of its lines; the application's level still applies), no
 * bodies, `maxBodyChars` 2000, `prices` `Pricing.defaults`.
 *
 * @example
 * import type { Logging } from "@clearside/llm"
 * const options: Logging.Options = { callLevel: "info", bodies: true, maxBodyChars: 500 }
 *
 * @since 0.1.0
 * @category Models
 */
export interface Options {
  /** One line per call (`"call"`, outside the retry policy) or per provider attempt (`"attempt"`, inside it). */
  readonly level?: "call" | "attempt" | undefined
  /** The level of the call line: `"debug"` (the default) or `"info"`, for an access log. Attempt lines are at debug. */
  readonly callLevel?: "debug" | "info" | undefined
  /** The library's own minimum: its lines below it are not emitted. The application's minimum level applies as well. */
  readonly minimumLevel?: LevelName | undefined
  /** Log the request messages and the answer text on the call line (default false). */
  readonly bodies?: boolean | undefined
  /** Longest body logged, in characters (default 2000); the rest is cut. */
  readonly maxBodyChars?: number | undefined
  /** Key values to scrub, besides anything shaped like a provider key. */
  readonly secrets?: ReadonlyArray<Redacted.Redacted<string>> | undefined
  /** Prices for the call line's `cost_usd` when no `Usage` policy measures the attempts (default `Pricing.defaults`). */
  readonly prices?: Pricing.PriceTable | undefined
}

/**
 * The logging policy: a line per call (`level: "call"`, outside the retry policy, so a call retried
 * three times is one line, with `attempts` counted) or per attempt (`level: "attempt"`, inside it,
 * with `attempt`, 1 for the first).
 *
 * @example
 * import { Effect } from "effect"
 * import { Llm, LlmMock, Logging } from "@clearside/llm"
 *
 * const logged = Effect.map(Logging.make({ callLevel: "info", bodies: true }), (logging) =>
 *   Llm.fromCall(logging(LlmMock.echo().call))
 * )
 *
 * @since 0.1.0
 * @category Constructors
 */
export const make = (options: Options = {}): Effect.Effect<Llm.Policy> =>
  Effect.sync(() => Instrument.make({ level: options.level ?? "call", log: options, secrets: options.secrets }))

/**
 * {@link make} as a layer over the `Llm` in context.
 *
 * @example
 * import { Layer } from "effect"
 * import { LlmMock, Logging } from "@clearside/llm"
 * const logged = Logging.layer({ callLevel: "info" }).pipe(Layer.provide(LlmMock.layerEcho()))
 *
 * @since 0.1.0
 * @category Layers
 */
export const layer = (options?: Options): Layer.Layer<Llm.Llm, never, Llm.Llm> => Llm.layerPolicy(make(options))

/**
 * The logging options of the environment: `LLM_LOG_LEVEL` (the library's own minimum, one of
 * {@link levelNames}, any case; default `trace`, none dropped), `LLM_LOG_CALL_LEVEL` (`debug` or
 * `info`; default `debug`), `LLM_LOG_BODIES` (`true` to log bodies; default `false`), the prices of
 * `LLM_PRICES` and the provider keys to scrub (`OPENAI_API_KEY`, `ANTHROPIC_API_KEY`,
 * `OPENAI_COMPATIBLE_API_KEY`). Any other level is a `ConfigError` naming the variable.
 *
 * @example
 * import { Effect } from "effect"
 * import { Logging } from "@clearside/llm"
 * const options = Effect.runSync(Logging.config)
 *
 * @since 0.1.0
 * @category Config
 */
export const config: Config.Config<Options> = Config.map(LlmConfig.config, (settings) => ({
  minimumLevel: settings.logging.minimumLevel,
  callLevel: settings.logging.callLevel,
  bodies: settings.logging.bodies,
  prices: { ...Pricing.defaults, ...settings.prices },
  secrets: LlmConfig.secrets(settings)
}))

/**
 * {@link layer} with the options of {@link config}. It installs no logger.
 *
 * @example
 * import { Layer } from "effect"
 * import { LlmMock, Logging } from "@clearside/llm"
 * // LLM_LOG_CALL_LEVEL=info LLM_LOG_BODIES=true
 * const logged = Logging.layerConfig.pipe(Layer.provide(LlmMock.layerEcho()))
 *
 * @since 0.1.0
 * @category Layers
 */
export const layerConfig: Layer.Layer<Llm.Llm, ConfigError.ConfigError, Llm.Llm> = Llm.layerPolicy(
  Effect.flatMap(config, make)
)

// ---------------------------------------------------------------------------------------------
// A logger for programs that ask for one
// ---------------------------------------------------------------------------------------------

/**
 * The logger formats {@link layerLogger} can install: Effect's pretty, json and logfmt loggers.
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
 * What {@link layerLogger} installs: a `format` (without one the program's logger is kept), a
 * minimum `level` for the whole program (without one its level is kept) and whether lines go to
 * standard error instead of standard output.
 *
 * @example
 * import type { Logging } from "@clearside/llm"
 * const options: Logging.LoggerOptions = { format: "logfmt", level: "warn", stderr: true }
 *
 * @since 0.1.0
 * @category Models
 */
export interface LoggerOptions {
  readonly format?: Format | undefined
  readonly level?: LevelName | undefined
  readonly stderr?: boolean | undefined
}

const loggerOf = (format: Format, stderr: boolean) => {
  if (format === "pretty") return Logger.prettyLogger({ stderr })
  const logger = format === "json" ? Logger.jsonLogger : Logger.logfmtLogger
  return stderr ? Logger.withConsoleError(logger) : Logger.withConsoleLog(logger)
}

/**
 * An opt-in for programs (such as the CLI) that want the library to install one of Effect's
 * loggers in place of the default one, and a minimum level. Libraries and services that have a
 * logger of their own do not use it: `Logging.make` and `LlmLive.layer` never touch the logger.
 *
 * @example
 * import { Effect } from "effect"
 * import { Logging } from "@clearside/llm"
 * const program = Effect.logDebug("shown").pipe(Effect.provide(Logging.layerLogger({ format: "json", level: "debug" })))
 *
 * @since 0.1.0
 * @category Layers
 */
export const layerLogger = (options: LoggerOptions): Layer.Layer<never> =>
  Layer.mergeAll(
    options.format === undefined
      ? Layer.empty
      : Logger.replace(Logger.defaultLogger, loggerOf(options.format, options.stderr === true)),
    options.level === undefined ? Layer.empty : Logger.minimumLogLevel(Instrument.logLevelOf[options.level])
  )

/**
 * The logger format of the environment, for {@link layerLogger} only: `LLM_LOG_FORMAT` (`pretty`,
 * `json` or `logfmt`; unset keeps the program's logger).
 *
 * @example
 * import { Effect, Layer } from "effect"
 * import { Logging } from "@clearside/llm"
 * const installed = Layer.unwrapEffect(Effect.map(Logging.formatConfig, (format) => Logging.layerLogger({ format })))
 *
 * @since 0.1.0
 * @category Config
 */
export const formatConfig: Config.Config<Format | undefined> = Config.map(LlmConfig.config, (settings) => settings.logging.format)
