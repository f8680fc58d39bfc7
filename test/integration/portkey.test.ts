/**
 * The library behind Portkey's open-source AI gateway, a real third-party server nobody here wrote,
 * in front of the simulator as its upstream. The library is configured from the environment alone
 * and reaches the gateway through `OPENAI_COMPATIBLE_HEADERS`: the gateway's routing headers and the
 * upstream's key travel as custom headers.
 */
import { RateLimiter } from "@effect/experimental"
import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import { ConfigProvider, Duration, Effect, Fiber, Logger, LogLevel, TestClock } from "effect"
import type * as Llm from "../../src/Llm.js"
import * as LlmLive from "../../src/LlmLive.js"
import * as Simulator from "../../simulator/Simulator.js"
import { type Portkey, startPortkey } from "../portkey.js"
import { collect, eventually, exposed, failure, hello, summarize } from "./support.js"

const upstreamKey = "sk-test-UPSTREAM-via-gateway-5d4c3b2a"

let gateway: Portkey
beforeAll(async () => {
  gateway = await startPortkey()
}, 40_000)
afterAll(() => gateway?.stop())

/** `LlmLive.make` with only the compatible endpoint set: the gateway, and these headers. */
const live = (headers: Record<string, string>, env: Record<string, string> = {}): Effect.Effect<Llm.Service, unknown> =>
  LlmLive.make.pipe(
    Effect.provide(RateLimiter.layerStoreMemory),
    Effect.withConfigProvider(
      ConfigProvider.fromMap(
        new Map(
          Object.entries({
            OPENAI_COMPATIBLE_NAME: "portkey",
            OPENAI_COMPATIBLE_BASE_URL: gateway.url,
            OPENAI_COMPATIBLE_MODEL: "gpt-4o-mini",
            OPENAI_COMPATIBLE_HEADERS: JSON.stringify(headers),
            ...env
          })
        )
      )
    )
  )

/** The gateway's headers that send a request on to the simulator, as OpenAI would be reached. */
const through = (sim: Simulator.Simulator) => ({
  "x-portkey-provider": "openai",
  "x-portkey-custom-host": `${sim.url}/v1`,
  authorization: `Bearer ${upstreamKey}`
})

const quiet = Logger.withMinimumLogLevel(LogLevel.None)

describe("through Portkey's gateway, configured by OPENAI_COMPATIBLE_HEADERS alone", () => {
  it.scopedLive("a whole answer comes back from the upstream, which got the key from the custom header", () =>
    Effect.gen(function* () {
      const sim = yield* Simulator.make()
      const llm = yield* live(through(sim))
      const response = yield* llm.complete(hello)
      expect(response).toMatchObject({ provider: "portkey", finishReason: "stop" })
      expect(response.content.length).toBeGreaterThan(0)
      expect(sim.requests().at(-1)).toMatchObject({ route: "openai", headers: { authorization: "<redacted>" } })
    }))

  it.scopedLive("a stream comes back as its text and one Finish with usage", () =>
    Effect.gen(function* () {
      const sim = yield* Simulator.make()
      sim.enqueue("openai", { text: "streamed through the gateway", usage: { inputTokens: 7, outputTokens: 4 } })
      const llm = yield* live(through(sim))
      const { finish, text } = summarize(yield* collect(llm.stream(hello)))
      expect(text).toBe("streamed through the gateway")
      expect(finish).toMatchObject({ provider: "portkey", finishReason: "stop", usage: { inputTokens: 7, outputTokens: 4 } })
    }))

  it.scoped("a 429 is retried after its retry-after, not before", () =>
    Effect.gen(function* () {
      const sim = yield* Simulator.make()
      sim.enqueue("openai", { status: 429, headers: { "retry-after": "2" } })
      const llm = yield* live(through(sim), { LLM_RETRY_BASE_DELAY_MS: "0" })
      const call = yield* Effect.fork(llm.complete(hello))
      expect(yield* eventually(() => sim.attempts("openai") === 1, 5_000)).toBe(true)
      yield* TestClock.adjust(Duration.millis(1999))
      // Real time for a premature retry to reach the upstream, had there been one.
      yield* Effect.promise(() => new Promise((resolve) => setTimeout(resolve, 100)))
      expect(sim.attempts("openai")).toBe(1)
      yield* TestClock.adjust(Duration.millis(1))
      const response = yield* Fiber.join(call)
      expect(response.provider).toBe("portkey")
      expect(sim.attempts("openai")).toBe(2)
    }).pipe(quiet))

  it.scopedLive("without its routing headers the gateway's own 400 comes back with its message", () =>
    Effect.gen(function* () {
      const llm = yield* live({ authorization: `Bearer ${upstreamKey}` })
      const error = yield* failure(llm.complete(hello))
      expect(error).toMatchObject({ _tag: "InvalidRequestError", status: 400, provider: "portkey", retryable: false })
      expect(error.message).toBe(
        "portkey answered 400: Either x-portkey-config or x-portkey-provider header is required"
      )
      expect(exposed(error)).not.toContain(upstreamKey)
    }).pipe(quiet))

  it.scopedLive("an upstream error that repeats a custom header's value does not show it", () =>
    Effect.gen(function* () {
      const sim = yield* Simulator.make()
      const token = "gw-token-SECRET-0a9b8c7d6e"
      sim.enqueue("openai", { status: 400, body: { error: { message: `unknown token ${token}`, type: "invalid_request_error" } } })
      const llm = yield* live({ ...through(sim), "x-gateway-token": token })
      const error = yield* failure(llm.complete(hello))
      expect(error).toMatchObject({ _tag: "InvalidRequestError", status: 400 })
      expect(error.message).toContain("unknown token [redacted]")
      expect(exposed(error)).not.toContain(token)
    }).pipe(quiet))
})
