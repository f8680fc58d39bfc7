/**
 * The one sanitiser for text that comes from a provider or may carry a secret, before it reaches an
 * error, a log line, a span or a metric label: it removes the exact values of the configured
 * secrets (of any length, also when markup such as `<wbr>` splits them), anything shaped like a
 * provider key or a bearer token, and it bounds the length.
 *
 * Built once per configuration (`make`); a call costs one native search per secret and one pass of
 * one regular expression over the text (a few hundred nanoseconds for an id or a model name).
 *
 * @internal
 */
import { Config, Redacted } from "effect"
import type { LlmError } from "../LlmError.js"
import * as LlmConfig from "../LlmConfig.js"

/** What replaces a secret. Not markup, so that stripping an HTML page's tags keeps it. */
export const mask = "[redacted]"

/** The longest id, model name or code kept from a provider: real ones are far shorter. */
export const maxFieldLength = 200

/** Text past this point is never read: nothing the library writes keeps that much. */
export const maxScan = 64 * 1024

// OpenAI (`sk-`, `sk-proj-`, and the masked `sk-abc***xyz` OpenAI echoes), Anthropic (`sk-ant-`),
// Groq (`gsk_`), xAI (`xai-`), Google (`AIza`), JSON web tokens; bearer and basic credentials; and
// `x-api-key` / `api_key` / `authorization` assignments. One expression, one pass.
const shapes =
  /\b(?:sk-[\w*.-]{4,}|(?:sk|gsk|xai|pk|rk)[-_][\w*.-]{8,}|AIza[A-Za-z0-9_-]{20,}|eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]*)|\b(Bearer|Basic)\s+[A-Za-z0-9._~+/=-]{6,}|\b((?:x-)?api[-_]?key|authorization)(["']?\s*[:=]\s*["']?)(?:(?:Bearer|Basic|Token)\s+)?[^\s"',}]{6,}/gi

const replaceShape = (_match: string, scheme: string | undefined, name: string | undefined, separator: string | undefined) =>
  scheme !== undefined ? `${scheme} ${mask}` : name !== undefined ? `${name}${separator ?? ""}${mask}` : mask

// What may sit between two characters of a secret in a page without showing: a tag, a soft hyphen
// or zero-width character, or their HTML entities.
const filler = "(?:<[^<>]{0,256}>|&(?:shy|#173|#x0*ad|#8203|#x0*200b|zwsp|zwnj|zwj|wbr);|[\\u00ad\\u200b-\\u200d\\u2060\\ufeff])*"
const mayHideSplit = /[<&\u00ad\u200b-\u200d\u2060\ufeff]/

const escape = (char: string) => char.replace(/[.*+?^${}()|[\]\\/-]/g, "\\$&")

/**
 * A function that scrubs one string, and cuts what is left to `max` characters (default
 * {@link maxScan}), ending a cut text with `…`.
 */
export type Scrub = (text: string, max?: number) => string

/**
 * A sanitiser for the given secrets. Every value counts, however short: a key of 3 characters is
 * masked wherever those 3 characters appear, also inside ordinary words.
 */
export const make = (secrets: ReadonlyArray<Redacted.Redacted<string>> = []): Scrub => {
  const values = [...new Set(secrets.map((secret) => Redacted.value(secret)).filter((value) => value !== ""))].sort(
    (a, b) => b.length - a.length
  )
  const longest = values[0]?.length ?? 0
  // The same values with markup allowed between their characters, for text that has some.
  const split =
    values.length === 0 ? undefined : new RegExp(values.map((value) => Array.from(value, escape).join(filler)).join("|"), "g")
  return (text, max = maxScan) => {
    let out = text
    const cut = out.length > maxScan
    if (cut) out = out.slice(0, maxScan)
    for (const value of values) {
      if (out.includes(value)) out = out.replaceAll(value, mask)
    }
    if (split !== undefined && mayHideSplit.test(out)) out = out.replace(split, mask)
    // A secret the scan cut short may end the text: its start is dropped with the rest.
    if (cut) out = out.slice(0, Math.max(0, out.length - longest))
    out = out.replace(shapes, replaceShape)
    return out.length > max ? `${out.slice(0, Math.max(0, max - 1))}…` : out
  }
}

/**
 * The password of a URL (`redis://user:password@host`), as written and as decoded: either form may
 * surface in an error. Empty when there is none or the URL does not parse.
 */
export const urlPasswords = (url: string): ReadonlyArray<Redacted.Redacted<string>> => {
  const written = URL.canParse(url) ? new URL(url).password : ""
  if (written === "") return []
  let decoded = written
  try {
    decoded = decodeURIComponent(written)
  } catch {
    // A malformed escape: the written form is all there is.
  }
  return [...new Set([written, decoded])].map((password) => Redacted.make(password))
}

/** The sanitiser for text when no secret is known: key shapes and lengths only. */
export const shapesOnly: Scrub = make()

/**
 * The same error with every provider-given text field scrubbed (`message`, `stack`, `requestId`,
 * `headers`, `code`); the very same value when there was nothing to scrub.
 */
export const scrubError = <E extends LlmError>(scrub: Scrub, error: E): E => {
  const message = scrub(error.message)
  const requestId = error.requestId === undefined ? undefined : scrub(error.requestId)
  const code = "code" in error && typeof error.code === "string" ? scrub(error.code) : undefined
  let headers: Record<string, string> | undefined
  if (error.headers !== undefined) {
    const scrubbed: Record<string, string> = {}
    let differs = false
    for (const [key, value] of Object.entries(error.headers)) {
      const name = scrub(key)
      scrubbed[name] = scrub(value)
      differs ||= name !== key || scrubbed[name] !== value
    }
    if (differs) headers = scrubbed
  }
  const changed =
    message !== error.message ||
    requestId !== error.requestId ||
    headers !== undefined ||
    ("code" in error && code !== undefined && code !== error.code)
  if (!changed) return error
  const copy = Object.assign(Object.create(Object.getPrototypeOf(error) as object) as E, error)
  if (requestId !== undefined) Object.assign(copy, { requestId })
  if (headers !== undefined) Object.assign(copy, { headers })
  if (code !== undefined) Object.assign(copy, { code })
  Object.defineProperty(copy, "message", { value: message, enumerable: false, writable: true, configurable: true })
  if (typeof error.stack === "string") {
    Object.defineProperty(copy, "stack", { value: scrub(error.stack), enumerable: false, writable: true, configurable: true })
  }
  return copy
}

/** The secrets of the environment (see `LlmConfig.secrets`), to scrub wherever they might surface. */
export const secretsConfig: Config.Config<ReadonlyArray<Redacted.Redacted<string>>> = Config.map(LlmConfig.config, LlmConfig.secrets)
