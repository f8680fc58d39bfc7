/**
 * The Anthropic provider: the `Llm` service on the official `@anthropic-ai/sdk` client (Messages API).
 *
 * @example
 * import { Effect, Redacted } from "effect"
 * import { Llm, Anthropic } from "@clearside/llm"
 *
 * const program = Llm.complete({ messages: [{ role: "user", content: "hi" }] }).pipe(
 *   Effect.provide(Anthropic.layer({ apiKey: Redacted.make("sk-ant-...") }))
 * )
 *
 * @since 0.1.0
 */
import { Config, type ConfigError, Effect, Layer, type Redacted, Stream } from "effect"
import * as Llm from "./Llm.js"
import { ConnectionError } from "./LlmError.js"

/**
 * How to reach Anthropic.
 *
 * @since 0.1.0
 * @category Models
 */
export interface Options {
  readonly apiKey: Redacted.Redacted<string>
  readonly baseURL?: string
  readonly model?: string
}

/**
 * The model used when neither the request nor the options name one.
 *
 * @since 0.1.0
 * @category Constants
 */
export const defaultModel = "claude-sonnet-4-5"

/**
 * Builds the Anthropic service.
 *
 * @since 0.1.0
 * @category Constructors
 */
export const make = (_options: Options): Effect.Effect<Llm.Service> =>
  Effect.succeed({
    complete: () => Effect.fail(new ConnectionError({ provider: "anthropic", message: "not implemented" })),
    stream: () => Stream.fail(new ConnectionError({ provider: "anthropic", message: "not implemented" }))
  })

/**
 * The Anthropic provider as the `Llm` layer.
 *
 * @since 0.1.0
 * @category Layers
 */
export const layer = (options: Options): Layer.Layer<Llm.Llm> =>
  Layer.effect(
    Llm.Llm,
    Effect.map(make(options), (service) => Llm.router({ providers: { anthropic: service }, defaultProvider: "anthropic" }))
  )

/**
 * The Anthropic provider configured from `ANTHROPIC_API_KEY`, `ANTHROPIC_BASE_URL` and `LLM_DEFAULT_MODEL`.
 *
 * @since 0.1.0
 * @category Layers
 */
export const layerConfig: Layer.Layer<Llm.Llm, ConfigError.ConfigError> = Layer.unwrapEffect(
  Effect.map(
    Config.all({
      apiKey: Config.redacted("ANTHROPIC_API_KEY"),
      baseURL: Config.option(Config.string("ANTHROPIC_BASE_URL")),
      model: Config.option(Config.string("LLM_DEFAULT_MODEL"))
    }),
    ({ apiKey, baseURL, model }) =>
      layer({
        apiKey,
        ...(baseURL._tag === "Some" ? { baseURL: baseURL.value } : {}),
        ...(model._tag === "Some" ? { model: model.value } : {})
      })
  )
)
