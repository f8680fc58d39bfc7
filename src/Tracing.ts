/**
 * Spans for `Llm` calls with the OpenTelemetry GenAI attributes, through the application's own
 * tracer (`Effect.makeSpan`): the host runtime decides where they go (e.g. `@effect/opentelemetry`;
 * see `examples/otel.ts`).
 *
 * {@link make} with `level: "call"` opens one span per call, named `chat {model}` (`chat` when the
 * request names no model), with the request's `gen_ai.request.*` attributes and, when the
 * `Finish` arrives, its `gen_ai.response.*` and `gen_ai.usage.*` attributes; a failure sets
 * `error.type` to the error's tag. With `level: "attempt"` it opens a child span `llm.attempt` per
 * provider attempt, numbered by `llm.attempt.number`. Put the call level outside the retry policy
 * and the attempt level inside it. Attempts are counted by a call-level `Tracing` or `Logging`
 * policy that records the call; with none, every attempt is number 1. A span covers the whole stream of parts, so `complete` and
 * `stream` are traced alike.
 *
 * Error messages that reach a span (and the caller) have secrets scrubbed: anything shaped like a
 * provider key or bearer token, and the values of the keys passed as `secrets`.
 *
 * Spans are made only when the program runs with a tracer of its own (`@effect/opentelemetry`,
 * `Effect.withTracer`): under Effect's built-in default tracer, which exports spans nowhere, none
 * are made (the check is one comparison per call), so an untraced program does not pay for them.
 *
 * @example
 * import { Effect, Layer } from "effect"
 * import { Llm, LlmMock, Retry, Tracing } from "@clearside/llm"
 *
 * const traced = Effect.gen(function* () {
 *   const policies = [yield* Tracing.make(), yield* Retry.make(), yield* Tracing.make({ level: "attempt" })]
 *   return Llm.fromCall(Llm.compose(LlmMock.echo().call, policies))
 * })
 * const program = Llm.complete({ model: "gpt-4o", messages: [{ role: "user", content: "hi" }] }).pipe(
 *   Effect.provide(Layer.effect(Llm.Llm, traced))
 * )
 *
 * @since 0.1.0
 */
import { Config, type ConfigError, Effect, type Layer, type Redacted } from "effect"
import * as Instrument from "./internal/instrument.js"
import * as Redaction from "./internal/redaction.js"
import * as Llm from "./Llm.js"
import type * as LlmRequest from "./LlmRequest.js"

/**
 * Options of {@link make}. Defaults: `level` `"call"`, no extra secrets.
 *
 * @example
 * import { Redacted } from "effect"
 * import type { Tracing } from "@clearside/llm"
 * const options: Tracing.Options = { level: "attempt", secrets: [Redacted.make("my-self-hosted-key")] }
 *
 * @since 0.1.0
 * @category Models
 */
export interface Options {
  /** A span per call (`"call"`, outside the retry policy) or per provider attempt (`"attempt"`, inside it). */
  readonly level?: "call" | "attempt" | undefined
  /** Key values to scrub from error messages, besides anything shaped like a provider key. */
  readonly secrets?: ReadonlyArray<Redacted.Redacted<string>> | undefined
}

/**
 * The span name for a request: `chat {model}`, or `chat` when it names no model.
 *
 * @example
 * import { Tracing } from "@clearside/llm"
 * Tracing.spanName({ model: "gpt-4o", messages: [{ role: "user", content: "hi" }] }) // "chat gpt-4o"
 *
 * @since 0.1.0
 * @category Attributes
 */
export const spanName: (request: LlmRequest.LlmRequest) => string = Instrument.spanName

/**
 * The GenAI attributes known before the call: operation, provider, model and sampling settings.
 *
 * @example
 * import { Tracing } from "@clearside/llm"
 * Tracing.requestAttributes({ provider: "openai", model: "gpt-4o", maxTokens: 64, messages: [{ role: "user", content: "hi" }] })
 * // { "gen_ai.operation.name": "chat", "gen_ai.provider.name": "openai", "gen_ai.request.model": "gpt-4o", "gen_ai.request.max_tokens": 64 }
 *
 * @since 0.1.0
 * @category Attributes
 */
