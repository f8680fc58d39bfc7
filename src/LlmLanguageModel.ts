/**
 * `@effect/ai`'s `LanguageModel` backed by the `Llm` service: `LanguageModel.generateText`,
 * `streamText`, `generateObject`, a `Toolkit` and `Chat` go through every policy of this library
 * (retry, timeouts, rate limits, circuit breaker, fallback, usage metrics, logs and spans).
 *
 * A `Prompt` becomes an `Llm` request (text, images, tool calls, tool results and reasoning; tools
 * with their JSON Schemas; tool choice; the response format), and the answer comes back as
 * `Response` parts (text, reasoning, tool calls with their parameter deltas, a finish with usage).
 * Retries happen inside `Llm`, before `@effect/ai` resolves tool calls, so a retried call never runs
 * a tool handler twice. An `LlmError` arrives as an `AiError` whose `cause` is the original error
 * ({@link llmError}, {@link isRetryable}).
 *
 * Imported from `@clearside/llm/LlmLanguageModel`, so that the main entry does not need
 * `@effect/ai` (an optional peer dependency).
 *
 * @example
 * import { LanguageModel } from "@effect/ai"
 * import { Effect, Layer } from "effect"
 * import { LlmMock } from "@clearside/llm"
 * import * as LlmLanguageModel from "@clearside/llm/LlmLanguageModel"
 *
 * const program = LanguageModel.generateText({ prompt: "Say hello" }).pipe(
 *   Effect.map((response) => response.text),
 *   Effect.provide(LlmLanguageModel.layer.pipe(Layer.provide(LlmMock.layerEcho())))
 * )
 *
 * @since 0.1.0
 */
import * as AiError from "@effect/ai/AiError"
import * as LanguageModel from "@effect/ai/LanguageModel"
import type * as Prompt from "@effect/ai/Prompt"
import type * as Response from "@effect/ai/Response"
import * as Tool from "@effect/ai/Tool"
import { Context, Effect, Encoding, Layer, Option, Predicate, type Schema, Stream } from "effect"
import { dual } from "effect/Function"
import * as JsonSchema from "./internal/jsonSchema.js"
import * as StructuredOutput from "./internal/structuredOutput.js"
import { Llm } from "./Llm.js"
import { isLlmError, type LlmError } from "./LlmError.js"
import type * as LlmRequest from "./LlmRequest.js"

const module = "LlmLanguageModel"

/**
 * What every request of the language model starts from: which provider and model, and the
 * sampling settings `@effect/ai` has no option for. The prompt, tools, tool choice and response
 * format come from each `@effect/ai` call.
 *
 * @example
 * import type * as LlmLanguageModel from "@clearside/llm/LlmLanguageModel"
 * const defaults: LlmLanguageModel.Defaults = { provider: "anthropic", maxTokens: 1024, temperature: 0.2 }
 *
 * @since 0.1.0
 * @category Models
 */
export type Defaults = Omit<LlmRequest.LlmRequest, "messages" | "tools" | "toolChoice" | "responseFormat">

/**
 * Defaults for the calls of one region of a program, over the layer's: another provider or model
 * for one call, a lower `maxTokens`... Set with {@link withDefaults}, or on a stream with
 * `Stream.provideService(LlmLanguageModel.Config, defaults)`.
 *
 * @example
 * import { Effect } from "effect"
 * import * as LlmLanguageModel from "@clearside/llm/LlmLanguageModel"
 *
 * const careful = <A, E, R>(effect: Effect.Effect<A, E, R>) =>
 *   Effect.provideService(effect, LlmLanguageModel.Config, { provider: "anthropic", temperature: 0 })
 *
 * @since 0.1.0
 * @category Context
 */
export class Config extends Context.Tag("@clearside/llm/LlmLanguageModel/Config")<Config, Defaults>() {}

