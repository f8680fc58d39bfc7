/**
 * Wire formats of the two provider APIs the simulator speaks: OpenAI chat completions and
 * Anthropic messages, as JSON bodies and as SSE frames, shaped the way the official SDKs read them.
 *
 * @internal
 */

/** @internal */
export type Route = "openai" | "anthropic"

/** @internal */
export interface Usage {
  readonly inputTokens: number
  readonly outputTokens: number
}

/** @internal */
export interface ToolCall {
  readonly id: string
  readonly name: string
  /** The arguments' JSON text, as the provider sends it (may be broken JSON on purpose). */
  readonly argumentsText: string
}

/** @internal */
export interface Answer {
  readonly id: string
  readonly model: string
  readonly text: string
  readonly usage: Usage
  /** Unix seconds, fixed per answer so every chunk of a stream carries the same value. */
  readonly created: number
  readonly toolCalls?: ReadonlyArray<ToolCall>
  readonly reasoning?: string
  /** Anthropic's thinking signature; defaults to a fixed one when there is reasoning. */
  readonly signature?: string
  readonly refusal?: string
  /** Anthropic structured output through a forced tool: the answer is this tool's input. */
  readonly tool?: string | undefined
  /** A structured (JSON) answer: streamed in fixed-size fragments, as JSON has no words to split on. */
  readonly json?: boolean | undefined
}

const calls = (answer: Answer): ReadonlyArray<ToolCall> => answer.toolCalls ?? []

/** Halves of a text, so a streamed value arrives in more than one piece. */
const halves = (text: string): ReadonlyArray<string> => {
  if (text.length < 2) return text === "" ? [] : [text]
  const middle = Math.floor(text.length / 2)
  return [text.slice(0, middle), text.slice(middle)]
}

const openAiFinish = (answer: Answer): string => (calls(answer).length > 0 ? "tool_calls" : "stop")

const anthropicStop = (answer: Answer): string =>
  answer.refusal !== undefined ? "refusal" : calls(answer).length > 0 ? "tool_use" : "end_turn"

const inputOf = (text: string): unknown => safeParse(text) ?? {}

/** A rough token count: one token per four characters, at least one for non-empty text. */
export const estimateTokens = (text: string): number => (text.length === 0 ? 0 : Math.max(1, Math.ceil(text.length / 4)))

const contentText = (content: unknown): string => {
  if (typeof content === "string") return content
  if (Array.isArray(content)) {
    return content
      .map((part: unknown) =>
        typeof part === "object" && part !== null && "text" in part && typeof part.text === "string" ? part.text : ""
      )
      .join("")
  }
  return ""
}

const messagesOf = (body: unknown): ReadonlyArray<{ readonly role: unknown; readonly content: unknown }> => {
  if (typeof body !== "object" || body === null || !("messages" in body) || !Array.isArray(body.messages)) return []
  return body.messages.filter(
    (m: unknown): m is { role: unknown; content: unknown } => typeof m === "object" && m !== null && "role" in m
  )
}

/** The text of the last user message, which the default answer echoes. */
export const lastUserText = (body: unknown): string => {
  const users = messagesOf(body).filter((m) => m.role === "user")
  const last = users[users.length - 1]
  return last === undefined ? "" : contentText(last.content)
}

/** Estimated prompt tokens: every message's text plus the Anthropic `system` field. */
export const promptTokens = (body: unknown): number => {
  const system =
    typeof body === "object" && body !== null && "system" in body ? contentText(body.system) : ""
  const all = messagesOf(body).map((m) => contentText(m.content)).join("\n")
  return Math.max(1, estimateTokens(system + all))
}

/** The model the request asked for, or a fixed name per route. */
export const requestedModel = (route: Route, body: unknown): string =>
  typeof body === "object" && body !== null && "model" in body && typeof body.model === "string" && body.model !== ""
    ? body.model
    : route === "openai"
      ? "sim-gpt"
      : "sim-claude"

