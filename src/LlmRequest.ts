/**
 * The data that crosses the `Llm` service: requests, responses, token usage and stream events, as
 * `Schema`s from `effect`.
 *
 * Requests are validated with {@link decode} before any provider is called; a bad request fails with
 * an `InvalidRequestError` that names the field and the rule it broke.
 *
 * @example
 * import { LlmRequest } from "@clearside/llm"
 *
 * const request: LlmRequest.LlmRequest = {
 *   messages: [
 *     { role: "system", content: "Answer in one line." },
 *     { role: "user", content: "What is a rate limit?" }
 *   ],
 *   maxTokens: 64,
 *   metadata: { agent: "moderator" }
 * }
 *
 * @since 0.1.0
 */
import { Duration, Effect, Either, ParseResult, Schema } from "effect"
import { InvalidRequestError } from "./LlmError.js"

const nonEmptyString = (what: string) =>
  Schema.String.pipe(Schema.minLength(1, { message: () => `${what} must be a non-empty string` }))

const positiveInteger = (field: string) =>
  Schema.Number.pipe(
    Schema.filter((n) => Number.isSafeInteger(n) && n > 0, {
      message: () => `${field} must be a positive integer`
    })
  )

const numberBetween = (field: string, min: number, max: number) =>
  Schema.Number.pipe(
    Schema.filter((n) => Number.isFinite(n) && n >= min && n <= max, {
      message: () => `${field} must be a number between ${min} and ${max}`
    })
  )

/**
 * Who speaks a message: `system` instructions, the `user`, the model (`assistant`), or a `tool`
 * answering one of the model's tool calls.
 *
 * @example
 * import { LlmRequest } from "@clearside/llm"
 * const role: LlmRequest.Role = "user"
 *
 * @since 0.1.0
 * @category Models
 */
export const Role = Schema.Literal("system", "user", "assistant", "tool").annotations({
  message: () => `role must be one of "system", "user", "assistant" or "tool"`
})

/**
 * @since 0.1.0
 * @category Models
 */
export type Role = typeof Role.Type

const cache = Schema.optional(Schema.Boolean)

/**
 * A piece of text. `cache: true` on any part marks an Anthropic prompt-cache breakpoint
 * (`cache_control`) after it; other providers ignore it.
 *
 * @example
 * import { LlmRequest } from "@clearside/llm"
 * const part: LlmRequest.TextPart = { type: "text", text: "Long shared instructions...", cache: true }
 *
 * @since 0.1.0
 * @category Models
 */
export const TextPart = Schema.Struct({
  type: Schema.Literal("text"),
  text: nonEmptyString("text"),
  cache
})

/**
 * @since 0.1.0
 * @category Models
 */
export type TextPart = typeof TextPart.Type

/**
 * The image media types both OpenAI and Anthropic accept.
 *
 * @example
 * import { LlmRequest } from "@clearside/llm"
 * const type: LlmRequest.ImageMediaType = "image/png"
 *
 * @since 0.1.0
 * @category Models
 */
export const ImageMediaType = Schema.Literal("image/png", "image/jpeg", "image/gif", "image/webp").annotations({
  message: () => "mediaType must be one of image/png, image/jpeg, image/gif or image/webp"
})

/**
 * @since 0.1.0
 * @category Models
 */
export type ImageMediaType = typeof ImageMediaType.Type

const imageUrl = Schema.String.pipe(
  Schema.filter(
    (url) =>
      /^https?:\/\/\S+$/i.test(url) || /^data:image\/(png|jpeg|gif|webp);base64,[A-Za-z0-9+/=]+$/.test(url),
    { message: () => "url must be an http(s) URL or a data:image/(png|jpeg|gif|webp);base64 URL" }
  )
)

const base64 = Schema.String.pipe(
  Schema.filter((data) => data.length > 0 && /^[A-Za-z0-9+/]+={0,2}$/.test(data), {
    message: () => "data must be non-empty base64 text"
  })
)

/**
 * An image for a user message, by `url` (http(s) or a `data:` URL) or as base64 `data` with its
 * `mediaType`.
 *
 * @example
 * import { LlmRequest } from "@clearside/llm"
 * const byUrl: LlmRequest.ImagePart = { type: "image", url: "https://example.com/invoice.png" }
 * const inline: LlmRequest.ImagePart = { type: "image", data: "iVBORw0KGgo=", mediaType: "image/png" }
 *
 * @since 0.1.0
 * @category Models
 */
