import AnthropicSdk from "@anthropic-ai/sdk"
import { describe, expect, it } from "@effect/vitest"
import { Duration, Redacted } from "effect"
import OpenAI from "openai"
import * as Headers from "../../src/internal/headers.js"
import * as ProviderErrors from "../../src/internal/providerErrors.js"
import * as Redaction from "../../src/internal/redaction.js"
import { ConnectionError } from "../../src/LlmError.js"

const ctx: ProviderErrors.Context = { provider: "openai", now: Date.parse("2030-01-01T00:00:00Z") }
const h = (entries: Record<string, string>) => new globalThis.Headers(entries)
const openAiSdk = { APIError: OpenAI.APIError, APIConnectionError: OpenAI.APIConnectionError, APIConnectionTimeoutError: OpenAI.APIConnectionTimeoutError }
const anthropicSdk = {
  APIError: AnthropicSdk.APIError,
  APIConnectionError: AnthropicSdk.APIConnectionError,
  APIConnectionTimeoutError: AnthropicSdk.APIConnectionTimeoutError
}

describe("headers", () => {
  it("retry-after-ms wins over retry-after", () => {
    expect(Headers.retryAfter(h({ "retry-after-ms": "250", "retry-after": "9" }), 0)).toStrictEqual(Duration.millis(250))
  })

  it("retry-after is read as seconds, or as an HTTP date relative to now", () => {
    expect(Headers.retryAfter(h({ "retry-after": "1.5" }), 0)).toStrictEqual(Duration.millis(1500))
    expect(Headers.retryAfter(h({ "retry-after": "Tue, 01 Jan 2030 00:00:30 GMT" }), ctx.now)).toStrictEqual(
      Duration.millis(30_000)
    )
    expect(Headers.retryAfter(h({ "retry-after": "Tue, 01 Jan 2030 00:00:00 GMT" }), ctx.now + 5000)).toStrictEqual(
      Duration.zero
    )
  })

  it("unreadable or negative waits are ignored", () => {
    expect(Headers.retryAfter(h({ "retry-after": "soon" }), 0)).toBeUndefined()
    expect(Headers.retryAfter(h({ "retry-after": "-3" }), 0)).toBeUndefined()
    expect(Headers.retryAfter(h({ "retry-after-ms": "x", "retry-after": "2" }), 0)).toStrictEqual(Duration.seconds(2))
    expect(Headers.retryAfter(h({}), 0)).toBeUndefined()
    expect(Headers.retryAfter(undefined, 0)).toBeUndefined()
  })

  // Every wait is a finite Duration of at most Headers.maxRetryAfter (one day), or none.
  const day = Duration.days(1)
  const waits: ReadonlyArray<readonly [string, Record<string, string>, Duration.Duration | undefined]> = [
    ["seconds", { "retry-after": "7" }, Duration.seconds(7)],
    ["zero", { "retry-after": "0" }, Duration.zero],
    ["milliseconds", { "retry-after-ms": "250" }, Duration.millis(250)],
    ["an HTTP date", { "retry-after": "Tue, 01 Jan 2030 00:00:30 GMT" }, Duration.millis(30_000)],
    ["negative seconds", { "retry-after": "-3" }, undefined],
    ["negative milliseconds", { "retry-after-ms": "-1" }, undefined],
    ["non-numeric", { "retry-after": "soon" }, undefined],
    ["NaN", { "retry-after": "NaN" }, undefined],
    ["empty", { "retry-after": "" }, undefined],
    ["blank", { "retry-after": "   " }, undefined],
    ["1e300 seconds", { "retry-after": "1e300" }, day],
    ["1e308 seconds", { "retry-after": "1e308" }, day],
    ["1e400 seconds (Infinity)", { "retry-after": "1e400" }, day],
    ["Infinity", { "retry-after": "Infinity" }, day],
    ["999999 seconds", { "retry-after": "999999" }, day],
    ["1e303 milliseconds", { "retry-after-ms": "1e303" }, day],
    ["a date in the year 9999", { "retry-after": "Fri, 31 Dec 9999 23:59:59 GMT" }, day],
    ["a date in the past", { "retry-after": "Mon, 01 Jan 2001 00:00:00 GMT" }, Duration.zero],
    ["one day exactly", { "retry-after": "86400" }, day],
    ["unreadable milliseconds fall back to seconds", { "retry-after-ms": "soon", "retry-after": "2" }, Duration.seconds(2)]
  ]
  for (const [name, headers, expected] of waits) {
    it(`retry-after: ${name} is ${expected === undefined ? "ignored" : Duration.format(expected)}`, () => {
      const wait = Headers.retryAfter(h(headers), ctx.now)
      expect(wait).toStrictEqual(expected)
      if (wait !== undefined) {
        expect(Duration.isFinite(wait)).toBe(true)
        expect(Duration.lessThanOrEqualTo(wait, Headers.maxRetryAfter)).toBe(true)
        // What failed before: a wait too large for a BigInt of nanoseconds.
        expect(() => Duration.toNanos(wait)).not.toThrow()
      }
    })
  }

  it("the ceiling on waits is one day", () => {
    expect(Headers.maxRetryAfter).toStrictEqual(Duration.days(1))
  })

  it("request ids and rate-limit values longer than 200 characters are cut short", () => {
    const long = "v".repeat(10_000)
    expect(Headers.requestId(h({ "x-request-id": long }))?.length).toBe(Headers.maxValueLength)
    const kept = Headers.rateLimitHeaders(h({ "x-ratelimit-remaining-requests": long }))
    expect(kept?.["x-ratelimit-remaining-requests"]?.length).toBe(Headers.maxValueLength)
  })

  it("keeps only x-ratelimit-* and anthropic-ratelimit-* headers", () => {
    expect(
      Headers.rateLimitHeaders(
        h({ "x-ratelimit-limit-requests": "60", "anthropic-ratelimit-tokens-reset": "2030-01-01T00:00:00Z", server: "x", authorization: "Bearer k" })
      )
    ).toStrictEqual({ "x-ratelimit-limit-requests": "60", "anthropic-ratelimit-tokens-reset": "2030-01-01T00:00:00Z" })
    expect(Headers.rateLimitHeaders(h({ server: "x" }))).toBeUndefined()
  })

  it("reads x-request-id or request-id, and x-should-retry", () => {
    expect(Headers.requestId(h({ "x-request-id": "a" }))).toBe("a")
    expect(Headers.requestId(h({ "request-id": "b" }))).toBe("b")
    expect(Headers.requestId(h({}))).toBeUndefined()
    expect(Headers.shouldRetry(h({ "x-should-retry": "true" }))).toBe(true)
    expect(Headers.shouldRetry(h({ "x-should-retry": "FALSE" }))).toBe(false)
    expect(Headers.shouldRetry(h({ "x-should-retry": "maybe" }))).toBeUndefined()
  })
})