/** Whether the request asked for a streamed answer. */
export const wantsStream = (body: unknown): boolean =>
  typeof body === "object" && body !== null && "stream" in body && body.stream === true

/** The output-token budget the request declares, counted against a tokens-per-minute limit. */
export const maxOutputTokens = (body: unknown): number => {
  if (typeof body !== "object" || body === null) return 0
  const value =
    "max_completion_tokens" in body ? body.max_completion_tokens : "max_tokens" in body ? body.max_tokens : 0
  return typeof value === "number" && Number.isFinite(value) && value > 0 ? value : 0
}

const includeUsage = (body: unknown): boolean =>
  typeof body === "object" &&
  body !== null &&
  "stream_options" in body &&
  typeof body.stream_options === "object" &&
  body.stream_options !== null &&
  "include_usage" in body.stream_options &&
  body.stream_options.include_usage === true

/** Splits JSON text into pieces of 12 characters, as structured answers stream (no spaces to split on). */
export const jsonPieces = (text: string): ReadonlyArray<string> => text.match(/[\s\S]{1,12}/g) ?? []

/** Splits an answer into word-sized pieces that join back to the same text. */
export const pieces = (text: string): ReadonlyArray<string> => text.match(/\S+\s*|\s+/g) ?? []

const openAiUsage = (usage: Usage) => ({
  prompt_tokens: usage.inputTokens,
  completion_tokens: usage.outputTokens,
  total_tokens: usage.inputTokens + usage.outputTokens,
  prompt_tokens_details: { cached_tokens: 0, audio_tokens: 0 },
  completion_tokens_details: {
    reasoning_tokens: 0,
    audio_tokens: 0,
    accepted_prediction_tokens: 0,
    rejected_prediction_tokens: 0
  }
})

/** An OpenAI `chat.completion` body. */
export const openAiCompletion = (answer: Answer) => ({
  id: answer.id,
  object: "chat.completion",
  created: answer.created,
  model: answer.model,
  choices: [
    {
      index: 0,
      message: {
        role: "assistant",
        content: answer.refusal !== undefined || (answer.text === "" && calls(answer).length > 0) ? null : answer.text,
        refusal: answer.refusal ?? null,
        ...(answer.reasoning !== undefined ? { reasoning_content: answer.reasoning } : {}),
        ...(calls(answer).length > 0
          ? {
              tool_calls: calls(answer).map((call) => ({
                id: call.id,
                type: "function",
                function: { name: call.name, arguments: call.argumentsText }
              }))
            }
          : {}),
        annotations: []
      },
      logprobs: null,
      finish_reason: openAiFinish(answer)
    }
  ],
  usage: openAiUsage(answer.usage),
  service_tier: "default",
  system_fingerprint: "fp_simulator"
})

/** The payloads of an OpenAI streamed answer, without SSE framing and without `[DONE]`. */
export const openAiChunks = (answer: Answer, body: unknown): ReadonlyArray<unknown> => {
  const withUsage = includeUsage(body)
  const chunk = (choices: ReadonlyArray<unknown>, usage: unknown = null) => ({
    id: answer.id,
    object: "chat.completion.chunk",
    created: answer.created,
    model: answer.model,
    system_fingerprint: "fp_simulator",
    choices,
    ...(withUsage ? { usage } : {})
  })
  const delta = (d: unknown, finish: string | null = null) => ({ index: 0, delta: d, logprobs: null, finish_reason: finish })
  const toolChunks = calls(answer).flatMap((call, index) => [
    chunk([delta({ tool_calls: [{ index, id: call.id, type: "function", function: { name: call.name, arguments: "" } }] })]),
    ...halves(call.argumentsText).map((part) => chunk([delta({ tool_calls: [{ index, function: { arguments: part } }] })]))
  ])
  return [
    chunk([delta({ role: "assistant", content: "", refusal: null })]),
    ...pieces(answer.reasoning ?? "").map((p) => chunk([delta({ reasoning_content: p })])),
    ...(answer.json === true ? jsonPieces(answer.text) : pieces(answer.text)).map((p) => chunk([delta({ content: p })])),
    ...pieces(answer.refusal ?? "").map((p) => chunk([delta({ refusal: p })])),
    ...toolChunks,
    chunk([delta({}, openAiFinish(answer))]),
    ...(withUsage ? [chunk([], openAiUsage(answer.usage))] : [])
  ]
}

