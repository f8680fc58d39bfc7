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
export const requestBody = (
  request: LlmRequest.LlmRequest,
  model: string,
  defaultMaxTokens: number
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
  defaultMaxTokens: number
): Omit<Body, "stream"> & Anthropic.MessageCreateParamsStreaming => ({ ...requestBody(request, model, defaultMaxTokens), stream: true })

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
  requestedModel: string
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
    if (Predicate.isRecord(block) && block.type === "text" && typeof block.text === "string") content += block.text
  }
  const scrub = ctx.scrub ?? Redaction.shapesOnly
  return Either.right({
    id: typeof body.id === "string" ? scrub(body.id, Redaction.maxFieldLength) : "",
    provider,
    model: typeof body.model === "string" && body.model !== "" ? scrub(body.model, Redaction.maxFieldLength) : requestedModel,
    content,
    finishReason: finishReason(body.stop_reason),
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
  scrub: Redaction.Scrub = Redaction.shapesOnly
): StreamState => {
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
          return Predicate.isRecord(event.delta) && event.delta.type === "text_delta" ? text(event.delta.text) : undefined
        case "content_block_start":
          return Predicate.isRecord(event.content_block) && event.content_block.type === "text"
            ? text(event.content_block.text)
            : undefined
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
            reason = finishReason(event.delta.stop_reason)
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
