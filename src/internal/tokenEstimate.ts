import type { LlmRequest, LlmStreamEvent, Message } from "../LlmRequest.js"

/**
 * What an image counts as, in characters of text: about 1,000 tokens, between OpenAI's 765 for a
 * 1024x1024 image in high detail and Anthropic's ~1,600 for its largest images.
 *
 * @internal
 */
export const imageChars = 4000

const jsonLength = (value: unknown): number => {
  if (typeof value === "string") return value.length
  try {
    return JSON.stringify(value)?.length ?? 0
  } catch {
    return 0
  }
}

/**
 * Characters a message's content counts as: its text, tool calls (name and arguments), reasoning,
 * tool results, and {@link imageChars} per image.
 *
 * @internal
 */
export const contentChars = (content: Message["content"]): number => {
  if (typeof content === "string") return content.length
  let chars = 0
  for (let i = 0; i < content.length; i++) {
    const part = content[i]!
    switch (part.type) {
      case "text":
      case "reasoning":
        chars += part.text.length
        break
      case "image":
        chars += imageChars
        break
      case "tool-call":
        chars += part.name.length + jsonLength(part.arguments)
        break
      case "tool-result":
        chars += part.name.length + jsonLength(part.result)
        break
    }
  }
  return chars
}

/**
 * Characters of answer an event carries (text, reasoning, tool-call arguments).
 *
 * @internal
 */
export const eventChars = (event: LlmStreamEvent): number => {
  switch (event._tag) {
    case "TextDelta":
    case "ReasoningDelta":
      return event.text.length
    case "ToolCallStart":
      return event.name.length
    case "ToolCallDelta":
      return event.argumentsDelta.length
    default:
      return 0
  }
}

/**
 * Characters of a request's prompt: every message's content and the tool definitions.
 *
 * @internal
 */
export const promptChars = (request: LlmRequest): number => {
  let chars = 0
  const messages = request.messages
  for (let i = 0; i < messages.length; i++) chars += contentChars(messages[i]!.content)
  if (request.tools !== undefined) chars += jsonLength(request.tools)
  return chars
}

/**
 * Tokens a request will count against a tokens-per-minute limit, estimated before the call the way
 * providers do it: the prompt (text, tool definitions, tool calls and results) at about four
 * characters per token, about 1,000 tokens per image, plus a few tokens of framing per message,
 * plus the output budget (`maxTokens`, else `defaultOutputTokens`), since providers reserve the
 * requested maximum output when they admit a request.
 *
 * @internal
 */
export const estimate = (request: LlmRequest, defaultOutputTokens: number): number =>
  Math.ceil(promptChars(request) / 4) + 4 * request.messages.length + 3 + (request.maxTokens ?? defaultOutputTokens)
