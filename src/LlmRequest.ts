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

const numberBetween = (field: string, min: number, max: number) =>
  Schema.Number.pipe(
    Schema.filter((n) => Number.isFinite(n) && n >= min && n <= max, {
      message: () => `${field} must be a number between ${min} and ${max}`
    })
  )

/**
 * Who speaks a message: `system` instructions, the `user`, or the model (`assistant`).
 *
 * @example
 * import { LlmRequest } from "@clearside/llm"
 * const role: LlmRequest.Role = "user"
 *
 * @since 0.1.0
 * @category Models
 */
export const Role = Schema.Literal("system", "user", "assistant").annotations({
  message: () => `role must be one of "system", "user" or "assistant"`
})

/**
 * @since 0.1.0
 * @category Models
 */
export type Role = typeof Role.Type

/**
 * One message of a conversation.
 *
 * @example
 * import { LlmRequest } from "@clearside/llm"
 * const message: LlmRequest.Message = { role: "user", content: "hello" }
 *
 * @since 0.1.0
 * @category Models
 */
export const Message = Schema.Struct({
  role: Role,
  content: nonEmptyString("content")
})

/**
 * @since 0.1.0
 * @category Models
 */
export type Message = typeof Message.Type

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
  maxTokens: Schema.optional(
    Schema.Number.pipe(
      Schema.filter((n) => Number.isSafeInteger(n) && n > 0, {
        message: () => "maxTokens must be a positive integer"
      })
    )
  ),
  topP: Schema.optional(numberBetween("topP", 0, 1)),
  stop: Schema.optional(
    Schema.Array(nonEmptyString("stop sequence")).pipe(
      Schema.maxItems(4, { message: () => "stop must hold at most 4 sequences" })
    )
  ),
  timeout: Schema.optional(PositiveDuration),
  responseFormat: Schema.optional(ResponseFormat),
  metadata: Schema.optional(Schema.Record({ key: Schema.String, value: Schema.String }))
})

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
 * A model's whole answer, with the provider that gave it.
 *
 * @example
 * import { LlmRequest } from "@clearside/llm"
 * const response: LlmRequest.LlmResponse = {
 *   id: "chatcmpl-1",
 *   provider: "openai",
 *   model: "gpt-4o-mini",
 *   content: "A cap on how often you may call.",
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
 * The last event of every successful stream: why it ended and what it used.
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
  usage: Usage
})

/**
 * @since 0.1.0
 * @category Models
 */
export type Finish = typeof Finish.Type

/**
 * What `Llm.stream` emits: `TextDelta`s, then exactly one `Finish`.
 *
 * @example
 * import { Match } from "effect"
 * import { LlmRequest } from "@clearside/llm"
 *
 * const render = Match.type<LlmRequest.LlmStreamEvent>().pipe(
 *   Match.tag("TextDelta", (e) => e.text),
 *   Match.tag("Finish", (e) => `\n[${e.finishReason}]`),
 *   Match.exhaustive
 * )
 *
 * @since 0.1.0
 * @category Models
 */
export const LlmStreamEvent = Schema.Union(TextDelta, Finish)

/**
 * @since 0.1.0
 * @category Models
 */
export type LlmStreamEvent = typeof LlmStreamEvent.Type

const decodeRequest = Schema.decodeUnknownEither(LlmRequest, { errors: "first", onExcessProperty: "error" })

/** The rule of each field, stated when a value has the wrong type (instead of the schema's dump). */
const typeRules: Readonly<Record<string, string>> = {
  messages: "messages must be an array of { role, content } messages",
  role: `role must be one of "system", "user" or "assistant"`,
  content: "content must be a non-empty string",
  provider: "provider must be a non-empty string",
  model: "model must be a non-empty string",
  temperature: "temperature must be a number between 0 and 2",
  maxTokens: "maxTokens must be a positive integer",
  topP: "topP must be a number between 0 and 1",
  stop: "stop must be an array of at most 4 non-empty strings",
  timeout: "timeout must be a positive duration",
  metadata: "metadata must be a record of string values",
  responseFormat: `responseFormat must be { type: "json", name, schema } with schema a JSON Schema object`,
  schema: "responseFormat.schema must be a JSON Schema object"
}

const typeRule = (path: ReadonlyArray<PropertyKey>, field: string): string | undefined => {
  if (path.length === 0) return "request must be an object with messages"
  const last = path[path.length - 1]
  if (path[0] === "messages" && path.length === 2) return `${field} must be a message object with role and content`
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
  if (issue._tag === "Type" || issue._tag === "Composite") {
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
  const [first] = ParseResult.ArrayFormatter.formatErrorSync(result.left)
  const { field, rule } = first
    ? describeIssue(first)
    : { field: "request", rule: "request must be an object with messages" }
  return Either.left(invalid(claimedProvider(input, provider), rule, field === "" ? "request" : field))
}
