/**
 * Test doubles for the `Llm` service: a scripted mock that answers, streams and fails in the order
 * you write, records every request it receives and simulates latency with `Effect.sleep` (so
 * `TestClock` drives it), and a deterministic echo model for examples and demos.
 *
 * Every request goes through `Llm.router` first, so a mock rejects a bad request with the same
 * `InvalidRequestError` a real provider layer would, and records only the requests that passed.
 * When a script runs out, the next call fails with an `InvalidRequestError` whose `code` is
 * `"mock_script_exhausted"` (or answers from the `fallback` step you gave): a mock never hangs
 * unless you script `hang()`.
 *
 * Usage is computed deterministically: one token per whitespace-separated word.
 *
 * @example
 * import { Duration, Effect } from "effect"
 * import { Llm, LlmMock } from "@clearside/llm"
 *
 * const program = Effect.gen(function* () {
 *   const first = yield* Llm.complete({ messages: [{ role: "user", content: "hi" }] })
 *   const second = yield* Llm.complete({ messages: [{ role: "user", content: "again" }] }).pipe(
 *     Effect.catchTag("RateLimitError", (e) => Effect.succeed(e.message))
 *   )
 *   const seen = yield* LlmMock.requests
 *   return { first: first.content, second, calls: seen.length }
 * })
 *
 * program.pipe(
 *   Effect.provide(
 *     LlmMock.layer([
 *       LlmMock.reply("Hello!", { latency: Duration.millis(200) }),
 *       LlmMock.fail("RateLimitError", { retryAfter: Duration.seconds(1) })
 *     ])
 *   )
 * )
 *
 * @since 0.1.0
 */
import { Context, Duration, Effect, Layer, Stream } from "effect"
import * as Llm from "./Llm.js"
import { classes as errorClasses, InvalidRequestError, type LlmError } from "./LlmError.js"
import * as StreamUnwrap from "./internal/streamUnwrap.js"
import * as ToolArguments from "./internal/toolArguments.js"
import type * as LlmRequest from "./LlmRequest.js"

// ---------------------------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------------------------

const defaultMessages: Record<LlmError["_tag"], string> = {
  RateLimitError: "Rate limit reached",
  QuotaExceededError: "You exceeded your current quota",
  TimeoutError: "The request timed out",
  InvalidRequestError: "Invalid request",
  AuthenticationError: "Incorrect API key provided",
  NotFoundError: "The model does not exist",
  ServerError: "The server had an error while processing your request",
  OverloadedError: "Overloaded",
  ConnectionError: "Connection reset by the provider",
  CircuitOpenError: "Circuit open",
  ResponseParseError: "Response body is not valid JSON",
  OutputValidationError: "The answer does not match the schema",
  ToolCallError: "The tool call cannot be run",
  MaxStepsError: "The model was still calling tools after the last step"
}

/**
 * The tag of any `LlmError` member, e.g. `"RateLimitError"`.
 *
 * @example
 * import type { LlmMock } from "@clearside/llm"
 * const tag: LlmMock.ErrorTag = "OverloadedError"
 *
 * @since 0.1.0
 * @category Models
 */
export type ErrorTag = LlmError["_tag"]

/**
 * The fields of the error with tag `Tag`, all optional: `provider` defaults to the mock's provider,
 * `message` to a readable message for that error, and `ServerError`'s `status` to 500.
 *
 * @example
 * import { Duration } from "effect"
 * import type { LlmMock } from "@clearside/llm"
 * const fields: LlmMock.ErrorFields<"RateLimitError"> = { retryAfter: Duration.seconds(2) }
 *
 * @since 0.1.0
 * @category Models
 */
export type ErrorFields<Tag extends ErrorTag> = Partial<ConstructorParameters<(typeof errorClasses)[Tag]>[0]>

type AnyErrorConstructor = new (props: Record<string, unknown>) => LlmError

/**
 * Builds any `LlmError` member by tag with sensible defaults, for scripts and for the values a test
 * expects.
 *
 * @example
 * import { Duration } from "effect"
 * import { LlmMock } from "@clearside/llm"
 *
 * const limited = LlmMock.error("RateLimitError", { provider: "openai", retryAfter: Duration.seconds(2) })
 * const down = LlmMock.error("ServerError", { status: 503 })
 *
 * @since 0.1.0
 * @category Errors
 */
