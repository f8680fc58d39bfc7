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
import * as ToolArguments from "./toolArguments.js"
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

type WireMessage = OpenAI.Chat.ChatCompletionMessageParam

const imageUrl = (part: LlmRequest.ImagePart): string =>
  part.url ?? `data:${part.mediaType ?? "image/png"};base64,${part.data ?? ""}`

const textOf = (parts: ReadonlyArray<LlmRequest.Part>): string => {
  let text = ""
  for (const part of parts) if (part.type === "text") text += part.text
  return text
}

/**
 * A message as Chat Completions messages: user images become `image_url` parts (base64 as a
 * `data:` URL), assistant tool calls `tool_calls` (reasoning is not sent back: Chat Completions
 * takes none), and each tool result its own `tool` message. `cache` marks are dropped.
 */
const pushMessage = (into: Array<WireMessage>, message: LlmRequest.Message): void => {
  const content = message.content
  if (typeof content === "string") {
    into.push({ role: message.role, content } as WireMessage)
    return
  }
  switch (message.role) {
    case "system":
      into.push({ role: "system", content: content.map((part) => ({ type: "text" as const, text: textOf([part]) })) })
      return
    case "user":
      into.push({
        role: "user",
        content: content.map((part): OpenAI.Chat.ChatCompletionContentPart =>
          part.type === "image"
            ? { type: "image_url", image_url: { url: imageUrl(part) } }
            : { type: "text", text: textOf([part]) }
        )
      })
      return
    case "assistant": {
      const text = textOf(content)
      const calls: Array<OpenAI.Chat.ChatCompletionMessageToolCall> = []
      for (const part of content) {
        if (part.type === "tool-call") {
          calls.push({ id: part.id, type: "function", function: { name: part.name, arguments: ToolArguments.text(part.arguments) } })
        }
      }
      // Only a message with tool calls may have no content.
      const assistant: OpenAI.Chat.ChatCompletionAssistantMessageParam = {
        role: "assistant",
        content: text === "" && calls.length > 0 ? null : text
      }
      if (calls.length > 0) assistant.tool_calls = calls
      into.push(assistant)
      return
    }
    case "tool":
      for (const part of content) {
        if (part.type === "tool-result") {
          into.push({ role: "tool", tool_call_id: part.id, content: ToolArguments.resultText(part.result) })
        }
      }
      return
  }
}

const toolChoice = (choice: LlmRequest.ToolChoice): OpenAI.Chat.ChatCompletionToolChoiceOption =>
  typeof choice === "string" ? choice : { type: "function", function: { name: choice.name } }

/**
 * The Chat Completions body for a request: messages mapped by {@link pushMessage}, `tools` as
 * functions, `toolChoice`, `parallelToolCalls` and `reasoning.effort` as `tool_choice`,
 * `parallel_tool_calls` and `reasoning_effort` (a `reasoning.budgetTokens` has no Chat Completions
 * field and is not sent).
 *
 * @internal
 */
export const requestBody = (
  request: LlmRequest.LlmRequest,
  model: string,
  maxTokensField: MaxTokensField,
  structuredOutput: StructuredOutput = "json_schema"
): OpenAI.Chat.ChatCompletionCreateParamsNonStreaming => {
  const messages: Array<WireMessage> = []
  for (const message of request.messages) pushMessage(messages, message)
  const body: OpenAI.Chat.ChatCompletionCreateParamsNonStreaming = { model, messages }
  if (request.temperature !== undefined) body.temperature = request.temperature
  if (request.topP !== undefined) body.top_p = request.topP
  if (request.stop !== undefined) body.stop = request.stop as Array<string>
  if (request.maxTokens !== undefined) body[maxTokensField] = request.maxTokens
  if (request.tools !== undefined && request.tools.length > 0) {
    body.tools = request.tools.map((tool) => ({
      type: "function",
      function: {
        name: tool.name,
        ...(tool.description !== undefined ? { description: tool.description } : {}),
        parameters: tool.parameters as Record<string, unknown>
      }
    }))
  }
  if (request.toolChoice !== undefined) body.tool_choice = toolChoice(request.toolChoice)
  if (request.parallelToolCalls !== undefined) body.parallel_tool_calls = request.parallelToolCalls
  if (request.reasoning?.effort !== undefined) body.reasoning_effort = request.reasoning.effort
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
  const message: Record<string, unknown> = Predicate.isRecord(choice.message) ? choice.message : {}
  const content = message.content
  if (content !== null && content !== undefined && typeof content !== "string") {
    return Either.left(parseError(provider, "text content"))
  }
  const toolCalls: Array<LlmRequest.ResponseToolCall> = []
  if (Array.isArray(message.tool_calls)) {
    for (const raw of message.tool_calls as Array<unknown>) {
      if (!Predicate.isRecord(raw) || !Predicate.isRecord(raw.function)) continue
      const args = raw.function.arguments
      const argumentsText = typeof args === "string" ? args : args === undefined || args === null ? "" : JSON.stringify(args)
      toolCalls.push({
        id: typeof raw.id === "string" && raw.id !== "" ? raw.id : `call_${toolCalls.length}`,
        name: typeof raw.function.name === "string" ? raw.function.name : "",
        arguments: ToolArguments.parse(argumentsText),
        argumentsText
      })
    }
  }
  const reasoning = reasoningText(message)
  const refusal = typeof message.refusal === "string" && message.refusal !== "" ? message.refusal : undefined
  const scrub = ctx.scrub ?? Redaction.shapesOnly
  return Either.right({
    id: typeof body.id === "string" ? scrub(body.id, Redaction.maxFieldLength) : "",
    provider,
    model: typeof body.model === "string" && body.model !== "" ? scrub(body.model, Redaction.maxFieldLength) : requestedModel,
    content: content ?? "",
    toolCalls,
    ...(reasoning !== undefined ? { reasoning } : {}),
    ...(refusal !== undefined ? { refusal } : {}),
    finishReason: refusal !== undefined ? "refusal" : finishReason(choice.finish_reason),
    usage: usage(body.usage) ?? noUsage
  })
}