/**
 * Runs an effect with `defaults` over the layer's (and over those of an enclosing
 * `withDefaults`), for every `@effect/ai` call in it.
 *
 * @example
 * import { LanguageModel } from "@effect/ai"
 * import { Effect } from "effect"
 * import * as LlmLanguageModel from "@clearside/llm/LlmLanguageModel"
 *
 * const summary = LanguageModel.generateText({ prompt: "Summarise the debate." }).pipe(
 *   LlmLanguageModel.withDefaults({ provider: "anthropic", model: "claude-haiku-4-5", maxTokens: 256 })
 * )
 *
 * @since 0.1.0
 * @category Context
 */
export const withDefaults: {
  (defaults: Defaults): <A, E, R>(self: Effect.Effect<A, E, R>) => Effect.Effect<A, E, R>
  <A, E, R>(self: Effect.Effect<A, E, R>, defaults: Defaults): Effect.Effect<A, E, R>
} = dual(2, <A, E, R>(self: Effect.Effect<A, E, R>, defaults: Defaults): Effect.Effect<A, E, R> =>
  Effect.flatMap(Effect.serviceOption(Config), (outer) =>
    Effect.provideService(self, Config, Option.match(outer, { onNone: () => defaults, onSome: (o) => ({ ...o, ...defaults }) }))
  ))

/**
 * The `LlmError` an `AiError` came from, if it came from one: its `_tag`, `retryable`, `provider`
 * and every other field.
 *
 * @example
 * import { LanguageModel } from "@effect/ai"
 * import { Effect, Option } from "effect"
 * import * as LlmLanguageModel from "@clearside/llm/LlmLanguageModel"
 *
 * const answer = LanguageModel.generateText({ prompt: "hi" }).pipe(
 *   Effect.catchAll((error) =>
 *     Option.match(LlmLanguageModel.llmError(error), {
 *       onNone: () => Effect.fail(error),
 *       onSome: (cause) => Effect.succeed(`${cause._tag} from ${cause.provider}`)
 *     })
 *   )
 * )
 *
 * @since 0.1.0
 * @category Errors
 */
export const llmError = (error: AiError.AiError): Option.Option<LlmError> =>
  isLlmError(error.cause) ? Option.some(error.cause) : Option.none()

/**
 * Whether the `LlmError` behind an `AiError` says trying again may succeed (`false` for an
 * `AiError` of `@effect/ai`'s own, such as a tool's parameters that do not decode). `Llm` has
 * already retried what its policy allows.
 *
 * @example
 * import { LanguageModel } from "@effect/ai"
 * import { Effect, Schedule } from "effect"
 * import * as LlmLanguageModel from "@clearside/llm/LlmLanguageModel"
 *
 * const patient = LanguageModel.generateText({ prompt: "hi" }).pipe(
 *   Effect.retry({ schedule: Schedule.spaced("1 minute"), times: 1, while: LlmLanguageModel.isRetryable })
 * )
 *
 * @since 0.1.0
 * @category Errors
 */
export const isRetryable = (error: AiError.AiError): boolean =>
  Option.match(llmError(error), { onNone: () => false, onSome: (cause) => cause.retryable })

/**
 * The `AiError` for an `LlmError`, with the original as its `cause`: a request the library
 * rejected is `MalformedInput`, an answer it could not read `MalformedOutput`, anything else
 * (rate limits, timeouts, servers, an open circuit...) `UnknownError`. The message is the
 * original's.
 *
 * @example
 * import { LlmError } from "@clearside/llm"
 * import * as LlmLanguageModel from "@clearside/llm/LlmLanguageModel"
 *
 * const error = LlmLanguageModel.toAiError(new LlmError.RateLimitError({ provider: "openai", message: "Too many requests" }), "generateText")
 * error._tag // "UnknownError"
 *
 * @since 0.1.0
 * @category Errors
 */
