/**
 * The Anthropic provider: an `Llm.Provider` on the official `@anthropic-ai/sdk` client (Messages API).
 *
 * The SDK's own retries are off, its timeout is a day and its own tracing is off: retry, time limits
 * and spans belong to this library, and interrupting a call aborts its HTTP request. System messages
 * become `system`; `max_tokens`, which the API requires, defaults to {@link defaultMaxTokens}.
 * Thinking blocks are the answer's `reasoning` (with the signature to send them back), tool-use
 * blocks its `toolCalls`; `tool` messages become `tool_result` blocks and `cache: true` on a part
 * sets `cache_control`. Anthropic's narrower ranges (`temperature` 0 to 1, a thinking budget of at
 * least 1024 tokens and below `maxTokens`) are checked before anything is sent. A stream ends at `message_stop`, whether or not
 * the server then closes. Every failure is an `LlmError`.
 *
 * @example
 * import { Effect, Redacted } from "effect"
 * import { Anthropic, Llm } from "@clearside/llm"
 *
 * const program = Llm.complete({
 *   messages: [
 *     { role: "system", content: "Answer in one line." },
 *     { role: "user", content: "Say hi" }
 *   ]
 * }).pipe(Effect.provide(Anthropic.layer({ apiKey: Redacted.make(process.env.ANTHROPIC_API_KEY ?? "") })))
 *
 * @since 0.1.0
 */
import AnthropicSdk from "@anthropic-ai/sdk"
import type { Layer} from "effect";
import { type ConfigError, Effect, Redacted } from "effect"
import * as Answer from "./internal/answer.js"
import * as AnthropicWire from "./internal/anthropicWire.js"
import * as ProviderConfig from "./internal/providerConfig.js"
import * as Redaction from "./internal/redaction.js"
import * as SdkCall from "./internal/sdkCall.js"
import * as Transport from "./internal/transport.js"
import type * as Llm from "./Llm.js"
import * as LlmRequest from "./LlmRequest.js"

/**
 * How to reach Anthropic. `baseURL` defaults to `https://api.anthropic.com`, `model` to
 * {@link defaultModel}, `maxTokens` (used when a request sets none) to {@link defaultMaxTokens}.
 *
 * @example
 * import { Redacted } from "effect"
 * import type { Anthropic } from "@clearside/llm"
 *
 * const options: Anthropic.Options = { apiKey: Redacted.make("sk-ant-..."), model: "claude-haiku-4-5", maxTokens: 1024 }
 *
 * @since 0.1.0
 * @category Models
 */
