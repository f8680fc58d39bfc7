/**
 * The whole `LlmLive` stack, configured from the environment with its defaults, against small
 * servers written here that misbehave the way real upstreams do: failing a share of requests,
 * answering a 429 with an absurd Retry-After, going down, or answering while thousands of callers
 * queue for ten slots. Every call is real HTTP on loopback through the official SDK.
 */
import { RateLimiter } from "@effect/experimental"
import { describe, expect, it } from "@effect/vitest"
import { ConfigProvider, Duration, Effect, Exit, Fiber, Logger, LogLevel, TestClock } from "effect"
import * as Http from "node:http"
import type * as Net from "node:net"
import type * as Llm from "../../src/Llm.js"
import * as LlmLive from "../../src/LlmLive.js"
import type * as LlmRequest from "../../src/LlmRequest.js"

type Answer = { readonly status: number; readonly headers?: Record<string, string>; readonly delayMs?: number }

interface Upstream {
  readonly url: string
  /** Requests received so far. */
  readonly received: () => number
  /** The most requests that were being answered at once. */
  readonly peakInFlight: () => number
}

const completion = JSON.stringify({
  id: "chatcmpl-1",
  object: "chat.completion",
  created: 1,
  model: "gpt-4o-mini",
  choices: [{ index: 0, message: { role: "assistant", content: "fine" }, finish_reason: "stop" }],
  usage: { prompt_tokens: 3, completion_tokens: 1, total_tokens: 4 }
})
const failure = (status: number) => JSON.stringify({ error: { message: `upstream ${status}`, type: "server_error" } })

/** An OpenAI-shaped server whose `n`-th request (from 1) gets `answer(n, body)`; closed with the scope. */
const upstream = (answer: (n: number, body: string) => Answer) =>
  Effect.acquireRelease(
    Effect.async<{ readonly upstream: Upstream; readonly server: Http.Server }>((resume) => {
      let received = 0
      let inFlight = 0
      let peak = 0
      const server = Http.createServer((request, response) => {
        let body = ""
        request.setEncoding("utf8")
        request.on("data", (data: string) => (body += data))
        request.on("end", () => {
          const { delayMs = 0, headers = {}, status } = answer(++received, body)
          peak = Math.max(peak, ++inFlight)
          setTimeout(() => {
            inFlight--
            response.writeHead(status, { "content-type": "application/json", ...headers })
            response.end(status === 200 ? completion : failure(status))
          }, delayMs)
        })
      })
      server.keepAliveTimeout = 60_000
      server.listen(0, "127.0.0.1", () => {
        const { port } = server.address() as Net.AddressInfo
        resume(
          Effect.succeed({
            server,
            upstream: { url: `http://127.0.0.1:${port}/v1`, received: () => received, peakInFlight: () => peak }
          })
        )
      })
    }),
    ({ server }) => Effect.async<void>((resume) => {
      server.closeAllConnections()
      server.close(() => resume(Effect.void))
    })
  ).pipe(Effect.map(({ upstream }) => upstream))

/** `LlmLive.make` with only these variables set, the OpenAI provider pointed at `url`. */
const live = (url: string, env: Record<string, string> = {}): Effect.Effect<Llm.Service, unknown> =>
  LlmLive.make.pipe(
    Effect.provide(RateLimiter.layerStoreMemory),
    Effect.withConfigProvider(
      ConfigProvider.fromMap(new Map(Object.entries({ OPENAI_API_KEY: "sk-test-stack-0000", OPENAI_BASE_URL: url, ...env })))
    )
  )

/** The retry and circuit warnings are the stack working as it should; they are not shown here. */
const quiet = Logger.withMinimumLogLevel(LogLevel.None)

const ask: LlmRequest.LlmRequest = { messages: [{ role: "user", content: "hello" }] }

describe("the default circuit breaker keeps a provider that answers most calls", () => {
  it.scopedLive("15% of requests failing, 30 callers, 300 calls: every call answered, none refused by the circuit", () =>
    Effect.gen(function* () {
      // Every seventh request fails: about 14%, spread evenly, as a flaky provider does. A call
      // fails at most once, so that its retry answers: with independent failures, 4 in a row for
      // one of 300 calls would happen in about one run in eight, and that is not what is tested.
      const failedOnce = new Set<string>()
      const server = yield* upstream((n, body) => {
        const fails = n % 7 === 0 && !failedOnce.has(body)
        if (fails) failedOnce.add(body)
        return { status: fails ? 500 : 200, delayMs: 2 }
      })
      const llm = yield* live(server.url, { LLM_RETRY_BASE_DELAY_MS: "1", LLM_RETRY_MAX_DELAY_MS: "5" })
      const exits = yield* Effect.forEach(
        Array.from({ length: 300 }, (_, i): LlmRequest.LlmRequest => ({ messages: [{ role: "user", content: `hello ${i}` }] })),
        (request) => Effect.exit(llm.complete(request)),
        { concurrency: 30 }
      )
      expect(exits.filter(Exit.isFailure)).toEqual([])
      expect(server.received()).toBeGreaterThan(300)
    }).pipe(quiet))

  it.scopedLive("a provider that is down: the circuit opens and later calls fail fast without reaching it", () =>
    Effect.gen(function* () {
      const server = yield* upstream(() => ({ status: 503 }))
      const llm = yield* live(server.url, { LLM_MAX_RETRIES: "0" })
      const first = yield* Effect.forEach(Array.from({ length: 40 }), () => Effect.flip(llm.complete(ask)), { concurrency: 10 })
      const reached = server.received()
      const later = yield* Effect.forEach(Array.from({ length: 20 }), () => Effect.flip(llm.complete(ask)))
      expect(first.filter((error) => error._tag === "ServerError").length).toBeGreaterThanOrEqual(20)
      expect(later.every((error) => error._tag === "CircuitOpenError" && error.local)).toBe(true)
      expect(server.received()).toBe(reached)
    }).pipe(quiet))
})