export const requestAttributes: (request: LlmRequest.LlmRequest) => Record<string, unknown> =
  Instrument.requestAttributes

/**
 * The GenAI attributes of an answer (a whole response or a stream's `Finish`).
 *
 * @example
 * import { Tracing } from "@clearside/llm"
 * Tracing.responseAttributes({
 *   id: "chatcmpl-1", provider: "openai", model: "gpt-4o-2024-08-06", content: "hi", finishReason: "stop",
 *   usage: { inputTokens: 3, outputTokens: 1, totalTokens: 4 }, toolCalls: []
 * })["gen_ai.response.finish_reasons"] // ["stop"]
 *
 * @since 0.1.0
 * @category Attributes
 */
export const responseAttributes: (answer: LlmRequest.LlmResponse | LlmRequest.Finish) => Record<string, unknown> =
  Instrument.responseAttributes

/**
 * The tracing policy: a `chat {model}` span per call (`level: "call"`), or an `llm.attempt` span
 * per provider attempt with `llm.attempt.number` (1 for the first), a child of the call's
 * (`level: "attempt"`).
 *
 * @example
 * import { Effect } from "effect"
 * import { Llm, LlmMock, Tracing } from "@clearside/llm"
 *
 * const traced = Effect.map(Tracing.make(), (tracing) => Llm.fromCall(tracing(LlmMock.echo().call)))
 *
 * @since 0.1.0
 * @category Constructors
 */
export const make = (options: Options = {}): Effect.Effect<Llm.Policy> =>
  Effect.sync(() => Instrument.make({ level: options.level ?? "call", trace: true, secrets: options.secrets }))

/**
 * {@link make} as a layer over the `Llm` in context.
 *
 * @example
 * import { Layer } from "effect"
 * import { LlmMock, Tracing } from "@clearside/llm"
 * const traced = Tracing.layer().pipe(Layer.provide(Tracing.layer({ level: "attempt" })), Layer.provide(LlmMock.layerEcho()))
 *
 * @since 0.1.0
 * @category Layers
 */
export const layer = (options?: Options): Layer.Layer<Llm.Llm, never, Llm.Llm> => Llm.layerPolicy(make(options))

/**
 * The provider keys found in the environment (`OPENAI_API_KEY`, `ANTHROPIC_API_KEY`,
 * `OPENAI_COMPATIBLE_API_KEY`), as the `secrets` to scrub.
 *
 * @example
 * import { Effect } from "effect"
 * import { Tracing } from "@clearside/llm"
 * const secrets = Effect.runSync(Tracing.secretsConfig)
 *
 * @since 0.1.0
 * @category Config
 */
export const secretsConfig: Config.Config<ReadonlyArray<Redacted.Redacted<string>>> = Redaction.secretsConfig

/**
 * The tracing options of the environment: the provider keys to scrub (see {@link secretsConfig}).
 *
 * @example
 * import { Effect } from "effect"
 * import { Tracing } from "@clearside/llm"
 * const options = Effect.runSync(Tracing.config)
 *
 * @since 0.1.0
 * @category Config
 */
export const config: Config.Config<Options> = Config.map(secretsConfig, (secrets): Options => ({ secrets }))

/**
 * {@link layer} with the options of {@link config}.
 *
 * @example
 * import { Layer } from "effect"
 * import { LlmMock, Tracing } from "@clearside/llm"
 * const traced = Tracing.layerConfig.pipe(Layer.provide(LlmMock.layerEcho()))
 *
 * @since 0.1.0
 * @category Layers
 */
export const layerConfig: Layer.Layer<Llm.Llm, ConfigError.ConfigError, Llm.Llm> = Llm.layerPolicy(
  Effect.flatMap(config, make)
)
