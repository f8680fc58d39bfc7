/**
 * OpenAI Chat Completions wire format: request bodies out, completions and stream chunks in. Shared by
 * the OpenAI and OpenAI-compatible providers. Answers are read defensively (endpoints differ and the
 * SDK does not validate) without a schema pass on the hot path.
 *
 * @internal
 */
import { Either, Predicate } from "effect"
import type OpenAI from "openai"
import { ConnectionError, type LlmError, ResponseParseError } from "../LlmError.js"
import type * as LlmRequest from "../LlmRequest.js"
import * as JsonSchema from "./jsonSchema.js"
import * as ProviderErrors from "./providerErrors.js"
import * as Redaction from "./redaction.js"
import type * as SdkCall from "./sdkCall.js"
import * as ServerSentEvents from "./serverSentEvents.js"

/**
 * Which body field carries `maxTokens`: OpenAI's own API wants `max_completion_tokens` (its reasoning
 * models reject `max_tokens`); most compatible endpoints only know `max_tokens`.
 *
 * @internal
 */
export type MaxTokensField = "max_completion_tokens" | "max_tokens"

/**
 * The Chat Completions body for a request. Messages are passed as they are: the shapes match.
 *
 * @internal
 */
export const requestBody = (
  request: LlmRequest.LlmRequest,
  model: string,
  maxTokensField: MaxTokensField,
  structuredOutput: StructuredOutput = "json_schema"
): OpenAI.Chat.ChatCompletionCreateParamsNonStreaming => {
  const body: OpenAI.Chat.ChatCompletionCreateParamsNonStreaming = {
    model,
    messages: request.messages as Array<OpenAI.Chat.ChatCompletionMessageParam>
  }
  if (request.temperature !== undefined) body.temperature = request.temperature
  if (request.topP !== undefined) body.top_p = request.topP
  if (request.stop !== undefined) body.stop = request.stop as Array<string>
  if (request.maxTokens !== undefined) body[maxTokensField] = request.maxTokens
  const format = request.responseFormat
  if (format !== undefined) {
    if (structuredOutput === "json_object") {
      body.response_format = { type: "json_object" }
      body.messages = withSchemaInstruction(body.messages, format)
    } else {
      body.response_format = {
        type: "json_schema",
        json_schema: {
          name: format.name,
          schema: JsonSchema.strict(format.schema),
          strict: true,
          ...(format.description !== undefined ? { description: format.description } : {})
        }
      }
    }
  }
  return body
}

/**
 * How an endpoint is asked for structured output: `json_schema` (OpenAI's strict JSON Schema, the
 * default) or `json_object` (JSON mode, with the schema stated in the system prompt) for endpoints
 * that know only JSON mode.
 *
 * @internal
 */
export type StructuredOutput = "json_schema" | "json_object"

/** JSON mode: the schema goes into the (first) system message. */
const withSchemaInstruction = (
  messages: ReadonlyArray<OpenAI.Chat.ChatCompletionMessageParam>,
  format: LlmRequest.ResponseFormat
): Array<OpenAI.Chat.ChatCompletionMessageParam> => {
  const instruction =
    `Answer with one JSON document only, no other text. It must match this JSON Schema` +
    `${format.description !== undefined ? ` (${format.description})` : ""}:\n${JSON.stringify(format.schema)}`
  const [first, ...rest] = messages
  if (first !== undefined && first.role === "system" && typeof first.content === "string") {
    return [{ role: "system", content: `${first.content}\n\n${instruction}` }, ...rest]
  }
  return [{ role: "system", content: instruction }, ...messages]
}

/**
 * The streaming body: the same, plus `stream: true` and `stream_options.include_usage` so the last
 * chunk reports usage.
 *
 * @internal
 */
export const streamBody = (
  request: LlmRequest.LlmRequest,
  model: string,
  maxTokensField: MaxTokensField,
  structuredOutput: StructuredOutput = "json_schema"
): OpenAI.Chat.ChatCompletionCreateParamsStreaming => ({
  ...requestBody(request, model, maxTokensField, structuredOutput),
  stream: true,
  stream_options: { include_usage: true }
})

/**
 * Normalised finish reason: `stop`, `length`, `tool_calls` (also the legacy `function_call`),
 * `content_filter`; anything else is `other`.
 *
 * @internal
 */
export const finishReason = (reason: unknown): LlmRequest.FinishReason => {
  switch (reason) {
    case "stop":
      return "stop"
    case "length":
      return "length"
    case "tool_calls":
    case "function_call":
      return "tool_calls"
    case "content_filter":
      return "content_filter"
    default:
      return "other"
  }
}

/** A token count; a negative, non-finite or non-numeric one is absent, never fed into cost. */
const count = (record: unknown, key: string): number | undefined => {
  const value = Predicate.isRecord(record) ? record[key] : undefined
  return typeof value === "number" && Number.isFinite(value) && value >= 0 ? value : undefined
}

/**
 * Normalised usage. `prompt_tokens` already includes cached tokens; `total_tokens` is kept as the
 * provider gave it (xAI's counts reasoning on top of prompt and completion). `undefined` when the
 * value is not a usage object.
 *
 * @internal
 */
export const usage = (raw: unknown): LlmRequest.Usage | undefined => {
  const inputTokens = count(raw, "prompt_tokens")
  const outputTokens = count(raw, "completion_tokens")
  if (inputTokens === undefined || outputTokens === undefined || !Predicate.isRecord(raw)) return undefined
  const cached = count(raw.prompt_tokens_details, "cached_tokens")
  const reasoning = count(raw.completion_tokens_details, "reasoning_tokens")
  return {
    inputTokens,
    outputTokens,
    totalTokens: count(raw, "total_tokens") ?? inputTokens + outputTokens,
    ...(cached !== undefined ? { cachedInputTokens: cached } : {}),
    ...(reasoning !== undefined ? { reasoningTokens: reasoning } : {})
  }
}