export const ImagePart = Schema.Struct({
  type: Schema.Literal("image"),
  url: Schema.optional(imageUrl),
  data: Schema.optional(base64),
  mediaType: Schema.optional(ImageMediaType),
  cache
}).pipe(
  Schema.filter((image) => {
    if (image.url !== undefined) {
      if (image.data !== undefined) return { path: ["data"], message: "an image has either url or data, not both" }
      if (image.mediaType !== undefined) return { path: ["mediaType"], message: "mediaType goes with data, not with url" }
      return undefined
    }
    if (image.data === undefined) return { path: ["url"], message: "an image needs a url, or data with its mediaType" }
    return image.mediaType === undefined ? { path: ["mediaType"], message: "mediaType is required with data" } : undefined
  })
)

/**
 * @since 0.1.0
 * @category Models
 */
export type ImagePart = typeof ImagePart.Type

/** A value the wire can carry: `JSON.stringify` gives text for it (no cycles, no bigints). */
const jsonValue = (field: string, optional: boolean) =>
  Schema.Unknown.pipe(
    Schema.filter(
      (value) => {
        if (value === undefined) return optional
        try {
          return typeof JSON.stringify(value) === "string"
        } catch {
          return false
        }
      },
      { message: () => `${field} must be a JSON value` }
    )
  )

const toolName = Schema.String.pipe(
  Schema.filter((name) => /^[a-zA-Z0-9_-]{1,64}$/.test(name), {
    message: () => "name must match ^[a-zA-Z0-9_-]{1,64}$"
  })
)

/**
 * A tool call the model made, on an assistant message sent back: `arguments` is the JSON value.
 *
 * @example
 * import { LlmRequest } from "@clearside/llm"
 * const part: LlmRequest.ToolCallPart = { type: "tool-call", id: "call_1", name: "lookup", arguments: { q: "rates" } }
 *
 * @since 0.1.0
 * @category Models
 */
export const ToolCallPart = Schema.Struct({
  type: Schema.Literal("tool-call"),
  id: nonEmptyString("id"),
  name: toolName,
  arguments: jsonValue("arguments", true),
  cache
})

/**
 * @since 0.1.0
 * @category Models
 */
export type ToolCallPart = typeof ToolCallPart.Type

/**
 * The model's reasoning, on an assistant message sent back; Anthropic needs the `signature` it
 * gave to accept a thinking block again (reasoning without one is not sent to Anthropic).
 *
 * @example
 * import { LlmRequest } from "@clearside/llm"
 * const part: LlmRequest.ReasoningPart = { type: "reasoning", text: "925 / 5 = 185", signature: "EvQB..." }
 *
 * @since 0.1.0
 * @category Models
 */
export const ReasoningPart = Schema.Struct({
  type: Schema.Literal("reasoning"),
  text: Schema.String,
  signature: Schema.optional(Schema.String),
  cache
})

/**
 * @since 0.1.0
 * @category Models
 */
export type ReasoningPart = typeof ReasoningPart.Type

/**
 * The result of a tool call, on a `tool` message: `id` is the call's, `result` a string or any
 * JSON value (sent as JSON text), `isError` says the tool failed.
 *
 * @example
 * import { LlmRequest } from "@clearside/llm"
 * const part: LlmRequest.ToolResultPart = { type: "tool-result", id: "call_1", name: "lookup", result: { rate: 1.08 } }
 *
 * @since 0.1.0
 * @category Models
 */
export const ToolResultPart = Schema.Struct({
  type: Schema.Literal("tool-result"),
  id: nonEmptyString("id"),
  name: toolName,
  result: jsonValue("result", false),
  isError: Schema.optional(Schema.Boolean),
  cache
})

/**
 * @since 0.1.0
 * @category Models
 */
export type ToolResultPart = typeof ToolResultPart.Type

/**
 * Any part of a message's content.
 *
 * @example
 * import { LlmRequest } from "@clearside/llm"
 * const parts: ReadonlyArray<LlmRequest.Part> = [
 *   { type: "text", text: "What does this receipt say?" },
 *   { type: "image", url: "https://example.com/receipt.jpg" }
 * ]
 *
 * @since 0.1.0
 * @category Models
 */
export const Part = Schema.Union(TextPart, ImagePart, ToolCallPart, ReasoningPart, ToolResultPart)

/**
 * @since 0.1.0
 * @category Models
 */
export type Part = typeof Part.Type

/** Which parts each role may send. */
const partsOf: Readonly<Record<Role, ReadonlyArray<Part["type"]>>> = {
  system: ["text"],
  user: ["text", "image"],
  assistant: ["text", "tool-call", "reasoning"],
  tool: ["tool-result"]
}

const listed = (types: ReadonlyArray<string>) => types.map((t) => `"${t}"`).join(", ")