export const error = <Tag extends ErrorTag>(
  tag: Tag,
  fields?: ErrorFields<Tag>
): Extract<LlmError, { readonly _tag: Tag }> => {
  const ErrorClass = errorClasses[tag] as unknown as AnyErrorConstructor
  const defaults: Record<string, unknown> = { provider: "mock", message: defaultMessages[tag] }
  if (tag === "ServerError") defaults.status = 500
  if (tag === "OutputValidationError") Object.assign(defaults, { text: "", attempts: 1 })
  if (tag === "ToolCallError") Object.assign(defaults, { tool: "tool", callId: "call_1" })
  if (tag === "MaxStepsError") defaults.steps = 8
  return new ErrorClass({ ...defaults, ...fields }) as Extract<LlmError, { readonly _tag: Tag }>
}

/** An error given as a value, or by tag (built when it is raised, for the provider that raised it). */
type ErrorInput = LlmError | ErrorTag

// ---------------------------------------------------------------------------------------------
// Steps
// ---------------------------------------------------------------------------------------------

/**
 * Timing of a step: `latency` is waited before the answer (or the first stream chunk),
 * `chunkDelay` between stream chunks. Both use `Effect.sleep`, so `TestClock.adjust` drives them.
 *
 * @example
 * import { Duration } from "effect"
 * import type { LlmMock } from "@clearside/llm"
 * const timing: LlmMock.Timing = { latency: Duration.seconds(1), chunkDelay: "50 millis" }
 *
 * @since 0.1.0
 * @category Models
 */
export interface Timing {
  readonly latency?: Duration.DurationInput
  readonly chunkDelay?: Duration.DurationInput
}

/**
 * What an answer step may override: the reported model, id, finish reason and usage (else
 * computed from the words of the request and the answer).
 *
 * @example
 * import type { LlmMock } from "@clearside/llm"
 * const options: LlmMock.AnswerOptions = { finishReason: "length", model: "gpt-4o-mini" }
 *
 * @since 0.1.0
 * @category Models
 */
export interface AnswerOptions extends Timing {
  readonly model?: string
  readonly id?: string
  readonly finishReason?: LlmRequest.FinishReason
  readonly usage?: LlmRequest.Usage
}

/**
 * One scripted answer. Build steps with {@link reply}, {@link chunks}, {@link fail}, {@link hang},
 * {@link echoing}, {@link respond}, and for answers beyond text {@link toolCall}, {@link toolCalls},
 * {@link reasoning}, {@link refusal} and {@link answer}. Each call to `complete` or `stream` takes the next step.
 *
 * @example
 * import { LlmMock } from "@clearside/llm"
 * const script: ReadonlyArray<LlmMock.Step> = [LlmMock.fail("OverloadedError"), LlmMock.reply("ok")]
 *
 * @since 0.1.0
 * @category Models
 */
export type Step =
  | { readonly _tag: "Reply"; readonly content: string; readonly options: AnswerOptions }
  | {
      readonly _tag: "Chunks"
      readonly chunks: ReadonlyArray<string>
      readonly options: AnswerOptions & { readonly error?: ErrorInput; readonly hang?: boolean }
    }
  | { readonly _tag: "Fail"; readonly error: ErrorInput; readonly fields: object; readonly options: Timing }
  | { readonly _tag: "Hang"; readonly options: Timing }
  | { readonly _tag: "Echo"; readonly options: AnswerOptions }
  | { readonly _tag: "Parts"; readonly parts: AnswerParts; readonly options: AnswerOptions }
  | { readonly _tag: "Respond"; readonly f: (request: LlmRequest.LlmRequest) => Step }

/**
 * Answers with `content`. `complete` returns it whole; `stream` sends it word by word (each
 * `TextDelta` but the first starts with its leading space) and then one `Finish`.
 *
 * @example
 * import { Duration } from "effect"
 * import { LlmMock } from "@clearside/llm"
 * const step = LlmMock.reply("The sky is blue.", { latency: Duration.millis(300), model: "gpt-4o-mini" })
 *
 * @since 0.1.0
 * @category Steps
 */
export const reply = (content: string, options: AnswerOptions = {}): Step => ({ _tag: "Reply", content, options })

/**
 * Streams exactly these `TextDelta`s, then one `Finish`; `complete` answers with them joined.
 * With `error`, the stream fails with that error after the last chunk instead of finishing (a
 * mid-stream failure after `chunks.length` chunks; an error given by tag gets `textEmitted` set),
 * and `complete` fails with it. With `hang: true`, the stream stalls after the last chunk.
 *
 * @example
 * import { LlmMock } from "@clearside/llm"
 * const cut = LlmMock.chunks(["Once", " upon"], { error: "ConnectionError", chunkDelay: "100 millis" })
 *
 * @since 0.1.0
 * @category Steps
 */
