/**
 * Every failure the `Llm` service can report, as one tagged union.
 *
 * Each member carries the `provider` it came from, a readable `message` (never a key, header or
 * request body) and `retryable`: whether trying the same request again may succeed. Match them with
 * `Effect.catchTag` or `Match`.
 *
 * @example
 * import { Effect } from "effect"
 * import { Llm } from "@clearside/llm"
 *
 * const answer = Llm.complete({ messages: [{ role: "user", content: "hi" }] }).pipe(
 *   Effect.map((r) => r.content),
 *   Effect.catchTag("RateLimitError", (e) => Effect.succeed(`busy, try again in ${e.retryAfter ?? "a while"}`)),
 *   Effect.catchIf((e) => !e.retryable, (e) => Effect.succeed(`cannot answer: ${e.message}`))
 * )
 *
 * @since 0.1.0
 */
import { Predicate, Schema } from "effect"

const retryableByDefault = (value: boolean) => Schema.optionalWith(Schema.Boolean, { default: () => value })

/**
 * Fields every error carries. `requestId` is the provider's request id where it sent one;
 * `headers` keeps the provider's rate-limit headers (`x-ratelimit-*`, `anthropic-ratelimit-*`);
 * `textEmitted` counts the characters a stream had already delivered when it failed; `local` is
 * true when this library decided the failure itself (validation, the rate limiter, an open circuit)
 * without the provider answering so.
 */
const common = {
  provider: Schema.String,
  message: Schema.String,
  requestId: Schema.optional(Schema.String),
  headers: Schema.optional(Schema.Record({ key: Schema.String, value: Schema.String })),
  textEmitted: Schema.optional(Schema.Number),
  local: Schema.optionalWith(Schema.Boolean, { default: () => false })
}

/**
 * The provider (or the local limiter) refused the call for going over a rate limit. `retryAfter` is
 * how long the provider asked to wait.
 *
 * @example
 * import { Duration } from "effect"
 * import { LlmError } from "@clearside/llm"
 * const error = new LlmError.RateLimitError({ provider: "openai", message: "Too many requests", retryAfter: Duration.seconds(2) })
 *
 * @since 0.1.0
 * @category Errors
 */
export class RateLimitError extends Schema.TaggedError<RateLimitError>()("RateLimitError", {
  ...common,
  retryable: retryableByDefault(true),
  retryAfter: Schema.optional(Schema.DurationFromSelf)
}) {}

/**
 * The account is out of credit or over its quota: waiting will not help.
 *
 * @example
 * import { LlmError } from "@clearside/llm"
 * const error = new LlmError.QuotaExceededError({ provider: "openai", message: "You exceeded your current quota" })
 *
 * @since 0.1.0
 * @category Errors
 */
export class QuotaExceededError extends Schema.TaggedError<QuotaExceededError>()("QuotaExceededError", {
  ...common,
  retryable: retryableByDefault(false)
}) {}

/**
 * An attempt, a stream's first token, a pause between stream events, or the whole call took longer
 * than allowed. `phase` says which.
 *
 * @example
 * import { LlmError } from "@clearside/llm"
 * const error = new LlmError.TimeoutError({ provider: "anthropic", message: "No answer within 30s", phase: "attempt" })
 *
 * @since 0.1.0
 * @category Errors
 */
export class TimeoutError extends Schema.TaggedError<TimeoutError>()("TimeoutError", {
  ...common,
  retryable: retryableByDefault(true),
  phase: Schema.optional(Schema.Literal("attempt", "first-token", "idle", "deadline", "provider"))
}) {}

/**
 * The request is wrong and would fail again unchanged. `field` names the offending field when the
 * request was rejected locally; `code` keeps the provider's own code (e.g. `context_length_exceeded`).
 *
 * @example
 * import { LlmError } from "@clearside/llm"
 * const error = new LlmError.InvalidRequestError({ provider: "openai", message: "Invalid request: temperature must be a number between 0 and 2", field: "temperature" })
 *
 * @since 0.1.0
 * @category Errors
 */
export class InvalidRequestError extends Schema.TaggedError<InvalidRequestError>()("InvalidRequestError", {
  ...common,
  retryable: retryableByDefault(false),
  field: Schema.optional(Schema.String),
  code: Schema.optional(Schema.String),
  status: Schema.optional(Schema.Number)
}) {}

/**
 * The key is missing, wrong, or lacks permission (401 or 403).
 *
 * @example
 * import { LlmError } from "@clearside/llm"
 * const error = new LlmError.AuthenticationError({ provider: "openai", message: "Incorrect API key provided", status: 401 })
 *
 * @since 0.1.0
 * @category Errors
 */
