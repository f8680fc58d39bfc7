import { RateLimiter } from "@effect/experimental"
import { describe, expect, it } from "@effect/vitest"
import { Cause, Chunk, Clock, ConfigProvider, Duration, Effect, Exit, Fiber, Layer, Option, Stream, TestClock } from "effect"
import * as Llm from "../src/Llm.js"
import { type LlmError, RateLimitError } from "../src/LlmError.js"
import * as LlmMock from "../src/LlmMock.js"
import type { Usage } from "../src/LlmRequest.js"
import * as RateLimit from "../src/RateLimit.js"
import * as RateLimitStore from "../src/RateLimitStore.js"
import * as Retry from "../src/Retry.js"

const request = (provider = "openai", extra: { maxTokens?: number; content?: string } = {}) => ({
  provider,
  messages: [{ role: "user" as const, content: extra.content ?? "hello" }],
  ...(extra.maxTokens === undefined ? {} : { maxTokens: extra.maxTokens })
})

/**
 * A provider that records when each call started and how many ran at once. `answer(n)` decides
 * call n (0-based): an error, or the usage to report.
 */
const fakeProvider = (
  options: { latency?: Duration.DurationInput; answer?: (n: number) => LlmError | Usage | undefined } = {}
) => {
  const starts: Array<number> = []
  let inFlight = 0
  let maxInFlight = 0
  const begin = Effect.flatMap(Clock.currentTimeMillis, (now) =>
    Effect.sync(() => {
      starts.push(now)
      inFlight++
      if (inFlight > maxInFlight) maxInFlight = inFlight
      return starts.length - 1
    })
  )
  const end = Effect.sync(() => {
    inFlight--
  })
  const outcome = (n: number) => options.answer?.(n) ?? { inputTokens: 3, outputTokens: 2, totalTokens: 5 }
  const latency = options.latency === undefined ? Effect.void : Effect.sleep(options.latency)
  const service: Llm.Service = {
    complete: (r) =>
      Effect.flatMap(begin, (n) => {
        const result = outcome(n)
        return Effect.ensuring(
          Effect.zipRight(
            latency,
            "_tag" in result
              ? Effect.fail(result)
              : Effect.succeed({ id: `r${n}`, provider: r.provider ?? "fake", model: "m", content: "ok", finishReason: "stop" as const, usage: result })
          ),
          end
        )
      }),
    stream: (r) =>
      Stream.unwrap(
        Effect.map(begin, (n) => {
          const result = outcome(n)
          if ("_tag" in result) return Stream.ensuring(Stream.fail(result), end)
          return Stream.make(
            { _tag: "TextDelta" as const, text: "ok" },
            { _tag: "Finish" as const, id: `r${n}`, provider: r.provider ?? "fake", model: "m", finishReason: "stop" as const, usage: result }
          ).pipe(Stream.tap(() => latency), Stream.ensuring(end))
        })
      )
  }
  return { service, starts, maxInFlight: () => maxInFlight }
}

const limited = (options: RateLimit.Options, service: Llm.Service) =>
  Effect.map(RateLimit.make(options), (limit) => limit(service))

/** The experimental memory store, and the library's own, whose buckets the limiter reads at once. */
const stores = [
  ["RateLimiter.layerStoreMemory", RateLimiter.layerStoreMemory],
  ["RateLimitStore.layerMemory", RateLimitStore.layerMemory]
] as const


