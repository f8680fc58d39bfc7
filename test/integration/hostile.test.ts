/**
 * The providers against a hostile server: a small `node:http` server, written here, that does what
 * real servers and gateways sometimes do (keep a finished stream open, answer a stream request with
 * JSON, send one enormous line, absurd headers, bodies of the wrong shape). Every call goes through
 * the public API (`make` and `Llm.fromProvider`) over real HTTP on loopback, and every failure must
 * be a typed `LlmError` with a readable message, never a defect.
 */
import { describe, expect, it } from "@effect/vitest"
import { Cause, Duration, Effect, Exit, Option, Stream } from "effect"
import * as Http from "node:http"
import type * as Net from "node:net"
import * as Llm from "../../src/Llm.js"
import { isLlmError, type LlmError } from "../../src/LlmError.js"
import type * as LlmRequest from "../../src/LlmRequest.js"
import { collect, eventually, hello, type Provider, providerAt, summarize } from "./support.js"

type Handler = (request: Http.IncomingMessage, response: Http.ServerResponse, body: string) => void

interface Hostile {
  readonly url: string
  /** The bodies of the requests received, parsed. */
  readonly requests: Array<Record<string, unknown>>
  /** Connections that carried a request and are still open. */
  readonly openSockets: () => number
}

/** A server on loopback answering every request with `handler`, closed with the scope. */
const serve = (handler: Handler) =>
  Effect.acquireRelease(
    Effect.promise(
      () =>
        new Promise<{ readonly hostile: Hostile; readonly server: Http.Server; readonly sockets: Set<Net.Socket> }>(
          (resolve) => {
            const requests: Array<Record<string, unknown>> = []
            const sockets = new Set<Net.Socket>()
            const serving = new Set<Net.Socket>()
            const server = Http.createServer((request, response) => {
              const socket = request.socket
              if (!serving.has(socket)) {
                serving.add(socket)
                socket.once("close", () => serving.delete(socket))
              }
              let body = ""
              request.setEncoding("utf8")
              request.on("data", (piece: string) => (body += piece))
              request.on("end", () => {
                requests.push(JSON.parse(body) as Record<string, unknown>)
                handler(request, response, body)
              })
            })
            // Every socket, to close them with the scope (fetch may open a spare one after an abort).
            server.on("connection", (socket) => {
              sockets.add(socket)
              socket.on("close", () => sockets.delete(socket))
            })
            server.listen(0, "127.0.0.1", () => {
              const address = server.address() as Net.AddressInfo
              resolve({
                server,
                sockets,
                hostile: {
                  url: `http://127.0.0.1:${address.port}`,
                  requests,
                  openSockets: () => serving.size
                }
              })
            })
          }
        )
    ),
    ({ server, sockets }) =>
      Effect.promise(
        () =>
          new Promise<void>((resolve) => {
            for (const socket of sockets) socket.destroy()
            server.close(() => resolve())
          })
      )
  ).pipe(Effect.map(({ hostile }) => hostile))

/** The service over one provider of `kind` pointed at the hostile server, and the provider. */
const against = (kind: Provider, handler: Handler) =>
  Effect.gen(function* () {
    const hostile = yield* serve(handler)
    const provider = yield* providerAt(kind, hostile.url)
    return { hostile, provider, service: Llm.fromProvider(provider) }
  })

/** The typed failure in `exit`, which must be an `LlmError` (a defect fails the test). */
const typedError = <A>(exit: Exit.Exit<A, LlmError>): LlmError => {
  if (Exit.isSuccess(exit)) throw new Error("expected a failure, got a success")
  const error = Cause.failureOption(exit.cause)
  if (Option.isNone(error)) throw new Error(`expected a typed failure, got ${Cause.pretty(exit.cause)}`)
  expect(isLlmError(error.value)).toBe(true)
  expect(error.value.local).toBe(false)
  expectReadable(error.value.message)
  return error.value
}

/** The typed failure of `effect`, which must fail with an `LlmError`. */
const typedFailure = <A>(effect: Effect.Effect<A, LlmError>) => Effect.map(Effect.exit(effect), typedError)

/** One line of text, short enough for a log line. */
const expectReadable = (message: string) => {
  expect(message.length).toBeGreaterThan(0)
  expect(message.length).toBeLessThanOrEqual(400)
  expect(message).not.toMatch(/[\r\n]/)
}