export class AuthenticationError extends Schema.TaggedError<AuthenticationError>()("AuthenticationError", {
  ...common,
  retryable: retryableByDefault(false),
  status: Schema.optional(Schema.Number)
}) {}

/**
 * The model or path does not exist at this provider.
 *
 * @example
 * import { LlmError } from "@clearside/llm"
 * const error = new LlmError.NotFoundError({ provider: "openai", message: "The model `gpt-9` does not exist" })
 *
 * @since 0.1.0
 * @category Errors
 */
export class NotFoundError extends Schema.TaggedError<NotFoundError>()("NotFoundError", {
  ...common,
  retryable: retryableByDefault(false)
}) {}

/**
 * The provider failed on its side (5xx, or 409).
 *
 * @example
 * import { LlmError } from "@clearside/llm"
 * const error = new LlmError.ServerError({ provider: "openai", message: "Bad gateway", status: 502 })
 *
 * @since 0.1.0
 * @category Errors
 */
export class ServerError extends Schema.TaggedError<ServerError>()("ServerError", {
  ...common,
  retryable: retryableByDefault(true),
  status: Schema.Number
}) {}

/**
 * The provider is overloaded (Anthropic's 529 / `overloaded_error`).
 *
 * @example
 * import { LlmError } from "@clearside/llm"
 * const error = new LlmError.OverloadedError({ provider: "anthropic", message: "Overloaded" })
 *
 * @since 0.1.0
 * @category Errors
 */
export class OverloadedError extends Schema.TaggedError<OverloadedError>()("OverloadedError", {
  ...common,
  retryable: retryableByDefault(true)
}) {}

/**
 * The connection could not be made or broke before the answer was complete.
 *
 * @example
 * import { LlmError } from "@clearside/llm"
 * const error = new LlmError.ConnectionError({ provider: "openai", message: "Connection reset by the provider" })
 *
 * @since 0.1.0
 * @category Errors
 */
export class ConnectionError extends Schema.TaggedError<ConnectionError>()("ConnectionError", {
  ...common,
  retryable: retryableByDefault(true)
}) {}

/**
 * The provider's circuit breaker is open after repeated failures; calls fail fast until `retryAfter`
 * has passed. Not retryable on the same provider; a fallback provider may be tried.
 *
 * @example
 * import { Duration } from "effect"
 * import { LlmError } from "@clearside/llm"
 * const error = new LlmError.CircuitOpenError({ provider: "openai", message: "Circuit open", retryAfter: Duration.seconds(30) })
 *
 * @since 0.1.0
 * @category Errors
 */
export class CircuitOpenError extends Schema.TaggedError<CircuitOpenError>()("CircuitOpenError", {
  ...common,
  retryable: retryableByDefault(false),
  retryAfter: Schema.optional(Schema.DurationFromSelf)
}) {}

/**
 * The provider answered 200 but the body is not what its API promises (truncated, malformed JSON
 * or SSE, missing fields).
 *
 * @example
 * import { LlmError } from "@clearside/llm"
 * const error = new LlmError.ResponseParseError({ provider: "openai", message: "Response body is not valid JSON" })
 *
 * @since 0.1.0
 * @category Errors
 */
export class ResponseParseError extends Schema.TaggedError<ResponseParseError>()("ResponseParseError", {
  ...common,
  retryable: retryableByDefault(true)
}) {}

/**
 * The model answered, but its answer is not a value of the requested `Schema` (not JSON, or JSON
 * that does not decode), also after the repair turns `Llm.generateObject` allows. `text` is the
 * model's last raw answer, `message` the Schema's issues as readable text, `attempts` how many
 * answers were asked for (the first and each repair). Not retryable: asking the same again is what
 * the repair turns already did; `Retry` is for transport faults.
 *
 * @example
 * import { Effect, Schema } from "effect"
 * import { Llm } from "@clearside/llm"
 *
 * const score = Llm.generateObject({ schema: Schema.Struct({ score: Schema.Number }), messages: [{ role: "user", content: "Score it" }] }).pipe(
 *   Effect.catchTag("OutputValidationError", (e) => Effect.logWarning(`unusable answer after ${e.attempts} tries: ${e.text}`))
 * )
 *
 * @since 0.1.0
 * @category Errors
 */
export class OutputValidationError extends Schema.TaggedError<OutputValidationError>()("OutputValidationError", {
  ...common,
  retryable: retryableByDefault(false),
  text: Schema.String,
  attempts: Schema.Number
}) {}

