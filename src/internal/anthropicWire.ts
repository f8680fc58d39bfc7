/**
 * Anthropic Messages wire format: request bodies out, messages and stream events in. Answers are
 * read defensively without a schema pass on the hot path.
 *
 * @internal
 */
import type Anthropic from "@anthropic-ai/sdk"
import { Either, Predicate } from "effect"
import { ConnectionError, type LlmError, ResponseParseError } from "../LlmError.js"
import type * as LlmRequest from "../LlmRequest.js"
import * as JsonSchema from "./jsonSchema.js"
import * as ProviderErrors from "./providerErrors.js"
import * as Redaction from "./redaction.js"
import * as ToolArguments from "./toolArguments.js"
import type * as SdkCall from "./sdkCall.js"
import * as ServerSentEvents from "./serverSentEvents.js"

/**
 * The Messages body. `temperature` and `top_p` are still accepted by the API (the SDK's types no
 * longer list them), so they are added here.
 *
 * @internal
 */
export type Body = Anthropic.MessageCreateParamsNonStreaming & { temperature?: number; top_p?: number }

const ephemeral = { type: "ephemeral" } as const

/** A block with its `cache_control` breakpoint when the part asks for one. */
const cached = <B extends object>(block: B, part: { readonly cache?: boolean | undefined }): B =>
  part.cache === true ? { ...block, cache_control: ephemeral } : block

const dataUrl = /^data:(image\/(?:png|jpeg|gif|webp));base64,(.*)$/

const imageBlock = (part: LlmRequest.ImagePart): Anthropic.ImageBlockParam => {
  const inline = part.url === undefined ? undefined : dataUrl.exec(part.url)
  if (inline !== undefined && inline !== null) {
    const mediaType = inline[1] as Anthropic.Base64ImageSource["media_type"]
    return { type: "image", source: { type: "base64", media_type: mediaType, data: inline[2]! } }
  }
  if (part.url !== undefined) return { type: "image", source: { type: "url", url: part.url } }
  return {
    type: "image",
    source: { type: "base64", media_type: part.mediaType ?? "image/png", data: part.data ?? "" }
  }
}

/**
 * A part as a Messages content block: images by base64 or by URL (a `data:` URL as base64),
 * tool calls as `tool_use`, reasoning with its signature as `thinking` (without one it cannot be
 * sent back and is left out), tool results as `tool_result`; `cache: true` adds `cache_control`.
 */
const block = (part: LlmRequest.Part): Anthropic.ContentBlockParam | undefined => {
  switch (part.type) {
    case "text":
      return cached<Anthropic.TextBlockParam>({ type: "text", text: part.text }, part)
    case "image":
      return cached(imageBlock(part), part)
    case "tool-call":
      return cached<Anthropic.ToolUseBlockParam>({ type: "tool_use", id: part.id, name: part.name, input: part.arguments ?? {} }, part)
    case "reasoning":
      return part.signature === undefined || part.signature === ""
        ? undefined
        : { type: "thinking", thinking: part.text, signature: part.signature }
    case "tool-result":
      return cached<Anthropic.ToolResultBlockParam>(
        {
          type: "tool_result",
          tool_use_id: part.id,
          content: ToolArguments.resultText(part.result),
          ...(part.isError === true ? { is_error: true } : {})
        },
        part
      )
  }
}

const blocks = (content: LlmRequest.Message["content"]): string | Array<Anthropic.ContentBlockParam> => {
  if (typeof content === "string") return content
  const out: Array<Anthropic.ContentBlockParam> = []
  for (const part of content) {
    const mapped = block(part)
    if (mapped !== undefined) out.push(mapped)
  }
  return out
}

const asBlocks = (content: string | Array<Anthropic.ContentBlockParam>): Array<Anthropic.ContentBlockParam> =>
  typeof content === "string" ? [{ type: "text", text: content }] : content

/** `effort` as a thinking budget, as LiteLLM maps it. */
const effortBudget = { low: 1024, medium: 2048, high: 4096 } as const

const toolChoice = (
  choice: LlmRequest.ToolChoice | undefined,
  parallel: boolean | undefined
): Anthropic.ToolChoice | undefined => {
  const noParallel = parallel === false ? { disable_parallel_tool_use: true } : {}
  if (choice === undefined) return parallel === false ? { type: "auto", ...noParallel } : undefined
  if (choice === "none") return { type: "none" }
  if (choice === "auto") return { type: "auto", ...noParallel }
  if (choice === "required") return { type: "any", ...noParallel }
  return { type: "tool", name: choice.name, ...noParallel }
}