/** An Anthropic `message` body. */
const toolInput = (text: string): unknown => safeParse(text) ?? text

export const anthropicMessage = (answer: Answer) => ({
  id: answer.id,
  type: "message",
  role: "assistant",
  model: answer.model,
  content:
    answer.tool !== undefined
      ? [{ type: "tool_use", id: `toolu_${answer.id}`, name: answer.tool, input: toolInput(answer.text) }]
      : [
          ...(answer.reasoning !== undefined
            ? [{ type: "thinking", thinking: answer.reasoning, signature: answer.signature ?? simulatedSignature }]
            : []),
          ...(answer.text !== "" || (calls(answer).length === 0 && answer.refusal === undefined && answer.reasoning === undefined)
            ? [{ type: "text", text: answer.text }]
            : []),
          ...calls(answer).map((call) => ({ type: "tool_use", id: call.id, name: call.name, input: inputOf(call.argumentsText) }))
        ],
  stop_reason: answer.tool !== undefined ? "tool_use" : anthropicStop(answer),
  ...(answer.refusal !== undefined ? { stop_details: { type: "refusal", explanation: answer.refusal } } : {}),
  stop_sequence: null,
  usage: {
    input_tokens: answer.usage.inputTokens,
    output_tokens: answer.usage.outputTokens,
    cache_creation_input_tokens: 0,
    cache_read_input_tokens: 0
  }
})

/** The signature the simulator gives its reasoning when a script names none. */
export const simulatedSignature = "sim-signature"

/** The events of an Anthropic streamed answer, without SSE framing. */
export const anthropicEvents = (answer: Answer): ReadonlyArray<unknown> => {
  const blocks: Array<unknown> = []
  let index = 0
  if (answer.tool !== undefined) {
    blocks.push(
      { type: "content_block_start", index, content_block: { type: "tool_use", id: `toolu_${answer.id}`, name: answer.tool, input: {} } },
      { type: "ping" },
      ...jsonPieces(answer.text).map((p) => ({ type: "content_block_delta", index, delta: { type: "input_json_delta", partial_json: p } })),
      { type: "content_block_stop", index }
    )
    index++
  } else if (answer.reasoning !== undefined) {
    blocks.push(
      { type: "content_block_start", index, content_block: { type: "thinking", thinking: "", signature: "" } },
      ...pieces(answer.reasoning).map((p) => ({ type: "content_block_delta", index, delta: { type: "thinking_delta", thinking: p } })),
      { type: "content_block_delta", index, delta: { type: "signature_delta", signature: answer.signature ?? simulatedSignature } },
      { type: "content_block_stop", index }
    )
    index++
  }
  if (answer.tool === undefined && (answer.text !== "" || (calls(answer).length === 0 && answer.refusal === undefined && answer.reasoning === undefined))) {
    blocks.push(
      { type: "content_block_start", index, content_block: { type: "text", text: "" } },
      { type: "ping" },
      ...(answer.json === true ? jsonPieces(answer.text) : pieces(answer.text)).map((p) => ({
        type: "content_block_delta",
        index,
        delta: { type: "text_delta", text: p }
      })),
      { type: "content_block_stop", index }
    )
    index++
  }
  for (const call of calls(answer)) {
    blocks.push(
      { type: "content_block_start", index, content_block: { type: "tool_use", id: call.id, name: call.name, input: {} } },
      ...halves(call.argumentsText).map((p) => ({
        type: "content_block_delta",
        index,
        delta: { type: "input_json_delta", partial_json: p }
      })),
      { type: "content_block_stop", index }
    )
    index++
  }
  const { stop_details: _details, ...started } = anthropicMessage(answer) as ReturnType<typeof anthropicMessage> & {
    stop_details?: unknown
  }
  return [
    {
      type: "message_start",
      message: {
        ...started,
        content: [],
        stop_reason: null,
        usage: {
          input_tokens: answer.usage.inputTokens,
          output_tokens: 1,
          cache_creation_input_tokens: 0,
          cache_read_input_tokens: 0
        }
      }
    },
    ...blocks,
    {
      type: "message_delta",
      delta: {
        stop_reason: answer.tool !== undefined ? "tool_use" : anthropicStop(answer),
        stop_sequence: null,
        ...(answer.refusal !== undefined ? { stop_details: { type: "refusal", explanation: answer.refusal } } : {})
      },
      usage: { output_tokens: answer.usage.outputTokens }
    },
    { type: "message_stop" }
  ]
}