export const chunks = (
  chunks: ReadonlyArray<string>,
  options: AnswerOptions & { readonly error?: LlmError | ErrorTag; readonly hang?: boolean } = {}
): Step => ({ _tag: "Chunks", chunks, options })

/**
 * Answers a structured-output request (`Llm.generateObject`, `Llm.streamObject`) with `value` as
 * its JSON text, streamed in fragments of `fragment` characters (default 16) so that partial
 * objects can be seen. To script an answer that does not decode, reply with the bad text itself:
 * `LlmMock.reply("{ not json")`.
 *
 * @example
 * import { LlmMock } from "@clearside/llm"
 * const script = [LlmMock.reply("{ oops"), LlmMock.object({ winner: "affirmative", margin: 2 })]
 *
 * @since 0.1.0
 * @category Steps
 */
export const object = (value: unknown, options: AnswerOptions & { readonly fragment?: number } = {}): Step => {
  const { fragment = 16, ...answer } = options
  const text = JSON.stringify(value) ?? "null"
  const size = Math.max(1, Math.floor(fragment))
  const pieces: Array<string> = []
  for (let i = 0; i < text.length; i += size) pieces.push(text.slice(i, i + size))
  return { _tag: "Chunks", chunks: pieces, options: answer }
}

/**
 * Fails the call with an error: an `LlmError` value, or a tag plus optional fields (the provider
 * defaults to the mock's, the message to a readable default).
 *
 * @example
 * import { Duration } from "effect"
 * import { LlmMock } from "@clearside/llm"
 *
 * const limited = LlmMock.fail("RateLimitError", { retryAfter: Duration.seconds(2) })
 * const down = LlmMock.fail(LlmMock.error("ServerError", { status: 502 }), { latency: "1 second" })
 *
 * @since 0.1.0
 * @category Steps
 */
export const fail: {
  <Tag extends ErrorTag>(tag: Tag, fields?: ErrorFields<Tag> & { readonly latency?: Duration.DurationInput }): Step
  (error: LlmError, options?: { readonly latency?: Duration.DurationInput }): Step
} = (input: ErrorInput, fieldsOrOptions: { readonly latency?: Duration.DurationInput } & object = {}): Step => {
  const { latency, ...fields } = fieldsOrOptions
  return {
    _tag: "Fail",
    error: input,
    fields: typeof input === "string" ? fields : {},
    options: latency === undefined ? {} : { latency }
  }
}

/**
 * Never answers (after `latency`, if given): for timeout tests under `TestClock`.
 *
 * @example
 * import { LlmMock } from "@clearside/llm"
 * const script = [LlmMock.hang(), LlmMock.reply("second attempt answers")]
 *
 * @since 0.1.0
 * @category Steps
 */
export const hang = (options: Timing = {}): Step => ({ _tag: "Hang", options })

/**
 * Answers like the echo model: `"echo: "` and the last user message, streamed word by word, cut
 * to `maxTokens` words (finish reason `length`) when the request sets it.
 *
 * @example
 * import { LlmMock } from "@clearside/llm"
 * const mock = LlmMock.make([LlmMock.reply("scripted")], { fallback: LlmMock.echoing() })
 *
 * @since 0.1.0
 * @category Steps
 */
export const echoing = (options: AnswerOptions = {}): Step => ({ _tag: "Echo", options })

/**
 * Chooses the step from the request, e.g. to answer per prompt.
 *
 * @example
 * import { LlmMock } from "@clearside/llm"
 * const step = LlmMock.respond((request) =>
 *   request.model === "gpt-9" ? LlmMock.fail("NotFoundError") : LlmMock.reply("fine")
 * )
 *
 * @since 0.1.0
 * @category Steps
 */
export const respond = (f: (request: LlmRequest.LlmRequest) => Step): Step => ({ _tag: "Respond", f })

/**
 * A tool call a scripted answer makes. `id` defaults to `call_<n>`, numbered across all the mock's
 * answers (so the steps of a tool loop never share one); `argumentsText` (the JSON text
 * the "provider" sends) defaults to `arguments` as JSON: give it to script broken JSON.
 *
 * @example
 * import type { LlmMock } from "@clearside/llm"
 * const call: LlmMock.ScriptedToolCall = { name: "lookup", arguments: { q: "rates" } }
 * const broken: LlmMock.ScriptedToolCall = { name: "lookup", argumentsText: '{"q": ' }
 *
 * @since 0.1.0
 * @category Models
 */