/**
 * The Messages body for a request: system messages become `system` (joined by a blank line, or
 * text blocks when a part carries `cache`), `tool` messages become user messages of `tool_result`
 * blocks (joined with a user message next to them, as the API wants results right after the
 * call), `maxTokens` falls back to `defaultMaxTokens` (the API requires it; with thinking, the
 * budget is added to it), `stop` becomes `stop_sequences`, `tools` get `input_schema`,
 * `toolChoice` `auto`/`any`/`none`/`tool` and `parallelToolCalls: false`
 * `disable_parallel_tool_use`, `reasoning` `thinking` with `budget_tokens`.
 *
 * @internal
 */
/**
 * How Anthropic is asked for structured output: `native` (`output_config.format`, on the models
 * that support it) or `tool` (a tool named after the schema that the model is made to call; its
 * input is the answer).
 *
 * @internal
 */
export type StructuredOutput = "native" | "tool"

/** Models with native structured output: Claude Opus 4.1, and the 4.5 generation and later. */
const nativeStructuredOutput = /^claude-(?:opus-4-1|(?:opus|sonnet|haiku)-(?:4-[5-9]|[5-9]))/

/**
 * The mode for a model: `auto` is `native` where the model supports it, else `tool`.
 *
 * @internal
 */
export const structuredOutputFor = (model: string, option: "auto" | StructuredOutput): StructuredOutput =>
  option !== "auto" ? option : nativeStructuredOutput.test(model) ? "native" : "tool"

/**
 * The forced tool's name when a request asks for structured output in `tool` mode.
 *
 * @internal
 */
export const jsonToolOf = (request: LlmRequest.LlmRequest, mode: StructuredOutput): string | undefined =>
  request.responseFormat !== undefined && mode === "tool" ? request.responseFormat.name : undefined

export const requestBody = (
  request: LlmRequest.LlmRequest,
  model: string,
  defaultMaxTokens: number,
  structuredOutput: StructuredOutput = "native"
): Body => {
  const system: Array<Anthropic.TextBlockParam> = []
  let systemCached = false
  const messages: Array<Anthropic.MessageParam> = []
  let lastFromTool = false
  for (const message of request.messages) {
    if (message.role === "system") {
      if (typeof message.content === "string") system.push({ type: "text", text: message.content })
      else {
        for (const part of message.content) {
          if (part.type !== "text") continue
          systemCached ||= part.cache === true
          system.push(cached({ type: "text", text: part.text }, part))
        }
      }
      continue
    }
    const role = message.role === "assistant" ? "assistant" : "user"
    const fromTool = message.role === "tool"
    const content = blocks(message.content)
    const previous = messages[messages.length - 1]
    if (previous !== undefined && previous.role === "user" && role === "user" && (fromTool || lastFromTool)) {
      previous.content = [...asBlocks(previous.content), ...asBlocks(content)]
    } else {
      messages.push({ role, content })
    }
    lastFromTool = fromTool
  }
  const budget = request.reasoning === undefined
    ? undefined
    : request.reasoning.budgetTokens ?? effortBudget[request.reasoning.effort ?? "medium"]
  const body: Body = {
    model,
    max_tokens: request.maxTokens ?? (budget === undefined ? defaultMaxTokens : defaultMaxTokens + budget),
    messages
  }
  if (system.length > 0) {
    body.system = systemCached ? system : system.map((b) => b.text).join("\n\n")
  }
  if (request.temperature !== undefined) body.temperature = request.temperature
  if (request.topP !== undefined) body.top_p = request.topP
  if (request.stop !== undefined) body.stop_sequences = request.stop as Array<string>
  if (request.tools !== undefined && request.tools.length > 0) {
    body.tools = request.tools.map((tool) => ({
      name: tool.name,
      ...(tool.description !== undefined ? { description: tool.description } : {}),
      input_schema: tool.parameters as Anthropic.Tool.InputSchema
    }))
  }
  const choice = toolChoice(request.toolChoice, request.parallelToolCalls)
  if (choice !== undefined) body.tool_choice = choice
  if (budget !== undefined) body.thinking = { type: "enabled", budget_tokens: budget }
  const format = request.responseFormat
  if (format !== undefined) {
    const schema = JsonSchema.closed(format.schema) as Anthropic.Tool.InputSchema
    if (structuredOutput === "native") body.output_config = { format: { type: "json_schema", schema } }
    else {
      // The forced tool goes beside the request's own tools.
      body.tools = [
        ...(body.tools ?? []),
        { name: format.name, input_schema: schema, ...(format.description !== undefined ? { description: format.description } : {}) }
      ]
      body.tool_choice = { type: "tool", name: format.name }
    }
  }
  return body
}