/** A call that should finish at once; a hang fails the test as a defect, clearly. */
const promptly = <A, E>(effect: Effect.Effect<A, E>, duration: Duration.DurationInput = "5 seconds") =>
  Effect.timeoutFailCause(effect, { duration, onTimeout: () => Cause.die(new Error("the call did not finish")) })

const sse = (response: Http.ServerResponse) =>
  response.writeHead(200, { "content-type": "text/event-stream", "cache-control": "no-cache" })

const frame = (data: unknown, event?: string) => `${event === undefined ? "" : `event: ${event}\n`}data: ${JSON.stringify(data)}\n\n`

/** An OpenAI stream of `texts`, finished and with usage, ending with `[DONE]`. */
const openAiFrames = (texts: ReadonlyArray<string>) => [
  ...texts.map((text) => frame({ id: "c1", model: "m-1", choices: [{ index: 0, delta: { content: text }, finish_reason: null }] })),
  frame({ id: "c1", model: "m-1", choices: [{ index: 0, delta: {}, finish_reason: "stop" }] }),
  frame({ id: "c1", model: "m-1", choices: [], usage: { prompt_tokens: 3, completion_tokens: 2, total_tokens: 5 } }),
  "data: [DONE]\n\n"
]

/** An Anthropic stream of `texts` ending with `message_stop`. */
const anthropicFrames = (texts: ReadonlyArray<string>) => [
  frame({ type: "message_start", message: { id: "msg_1", model: "claude-1", usage: { input_tokens: 3, output_tokens: 1 } } }, "message_start"),
  frame({ type: "content_block_start", index: 0, content_block: { type: "text", text: "" } }, "content_block_start"),
  ...texts.map((text) => frame({ type: "content_block_delta", index: 0, delta: { type: "text_delta", text } }, "content_block_delta")),
  frame({ type: "content_block_stop", index: 0 }, "content_block_stop"),
  frame({ type: "message_delta", delta: { stop_reason: "end_turn" }, usage: { output_tokens: 2 } }, "message_delta"),
  frame({ type: "message_stop" }, "message_stop")
]

const framesOf = (kind: Provider, texts: ReadonlyArray<string>) =>
  kind === "anthropic" ? anthropicFrames(texts) : openAiFrames(texts)

/** A whole answer in the provider's JSON. */
const wholeAnswer = (kind: Provider, text: string) =>
  kind === "anthropic"
    ? {
        id: "msg_1",
        type: "message",
        role: "assistant",
        model: "claude-1",
        content: [{ type: "text", text }],
        stop_reason: "end_turn",
        usage: { input_tokens: 3, output_tokens: 2 }
      }
    : {
        id: "c1",
        object: "chat.completion",
        model: "m-1",
        choices: [{ index: 0, message: { role: "assistant", content: text }, finish_reason: "stop" }],
        usage: { prompt_tokens: 3, completion_tokens: 2, total_tokens: 5 }
      }

const json = (response: Http.ServerResponse, status: number, body: string, headers: Http.OutgoingHttpHeaders = {}) => {
  response.writeHead(status, { "content-type": "application/json", ...headers })
  response.end(body)
}

const kinds: ReadonlyArray<Provider> = ["openai", "anthropic", "compatible"]

const lastEvent = (kind: Provider) => (kind === "anthropic" ? "message_stop" : "[DONE]")

describe("a stream ends at its last event even when the server keeps the connection open", () => {
  for (const kind of kinds) {
    it.live(`${kind}: after ${lastEvent(kind)} the stream finishes at once and the socket is released`, () =>
      Effect.scoped(
        Effect.gen(function* () {
          const { hostile, service } = yield* against(kind, (_request, response) => {
            sse(response)
            for (const piece of framesOf(kind, ["Hel", "lo"])) response.write(piece)
            // ...and never end the response.
          })
          const { finish, text } = summarize(yield* promptly(collect(service.stream(hello))))
          expect(text).toBe("Hello")
          expect(finish).toMatchObject({ finishReason: "stop", usage: { inputTokens: 3, outputTokens: 2 } })
          expect(hostile.requests.length).toBe(1)
          expect(yield* eventually(() => hostile.openSockets() === 0, 1_000)).toBe(true)
        })
      )
    )
  }

  it.live("openai: events after [DONE] are not read, even an error", () =>
    Effect.scoped(
      Effect.gen(function* () {
        const { service } = yield* against("openai", (_request, response) => {
          sse(response)
          for (const piece of openAiFrames(["ok"])) response.write(piece)
          response.write(frame({ error: { type: "server_error", message: "late" } }))
        })
        const { text } = summarize(yield* promptly(collect(service.stream(hello))))
        expect(text).toBe("ok")
      })
    )
  )

  it.live("anthropic: an error event after message_stop is not read", () =>
    Effect.scoped(
      Effect.gen(function* () {
        const { service } = yield* against("anthropic", (_request, response) => {
          sse(response)
          response.write(anthropicFrames(["ok"]).join("") + frame({ type: "error", error: { type: "overloaded_error" } }, "error"))
        })
        const { text } = summarize(yield* promptly(collect(service.stream(hello))))
        expect(text).toBe("ok")
      })
    )
  )
})

