/**
 * The error mapping, row by row, end to end: a real SDK reading a real HTTP answer from the
 * simulator, and the one `LlmError` that comes out. No error may ever expose an API key.
 */
import { describe, expect, it } from "@effect/vitest"
import { Duration, Effect, Redacted, Stream, TestClock } from "effect"
import * as Net from "node:net"
import type * as Simulator from "../../simulator/Simulator.js"
import * as Llm from "../../src/Llm.js"
import * as OpenAi from "../../src/OpenAi.js"
import type { LlmError } from "../../src/LlmError.js"
import {
  anthropicKey,
  collect,
  compatibleKey,
  exposed,
  failure,
  hello,
  openAiKey,
  type Provider,
  setup
} from "./support.js"

const expectNoKey = (error: LlmError) => {
  const text = exposed(error)
  for (const key of [openAiKey, anthropicKey, compatibleKey]) expect(text).not.toContain(key)
  expect(text).not.toMatch(/Bearer/i)
}

/** Answers the next request with `script` and returns the error `complete` (or `stream`) fails with. */
const failWith = (provider: Provider, script: Simulator.Script, via: "complete" | "stream" = "complete") =>
  Effect.gen(function* () {
    const { route, service, sim } = yield* setup(provider)
    sim.enqueue(route, script)
    const error = yield* failure(via === "complete" ? service.complete(hello) : Stream.runDrain(service.stream(hello)))
    expectNoKey(error)
    return error
  })

/** A loopback port nobody listens on: bound, then released. */
const closedPort = Effect.promise(
  () =>
    new Promise<number>((resolve) => {
      const server = Net.createServer()
      server.listen(0, "127.0.0.1", () => {
        const address = server.address()
        const port = typeof address === "object" && address !== null ? address.port : 0
        server.close(() => resolve(port))
      })
    })
)

const openAiError = (message: string, type: string, code: string | null = null) => ({
  error: { message, type, param: null, code }
})
const anthropicError = (type: string, message: string) => ({ type: "error", error: { type, message } })

describe("4xx answers map to request, auth and not-found errors", () => {
  it.scoped("400 is an InvalidRequestError keeping OpenAI's code (context_length_exceeded)", () =>
    Effect.gen(function* () {
      const error = yield* failWith("openai", {
        status: 400,
        body: openAiError("This model's maximum context length is 128000 tokens.", "invalid_request_error", "context_length_exceeded")
      })
      expect(error).toMatchObject({
        _tag: "InvalidRequestError",
        code: "context_length_exceeded",
        status: 400,
        retryable: false,
        provider: "openai",
        requestId: expect.stringMatching(/^req_sim_/),
        message: "openai answered 400: This model's maximum context length is 128000 tokens."
      })
    })
  )

  it.scoped("413 is an InvalidRequestError keeping Anthropic's type (request_too_large)", () =>
    Effect.gen(function* () {
      const error = yield* failWith("anthropic", {
        status: 413,
        body: anthropicError("request_too_large", "Request exceeds the maximum allowed number of bytes.")
      })
      expect(error).toMatchObject({ _tag: "InvalidRequestError", code: "request_too_large", status: 413, provider: "anthropic" })
    })
  )

  it.scoped("422 is an InvalidRequestError", () =>
    Effect.gen(function* () {
      const error = yield* failWith("compatible", { status: 422, body: { error: { message: "temperature: extra inputs" } } })
      expect(error).toMatchObject({ _tag: "InvalidRequestError", status: 422, provider: "groq" })
      expect(error.message).toBe("groq answered 422: temperature: extra inputs")
    })
  )

  it.scoped("401 is an AuthenticationError and the echoed key is scrubbed from the message", () =>
    Effect.gen(function* () {
      const error = yield* failWith("openai", {
        status: 401,
        body: openAiError(`Incorrect API key provided: ${openAiKey}.`, "invalid_request_error", "invalid_api_key")
      })
      expect(error).toMatchObject({ _tag: "AuthenticationError", status: 401, retryable: false })
      expect(error.message).toBe("openai answered 401: Incorrect API key provided: [redacted].")
    })
  )

  it.scoped("403 is an AuthenticationError (permission)", () =>
    Effect.gen(function* () {
      const error = yield* failWith("anthropic", {
        status: 403,
        body: anthropicError("permission_error", "Your API key does not have permission to use the specified resource.")
      })
      expect(error).toMatchObject({ _tag: "AuthenticationError", status: 403 })
    })
  )

  it.scoped("404 is a NotFoundError", () =>
    Effect.gen(function* () {
      const error = yield* failWith("openai", {
        status: 404,
        body: openAiError("The model `gpt-9` does not exist", "invalid_request_error", "model_not_found")
      })
      expect(error).toMatchObject({ _tag: "NotFoundError", retryable: false })
      expect(error.message).toBe("openai answered 404: The model `gpt-9` does not exist")
    })
  )

  it.scoped("408 is a TimeoutError in phase provider", () =>
    Effect.gen(function* () {
      const error = yield* failWith("openai", { status: 408 })
      expect(error).toMatchObject({ _tag: "TimeoutError", phase: "provider", retryable: true })
    })
  )
})

