import { describe, expect, it } from "@effect/vitest"
import { Chunk, Clock, ConfigProvider, Duration, Effect, Exit, Fiber, Stream, TestClock } from "effect"
import * as Llm from "../src/Llm.js"
import * as LlmMock from "../src/LlmMock.js"
import * as Retry from "../src/Retry.js"

const request = { provider: "openai", messages: [{ role: "user" as const, content: "hello" }] }

/** Wraps a service so each call records the virtual time it started at. */
const timed = (service: Llm.Service) => {
  const starts: Array<number> = []
  const mark = Effect.flatMap(Clock.currentTimeMillis, (now) => Effect.sync(() => starts.push(now)))
  const wrapped = Llm.fromCall((r, mode) => Effect.zipRight(mark, service.call(r, mode)))
  return { starts, service: wrapped }
}

const gaps = (starts: ReadonlyArray<number>) => starts.slice(1).map((t, i) => t - starts[i]!)

/** Runs `effect` in a fiber, moves the clock far enough for every wait, and returns its exit. */
const runAll = <A, E>(effect: Effect.Effect<A, E>, advance: Duration.DurationInput = Duration.minutes(10)) =>
  Effect.gen(function* () {
    const fiber = yield* Effect.fork(effect)
    yield* TestClock.adjust(advance)
    return yield* Fiber.await(fiber)
  })

describe("Retry: which errors are retried", () => {
  it.effect("retries a rate limit twice then succeeds on the third attempt", () =>
    Effect.gen(function* () {
      const mock = yield* LlmMock.make([LlmMock.fail("RateLimitError"), LlmMock.fail("RateLimitError"), LlmMock.reply("ok")])
      const exit = yield* runAll(Llm.withPolicies(mock, [yield* Retry.make()]).complete(request))
      expect(Exit.isSuccess(exit) && exit.value.content).toBe("ok")
      expect((yield* mock.calls).length).toBe(3)
    })
  )

  it.effect("does not retry an invalid request (400): exactly one attempt", () =>
    Effect.gen(function* () {
      const mock = yield* LlmMock.make([LlmMock.fail("InvalidRequestError", { status: 400 }), LlmMock.reply("never")])
      const exit = yield* runAll(Llm.withPolicies(mock, [yield* Retry.make()]).complete(request))
      expect(Exit.isFailure(exit)).toBe(true)
      expect(exit).toMatchObject({ cause: { error: { _tag: "InvalidRequestError" } } })
      expect((yield* mock.calls).length).toBe(1)
    })
  )

  it.effect("does not retry an authentication error (401): exactly one attempt", () =>
    Effect.gen(function* () {
      const mock = yield* LlmMock.make([LlmMock.fail("AuthenticationError", { status: 401 }), LlmMock.reply("never")])
      const exit = yield* runAll(Llm.withPolicies(mock, [yield* Retry.make()]).complete(request))
      expect(exit).toMatchObject({ cause: { error: { _tag: "AuthenticationError" } } })
      expect((yield* mock.calls).length).toBe(1)
    })
  )

  it.effect("gives up after maxRetries: 4 attempts by default, returning the last error", () =>
    Effect.gen(function* () {
      const mock = yield* LlmMock.make([
        LlmMock.fail("ServerError", { status: 500 }),
        LlmMock.fail("ServerError", { status: 502 }),
        LlmMock.fail("ServerError", { status: 503 }),
        LlmMock.fail("OverloadedError", { message: "the fourth" }),
        LlmMock.reply("too late")
      ])
      const exit = yield* runAll(Llm.withPolicies(mock, [yield* Retry.make()]).complete(request))
      expect(exit).toMatchObject({ cause: { error: { _tag: "OverloadedError", message: "the fourth" } } })
      expect((yield* mock.calls).length).toBe(4)
    })
  )

  it.effect("honours a smaller maxRetries", () =>
    Effect.gen(function* () {
      const mock = yield* LlmMock.make([LlmMock.fail("ServerError"), LlmMock.fail("ServerError"), LlmMock.reply("ok")])
      const exit = yield* runAll(Llm.withPolicies(mock, [yield* Retry.make({ maxRetries: 1 })]).complete(request))
      expect(Exit.isFailure(exit)).toBe(true)
      expect((yield* mock.calls).length).toBe(2)
    })
  )
})