/**
 * One message of a conversation. `content` is a string or an array of parts: `system` messages
 * hold text, `user` messages text and images, `assistant` messages text, tool calls and
 * reasoning, `tool` messages the results of the assistant's tool calls (parts only).
 *
 * @example
 * import { LlmRequest } from "@clearside/llm"
 * const message: LlmRequest.Message = { role: "user", content: "hello" }
 * const answer: LlmRequest.Message = {
 *   role: "tool",
 *   content: [{ type: "tool-result", id: "call_1", name: "lookup", result: "42" }]
 * }
 *
 * @since 0.1.0
 * @category Models
 */
export const Message = Schema.Struct({
  role: Role,
  content: Schema.Union(
    nonEmptyString("content"),
    Schema.Array(Part).pipe(Schema.minItems(1, { message: () => "content must hold at least one part" }))
  )
}).pipe(
  Schema.filter((message) => {
    const allowed = partsOf[message.role]
    if (typeof message.content === "string") {
      return message.role === "tool"
        ? { path: ["content"], message: 'a tool message\'s content must be "tool-result" parts' }
        : undefined
    }
    for (let i = 0; i < message.content.length; i++) {
      const type = message.content[i]!.type
      if (!allowed.includes(type)) {
        return {
          path: ["content", i, "type"],
          message: `a ${message.role} message may hold only ${listed(allowed)} parts, not "${type}"`
        }
      }
    }
    return undefined
  })
)

/**
 * @since 0.1.0
 * @category Models
 */
export type Message = typeof Message.Type

/**
 * A tool the model may call: a `name` (`^[a-zA-Z0-9_-]{1,64}$`), what it is for, and its
 * `parameters` as a JSON Schema object.
 *
 * @example
 * import { LlmRequest } from "@clearside/llm"
 * const tool: LlmRequest.Tool = {
 *   name: "lookup",
 *   description: "Looks up an exchange rate",
 *   parameters: { type: "object", properties: { pair: { type: "string" } }, required: ["pair"] }
 * }
 *
 * @since 0.1.0
 * @category Models
 */
export const Tool = Schema.Struct({
  name: toolName,
  description: Schema.optional(Schema.String),
  parameters: Schema.Record({ key: Schema.String, value: Schema.Unknown })
})

/**
 * @since 0.1.0
 * @category Models
 */
export type Tool = typeof Tool.Type

/**
 * Whether the model may (`auto`), must not (`none`) or must (`required`) call a tool, or must call
 * the one named.
 *
 * @example
 * import { LlmRequest } from "@clearside/llm"
 * const choice: LlmRequest.ToolChoice = { name: "lookup" }
 *
 * @since 0.1.0
 * @category Models
 */
export const ToolChoice = Schema.Union(Schema.Literal("auto", "none", "required"), Schema.Struct({ name: toolName }))

/**
 * @since 0.1.0
 * @category Models
 */
export type ToolChoice = typeof ToolChoice.Type

/**
 * How hard a reasoning model thinks: `effort` (OpenAI's `reasoning_effort`; for Anthropic a
 * thinking budget of 1024, 2048 or 4096 tokens) or an explicit `budgetTokens` (Anthropic's
 * `thinking.budget_tokens`, at least 1024; OpenAI has no such setting and ignores it).
 *
 * @example
 * import { LlmRequest } from "@clearside/llm"
 * const reasoning: LlmRequest.Reasoning = { effort: "high" }
 *
 * @since 0.1.0
 * @category Models
 */
export const Reasoning = Schema.Struct({
  effort: Schema.optional(Schema.Literal("low", "medium", "high")),
  budgetTokens: Schema.optional(positiveInteger("reasoning.budgetTokens"))
})

/**
 * @since 0.1.0
 * @category Models
 */
export type Reasoning = typeof Reasoning.Type
/**
 * Asks for an answer that is one JSON document matching `schema` (a JSON Schema object), named
 * `name` (letters, digits, `_` and `-`, at most 64). Each provider sends it in its own form: OpenAI's
 * `response_format` `json_schema` (strict), Anthropic's `output_config.format` or a forced tool, a
 * compatible endpoint's `json_schema` or `json_object`. `Llm.generateObject` fills it from an Effect
 * `Schema`; set it by hand to get the raw JSON text back.
 *
 * @example
 * import type { LlmRequest } from "@clearside/llm"
 *
 * const format: LlmRequest.ResponseFormat = {
 *   type: "json",
 *   name: "verdict",
 *   schema: { type: "object", properties: { winner: { type: "string" } }, required: ["winner"], additionalProperties: false }
 * }
 *
 * @since 0.1.0
 * @category Models
 */
export const ResponseFormat = Schema.Struct({
  type: Schema.Literal("json"),
  name: Schema.String.pipe(
    Schema.pattern(/^[a-zA-Z0-9_-]{1,64}$/, {
      message: () => "responseFormat.name must be 1 to 64 letters, digits, _ or -"
    })
  ),
  description: Schema.optional(Schema.String),
  schema: Schema.Record({ key: Schema.String, value: Schema.Unknown })
})

