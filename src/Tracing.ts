/**
 * Spans for `Llm` calls with the OpenTelemetry GenAI attributes, through Effect's own tracer: the
 * host runtime decides where they go (e.g. `@effect/opentelemetry`; see `examples/otel.ts`).
 *
 * {@link wrap} opens one span per call, named `chat {model}` (`chat` when the request names no
 * model), with the request's `gen_ai.request.*` attributes and, when the answer arrives, its
 * `gen_ai.response.*` and `gen_ai.usage.*` attributes; a failure sets `error.type` to the error's
 * tag. {@link wrapAttempt} opens a child span `llm.attempt` per provider attempt, numbered by
 * `llm.attempt.number`. Put `wrap` outside the retry policy and `wrapAttempt` inside it.
 *
 * Error messages that reach a span (and the caller) have secrets scrubbed: anything shaped like a
 * provider key or bearer token, and the values of the keys passed as `secrets`.
 *
 * Spans are made only when the program runs with a tracer of its own (`@effect/opentelemetry`,
 * `Effect.withTracer`): under Effect's built-in default tracer, which exports spans nowhere, none
 * are made, so an untraced program does not pay for them.
 *
 * @example
 * import { Effect, Layer } from "effect"
 * import { Llm, LlmMock, Retry, Tracing } from "@clearside/llm"
 *
 * const traced = Layer.succeed(
 *   Llm.Llm,
 *   Tracing.wrap(Retry.make()(Tracing.wrapAttempt(LlmMock.echo())))
 * )
 * const program = Llm.complete({ model: "gpt-4o", messages: [{ role: "user", content: "hi" }] }).pipe(
 *   Effect.provide(traced)
 * )
 *
 * @since 0.1.0
 */
import type { Config, ConfigError, Redacted } from "effect"
import { Effect, Layer } from "effect"
import * as Instrument from "./internal/instrument.js"
import * as Redaction from "./internal/redaction.js"
import * as Llm from "./Llm.js"
import type * as LlmRequest from "./LlmRequest.js"

/**
 * Options of {@link wrap} and {@link wrapAttempt}.
 *
 * @example
 * import { Redacted } from "effect"
 * import type { Tracing } from "@clearside/llm"
 * const options: Tracing.Options = { secrets: [Redacted.make("my-self-hosted-key")] }
 *
 * @since 0.1.0
 * @category Models
 */
export interface Options {
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
 *   usage: { inputTokens: 3, outputTokens: 1, totalTokens: 4 }
 * })["gen_ai.response.finish_reasons"] // ["stop"]
 *
 * @since 0.1.0
 * @category Attributes
 */
export const responseAttributes: (answer: LlmRequest.LlmResponse | LlmRequest.Finish) => Record<string, unknown> =
  Instrument.responseAttributes

/**
 * Opens a `chat {model}` span around each call. Place it outside the retry policy, so that the
 * attempt spans of {@link wrapAttempt} are its children.
 *
 * @example
 * import { Llm, LlmMock, Tracing } from "@clearside/llm"
 * const traced: Llm.Service = Tracing.wrap(LlmMock.echo())
 *
 * @since 0.1.0
 * @category Combinators
 */
export const wrap = (service: Llm.Service, options: Options = {}): Llm.Service =>
  Instrument.make(service, { level: "call", trace: true, secrets: options.secrets })

/**
 * Opens an `llm.attempt` span around each provider attempt, with `llm.attempt.number` (1 for the
 * first). Place it inside the retry policy, around the provider.
 *
 * @example
 * import { Llm, LlmMock, Retry, Tracing } from "@clearside/llm"
 * const traced: Llm.Service = Tracing.wrap(Retry.make()(Tracing.wrapAttempt(LlmMock.echo())))
 *
 * @since 0.1.0
 * @category Combinators
 */
export const wrapAttempt = (service: Llm.Service, options: Options = {}): Llm.Service =>
  Instrument.make(service, { level: "attempt", trace: true, secrets: options.secrets })

/**
 * {@link wrap} as a layer over the `Llm` in context.
 *
 * @example
 * import { Layer } from "effect"
 * import { LlmMock, Tracing } from "@clearside/llm"
 * const traced = Tracing.layer().pipe(Layer.provide(LlmMock.layerEcho()))
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
 * import { LlmMock, Tracing } from "@clearside/llm"
 * const traced = Tracing.layerAttempt().pipe(Layer.provide(LlmMock.layerEcho()))
 *
 * @since 0.1.0
 * @category Layers
 */
export const layerAttempt = (options: Options = {}): Layer.Layer<Llm.Llm, never, Llm.Llm> =>
  Layer.effect(
    Llm.Llm,
    Effect.map(Llm.Llm, (service) => wrapAttempt(service, options))
  )

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
 * {@link layer} scrubbing the provider keys of the environment (see {@link secretsConfig}).
 *
 * @example
 * import { Layer } from "effect"
 * import { LlmMock, Tracing } from "@clearside/llm"
 * const traced = Tracing.layerConfig.pipe(Layer.provide(LlmMock.layerEcho()))
 *
 * @since 0.1.0
 * @category Layers
 */
export const layerConfig: Layer.Layer<Llm.Llm, ConfigError.ConfigError, Llm.Llm> = Layer.unwrapEffect(
  Effect.map(secretsConfig, (secrets) => layer({ secrets }))
)
