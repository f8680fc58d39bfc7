/**
 * The rules a configuration variable is checked against. Each reads one variable (blank counts as
 * unset, values are trimmed) and fails with a `ConfigError.InvalidData` at the variable's path whose
 * message names the variable, the rule and the value: `LLM_RETRY_BASE_DELAY_MS must be a whole
 * number of milliseconds from 0 to 600000, got "-5"`. Values that may hold a secret (a URL's
 * password) are masked or left out.
 *
 * Numbers are plain decimal digits only: `1e3`, `0x10`, `1_000`, `+5`, `Infinity` and `NaN` are
 * rejected rather than guessed at, and every range stays within what `setTimeout` and
 * `Number.isSafeInteger` hold, so no accepted value can overflow a timer or become a defect later.
 *
 * @internal
 */
import { Config, ConfigError, Duration, Either, Option } from "effect"
import * as BlankIsUnset from "./blankIsUnset.js"

/**
 * How a present value is read: the rule in words, a parse that is `None` when the value breaks
 * it, and how a bad value is shown in the message.
 *
 * @internal
 */
export interface Rule<A> {
  readonly rule: string
  readonly parse: (text: string) => Option.Option<A>
  readonly show?: (text: string) => string
}

/** Longest part of a bad value quoted back: enough to recognise it, not a wall of text. */
const maxShown = 64

/**
 * A value quoted for a message, escaped (no control characters reach a terminal) and cut.
 *
 * @internal
 */
export const shown = (text: string): string =>
  JSON.stringify(text.length > maxShown ? `${text.slice(0, maxShown)}...` : text)

/**
 * The failure of `name` against `rule`, with the value as already shown.
 *
 * @internal
 */
export const invalid = (name: string, rule: string, got: string): ConfigError.ConfigError =>
  ConfigError.InvalidData([name], `${name} must be ${rule}, got ${got}`)

/**
 * The variable read by `rule`; `None` when unset or blank.
 *
 * @internal
 */
export const optional = <A>(name: string, rule: Rule<A>): Config.Config<Option.Option<A>> =>
  BlankIsUnset.optionalText(name).pipe(
    Config.mapOrFail(
      Option.match({
        onNone: () => Either.right(Option.none<A>()),
        onSome: (text) =>
          Option.match(rule.parse(text), {
            onNone: () => Either.left(invalid(name, rule.rule, (rule.show ?? shown)(text))),
            onSome: (value) => Either.right(Option.some(value))
          })
      })
    )
  )

/**
 * The variable read by `rule`, `fallback` when unset or blank.
 *
 * @internal
 */
export const withDefault = <A>(name: string, rule: Rule<A>, fallback: A): Config.Config<A> =>
  Config.map(optional(name, rule), Option.getOrElse(() => fallback))

/**
 * The longest delay a JavaScript timer holds (2^31 - 1 ms, about 24.8 days); a longer one fires at
 * once, so no time limit may exceed it.
 *
 * @internal
 */
export const maxTimerMillis = 2_147_483_647

const digits = /^\d+$/

/**
 * A whole number from `min` to `max`, written in decimal digits.
 *
 * @internal
 */
export const wholeNumber = (min: number, max: number): Rule<number> => ({
  rule: `a whole number from ${min} to ${max}`,
  parse: (text) => (digits.test(text) ? Option.liftPredicate(Number(text), (n) => n >= min && n <= max) : Option.none())
})

/**
 * A whole number of milliseconds from `min` to `max`, as a `Duration`.
 *
 * @internal
 */
export const milliseconds = (min: number, max: number): Rule<Duration.Duration> => ({
  rule: `a whole number of milliseconds from ${min} to ${max}`,
  parse: (text) => Option.map(wholeNumber(min, max).parse(text), Duration.millis)
})

const decimal = /^(\d+(\.\d*)?|\.\d+)$/

/**
 * A decimal number greater than 0 and at most 1 (a share, such as a failure ratio).
 *
 * @internal
 */
export const ratio: Rule<number> = {
  rule: "a decimal number greater than 0 and at most 1, such as 0.5",
  parse: (text) => (decimal.test(text) ? Option.liftPredicate(Number(text), (n) => n > 0 && n <= 1) : Option.none())
}

/**
 * One of a fixed set of words, compared without case. The words are looked up in a list, never as
 * object keys, so `constructor` or `__proto__` is just another word that is not in it.
 *
 * @internal
 */
export const oneOf = <A>(choices: ReadonlyArray<readonly [string, A]>): Rule<A> => ({
  rule: `one of ${choices.map(([word]) => word).join(", ")}`,
  parse: (text) => {
    const word = text.toLowerCase()
    return Option.map(Option.fromNullable(choices.find(([choice]) => choice === word)), ([, value]) => value)
  }
})