export const toAiError = (error: LlmError, method: string): AiError.AiError => {
  const fields = { module, method, description: `${error._tag}: ${error.message}`, cause: error }
  switch (error._tag) {
    case "InvalidRequestError":
      return new AiError.MalformedInput(fields)
    case "ResponseParseError":
    case "OutputValidationError":
      return new AiError.MalformedOutput(fields)
    default:
      return new AiError.UnknownError(fields)
  }
}

const malformedInput = (method: string, description: string) => new AiError.MalformedInput({ module, method, description })

// Prompt to request ------------------------------------------------------------------------------

const imageTypes: ReadonlyArray<string> = ["image/png", "image/jpeg", "image/gif", "image/webp"]

/** A signature kept on a reasoning part: ours, or the one `@effect/ai-anthropic` keeps. */
const signatureOf = (options: Prompt.ProviderOptions): string | undefined => {
  const ours = options.clearside?.signature
  if (typeof ours === "string") return ours
  const info: unknown = options.anthropic?.info
  return Predicate.isRecord(info) && typeof info.signature === "string" ? info.signature : undefined
}

const imagePart = (part: Prompt.FilePart, method: string): Effect.Effect<LlmRequest.ImagePart, AiError.AiError> => {
  const mediaType = part.mediaType === "image/jpg" ? "image/jpeg" : part.mediaType
  if (!imageTypes.includes(mediaType)) {
    return Effect.fail(malformedInput(method, `a file of type ${part.mediaType} cannot be sent: only images (${imageTypes.join(", ")}) can`))
  }
  const data = part.data
  if (data instanceof URL) return Effect.succeed({ type: "image", url: data.href })
  if (typeof data === "string" && /^(https?|data):/i.test(data)) return Effect.succeed({ type: "image", url: data })
  const base64 = typeof data === "string" ? data : Encoding.encodeBase64(data)
  return Effect.succeed({ type: "image", data: base64, mediaType: mediaType as LlmRequest.ImageMediaType })
}

const toolResultPart = (part: Prompt.ToolResultPart): LlmRequest.ToolResultPart => ({
  type: "tool-result",
  id: part.id,
  name: part.name,
  result: part.result === undefined ? null : part.result,
  ...(part.isFailure ? { isError: true } : {})
})

const messagesOf = (prompt: Prompt.Prompt, method: string): Effect.Effect<Array<LlmRequest.Message>, AiError.AiError> =>
  Effect.gen(function* () {
    const messages: Array<LlmRequest.Message> = []
    const push = (role: LlmRequest.Role, content: ReadonlyArray<LlmRequest.Part>) => {
      if (content.length > 0) messages.push({ role, content } as LlmRequest.Message)
    }
    for (const message of prompt.content) {
      switch (message.role) {
        case "system": {
          if (message.content !== "") messages.push({ role: "system", content: message.content })
          break
        }
        case "user": {
          const parts: Array<LlmRequest.Part> = []
          for (const part of message.content) {
            if (part.type === "text") {
              if (part.text !== "") parts.push({ type: "text", text: part.text })
            } else {
              parts.push(yield* imagePart(part, method))
            }
          }
          push("user", parts)
          break
        }
        case "assistant": {
          const parts: Array<LlmRequest.Part> = []
          // Results of tools a provider ran itself are answers to the calls just made.
          const results: Array<LlmRequest.Part> = []
          for (const part of message.content) {
            switch (part.type) {
              case "text":
                if (part.text !== "") parts.push({ type: "text", text: part.text })
                break
              case "reasoning": {
                const signature = signatureOf(part.options)
                parts.push(signature === undefined ? { type: "reasoning", text: part.text } : { type: "reasoning", text: part.text, signature })
                break
              }
              case "tool-call":
                parts.push({ type: "tool-call", id: part.id, name: part.name, arguments: part.params })
                break
              case "tool-result":
                results.push(toolResultPart(part))
                break
              case "file":
                return yield* malformedInput(method, "an assistant message cannot carry a file")
            }
          }
          push("assistant", parts)
          push("tool", results)
          break
        }
        case "tool": {
          push("tool", message.content.map(toolResultPart))
          break
        }
      }
    }
    return messages
  })

