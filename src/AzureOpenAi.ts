/**
 * Azure OpenAI: an `Llm.Provider` named `azure` on the `openai` SDK's `AzureOpenAI` client (Chat
 * Completions). Requests go to `<endpoint>/openai/deployments/<deployment>/chat/completions` with
 * the key in an `api-key` header and `api-version` in the query; the deployment is the model (the
 * request's `model`, else {@link Options.deployment}). An answer Azure's content filter withheld
 * finishes with `content_filter`; a prompt it refused is an `InvalidRequestError` with code
 * `content_filter`. Retries, time limits and errors work as for {@link OpenAi}.
 *
 * @example
 * import { Effect, Redacted } from "effect"
 * import { AzureOpenAi, Llm } from "@clearside/llm"
 *
 * const program = Llm.complete({ messages: [{ role: "user", content: "Say hi" }] }).pipe(
 *   Effect.provide(
 *     AzureOpenAi.layer({
 *       apiKey: Redacted.make(process.env.AZURE_OPENAI_API_KEY ?? ""),
 *       endpoint: "https://my-resource.openai.azure.com",
 *       apiVersion: "2024-10-21",
 *       deployment: "gpt-4o-mini"
 *     })
 *   )
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
 * How to reach an Azure OpenAI resource. `endpoint` is the resource's URL
 * (`https://my-resource.openai.azure.com`), `apiVersion` the `api-version` every request carries,
 * `deployment` the deployment used when a request names no model (without it every request must
 * name one).
 *
 * @example
 * import { Redacted } from "effect"
 * import type { AzureOpenAi } from "@clearside/llm"
 *
 * const options: AzureOpenAi.Options = {
 *   apiKey: Redacted.make("..."),
 *   endpoint: "https://my-resource.openai.azure.com",
 *   apiVersion: "2024-10-21",
 *   deployment: "gpt-4o-mini"
 * }
 *
 * @since 0.1.0
 * @category Models
 */
export interface Options {
  readonly apiKey: Redacted.Redacted<string>
  readonly endpoint: string
  readonly apiVersion: string
  readonly deployment?: string | undefined
  /**
   * Other values to keep out of errors and answers besides `apiKey` and the header values: other
   * providers' keys and headers (`LlmLive` passes `LlmConfig.secrets`).
   */
  readonly secrets?: ReadonlyArray<Redacted.Redacted<string>> | undefined
  /** Headers sent with every request; every value is kept out of messages like the key. */
  readonly headers?: Readonly<Record<string, string | Redacted.Redacted<string>>> | undefined
  /** Query parameters sent with every request, besides `api-version`. */
  readonly query?: Readonly<Record<string, string>> | undefined
  /** The `fetch` the SDK client uses (a proxy agent, mutual TLS); the global `fetch` by default. */
  readonly fetch?: ((input: string | URL | Request, init?: RequestInit) => Promise<Response>) | undefined
}

/**
 * The provider name requests and errors report.
 *
 * @example
 * import { AzureOpenAi } from "@clearside/llm"
 * AzureOpenAi.providerName // "azure"
 *
 * @since 0.1.0
 * @category Constants
 */
export const providerName = "azure"

/**
 * Builds the Azure OpenAI provider; the SDK client is created once, here. `maxTokens` is sent as
 * `max_completion_tokens`, as for OpenAI.
 *
 * @example
 * import { Effect, Redacted } from "effect"
 * import { AzureOpenAi, Llm } from "@clearside/llm"
 *
 * const answer = Effect.gen(function* () {
 *   const azure = yield* AzureOpenAi.make({
 *     apiKey: Redacted.make("..."),
 *     endpoint: "https://my-resource.openai.azure.com",
 *     apiVersion: "2024-10-21"
 *   })
 *   return yield* Llm.fromProvider(azure).complete({ model: "gpt-4o-mini", messages: [{ role: "user", content: "hi" }] })
 * })
 *
 * @since 0.1.0
 * @category Constructors
 */
export const make = (options: Options): Effect.Effect<Llm.Provider> =>
  Effect.sync(() =>
    OpenAiService.make({
      provider: providerName,
      baseURL: `${options.endpoint.replace(/\/+$/, "")}/openai`,
      apiKey: Redacted.value(options.apiKey),
      model: options.deployment,
      maxTokensField: "max_completion_tokens",
      headers: options.headers,
      query: options.query,
      fetch: options.fetch,
      secrets: options.secrets,
      azure: { apiVersion: options.apiVersion }
    })
  )

/**
 * The Azure OpenAI provider as the `Llm` layer. Requests are validated (`LlmRequest.decode`)
 * before they are sent.
 *
 * @example
 * import { Effect, Redacted } from "effect"
 * import { AzureOpenAi, Llm } from "@clearside/llm"
 *
 * const main = Llm.complete({ messages: [{ role: "user", content: "hi" }] }).pipe(
 *   Effect.provide(
 *     AzureOpenAi.layer({
 *       apiKey: Redacted.make("..."),
 *       endpoint: "https://my-resource.openai.azure.com",
 *       apiVersion: "2024-10-21",
 *       deployment: "gpt-4o-mini"
 *     })
 *   )
 * )
 *
 * @since 0.1.0
 * @category Layers
 */
export const layer = (options: Options): Layer.Layer<Llm.Llm> => ProviderConfig.layer(make(options))

/**
 * The Azure OpenAI provider configured from the environment, with the SDK's own variable names:
 * `AZURE_OPENAI_API_KEY` (read as `Redacted`), `AZURE_OPENAI_ENDPOINT` and `OPENAI_API_VERSION`
 * (all three required), and `AZURE_OPENAI_DEPLOYMENT` (optional, else `LLM_DEFAULT_MODEL`).
 *
 * @example
 * import { Effect } from "effect"
 * import { AzureOpenAi, Llm } from "@clearside/llm"
 *
 * const main = Llm.complete({ messages: [{ role: "user", content: "hi" }] }).pipe(
 *   Effect.provide(AzureOpenAi.layerConfig)
 * )
 *
 * @since 0.1.0
 * @category Layers
 */
export const layerConfig: Layer.Layer<Llm.Llm, ConfigError.ConfigError> = ProviderConfig.layerFromConfig(
  (config) => {
    const { azure, defaultModel } = config
    if (azure === undefined) return undefined
    // Every configured secret, not only this provider's key, stays out of its errors.
    const deployment = azure.deployment ?? defaultModel
    return { ...azure, ...(deployment === undefined ? {} : { deployment }), secrets: LlmConfig.secrets(config) }
  },
  layer,
  {
    required: "AZURE_OPENAI_API_KEY",
    message: "AZURE_OPENAI_API_KEY, AZURE_OPENAI_ENDPOINT and OPENAI_API_VERSION are required"
  }
)