describe("409 and 5xx answers are server errors", () => {
  it.scoped("409 is a retryable ServerError", () =>
    Effect.gen(function* () {
      const error = yield* failWith("anthropic", { status: 409 })
      expect(error).toMatchObject({ _tag: "ServerError", status: 409, retryable: true })
    })
  )

  it.scoped("500 is a retryable ServerError", () =>
    Effect.gen(function* () {
      const error = yield* failWith("openai", { status: 500 })
      expect(error).toMatchObject({ _tag: "ServerError", status: 500, retryable: true })
    })
  )

  it.scoped("503 on a stream is a ServerError", () =>
    Effect.gen(function* () {
      const error = yield* failWith("anthropic", { status: 503 }, "stream")
      expect(error).toMatchObject({ _tag: "ServerError", status: 503 })
    })
  )

  it.scoped("a non-JSON 502 HTML page is a ServerError with the page's title as message", () =>
    Effect.gen(function* () {
      const error = yield* failWith("openai", {
        status: 502,
        headers: { "content-type": "text/html" },
        body: "<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n<center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>cloudflare</center>\r\n</body>\r\n</html>\r\n"
      })
      expect(error).toMatchObject({ _tag: "ServerError", status: 502 })
      expect(error.message).toBe("openai answered 502: 502 Bad Gateway")
    })
  )
})

describe("429 answers are rate limits, with the provider's wait, request id and rate-limit headers", () => {
  it.scoped("retry-after-ms wins and x-ratelimit-* headers and x-request-id are kept", () =>
    Effect.gen(function* () {
      const error = yield* failWith("openai", {
        status: 429,
        headers: {
          "retry-after-ms": "1500",
          "retry-after": "9",
          "x-request-id": "req_abc123",
          "x-ratelimit-remaining-requests": "0",
          "x-ratelimit-reset-requests": "1.5s",
          "openai-processing-ms": "12"
        },
        body: openAiError("Rate limit reached for requests", "requests", "rate_limit_exceeded")
      })
      expect(error._tag).toBe("RateLimitError")
      if (error._tag !== "RateLimitError") return
      expect(error.retryAfter).toStrictEqual(Duration.millis(1500))
      expect(error.requestId).toBe("req_abc123")
      expect(error.headers).toStrictEqual({ "x-ratelimit-remaining-requests": "0", "x-ratelimit-reset-requests": "1.5s" })
      expect(error.retryable).toBe(true)
    })
  )

  it.scoped("retry-after in seconds, anthropic-ratelimit-* headers and request-id are kept", () =>
    Effect.gen(function* () {
      const error = yield* failWith("anthropic", {
        status: 429,
        headers: { "retry-after": "7", "request-id": "req_011", "anthropic-ratelimit-tokens-remaining": "0" },
        body: anthropicError("rate_limit_error", "Number of request tokens has exceeded your per-minute rate limit")
      })
      expect(error._tag).toBe("RateLimitError")
      if (error._tag !== "RateLimitError") return
      expect(error.retryAfter).toStrictEqual(Duration.seconds(7))
      expect(error.requestId).toBe("req_011")
      expect(error.headers).toStrictEqual({ "anthropic-ratelimit-tokens-remaining": "0" })
    })
  )

  it.scoped("retry-after as an HTTP date is measured from the Clock", () =>
    Effect.gen(function* () {
      const date = "Wed, 21 Oct 2037 07:28:00 GMT"
      yield* TestClock.setTime(Date.parse(date) - 12_000)
      const error = yield* failWith("openai", { status: 429, headers: { "retry-after": date } })
      expect(error._tag).toBe("RateLimitError")
      if (error._tag === "RateLimitError") expect(error.retryAfter).toStrictEqual(Duration.millis(12_000))
    })
  )

  it.scoped("a 429 on a stream is a RateLimitError", () =>
    Effect.gen(function* () {
      const error = yield* failWith("compatible", { status: 429, headers: { "retry-after": "2" } }, "stream")
      expect(error).toMatchObject({ _tag: "RateLimitError", provider: "groq", retryAfter: Duration.seconds(2) })
    })
  )
})

