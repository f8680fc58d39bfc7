/**
 * Error answers in the shapes gateways, frameworks and servers other than OpenAI's and
 * Anthropic's send, over real HTTP through both SDKs: the message is the body's own text, found
 * wherever the shape keeps it, scrubbed and cut as any provider text, with its code where it has
 * one. Also the answers OpenAI's API description allows that are not worth asking again.
 */
import { RateLimiter } from "@effect/experimental"
import { describe, expect, it } from "@effect/vitest"
import { ConfigProvider, Effect, Logger, LogLevel } from "effect"
import * as Http from "node:http"
import type * as Net from "node:net"
import * as ProviderErrors from "../../src/internal/providerErrors.js"
import * as Llm from "../../src/Llm.js"
import * as LlmLive from "../../src/LlmLive.js"
import * as Simulator from "../../simulator/Simulator.js"
import { collect, failure, hello, type Provider, providerAt } from "./support.js"

type Reply = { readonly status: number; readonly body: string; readonly contentType?: string }

/** A server on loopback answering every request with `reply`; closed with the scope. */
const answering = (reply: Reply) =>
  Effect.acquireRelease(
    Effect.async<{ readonly url: string; readonly server: Http.Server }>((resume) => {
      const server = Http.createServer((request, response) => {
        request.resume()
        request.on("end", () => {
          response.writeHead(reply.status, { "content-type": reply.contentType ?? "application/json" })
          response.end(reply.body)
        })
      })
      server.listen(0, "127.0.0.1", () => {
        const { port } = server.address() as Net.AddressInfo
        resume(Effect.succeed({ url: `http://127.0.0.1:${port}`, server }))
      })
    }),
    ({ server }) =>
      Effect.async<void>((resume) => {
        server.closeAllConnections()
        server.close(() => resume(Effect.void))
      })
  )

interface Case {
  readonly what: string
  readonly reply: Reply
  readonly text: string
  readonly tag: string
  readonly code?: string
}

const json = (status: number, body: unknown): Reply => ({ status, body: JSON.stringify(body) })

const cases: ReadonlyArray<Case> = [
  {
    what: "a gateway's { status, message }",
    reply: json(400, { status: "failure", message: "Either x-portkey-config or x-portkey-provider header is required" }),
    text: "Either x-portkey-config or x-portkey-provider header is required",
    tag: "InvalidRequestError"
  },
  {
    what: "RFC 9457 problem details (title and detail)",
    reply: {
      ...json(422, { type: "https://stoplight.io/prism/errors#UNPROCESSABLE_ENTITY", title: "Invalid request", status: 422, detail: "messages must not be empty" }),
      contentType: "application/problem+json"
    },
    text: "Invalid request: messages must not be empty",
    tag: "InvalidRequestError"
  },
  { what: "FastAPI's { detail }", reply: json(404, { detail: "Not Found" }), text: "Not Found", tag: "NotFoundError" },
  { what: "a lone { title }", reply: json(403, { title: "Forbidden" }), text: "Forbidden", tag: "AuthenticationError" },
  { what: "{ error } as a string", reply: json(401, { error: "Unauthorized" }), text: "Unauthorized", tag: "AuthenticationError" },
  {
    what: "{ error: <reason>, message } as frameworks send",
    reply: json(400, { error: "Bad Request", message: "model is required", statusCode: 400 }),
    text: "model is required",
    tag: "InvalidRequestError"
  },
  {
    what: "a numeric code",
    reply: json(400, { error: { code: 400, message: "Invalid value at 'contents'", status: "INVALID_ARGUMENT" } }),
    text: "Invalid value at 'contents'",
    tag: "InvalidRequestError",
    code: "400"
  },
  {
    what: "an HTML page, by its title",
    reply: { status: 502, body: "<html><head><title>502 Bad Gateway</title></head><body><h1>nginx</h1></body></html>", contentType: "text/html" },
    text: "502 Bad Gateway",
    tag: "ServerError"
  },
  {
    what: "plain text",
    reply: { status: 503, body: "upstream connect error or disconnect/reset before headers", contentType: "text/plain" },
    text: "upstream connect error or disconnect/reset before headers",
    tag: "ServerError"
  },
  {
    what: "a message holding something shaped like a key, scrubbed",
    reply: json(401, { message: "Invalid API key: sk-live-abcdefghijklmnop" }),
    text: "Invalid API key: [redacted]",
    tag: "AuthenticationError"
  }
]

const providers: ReadonlyArray<Provider> = ["openai", "anthropic"]