/**
 * @since 0.1.0
 * @category Models
 */
export type ResponseFormat = typeof ResponseFormat.Type

const PositiveDuration = Schema.DurationFromSelf.pipe(
  Schema.filter((d) => Duration.greaterThan(d, Duration.zero), {
    message: () => "timeout must be a positive duration"
  })
)

interface RequestFields {
  readonly messages: ReadonlyArray<Message>
  readonly tools?: ReadonlyArray<Tool> | undefined
  readonly toolChoice?: ToolChoice | undefined
}

/** The rules across fields: tool results answer earlier tool calls, tool names are unique and chosen among. */
const conversationIssue = (request: RequestFields): Schema.FilterIssue | undefined => {
  const called = new Set<string>()
  for (let i = 0; i < request.messages.length; i++) {
    const { content, role } = request.messages[i]!
    if (typeof content === "string") continue
    for (let j = 0; j < content.length; j++) {
      const part = content[j]!
      if (role === "assistant" && part.type === "tool-call") called.add(part.id)
      else if (part.type === "tool-result" && !called.has(part.id)) {
        return {
          path: ["messages", i, "content", j, "id"],
          message: `tool result "${part.id}" answers no tool call of an earlier assistant message`
        }
      }
    }
  }
  const names = new Set<string>()
  const tools = request.tools ?? []
  for (let i = 0; i < tools.length; i++) {
    if (names.has(tools[i]!.name)) return { path: ["tools", i, "name"], message: `tool "${tools[i]!.name}" is defined twice` }
    names.add(tools[i]!.name)
  }
  const choice = request.toolChoice
  if (typeof choice === "object" && !names.has(choice.name)) {
    return { path: ["toolChoice", "name"], message: `toolChoice names "${choice.name}", which is not one of the request's tools` }
  }
  return undefined
}

/**
 * A request to a model. Only `messages` is required; `provider` picks one of the configured
 * providers (else the default one) and `model` overrides the provider's default model.
 *
 * @example
 * import { Duration } from "effect"
 * import { LlmRequest } from "@clearside/llm"
 *
 * const request: LlmRequest.LlmRequest = {
 *   provider: "anthropic",
 *   model: "claude-sonnet-4-5",
 *   messages: [{ role: "user", content: "Summarise the debate so far." }],
 *   temperature: 0.2,
 *   timeout: Duration.seconds(10)
 * }
 *
 * @since 0.1.0
 * @category Models
 */
export const LlmRequest = Schema.Struct({
  provider: Schema.optional(nonEmptyString("provider")),
  model: Schema.optional(nonEmptyString("model")),
  messages: Schema.Array(Message).pipe(
    Schema.minItems(1, { message: () => "messages must hold at least one message" })
  ),
  temperature: Schema.optional(numberBetween("temperature", 0, 2)),
  maxTokens: Schema.optional(positiveInteger("maxTokens")),
  topP: Schema.optional(numberBetween("topP", 0, 1)),
  stop: Schema.optional(
    Schema.Array(nonEmptyString("stop sequence")).pipe(
      Schema.maxItems(4, { message: () => "stop must hold at most 4 sequences" })
    )
  ),
  timeout: Schema.optional(PositiveDuration),
  responseFormat: Schema.optional(ResponseFormat),
  metadata: Schema.optional(Schema.Record({ key: Schema.String, value: Schema.String })),
  tools: Schema.optional(Schema.Array(Tool)),
  toolChoice: Schema.optional(ToolChoice),
  parallelToolCalls: Schema.optional(Schema.Boolean),
  reasoning: Schema.optional(Reasoning)
}).pipe(Schema.filter((request) => conversationIssue(request)))

/**
 * @since 0.1.0
 * @category Models
 */
export type LlmRequest = typeof LlmRequest.Type

/**
 * Why the model stopped: its own end (`stop`), the token limit (`length`), a content filter, a tool
 * call, a refusal, or anything else a provider reports (`other`).
 *
 * @example
 * import { LlmRequest } from "@clearside/llm"
 * const reason: LlmRequest.FinishReason = "length"
 *
 * @since 0.1.0
 * @category Models
 */
export const FinishReason = Schema.Literal("stop", "length", "content_filter", "tool_calls", "refusal", "other")

/**
 * @since 0.1.0
 * @category Models
 */
export type FinishReason = typeof FinishReason.Type

/**
 * Tokens a call consumed. `totalTokens` is the provider's own total where it gives one (some count
 * reasoning tokens on top of input and output).
 *
 * @example
 * import { LlmRequest } from "@clearside/llm"
 * const usage: LlmRequest.Usage = { inputTokens: 12, outputTokens: 30, totalTokens: 42, cachedInputTokens: 8 }
 *
 * @since 0.1.0
 * @category Models
 */
