/**
 * A tool call's arguments as the provider sent them (JSON text) and as a value.
 *
 * @internal
 */
import type * as LlmRequest from "../LlmRequest.js"

/**
 * The parsed arguments: `undefined` when the text is not JSON (models do emit broken JSON; the
 * call still succeeds so the caller can tell the model), `{}` for empty text (a call without
 * arguments, as Anthropic streams it and some compatible endpoints send it).
 *
 * @internal
 */
export const parse = (text: string): unknown => {
  if (text.trim() === "") return {}
  try {
    return JSON.parse(text) as unknown
  } catch {
    return undefined
  }
}

/**
 * The text of the arguments of a tool call sent back: the value as JSON (`{}` when it is
 * missing, as after broken JSON).
 *
 * @internal
 */
export const text = (value: unknown): string => (value === undefined ? "{}" : JSON.stringify(value))

/**
 * The `ToolCall` event for a call whose arguments are complete.
 *
 * @internal
 */
export const toolCall = (id: string, name: string, argumentsText: string): LlmRequest.ToolCall => ({
  _tag: "ToolCall",
  id,
  name,
  arguments: parse(argumentsText),
  argumentsText
})

/**
 * A result sent back to a provider as text: a string as it is, anything else as JSON.
 *
 * @internal
 */
export const resultText = (result: unknown): string => (typeof result === "string" ? result : JSON.stringify(result))
