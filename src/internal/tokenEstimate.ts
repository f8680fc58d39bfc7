import type { LlmRequest } from "../LlmRequest.js"

/**
 * Tokens a request will count against a tokens-per-minute limit, estimated before the call the way
 * providers do it: the prompt at about four characters per token plus a few tokens of framing per
 * message, plus the output budget (`maxTokens`, else `defaultOutputTokens`), since providers
 * reserve the requested maximum output when they admit a request.
 *
 * @internal
 */
export const estimate = (request: LlmRequest, defaultOutputTokens: number): number => {
  let chars = 0
  const messages = request.messages
  for (let i = 0; i < messages.length; i++) chars += messages[i]!.content.length
  return Math.ceil(chars / 4) + 4 * messages.length + 3 + (request.maxTokens ?? defaultOutputTokens)
}