export interface ScriptedToolCall {
  readonly name: string
  readonly arguments?: unknown
  readonly argumentsText?: string
  readonly id?: string
}

/**
 * What a scripted answer holds beyond text: `reasoning` (with its `signature`), tool calls and a
 * `refusal`. The finish reason follows (`tool_calls` with calls, `refusal` with a refusal) unless
 * the options set one.
 *
 * @example
 * import type { LlmMock } from "@clearside/llm"
 * const parts: LlmMock.AnswerParts = { reasoning: "Check the rate first.", toolCalls: [{ name: "lookup", arguments: {} }] }
 *
 * @since 0.1.0
 * @category Models
 */
export interface AnswerParts {
  readonly text?: string
  readonly reasoning?: string
  readonly signature?: string
  readonly toolCalls?: ReadonlyArray<ScriptedToolCall>
  readonly refusal?: string
}

/**
 * Answers with any mix of text, reasoning, tool calls and a refusal. A stream sends the reasoning
 * word by word (`ReasoningDelta`s, the signature on a last empty one), the text word by word, then
 * each call as `ToolCallStart`, one `ToolCallDelta` and `ToolCall`, then the `Finish`.
 *
 * @example
 * import { LlmMock } from "@clearside/llm"
 * const step = LlmMock.answer({ text: "Let me look.", toolCalls: [{ name: "lookup", arguments: { q: "EUR" } }] })
 *
 * @since 0.1.0
 * @category Steps
 */
export const answer = (parts: AnswerParts, options: AnswerOptions = {}): Step => ({ _tag: "Parts", parts, options })

/**
 * Answers with one tool call (finish reason `tool_calls`), optionally after some `text`.
 *
 * @example
 * import { LlmMock } from "@clearside/llm"
 * const step = LlmMock.toolCall("lookup", { pair: "EURUSD" }, { id: "call_1" })
 * const broken = LlmMock.toolCall("lookup", undefined, { argumentsText: '{"pair": ' })
 *
 * @since 0.1.0
 * @category Steps
 */
export const toolCall = (
  name: string,
  args: unknown,
  options: AnswerOptions & { readonly id?: string; readonly argumentsText?: string; readonly text?: string } = {}
): Step => {
  const { argumentsText, id, text, ...rest } = options
  const call: ScriptedToolCall = {
    name,
    arguments: args,
    ...(id !== undefined ? { id } : {}),
    ...(argumentsText !== undefined ? { argumentsText } : {})
  }
  return answer({ toolCalls: [call], ...(text !== undefined ? { text } : {}) }, rest)
}

/**
 * Answers with several tool calls at once (parallel calls).
 *
 * @example
 * import { LlmMock } from "@clearside/llm"
 * const step = LlmMock.toolCalls([{ name: "weather", arguments: { city: "Oslo" } }, { name: "weather", arguments: { city: "Rome" } }])
 *
 * @since 0.1.0
 * @category Steps
 */
export const toolCalls = (calls: ReadonlyArray<ScriptedToolCall>, options: AnswerOptions = {}): Step =>
  answer({ toolCalls: calls }, options)

/**
 * Answers with reasoning, then `content`; `signature` is the signature a provider such as
 * Anthropic would give the reasoning.
 *
 * @example
 * import { LlmMock } from "@clearside/llm"
 * const step = LlmMock.reasoning("925 / 5 = 185", "185", { signature: "sig-1" })
 *
 * @since 0.1.0
 * @category Steps
 */
export const reasoning = (
  reasoning: string,
  content: string,
  options: AnswerOptions & { readonly signature?: string } = {}
): Step => {
  const { signature, ...rest } = options
  return answer({ reasoning, text: content, ...(signature !== undefined ? { signature } : {}) }, rest)
}

/**
 * Refuses: no text, finish reason `refusal` and the refusal on the answer (as an OpenAI refusal).
 *
 * @example
 * import { LlmMock } from "@clearside/llm"
 * const step = LlmMock.refusal("I can't help with that.")
 *
 * @since 0.1.0
 * @category Steps
 */
export const refusal = (text: string, options: AnswerOptions = {}): Step => answer({ refusal: text }, options)

// ---------------------------------------------------------------------------------------------
// The mock
// ---------------------------------------------------------------------------------------------