describe("Retry: delays between attempts", () => {
  it.effect("waits base * 2^n between attempts, within the 80%..120% jitter bounds", () =>
    Effect.gen(function* () {
      const mock = yield* LlmMock.make([
        LlmMock.fail("ServerError"),
        LlmMock.fail("ServerError"),
        LlmMock.fail("ServerError"),
        LlmMock.reply("ok")
      ])
      const { service, starts } = timed(mock)
      const exit = yield* runAll(Llm.withPolicies(service, [yield* Retry.make({ base: Duration.millis(1000) })]).complete(request))
      expect(Exit.isSuccess(exit)).toBe(true)
      const [first, second, third] = gaps(starts)
      expect(first).toBeGreaterThanOrEqual(800)
      expect(first).toBeLessThanOrEqual(1200)
      expect(second).toBeGreaterThanOrEqual(1600)
      expect(second).toBeLessThanOrEqual(2400)
      expect(third).toBeGreaterThanOrEqual(3200)
      expect(third).toBeLessThanOrEqual(4800)
    })
  )

  it.effect("never waits longer than maxDelay", () =>
    Effect.gen(function* () {
      const mock = yield* LlmMock.make([
        LlmMock.fail("ServerError"),
        LlmMock.fail("ServerError"),
        LlmMock.fail("ServerError"),
        LlmMock.fail("ServerError"),
        LlmMock.fail("ServerError"),
        LlmMock.reply("ok")
      ])
      const { service, starts } = timed(mock)
      const policy = yield* Retry.make({ maxRetries: 5, base: Duration.seconds(1), maxDelay: Duration.seconds(3) })
      const exit = yield* runAll(Llm.withPolicies(service, [policy]).complete(request))
      expect(Exit.isSuccess(exit)).toBe(true)
      const waits = gaps(starts)
      expect(waits).toHaveLength(5)
      for (const wait of waits) expect(wait).toBeLessThanOrEqual(3000.001)
      // 4 s, 8 s and 16 s (at least 3.2 s after jitter) would be the backoff of the last three: all capped at 3 s.
      for (const wait of waits.slice(2)) expect(wait).toBeCloseTo(3000, 3)
    })
  )

  it.effect("waits exactly retryAfter when the error carries one, instead of the backoff", () =>
    Effect.gen(function* () {
      const mock = yield* LlmMock.make([LlmMock.fail("RateLimitError", { retryAfter: Duration.seconds(7) }), LlmMock.reply("ok")])
      const { service, starts } = timed(mock)
      const exit = yield* runAll(Llm.withPolicies(service, [yield* Retry.make({ base: Duration.millis(100) })]).complete(request))
      expect(Exit.isSuccess(exit)).toBe(true)
      expect(gaps(starts)).toEqual([7000])
    })
  )

  it.effect("does not resume before retryAfter has passed", () =>
    Effect.gen(function* () {
      const mock = yield* LlmMock.make([LlmMock.fail("RateLimitError", { retryAfter: Duration.seconds(7) }), LlmMock.reply("ok")])
      const fiber = yield* Effect.fork(Llm.withPolicies(mock, [yield* Retry.make()]).complete(request))
      yield* TestClock.adjust(Duration.millis(6999))
      expect((yield* mock.calls).length).toBe(1)
      yield* TestClock.adjust(Duration.millis(1))
      const response = yield* Fiber.join(fiber)
      expect(response.content).toBe("ok")
      expect((yield* mock.calls).length).toBe(2)
    })
  )

  it.effect("fails at once with the RateLimitError when retryAfter exceeds maxRetryAfter", () =>
    Effect.gen(function* () {
      const mock = yield* LlmMock.make([LlmMock.fail("RateLimitError", { retryAfter: Duration.seconds(90) }), LlmMock.reply("ok")])
      const fiber = yield* Effect.fork(Llm.withPolicies(mock, [yield* Retry.make({ maxRetryAfter: Duration.seconds(60) })]).complete(request))
      // No clock movement at all: the failure must not involve any wait.
      const exit = yield* Fiber.await(fiber)
      expect(exit).toMatchObject({ cause: { error: { _tag: "RateLimitError" } } })
      expect((yield* mock.calls).length).toBe(1)
    })
  )
})