/** One SSE frame for a payload, framed the way each provider frames it. */
export const frame = (route: Route, payload: unknown): string => {
  const data = typeof payload === "string" ? payload : JSON.stringify(payload)
  if (route === "openai") return `data: ${data}\n\n`
  return `event: ${eventType(payload)}\ndata: ${data}\n\n`
}

/** The frame that ends an OpenAI stream; Anthropic streams end with `message_stop` and a close. */
export const terminator = (route: Route): ReadonlyArray<string> => (route === "openai" ? ["data: [DONE]\n\n"] : [])

const eventType = (payload: unknown): string => {
  const value = typeof payload === "string" ? safeParse(payload) : payload
  return typeof value === "object" && value !== null && "type" in value && typeof value.type === "string"
    ? value.type
    : "message"
}

/** JSON.parse that answers `undefined` instead of throwing. */
export const safeParse = (text: string): unknown => {
  try {
    return JSON.parse(text)
  } catch {
    return undefined
  }
}

const openAiErrorType = (status: number): { type: string; code: string | null } => {
  switch (status) {
    case 400:
      return { type: "invalid_request_error", code: null }
    case 401:
      return { type: "invalid_request_error", code: "invalid_api_key" }
    case 403:
      return { type: "invalid_request_error", code: "unsupported_country_region_territory" }
    case 404:
      return { type: "invalid_request_error", code: "model_not_found" }
    case 429:
      return { type: "requests", code: "rate_limit_exceeded" }
    default:
      return { type: status >= 500 ? "server_error" : "invalid_request_error", code: null }
  }
}

const anthropicErrorType = (status: number): string => {
  switch (status) {
    case 400:
      return "invalid_request_error"
    case 401:
      return "authentication_error"
    case 403:
      return "permission_error"
    case 404:
      return "not_found_error"
    case 413:
      return "request_too_large"
    case 429:
      return "rate_limit_error"
    case 529:
      return "overloaded_error"
    default:
      return status >= 500 ? "api_error" : "invalid_request_error"
  }
}

const defaultMessages: Record<number, string> = {
  400: "The request is invalid.",
  401: "Incorrect API key provided.",
  403: "The API key is not allowed to use this resource.",
  404: "The requested resource does not exist.",
  408: "The request timed out.",
  409: "The request conflicts with another request.",
  413: "The request is too large.",
  429: "Rate limit reached for requests. Please try again later.",
  500: "The server had an error while processing the request.",
  502: "Bad gateway.",
  503: "The service is temporarily unavailable.",
  529: "Overloaded"
}

/** A provider-shaped error body for a status. */
export const errorBody = (route: Route, status: number, message?: string): unknown => {
  const text = message ?? defaultMessages[status] ?? `The simulator answered with status ${status}.`
  if (route === "openai") {
    const { code, type } = openAiErrorType(status)
    return { error: { message: text, type, param: null, code } }
  }
  return { type: "error", error: { type: anthropicErrorType(status), message: text } }
}

/** The name of the request-id header each provider sends. */
export const requestIdHeader = (route: Route): string => (route === "openai" ? "x-request-id" : "request-id")
