/**
 * The `Llm` service over an `openai` client, shared by the OpenAI and OpenAI-compatible providers.
 *
 * @internal
 */
import { Effect, Stream } from "effect"
import OpenAI from "openai"
import type * as Llm from "../Llm.js"
import { InvalidRequestError } from "../LlmError.js"
import type * as LlmRequest from "../LlmRequest.js"
import * as NativeLimits from "./nativeLimits.js"
import * as OpenAiWire from "./openAiWire.js"
import * as SdkCall from "./sdkCall.js"

/**
 * Effectively no SDK timeout: this library owns timeouts. Kept below Node's 2^31-1 ms timer limit.
 *
 * @internal
 */
export const sdkTimeoutMs = 24 * 60 * 60 * 1000

/**
 * What the shared service needs.
 *
 * @internal
 */
export interface Settings {
  readonly provider: string
  readonly baseURL: string
  /** `undefined` sends no `Authorization` header at all. */
  readonly apiKey: string | undefined
  readonly model: string | undefined
  readonly maxTokensField: OpenAiWire.MaxTokensField
}

const sdkErrors = {
  APIError: OpenAI.APIError,
  APIConnectionError: OpenAI.APIConnectionError,
  APIConnectionTimeoutError: OpenAI.APIConnectionTimeoutError
}

/**
 * Builds the client once and returns the service.
 *
 * @internal
 */
export const make = (settings: Settings): Llm.Service => {
  const client = new OpenAI({
    // The SDK insists on a credential; without a key the header is removed below.
    apiKey: settings.apiKey ?? "unused",
    baseURL: settings.baseURL,
    organization: null,
    project: null,
    maxRetries: 0,
    timeout: sdkTimeoutMs,
    logLevel: "off",
    ...(settings.apiKey === undefined ? { defaultHeaders: { Authorization: null } } : {})
  })
  const provider = settings.provider
  const caller: SdkCall.Caller = { provider, secret: settings.apiKey, sdk: sdkErrors }
  const noModel = new InvalidRequestError({
    provider,
    field: "model",
    message: `Invalid request: ${provider} has no default model; name one in the request or the provider options`
  })
  const modelOf = (request: { readonly model?: string | undefined }) => request.model ?? settings.model
  const errorContext = { provider, now: 0, secret: settings.apiKey }
  const complete = (request: LlmRequest.LlmRequest, limit?: SdkCall.Limit) => {
    const model = modelOf(request)
    if (model === undefined) return Effect.fail(noModel)
    const body = OpenAiWire.requestBody(request, model, settings.maxTokensField)
    return SdkCall.request(
      caller,
      (signal) => client.chat.completions.create(body, { signal }),
      (completion) => OpenAiWire.response(completion, errorContext, model),
      limit
    )
  }
  const stream = (request: LlmRequest.LlmRequest, limits?: NativeLimits.WaitLimits) => {
    const model = modelOf(request)
    if (model === undefined) return Stream.fail(noModel)
    const body = OpenAiWire.streamBody(request, model, settings.maxTokensField)
    return SdkCall.stream(
      caller,
      (signal) => client.chat.completions.create(body, { signal }).asResponse(),
      () => OpenAiWire.streamState(provider, model),
      limits
    )
  }
  return NativeLimits.attach(
    { complete: (request) => complete(request), stream: (request) => stream(request) },
    { complete: (request, millis, onTimeout) => complete(request, { millis, onTimeout }), stream }
  )
}