/**
 * The streaming body: the same with `stream: true`.
 *
 * @internal
 */
export const streamBody = (
  request: LlmRequest.LlmRequest,
  model: string,
  defaultMaxTokens: number,
  structuredOutput: StructuredOutput = "native"
): Omit<Body, "stream"> & Anthropic.MessageCreateParamsStreaming => ({
  ...requestBody(request, model, defaultMaxTokens, structuredOutput),
  stream: true
})

/**
 * Normalised finish reason: `end_turn` and `stop_sequence` are `stop`, `max_tokens` and
 * `model_context_window_exceeded` are `length`, `tool_use` is `tool_calls`, `refusal` is `refusal`;
 * anything else (`pause_turn`, unknown values) is `other`.
 *
 * @internal
 */
export const finishReason = (reason: unknown): LlmRequest.FinishReason => {
  switch (reason) {
    case "end_turn":
    case "stop_sequence":
      return "stop"
    case "max_tokens":
    case "model_context_window_exceeded":
      return "length"
    case "tool_use":
      return "tool_calls"
    case "refusal":
      return "refusal"
    default:
      return "other"
  }
}

/**
 * Raw token counts as Anthropic reports them; `undefined` where a field was not sent.
 *
 * @internal
 */
export interface RawUsage {
  input?: number | undefined
  output?: number | undefined
  cacheRead?: number | undefined
  cacheCreation?: number | undefined
}

/** A token count; a negative, non-finite or non-numeric one is absent, never fed into cost. */
const count = (record: Record<string, unknown>, key: string): number | undefined => {
  const value = record[key]
  return typeof value === "number" && Number.isFinite(value) && value >= 0 ? value : undefined
}

/**
 * Folds a `usage` object into `into`: fields present in `raw` overwrite (Anthropic's stream counts
 * are cumulative, so the later value wins).
 *
 * @internal
 */
export const mergeUsage = (into: RawUsage, raw: unknown): RawUsage => {
  if (!Predicate.isRecord(raw)) return into
  into.input = count(raw, "input_tokens") ?? into.input
  into.output = count(raw, "output_tokens") ?? into.output
  into.cacheRead = count(raw, "cache_read_input_tokens") ?? into.cacheRead
  into.cacheCreation = count(raw, "cache_creation_input_tokens") ?? into.cacheCreation
  return into
}

/**
 * Normalised usage. Anthropic's `input_tokens` excludes cache reads and cache writes; here
 * `inputTokens` is all input (`input_tokens + cache_read_input_tokens + cache_creation_input_tokens`)
 * as with OpenAI, `cachedInputTokens` the part read from cache, and `totalTokens` input plus output.
 *
 * @internal
 */
export const usage = (raw: RawUsage): LlmRequest.Usage => {
  const inputTokens = (raw.input ?? 0) + (raw.cacheRead ?? 0) + (raw.cacheCreation ?? 0)
  const outputTokens = raw.output ?? 0
  return {
    inputTokens,
    outputTokens,
    totalTokens: inputTokens + outputTokens,
    ...(raw.cacheRead !== undefined ? { cachedInputTokens: raw.cacheRead } : {})
  }
}

const parseError = (provider: string, what: string) =>
  new ResponseParseError({ provider, message: `${provider} sent a message without ${what}` })

/** Why Claude refused: `stop_details.explanation` when it gives one, else the text it wrote (maybe empty). */
const refusalText = (details: unknown, text: string): string =>
  Predicate.isRecord(details) && typeof details.explanation === "string" && details.explanation !== ""
    ? details.explanation
    : text

/**
 * Reads a whole (non-streamed) message. Only `text` blocks are answer text; `thinking` blocks are
 * the reasoning (with the last signature), `tool_use` blocks the tool calls; a refusal's
 * `stop_details.explanation` is the `refusal`. A `{ type: "error" }` body maps like an error event.
 *
 * @internal
 */
