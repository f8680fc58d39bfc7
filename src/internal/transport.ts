/**
 * What every provider passes to its SDK client besides the key: custom headers and query
 * parameters (gateways, Azure, OpenRouter's ranking headers), a custom `fetch` (a proxy agent,
 * mutual TLS), and a `fetch` wrapper that keeps any error body's text for the error message.
 *
 * @internal
 */
import { Predicate, Redacted } from "effect"

/**
 * A `fetch` as the SDKs call it.
 *
 * @internal
 */
export type Fetch = (input: string | URL | Request, init?: RequestInit) => Promise<Response>

/**
 * Header values as given: plain text or `Redacted`. Every value is treated as a secret.
 *
 * @internal
 */
export type HeaderValues = Readonly<Record<string, string | Redacted.Redacted<string>>>

/**
 * The headers as plain text, for the SDK client.
 *
 * @internal
 */
export const headerText = (headers: HeaderValues | undefined): Record<string, string> =>
  Object.fromEntries(
    Object.entries(headers ?? {}).map(([name, value]) => [name, Redacted.isRedacted(value) ? Redacted.value(value) : value])
  )

/**
 * The header values as secrets, to keep out of every message like the key (a gateway key often
 * travels in a header).
 *
 * @internal
 */
export const headerSecrets = (headers: HeaderValues | undefined): ReadonlyArray<Redacted.Redacted<string>> =>
  Object.values(headers ?? {}).map((value) => (Redacted.isRedacted(value) ? value : Redacted.make(value)))

/**
 * `fetch` (the global one unless given) with error bodies made readable by the SDKs: the `openai`
 * client keeps only a JSON body's `error` field, so a body without an `error` object
 * (`{ "message": ... }`, `{ "title", "detail" }`, `{ "error": "Bad Request", "message": ... }`) is
 * passed on as `{ "error": <the body> }`. Successful answers and other bodies are not touched.
 *
 * @internal
 */
export const keepErrorBodies = (fetch: Fetch | undefined): Fetch => async (input, init) => {
  const response = await (fetch ?? globalThis.fetch)(input, init)
  if (response.status < 400) return response
  const text = await response.text()
  let body: unknown
  try {
    body = JSON.parse(text)
  } catch {
    body = undefined
  }
  const wrapped = Predicate.isRecord(body) && !Predicate.isRecord(body.error) ? JSON.stringify({ error: body }) : text
  return new Response(wrapped, { status: response.status, statusText: response.statusText, headers: response.headers })
}