describe("quota and billing errors are QuotaExceededError, not rate limits", () => {
  it.scoped("OpenAI's 429 insufficient_quota is a non-retryable QuotaExceededError", () =>
    Effect.gen(function* () {
      const error = yield* failWith("openai", {
        status: 429,
        body: openAiError("You exceeded your current quota, please check your plan and billing details.", "insufficient_quota", "insufficient_quota")
      })
      expect(error).toMatchObject({ _tag: "QuotaExceededError", retryable: false })
    })
  )

  it.scoped("Anthropic's billing_error is a QuotaExceededError", () =>
    Effect.gen(function* () {
      const error = yield* failWith("anthropic", { status: 402, body: anthropicError("billing_error", "Payment required") })
      expect(error).toMatchObject({ _tag: "QuotaExceededError" })
    })
  )

  it.scoped("Anthropic's 'credit balance is too low' 400 is a QuotaExceededError", () =>
    Effect.gen(function* () {
      const error = yield* failWith("anthropic", {
        status: 400,
        body: anthropicError("invalid_request_error", "Your credit balance is too low to access the Anthropic API.")
      })
      expect(error).toMatchObject({ _tag: "QuotaExceededError" })
    })
  )
})

describe("overload is OverloadedError", () => {
  it.scoped("529 is an OverloadedError", () =>
    Effect.gen(function* () {
      const error = yield* failWith("anthropic", { status: 529 })
      expect(error).toMatchObject({ _tag: "OverloadedError", retryable: true, message: "anthropic answered 529: Overloaded" })
    })
  )

  it.scoped("an overloaded_error body on another status is an OverloadedError", () =>
    Effect.gen(function* () {
      const error = yield* failWith("anthropic", { status: 503, body: anthropicError("overloaded_error", "Overloaded") })
      expect(error._tag).toBe("OverloadedError")
    })
  )
})

describe("x-should-retry overrides retryable", () => {
  it.scoped("x-should-retry: false makes a 500 not retryable", () =>
    Effect.gen(function* () {
      const error = yield* failWith("openai", { status: 500, headers: { "x-should-retry": "false" } })
      expect(error).toMatchObject({ _tag: "ServerError", retryable: false })
    })
  )

  it.scoped("x-should-retry: true makes a 400 retryable", () =>
    Effect.gen(function* () {
      const error = yield* failWith("anthropic", { status: 400, headers: { "x-should-retry": "true" } })
      expect(error).toMatchObject({ _tag: "InvalidRequestError", retryable: true })
    })
  )
})

describe("errors inside a 200 answer map by their type", () => {
  it.scoped("an Anthropic overloaded_error event mid-stream fails the stream with OverloadedError after the text so far", () =>
    Effect.gen(function* () {
      const { route, service, sim } = yield* setup("anthropic")
      sim.enqueue(route, {
        chunks: [
          { type: "message_start", message: { id: "msg_1", model: "claude-sonnet-4-6", usage: { input_tokens: 5, output_tokens: 1 } } },
          { type: "content_block_start", index: 0, content_block: { type: "text", text: "" } },
          { type: "content_block_delta", index: 0, delta: { type: "text_delta", text: "Hello" } },
          { type: "error", error: { type: "overloaded_error", message: "Overloaded" } }
        ]
      })
      const seen: Array<string> = []
      const error = yield* failure(
        Stream.runForEach(service.stream(hello), (e) => Effect.sync(() => seen.push(e._tag === "TextDelta" ? e.text : e._tag)))
      )
      expect(seen).toStrictEqual(["Hello"])
      expect(error).toMatchObject({ _tag: "OverloadedError", textEmitted: 5 })
      expect(error.message).toBe("anthropic reported an error in its answer: overloaded_error: Overloaded")
    })
  )

  it.scoped("an Anthropic rate_limit_error event mid-stream is a RateLimitError", () =>
    Effect.gen(function* () {
      const error = yield* failWith(
        "anthropic",
        { chunks: [{ type: "error", error: { type: "rate_limit_error", message: "Slow down" } }] },
        "stream"
      )
      expect(error._tag).toBe("RateLimitError")
    })
  )

  it.scoped("an OpenAI error chunk mid-stream is a ServerError when its type is server_error", () =>
    Effect.gen(function* () {
      const error = yield* failWith(
        "openai",
        {
          chunks: [
            { id: "c1", model: "gpt-4o-mini", choices: [{ index: 0, delta: { content: "Hi" }, finish_reason: null }] },
            { error: { message: "The server had an error while processing your request.", type: "server_error" } }
          ]
        },
        "stream"
      )
      expect(error).toMatchObject({ _tag: "ServerError", status: 500, textEmitted: 2 })
    })
  )

  it.scoped("a 200 whose JSON body is an error object is mapped, not parsed as a completion", () =>
    Effect.gen(function* () {
      const error = yield* failWith("compatible", { body: { error: { message: "model overloaded", type: "overloaded_error" } } })
      expect(error).toMatchObject({ _tag: "OverloadedError", provider: "groq" })
    })
  )
})