export const Usage = Schema.Struct({
  inputTokens: Schema.Number,
  outputTokens: Schema.Number,
  totalTokens: Schema.Number,
  cachedInputTokens: Schema.optional(Schema.Number),
  reasoningTokens: Schema.optional(Schema.Number)
})

/**
 * @since 0.1.0
 * @category Models
 */
export type Usage = typeof Usage.Type

/**
 * A tool call in a whole answer: `argumentsText` is the JSON text the provider sent, `arguments`
 * its parsed value, `undefined` when the text is not JSON (the call still succeeds, so that the
 * caller can tell the model what was wrong). Empty text is read as `{}`.
 *
 * @example
 * import { LlmRequest } from "@clearside/llm"
 * const call: LlmRequest.ResponseToolCall = { id: "call_1", name: "lookup", arguments: { q: "x" }, argumentsText: '{"q":"x"}' }
 *
 * @since 0.1.0
 * @category Models
 */
export const ResponseToolCall = Schema.Struct({
  id: Schema.String,
  name: Schema.String,
  arguments: Schema.Unknown,
  argumentsText: Schema.String
})

/**
 * @since 0.1.0
 * @category Models
 */
export type ResponseToolCall = typeof ResponseToolCall.Type

/**
 * A model's whole answer, with the provider that gave it. `content` is the answer's text;
 * `toolCalls` the tools it called (empty when none); `reasoning` the reasoning a model showed, with
 * the `reasoningSignature` needed to send it back to Anthropic; `refusal` the reason a model gave
 * for refusing (then `finishReason` is `refusal`).
 *
 * @example
 * import { LlmRequest } from "@clearside/llm"
 * const response: LlmRequest.LlmResponse = {
 *   id: "chatcmpl-1",
 *   provider: "openai",
 *   model: "gpt-4o-mini",
 *   content: "A cap on how often you may call.",
 *   toolCalls: [],
 *   finishReason: "stop",
 *   usage: { inputTokens: 9, outputTokens: 8, totalTokens: 17 }
 * }
 *
 * @since 0.1.0
 * @category Models
 */
export const LlmResponse = Schema.Struct({
  id: Schema.String,
  provider: Schema.String,
  model: Schema.String,
  content: Schema.String,
  toolCalls: Schema.Array(ResponseToolCall),
  reasoning: Schema.optional(Schema.String),
  reasoningSignature: Schema.optional(Schema.String),
  refusal: Schema.optional(Schema.String),
  finishReason: FinishReason,
  usage: Usage
})

/**
 * @since 0.1.0
 * @category Models
 */
export type LlmResponse = typeof LlmResponse.Type

/**
 * A piece of answer text, as the provider streamed it.
 *
 * @example
 * import { LlmRequest } from "@clearside/llm"
 * const event = LlmRequest.TextDelta.make({ text: "Hel" })
 *
 * @since 0.1.0
 * @category Models
 */
export const TextDelta = Schema.TaggedStruct("TextDelta", { text: Schema.String })

/**
 * @since 0.1.0
 * @category Models
 */
export type TextDelta = typeof TextDelta.Type

/**
 * A piece of the model's reasoning (DeepSeek's `reasoning_content`, Anthropic's thinking). An
 * Anthropic thinking block ends with an empty-text delta carrying its `signature`.
 *
 * @example
 * import { LlmRequest } from "@clearside/llm"
 * const event = LlmRequest.ReasoningDelta.make({ text: "First, the user asks" })
 *
 * @since 0.1.0
 * @category Models
 */
export const ReasoningDelta = Schema.TaggedStruct("ReasoningDelta", {
  text: Schema.String,
  signature: Schema.optional(Schema.String)
})

/**
 * @since 0.1.0
 * @category Models
 */
export type ReasoningDelta = typeof ReasoningDelta.Type

/**
 * The model began a tool call.
 *
 * @example
 * import { LlmRequest } from "@clearside/llm"
 * const event = LlmRequest.ToolCallStart.make({ id: "call_1", name: "lookup" })
 *
 * @since 0.1.0
 * @category Models
 */
export const ToolCallStart = Schema.TaggedStruct("ToolCallStart", { id: Schema.String, name: Schema.String })

/**
 * @since 0.1.0
 * @category Models
 */
export type ToolCallStart = typeof ToolCallStart.Type

/**
 * A fragment of a tool call's JSON arguments, as streamed.
 *
 * @example
 * import { LlmRequest } from "@clearside/llm"
 * const event = LlmRequest.ToolCallDelta.make({ id: "call_1", argumentsDelta: '{"q":' })
 *
 * @since 0.1.0
 * @category Models
 */