const toolsOf = (tools: ReadonlyArray<Tool.Any>, method: string): Effect.Effect<Array<LlmRequest.Tool>, AiError.AiError> =>
  Effect.forEach(tools, (tool) => {
    if (Tool.isProviderDefined(tool)) {
      return Effect.fail(malformedInput(method, `tool "${tool.name}" is defined by a provider; only tools with a handler of your own can be sent`))
    }
    const description = tool.description ?? Tool.getDescriptionFromSchemaAst(tool.parametersSchema.ast)
    const parameters = Tool.getJsonSchemaFromSchemaAst(tool.parametersSchema.ast) as unknown as Record<string, unknown>
    return Effect.succeed<LlmRequest.Tool>(
      description === undefined ? { name: tool.name, parameters } : { name: tool.name, description, parameters }
    )
  })

const toolChoiceOf = (choice: LanguageModel.ToolChoice<string>): LlmRequest.ToolChoice => {
  if (typeof choice === "string") return choice
  if ("tool" in choice) return { name: choice.tool }
  // `oneOf`: `@effect/ai` has already kept only those tools.
  return choice.mode === "required" ? "required" : "auto"
}

interface Prepared {
  readonly request: LlmRequest.LlmRequest
  readonly target: StructuredOutput.Target<unknown, unknown, unknown> | undefined
}

const prepare = (defaults: Defaults, options: LanguageModel.ProviderOptions, method: string): Effect.Effect<Prepared, AiError.AiError> =>
  Effect.gen(function* () {
    const scoped = yield* Effect.serviceOption(Config)
    const messages = yield* messagesOf(options.prompt, method)
    const tools = yield* toolsOf(options.tools, method)
    const format = options.responseFormat
    const target =
      format.type === "json"
        ? StructuredOutput.target(format.schema as Schema.Schema<unknown, unknown, unknown>, { name: format.objectName })
        : undefined
    const request: LlmRequest.LlmRequest = {
      ...defaults,
      ...Option.getOrUndefined(scoped),
      messages,
      ...(tools.length > 0 ? { tools, toolChoice: toolChoiceOf(options.toolChoice) } : {}),
      ...(target !== undefined ? { responseFormat: target.format } : {})
    }
    return { request, target }
  })

/**
 * The answer's JSON in the form `@effect/ai` decodes with the schema it asked for: a code fence
 * taken off, strict mode's `null`s of optional properties dropped, a wrapped root unwrapped. Text
 * that is not JSON is left as it is, for `@effect/ai` to report.
 */
const objectText = (text: string, target: StructuredOutput.Target<unknown, unknown, unknown>): string => {
  const fenced = /^\s*```[a-zA-Z]*\s*\n?([\s\S]*?)\n?\s*```\s*$/.exec(text)
  let parsed: unknown
  try {
    parsed = JSON.parse(fenced?.[1] ?? text)
  } catch {
    return text
  }
  const cleaned = JsonSchema.dropStrictNulls(parsed, target.format.schema)
  const value = target.wrapped && Predicate.isRecord(cleaned) && "value" in cleaned ? cleaned.value : cleaned
  return JSON.stringify(value) ?? text
}

// Answer to response parts -----------------------------------------------------------------------

const finishReasonOf = (reason: LlmRequest.FinishReason): Response.FinishReason => {
  switch (reason) {
    case "stop":
      return "stop"
    case "length":
      return "length"
    case "content_filter":
    case "refusal":
      return "content-filter"
    case "tool_calls":
      return "tool-calls"
    case "other":
      return "other"
  }
}