export const response = (
  body: unknown,
  ctx: ProviderErrors.Context,
  requestedModel: string,
  jsonTool?: string
): Either.Either<LlmRequest.LlmResponse, LlmError> => {
  const provider = ctx.provider
  if (!Predicate.isRecord(body)) return Either.left(parseError(provider, "a JSON object body"))
  if (!Array.isArray(body.content)) {
    return Either.left(
      body.type === "error" || Predicate.isRecord(body.error)
        ? ProviderErrors.fromErrorEvent(body, undefined, ctx)
        : parseError(provider, "content")
    )
  }
  let content = ""
  let reasoning: string | undefined
  let signature: string | undefined
  const toolCalls: Array<LlmRequest.ResponseToolCall> = []
  for (const block of body.content as Array<unknown>) {
    if (!Predicate.isRecord(block)) continue
    if (block.type === "text" && typeof block.text === "string") {
      if (jsonTool === undefined) content += block.text
    } else if (block.type === "thinking" && typeof block.thinking === "string") {
      reasoning = (reasoning ?? "") + block.thinking
      if (typeof block.signature === "string" && block.signature !== "") signature = block.signature
    } else if (block.type === "tool_use" && jsonTool !== undefined && block.name === jsonTool) {
      content += JSON.stringify(block.input ?? {})
    } else if (block.type === "tool_use") {
      const argumentsText = block.input === undefined ? "{}" : JSON.stringify(block.input)
      toolCalls.push({
        id: typeof block.id === "string" ? block.id : "",
        name: typeof block.name === "string" ? block.name : "",
        arguments: ToolArguments.parse(argumentsText),
        argumentsText
      })
    }
  }
  const reason = finishReason(body.stop_reason)
  const refusal = reason === "refusal" ? refusalText(body.stop_details, content) : undefined
  const scrub = ctx.scrub ?? Redaction.shapesOnly
  return Either.right({
    id: typeof body.id === "string" ? scrub(body.id, Redaction.maxFieldLength) : "",
    provider,
    model: typeof body.model === "string" && body.model !== "" ? scrub(body.model, Redaction.maxFieldLength) : requestedModel,
    content,
    toolCalls,
    ...(reasoning !== undefined ? { reasoning } : {}),
    ...(signature !== undefined ? { reasoningSignature: signature } : {}),
    ...(refusal !== undefined ? { refusal } : {}),
    finishReason: jsonTool !== undefined && body.stop_reason === "tool_use" ? "stop" : reason,
    usage: usage(mergeUsage({}, body.usage))
  })
}

const errorEventBody = (data: string): unknown => {
  try {
    return (JSON.parse(data) as unknown) ?? data
  } catch {
    return data
  }
}

/**
 * Per-stream state: turns events into `TextDelta`s and, at `message_stop`, the one `Finish` (a
 * `ConnectionError` when the body ended before it).
 *
 * @internal
 */
export type StreamState = SdkCall.StreamState<unknown>

/**
 * A fresh {@link StreamState}. Usage starts from `message_start` and `message_delta` values
 * overwrite it. A repeated `message_start` (a restarted message) takes the new id and model; text
 * comes only from `text_delta`s (and non-empty `text` block starts), never from thinking or tool
 * input, so nothing is doubled or leaked. Thinking deltas are `ReasoningDelta`s and a
 * `signature_delta` an empty one carrying the signature; a `tool_use` block is a `ToolCallStart`,
 * its `input_json_delta`s `ToolCallDelta`s and its `content_block_stop` the `ToolCall` (except the
 * forced tool of structured output, whose input is the answer's text).
 * The answer's id and model go through `scrub` (its text is the caller's, kept as it is).
 *
 * @internal
 */
