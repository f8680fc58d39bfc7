/**
 * Any endpoint that speaks OpenAI's Chat Completions (Groq, Mistral, DeepSeek, xAI, vLLM, Ollama...),
 * as the `Llm` service under a name of your choice.
 *
 * @example
 * import { Effect } from "effect"
 * import { Llm, OpenAiCompatible } from "@clearside/llm"
 *
 * const program = Llm.complete({ messages: [{ role: "user", content: "hi" }] }).pipe(
 *   Effect.provide(OpenAiCompatible.layer({ name: "ollama", baseURL: "http://127.0.0.1:11434/v1", model: "llama3.2" }))
 * )
 *
 * @since 0.1.0
 */
import { Config, type ConfigError, Effect, Layer, type Redacted, Stream } from "effect"
import * as Llm from "./Llm.js"
import { ConnectionError } from "./LlmError.js"

/**
 * How to reach the endpoint. `name` is the provider name requests and errors report.
 *
 * @since 0.1.0
 * @category Models
 */
export interface Options {
  readonly name: string
  readonly baseURL: string
  readonly apiKey?: Redacted.Redacted<string>
  readonly model?: string
}

/**
 * Builds the service for an OpenAI-compatible endpoint.
 *
 * @since 0.1.0
 * @category Constructors
 */
export const make = (options: Options): Effect.Effect<Llm.Service> =>
  Effect.succeed({
    complete: () => Effect.fail(new ConnectionError({ provider: options.name, message: "not implemented" })),
    stream: () => Stream.fail(new ConnectionError({ provider: options.name, message: "not implemented" }))
  })

/**
 * The endpoint as the `Llm` layer.
 *
 * @since 0.1.0
 * @category Layers
 */
export const layer = (options: Options): Layer.Layer<Llm.Llm> =>
  Layer.effect(
    Llm.Llm,
    Effect.map(make(options), (service) =>
      Llm.router({ providers: { [options.name]: service }, defaultProvider: options.name })
    )
  )

/**
 * The endpoint configured from `OPENAI_COMPATIBLE_NAME`, `OPENAI_COMPATIBLE_BASE_URL`,
 * `OPENAI_COMPATIBLE_API_KEY`, `OPENAI_COMPATIBLE_MODEL` (else `LLM_DEFAULT_MODEL`).
 *
 * @since 0.1.0
 * @category Layers
 */
export const layerConfig: Layer.Layer<Llm.Llm, ConfigError.ConfigError> = Layer.unwrapEffect(
  Effect.map(
    Config.all({
      name: Config.string("OPENAI_COMPATIBLE_NAME"),
      baseURL: Config.string("OPENAI_COMPATIBLE_BASE_URL"),
      apiKey: Config.option(Config.redacted("OPENAI_COMPATIBLE_API_KEY")),
      model: Config.option(Config.string("OPENAI_COMPATIBLE_MODEL")).pipe(
        Config.orElse(() => Config.option(Config.string("LLM_DEFAULT_MODEL")))
      )
    }),
    ({ apiKey, baseURL, model, name }) =>
      layer({
        name,
        baseURL,
        ...(apiKey._tag === "Some" ? { apiKey: apiKey.value } : {}),
        ...(model._tag === "Some" ? { model: model.value } : {})
      })
  )
)