describe("a stream request answered with a whole JSON body", () => {
  for (const kind of kinds) {
    it.live(`${kind}: is read as the whole answer, the same parts as a whole call, in one request`, () =>
      Effect.scoped(
        Effect.gen(function* () {
          const { hostile, service } = yield* against(kind, (_request, response) =>
            json(response, 200, JSON.stringify(wholeAnswer(kind, "All at once.")))
          )
          const streamed = yield* promptly(collect(service.stream(hello)))
          expect(hostile.requests.length).toBe(1)
          expect(hostile.requests[0]!.stream).toBe(true)
          const whole = yield* promptly(collect(Llm.toStream(service.call(hello, "whole"))))
          expect(hostile.requests[1]!.stream).toBeUndefined()
          expect(streamed).toStrictEqual(whole)
          expect(streamed.map((e) => e._tag)).toStrictEqual(["TextDelta", "Finish"])
          expect(summarize(streamed).text).toBe("All at once.")
        })
      )
    )
  }

  const notAnswers: ReadonlyArray<readonly [string, string]> = [
    ["an object without choices or content", JSON.stringify({ id: "x", object: "thing" })],
    ["null", "null"],
    ["an array", "[1,2,3]"],
    ["a string", JSON.stringify("streaming is off")],
    ["fields of the wrong types", JSON.stringify({ choices: "many", content: 42 })],
    ["JSON cut short", '{"id":"x","choices":[{"mess']
  ]
  for (const kind of ["openai", "anthropic"] as const) {
    for (const [name, body] of notAnswers) {
      it.live(`${kind}: a JSON body that is ${name} is a non-retryable ResponseParseError after one request`, () =>
        Effect.scoped(
          Effect.gen(function* () {
            const { hostile, service } = yield* against(kind, (_request, response) => json(response, 200, body))
            const error = yield* typedFailure(promptly(collect(service.stream(hello))))
            expect(error).toMatchObject({ _tag: "ResponseParseError", retryable: false, provider: kind })
            expect(hostile.requests.length).toBe(1)
          })
        )
      )
    }
  }

  it.live("a JSON error object in answer to a stream request maps by its type, like a whole answer's", () =>
    Effect.scoped(
      Effect.gen(function* () {
        const { hostile, service } = yield* against("compatible", (_request, response) =>
          json(response, 200, JSON.stringify({ error: { type: "overloaded_error", message: "busy" } }))
        )
        const error = yield* typedFailure(promptly(collect(service.stream(hello))))
        expect(error).toMatchObject({ _tag: "OverloadedError", provider: "groq" })
        expect(hostile.requests.length).toBe(1)
      })
    )
  )
})

describe("one enormous line", () => {
  for (const kind of ["openai", "anthropic"] as const) {
    it.live(`${kind}: a 20 MiB data line sent in 16 KiB writes decodes to its text`, () =>
      Effect.scoped(
        Effect.gen(function* () {
          const big = "y".repeat(20 * 1024 * 1024)
          const { service } = yield* against(kind, (_request, response) => {
            sse(response)
            const bytes = Buffer.from(framesOf(kind, [big]).join(""))
            const write = (at: number): void => {
              if (at >= bytes.length) return void response.end()
              const more = response.write(bytes.subarray(at, at + 16 * 1024))
              if (more) setImmediate(() => write(at + 16 * 1024))
              else response.once("drain", () => write(at + 16 * 1024))
            }
            write(0)
          })
          const events = yield* promptly(collect(service.stream(hello)), "30 seconds")
          const { text } = summarize(events)
          expect(text.length).toBe(big.length)
          expect(text === big).toBe(true)
        })
      )
    )
  }
})