describe("any error body's text becomes the message", () => {
  for (const provider of providers) {
    for (const { code, reply, tag, text, what } of cases) {
      it.scoped(`${provider}: ${what}`, () =>
        Effect.gen(function* () {
          const server = yield* answering(reply)
          const service = Llm.fromProvider(yield* providerAt(provider, server.url))
          const whole = yield* failure(service.complete(hello))
          const streamed = yield* failure(collect(service.stream(hello)))
          for (const error of [whole, streamed]) {
            expect(error._tag).toBe(tag)
            expect(error.message).toBe(`${provider} answered ${reply.status}: ${text}`)
            if (code !== undefined) expect(error).toMatchObject({ code })
          }
        })
      )
    }
  }

  it.scoped("a long message is cut to 300 characters", () =>
    Effect.gen(function* () {
      const server = yield* answering(json(400, { detail: "x".repeat(5000) }))
      const error = yield* failure(Llm.fromProvider(yield* providerAt("openai", server.url)).complete(hello))
      expect(error.message.length).toBeLessThan(330)
      expect(error.message.endsWith("…")).toBe(true)
    })
  )
})

describe("errorDetail reads the usual shapes", () => {
  it("the first of error.message, message, title with detail, detail, title, error as a string", () => {
    expect(ProviderErrors.errorDetail({ error: { message: "inner" }, message: "outer" }).message).toBe("inner")
    expect(ProviderErrors.errorDetail({ error: { type: "x" }, message: "outer" }).message).toBe("outer")
    expect(ProviderErrors.errorDetail({ message: "m", detail: "d", title: "t" }).message).toBe("m")
    expect(ProviderErrors.errorDetail({ detail: "d", title: "t" }).message).toBe("t: d")
    expect(ProviderErrors.errorDetail({ detail: "d" }).message).toBe("d")
    expect(ProviderErrors.errorDetail({ title: "t" }).message).toBe("t")
    expect(ProviderErrors.errorDetail({ error: "e" }).message).toBe("e")
    expect(ProviderErrors.errorDetail({ error: { message: 42 } }).message).toBeUndefined()
    expect(ProviderErrors.errorDetail("text").message).toBe("text")
  })

  it("a code as a string or a finite number, inside error or beside it", () => {
    expect(ProviderErrors.errorDetail({ error: { code: "content_filter" } }).code).toBe("content_filter")
    expect(ProviderErrors.errorDetail({ error: { code: 429 } }).code).toBe("429")
    expect(ProviderErrors.errorDetail({ error: "e", code: "E_BAD" }).code).toBe("E_BAD")
    expect(ProviderErrors.errorDetail({ code: Number.NaN }).code).toBeUndefined()
  })
})

const quiet = Logger.withMinimumLogLevel(LogLevel.None)

describe("answers not worth asking again", () => {
  it.scoped("choices: [] in a 200 is a ResponseParseError that is not retried", () =>
    Effect.gen(function* () {
      const sim = yield* Simulator.make()
      sim.enqueue("openai", { body: { id: "c", object: "chat.completion", model: "m", choices: [] } })
      const llm = yield* LlmLive.make.pipe(
        Effect.provide(RateLimiter.layerStoreMemory),
        Effect.withConfigProvider(ConfigProvider.fromMap(new Map([["OPENAI_API_KEY", "sk-test-empty-choices"], ["OPENAI_BASE_URL", `${sim.url}/v1`]])))
      )
      const error = yield* failure(llm.complete(hello))
      expect(error).toMatchObject({ _tag: "ResponseParseError", retryable: false, message: "openai sent a completion with no choices" })
      expect(sim.attempts()).toBe(1)
    }).pipe(quiet))

  it.scoped("negative, non-finite or non-numeric token counts are absent, never counted", () =>
    Effect.gen(function* () {
      const sim = yield* Simulator.make()
      const service = Llm.fromProvider(yield* providerAt("openai", sim.url))
      const choice = { index: 0, message: { role: "assistant", content: "ok" }, finish_reason: "stop" }
      const answer = (usage: unknown) => ({ body: { id: "c", object: "chat.completion", model: "m", choices: [choice], usage } })
      sim.enqueue(
        "openai",
        answer({ prompt_tokens: -5, completion_tokens: 3 }),
        answer({ prompt_tokens: 4, completion_tokens: 3, total_tokens: -1, prompt_tokens_details: { cached_tokens: -2 } }),
        answer({ prompt_tokens: "4", completion_tokens: 3 })
      )
      expect((yield* service.complete(hello)).usage).toEqual({ inputTokens: 0, outputTokens: 0, totalTokens: 0 })
      expect((yield* service.complete(hello)).usage).toEqual({ inputTokens: 4, outputTokens: 3, totalTokens: 7 })
      expect((yield* service.complete(hello)).usage).toEqual({ inputTokens: 0, outputTokens: 0, totalTokens: 0 })
    }))

  it.scoped("Anthropic's negative counts are absent too", () =>
    Effect.gen(function* () {
      const sim = yield* Simulator.make()
      const service = Llm.fromProvider(yield* providerAt("anthropic", sim.url))
      sim.enqueue("anthropic", {
        body: {
          id: "msg_1",
          type: "message",
          role: "assistant",
          model: "claude-sonnet-4-6",
          content: [{ type: "text", text: "ok" }],
          stop_reason: "end_turn",
          usage: { input_tokens: 10, output_tokens: -4, cache_read_input_tokens: -100 }
        }
      })
      expect((yield* service.complete(hello)).usage).toEqual({ inputTokens: 10, outputTokens: 0, totalTokens: 10 })
    }))
})
