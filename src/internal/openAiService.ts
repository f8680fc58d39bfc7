/**
 * The provider over an `openai` client, shared by the OpenAI and OpenAI-compatible providers.
 *
 * @internal
 */
import { Redacted, Stream } from "effect"
import OpenAI, { AzureOpenAI } from "openai"
import type * as Llm from "../Llm.js"
import { InvalidRequestError } from "../LlmError.js"
import * as OpenAiWire from "./openAiWire.js"
import * as Redaction from "./redaction.js"
import * as SdkCall from "./sdkCall.js"
import * as Transport from "./transport.js"

/**
 * Effectively no SDK timeout: time limits are the `Timeout` policy's. Kept below Node's 2^31-1 ms
 * timer limit.
 *
 * @internal
 */
export const sdkTimeoutMs = 24 * 60 * 60 * 1000

/**
 * What the shared provider needs.
 *
 * @internal
 */
export interface Settings {
  readonly provider: string
  readonly baseURL: string
  /** `undefined` sends no `Authorization` header at all. */
  readonly apiKey: string | undefined
  /** `undefined` when there is no default: every request must name a model. */
  readonly model: string | undefined
  readonly maxTokensField: OpenAiWire.MaxTokensField
  readonly headers?: Transport.HeaderValues | undefined
  readonly query?: Readonly<Record<string, string>> | undefined
  readonly fetch?: Transport.Fetch | undefined
  /** Azure OpenAI: the `api-key` header, `api-version` on every request, the model as deployment. */
  readonly azure?: { readonly apiVersion: string } | undefined
  readonly structuredOutput?: OpenAiWire.StructuredOutput | undefined
  /** Other values to keep out of errors and answers besides `apiKey` (other keys, secret headers). */
  readonly secrets?: ReadonlyArray<Redacted.Redacted<string>> | undefined
}

const sdkErrors = {
  APIError: OpenAI.APIError,
  APIConnectionError: OpenAI.APIConnectionError,
  APIConnectionTimeoutError: OpenAI.APIConnectionTimeoutError
}

/**
 * Builds the client once and returns the provider. Without a default model its `model` is `""`,
 * and a request naming none fails with an `InvalidRequestError` on `model`.
 *
 * @internal
 */
export const make = (settings: Settings): Llm.Provider => {
  const options = {
    // The SDK insists on a credential; without a key its header is removed below.
    apiKey: settings.apiKey ?? "unused",
    baseURL: settings.baseURL,
    organization: null,
    project: null,
    maxRetries: 0,
    timeout: sdkTimeoutMs,
    logLevel: "off" as const,
    fetch: Transport.keepErrorBodies(settings.fetch),
    defaultHeaders: {
      // Without a key no Authorization header, unless the custom headers carry one of their own.
      ...(settings.apiKey === undefined ? { Authorization: null } : {}),
      ...Transport.headerText(settings.headers)
    },
    ...(settings.query === undefined ? {} : { defaultQuery: { ...settings.query } })
  }
  const client =
    settings.azure === undefined
      ? new OpenAI(options)
      : new AzureOpenAI({ ...options, apiVersion: settings.azure.apiVersion })
  const provider = settings.provider
  const scrub = Redaction.make([
    ...(settings.apiKey === undefined ? [] : [Redacted.make(settings.apiKey)]),
    ...Transport.headerSecrets(settings.headers),
    ...(settings.secrets ?? [])
  ])
  const caller: SdkCall.Caller = { provider, scrub, sdk: sdkErrors }
  const noModel = new InvalidRequestError({
    provider,
    field: "model",
    message: `Invalid request: ${provider} has no default model; name one in the request or the provider options`
  })
  const errorContext = { provider, now: 0, scrub }
  const call: Llm.Call = (request, mode) => {
    const model = request.model || settings.model
    if (model === undefined || model === "") return Stream.fail(noModel)
    const readWhole: SdkCall.ReadWhole = (body) => OpenAiWire.response(body, errorContext, model)
    if (mode === "whole") {
      const body = OpenAiWire.requestBody(request, model, settings.maxTokensField, settings.structuredOutput)
      return SdkCall.whole(caller, (signal) => client.chat.completions.create(body, { signal }), readWhole)
    }
    const body = OpenAiWire.streamBody(request, model, settings.maxTokensField, settings.structuredOutput)
    return SdkCall.stream(
      caller,
      (signal) => client.chat.completions.create(body, { signal }).asResponse(),
      () => OpenAiWire.streamState(provider, model, scrub),
      readWhole
    )
  }
  return { name: provider, model: settings.model ?? "", call }
}