export const streamState = (
  provider: string,
  requestedModel: string,
  scrub: Redaction.Scrub = Redaction.shapesOnly,
  jsonTool?: string
): StreamState => {
  // In structured-output tool mode the forced tool's input is the answer's text.
  const jsonBlocks = new Set<unknown>()
  let id = ""
  let model = ""
  let reason: LlmRequest.FinishReason | undefined
  let details: unknown
  let stopped = false
  let emitted = 0
  let answerText = ""
  const raw: RawUsage = {}
  // Open tool_use blocks by their index; each ends (a `ToolCall`) at its `content_block_stop`.
  const calls = new Map<unknown, { id: string; name: string; argumentsText: string }>()
  const text = (value: unknown, emit: (part: LlmRequest.LlmStreamEvent) => void) => {
    if (typeof value !== "string" || value === "") return
    emitted += value.length
    if (reason === undefined && answerText.length < 4096) answerText += value
    emit({ _tag: "TextDelta", text: value })
  }
  const onDelta = (index: unknown, delta: Record<string, unknown>, emit: (part: LlmRequest.LlmStreamEvent) => void) => {
    switch (delta.type) {
      case "text_delta":
        return text(delta.text, emit)
      case "thinking_delta":
        if (typeof delta.thinking === "string" && delta.thinking !== "") emit({ _tag: "ReasoningDelta", text: delta.thinking })
        return
      case "signature_delta":
        if (typeof delta.signature === "string" && delta.signature !== "") {
          emit({ _tag: "ReasoningDelta", text: "", signature: delta.signature })
        }
        return
      case "input_json_delta": {
        const call = calls.get(index)
        if (call === undefined || typeof delta.partial_json !== "string" || delta.partial_json === "") return
        call.argumentsText += delta.partial_json
        emit({ _tag: "ToolCallDelta", id: call.id, argumentsDelta: delta.partial_json })
        return
      }
    }
  }
  const onStart = (index: unknown, block: Record<string, unknown>, emit: (part: LlmRequest.LlmStreamEvent) => void) => {
    switch (block.type) {
      case "text":
        return text(block.text, emit)
      case "thinking":
        if (typeof block.thinking === "string" && block.thinking !== "") emit({ _tag: "ReasoningDelta", text: block.thinking })
        return
      case "tool_use": {
        const call = {
          id: typeof block.id === "string" ? block.id : "",
          name: typeof block.name === "string" ? block.name : "",
          argumentsText: ""
        }
        calls.set(index, call)
        emit({ _tag: "ToolCallStart", id: call.id, name: call.name })
        return
      }
    }
  }
  return {
    // As the SDK reads them: pings and unnamed events skipped, an `error` event is the provider's
    // error (its data as JSON, or as text when it is not). Nothing after `message_stop` is read:
    // the answer is over.
    decode: (message) => {
      if (stopped) return undefined
      if (message.event === undefined || message.event === "ping") return undefined
      if (message.event === "error") throw new ServerSentEvents.ErrorEvent(errorEventBody(message.data))
      return message.data === "" ? undefined : (JSON.parse(message.data) as unknown)
    },
    onEvent: (event, emit) => {
      if (!Predicate.isRecord(event)) return
      switch (event.type) {
        case "content_block_delta":
          if (!Predicate.isRecord(event.delta)) return
          // In structured-output tool mode the forced tool's input is the answer's text, and text blocks are not.
          if (jsonTool !== undefined) {
            if (event.delta.type === "input_json_delta" && jsonBlocks.has(event.index)) return text(event.delta.partial_json, emit)
            if (event.delta.type === "text_delta") return
          }
          onDelta(event.index, event.delta, emit)
          return
        case "content_block_start": {
          const block = event.content_block
          if (!Predicate.isRecord(block)) return
          if (jsonTool !== undefined) {
            if (block.type === "tool_use" && block.name === jsonTool) {
              jsonBlocks.add(event.index)
              return
            }
            if (block.type === "text") return
          }
          onStart(event.index, block, emit)
          return
        }
        case "content_block_stop": {
          const call = calls.get(event.index)
          if (call === undefined) return
          calls.delete(event.index)
          // An empty input streams no JSON at all: it is `{}`, as in the whole answer.
          emit(ToolArguments.toolCall(call.id, call.name, call.argumentsText === "" ? "{}" : call.argumentsText))
          return
        }
        case "message_start": {
          const message = event.message
          if (Predicate.isRecord(message)) {
            if (typeof message.id === "string") id = message.id
            if (typeof message.model === "string") model = message.model
            mergeUsage(raw, message.usage)
          }
          // A restarted message starts its blocks over.
          calls.clear()
          return
        }
        case "message_delta":
          if (Predicate.isRecord(event.delta) && typeof event.delta.stop_reason === "string") {
            reason = jsonTool !== undefined && event.delta.stop_reason === "tool_use" ? "stop" : finishReason(event.delta.stop_reason)
            details = event.delta.stop_details
          }
          mergeUsage(raw, event.usage)
          return
        case "message_stop":
          stopped = true
          return
        default:
          return
      }
    },
    finish: () => {
      if (!stopped) {
        return Either.left(
          new ConnectionError({
            provider,
            message: `${provider} stream ended before the answer was finished`,
            ...(emitted > 0 ? { textEmitted: emitted } : {})
          })
        )
      }
      const finishReason = reason ?? "other"
      return Either.right({
        _tag: "Finish",
        id: scrub(id, Redaction.maxFieldLength),
        provider,
        model: model === "" ? requestedModel : scrub(model, Redaction.maxFieldLength),
        finishReason,
        ...(finishReason === "refusal" ? { refusal: refusalText(details, answerText) } : {}),
        usage: usage(raw)
      })
    },
    done: () => stopped,
    emitted: () => emitted
  }
}