describe("fromHttp maps status and body to one tag", () => {
  const rows: ReadonlyArray<readonly [number, unknown, string]> = [
    [400, { error: { message: "bad", type: "invalid_request_error", code: "context_length_exceeded" } }, "InvalidRequestError"],
    [413, { type: "error", error: { type: "request_too_large", message: "big" } }, "InvalidRequestError"],
    [422, undefined, "InvalidRequestError"],
    [415, undefined, "InvalidRequestError"],
    [401, undefined, "AuthenticationError"],
    [403, undefined, "AuthenticationError"],
    [404, undefined, "NotFoundError"],
    [408, undefined, "TimeoutError"],
    [409, undefined, "ServerError"],
    [500, undefined, "ServerError"],
    [502, undefined, "ServerError"],
    [429, undefined, "RateLimitError"],
    [429, { error: { message: "quota", type: "insufficient_quota", code: "insufficient_quota" } }, "QuotaExceededError"],
    [402, undefined, "QuotaExceededError"],
    [400, { type: "error", error: { type: "billing_error", message: "pay" } }, "QuotaExceededError"],
    [529, undefined, "OverloadedError"],
    [500, { type: "error", error: { type: "overloaded_error", message: "Overloaded" } }, "OverloadedError"],
    [302, undefined, "ServerError"]
  ]
  for (const [status, body, tag] of rows) {
    it(`${status} ${JSON.stringify(body) ?? "(no body)"} is ${tag}`, () => {
      expect(ProviderErrors.fromHttp({ status, body }, ctx)._tag).toBe(tag)
    })
  }

  it("keeps the provider's code, status, request id, rate-limit headers and retry-after", () => {
    const error = ProviderErrors.fromHttp(
      {
        status: 400,
        body: { error: { message: "Too long", type: "invalid_request_error", code: "context_length_exceeded" } },
        headers: h({ "x-request-id": "req_1", "x-ratelimit-remaining-tokens": "0" })
      },
      ctx
    )
    expect(error).toMatchObject({
      _tag: "InvalidRequestError",
      code: "context_length_exceeded",
      status: 400,
      requestId: "req_1",
      headers: { "x-ratelimit-remaining-tokens": "0" },
      message: "openai answered 400: Too long"
    })
    const limited = ProviderErrors.fromHttp({ status: 429, headers: h({ "retry-after": "3" }) }, ctx)
    expect(limited).toMatchObject({ _tag: "RateLimitError", retryAfter: Duration.seconds(3) })
  })

  it("x-should-retry overrides the class default", () => {
    expect(ProviderErrors.fromHttp({ status: 503, headers: h({ "x-should-retry": "false" }) }, ctx).retryable).toBe(false)
    expect(ProviderErrors.fromHttp({ status: 404, headers: h({ "x-should-retry": "true" }) }, ctx).retryable).toBe(true)
  })

  it("a status with no body says only the status", () => {
    expect(ProviderErrors.fromHttp({ status: 500 }, ctx).message).toBe("openai answered 500")
  })
})