describe("broken answers are ResponseParseError", () => {
  for (const provider of ["openai", "anthropic"] as const) {
    it.scoped(`${provider}: a 200 with a truncated JSON body is a ResponseParseError`, () =>
      Effect.gen(function* () {
        const error = yield* failWith(provider, { malformed: "json" })
        expect(error).toMatchObject({ _tag: "ResponseParseError", provider })
      })
    )

    it.scoped(`${provider}: a stream with a broken SSE frame is a ResponseParseError`, () =>
      Effect.gen(function* () {
        const error = yield* failWith(provider, { malformed: "sse" }, "stream")
        expect(error).toMatchObject({ _tag: "ResponseParseError", provider })
      })
    )
  }

  it.scoped("a 200 JSON body without choices is a ResponseParseError", () =>
    Effect.gen(function* () {
      const error = yield* failWith("openai", { body: { id: "x", object: "chat.completion" } })
      expect(error).toMatchObject({ _tag: "ResponseParseError", message: "openai sent a completion without choices" })
    })
  )

  it.scoped("a 200 HTML page instead of a message is a ResponseParseError", () =>
    Effect.gen(function* () {
      const error = yield* failWith("anthropic", { headers: { "content-type": "text/html" }, body: "<html>maintenance</html>" })
      expect(error._tag).toBe("ResponseParseError")
    })
  )
})

describe("broken connections are ConnectionError", () => {
  for (const provider of ["openai", "anthropic"] as const) {
    it.scoped(`${provider}: a connection reset before the headers is a ConnectionError`, () =>
      Effect.gen(function* () {
        const error = yield* failWith(provider, { destroyBeforeHeaders: true })
        expect(error).toMatchObject({ _tag: "ConnectionError", retryable: true })
      })
    )

    it.scoped(`${provider}: a socket closed mid-stream fails with ConnectionError counting the text delivered`, () =>
      Effect.gen(function* () {
        const { route, service, sim } = yield* setup(provider)
        // Frames: OpenAI role chunk, "one ", "two "...; Anthropic message_start, block start, "one "...
        sim.enqueue(route, { text: "one two three four", closeAfterChunks: 4 })
        const events: Array<string> = []
        const error = yield* failure(
          Stream.runForEach(service.stream(hello), (e) => Effect.sync(() => events.push(e._tag === "TextDelta" ? e.text : e._tag)))
        )
        expect(events.length).toBeGreaterThan(0)
        expect(events).not.toContain("Finish")
        expect(error).toMatchObject({ _tag: "ConnectionError", textEmitted: events.join("").length })
        expectNoKey(error)
      })
    )

    it.scoped(`${provider}: a socket closed mid-body of a whole answer is a ConnectionError`, () =>
      Effect.gen(function* () {
        const error = yield* failWith(provider, { closeAfterChunks: 0 })
        expect(error._tag).toBe("ConnectionError")
      })
    )
  }

  it.scoped("an OpenAI stream that ends without a finish reason fails with ConnectionError, never quietly", () =>
    Effect.gen(function* () {
      const { route, service, sim } = yield* setup("openai")
      sim.enqueue(route, {
        chunks: [{ id: "c1", model: "gpt-4o-mini", choices: [{ index: 0, delta: { content: "partial" }, finish_reason: null }] }]
      })
      const error = yield* failure(collect(service.stream(hello)))
      expect(error).toMatchObject({
        _tag: "ConnectionError",
        textEmitted: 7,
        message: "openai stream ended before the answer was finished"
      })
    })
  )

  it.scoped("an Anthropic stream that ends without message_stop fails with ConnectionError", () =>
    Effect.gen(function* () {
      const { route, service, sim } = yield* setup("anthropic")
      sim.enqueue(route, {
        chunks: [
          { type: "message_start", message: { id: "m", model: "claude", usage: { input_tokens: 1, output_tokens: 1 } } },
          { type: "content_block_delta", index: 0, delta: { type: "text_delta", text: "partial" } },
          { type: "message_delta", delta: { stop_reason: "end_turn" }, usage: { output_tokens: 2 } }
        ]
      })
      const error = yield* failure(collect(service.stream(hello)))
      expect(error).toMatchObject({ _tag: "ConnectionError", textEmitted: 7 })
    })
  )

  it.effect("a refused connection is a ConnectionError naming the cause", () =>
    Effect.gen(function* () {
      const port = yield* closedPort
      const service = Llm.fromProvider(yield* OpenAi.make({ apiKey: Redacted.make(openAiKey), baseURL: `http://127.0.0.1:${port}/v1` }))
      const error = yield* failure(service.complete(hello))
      expect(error).toMatchObject({ _tag: "ConnectionError", message: "openai could not be reached (ECONNREFUSED)" })
      expectNoKey(error)
    })
  )
})