export const ToolCallDelta = Schema.TaggedStruct("ToolCallDelta", { id: Schema.String, argumentsDelta: Schema.String })

/**
 * @since 0.1.0
 * @category Models
 */
export type ToolCallDelta = typeof ToolCallDelta.Type

/**
 * A tool call whose arguments are complete: `arguments` parsed from `argumentsText`
 * (`undefined` when it is not JSON).
 *
 * @example
 * import { LlmRequest } from "@clearside/llm"
 * const event = LlmRequest.ToolCall.make({ id: "call_1", name: "lookup", arguments: { q: 1 }, argumentsText: '{"q":1}' })
 *
 * @since 0.1.0
 * @category Models
 */
export const ToolCall = Schema.TaggedStruct("ToolCall", {
  id: Schema.String,
  name: Schema.String,
  arguments: Schema.Unknown,
  argumentsText: Schema.String
})

/**
 * @since 0.1.0
 * @category Models
 */
export type ToolCall = typeof ToolCall.Type

/**
 * The last event of every successful stream: why it ended, what it used, and the reason a model
 * gave for refusing (`refusal`, with `finishReason` `refusal`).
 *
 * @example
 * import { LlmRequest } from "@clearside/llm"
 * const event = LlmRequest.Finish.make({
 *   id: "msg_1",
 *   provider: "anthropic",
 *   model: "claude-sonnet-4-5",
 *   finishReason: "stop",
 *   usage: { inputTokens: 10, outputTokens: 3, totalTokens: 13 }
 * })
 *
 * @since 0.1.0
 * @category Models
 */
export const Finish = Schema.TaggedStruct("Finish", {
  id: Schema.String,
  provider: Schema.String,
  model: Schema.String,
  finishReason: FinishReason,
  refusal: Schema.optional(Schema.String),
  usage: Usage
})

/**
 * @since 0.1.0
 * @category Models
 */
export type Finish = typeof Finish.Type

/**
 * What `Llm.stream` emits: `TextDelta`s, `ReasoningDelta`s and tool calls (`ToolCallStart`, its
 * `ToolCallDelta`s, then `ToolCall` once its arguments are complete), then exactly one `Finish`.
 *
 * @example
 * import { Match } from "effect"
 * import { LlmRequest } from "@clearside/llm"
 *
 * const render = Match.type<LlmRequest.LlmStreamEvent>().pipe(
 *   Match.tag("TextDelta", (e) => e.text),
 *   Match.tag("ReasoningDelta", () => ""),
 *   Match.tag("ToolCallStart", "ToolCallDelta", () => ""),
 *   Match.tag("ToolCall", (e) => `\n[${e.name}(${e.argumentsText})]`),
 *   Match.tag("Finish", (e) => `\n[${e.finishReason}]`),
 *   Match.exhaustive
 * )
 *
 * @since 0.1.0
 * @category Models
 */
export const LlmStreamEvent = Schema.Union(TextDelta, ReasoningDelta, ToolCallStart, ToolCallDelta, ToolCall, Finish)

/**
 * @since 0.1.0
 * @category Models
 */
export type LlmStreamEvent = typeof LlmStreamEvent.Type

const decodeRequest = Schema.decodeUnknownEither(LlmRequest, { errors: "first", onExcessProperty: "error" })

/** The rule of each field, stated when a value has the wrong type (instead of the schema's dump). */
const typeRules: Readonly<Record<string, string>> = {
  messages: "messages must be an array of { role, content } messages",
  role: `role must be one of "system", "user", "assistant" or "tool"`,
  content: "content must be a non-empty string or an array of parts",
  type: `type must be one of "text", "image", "tool-call", "reasoning" or "tool-result"`,
  text: "text must be a non-empty string",
  url: "url must be an http(s) URL or a data:image/(png|jpeg|gif|webp);base64 URL",
  data: "data must be non-empty base64 text",
  mediaType: "mediaType must be one of image/png, image/jpeg, image/gif or image/webp",
  id: "id must be a non-empty string",
  name: "name must match ^[a-zA-Z0-9_-]{1,64}$",
  signature: "signature must be a string",
  isError: "isError must be a boolean",
  cache: "cache must be a boolean",
  provider: "provider must be a non-empty string",
  model: "model must be a non-empty string",
  temperature: "temperature must be a number between 0 and 2",
  maxTokens: "maxTokens must be a positive integer",
  topP: "topP must be a number between 0 and 1",
  stop: "stop must be an array of at most 4 non-empty strings",
  timeout: "timeout must be a positive duration",
  metadata: "metadata must be a record of string values",
  tools: "tools must be an array of { name, description?, parameters } tools",
  description: "description must be a string",
  parameters: "parameters must be a JSON Schema object",
  toolChoice: `toolChoice must be "auto", "none", "required" or { name }`,
  parallelToolCalls: "parallelToolCalls must be a boolean",
  reasoning: "reasoning must be an object { effort?, budgetTokens? }",
  effort: `reasoning.effort must be one of "low", "medium" or "high"`,
  budgetTokens: "reasoning.budgetTokens must be a positive integer",
  responseFormat: `responseFormat must be { type: "json", name, schema } with schema a JSON Schema object`,
  schema: "responseFormat.schema must be a JSON Schema object"
}