describe("one table classifies HTTP answers and error events alike", () => {
  // The same error, once as an HTTP answer and once inside a 200 answer, gets the same tag.
  const pairs: ReadonlyArray<readonly [number, string, string]> = [
    [429, "rate_limit_error", "RateLimitError"],
    [401, "authentication_error", "AuthenticationError"],
    [403, "permission_error", "AuthenticationError"],
    [404, "not_found_error", "NotFoundError"],
    [400, "invalid_request_error", "InvalidRequestError"],
    [413, "request_too_large", "InvalidRequestError"],
    [500, "api_error", "ServerError"],
    [529, "overloaded_error", "OverloadedError"],
    [402, "billing_error", "QuotaExceededError"],
    [429, "insufficient_quota", "QuotaExceededError"]
  ]
  for (const [status, type, tag] of pairs) {
    it(`${status} and an error event of type ${type} are both ${tag}`, () => {
      const body = { type: "error", error: { type, message: "m" } }
      expect(ProviderErrors.fromHttp({ status, body }, ctx)._tag).toBe(tag)
      expect(ProviderErrors.fromErrorEvent(body, undefined, ctx)._tag).toBe(tag)
    })
  }

  it("an error event keeps the status its HTTP answer would have had", () => {
    expect(ProviderErrors.fromErrorEvent({ type: "permission_error" }, undefined, ctx)).toMatchObject({
      _tag: "AuthenticationError",
      status: 403
    })
    expect(ProviderErrors.fromErrorEvent({ type: "timeout_error" }, undefined, ctx)).toMatchObject({ _tag: "ServerError", status: 504 })
    expect(ProviderErrors.fromErrorEvent({ type: "something_new" }, undefined, ctx)).toMatchObject({ _tag: "ServerError", status: 500 })
  })

  it("a 429 error event reads the provider's wait from the response headers", () => {
    const error = ProviderErrors.fromErrorEvent({ type: "rate_limit_error" }, h({ "retry-after": "4" }), ctx)
    expect(error).toMatchObject({ _tag: "RateLimitError", retryAfter: Duration.seconds(4) })
  })

  it("a 429 with an absurd retry-after is a RateLimitError waiting the one-day ceiling", () => {
    for (const value of ["1e300", "1e308", "999999", "Fri, 31 Dec 9999 23:59:59 GMT"]) {
      const error = ProviderErrors.fromHttp({ status: 429, headers: h({ "retry-after": value }) }, ctx)
      expect(error).toMatchObject({ _tag: "RateLimitError", retryAfter: Duration.days(1) })
    }
  })
})

describe("hostile error bodies give a typed error with a readable message", () => {
  const bodies: ReadonlyArray<readonly [string, unknown]> = [
    ["null", null],
    ["an array", [1, "two", { error: "x" }]],
    ["a number", 42],
    ["fields of the wrong types", { error: { message: 42, type: ["x"], code: { a: 1 } } }],
    ["an error that is a string", { error: "upstream exploded" }],
    ["an error that is null", { error: null }]
  ]
  for (const [name, body] of bodies) {
    it(`a 400 whose body is ${name}`, () => {
      const error = ProviderErrors.fromHttp({ status: 400, body }, ctx)
      expect(error._tag).toBe("InvalidRequestError")
      expect(error.message).toMatch(/^openai answered 400/)
    })
    it(`an error event whose body is ${name}`, () => {
      const error = ProviderErrors.fromErrorEvent(body, undefined, ctx)
      expect(error._tag).toBe("ServerError")
      expect(error.message).toMatch(/^openai reported an error in its answer/)
    })
  }

  it("megabytes of unclosed markup are cut to a short message", () => {
    const hostile = "<title".repeat(200_000) + "<a".repeat(200_000)
    const cleaned = ProviderErrors.clean(hostile)
    expect(cleaned.length).toBeLessThanOrEqual(300)
  })

  it("something thrown whose conversion to text throws is still a ConnectionError", () => {
    const hostile = { toString: () => { throw new Error("no") } }
    expect(ProviderErrors.fromCause(hostile, ctx, openAiSdk)).toMatchObject({ _tag: "ConnectionError" })
  })
})