describe("Retry: observability", () => {
  it.effect("calls onRetry before each wait with the retry number, delay and error", () =>
    Effect.gen(function* () {
      const seen: Array<Retry.RetryInfo> = []
      const mock = yield* LlmMock.make([
        LlmMock.fail("OverloadedError"),
        LlmMock.fail("RateLimitError", { retryAfter: Duration.seconds(2) }),
        LlmMock.reply("ok")
      ])
      const policy = yield* Retry.make({ onRetry: (info) => Effect.sync(() => seen.push(info)) })
      yield* runAll(Llm.withPolicies(mock, [policy]).complete(request))
      expect(seen.map((i) => [i.attempt, i.error._tag])).toEqual([
        [1, "OverloadedError"],
        [2, "RateLimitError"]
      ])
      expect(Duration.toMillis(seen[1]!.delay)).toBe(2000)
    })
  )
})

describe("Retry: streams", () => {
  const collect = (stream: Stream.Stream<unknown, unknown>) =>
    runAll(Effect.map(Stream.runCollect(stream), Chunk.toReadonlyArray))

  it.effect("retries a stream that fails before its first event", () =>
    Effect.gen(function* () {
      const mock = yield* LlmMock.make([LlmMock.fail("ConnectionError"), LlmMock.reply("all good")])
      const exit = yield* collect(Llm.withPolicies(mock, [yield* Retry.make()]).stream(request))
      expect(Exit.isSuccess(exit) && exit.value.map((e) => (e as { _tag: string })._tag)).toEqual([
        "TextDelta",
        "TextDelta",
        "Finish"
      ])
      expect((yield* mock.calls).length).toBe(2)
    })
  )

  it.effect("does not restart a stream after its first event: fails with textEmitted", () =>
    Effect.gen(function* () {
      const mock = yield* LlmMock.make([
        LlmMock.chunks(["Once", " upon"], { error: LlmMock.error("ConnectionError", { provider: "openai" }) }),
        LlmMock.reply("a second answer")
      ])
      const exit = yield* collect(Llm.withPolicies(mock, [yield* Retry.make()]).stream(request))
      expect(exit).toMatchObject({ cause: { error: { _tag: "ConnectionError", textEmitted: 9 } } })
      expect((yield* mock.calls).length).toBe(1)
    })
  )

  it.effect("gives up on a stream after maxRetries, with the last error", () =>
    Effect.gen(function* () {
      const mock = yield* LlmMock.make([
        LlmMock.fail("ServerError"),
        LlmMock.fail("ServerError"),
        LlmMock.fail("OverloadedError")
      ])
      const exit = yield* collect(Llm.withPolicies(mock, [yield* Retry.make({ maxRetries: 2 })]).stream(request))
      expect(exit).toMatchObject({ cause: { error: { _tag: "OverloadedError" } } })
      expect((yield* mock.calls).length).toBe(3)
    })
  )

  it.effect("does not retry a stream that fails with a non-retryable error", () =>
    Effect.gen(function* () {
      const mock = yield* LlmMock.make([LlmMock.fail("QuotaExceededError"), LlmMock.reply("never")])
      const exit = yield* collect(Llm.withPolicies(mock, [yield* Retry.make()]).stream(request))
      expect(exit).toMatchObject({ cause: { error: { _tag: "QuotaExceededError" } } })
      expect((yield* mock.calls).length).toBe(1)
    })
  )
})

describe("Retry: layer and config", () => {
  it.effect("layer wraps the Llm service in context", () =>
    Effect.gen(function* () {
      const exit = yield* runAll(
        Llm.complete(request).pipe(
          Effect.provide(Retry.layer({ maxRetries: 1 })),
          Effect.provide(LlmMock.layer([LlmMock.fail("ServerError"), LlmMock.reply("second")]))
        )
      )
      expect(Exit.isSuccess(exit) && exit.value.content).toBe("second")
    })
  )

  it.effect("config reads LLM_MAX_RETRIES and the delay variables", () =>
    Effect.gen(function* () {
      const options = yield* Effect.withConfigProvider(
        Retry.config,
        ConfigProvider.fromMap(new Map([["LLM_MAX_RETRIES", "5"], ["LLM_RETRY_BASE_DELAY_MS", "250"]]))
      )
      expect(options.maxRetries).toBe(5)
      expect(Duration.toMillis(Duration.decode(options.base!))).toBe(250)
      expect(Duration.toMillis(Duration.decode(options.maxDelay!))).toBe(10_000)
    })
  )

  it.effect("config rejects a negative LLM_MAX_RETRIES", () =>
    Effect.gen(function* () {
      const result = yield* Effect.either(
        Effect.withConfigProvider(Retry.config, ConfigProvider.fromMap(new Map([["LLM_MAX_RETRIES", "-1"]])))
      )
      expect(result._tag).toBe("Left")
    })
  )
})
