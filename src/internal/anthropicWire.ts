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
import type * as SdkCall from "./sdkCall.js"
import * as ServerSentEvents from "./serverSentEvents.js"

/**
 * The Messages body. `temperature` and `top_p` are still accepted by the API (the SDK's types no
 * longer list them), so they are added here.
 *
 * @internal
 */
export type Body = Anthropic.MessageCreateParamsNonStreaming & { temperature?: number; top_p?: number }

/**
 * The Messages body for a request: system messages become `system` (joined by a blank line),
 * `maxTokens` falls back to `defaultMaxTokens` (the API requires it), `stop` becomes
 * `stop_sequences`.
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
  let system: string | undefined
  const messages: Array<Anthropic.MessageParam> = []
  for (const message of request.messages) {
    if (message.role === "system") system = system === undefined ? message.content : `${system}\n\n${message.content}`
    else messages.push(message as Anthropic.MessageParam)
  }
  const body: Body = {
    model,
    max_tokens: request.maxTokens ?? defaultMaxTokens,
    messages
  }
  if (system !== undefined) body.system = system
  if (request.temperature !== undefined) body.temperature = request.temperature
  if (request.topP !== undefined) body.top_p = request.topP
  if (request.stop !== undefined) body.stop_sequences = request.stop as Array<string>
  const format = request.responseFormat
  if (format !== undefined) {
    const schema = JsonSchema.closed(format.schema) as Anthropic.Tool.InputSchema
    if (structuredOutput === "native") body.output_config = { format: { type: "json_schema", schema } }
    else {
      body.tools = [{ name: format.name, input_schema: schema, ...(format.description !== undefined ? { description: format.description } : {}) }]
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

/**
 * Reads a whole (non-streamed) message. Only `text` blocks are answer text (thinking and tool use
 * blocks are not). A `{ type: "error" }` body maps like an error event.
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
  for (const block of body.content as Array<unknown>) {
    if (!Predicate.isRecord(block)) continue
    if (jsonTool === undefined && block.type === "text" && typeof block.text === "string") content += block.text
    else if (jsonTool !== undefined && block.type === "tool_use" && block.name === jsonTool) content += JSON.stringify(block.input ?? {})
  }
  const scrub = ctx.scrub ?? Redaction.shapesOnly
  return Either.right({
    id: typeof body.id === "string" ? scrub(body.id, Redaction.maxFieldLength) : "",
    provider,
    model: typeof body.model === "string" && body.model !== "" ? scrub(body.model, Redaction.maxFieldLength) : requestedModel,
    content,
    finishReason: jsonTool !== undefined && body.stop_reason === "tool_use" ? "stop" : finishReason(body.stop_reason),
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
 * input, so nothing is doubled or leaked.
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
  let stopped = false
  let emitted = 0
  const raw: RawUsage = {}
  const text = (value: unknown): LlmRequest.TextDelta | undefined => {
    if (typeof value !== "string" || value === "") return undefined
    emitted += value.length
    return { _tag: "TextDelta", text: value }
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
    onEvent: (event) => {
      if (!Predicate.isRecord(event)) return undefined
      switch (event.type) {
        case "content_block_delta":
          if (!Predicate.isRecord(event.delta)) return undefined
          if (jsonTool !== undefined) {
            return event.delta.type === "input_json_delta" && jsonBlocks.has(event.index) ? text(event.delta.partial_json) : undefined
          }
          return event.delta.type === "text_delta" ? text(event.delta.text) : undefined
        case "content_block_start": {
          const block = event.content_block
          if (!Predicate.isRecord(block)) return undefined
          if (jsonTool !== undefined) {
            if (block.type === "tool_use" && block.name === jsonTool) jsonBlocks.add(event.index)
            return undefined
          }
          return block.type === "text" ? text(block.text) : undefined
        }
        case "message_start": {
          const message = event.message
          if (Predicate.isRecord(message)) {
            if (typeof message.id === "string") id = message.id
            if (typeof message.model === "string") model = message.model
            mergeUsage(raw, message.usage)
          }
          return undefined
        }
        case "message_delta":
          if (Predicate.isRecord(event.delta) && typeof event.delta.stop_reason === "string") {
            reason = jsonTool !== undefined && event.delta.stop_reason === "tool_use" ? "stop" : finishReason(event.delta.stop_reason)
          }
          mergeUsage(raw, event.usage)
          return undefined
        case "message_stop":
          stopped = true
          return undefined
        default:
          return undefined
      }
    },
    finish: () =>
      !stopped
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
            finishReason: reason ?? "other",
            usage: usage(raw)
          }),
    done: () => stopped,
    emitted: () => emitted
  }
}