/**
 * Options of a mock. `provider` is the name it reports on responses and errors (default: the
 * name the request was routed under, `"mock"` when none); `model` the model it reports when the
 * request names none; `latency` and `chunkDelay` apply to every step that sets none; `fallback`
 * answers every call after the script is exhausted (default: fail with `mock_script_exhausted`).
 *
 * @example
 * import { LlmMock } from "@clearside/llm"
 * const options: LlmMock.Options = { provider: "openai", model: "gpt-4o-mini", latency: "200 millis" }
 *
 * @since 0.1.0
 * @category Models
 */
export interface Options extends Timing {
  readonly provider?: string
  readonly model?: string
  readonly fallback?: Step
}

/**
 * A request the mock received (after validation), with the method it came through.
 *
 * @example
 * import type { LlmMock } from "@clearside/llm"
 * const describe = (call: LlmMock.Call) => `${call.method}: ${call.request.messages.length} messages`
 *
 * @since 0.1.0
 * @category Models
 */
export interface Call {
  readonly method: "complete" | "stream"
  readonly request: LlmRequest.LlmRequest
}

/**
 * Reads what a mock received. `requests` lists the validated requests in arrival order, `calls`
 * the same with their method, `remaining` counts the script steps not used yet.
 *
 * @example
 * import { Effect } from "effect"
 * import type { LlmMock } from "@clearside/llm"
 * const lastPrompt = (recorder: LlmMock.Recorder["Type"]) =>
 *   Effect.map(recorder.requests, (requests) => requests.at(-1)?.messages.at(-1)?.content)
 *
 * @since 0.1.0
 * @category Models
 */
export interface RecorderService {
  readonly requests: Effect.Effect<ReadonlyArray<LlmRequest.LlmRequest>>
  readonly calls: Effect.Effect<ReadonlyArray<Call>>
  readonly remaining: Effect.Effect<number>
}

/**
 * A mock: an `Llm.Service` that is also a provider (for `Llm.router`) and its own recorder.
 *
 * @example
 * import { Effect } from "effect"
 * import { LlmMock } from "@clearside/llm"
 *
 * const program = Effect.gen(function* () {
 *   const mock = yield* LlmMock.make([LlmMock.reply("ok")])
 *   yield* mock.complete({ messages: [{ role: "user", content: "hi" }] })
 *   return (yield* mock.requests).length // 1
 * })
 *
 * @since 0.1.0
 * @category Models
 */
export interface Mock extends Llm.Service, Llm.Provider, RecorderService {}

/**
 * The tag under which {@link layer} and {@link layerEcho} provide the mock's recorder.
 *
 * @example
 * import { Effect } from "effect"
 * import { LlmMock } from "@clearside/llm"
 * const count = Effect.flatMap(LlmMock.Recorder, (recorder) => recorder.requests)
 *
 * @since 0.1.0
 * @category Tags
 */
export class Recorder extends Context.Tag("@clearside/llm/LlmMock/Recorder")<Recorder, RecorderService>() {}

/**
 * The requests received by the mock in context, in arrival order.
 *
 * @example
 * import { Effect } from "effect"
 * import { Llm, LlmMock } from "@clearside/llm"
 *
 * const program = Effect.gen(function* () {
 *   yield* Llm.complete({ messages: [{ role: "user", content: "hi" }] })
 *   return yield* LlmMock.requests
 * }).pipe(Effect.provide(LlmMock.layer([LlmMock.reply("hello")])))
 *
 * @since 0.1.0
 * @category Accessors
 */
export const requests: Effect.Effect<ReadonlyArray<LlmRequest.LlmRequest>, never, Recorder> = Effect.flatMap(
  Recorder,
  (recorder) => recorder.requests
)

/**
 * The calls received by the mock in context, with their method.
 *
 * @example
 * import { Effect } from "effect"
 * import { LlmMock } from "@clearside/llm"
 * const methods = Effect.map(LlmMock.calls, (calls) => calls.map((c) => c.method))
 *
 * @since 0.1.0
 * @category Accessors
 */
export const calls: Effect.Effect<ReadonlyArray<Call>, never, Recorder> = Effect.flatMap(
  Recorder,
  (recorder) => recorder.calls
)

const words = (text: string): number => text.split(/\s+/).filter((w) => w.length > 0).length