/**
 * One of a fixed set of words, each read as itself.
 *
 * @internal
 */
export const words = <A extends string>(choices: ReadonlyArray<A>): Rule<A> =>
  oneOf(choices.map((word) => [word, word] as const))

/**
 * `true` or `false` (also the `yes`/`no`, `on`/`off`, `1`/`0` that Effect's `Config.boolean`
 * accepts), without case.
 *
 * @internal
 */
export const boolean: Rule<boolean> = {
  rule: "true or false",
  parse: oneOf<boolean>([
    ["true", true],
    ["false", false],
    ["yes", true],
    ["no", false],
    ["on", true],
    ["off", false],
    ["1", true],
    ["0", false]
  ]).parse
}

const notShown = "a value not shown here (it may hold a password)"

/**
 * A URL as it may be shown in a message. Credentials come before an `@`, so a value without one
 * is shown as it is; one with a password the URL parser finds is shown with `***` in its place;
 * any other value with an `@` (`user:secret@ host` parses as a `user:` URL with no password) is
 * left out.
 *
 * @internal
 */
export const showUrl = (text: string): string => {
  if (!text.includes("@")) return shown(text)
  const url = URL.canParse(text) ? new URL(text) : undefined
  if (url === undefined || url.password === "") return notShown
  url.password = "***"
  return shown(url.href)
}

/**
 * A URL with one of `protocols` (such as `["http:", "https:"]`) and a host, kept as written.
 *
 * @internal
 */
export const url = (rule: string, protocols: ReadonlyArray<string>): Rule<string> => ({
  rule,
  parse: (text) => {
    // `redis://` parses as a URL with no host: it is not one anything could connect to.
    const parsed = URL.canParse(text) ? new URL(text) : undefined
    return parsed !== undefined && protocols.includes(parsed.protocol) && parsed.hostname !== ""
      ? Option.some(text)
      : Option.none()
  },
  show: showUrl
})

const notShownHeaders = "a value not shown here (header values may hold keys)"

/** An HTTP header name (an RFC 9110 token). */
const headerName = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/

/** A header value `fetch` sends: no line breaks or NUL, nothing outside Latin-1. */
const headerValue = /^[\t\x20-\x7e\x80-\xff]*$/

const jsonObjectOfStrings = (text: string): Option.Option<Record<string, string>> => {
  let parsed: unknown
  try {
    parsed = JSON.parse(text)
  } catch {
    return Option.none()
  }
  if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) return Option.none()
  const entries = Object.entries(parsed as Record<string, unknown>)
  return entries.every(([, value]) => typeof value === "string")
    ? Option.some(Object.fromEntries(entries) as Record<string, string>)
    : Option.none()
}

/**
 * A JSON object of header names to string values, such as `{"x-portkey-provider":"openai"}`. The
 * value is never shown: a gateway key often travels in a header.
 *
 * @internal
 */
export const headers: Rule<Record<string, string>> = {
  rule: `a JSON object of HTTP header names to string values (no line breaks) such as {"x-portkey-provider":"openai"}`,
  parse: (text) =>
    Option.filter(jsonObjectOfStrings(text), (record) =>
      Object.entries(record).every(([name, value]) => headerName.test(name) && headerValue.test(value))
    ),
  show: () => notShownHeaders
}

/**
 * A JSON object of query parameter names to string values, such as `{"api-version":"2024-10-21"}`.
 *
 * @internal
 */
export const query: Rule<Record<string, string>> = {
  rule: `a JSON object of query parameter names to string values such as {"api-version":"2024-10-21"}`,
  parse: (text) => Option.filter(jsonObjectOfStrings(text), (record) => Object.keys(record).every((name) => name !== "")),
  show: () => "a value not shown here (query parameters may hold keys)"
}

/**
 * The name of an environment variable, upper-case as such names are: letters, digits and `_`, not
 * starting with a digit. Keys are rarely all upper-case, so a key written in its place is caught.
 *
 * @internal
 */
export const variableName: Rule<string> = {
  rule: "the name of the variable that holds the key (upper-case letters, digits and _, not starting with a digit) such as GROQ_API_KEY, never the key itself",
  parse: (text) => Option.liftPredicate(text, (name) => /^[A-Z_][A-Z0-9_]*$/.test(name)),
  // A key written in place of the variable's name must not be repeated.
  show: () => "a value not shown here (it may be a key)"
}

/**
 * An Azure OpenAI `api-version`: a date such as `2024-10-21`, optionally `-preview`, or `latest` or
 * `preview`.
 *
 * @internal
 */
export const apiVersion: Rule<string> = {
  rule: "an API version such as 2024-10-21 or 2025-04-01-preview (or latest, preview)",
  parse: (text) => Option.liftPredicate(text, (version) => /^(\d{4}-\d{2}-\d{2}(-preview)?|latest|preview)$/.test(version))
}