export interface Options {
  readonly apiKey: Redacted.Redacted<string>
  readonly baseURL?: string
  readonly model?: string
  readonly maxTokens?: number
  /**
   * How structured output (`Llm.generateObject`) is asked for: `"native"` (`output_config.format`),
   * `"tool"` (a forced tool named after the schema, whose input is the answer), or `"auto"` (the
   * default): native on the models that support it (Claude Opus 4.1, the 4.5 generation and later),
   * else the tool.
   */
  readonly structuredOutput?: "auto" | "native" | "tool"
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
 * import { Anthropic } from "@clearside/llm"
 * Anthropic.providerName // "anthropic"
 *
 * @since 0.1.0
 * @category Constants
 */
export const providerName = "anthropic"

/**
 * The model used when neither the request nor the options name one.
 *
 * @example
 * import { Anthropic } from "@clearside/llm"
 * Anthropic.defaultModel // "claude-sonnet-4-6"
 *
 * @since 0.1.0
 * @category Constants
 */
export const defaultModel = "claude-sonnet-4-6"

/**
 * `max_tokens` sent when a request has no `maxTokens` (the Messages API requires the field).
 *
 * @example
 * import { Anthropic } from "@clearside/llm"
 * Anthropic.defaultMaxTokens // 4096
 *
 * @since 0.1.0
 * @category Constants
 */
export const defaultMaxTokens = 4096

/**
 * The endpoint used when the options name none.
 *
 * @example
 * import { Anthropic } from "@clearside/llm"
 * Anthropic.defaultBaseURL // "https://api.anthropic.com"
 *
 * @since 0.1.0
 * @category Constants
 */
export const defaultBaseURL = "https://api.anthropic.com"

/** Effectively no SDK timeout: time limits are the `Timeout` policy's (kept below Node's 2^31-1 ms timer limit). */
const sdkTimeoutMs = 24 * 60 * 60 * 1000

const sdkErrors = {
  APIError: AnthropicSdk.APIError,
  APIConnectionError: AnthropicSdk.APIConnectionError,
  APIConnectionTimeoutError: AnthropicSdk.APIConnectionTimeoutError
}

/**
 * Builds the Anthropic provider; the SDK client is created once, here. `call(request, "whole")`
 * asks for one JSON message, `call(request, "streamed")` for server-sent events; both come back as
 * answer parts.
 *
 * @example
 * import { Effect, Redacted } from "effect"
 * import { Anthropic, Llm } from "@clearside/llm"
 *
 * const answer = Effect.gen(function* () {
 *   const claude = yield* Anthropic.make({ apiKey: Redacted.make("sk-ant-...") })
 *   return yield* Llm.fromProvider(claude).complete({ messages: [{ role: "user", content: "hi" }] })
 * })
 *
 * @since 0.1.0
 * @category Constructors
 */
export const make = (options: Options): Effect.Effect<Llm.Provider> =>
  Effect.sync(() => {
    const secret = Redacted.value(options.apiKey)
    const client = new AnthropicSdk({
      apiKey: secret,
      baseURL: options.baseURL ?? defaultBaseURL,
      maxRetries: 0,
      timeout: sdkTimeoutMs,
      logLevel: "off",
      openTelemetry: false,
      fetch: Transport.keepErrorBodies(options.fetch),
      defaultHeaders: Transport.headerText(options.headers),
      ...(options.query === undefined ? {} : { defaultQuery: { ...options.query } })
    })
    const scrub = Redaction.make([options.apiKey, ...Transport.headerSecrets(options.headers), ...(options.secrets ?? [])])
    const caller: SdkCall.Caller = { provider: providerName, scrub, sdk: sdkErrors }
    const configuredModel = options.model ?? defaultModel
    const maxTokens = options.maxTokens ?? defaultMaxTokens
    const errorContext = { provider: providerName, now: 0, scrub }
    const call: Llm.Call = (request, mode) => {
      const outOfRange = LlmRequest.checkLimits(request, providerName, LlmRequest.anthropicLimits)
      if (outOfRange !== undefined) return Answer.failed(outOfRange)
      const model = request.model ?? configuredModel
      const structured = AnthropicWire.structuredOutputFor(model, options.structuredOutput ?? "auto")
      const jsonTool = AnthropicWire.jsonToolOf(request, structured)
      const readWhole: SdkCall.ReadWhole = (body) => AnthropicWire.response(body, errorContext, model, jsonTool)
      if (mode === "whole") {
        const body = AnthropicWire.requestBody(request, model, maxTokens, structured)
        return SdkCall.whole(caller, (signal) => client.messages.create(body, { signal }), readWhole)
      }
      const body = AnthropicWire.streamBody(request, model, maxTokens, structured)
      return SdkCall.stream(
        caller,
        (signal) => client.messages.create(body, { signal }).asResponse(),
        () => AnthropicWire.streamState(providerName, model, scrub, jsonTool),
        readWhole
      )
    }
    return { name: providerName, model: configuredModel, call }
  })

/**
 * The Anthropic provider as the `Llm` layer. Requests are validated (`LlmRequest.decode`) before
 * they are sent.
 *
 * @example
 * import { Effect, Redacted } from "effect"
 * import { Anthropic, Llm } from "@clearside/llm"
 *
 * const main = Llm.complete({ messages: [{ role: "user", content: "hi" }] }).pipe(
 *   Effect.provide(Anthropic.layer({ apiKey: Redacted.make("sk-ant-..."), model: "claude-haiku-4-5" }))
 * )
 *
 * @since 0.1.0
 * @category Layers
 */
export const layer = (options: Options): Layer.Layer<Llm.Llm> => ProviderConfig.layer(make(options))

/**
 * The Anthropic provider configured from the environment: `ANTHROPIC_API_KEY` (required, read as
 * `Redacted`), `ANTHROPIC_BASE_URL` and `LLM_DEFAULT_MODEL` (optional).
 *
 * @example
 * import { Effect } from "effect"
 * import { Anthropic, Llm } from "@clearside/llm"
 *
 * const main = Llm.complete({ messages: [{ role: "user", content: "hi" }] }).pipe(
 *   Effect.provide(Anthropic.layerConfig)
 * )
 *
 * @since 0.1.0
 * @category Layers
 */
export const layerConfig: Layer.Layer<Llm.Llm, ConfigError.ConfigError> = ProviderConfig.keyedLayerFromConfig(
  "anthropic",
  "ANTHROPIC_API_KEY",
  layer
)