/** Splits text into word pieces whose concatenation is the text ("a b" -> ["a", " b"]). */
const wordPieces = (text: string): ReadonlyArray<string> => {
  const pieces = text.match(/\s*\S+/g)
  if (pieces === null) return text === "" ? [] : [text]
  const consumed = pieces.join("").length
  if (consumed < text.length) pieces[pieces.length - 1] += text.slice(consumed)
  return pieces
}

/** The text of a message's content: a string, or its text parts joined. */
const textOf = (content: LlmRequest.Message["content"]): string =>
  typeof content === "string"
    ? content
    : content.flatMap((part) => (part.type === "text" ? [part.text] : [])).join(" ")

const usageOf = (request: LlmRequest.LlmRequest, content: string): LlmRequest.Usage => {
  const inputTokens = request.messages.reduce((n, m) => n + words(textOf(m.content)), 0)
  const outputTokens = words(content)
  return { inputTokens, outputTokens, totalTokens: inputTokens + outputTokens }
}

const pause = (duration: Duration.DurationInput | undefined): Effect.Effect<void> =>
  duration === undefined || Duration.lessThanOrEqualTo(Duration.decode(duration), Duration.zero)
    ? Effect.void
    : Effect.sleep(duration)

interface Answer {
  readonly pieces: ReadonlyArray<string>
  readonly finishReason: LlmRequest.FinishReason
  readonly options: AnswerOptions
  readonly parts?: AnswerParts
}

/** The parts of an answer other than its text and `Finish`, as a stream sends them (reasoning first). */
const extraEvents = (
  parts: AnswerParts | undefined,
  where: "before" | "after",
  nextId: () => string
): Array<LlmRequest.LlmStreamEvent> => {
  const events: Array<LlmRequest.LlmStreamEvent> = []
  if (parts === undefined) return events
  if (where === "before") {
    if (parts.reasoning !== undefined) {
      for (const text of wordPieces(parts.reasoning)) events.push({ _tag: "ReasoningDelta", text })
    }
    if (parts.signature !== undefined) events.push({ _tag: "ReasoningDelta", text: "", signature: parts.signature })
    return events
  }
  const calls = parts.toolCalls ?? []
  for (let i = 0; i < calls.length; i++) {
    const call = calls[i]!
    const id = call.id ?? nextId()
    const argumentsText = call.argumentsText ?? ToolArguments.text(call.arguments)
    events.push({ _tag: "ToolCallStart", id, name: call.name })
    if (argumentsText !== "") events.push({ _tag: "ToolCallDelta", id, argumentsDelta: argumentsText })
    events.push(ToolArguments.toolCall(id, call.name, argumentsText))
  }
  return events
}

const echoAnswer = (request: LlmRequest.LlmRequest, options: AnswerOptions): Answer => {
  const lastUser = [...request.messages].reverse().find((m) => m.role === "user") ?? request.messages.at(-1)
  const pieces = wordPieces(`echo: ${lastUser === undefined ? "" : textOf(lastUser.content)}`)
  const limit = request.maxTokens
  return limit !== undefined && pieces.length > limit
    ? { pieces: pieces.slice(0, limit), finishReason: "length", options }
    : { pieces, finishReason: "stop", options }
}

