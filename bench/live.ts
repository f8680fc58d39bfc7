/**
 * Builds the `Llm` service exactly as an application does, through `LlmLive.layer` read from a
 * configuration map, so whatever `LlmLive` composes (retry, timeouts, limits, breaker, fallback,
 * metrics, logs, spans) is what the benchmarks and the soak measure. The application's level is
 * info: lines at info and above are formatted as logfmt, then discarded, and counted by level.
 */
import { ConfigProvider, Layer, Logger, LogLevel, ManagedRuntime } from "effect"
import type { Llm } from "../src/index.js"
import { LlmLive } from "../src/index.js"

/**
 * A runtime holding the configured `Llm` service, and the log lines it formatted.
 */
export interface Live {
  readonly runtime: ManagedRuntime.ManagedRuntime<Llm.Llm, unknown>
  readonly logs: Record<string, number>
  readonly logBytes: () => number
}

/**
 * `LlmLive.layer` under `ConfigProvider.fromMap(config)`, logging at info level to a logger that
 * formats each line as logfmt and drops it.
 */
export const make = (config: Readonly<Record<string, string>>): Live => {
  const logs: Record<string, number> = {}
  let bytes = 0
  const discard = Logger.map(Logger.logfmtLogger, (line) => {
    bytes += line.length
    return undefined
  })
  const counting = Logger.make((options) => {
    logs[options.logLevel.label] = (logs[options.logLevel.label] ?? 0) + 1
  })
  const logger = Layer.merge(
    Logger.replace(Logger.defaultLogger, Logger.zip(discard, counting)),
    Logger.minimumLogLevel(LogLevel.Info)
  )
  const layer = Layer.merge(LlmLive.layer, logger).pipe(
    Layer.provide(Layer.setConfigProvider(ConfigProvider.fromMap(new Map(Object.entries(config)))))
  )
  return { runtime: ManagedRuntime.make(layer), logs, logBytes: () => bytes }
}

/**
 * The configuration that turns every policy on without letting any of them wait: limits far above
 * what a benchmark sends (the highest each variable accepts), a long timeout, three retries. Logging
 * keeps its defaults: the call line at debug, below the application's info level.
 */
export const allPolicies = (baseURL: string): Record<string, string> => ({
  OPENAI_API_KEY: "sk-bench-not-a-real-key",
  OPENAI_BASE_URL: baseURL,
  LLM_PROVIDER: "openai",
  LLM_DEFAULT_MODEL: "sim-gpt",
  LLM_TIMEOUT_MS: "30000",
  LLM_MAX_RETRIES: "3",
  LLM_RATE_LIMIT_RPM: "1000000",
  LLM_RATE_LIMIT_TPM: "1000000000",
  LLM_MAX_CONCURRENCY: "100000"
})
