/**
 * Any endpoint that speaks OpenAI's Chat Completions (Groq, Mistral, DeepSeek, xAI, vLLM, Ollama...),
 * as an `Llm.Provider` under a name of your choice. A gateway that answers a stream request with a
 * whole JSON completion (streaming turned off) is read as that answer.
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

import { type ConfigError, Effect, type Layer, Redacted } from "effect"
import * as OpenAiService from "./internal/openAiService.js"
import * as ProviderConfig from "./internal/providerConfig.js"
import type * as Llm from "./Llm.js"
import * as LlmConfig from "./LlmConfig.js"

/**
 * How to reach the endpoint. `name` is the provider name requests and errors report; `baseURL`
 * includes the version path (e.g. `https://api.groq.com/openai/v1`). Without `apiKey` no
 * `Authorization` header is sent (local servers such as Ollama or vLLM). Without `model` every
 * request must name one.
 *
 * @example
 * import { Redacted } from "effect"
 * import type { OpenAiCompatible } from "@clearside/llm"
 *
 * const groq: OpenAiCompatible.Options = {
 *   name: "groq",
 *   baseURL: "https://api.groq.com/openai/v1",
 *   apiKey: Redacted.make("gsk_..."),
 *   model: "llama-3.3-70b-versatile"
 * }
 *
 * @since 0.1.0
 * @category Models
 */
export interface Options {
  readonly name: string
  readonly baseURL: string
  readonly apiKey?: Redacted.Redacted<string>
  readonly model?: string
  /**
   * How the endpoint is asked for structured output (`Llm.generateObject`): `"json_schema"` (the
   * default, OpenAI's strict JSON Schema) or `"json_object"` (JSON mode, with the schema stated in
   * the system prompt) for endpoints that know only JSON mode.
   */
  readonly structuredOutput?: "json_schema" | "json_object"
  /**
   * Other values to keep out of errors and answers besides `apiKey` and the header values: other
   * providers' keys and headers (`LlmLive` passes `LlmConfig.secrets`).
   */
  readonly secrets?: ReadonlyArray<Redacted.Redacted<string>>
  /**
   * Headers sent with every request (a gateway's routing or key headers, OpenRouter's ranking
   * headers). Every value is kept out of messages, logs and spans like the key.
   */
  readonly headers?: Readonly<Record<string, string | Redacted.Redacted<string>>> | undefined
  /** Query parameters sent with every request. */
  readonly query?: Readonly<Record<string, string>> | undefined
  /** The `fetch` the SDK client uses (a proxy agent, mutual TLS); the global `fetch` by default. */
  readonly fetch?: ((input: string | URL | Request, init?: RequestInit) => Promise<Response>) | undefined
}

/**
 * Builds the provider for an OpenAI-compatible endpoint; the SDK client is created once, here.
 * `maxTokens` is sent as `max_tokens`, the field compatible endpoints know. Configured without a
 * model, the provider's `model` is `""` and a request naming none fails with an
 * `InvalidRequestError` on `model`.
 *
 * @example
 * import { Effect } from "effect"
 * import { Llm, OpenAiCompatible } from "@clearside/llm"
 *
 * const answer = Effect.gen(function* () {
 *   const local = yield* OpenAiCompatible.make({ name: "ollama", baseURL: "http://127.0.0.1:11434/v1", model: "llama3.2" })
 *   return yield* Llm.fromProvider(local).complete({ messages: [{ role: "user", content: "hi" }] })
 * })
 *
 * @since 0.1.0
 * @category Constructors
 */
export const make = (options: Options): Effect.Effect<Llm.Provider> =>
  Effect.sync(() =>
    OpenAiService.make({
      provider: options.name,
      baseURL: options.baseURL,
      apiKey: options.apiKey === undefined ? undefined : Redacted.value(options.apiKey),
      model: options.model,
      maxTokensField: "max_tokens",
      headers: options.headers,
      query: options.query,
      fetch: options.fetch,
      structuredOutput: options.structuredOutput,
      secrets: options.secrets
    })
  )

/**
 * The endpoint as the `Llm` layer, under its `name`. Requests are validated (`LlmRequest.decode`)
 * before they are sent.
 *
 * @example
 * import { Effect, Redacted } from "effect"
 * import { Llm, OpenAiCompatible } from "@clearside/llm"
 *
 * const main = Llm.complete({ messages: [{ role: "user", content: "hi" }] }).pipe(
 *   Effect.provide(
 *     OpenAiCompatible.layer({
 *       name: "mistral",
 *       baseURL: "https://api.mistral.ai/v1",
 *       apiKey: Redacted.make("..."),
 *       model: "mistral-small-latest"
 *     })
 *   )
 * )
 *
 * @since 0.1.0
 * @category Layers
 */
export const layer = (options: Options): Layer.Layer<Llm.Llm> => ProviderConfig.layer(make(options))

/**
 * The endpoint configured from the environment: `OPENAI_COMPATIBLE_NAME` and
 * `OPENAI_COMPATIBLE_BASE_URL` (required), `OPENAI_COMPATIBLE_API_KEY` (optional, read as
 * `Redacted`), `OPENAI_COMPATIBLE_MODEL` (optional, else `LLM_DEFAULT_MODEL`).
 *
 * @example
 * import { Effect } from "effect"
 * import { Llm, OpenAiCompatible } from "@clearside/llm"
 *
 * const main = Llm.complete({ messages: [{ role: "user", content: "hi" }] }).pipe(
 *   Effect.provide(OpenAiCompatible.layerConfig)
 * )
 *
 * @since 0.1.0
 * @category Layers
 */
export const layerConfig: Layer.Layer<Llm.Llm, ConfigError.ConfigError> = ProviderConfig.layerFromConfig(
  ({ defaultModel, openaiCompatible, ...config }) =>
    openaiCompatible === undefined
      ? undefined
      : {
          ...openaiCompatible,
          ...(openaiCompatible.model === undefined && defaultModel !== undefined ? { model: defaultModel } : {}),
          secrets: LlmConfig.secrets({ ...config, openaiCompatible })
        },
  layer,
  { required: "OPENAI_COMPATIBLE_BASE_URL", message: "OPENAI_COMPATIBLE_NAME and OPENAI_COMPATIBLE_BASE_URL are required" }
)
