/**
 * The OpenAI provider: an `Llm.Provider` on the official `openai` client (Chat Completions).
 *
 * The SDK's own retries are off and its timeout is a day: retry and time limits belong to this
 * library's policies, and interrupting a call aborts its HTTP request. Every failure is an
 * `LlmError`; usage keeps cached and reasoning tokens; streams always ask for usage
 * (`stream_options.include_usage`) and end at `[DONE]`, whether or not the server then closes.
 *
 * @example
 * import { Effect, Redacted } from "effect"
 * import { Llm, OpenAi } from "@clearside/llm"
 *
 * const program = Llm.complete({ messages: [{ role: "user", content: "Say hi" }] }).pipe(
 *   Effect.provide(OpenAi.layer({ apiKey: Redacted.make(process.env.OPENAI_API_KEY ?? "") }))
 * )
 *
 * @since 0.1.0
 */
import type { Layer} from "effect";
import { type ConfigError, Effect, Redacted } from "effect"
import * as OpenAiService from "./internal/openAiService.js"
import * as ProviderConfig from "./internal/providerConfig.js"
import type * as Llm from "./Llm.js"

/**
 * How to reach OpenAI. `baseURL` defaults to `https://api.openai.com/v1`, `model` to
 * {@link defaultModel}.
 *
 * @example
 * import { Redacted } from "effect"
 * import type { OpenAi } from "@clearside/llm"
 *
 * const options: OpenAi.Options = { apiKey: Redacted.make("sk-..."), model: "gpt-4.1-mini" }
 *
 * @since 0.1.0
 * @category Models
 */
export interface Options {
  readonly apiKey: Redacted.Redacted<string>
  readonly baseURL?: string
  readonly model?: string
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
 * The provider name requests and errors report.
 *
 * @example
 * import { OpenAi } from "@clearside/llm"
 * OpenAi.providerName // "openai"
 *
 * @since 0.1.0
 * @category Constants
 */
export const providerName = "openai"

/**
 * The model used when neither the request nor the options name one.
 *
 * @example
 * import { OpenAi } from "@clearside/llm"
 * OpenAi.defaultModel // "gpt-4o-mini"
 *
 * @since 0.1.0
 * @category Constants
 */
export const defaultModel = "gpt-4o-mini"

/**
 * The endpoint used when the options name none.
 *
 * @example
 * import { OpenAi } from "@clearside/llm"
 * OpenAi.defaultBaseURL // "https://api.openai.com/v1"
 *
 * @since 0.1.0
 * @category Constants
 */
export const defaultBaseURL = "https://api.openai.com/v1"

/**
 * Builds the OpenAI provider; the SDK client is created once, here. `call(request, "whole")` asks
 * for one JSON completion, `call(request, "streamed")` for server-sent events; both come back as
 * answer parts. `maxTokens` is sent as `max_completion_tokens` (OpenAI's reasoning models reject
 * `max_tokens`).
 *
 * @example
 * import { Effect, Redacted } from "effect"
 * import { Llm, OpenAi } from "@clearside/llm"
 *
 * const answer = Effect.gen(function* () {
 *   const openai = yield* OpenAi.make({ apiKey: Redacted.make("sk-...") })
 *   return yield* Llm.fromProvider(openai).complete({ messages: [{ role: "user", content: "hi" }] })
 * })
 *
 * @since 0.1.0
 * @category Constructors
 */
export const make = (options: Options): Effect.Effect<Llm.Provider> =>
  Effect.sync(() =>
    OpenAiService.make({
      provider: providerName,
      baseURL: options.baseURL ?? defaultBaseURL,
      apiKey: Redacted.value(options.apiKey),
      model: options.model ?? defaultModel,
      maxTokensField: "max_completion_tokens",
      headers: options.headers,
      query: options.query,
      fetch: options.fetch,
      secrets: options.secrets
    })
  )

/**
 * The OpenAI provider as the `Llm` layer. Requests are validated (`LlmRequest.decode`) before they
 * are sent.
 *
 * @example
 * import { Effect, Redacted } from "effect"
 * import { Llm, OpenAi } from "@clearside/llm"
 *
 * const main = Llm.complete({ messages: [{ role: "user", content: "hi" }] }).pipe(
 *   Effect.provide(OpenAi.layer({ apiKey: Redacted.make("sk-..."), model: "gpt-4.1-mini" }))
 * )
 *
 * @since 0.1.0
 * @category Layers
 */
export const layer = (options: Options): Layer.Layer<Llm.Llm> => ProviderConfig.layer(make(options))

/**
 * The OpenAI provider configured from the environment: `OPENAI_API_KEY` (required, read as
 * `Redacted`), `OPENAI_BASE_URL` and `LLM_DEFAULT_MODEL` (optional).
 *
 * @example
 * import { Effect } from "effect"
 * import { Llm, OpenAi } from "@clearside/llm"
 *
 * const main = Llm.complete({ messages: [{ role: "user", content: "hi" }] }).pipe(
 *   Effect.provide(OpenAi.layerConfig)
 * )
 *
 * @since 0.1.0
 * @category Layers
 */
export const layerConfig: Layer.Layer<Llm.Llm, ConfigError.ConfigError> = ProviderConfig.keyedLayerFromConfig(
  "openai",
  "OPENAI_API_KEY",
  layer
)