describe("a provider's absurd Retry-After does not take it down", () => {
  const absurd: ReadonlyArray<Record<string, string>> = [
    { "retry-after": "999999" },
    { "retry-after": "1e308" },
    { "retry-after": "1e300" },
    { "retry-after-ms": "1e303" },
    { "retry-after": "Fri, 31 Dec 9999 23:59:59 GMT" }
  ]
  for (const headers of absurd) {
    it.scoped(`${JSON.stringify(headers)}: the call fails with a RateLimitError, and the provider is asked again within LLM_RETRY_MAX_RETRY_AFTER_MS`, () =>
      Effect.gen(function* () {
        const server = yield* upstream((n) => (n === 1 ? { status: 429, headers } : { status: 200 }))
        const llm = yield* live(server.url)
        const error = yield* Effect.flip(llm.complete(ask))
        expect(error._tag).toBe("RateLimitError")
        expect(error.local).toBe(false)
        // The provider is paused for every caller, but for the 60 s default cap, not for days.
        const paused = yield* Effect.flip(llm.complete(ask))
        expect(paused).toMatchObject({ _tag: "RateLimitError", local: true })
        yield* TestClock.adjust(Duration.seconds(60))
        const answer = yield* llm.complete(ask)
        expect(answer.content).toBe("fine")
        expect(server.received()).toBe(2)
      }).pipe(quiet))
  }
})

describe("LLM_RETRY_MAX_RETRY_AFTER_MS caps the pause", () => {
  it.scoped("with 5000, a provider's 429 asking for a day pauses it for 5 s", () =>
    Effect.gen(function* () {
      const server = yield* upstream((n) => (n === 1 ? { status: 429, headers: { "retry-after": "86400" } } : { status: 200 }))
      const llm = yield* live(server.url, { LLM_RETRY_MAX_RETRY_AFTER_MS: "5000" })
      yield* Effect.flip(llm.complete(ask))
      // Within the caller's 30 s maxWait, the next call waits out the pause, which is 5 s, not a day.
      const next = yield* Effect.fork(llm.complete(ask))
      yield* TestClock.adjust(Duration.millis(4999))
      expect(server.received()).toBe(1)
      yield* TestClock.adjust(Duration.millis(1))
      expect((yield* Fiber.join(next)).content).toBe("fine")
    }).pipe(quiet))
})

describe("the in-flight limit under load", () => {
  it.scopedLive("3,000 callers through LLM_MAX_CONCURRENCY=10: all answered, never more than 10 at the provider", () =>
    Effect.gen(function* () {
      const server = yield* upstream(() => ({ status: 200, delayMs: 1 }))
      const llm = yield* live(server.url, { LLM_MAX_CONCURRENCY: "10", LLM_RATE_LIMIT_MAX_WAIT_MS: "600000" })
      const answers = yield* Effect.forEach(Array.from({ length: 3000 }), () => llm.complete(ask), { concurrency: "unbounded" })
      expect(answers.length).toBe(3000)
      expect(server.received()).toBe(3000)
      expect(server.peakInFlight()).toBeLessThanOrEqual(10)
    }), 60_000)
})

describe("garbage configuration stops the stack before any call", () => {
  const garbage: ReadonlyArray<readonly [string, string]> = [
    ["LLM_RETRY_BASE_DELAY_MS", "-5"],
    ["LLM_RETRY_MAX_DELAY_MS", "1e308"],
    ["LLM_CIRCUIT_COOLDOWN_MS", "1e308"],
    ["LLM_MAX_CONCURRENCY", "abc"],
    ["LLM_LOG_LEVEL", "constructor"]
  ]
  for (const [name, value] of garbage) {
    it.effect(`${name}=${value} is a ConfigError naming ${name} and the value`, () =>
      Effect.gen(function* () {
        const error = yield* Effect.flip(live("http://127.0.0.1:9/v1", { [name]: value }))
        expect(String(error)).toContain(name)
        expect(String(error)).toContain(value)
      }))
  }
})