const unsafeMake = (script: ReadonlyArray<Step>, options: Options = {}): Mock => {
  const steps = [...script]
  const received: Array<Call> = []
  let used = 0
  let answered = 0
  // Default tool call ids run on across answers, so a multi-step conversation never reuses one.
  let calledTools = 0
  const nextCallId = () => `call_${++calledTools}`

  const exhausted = (provider: string, call: number): Step => ({
    _tag: "Fail",
    error: new InvalidRequestError({
      provider,
      code: "mock_script_exhausted",
      message:
        `LlmMock script exhausted: call ${call} arrived after all ${steps.length} scripted ` +
        `step${steps.length === 1 ? " was" : "s were"} used (add steps or set a fallback)`
    }),
    fields: {},
    options: {}
  })

  /** Records the call and takes its step; runs when the call runs, not when it is built. */
  const take = (method: Call["method"], request: LlmRequest.LlmRequest) =>
    Effect.sync(() => {
      received.push({ method, request })
      const provider = options.provider ?? request.provider ?? "mock"
      const next = used < steps.length ? steps[used++] : undefined
      let step = next ?? options.fallback ?? exhausted(provider, received.length)
      while (step._tag === "Respond") step = step.f(request)
      return { step, provider }
    })

  const latencyOf = (timing: Timing) => timing.latency ?? options.latency
  const chunkDelayOf = (timing: Timing) => timing.chunkDelay ?? options.chunkDelay

  const answerOf = (step: Extract<Step, { readonly _tag: "Reply" | "Chunks" | "Echo" | "Parts" }>, request: LlmRequest.LlmRequest): Answer =>
    step._tag === "Reply"
      ? { pieces: wordPieces(step.content), finishReason: "stop", options: step.options }
      : step._tag === "Chunks"
        ? { pieces: step.chunks, finishReason: "stop", options: step.options }
        : step._tag === "Parts"
          ? {
              pieces: wordPieces(step.parts.text ?? ""),
              finishReason:
                step.parts.refusal !== undefined ? "refusal" : (step.parts.toolCalls ?? []).length > 0 ? "tool_calls" : "stop",
              options: step.options,
              parts: step.parts
            }
          : echoAnswer(request, step.options)

  const finish = (request: LlmRequest.LlmRequest, provider: string, answer: Answer) => {
    const content = answer.pieces.join("")
    return {
      id: answer.options.id ?? `mock-${++answered}`,
      provider,
      model: answer.options.model ?? request.model ?? options.model ?? "mock-model",
      content,
      finishReason: answer.options.finishReason ?? answer.finishReason,
      ...(answer.parts?.refusal !== undefined ? { refusal: answer.parts.refusal } : {}),
      usage: answer.options.usage ?? usageOf(request, content)
    }
  }

  const failureOf = (step: Extract<Step, { readonly _tag: "Fail" }>, provider: string): LlmError =>
    typeof step.error === "string" ? error(step.error, { provider, ...step.fields }) : step.error

  /** The error a chunk script ends with, if any; one given by tag counts the text already sent. */
  const cutOf = (step: Extract<Step, { readonly _tag: "Chunks" }>, provider: string): LlmError | undefined => {
    const cut = step.options.error
    return typeof cut === "string" ? error(cut, { provider, textEmitted: step.chunks.join("").length }) : cut
  }

  const call: Llm.Call = (request, mode) =>
    Llm.fromStream(StreamUnwrap.unwrap(
      Effect.map(take(mode === "whole" ? "complete" : "stream", request), ({ provider, step }): Stream.Stream<LlmRequest.LlmStreamEvent, LlmError> => {
        const timing: Timing = step.options
        const start = pause(latencyOf(timing))
        if (step._tag === "Hang") return Stream.fromEffect(Effect.zipRight(start, Effect.never))
        if (step._tag === "Fail") return Stream.fromEffect(Effect.zipRight(start, Effect.fail(failureOf(step, provider))))
        const answer = answerOf(step, request)
        const failure = step._tag === "Chunks" ? cutOf(step, provider) : undefined
        const hangs = step._tag === "Chunks" && step.options.hang === true
        const finished = (): LlmRequest.Finish => {
          const { content: _content, ...rest } = finish(request, provider, answer)
          return { _tag: "Finish", ...rest }
        }
        // A whole answer arrives at once after the latency, or not at all.
        const before = extraEvents(answer.parts, "before", nextCallId)
        const after = extraEvents(answer.parts, "after", nextCallId)
        if (mode === "whole") {
          if (failure !== undefined) return Stream.fromEffect(Effect.zipRight(start, Effect.fail(failure)))
          if (hangs) return Stream.fromEffect(Effect.zipRight(start, Effect.never))
          const text = answer.pieces.join("")
          const reasoned = before.filter((e) => e._tag === "ReasoningDelta")
          const whole: Array<LlmRequest.LlmStreamEvent> = []
          if (reasoned.length > 0) {
            const signature = answer.parts?.signature
            const joined = reasoned.map((e) => e.text).join("")
            whole.push(signature === undefined ? { _tag: "ReasoningDelta", text: joined } : { _tag: "ReasoningDelta", text: joined, signature })
          }
          if (text !== "") whole.push({ _tag: "TextDelta", text })
          return Stream.fromIterableEffect(Effect.as(start, [...whole, ...after, finished()]))
        }
        const delay = chunkDelayOf(timing)
        const events: Array<LlmRequest.LlmStreamEvent> = [
          ...before,
          ...answer.pieces.map((text): LlmRequest.LlmStreamEvent => ({ _tag: "TextDelta", text })),
          ...after
        ]
        const deltas = Stream.fromIterable(events.map((event, index) => ({ event, index }))).pipe(
          Stream.mapEffect(({ event, index }) => Effect.as(index === 0 ? start : pause(delay), event))
        )
        const end: Stream.Stream<LlmRequest.LlmStreamEvent, LlmError> =
          failure !== undefined
            ? Stream.fail(failure)
            : hangs
              ? Stream.never
              : Stream.fromEffect(Effect.suspend(() => Effect.as(events.length === 0 ? start : Effect.void, finished())))
        return Stream.concat(deltas, end)
      })
    ))

  const defaultName = options.provider ?? "mock"
  const model = options.model ?? "mock-model"
  // Routed under the request's own provider name, so a mock stands in for any provider while
  // still validating every request exactly as `Llm.router` does for real providers.
  const routed = (input: LlmRequest.LlmRequest): Llm.Service => {
    let name: unknown
    try {
      name = (input as { readonly provider?: unknown } | null | undefined)?.provider
    } catch {
      name = undefined
    }
    return Llm.fromProvider({ name: typeof name === "string" && name !== "" ? name : defaultName, model, call })
  }
  const service = Llm.fromCall((input, mode) => routed(input).call(input, mode))

  return {
    ...service,
    name: defaultName,
    model,
    requests: Effect.sync(() => received.map((call) => call.request)),
    calls: Effect.sync(() => [...received]),
    remaining: Effect.sync(() => steps.length - used)
  }
}