describe("Retry-After in every form, through a real 429, is a bounded wait or none", () => {
  const day = Duration.days(1)
  const rows: ReadonlyArray<readonly [Record<string, string>, Duration.Duration | undefined]> = [
    [{ "retry-after": "7" }, Duration.seconds(7)],
    [{ "retry-after-ms": "1500" }, Duration.millis(1500)],
    [{ "retry-after": "-5" }, undefined],
    [{ "retry-after": "soon" }, undefined],
    [{ "retry-after": "NaN" }, undefined],
    [{ "retry-after": "" }, undefined],
    [{ "retry-after-ms": "-1" }, undefined],
    [{ "retry-after": "1e300" }, day],
    [{ "retry-after": "1e308" }, day],
    [{ "retry-after-ms": "1e303" }, day],
    [{ "retry-after": "999999" }, day],
    [{ "retry-after": "Fri, 31 Dec 9999 23:59:59 GMT" }, day],
    [{ "retry-after": "1e300", "x-ratelimit-reset-requests": "1e300s", "x-ratelimit-reset-tokens": "-1ms" }, day]
  ]
  for (const kind of ["openai", "anthropic"] as const) {
    for (const [headers, expected] of rows) {
      it.live(`${kind}: ${JSON.stringify(headers)} is ${expected === undefined ? "no wait" : Duration.format(expected)}`, () =>
        Effect.scoped(
          Effect.gen(function* () {
            const { service } = yield* against(kind, (_request, response) =>
              json(response, 429, JSON.stringify({ error: { type: "rate_limit_error", message: "slow down" } }), headers)
            )
            for (const call of [service.complete(hello), Stream.runDrain(service.stream(hello))]) {
              const error = yield* typedFailure(promptly(call))
              expect(error._tag).toBe("RateLimitError")
              if (error._tag !== "RateLimitError") return
              expect(error.retryAfter).toStrictEqual(expected)
              if (error.retryAfter !== undefined) expect(() => Duration.toNanos(error.retryAfter!)).not.toThrow()
              if (headers["x-ratelimit-reset-requests"] !== undefined) {
                expect(error.headers).toMatchObject({ "x-ratelimit-reset-requests": "1e300s" })
              }
            }
          })
        )
      )
    }
  }
})

describe("absurd headers give a typed error", () => {
  it.live("an 8 KB request id and 300 rate-limit headers are kept short on the error", () =>
    Effect.scoped(
      Effect.gen(function* () {
        const headers: Http.OutgoingHttpHeaders = { "x-request-id": "r".repeat(8 * 1024) }
        for (let i = 0; i < 300; i++) headers[`x-ratelimit-h${i}`] = "1"
        const { service } = yield* against("openai", (_request, response) =>
          json(response, 429, JSON.stringify({ error: { message: "slow" } }), headers)
        )
        const error = yield* typedFailure(promptly(service.complete(hello)))
        expect(error._tag).toBe("RateLimitError")
        expect(error.requestId?.length).toBe(200)
        expect(Object.keys(error.headers ?? {}).length).toBe(32)
      })
    )
  )

  for (const kind of ["openai", "anthropic"] as const) {
    it.live(`${kind}: headers beyond the client's limit are a ConnectionError`, () =>
      Effect.scoped(
        Effect.gen(function* () {
          const { service } = yield* against(kind, (_request, response) =>
            json(response, 200, JSON.stringify(wholeAnswer(kind, "hi")), { "x-junk": "j".repeat(64 * 1024) })
          )
          const error = yield* typedFailure(promptly(service.complete(hello)))
          expect(error._tag).toBe("ConnectionError")
          const streamError = yield* typedFailure(promptly(Stream.runDrain(service.stream(hello))))
          expect(streamError._tag).toBe("ConnectionError")
        })
      )
    )
  }

  it.live("x-should-retry with garbage is ignored and the class default kept", () =>
    Effect.scoped(
      Effect.gen(function* () {
        const { service } = yield* against("openai", (_request, response) =>
          json(response, 500, "{}", { "x-should-retry": "\u00ff\u00fe maybe" })
        )
        const error = yield* typedFailure(promptly(service.complete(hello)))
        expect(error).toMatchObject({ _tag: "ServerError", retryable: true })
      })
    )
  )
})