const usageOf = (usage: LlmRequest.Usage) => ({
  inputTokens: usage.inputTokens,
  outputTokens: usage.outputTokens,
  totalTokens: usage.totalTokens,
  ...(usage.reasoningTokens !== undefined ? { reasoningTokens: usage.reasoningTokens } : {}),
  ...(usage.cachedInputTokens !== undefined ? { cachedInputTokens: usage.cachedInputTokens } : {})
})

const finishParts = (
  finish: Omit<LlmRequest.Finish, "_tag">
): Array<Response.ResponseMetadataPartEncoded | Response.FinishPartEncoded> => [
  { type: "response-metadata", id: finish.id, modelId: finish.model },
  {
    type: "finish",
    reason: finishReasonOf(finish.finishReason),
    usage: usageOf(finish.usage),
    metadata: {
      clearside: { provider: finish.provider, finishReason: finish.finishReason, ...(finish.refusal !== undefined ? { refusal: finish.refusal } : {}) }
    }
  }
]

const annotate = (span: LanguageModel.ProviderOptions["span"], finish: Omit<LlmRequest.Finish, "_tag">) => {
  span.attribute("gen_ai.provider.name", finish.provider)
  span.attribute("gen_ai.response.model", finish.model)
  span.attribute("gen_ai.response.id", finish.id)
}

/** A tool call's parameters: the parsed JSON, or its text when it is not JSON (the tool then fails to decode it). */
const paramsOf = (call: { readonly arguments: unknown; readonly argumentsText: string }): unknown =>
  call.arguments === undefined ? call.argumentsText : call.arguments

const responseParts = (response: LlmRequest.LlmResponse, target: Prepared["target"]): Array<Response.PartEncoded> => {
  const parts: Array<Response.PartEncoded> = []
  if (response.reasoning !== undefined) {
    parts.push(
      response.reasoningSignature === undefined
        ? { type: "reasoning", text: response.reasoning }
        : { type: "reasoning", text: response.reasoning, metadata: { clearside: { signature: response.reasoningSignature } } }
    )
  }
  if (response.content !== "") parts.push({ type: "text", text: target === undefined ? response.content : objectText(response.content, target) })
  for (const call of response.toolCalls) parts.push({ type: "tool-call", id: call.id, name: call.name, params: paramsOf(call) })
  parts.push(...finishParts(response))
  return parts
}

/** The stream's parts, with text and reasoning opened and closed around their deltas. */
const streamParts = (): ((event: LlmRequest.LlmStreamEvent) => Array<Response.StreamPartEncoded>) => {
  let blocks = 0
  let open: { readonly kind: "text" | "reasoning"; readonly id: string } | undefined
  let signature: string | undefined
  const started = new Set<string>()
  const close = (out: Array<Response.StreamPartEncoded>) => {
    if (open === undefined) return
    if (open.kind === "text") out.push({ type: "text-end", id: open.id })
    else out.push(signature === undefined ? { type: "reasoning-end", id: open.id } : { type: "reasoning-end", id: open.id, metadata: { clearside: { signature } } })
    open = undefined
    signature = undefined
  }
  const openBlock = (kind: "text" | "reasoning", out: Array<Response.StreamPartEncoded>): string => {
    if (open?.kind === kind) return open.id
    close(out)
    const id = `${kind}-${blocks++}`
    open = { kind, id }
    out.push(kind === "text" ? { type: "text-start", id } : { type: "reasoning-start", id })
    return id
  }
  return (event) => {
    const out: Array<Response.StreamPartEncoded> = []
    switch (event._tag) {
      case "TextDelta": {
        if (event.text === "") break
        const id = openBlock("text", out)
        out.push({ type: "text-delta", id, delta: event.text })
        break
      }
      case "ReasoningDelta": {
        const id = openBlock("reasoning", out)
        if (event.text !== "") out.push({ type: "reasoning-delta", id, delta: event.text })
        if (event.signature !== undefined) signature = event.signature
        break
      }
      case "ToolCallStart":
        close(out)
        started.add(event.id)
        out.push({ type: "tool-params-start", id: event.id, name: event.name })
        break
      case "ToolCallDelta":
        if (started.has(event.id)) out.push({ type: "tool-params-delta", id: event.id, delta: event.argumentsDelta })
        break
      case "ToolCall":
        close(out)
        if (started.delete(event.id)) out.push({ type: "tool-params-end", id: event.id })
        out.push({ type: "tool-call", id: event.id, name: event.name, params: paramsOf(event) })
        break
      case "Finish":
        close(out)
        out.push(...finishParts(event))
        break
    }
    return out
  }
}