/**
 * Usage a provider that sent none is reported with.
 *
 * @internal
 */
export const noUsage: LlmRequest.Usage = { inputTokens: 0, outputTokens: 0, totalTokens: 0 }

const parseError = (provider: string, what: string) =>
  new ResponseParseError({ provider, message: `${provider} sent a completion without ${what}` })

/**
 * Reads a whole (non-streamed) completion. A body that is an `{ error }` object maps like an error
 * event; anything else that is not a completion is a `ResponseParseError`.
 *
 * @internal
 */
export const response = (
  body: unknown,
  ctx: ProviderErrors.Context,
  requestedModel: string
): Either.Either<LlmRequest.LlmResponse, LlmError> => {
  const provider = ctx.provider
  if (!Predicate.isRecord(body)) return Either.left(parseError(provider, "a JSON object body"))
  if (!Array.isArray(body.choices)) {
    return Either.left(
      Predicate.isRecord(body.error)
        ? ProviderErrors.fromErrorEvent(body, undefined, ctx)
        : parseError(provider, "choices")
    )
  }
  // Asking again gets the same empty list: not worth a retry.
  if (body.choices.length === 0) {
    return Either.left(
      new ResponseParseError({ provider, message: `${provider} sent a completion with no choices`, retryable: false })
    )
  }
  const choice: unknown = body.choices[0]
  // Azure's content filter may leave out the message of the answer it withheld.
  const filtered = Predicate.isRecord(choice) && choice.finish_reason === "content_filter" && choice.message === undefined
  if (!Predicate.isRecord(choice) || (!Predicate.isRecord(choice.message) && !filtered)) {
    return Either.left(parseError(provider, "a message"))
  }
  const content = Predicate.isRecord(choice.message) ? choice.message.content : undefined
  if (content !== null && content !== undefined && typeof content !== "string") {
    return Either.left(parseError(provider, "text content"))
  }
  const scrub = ctx.scrub ?? Redaction.shapesOnly
  return Either.right({
    id: typeof body.id === "string" ? scrub(body.id, Redaction.maxFieldLength) : "",
    provider,
    model: typeof body.model === "string" && body.model !== "" ? scrub(body.model, Redaction.maxFieldLength) : requestedModel,
    content: content ?? "",
    finishReason: finishReason(choice.finish_reason),
    usage: usage(body.usage) ?? noUsage
  })
}

/**
 * Per-stream state: turns chunks into `TextDelta`s and, at `[DONE]` or the end of the body, the one
 * `Finish` (a `ConnectionError` when the stream ended without a finish reason).
 *
 * @internal
 */
export type StreamState = SdkCall.StreamState<unknown>

/**
 * A fresh {@link StreamState}. Usage is taken from whichever chunk carries it (a last chunk with
 * empty `choices`, the finish chunk itself, or Groq's `x_groq.usage`); later usage wins.
 * The answer's id and model go through `scrub` (its text is the caller's, kept as it is).
 *
 * @internal
 */
export const streamState = (
  provider: string,
  requestedModel: string,
  scrub: Redaction.Scrub = Redaction.shapesOnly
): StreamState => {
  let id = ""
  let model = ""
  let reason: LlmRequest.FinishReason | undefined
  let reported: LlmRequest.Usage | undefined
  let emitted = 0
  let done = false
  return {
    // As the SDK reads them: nothing after `[DONE]`, Assistants events skipped, and a chunk with an
    // `error` is the provider's error.
    decode: (message) => {
      if (done) return undefined
      if (message.data.startsWith("[DONE]")) {
        done = true
        return undefined
      }
      if (message.event?.startsWith("thread.") === true) return undefined
      const chunk: unknown = JSON.parse(message.data)
      if (Predicate.isRecord(chunk) && Predicate.isTruthy(chunk.error)) throw new ServerSentEvents.ErrorEvent(chunk.error)
      return chunk
    },
    onEvent: (chunk) => {
      if (!Predicate.isRecord(chunk)) return undefined
      if (id === "" && typeof chunk.id === "string") id = chunk.id
      if (model === "" && typeof chunk.model === "string") model = chunk.model
      const raw = chunk.usage ?? (Predicate.isRecord(chunk.x_groq) ? chunk.x_groq.usage : undefined)
      if (raw !== undefined && raw !== null) reported = usage(raw) ?? reported
      const choice: unknown = Array.isArray(chunk.choices) ? chunk.choices[0] : undefined
      if (!Predicate.isRecord(choice)) return undefined
      if (typeof choice.finish_reason === "string") reason = finishReason(choice.finish_reason)
      const text = Predicate.isRecord(choice.delta) ? choice.delta.content : undefined
      if (typeof text !== "string" || text === "") return undefined
      emitted += text.length
      return { _tag: "TextDelta", text }
    },
    finish: () =>
      reason === undefined
        ? Either.left(
            new ConnectionError({
              provider,
              message: `${provider} stream ended before the answer was finished`,
              ...(emitted > 0 ? { textEmitted: emitted } : {})
            })
          )
        : Either.right({
            _tag: "Finish",
            id: scrub(id, Redaction.maxFieldLength),
            provider,
            model: model === "" ? requestedModel : scrub(model, Redaction.maxFieldLength),
            finishReason: reason,
            usage: reported ?? noUsage
          }),
    done: () => done,
    emitted: () => emitted
  }
}
