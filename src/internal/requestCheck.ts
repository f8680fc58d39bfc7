/**
 * A quick check of the common, valid request: a plain object holding only request fields, each
 * well formed. It answers with exactly what `Schema` decoding of `LlmRequest` gives (a fresh object
 * with the fields in the schema's order, fresh `messages`, message and `stop` arrays and objects,
 * a fresh `metadata` record, the same `timeout`), or `undefined` for anything else, which is then
 * decoded by the schema itself (for its errors, and for unusual shapes such as class instances).
 *
 * @internal
 */
import { Duration } from "effect"
import type { LlmRequest, Message } from "../LlmRequest.js"

type Mutable<T> = { -readonly [K in keyof T]: T[K] }

const plain = (value: unknown): value is Record<PropertyKey, unknown> =>
  typeof value === "object" && value !== null && Object.getPrototypeOf(value) === Object.prototype

const nonEmptyString = (value: unknown): value is string => typeof value === "string" && value.length > 0

const numberBetween = (value: unknown, min: number, max: number): value is number =>
  typeof value === "number" && Number.isFinite(value) && value >= min && value <= max

const message = (value: unknown): Message | undefined => {
  if (!plain(value)) return undefined
  const keys = Reflect.ownKeys(value)
  if (keys.length !== 2) return undefined
  const first = keys[0]
  const second = keys[1]
  if (!((first === "role" && second === "content") || (first === "content" && second === "role"))) return undefined
  const role = value.role
  const content = value.content
  if (role !== "user" && role !== "system" && role !== "assistant") return undefined
  return nonEmptyString(content) ? { role, content } : undefined
}

const messages = (value: unknown): Array<Message> | undefined => {
  if (!Array.isArray(value) || value.length === 0) return undefined
  const out: Array<Message> = new Array(value.length)
  for (let i = 0; i < value.length; i++) {
    const checked = message(value[i])
    if (checked === undefined) return undefined
    out[i] = checked
  }
  return out
}

const stop = (value: unknown): Array<string> | undefined => {
  if (!Array.isArray(value) || value.length > 4) return undefined
  const out: Array<string> = new Array(value.length)
  for (let i = 0; i < value.length; i++) {
    const sequence: unknown = value[i]
    if (!nonEmptyString(sequence)) return undefined
    out[i] = sequence
  }
  return out
}

const metadata = (value: unknown): Record<string, string> | undefined => {
  if (!plain(value)) return undefined
  const out: Record<string, string> = {}
  for (const key of Reflect.ownKeys(value)) {
    if (typeof key !== "string" || !Object.prototype.propertyIsEnumerable.call(value, key)) return undefined
    const entry = value[key]
    if (typeof entry !== "string") return undefined
    out[key] = entry
  }
  return out
}

/**
 * The request, decoded, when it is a well-formed plain request; else undefined.
 *
 * @internal
 */
export const check = (input: unknown): LlmRequest | undefined => {
  if (!plain(input)) return undefined
  const keys = Reflect.ownKeys(input)
  let hasProvider = false
  let hasModel = false
  let hasMessages = false
  let hasTemperature = false
  let hasMaxTokens = false
  let hasTopP = false
  let hasStop = false
  let hasTimeout = false
  let hasMetadata = false
  for (let i = 0; i < keys.length; i++) {
    switch (keys[i]) {
      case "provider":
        hasProvider = true
        break
      case "model":
        hasModel = true
        break
      case "messages":
        hasMessages = true
        break
      case "temperature":
        hasTemperature = true
        break
      case "maxTokens":
        hasMaxTokens = true
        break
      case "topP":
        hasTopP = true
        break
      case "stop":
        hasStop = true
        break
      case "timeout":
        hasTimeout = true
        break
      case "metadata":
        hasMetadata = true
        break
      default:
        return undefined
    }
  }
  if (!hasMessages) return undefined
  // Built in the schema's field order; an optional field given as undefined is kept, as the schema keeps it.
  const out: Partial<Mutable<LlmRequest>> = {}
  if (hasProvider) {
    const provider = input.provider
    if (provider !== undefined && !nonEmptyString(provider)) return undefined
    out.provider = provider
  }
  if (hasModel) {
    const model = input.model
    if (model !== undefined && !nonEmptyString(model)) return undefined
    out.model = model
  }
  const checkedMessages = messages(input.messages)
  if (checkedMessages === undefined) return undefined
  out.messages = checkedMessages
  if (hasTemperature) {
    const temperature = input.temperature
    if (temperature !== undefined && !numberBetween(temperature, 0, 2)) return undefined
    out.temperature = temperature
  }
  if (hasMaxTokens) {
    const maxTokens = input.maxTokens
    if (maxTokens !== undefined && !(typeof maxTokens === "number" && Number.isSafeInteger(maxTokens) && maxTokens > 0)) {
      return undefined
    }
    out.maxTokens = maxTokens
  }
  if (hasTopP) {
    const topP = input.topP
    if (topP !== undefined && !numberBetween(topP, 0, 1)) return undefined
    out.topP = topP
  }
  if (hasStop) {
    const sequences = input.stop
    if (sequences === undefined) {
      out.stop = undefined
    } else {
      const checked = stop(sequences)
      if (checked === undefined) return undefined
      out.stop = checked
    }
  }
  if (hasTimeout) {
    const timeout = input.timeout
    if (timeout !== undefined && !(Duration.isDuration(timeout) && Duration.greaterThan(timeout, Duration.zero))) return undefined
    out.timeout = timeout
  }
  if (hasMetadata) {
    const record = input.metadata
    if (record === undefined) {
      out.metadata = undefined
    } else {
      const checked = metadata(record)
      if (checked === undefined) return undefined
      out.metadata = checked
    }
  }
  return out as LlmRequest
}