// The service ------------------------------------------------------------------------------------

/**
 * The `LanguageModel` service over the `Llm` service in context, every request starting from
 * `defaults` (and those of {@link withDefaults} around a call).
 *
 * @example
 * import { LanguageModel } from "@effect/ai"
 * import { Effect } from "effect"
 * import { LlmMock } from "@clearside/llm"
 * import * as LlmLanguageModel from "@clearside/llm/LlmLanguageModel"
 *
 * const text = Effect.gen(function* () {
 *   const model = yield* LlmLanguageModel.make({ maxTokens: 256 })
 *   const response = yield* model.generateText({ prompt: "hello" })
 *   return response.text
 * }).pipe(Effect.provide(LlmMock.layerEcho()))
 *
 * @since 0.1.0
 * @category Constructors
 */
export const make = (defaults: Defaults = {}): Effect.Effect<LanguageModel.Service, never, Llm> =>
  Effect.gen(function* () {
    const llm = yield* Llm
    return yield* LanguageModel.make({
      generateText: (options) =>
        Effect.gen(function* () {
          const { request, target } = yield* prepare(defaults, options, "generateText")
          const response = yield* Effect.mapError(llm.complete(request), (error) => toAiError(error, "generateText"))
          annotate(options.span, response)
          return responseParts(response, target)
        }),
      streamText: (options) =>
        Stream.unwrap(
          Effect.map(prepare(defaults, options, "streamText"), ({ request }) => {
            const toParts = streamParts()
            return llm.stream(request).pipe(
              Stream.tap((event) => Effect.sync(() => event._tag === "Finish" && annotate(options.span, event))),
              Stream.mapConcat(toParts),
              Stream.mapError((error) => toAiError(error, "streamText"))
            )
          })
        )
    })
  })

/**
 * {@link make} as a layer, with `defaults` for every request (a provider, a model, `maxTokens`...).
 *
 * @example
 * import { Layer } from "effect"
 * import { LlmLive } from "@clearside/llm"
 * import * as LlmLanguageModel from "@clearside/llm/LlmLanguageModel"
 *
 * const claude = LlmLanguageModel.layerWith({ provider: "anthropic", model: "claude-sonnet-4-5" }).pipe(Layer.provide(LlmLive.layer))
 *
 * @since 0.1.0
 * @category Layers
 */
export const layerWith = (defaults: Defaults): Layer.Layer<LanguageModel.LanguageModel, never, Llm> =>
  Layer.effect(LanguageModel.LanguageModel, make(defaults))

/**
 * `@effect/ai`'s `LanguageModel` over the `Llm` service in context (its default provider and
 * model).
 *
 * @example
 * import { LanguageModel } from "@effect/ai"
 * import { Effect, Layer } from "effect"
 * import { LlmLive } from "@clearside/llm"
 * import * as LlmLanguageModel from "@clearside/llm/LlmLanguageModel"
 *
 * const answer = LanguageModel.generateText({ prompt: "What is a circuit breaker?" }).pipe(
 *   Effect.map((response) => response.text),
 *   Effect.provide(LlmLanguageModel.layer.pipe(Layer.provide(LlmLive.layer)))
 * )
 *
 * @since 0.1.0
 * @category Layers
 */
export const layer: Layer.Layer<LanguageModel.LanguageModel, never, Llm> = layerWith({})