/**
 * A tool call of the model could not be run by `Llm.runTools`: it names no tool of the request, or
 * its arguments do not decode with the tool's `parameters`, again after the model was told what was
 * wrong in an error result. `tool` is the name the model called, `callId` the call's id, `message`
 * the reason. Not retryable: the model already had its second chance.
 *
 * @example
 * import { Effect } from "effect"
 * import { LlmError } from "@clearside/llm"
 *
 * const report = (e: LlmError.ToolCallError) => Effect.logWarning(`the model cannot call ${e.tool}: ${e.message}`)
 *
 * @since 0.1.0
 * @category Errors
 */
export class ToolCallError extends Schema.TaggedError<ToolCallError>()("ToolCallError", {
  ...common,
  retryable: retryableByDefault(false),
  tool: Schema.String,
  callId: Schema.String
}) {}

/**
 * `Llm.runTools` asked the model `steps` times and it was still calling tools: the loop stops
 * instead of running on (raise `maxSteps` if the task needs more rounds). Not retryable.
 *
 * @example
 * import { Effect } from "effect"
 * import { LlmError } from "@clearside/llm"
 *
 * const report = (e: LlmError.MaxStepsError) => Effect.logWarning(`no answer after ${e.steps} steps`)
 *
 * @since 0.1.0
 * @category Errors
 */
export class MaxStepsError extends Schema.TaggedError<MaxStepsError>()("MaxStepsError", {
  ...common,
  retryable: retryableByDefault(false),
  steps: Schema.Number
}) {}

/**
 * Any error of the `Llm` service.
 *
 * @example
 * import { LlmError } from "@clearside/llm"
 * const describe = (e: LlmError.LlmError) => `${e._tag} from ${e.provider}: ${e.message}`
 *
 * @since 0.1.0
 * @category Errors
 */
export type LlmError =
  | RateLimitError
  | QuotaExceededError
  | TimeoutError
  | InvalidRequestError
  | AuthenticationError
  | NotFoundError
  | ServerError
  | OverloadedError
  | ConnectionError
  | CircuitOpenError
  | ResponseParseError
  | OutputValidationError
  | ToolCallError
  | MaxStepsError

/**
 * The union as a `Schema`, e.g. to send errors across a process boundary.
 *
 * @example
 * import { Schema } from "effect"
 * import { LlmError } from "@clearside/llm"
 * const encode = Schema.encodeSync(LlmError.LlmError)
 *
 * @since 0.1.0
 * @category Errors
 */
export const LlmError = Schema.Union(
  RateLimitError,
  QuotaExceededError,
  TimeoutError,
  InvalidRequestError,
  AuthenticationError,
  NotFoundError,
  ServerError,
  OverloadedError,
  ConnectionError,
  CircuitOpenError,
  ResponseParseError,
  OutputValidationError,
  ToolCallError,
  MaxStepsError
)

/**
 * Every error class by its tag, e.g. to build an error from a tag.
 *
 * @example
 * import { LlmError } from "@clearside/llm"
 * const error = new LlmError.classes.OverloadedError({ provider: "anthropic", message: "Overloaded" })
 *
 * @since 0.1.0
 * @category Errors
 */
export const classes = {
  RateLimitError,
  QuotaExceededError,
  TimeoutError,
  InvalidRequestError,
  AuthenticationError,
  NotFoundError,
  ServerError,
  OverloadedError,
  ConnectionError,
  CircuitOpenError,
  ResponseParseError,
  OutputValidationError,
  ToolCallError,
  MaxStepsError
} as const satisfies { readonly [Tag in LlmError["_tag"]]: unknown }

/**
 * Every tag of the union, e.g. to label metrics.
 *
 * @example
 * import { LlmError } from "@clearside/llm"
 * LlmError.tags.includes("RateLimitError") // true
 *
 * @since 0.1.0
 * @category Errors
 */
export const tags = Object.keys(classes) as ReadonlyArray<LlmError["_tag"]>

/**
 * The mark every `LlmError` member carries, on its prototype: a copy made with the member's own
 * constructor keeps it, and a look-alike plain object does not have it.
 *
 * @example
 * import { LlmError } from "@clearside/llm"
 * const marked = LlmError.TypeId in new LlmError.ServerError({ provider: "openai", message: "boom", status: 500 }) // true
 *
 * @since 0.1.0
 * @category Symbols
 */
export const TypeId: unique symbol = Symbol.for("@clearside/llm/LlmError")

for (const member of Object.values(classes)) {
  Object.defineProperty(member.prototype, TypeId, { value: TypeId, enumerable: false })
}

/**
 * Whether a value is one of the `LlmError` members.
 *
 * @example
 * import { LlmError } from "@clearside/llm"
 * LlmError.isLlmError(new LlmError.OverloadedError({ provider: "anthropic", message: "Overloaded" })) // true
 *
 * @since 0.1.0
 * @category Guards
 */
export const isLlmError = (u: unknown): u is LlmError => Predicate.hasProperty(u, TypeId)