/** Reasoning as compatible endpoints send it: DeepSeek and xAI as `reasoning_content`, Groq and others as `reasoning`. */
const reasoningText = (message: Record<string, unknown>): string | undefined => {
  const text = message.reasoning_content ?? message.reasoning
  return typeof text === "string" && text !== "" ? text : undefined
}

interface PendingCall {
  id: string
  name: string
  argumentsText: string
}

/**
 * Per-stream state: turns chunks into `TextDelta`s, `ReasoningDelta`s (`reasoning_content` or
 * `reasoning`), tool-call parts (deltas matched by `index`, else by `id`, else to the last call, so
 * endpoints that omit `index` or `type` work; each call's `ToolCall` once the finish reason
 * arrives) and, at `[DONE]` or the end of the body, the one `Finish`, with the streamed `refusal`
 * (a `ConnectionError` when the stream ended without a finish reason).
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
  let refusal: string | undefined
  let emitted = 0
  let done = false
  // Tool calls being streamed, in order; keyed by `index`, else by `id`, else the last one.
  const calls: Array<PendingCall> = []
  const byKey = new Map<number | string, PendingCall>()
  const onToolCallDelta = (raw: unknown, emit: (part: LlmRequest.LlmStreamEvent) => void) => {
    if (!Predicate.isRecord(raw)) return
    const fn = Predicate.isRecord(raw.function) ? raw.function : {}
    const rawId = typeof raw.id === "string" && raw.id !== "" ? raw.id : undefined
    let call =
      typeof raw.index === "number"
        ? byKey.get(raw.index)
        : rawId !== undefined
          ? byKey.get(rawId)
          : calls[calls.length - 1]
    if (call === undefined) {
      call = { id: rawId ?? `call_${calls.length}`, name: typeof fn.name === "string" ? fn.name : "", argumentsText: "" }
      calls.push(call)
      byKey.set(typeof raw.index === "number" ? raw.index : call.id, call)
      emit({ _tag: "ToolCallStart", id: call.id, name: call.name })
    } else if (call.name === "" && typeof fn.name === "string") {
      call.name = fn.name
    }
    const args = fn.arguments
    const delta = typeof args === "string" ? args : Predicate.isRecord(args) ? JSON.stringify(args) : ""
    if (delta !== "") {
      call.argumentsText += delta
      emit({ _tag: "ToolCallDelta", id: call.id, argumentsDelta: delta })
    }
  }
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
    onEvent: (chunk, emit) => {
      if (!Predicate.isRecord(chunk)) return
      if (id === "" && typeof chunk.id === "string") id = chunk.id
      if (model === "" && typeof chunk.model === "string") model = chunk.model
      const raw = chunk.usage ?? (Predicate.isRecord(chunk.x_groq) ? chunk.x_groq.usage : undefined)
      if (raw !== undefined && raw !== null) reported = usage(raw) ?? reported
      const choice: unknown = Array.isArray(chunk.choices) ? chunk.choices[0] : undefined
      if (!Predicate.isRecord(choice)) return
      const delta = choice.delta
      if (Predicate.isRecord(delta)) {
        const reasoning = reasoningText(delta)
        if (reasoning !== undefined) emit({ _tag: "ReasoningDelta", text: reasoning })
        const text = delta.content
        if (typeof text === "string" && text !== "") {
          emitted += text.length
          emit({ _tag: "TextDelta", text })
        }
        if (typeof delta.refusal === "string" && delta.refusal !== "") refusal = (refusal ?? "") + delta.refusal
        if (Array.isArray(delta.tool_calls)) for (const call of delta.tool_calls as Array<unknown>) onToolCallDelta(call, emit)
      }
      if (typeof choice.finish_reason === "string") {
        reason = finishReason(choice.finish_reason)
        // The arguments of every call are complete once the model says why it stopped.
        for (const call of calls) emit(ToolArguments.toolCall(call.id, call.name, call.argumentsText))
        calls.length = 0
        byKey.clear()
      }
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
            finishReason: refusal !== undefined ? "refusal" : reason,
            ...(refusal !== undefined ? { refusal } : {}),
            usage: reported ?? noUsage
          }),
    done: () => done,
    emitted: () => emitted
  }
}
