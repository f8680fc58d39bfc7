/**
 * The OpenAI provider: the `Llm` service on the official `openai` client (Chat Completions).
 *
 * @example
 * import { Effect, Redacted } from "effect"
 * import { Llm, OpenAi } from "@clearside/llm"
 *
 * const program = Llm.complete({ messages: [{ role: "user", content: "hi" }] }).pipe(
 *   Effect.provide(OpenAi.layer({ apiKey: Redacted.make("sk-...") }))
 * )
 *
 * @since 0.1.0
 */
import { Config, type ConfigError, Effect, Layer, type Redacted, Stream } from "effect"
import * as Llm from "./Llm.js"
import { ConnectionError } from "./LlmError.js"

/**
 * How to reach OpenAI.
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
export const defaultModel = "gpt-4o-mini"

/**
 * Builds the OpenAI service.
 *
 * @since 0.1.0
 * @category Constructors
 */
export const make = (_options: Options): Effect.Effect<Llm.Service> =>
  Effect.succeed({
    complete: () => Effect.fail(new ConnectionError({ provider: "openai", message: "not implemented" })),
    stream: () => Stream.fail(new ConnectionError({ provider: "openai", message: "not implemented" }))
  })

/**
 * The OpenAI provider as the `Llm` layer.
 *
 * @since 0.1.0
 * @category Layers
 */
export const layer = (options: Options): Layer.Layer<Llm.Llm> =>
  Layer.effect(
    Llm.Llm,
    Effect.map(make(options), (service) => Llm.router({ providers: { openai: service }, defaultProvider: "openai" }))
  )

/**
 * The OpenAI provider configured from `OPENAI_API_KEY`, `OPENAI_BASE_URL` and `LLM_DEFAULT_MODEL`.
 *
 * @since 0.1.0
 * @category Layers
 */
export const layerConfig: Layer.Layer<Llm.Llm, ConfigError.ConfigError> = Layer.unwrapEffect(
  Effect.map(
    Config.all({
      apiKey: Config.redacted("OPENAI_API_KEY"),
      baseURL: Config.option(Config.string("OPENAI_BASE_URL")),
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