describe("hostile bodies give a typed error with a readable message", () => {
  const errorBodies: ReadonlyArray<readonly [string, string, string]> = [
    ["plain text", "text/plain", "upstream went away\r\nat line 2"],
    ["binary bytes", "application/octet-stream", "\u0000\u0001\u0002\u00ff"],
    ["a megabyte of unclosed markup", "text/html", "<title".repeat(100_000) + "<a".repeat(200_000)],
    ["JSON null", "application/json", "null"],
    ["a JSON array", "application/json", '[{"error":{"message":"in an array"}}]'],
    ["a JSON number", "application/json", "42"],
    ["JSON fields of the wrong types", "application/json", '{"error":{"message":42,"type":["x"],"code":{"a":1}}}'],
    ["an error that is a string", "application/json", '{"error":"exploded"}'],
    ["JSON cut short", "application/json", '{"error":{"mess']
  ]
  for (const kind of ["openai", "anthropic"] as const) {
    for (const status of [400, 500]) {
      for (const [name, type, body] of errorBodies) {
        it.live(`${kind}: a ${status} whose body is ${name}`, () =>
          Effect.scoped(
            Effect.gen(function* () {
              const { service } = yield* against(kind, (_request, response) => {
                response.writeHead(status, { "content-type": type })
                response.end(body)
              })
              for (const call of [service.complete(hello), Stream.runDrain(service.stream(hello))]) {
                const error = yield* typedFailure(promptly(call))
                expect(error._tag).toBe(status === 400 ? "InvalidRequestError" : "ServerError")
                expect(error.message.startsWith(`${kind} answered ${status}`)).toBe(true)
              }
            })
          )
        )
      }
    }
  }

  const wholeBodies: ReadonlyArray<readonly [string, string]> = [
    ["null", "null"],
    ["an array", "[]"],
    ["choices of the wrong type", '{"choices":"x","content":"y"}'],
    ["a message whose content is a number", '{"choices":[{"message":{"content":42}}],"content":[{"type":"text","text":7}],"type":"message"}'],
    ["JSON cut short", '{"choices":[{"mess']
  ]
  for (const kind of ["openai", "anthropic"] as const) {
    for (const [name, body] of wholeBodies) {
      it.live(`${kind}: a 200 whole answer that is ${name} is a ResponseParseError or an answer, never a defect`, () =>
        Effect.scoped(
          Effect.gen(function* () {
            const { service } = yield* against(kind, (_request, response) => json(response, 200, body))
            const exit = yield* Effect.exit(promptly(service.complete(hello)))
            if (Exit.isSuccess(exit)) expect(typeof exit.value.content).toBe("string")
            else expect(typedError(exit)._tag).toBe("ResponseParseError")
          })
        )
      )
    }
  }

  const streamBodies: ReadonlyArray<readonly [string, Provider, string]> = [
    ["data that is null, an array and a number, then no finish", "openai", "data: null\n\ndata: []\n\ndata: 42\n\n"],
    ["an error chunk whose error is an array", "openai", 'data: {"error":[1,2]}\n\n'],
    ["data that is not JSON", "openai", "data: {nope\n\n"],
    ["an error event whose data is null", "anthropic", "event: error\ndata: null\n\n"],
    ["an error event whose data is not JSON", "anthropic", "event: error\ndata: <html>down</html>\n\n"],
    ["events of the wrong shapes, then no message_stop", "anthropic", 'event: message_start\ndata: {"message":[]}\n\nevent: content_block_delta\ndata: {"type":"content_block_delta","delta":{"type":"text_delta","text":5}}\n\n']
  ]
  for (const [name, kind, body] of streamBodies) {
    it.live(`${kind}: a stream of ${name} fails typed`, () =>
      Effect.scoped(
        Effect.gen(function* () {
          const { service } = yield* against(kind, (_request, response) => {
            sse(response)
            response.end(body)
          })
          const error = yield* typedFailure(promptly(collect(service.stream(hello))))
          expect(["ConnectionError", "ResponseParseError", "ServerError"]).toContain(error._tag)
        })
      )
    )
  }

  it.live("text delivered before an in-stream error is counted on the error", () =>
    Effect.scoped(
      Effect.gen(function* () {
        const { service } = yield* against("anthropic", (_request, response) => {
          sse(response)
          response.end(anthropicFrames(["four"]).slice(0, 3).join("") + frame({ type: "error", error: { type: "api_error", message: 7 } }, "error"))
        })
        const seen: Array<LlmRequest.LlmStreamEvent> = []
        const error = yield* typedFailure(
          promptly(Stream.runForEach(service.stream(hello), (event) => Effect.sync(() => seen.push(event))))
        )
        expect(seen).toStrictEqual([{ _tag: "TextDelta", text: "four" }])
        expect(error).toMatchObject({ _tag: "ServerError", textEmitted: 4 })
      })
    )
  )
})