describe.each(stores)("on %s", (_name, store) => {
  describe("RateLimit: requests per minute", () => {
    it.effect("spaces requests as the limit says: a full bucket at once, then one per 60/rpm seconds", () =>
      Effect.gen(function* () {
        const fake = fakeProvider()
        const llm = yield* limited({ rpm: 6 }, fake.service)
        const fiber = yield* Effect.fork(Effect.all(Array.from({ length: 9 }, () => llm.complete(request())), { concurrency: "unbounded" }))
        yield* TestClock.adjust(Duration.minutes(1))
        yield* Fiber.join(fiber)
        expect(fake.starts).toEqual([0, 0, 0, 0, 0, 0, 10_000, 20_000, 30_000])
      }).pipe(Effect.provide(store))
    )

    it.effect("with burst: 1 spaces every request evenly from the first, at the same rate", () =>
      Effect.gen(function* () {
        const fake = fakeProvider()
        const llm = yield* limited({ rpm: 6, burst: 1, maxWait: Duration.minutes(2) }, fake.service)
        const fiber = yield* Effect.fork(Effect.all(Array.from({ length: 4 }, () => llm.complete(request())), { concurrency: "unbounded" }))
        yield* TestClock.adjust(Duration.minutes(1))
        yield* Fiber.join(fiber)
        expect(fake.starts).toEqual([0, 10_000, 20_000, 30_000])
      }).pipe(Effect.provide(store))
    )

    it.effect("tells onWait how long each waiting call waits, and nothing for calls that go at once", () =>
      Effect.gen(function* () {
        const fake = fakeProvider()
        const waits: Array<readonly [string, number]> = []
        const llm = yield* limited(
          { rpm: 2, maxWait: Duration.minutes(2), onWait: (info) => Effect.sync(() => void waits.push([info.provider, Duration.toMillis(info.delay)])) },
          fake.service
        )
        const fiber = yield* Effect.fork(Effect.all(Array.from({ length: 4 }, () => llm.complete(request())), { concurrency: "unbounded" }))
        yield* TestClock.adjust(Duration.minutes(1))
        yield* Fiber.join(fiber)
        expect(waits).toEqual([
          ["openai", 30_000],
          ["openai", 60_000]
        ])
      }).pipe(Effect.provide(store))
    )

    it.effect("fails at once with a local RateLimitError when the wait would exceed maxWait, and gives the slot back", () =>
      Effect.gen(function* () {
        const fake = fakeProvider()
        const llm = yield* limited({ rpm: 2, maxWait: Duration.seconds(40) }, fake.service)
        yield* llm.complete(request())
        yield* llm.complete(request())
        // The third would start at 30 s (fits), the fourth at 60 s (does not).
        const third = yield* Effect.fork(llm.complete(request()))
        const fourth = yield* Effect.fork(llm.complete(request()))
        const rejected = yield* Fiber.await(fourth)
        expect(rejected).toMatchObject({ cause: { error: { _tag: "RateLimitError", retryable: true } } })
        const error = Exit.isFailure(rejected) ? Option.getOrThrow(Cause.failureOption(rejected.cause)) : undefined
        expect(error?._tag === "RateLimitError" && Duration.toMillis(error.retryAfter!)).toBe(60_000)
        expect(error?.message).toMatch(/Local rate limit for openai/)
        // The rejected call's reservation was returned: at 30 s the next caller gets the 60 s slot
        // (30 s away, within maxWait); had it been kept, the next slot would be 60 s away and rejected.
        yield* TestClock.adjust(Duration.seconds(30))
        yield* Fiber.join(third)
        const fifth = yield* Effect.fork(llm.complete(request()))
        yield* TestClock.adjust(Duration.seconds(30))
        yield* Fiber.join(fifth)
        expect(fake.starts).toEqual([0, 0, 30_000, 60_000])
      }).pipe(Effect.provide(store))
    )

    it.effect("keeps separate limits per provider and applies per-provider overrides", () =>
      Effect.gen(function* () {
        const fake = fakeProvider()
        const llm = yield* limited({ rpm: 1, maxWait: Duration.minutes(2), providers: { anthropic: { rpm: 3 } } }, fake.service)
        const fiber = yield* Effect.fork(
          Effect.all(
            [
              llm.complete(request("openai")),
              llm.complete(request("openai")),
              llm.complete(request("anthropic")),
              llm.complete(request("anthropic")),
              llm.complete(request("anthropic"))
            ],
            { concurrency: "unbounded" }
          )
        )
        yield* TestClock.adjust(Duration.minutes(2))
        yield* Fiber.join(fiber)
        expect([...fake.starts].sort((a, b) => a - b)).toEqual([0, 0, 0, 0, 60_000])
      }).pipe(Effect.provide(store))
    )

    it.effect("does not let Retry retry a local rejection (the wait was already spent)", () =>
      Effect.gen(function* () {
        const fake = fakeProvider()
        const llm = Retry.make()(yield* limited({ rpm: 1, maxWait: Duration.seconds(1) }, fake.service))
        yield* llm.complete(request())
        const exit = yield* Effect.exit(llm.complete(request()))
        expect(exit).toMatchObject({ cause: { error: { _tag: "RateLimitError" } } })
        expect(fake.starts).toEqual([0])
      }).pipe(Effect.provide(store))
    )
  })

  describe("RateLimit: tokens per minute", () => {
    // "hello" + maxTokens 500: ceil(5 / 4) + 4 + 3 + 500 = 509 tokens charged before the call.
    const estimate = 509

    it.effect("charges the estimate before the call and refunds the difference to the real usage", () =>
      Effect.gen(function* () {
        const fake = fakeProvider({ answer: () => ({ inputTokens: 60, outputTokens: 40, totalTokens: 100 }) })
        const llm = yield* limited({ tpm: 1000 }, fake.service)
        // Levels before each call: 1000, 900, 800, 700, 600 (each settles to 100 used), then 500 < 509.
        for (let i = 0; i < 5; i++) yield* llm.complete(request("openai", { maxTokens: 500 }))
        const sixth = yield* Effect.fork(llm.complete(request("openai", { maxTokens: 500 })))
        yield* TestClock.adjust(Duration.seconds(10))
        yield* Fiber.join(sixth)
        // 9 tokens short at 60 ms a token (1000 a minute).
        expect(fake.starts).toEqual([0, 0, 0, 0, 0, (estimate - 500) * 60])
      }).pipe(Effect.provide(store))
    )

    it.effect("charges the extra when the real usage is above the estimate", () =>
      Effect.gen(function* () {
        const fake = fakeProvider({ answer: () => ({ inputTokens: 100, outputTokens: 800, totalTokens: 900 }) })
        const llm = yield* limited({ tpm: 1000 }, fake.service)
        yield* llm.complete(request("openai", { maxTokens: 500 }))
        const second = yield* Effect.fork(llm.complete(request("openai", { maxTokens: 500 })))
        yield* TestClock.adjust(Duration.minutes(1))
        yield* Fiber.join(second)
        // 100 left after settling 900; the second needs 509: 409 tokens at 60 ms.
        expect(fake.starts).toEqual([0, 409 * 60])
      }).pipe(Effect.provide(store))
    )

    it.effect("settles a stream against the usage of its Finish event", () =>
      Effect.gen(function* () {
        const fake = fakeProvider({ answer: () => ({ inputTokens: 60, outputTokens: 40, totalTokens: 100 }) })
        const llm = yield* limited({ tpm: 1000 }, fake.service)
        for (let i = 0; i < 5; i++) yield* Stream.runDrain(llm.stream(request("openai", { maxTokens: 500 })))
        const sixth = yield* Effect.fork(Stream.runDrain(llm.stream(request("openai", { maxTokens: 500 }))))
        yield* TestClock.adjust(Duration.seconds(10))
        yield* Fiber.join(sixth)
        expect(fake.starts).toEqual([0, 0, 0, 0, 0, 540])
      }).pipe(Effect.provide(store))
    )

    it.effect("fails a request larger than the whole budget at once, without calling the provider", () =>
      Effect.gen(function* () {
        const fake = fakeProvider()
        const llm = yield* limited({ tpm: 400 }, fake.service)
        const exit = yield* Effect.exit(llm.complete(request("openai", { maxTokens: 500 })))
        expect(exit).toMatchObject({ cause: { error: { _tag: "RateLimitError", retryable: false } } })
        const streamed = yield* Effect.exit(Stream.runDrain(llm.stream(request("openai", { maxTokens: 500 }))))
        expect(streamed).toMatchObject({ cause: { error: { _tag: "RateLimitError", retryable: false } } })
        expect(fake.starts).toEqual([])
      }).pipe(Effect.provide(store))
    )

    it.effect("charges a default output budget when the request sets no maxTokens", () =>
      Effect.gen(function* () {
        const fake = fakeProvider()
        const llm = yield* limited({ tpm: 1000, defaultOutputTokens: 2000 }, fake.service)
        const exit = yield* Effect.exit(llm.complete(request()))
        expect(exit).toMatchObject({ cause: { error: { _tag: "RateLimitError", retryable: false } } })
      }).pipe(Effect.provide(store))
    )
  })

  describe("RateLimit: calls in flight", () => {
    it.effect("never runs more than maxConcurrency calls at once, even under 200 concurrent callers", () =>
      Effect.gen(function* () {
        const fake = fakeProvider({ latency: Duration.seconds(1) })
        const llm = yield* limited({ maxConcurrency: 5, maxWait: Duration.minutes(2) }, fake.service)
        const fiber = yield* Effect.fork(
          Effect.all(Array.from({ length: 200 }, () => llm.complete(request())), { concurrency: "unbounded" })
        )
        yield* TestClock.adjust(Duration.minutes(1))
        const responses = yield* Fiber.join(fiber)
        expect(responses).toHaveLength(200)
        expect(fake.maxInFlight()).toBe(5)
        expect(fake.starts.at(-1)).toBe(39_000)
      }).pipe(Effect.provide(store))
    )

    it.effect("holds a slot until the stream ends", () =>
      Effect.gen(function* () {
        const fake = fakeProvider({ latency: Duration.seconds(1) })
        const llm = yield* limited({ maxConcurrency: 2 }, fake.service)
        const fiber = yield* Effect.fork(
          Effect.all(Array.from({ length: 6 }, () => Stream.runDrain(llm.stream(request()))), { concurrency: "unbounded" })
        )
        yield* TestClock.adjust(Duration.seconds(30))
        yield* Fiber.join(fiber)
        expect(fake.maxInFlight()).toBe(2)
        expect([...fake.starts].sort((a, b) => a - b)).toEqual([0, 0, 2000, 2000, 4000, 4000])
      }).pipe(Effect.provide(store))
    )

    it.effect("fails with a local RateLimitError when no slot frees within maxWait", () =>
      Effect.gen(function* () {
        const fake = fakeProvider({ latency: Duration.seconds(10) })
        const llm = yield* limited({ maxConcurrency: 1, maxWait: Duration.seconds(3) }, fake.service)
        const first = yield* Effect.fork(llm.complete(request()))
        const second = yield* Effect.fork(llm.complete(request()))
        yield* TestClock.adjust(Duration.seconds(3))
        const exit = yield* Fiber.await(second)
        expect(exit).toMatchObject({ cause: { error: { _tag: "RateLimitError" } } })
        expect(Exit.isFailure(exit) && String(Option.getOrThrow(Cause.failureOption(exit.cause)).message)).toMatch(/concurrency/)
        yield* TestClock.adjust(Duration.seconds(7))
        yield* Fiber.join(first)
        // The slot is free again.
        const third = yield* Effect.fork(llm.complete(request()))
        yield* TestClock.adjust(Duration.seconds(10))
        yield* Fiber.join(third)
        expect(fake.starts).toEqual([0, 10_000])
      }).pipe(Effect.provide(store))
    )

    it.effect("releases the slot of an interrupted caller", () =>
      Effect.gen(function* () {
        const fake = fakeProvider({ latency: Duration.seconds(10) })
        const llm = yield* limited({ maxConcurrency: 1 }, fake.service)
        const first = yield* Effect.fork(llm.complete(request()))
        yield* TestClock.adjust(Duration.seconds(1))
        yield* Fiber.interrupt(first)
        const second = yield* Effect.fork(llm.complete(request()))
        yield* TestClock.adjust(Duration.seconds(10))
        yield* Fiber.join(second)
        expect(fake.starts).toEqual([0, 1000])
      }).pipe(Effect.provide(store))
    )
    it.effect("releases the slot of an interrupted stream", () =>
      Effect.gen(function* () {
        const fake = fakeProvider({ latency: Duration.seconds(10) })
        const llm = yield* limited({ maxConcurrency: 1 }, fake.service)
        const first = yield* Effect.fork(Stream.runDrain(llm.stream(request())))
        yield* TestClock.adjust(Duration.seconds(1))
        yield* Fiber.interrupt(first)
        const second = yield* Effect.fork(llm.complete(request()))
        yield* TestClock.adjust(Duration.seconds(10))
        yield* Fiber.join(second)
        expect(fake.starts).toEqual([0, 1000])
      }).pipe(Effect.provide(store))
    )
  })

  describe("RateLimit: a provider's 429", () => {
    it.effect("pauses every caller of that provider until retryAfter has passed", () =>
      Effect.gen(function* () {
        const limited429 = new RateLimitError({ provider: "openai", message: "Too many requests", retryAfter: Duration.seconds(5) })
        const fake = fakeProvider({ answer: (n) => (n === 0 ? limited429 : undefined) })
        const llm = yield* limited({}, fake.service)
        const first = yield* Effect.exit(llm.complete(request()))
        expect(first).toMatchObject({ cause: { error: { _tag: "RateLimitError" } } })
        const others = yield* Effect.fork(
          Effect.all(Array.from({ length: 10 }, () => llm.complete(request())), { concurrency: "unbounded" })
        )
        const other = yield* Effect.fork(llm.complete(request("anthropic")))
        yield* TestClock.adjust(Duration.millis(4999))
        // Only the first call and the other provider's call have reached a provider.
        expect(fake.starts).toEqual([0, 0])
        yield* TestClock.adjust(Duration.millis(1))
        yield* Fiber.join(others)
        yield* Fiber.join(other)
        expect(fake.starts.slice(2)).toEqual(Array.from({ length: 10 }, () => 5000))
      }).pipe(Effect.provide(store))
    )

    it.effect("pauses the provider on a stream's 429 before the caller sees the error", () =>
      Effect.gen(function* () {
        const limited429 = new RateLimitError({ provider: "openai", message: "Too many requests", retryAfter: Duration.seconds(5) })
        const fake = fakeProvider({ answer: (n) => (n === 0 ? limited429 : undefined) })
        const llm = yield* limited({}, fake.service)
        // The caller calls again as soon as the stream fails: that call waits for the pause.
        const fiber = yield* Effect.fork(
          Stream.runDrain(llm.stream(request())).pipe(Effect.catchAll(() => llm.complete(request())))
        )
        yield* TestClock.adjust(Duration.millis(4999))
        expect(fake.starts).toEqual([0])
        yield* TestClock.adjust(Duration.millis(1))
        yield* Fiber.join(fiber)
        expect(fake.starts).toEqual([0, 5000])
      }).pipe(Effect.provide(store))
    )

    it.effect("fails at once when the pause is longer than maxWait", () =>
      Effect.gen(function* () {
        const limited429 = new RateLimitError({ provider: "openai", message: "Too many requests", retryAfter: Duration.minutes(2) })
        const fake = fakeProvider({ answer: (n) => (n === 0 ? limited429 : undefined) })
        const llm = yield* limited({ maxWait: Duration.seconds(30) }, fake.service)
        yield* Effect.exit(llm.complete(request()))
        const exit = yield* Effect.exit(Stream.runDrain(llm.stream(request())))
        expect(exit).toMatchObject({ cause: { error: { _tag: "RateLimitError", message: expect.stringMatching(/Local/) } } })
        expect(fake.starts).toEqual([0])
      }).pipe(Effect.provide(store))
    )
  })

  describe("RateLimit: layers and config", () => {
    const env = (entries: ReadonlyArray<readonly [string, string]>) => ConfigProvider.fromMap(new Map(entries))

    it.effect("config reads shared and per-provider limits", () =>
      Effect.gen(function* () {
        const options = yield* Effect.withConfigProvider(
          RateLimit.config(["openai", "my-groq"]),
          env([
            ["LLM_RATE_LIMIT_RPM", "100"],
            ["LLM_MAX_CONCURRENCY", "8"],
            ["LLM_RATE_LIMIT_RPM_OPENAI", "500"],
            ["LLM_RATE_LIMIT_BURST_OPENAI", "8"],
            ["LLM_RATE_LIMIT_TPM_MY_GROQ", "6000"],
            ["LLM_RATE_LIMIT_MAX_WAIT_MS", "5000"]
          ])
        )
        expect(options.rpm).toBe(100)
        expect(options.tpm).toBeUndefined()
        expect(options.maxConcurrency).toBe(8)
        expect(options.providers).toEqual({ openai: { rpm: 500, burst: 8 }, "my-groq": { tpm: 6000 } })
        expect(Duration.toMillis(Duration.decode(options.maxWait!))).toBe(5000)
      })
    )

    it.effect("config rejects a limit that is not a positive whole number", () =>
      Effect.gen(function* () {
        const result = yield* Effect.either(Effect.withConfigProvider(RateLimit.config(), env([["LLM_RATE_LIMIT_RPM", "0"]])))
        expect(result._tag).toBe("Left")
      })
    )

    it.effect("layerConfig limits the Llm service in context", () =>
      Effect.gen(function* () {
        const fiber = yield* Effect.fork(
          Effect.all([Llm.complete(request()), Llm.complete(request())], { concurrency: "unbounded" }).pipe(
            Effect.zipRight(Clock.currentTimeMillis),
            Effect.provide(RateLimit.layerConfig().pipe(Layer.provide(LlmMock.layerEcho()), Layer.provide(store))),
            Effect.withConfigProvider(env([["LLM_RATE_LIMIT_RPM", "1"], ["LLM_RATE_LIMIT_MAX_WAIT_MS", "60000"]]))
          )
        )
        yield* TestClock.adjust(Duration.minutes(1))
        expect(yield* Fiber.join(fiber)).toBe(60_000)
      })
    )

    it.effect("layer passes answers through unchanged when far below the limits", () =>
      Effect.gen(function* () {
        const events = yield* Stream.runCollect(Llm.stream(request("openai", { content: "one two" })))
        const response = yield* Llm.complete(request())
        expect(response.content).toBe("echo: hello")
        expect(Chunk.size(events)).toBe(4)
      }).pipe(Effect.provide(RateLimit.layer({ rpm: 1000, tpm: 1_000_000, maxConcurrency: 10 }).pipe(Layer.provide(LlmMock.layerEcho()), Layer.provide(store))))
    )
  })

  describe("RateLimit: shared stores", () => {
    /** A memory store that records the keys it is asked for. */
    const recordingStore = Effect.map(
      Effect.provide(RateLimiter.RateLimiterStore, RateLimiter.layerStoreMemory),
      (memory) => {
        const keys = new Set<string>()
        const store: typeof memory = {
          fixedWindow: (o) => memory.fixedWindow(o),
          tokenBucket: (o) => {
            keys.add(o.key)
            return memory.tokenBucket(o)
          }
        }
        return { keys, store }
      }
    )

    /** Pauses shared in memory between limiters, as the Redis store shares them between processes. */
    const board = () => {
      const listeners = new Map<string, Array<(ms: number) => void>>()
      const announced: Array<readonly [string, number]> = []
      const pauses: RateLimitStore.Pauses = {
        announce: (key, ms) =>
          Effect.sync(() => {
            announced.push([key, ms])
            for (const listener of listeners.get(key) ?? []) listener(ms)
          }),
        watch: (key, onPause) => {
          listeners.set(key, [...(listeners.get(key) ?? []), onPause])
        }
      }
      return { announced, pauses }
    }

    it.effect("puts each provider's key namespace in its store keys, so two keys never share a budget", () =>
      Effect.gen(function* () {
        const { keys, store } = yield* recordingStore
        const fake = fakeProvider()
        const make = (namespace: string) =>
          RateLimit.make({ rpm: 1, tpm: 10_000, keyNamespaces: { openai: namespace } }).pipe(
            Effect.provideService(RateLimiter.RateLimiterStore, store)
          )
        const first = (yield* make("aaaa"))(fake.service)
        const second = (yield* make("bbbb"))(fake.service)
        yield* first.complete(request())
        yield* second.complete(request())
        // Each key had its own one-request budget: neither call waited.
        expect(fake.starts).toEqual([0, 0])
        expect([...keys].sort()).toEqual(["llm:openai:aaaa:rpm", "llm:openai:aaaa:tpm", "llm:openai:bbbb:rpm", "llm:openai:bbbb:tpm"])
      })
    )

    it.effect("announces a provider's 429 to the shared pauses, and pauses when another limiter announces one", () =>
      Effect.gen(function* () {
        const shared = board()
        const limited429 = new RateLimitError({ provider: "openai", message: "Too many requests", retryAfter: Duration.seconds(5) })
        const seen = fakeProvider({ answer: (n) => (n === 0 ? limited429 : undefined) })
        const other = fakeProvider()
        const make = RateLimit.make({ keyNamespaces: { openai: "fp" } }).pipe(
          Effect.provideService(RateLimitStore.SharedPauses, shared.pauses),
          Effect.provide(store)
        )
        const instanceA = (yield* make)(seen.service)
        const instanceB = (yield* make)(other.service)
        // B has met openai before the 429, so it is listening.
        yield* instanceB.complete(request())
        yield* TestClock.adjust(Duration.seconds(1))
        yield* Effect.exit(instanceA.complete(request()))
        expect(shared.announced).toEqual([["llm:openai:fp:pause", 5000]])
        const fiber = yield* Effect.fork(instanceB.complete(request()))
        yield* TestClock.adjust(Duration.millis(4999))
        expect(other.starts).toEqual([0])
        yield* TestClock.adjust(Duration.millis(1))
        yield* Fiber.join(fiber)
        expect(other.starts).toEqual([0, 6000])
      })
    )

    it.effect("does not announce a local rejection", () =>
      Effect.gen(function* () {
        const shared = board()
        const fake = fakeProvider()
        const llm = (yield* RateLimit.make({ rpm: 1, maxWait: Duration.seconds(1) }).pipe(
          Effect.provideService(RateLimitStore.SharedPauses, shared.pauses),
          Effect.provide(store)
        ))(fake.service)
        yield* llm.complete(request())
        const exit = yield* Effect.exit(llm.complete(request()))
        expect(exit).toMatchObject({ cause: { error: { _tag: "RateLimitError" } } })
        expect(shared.announced).toEqual([])
      })
    )
  })
})
