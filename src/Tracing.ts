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
import { Context, Effect, Layer, Scope, Stream, Tracer } from "effect"
import * as CallContext from "./internal/callContext.js"
import * as Redaction from "./internal/redaction.js"
import * as Llm from "./Llm.js"
import type { LlmError } from "./LlmError.js"
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
export const spanName = (request: LlmRequest.LlmRequest): string =>
  request.model === undefined ? "chat" : `chat ${request.model}`

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
export const requestAttributes = (request: LlmRequest.LlmRequest): Record<string, unknown> => {
  const attributes: Record<string, unknown> = { "gen_ai.operation.name": "chat" }
  if (request.provider !== undefined) attributes["gen_ai.provider.name"] = request.provider
  if (request.model !== undefined) attributes["gen_ai.request.model"] = request.model
  if (request.maxTokens !== undefined) attributes["gen_ai.request.max_tokens"] = request.maxTokens
  if (request.temperature !== undefined) attributes["gen_ai.request.temperature"] = request.temperature
  if (request.topP !== undefined) attributes["gen_ai.request.top_p"] = request.topP
  return attributes
}

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
export const responseAttributes = (answer: LlmRequest.LlmResponse | LlmRequest.Finish): Record<string, unknown> => {
  const attributes: Record<string, unknown> = {
    "gen_ai.provider.name": answer.provider,
    "gen_ai.response.id": answer.id,
    "gen_ai.response.model": answer.model,
    "gen_ai.response.finish_reasons": [answer.finishReason],
    "gen_ai.usage.input_tokens": answer.usage.inputTokens,
    "gen_ai.usage.output_tokens": answer.usage.outputTokens
  }
  if (answer.usage.cachedInputTokens !== undefined) {
    attributes["gen_ai.usage.cache_read.input_tokens"] = answer.usage.cachedInputTokens
  }
  if (answer.usage.reasoningTokens !== undefined) {
    attributes["gen_ai.usage.reasoning.output_tokens"] = answer.usage.reasoningTokens
  }
  return attributes
}

const setAll = (span: Tracer.Span, attributes: Record<string, unknown>) => {
  for (const key in attributes) span.attribute(key, attributes[key])
}

interface Enter {
  readonly effect: <A, E, R>(f: (n: number) => Effect.Effect<A, E, R>) => Effect.Effect<A, E, R>
  readonly scoped: <A, E, R>(f: (n: number) => Effect.Effect<A, E, R>) => Effect.Effect<A, E, R | Scope.Scope>
}

const traced = (
  service: Llm.Service,
  options: Options,
  span: (request: LlmRequest.LlmRequest, attempt: number) => { readonly name: string; readonly attributes: Record<string, unknown> },
  enter: Enter
): Llm.Service => {
  const scrub = Redaction.make(options.secrets)
  // No stack trace per span: capturing one costs more than the rest of the span.
  const spanOptions = (attributes: Record<string, unknown>) =>
    ({ kind: "client", attributes, captureStackTrace: false }) as const
  const fail = (active: Tracer.Span, error: LlmError) => {
    active.attribute("error.type", error._tag)
    return Redaction.scrubError(scrub, error)
  }
  return {
    complete: (request) =>
      enter.effect((n) => {
        const { attributes, name } = span(request, n)
        return Effect.useSpan(name, spanOptions(attributes), (active) =>
          Effect.withParentSpan(
            Effect.matchEffect(service.complete(request), {
              onSuccess: (response) => {
                setAll(active, responseAttributes(response))
                return Effect.succeed(response)
              },
              onFailure: (error) => Effect.fail(fail(active, error))
            }),
            active
          )
        )
      }),
    stream: (request) =>
      Stream.unwrapScoped(
        enter.scoped((n) => {
          const { attributes, name } = span(request, n)
          return Effect.flatMap(Effect.makeSpanScoped(name, spanOptions(attributes)), (active) =>
            Effect.map(Effect.context<never>(), (context) =>
              service.stream(request).pipe(
                Stream.mapChunks((events) => {
                  for (const event of events) if (event._tag === "Finish") setAll(active, responseAttributes(event))
                  return events
                }),
                Stream.mapError((error) => fail(active, error)),
                // The caller's context plus the span, built once: `Stream.provideService` would add a
                // flatMap that costs on every chunk. The stream's own scope is not passed down.
                Stream.provideContext(Context.add(Context.omit(Scope.Scope)(context), Tracer.ParentSpan, active))
              )
            )
          )
        })
      )
  }
}

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
  traced(
    service,
    options,
    (request) => ({ name: spanName(request), attributes: requestAttributes(request) }),
    { effect: (f) => CallContext.call(() => f(0)), scoped: (f) => CallContext.callScoped(() => f(0)) }
  )

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
  traced(
    service,
    options,
    (request, attempt) => ({
      name: "llm.attempt",
      attributes: { ...requestAttributes(request), "llm.attempt.number": attempt }
    }),
    { effect: CallContext.attempt, scoped: CallContext.attemptScoped }
  )

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