const typeRule = (path: ReadonlyArray<PropertyKey>, field: string): string | undefined => {
  if (path.length === 0) return "request must be an object with messages"
  const last = path[path.length - 1]
  if (path[0] === "messages" && path.length === 2) return `${field} must be a message object with role and content`
  if (path[0] === "messages" && path.length === 4) return `${field} must be a part object with a type`
  if (path[0] === "tools" && path.length === 2) return `${field} must be a tool object with name and parameters`
  if (path[0] === "toolChoice" && path.length === 2) return typeRules.toolChoice
  if (path[0] === "stop" && path.length === 2) return "stop sequence must be a non-empty string"
  if (path[0] === "metadata" && path.length === 2) return "metadata values must be strings"
  return typeof last === "string" ? typeRules[last] : undefined
}

const describeIssue = (issue: ParseResult.ArrayFormatterIssue): { field: string; rule: string } => {
  const field = issue.path.reduce<string>(
    (acc, key) => (typeof key === "number" ? `${acc}[${key}]` : acc === "" ? String(key) : `${acc}.${String(key)}`),
    ""
  )
  if (issue._tag === "Unexpected") return { field, rule: `${field} is not a request field` }
  if (issue._tag === "Missing") return { field, rule: `${field} is required` }
  // A filter's own message states its rule; a type mismatch gets the field's rule instead of the dump.
  if ((issue._tag === "Type" || issue._tag === "Composite") && (issue.message.startsWith("Expected") || issue.message.includes("actual"))) {
    const rule = typeRule(issue.path, field)
    if (rule !== undefined) return { field, rule }
  }
  return { field, rule: issue.message }
}

/** The provider a request names, for its error; reading it may throw on a hostile object. */
const claimedProvider = (input: unknown, fallback: string): string => {
  try {
    const provider: unknown = (input as { readonly provider?: unknown } | null | undefined)?.provider
    return typeof provider === "string" && provider !== "" ? provider : fallback
  } catch {
    return fallback
  }
}

const invalid = (provider: string, rule: string, field: string) =>
  new InvalidRequestError({ provider, message: `Invalid request: ${rule}`, field, local: true })

/**
 * Validates an unknown value as an {@link LlmRequest}; the `LlmRequest` schema is the one source of
 * the rules. A bad request fails with an `InvalidRequestError` whose `field` names the offending path
 * (e.g. `messages[1].content`) and whose message states the rule, also when reading the value throws
 * (a throwing getter or a proxy trap). The request's own `provider`, when it names one, is reported
 * on the error, else `provider`. The result is a fresh copy: later changes to the input do not
 * reach it.
 *
 * @example
 * import { Effect } from "effect"
 * import { LlmRequest } from "@clearside/llm"
 *
 * const program = LlmRequest.decode({ messages: [] }, "openai").pipe(
 *   Effect.catchTag("InvalidRequestError", (e) => Effect.succeed(e.field)) // "messages"
 * )
 *
 * @since 0.1.0
 * @category Validation
 */
export const decode = (input: unknown, provider: string): Effect.Effect<LlmRequest, InvalidRequestError> =>
  Either.match(decodeEither(input, provider), { onLeft: Effect.fail, onRight: Effect.succeed })

/**
 * {@link decode} as an `Either`, for code that validates without running an Effect.
 *
 * @example
 * import { Either } from "effect"
 * import { LlmRequest } from "@clearside/llm"
 *
 * const valid = Either.isRight(LlmRequest.decodeEither({ messages: [{ role: "user", content: "hi" }] }, "openai")) // true
 *
 * @since 0.1.0
 * @category Validation
 */
export const decodeEither = (input: unknown, provider: string): Either.Either<LlmRequest, InvalidRequestError> => {
  let result: ReturnType<typeof decodeRequest>
  try {
    result = decodeRequest(input)
  } catch (cause) {
    const reason = cause instanceof Error ? cause.message : String(cause)
    return Either.left(
      invalid(claimedProvider(input, provider), `the request could not be read (${reason.slice(0, 200)})`, "request")
    )
  }
  if (result._tag === "Right") return Either.right(result.right)
  // A union (string or parts) reports every member's issue: the deepest one is the specific one.
  const first = ParseResult.ArrayFormatter.formatErrorSync(result.left).reduce<
    ParseResult.ArrayFormatterIssue | undefined
  >((best, issue) => (best === undefined || issue.path.length > best.path.length ? issue : best), undefined)
  const { field, rule } = first
    ? describeIssue(first)
    : { field: "request", rule: "request must be an object with messages" }
  return Either.left(invalid(claimedProvider(input, provider), rule, field === "" ? "request" : field))
}