describe("messages are readable and never carry a key", () => {
  it("the configured key, sk- shaped tokens and bearer tokens are redacted", () => {
    const secret = "sk-proj-abcdef0123456789"
    const error = ProviderErrors.fromHttp(
      { status: 401, body: { error: { message: `Incorrect API key provided: ${secret}. Header: Bearer xyz123` } } },
      { ...ctx, scrub: Redaction.make([Redacted.make(secret)]) }
    )
    expect(error.message).toBe("openai answered 401: Incorrect API key provided: [redacted]. Header: Bearer [redacted]")
    expect(ProviderErrors.clean("key sk-ant-api03-AbC_dEf-123 leaked")).toBe("key [redacted] leaked")
  })

  it("an HTML page becomes its title, or its text without markup", () => {
    expect(ProviderErrors.clean("<html><head><title>503 Service Unavailable</title></head><body>x</body></html>")).toBe(
      "503 Service Unavailable"
    )
    expect(ProviderErrors.clean("<html><body><h1>Down</h1>  <p>for maintenance</p></body></html>")).toBe("Down for maintenance")
  })

  it("long provider messages are cut to 300 characters", () => {
    const cleaned = ProviderErrors.clean("x".repeat(1000))
    expect(cleaned.length).toBe(300)
    expect(cleaned.endsWith("…")).toBe(true)
  })
})

describe("fromErrorEvent maps an error inside a 200 answer by its type", () => {
  const rows: ReadonlyArray<readonly [unknown, string]> = [
    [{ type: "error", error: { type: "overloaded_error", message: "Overloaded" } }, "OverloadedError"],
    [{ type: "error", error: { type: "rate_limit_error", message: "slow" } }, "RateLimitError"],
    [{ type: "error", error: { type: "api_error", message: "oops" } }, "ServerError"],
    [{ type: "error", error: { type: "invalid_request_error", message: "bad" } }, "InvalidRequestError"],
    [{ message: "quota", type: "insufficient_quota" }, "QuotaExceededError"],
    [{ message: "x", code: "rate_limit_exceeded" }, "RateLimitError"],
    ["not json", "ServerError"]
  ]
  for (const [body, tag] of rows) {
    it(`${JSON.stringify(body)} is ${tag}`, () => {
      expect(ProviderErrors.fromErrorEvent(body, undefined, ctx)._tag).toBe(tag)
    })
  }
})

describe("fromCause maps what the SDKs throw", () => {
  for (const [name, sdk, Sdk] of [
    ["openai", openAiSdk, OpenAI],
    ["anthropic", anthropicSdk, AnthropicSdk]
  ] as const) {
    it(`${name}: the SDK's own timeout is a TimeoutError in phase provider`, () => {
      expect(ProviderErrors.fromCause(new Sdk.APIConnectionTimeoutError(), ctx, sdk)).toMatchObject({
        _tag: "TimeoutError",
        phase: "provider"
      })
    })

    it(`${name}: a connection error is a ConnectionError naming the system code`, () => {
      const cause = Object.assign(new Error("connect failed"), { code: "ECONNRESET" })
      const error = ProviderErrors.fromCause(new Sdk.APIConnectionError({ cause: new TypeError("fetch failed", { cause }) }), ctx, sdk)
      expect(error).toMatchObject({ _tag: "ConnectionError", message: "openai could not be reached (ECONNRESET)" })
    })
  }

  it("an HTTP status error is mapped by status, and a non-JSON body keeps its text", () => {
    const error = ProviderErrors.fromCause(
      OpenAI.APIError.generate(503, undefined, "upstream connect error", h({})),
      ctx,
      openAiSdk
    )
    expect(error).toMatchObject({ _tag: "ServerError", status: 503, message: "openai answered 503: upstream connect error" })
  })

  it("a socket closed mid-body (undici 'terminated') is a ConnectionError with the text delivered", () => {
    const error = ProviderErrors.fromCause(new TypeError("terminated"), { ...ctx, textEmitted: 12 }, openAiSdk)
    expect(error).toMatchObject({ _tag: "ConnectionError", textEmitted: 12 })
    expect(error.message).toContain("terminated")
  })

  it("invalid JSON is a ResponseParseError", () => {
    expect(ProviderErrors.fromCause(new SyntaxError("Unexpected end of JSON input"), ctx, openAiSdk)._tag).toBe(
      "ResponseParseError"
    )
  })

  it("an LlmError passes through unchanged", () => {
    const error = new ConnectionError({ provider: "openai", message: "x" })
    expect(ProviderErrors.fromCause(error, ctx, openAiSdk)).toBe(error)
  })
})
