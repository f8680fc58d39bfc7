/**
 * Scrubs secrets out of text before it reaches a log line, a span or an error message: the exact
 * values of known keys, and anything shaped like a provider key or a bearer token.
 *
 * @internal
 */
import { Config, Redacted } from "effect"
import type { LlmError } from "../LlmError.js"
import * as LlmConfig from "../LlmConfig.js"

/** What replaces a secret. */
export const mask = "<redacted>"

// OpenAI (`sk-`, `sk-proj-`), Anthropic (`sk-ant-`), Groq (`gsk_`), xAI (`xai-`), bearer and basic
// credentials, and `x-api-key` / `api_key` / `authorization` assignments.
const patterns: ReadonlyArray<RegExp> = [
  /\b(?:sk|gsk|xai|pk|rk)[-_][A-Za-z0-9_-]{8,}/g,
  /\b(Bearer|Basic)\s+[A-Za-z0-9._~+/=-]{6,}/gi,
  /\b((?:x-)?api[-_]?key|authorization)(["']?\s*[:=]\s*["']?)[^\s"',}]{6,}/gi
]

/** A function that scrubs one string. */
export type Scrub = (text: string) => string

/** A scrubber for the given secrets (values shorter than 6 characters are ignored: too likely to hit plain words). */
export const make = (secrets: ReadonlyArray<Redacted.Redacted<string>> = []): Scrub => {
  const values = secrets
    .map((secret) => Redacted.value(secret))
    .filter((value) => value.length >= 6)
    .sort((a, b) => b.length - a.length)
  return (text) => {
    let out = text
    for (const value of values) {
      if (out.includes(value)) out = out.split(value).join(mask)
    }
    for (const pattern of patterns) {
      pattern.lastIndex = 0
      if (pattern.test(out)) {
        pattern.lastIndex = 0
        out = out.replace(pattern, (match, ...groups: Array<unknown>) => {
          const [label, separator] = groups
          if (pattern === patterns[1]) return `${String(label)} ${mask}`
          if (pattern === patterns[2]) return `${String(label)}${String(separator)}${mask}`
          return match === "" ? match : mask
        })
      }
    }
    return out
  }
}

/** The same error with its message scrubbed; the very same value when there was nothing to scrub. */
export const scrubError = <E extends LlmError>(scrub: Scrub, error: E): E => {
  const message = scrub(error.message)
  if (message === error.message) return error
  const copy = Object.assign(Object.create(Object.getPrototypeOf(error) as object) as E, error)
  Object.defineProperty(copy, "message", { value: message, enumerable: false, writable: true, configurable: true })
  if (typeof error.stack === "string") {
    Object.defineProperty(copy, "stack", { value: scrub(error.stack), enumerable: false, writable: true, configurable: true })
  }
  return copy
}

/** The provider keys of the environment, to scrub wherever they might surface. */
export const secretsConfig: Config.Config<ReadonlyArray<Redacted.Redacted<string>>> = Config.map(LlmConfig.config, LlmConfig.secrets)