/**
 * Where a provider's ranges are narrower than the request schema's: the `temperature` it accepts
 * and the smallest reasoning budget (which must also stay below `maxTokens`).
 *
 * @example
 * import { LlmRequest } from "@clearside/llm"
 * const limits: LlmRequest.Limits = { temperature: { min: 0, max: 1 }, minBudgetTokens: 1024 }
 *
 * @since 0.1.0
 * @category Validation
 */
export interface Limits {
  readonly temperature?: { readonly min: number; readonly max: number }
  readonly minBudgetTokens?: number
}

/**
 * Anthropic's ranges: `temperature` 0 to 1, a thinking budget of at least 1024 tokens.
 *
 * @example
 * import { LlmRequest } from "@clearside/llm"
 * LlmRequest.anthropicLimits.temperature // { min: 0, max: 1 }
 *
 * @since 0.1.0
 * @category Validation
 */
export const anthropicLimits: Limits = { temperature: { min: 0, max: 1 }, minBudgetTokens: 1024 }

/**
 * Checks a decoded request against a provider's narrower {@link Limits}: the `InvalidRequestError`
 * naming the field, or `undefined` when it fits. Providers run it before they send anything.
 *
 * @example
 * import { LlmRequest } from "@clearside/llm"
 *
 * const error = LlmRequest.checkLimits(
 *   { messages: [{ role: "user", content: "hi" }], temperature: 1.5 },
 *   "anthropic",
 *   LlmRequest.anthropicLimits
 * )
 * error?.field // "temperature"
 *
 * @since 0.1.0
 * @category Validation
 */
export const checkLimits = (request: LlmRequest, provider: string, limits: Limits): InvalidRequestError | undefined => {
  const range = limits.temperature
  if (range !== undefined && request.temperature !== undefined && (request.temperature < range.min || request.temperature > range.max)) {
    return invalid(provider, `temperature must be a number between ${range.min} and ${range.max} for ${provider}`, "temperature")
  }
  const budget = request.reasoning?.budgetTokens
  if (budget !== undefined && limits.minBudgetTokens !== undefined) {
    if (budget < limits.minBudgetTokens) {
      return invalid(provider, `reasoning.budgetTokens must be at least ${limits.minBudgetTokens} for ${provider}`, "reasoning.budgetTokens")
    }
    if (request.maxTokens !== undefined && budget >= request.maxTokens) {
      return invalid(provider, `reasoning.budgetTokens must be less than maxTokens for ${provider}`, "reasoning.budgetTokens")
    }
  }
  return undefined
}

/**
 * The assistant message that sends an answer back on the next turn: its reasoning (with the
 * signature Anthropic needs), its text and its tool calls, as parts (an empty answer, such as a
 * refusal, as its refusal text or `(no answer)`).
 *
 * @example
 * import { Effect } from "effect"
 * import { Llm, LlmMock, LlmRequest } from "@clearside/llm"
 *
 * const turn = Effect.gen(function* () {
 *   const first: LlmRequest.LlmRequest = { messages: [{ role: "user", content: "Weather in Oslo?" }] }
 *   const answer = yield* Llm.complete(first)
 *   return [...first.messages, LlmRequest.assistantMessage(answer)]
 * }).pipe(Effect.provide(LlmMock.layer([LlmMock.toolCall("get_weather", { city: "Oslo" })])))
 *
 * @since 0.1.0
 * @category Constructors
 */
export const assistantMessage = (response: LlmResponse): Message => {
  const parts: Array<Part> = []
  if (response.reasoning !== undefined) {
    parts.push(
      response.reasoningSignature === undefined
        ? { type: "reasoning", text: response.reasoning }
        : { type: "reasoning", text: response.reasoning, signature: response.reasoningSignature }
    )
  }
  if (response.content !== "") parts.push({ type: "text", text: response.content })
  for (const call of response.toolCalls) parts.push({ type: "tool-call", id: call.id, name: call.name, arguments: call.arguments })
  // An answer with nothing in it (a refusal) still needs a non-empty message to keep the turn.
  const said = response.refusal !== undefined && response.refusal !== "" ? response.refusal : "(no answer)"
  return { role: "assistant", content: parts.length === 0 ? [{ type: "text", text: said }] : parts }
}