/**
 * Builds a scripted mock: each call to `complete` or `stream` takes the next step of `script`.
 *
 * @example
 * import { Effect } from "effect"
 * import { LlmMock } from "@clearside/llm"
 *
 * const program = Effect.gen(function* () {
 *   const mock = yield* LlmMock.make([LlmMock.fail("OverloadedError"), LlmMock.reply("second try")])
 *   const first = yield* Effect.either(mock.complete({ messages: [{ role: "user", content: "hi" }] }))
 *   const second = yield* mock.complete({ messages: [{ role: "user", content: "hi" }] })
 *   return [first._tag, second.content] // ["Left", "second try"]
 * })
 *
 * @since 0.1.0
 * @category Constructors
 */
export const make = (script: ReadonlyArray<Step>, options?: Options): Effect.Effect<Mock> =>
  Effect.sync(() => unsafeMake(script, options))

/**
 * Provides a fresh scripted mock as the `Llm` service, and its `Recorder`.
 *
 * @example
 * import { Effect } from "effect"
 * import { Llm, LlmMock } from "@clearside/llm"
 *
 * const answer = Llm.complete({ messages: [{ role: "user", content: "hi" }] }).pipe(
 *   Effect.provide(LlmMock.layer([LlmMock.reply("hello")]))
 * )
 *
 * @since 0.1.0
 * @category Layers
 */
export const layer = (script: ReadonlyArray<Step>, options?: Options): Layer.Layer<Llm.Llm | Recorder> =>
  Layer.effectContext(
    Effect.map(make(script, options), (mock) => Context.make(Llm.Llm, mock).pipe(Context.add(Recorder, mock)))
  )

/**
 * The echo model: answers `"echo: <last user message>"`, streams it word by word, and computes
 * usage as one token per word. Deterministic; `latency` and `chunkDelay` are slept with
 * `Effect.sleep`. The result also records its requests.
 *
 * @example
 * import { Effect } from "effect"
 * import { LlmMock } from "@clearside/llm"
 *
 * const echo = LlmMock.echo({ model: "echo-1", chunkDelay: "20 millis" })
 * const answer = echo.complete({ messages: [{ role: "user", content: "hello there" }] }) // "echo: hello there"
 *
 * @since 0.1.0
 * @category Constructors
 */
export const echo = (options: Omit<Options, "fallback"> = {}): Mock => unsafeMake([], { ...options, model: options.model ?? "mock-echo", fallback: echoing() })

/**
 * Provides the echo model as the `Llm` service, and its `Recorder`.
 *
 * @example
 * import { Effect } from "effect"
 * import { Llm, LlmMock } from "@clearside/llm"
 *
 * const answer = Llm.complete({ messages: [{ role: "user", content: "ping" }] }).pipe(
 *   Effect.map((r) => r.content), // "echo: ping"
 *   Effect.provide(LlmMock.layerEcho())
 * )
 *
 * @since 0.1.0
 * @category Layers
 */
export const layerEcho = (options: Omit<Options, "fallback"> = {}): Layer.Layer<Llm.Llm | Recorder> =>
  Layer.effectContext(
    Effect.sync(() => {
      const mock = echo(options)
      return Context.make(Llm.Llm, mock).pipe(Context.add(Recorder, mock))
    })
  )
