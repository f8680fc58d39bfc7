import { RateLimiter } from "@effect/experimental"
import { describe, expect, it } from "@effect/vitest"
import { Cause, ConfigProvider, Duration, Effect, Exit, Fiber, Layer, Option, Stream, TestClock } from "effect"
import * as CircuitBreaker from "../src/CircuitBreaker.js"
import * as Llm from "../src/Llm.js"
import type { LlmError } from "../src/LlmError.js"
import * as LlmMock from "../src/LlmMock.js"
import * as RateLimit from "../src/RateLimit.js"

const request = { provider: "openai", messages: [{ role: "user" as const, content: "hello" }] }

const failures = (n: number, tag: LlmMock.ErrorTag = "ServerError") => Array.from({ length: n }, () => LlmMock.fail(tag))

const errorOf = <A>(exit: Exit.Exit<A, LlmError>) =>
  Exit.isFailure(exit) ? Option.getOrUndefined(Cause.failureOption(exit.cause)) : undefined

describe("CircuitBreaker: closed to open", () => {
  it.effect("opens after 5 consecutive retryable failures and then fails fast without calling the provider", () =>
    Effect.gen(function* () {
      const mock = yield* LlmMock.make([...failures(5), LlmMock.reply("never reached")])
      const breaker = yield* CircuitBreaker.make()
      const llm = breaker(mock)
      for (let i = 0; i < 4; i++) yield* Effect.exit(llm.complete(request))
      expect(yield* breaker.state("openai")).toBe("closed")
      yield* Effect.exit(llm.complete(request))
      expect(yield* breaker.state("openai")).toBe("open")
      yield* TestClock.adjust(Duration.seconds(10))
      const error = errorOf(yield* Effect.exit(llm.complete(request)))
      expect(error?._tag).toBe("CircuitOpenError")
      expect(error?._tag === "CircuitOpenError" && Duration.toMillis(error.retryAfter!)).toBe(20_000)
      expect(error?.retryable).toBe(false)
      expect((yield* mock.calls).length).toBe(5)
    })
  )

  it.effect("a success resets the count of consecutive failures", () =>
    Effect.gen(function* () {
      const mock = yield* LlmMock.make([...failures(4), LlmMock.reply("ok"), ...failures(4)])
      const breaker = yield* CircuitBreaker.make()
      for (let i = 0; i < 9; i++) yield* Effect.exit(breaker(mock).complete(request))
      expect(yield* breaker.state("openai")).toBe("closed")
    })
  )

  it.effect("non-retryable errors do not trip it", () =>
    Effect.gen(function* () {
      const mock = yield* LlmMock.make([
        ...failures(6, "InvalidRequestError"),
        ...failures(6, "AuthenticationError"),
        ...failures(6, "QuotaExceededError")
      ])
      const breaker = yield* CircuitBreaker.make()
      for (let i = 0; i < 18; i++) yield* Effect.exit(breaker(mock).complete(request))
      expect(yield* breaker.state("openai")).toBe("closed")
      expect((yield* mock.calls).length).toBe(18)
    })
  )

  it.effect("a provider's 429s do not trip it: the provider is up and throttling", () =>
    Effect.gen(function* () {
      const mock = yield* LlmMock.make([
        ...failures(6, "RateLimitError"),
        ...failures(4),
        ...failures(1, "RateLimitError"),
        ...failures(4)
      ])
      const breaker = yield* CircuitBreaker.make()
      for (let i = 0; i < 15; i++) yield* Effect.exit(breaker(mock).complete(request))
      // Six 429s count for nothing; the 429 between two runs of four 5xx is an answer, so the
      // failures are never 5 in a row.
      expect(yield* breaker.state("openai")).toBe("closed")
      expect((yield* mock.calls).length).toBe(15)
    })
  )

  it.effect("local rate limit rejections do not trip it", () =>
    Effect.gen(function* () {
      const breaker = yield* CircuitBreaker.make({ failureThreshold: 2 })
      const limit = yield* RateLimit.make({ rpm: 1, maxWait: Duration.millis(1) })
      const llm = breaker(limit(LlmMock.echo()))
      yield* llm.complete(request)
      for (let i = 0; i < 4; i++) {
        expect(errorOf(yield* Effect.exit(llm.complete(request)))?._tag).toBe("RateLimitError")
      }
      expect(yield* breaker.state("openai")).toBe("closed")
    }).pipe(Effect.provide(RateLimiter.layerStoreMemory))
  )

  it.effect("keeps a separate circuit per provider", () =>
    Effect.gen(function* () {
      const mock = yield* LlmMock.make([...failures(2), LlmMock.reply("anthropic answers")])
      const breaker = yield* CircuitBreaker.make({ failureThreshold: 2 })
      const llm = breaker(mock)
      yield* Effect.exit(llm.complete(request))
      yield* Effect.exit(llm.complete(request))
      expect(yield* breaker.state("openai")).toBe("open")
      const response = yield* llm.complete({ ...request, provider: "anthropic" })
      expect(response.content).toBe("anthropic answers")
    })
  )
})

describe("CircuitBreaker: half-open", () => {
  const opened = (script: ReadonlyArray<LlmMock.Step>, options: CircuitBreaker.Options = {}) =>
    Effect.gen(function* () {
      const mock = yield* LlmMock.make([...failures(2), ...script])
      const changes: Array<string> = []
      const breaker = yield* CircuitBreaker.make({
        failureThreshold: 2,
        cooldown: Duration.seconds(30),
        onStateChange: (c) => Effect.sync(() => changes.push(`${c.from}->${c.to}`)),
        ...options
      })
      const llm = breaker(mock)
      yield* Effect.exit(llm.complete(request))
      yield* Effect.exit(llm.complete(request))
      return { mock, breaker, llm, changes }
    })

  it.effect("after the cooldown lets exactly one probe through while others fail fast, and closes on its success", () =>
    Effect.gen(function* () {
      const { breaker, changes, llm, mock } = yield* opened([LlmMock.reply("probe ok", { latency: Duration.seconds(2) }), LlmMock.reply("after")])
      yield* TestClock.adjust(Duration.millis(29_999))
      expect(errorOf(yield* Effect.exit(llm.complete(request)))?._tag).toBe("CircuitOpenError")
      yield* TestClock.adjust(Duration.millis(1))
      expect(yield* breaker.state("openai")).toBe("half-open")
      const probe = yield* Effect.fork(llm.complete(request))
      yield* TestClock.adjust(Duration.millis(1))
      const others = yield* Effect.all(Array.from({ length: 3 }, () => Effect.exit(llm.complete(request))))
      for (const exit of others) expect(errorOf(exit)?._tag).toBe("CircuitOpenError")
      yield* TestClock.adjust(Duration.seconds(2))
      expect((yield* Fiber.join(probe)).content).toBe("probe ok")
      expect(yield* breaker.state("openai")).toBe("closed")
      expect((yield* llm.complete(request)).content).toBe("after")
      expect((yield* mock.calls).length).toBe(4)
      expect(changes).toEqual(["closed->open", "open->half-open", "half-open->closed"])
    })
  )

  it.effect("re-opens on a failed probe for another full cooldown", () =>
    Effect.gen(function* () {
      const { breaker, changes, llm } = yield* opened([LlmMock.fail("OverloadedError"), LlmMock.reply("recovered")])
      yield* TestClock.adjust(Duration.seconds(30))
      expect(errorOf(yield* Effect.exit(llm.complete(request)))?._tag).toBe("OverloadedError")
      expect(yield* breaker.state("openai")).toBe("open")
      const error = errorOf(yield* Effect.exit(llm.complete(request)))
      expect(error?._tag === "CircuitOpenError" && Duration.toMillis(error.retryAfter!)).toBe(30_000)
      yield* TestClock.adjust(Duration.seconds(30))
      expect((yield* llm.complete(request)).content).toBe("recovered")
      expect(changes).toEqual(["closed->open", "open->half-open", "half-open->open", "open->half-open", "half-open->closed"])
    })
  )

  it.effect("a probe answered with a non-retryable error closes the circuit (the provider is up)", () =>
    Effect.gen(function* () {
      const { breaker, llm } = yield* opened([LlmMock.fail("InvalidRequestError")])
      yield* TestClock.adjust(Duration.seconds(30))
      yield* Effect.exit(llm.complete(request))
      expect(yield* breaker.state("openai")).toBe("closed")
    })
  )

  it.effect("an interrupted probe lets the next caller probe", () =>
    Effect.gen(function* () {
      const { breaker, llm } = yield* opened([LlmMock.hang(), LlmMock.reply("second probe")])
      yield* TestClock.adjust(Duration.seconds(30))
      const probe = yield* Effect.fork(llm.complete(request))
      yield* TestClock.adjust(Duration.millis(1))
      yield* Fiber.interrupt(probe)
      expect((yield* llm.complete(request)).content).toBe("second probe")
      expect(yield* breaker.state("openai")).toBe("closed")
    })
  )
})

describe("CircuitBreaker: streams", () => {
  it.effect("counts a failed stream and fails streams fast while open", () =>
    Effect.gen(function* () {
      const mock = yield* LlmMock.make([...failures(2), LlmMock.reply("ok")])
      const breaker = yield* CircuitBreaker.make({ failureThreshold: 2 })
      const llm = breaker(mock)
      yield* Effect.exit(Stream.runDrain(llm.stream(request)))
      yield* Effect.exit(Stream.runDrain(llm.stream(request)))
      expect(yield* breaker.state("openai")).toBe("open")
      expect(errorOf(yield* Effect.exit(Stream.runDrain(llm.stream(request))))?._tag).toBe("CircuitOpenError")
      yield* TestClock.adjust(Duration.seconds(30))
      yield* Stream.runDrain(llm.stream(request))
      expect(yield* breaker.state("openai")).toBe("closed")
    })
  )
})

describe("CircuitBreaker: failure ratio over a sliding window", () => {
  const replies = (n: number) => Array.from({ length: n }, () => LlmMock.reply("ok"))

  it.effect("decides nothing on fewer than minimumCalls outcomes, and failureThreshold no longer applies", () =>
    Effect.gen(function* () {
      const mock = yield* LlmMock.make(failures(10))
      const breaker = yield* CircuitBreaker.make({ failureThreshold: 3, failureRatio: 0.5, minimumCalls: 10 })
      const llm = breaker(mock)
      for (let i = 0; i < 9; i++) yield* Effect.exit(llm.complete(request))
      expect(yield* breaker.state("openai")).toBe("closed")
      yield* Effect.exit(llm.complete(request))
      expect(yield* breaker.state("openai")).toBe("open")
      expect(errorOf(yield* Effect.exit(llm.complete(request)))?._tag).toBe("CircuitOpenError")
      expect((yield* mock.calls).length).toBe(10)
    })
  )

  it.effect("opens when the share of failures reaches the ratio, not below it", () =>
    Effect.gen(function* () {
      const mock = yield* LlmMock.make([...replies(7), ...failures(7)])
      const breaker = yield* CircuitBreaker.make({ failureRatio: 0.5, minimumCalls: 10 })
      const llm = breaker(mock)
      for (let i = 0; i < 7; i++) yield* llm.complete(request)
      // 1/8 .. 6/13 failed: at least minimumCalls from the 10th call on, but below the ratio.
      for (let i = 0; i < 6; i++) {
        yield* Effect.exit(llm.complete(request))
        expect(yield* breaker.state("openai")).toBe("closed")
      }
      yield* Effect.exit(llm.complete(request)) // 7/14
      expect(yield* breaker.state("openai")).toBe("open")
    })
  )

  it.effect("old outcomes leave the window as time passes", () =>
    Effect.gen(function* () {
      const mock = yield* LlmMock.make([...replies(6), ...failures(5)])
      const breaker = yield* CircuitBreaker.make({ failureRatio: 0.5, minimumCalls: 5, window: Duration.seconds(10) })
      const llm = breaker(mock)
      for (let i = 0; i < 6; i++) yield* llm.complete(request)
      yield* TestClock.adjust(Duration.seconds(5))
      for (let i = 0; i < 4; i++) yield* Effect.exit(llm.complete(request))
      expect(yield* breaker.state("openai")).toBe("closed") // 4/10
      yield* TestClock.adjust(Duration.seconds(5))
      // The six successes of t=0 have left; the four failures of t=5s are still in the window.
      yield* Effect.exit(llm.complete(request))
      expect(yield* breaker.state("openai")).toBe("open") // 5/5
    })
  )

  it.effect("failures older than the window do not count at all", () =>
    Effect.gen(function* () {
      const mock = yield* LlmMock.make(failures(6))
      const breaker = yield* CircuitBreaker.make({ failureRatio: 0.5, minimumCalls: 5, window: Duration.seconds(10) })
      const llm = breaker(mock)
      for (let i = 0; i < 4; i++) yield* Effect.exit(llm.complete(request))
      yield* TestClock.adjust(Duration.seconds(10))
      yield* Effect.exit(llm.complete(request))
      expect(yield* breaker.state("openai")).toBe("closed") // 1 call in the window
      yield* TestClock.adjust(Duration.minutes(5))
      yield* Effect.exit(llm.complete(request))
      expect(yield* breaker.state("openai")).toBe("closed")
    })
  )

  it.effect("429s and non-retryable errors count as healthy outcomes, not failures", () =>
    Effect.gen(function* () {
      const mock = yield* LlmMock.make([
        ...failures(5, "RateLimitError"),
        ...failures(3, "InvalidRequestError"),
        ...failures(2, "AuthenticationError"),
        ...failures(10)
      ])
      const breaker = yield* CircuitBreaker.make({ failureRatio: 0.5, minimumCalls: 10 })
      const llm = breaker(mock)
      for (let i = 0; i < 19; i++) yield* Effect.exit(llm.complete(request))
      expect(yield* breaker.state("openai")).toBe("closed") // 9/19
      yield* Effect.exit(llm.complete(request))
      expect(yield* breaker.state("openai")).toBe("open") // 10/20
    })
  )

  it.effect("local rate limit rejections and interruptions are not recorded", () =>
    Effect.gen(function* () {
      const mock = yield* LlmMock.make([LlmMock.fail("ServerError"), LlmMock.hang(), LlmMock.fail("ServerError")])
      const breaker = yield* CircuitBreaker.make({ failureRatio: 1, minimumCalls: 2 })
      const limit = yield* RateLimit.make({ rpm: 1, maxWait: Duration.millis(1) })
      const limited = breaker(limit(mock))
      const direct = breaker(mock)
      yield* Effect.exit(limited.complete(request))
      for (let i = 0; i < 3; i++) {
        expect(errorOf(yield* Effect.exit(limited.complete(request)))?._tag).toBe("RateLimitError")
      }
      const hanging = yield* Effect.fork(direct.complete(request))
      yield* TestClock.adjust(Duration.millis(1))
      yield* Fiber.interrupt(hanging)
      expect(yield* breaker.state("openai")).toBe("closed") // 1 call recorded
      yield* Effect.exit(direct.complete(request))
      // Had the rejections or the interruption counted as healthy outcomes, 2/2 would not be reached.
      expect(yield* breaker.state("openai")).toBe("open")
    }).pipe(Effect.provide(RateLimiter.layerStoreMemory))
  )

  it.effect("counts a failed stream as a failure", () =>
    Effect.gen(function* () {
      const mock = yield* LlmMock.make([...replies(1), ...failures(1)])
      const breaker = yield* CircuitBreaker.make({ failureRatio: 0.5, minimumCalls: 2 })
      const llm = breaker(mock)
      yield* Stream.runDrain(llm.stream(request))
      expect(yield* breaker.state("openai")).toBe("closed")
      yield* Effect.exit(Stream.runDrain(llm.stream(request)))
      expect(yield* breaker.state("openai")).toBe("open")
    })
  )

  it.effect("the window starts empty when the circuit closes again", () =>
    Effect.gen(function* () {
      const mock = yield* LlmMock.make([...failures(4), LlmMock.reply("probe ok"), ...failures(4)])
      const breaker = yield* CircuitBreaker.make({
        failureRatio: 0.5,
        minimumCalls: 4,
        window: Duration.minutes(5),
        cooldown: Duration.seconds(30)
      })
      const llm = breaker(mock)
      for (let i = 0; i < 4; i++) yield* Effect.exit(llm.complete(request))
      expect(yield* breaker.state("openai")).toBe("open")
      yield* TestClock.adjust(Duration.seconds(30))
      expect((yield* llm.complete(request)).content).toBe("probe ok")
      expect(yield* breaker.state("openai")).toBe("closed")
      // The four failures before the circuit opened are still within 5 minutes, but no longer count.
      for (let i = 0; i < 3; i++) yield* Effect.exit(llm.complete(request))
      expect(yield* breaker.state("openai")).toBe("closed")
      yield* Effect.exit(llm.complete(request))
      expect(yield* breaker.state("openai")).toBe("open")
    })
  )
})

describe("CircuitBreaker: layers and config", () => {
  it.effect("config reads the threshold and cooldown", () =>
    Effect.gen(function* () {
      const options = yield* Effect.withConfigProvider(
        CircuitBreaker.config,
        ConfigProvider.fromMap(new Map([["LLM_CIRCUIT_FAILURE_THRESHOLD", "3"], ["LLM_CIRCUIT_COOLDOWN_MS", "5000"]]))
      )
      expect(options.failureThreshold).toBe(3)
      expect(Duration.toMillis(Duration.decode(options.cooldown!))).toBe(5000)
    })
  )

  it.effect("config leaves the failure ratio out unless LLM_CIRCUIT_FAILURE_RATIO is set", () =>
    Effect.gen(function* () {
      const options = yield* Effect.withConfigProvider(CircuitBreaker.config, ConfigProvider.fromMap(new Map()))
      expect(options).toEqual({ failureThreshold: 5, cooldown: Duration.millis(30_000) })
    })
  )

  it.effect("config reads the failure ratio with minimumCalls 20 and a 10 s window by default", () =>
    Effect.gen(function* () {
      const options = yield* Effect.withConfigProvider(
        CircuitBreaker.config,
        ConfigProvider.fromMap(new Map([["LLM_CIRCUIT_FAILURE_RATIO", "0.5"]]))
      )
      expect(options.failureRatio).toBe(0.5)
      expect(options.minimumCalls).toBe(20)
      expect(Duration.toMillis(Duration.decode(options.window!))).toBe(10_000)
      const explicit = yield* Effect.withConfigProvider(
        CircuitBreaker.config,
        ConfigProvider.fromMap(
          new Map([["LLM_CIRCUIT_FAILURE_RATIO", "0.25"], ["LLM_CIRCUIT_MINIMUM_CALLS", "50"], ["LLM_CIRCUIT_WINDOW_MS", "60000"]])
        )
      )
      expect(explicit.failureRatio).toBe(0.25)
      expect(explicit.minimumCalls).toBe(50)
      expect(Duration.toMillis(Duration.decode(explicit.window!))).toBe(60_000)
    })
  )

  it.effect("a failure ratio outside 0..1 is a ConfigError naming the variable", () =>
    Effect.gen(function* () {
      for (const value of ["1.5", "-0.1", "half"]) {
        const error = yield* Effect.flip(
          Effect.withConfigProvider(CircuitBreaker.config, ConfigProvider.fromMap(new Map([["LLM_CIRCUIT_FAILURE_RATIO", value]])))
        )
        expect(error._op).toBe("InvalidData")
        expect(String(error)).toContain("LLM_CIRCUIT_FAILURE_RATIO")
      }
    })
  )

  it.effect("layerConfig with LLM_CIRCUIT_FAILURE_RATIO opens on the ratio", () =>
    Effect.gen(function* () {
      const exits = yield* Effect.all(Array.from({ length: 4 }, () => Effect.exit(Llm.complete(request))))
      expect(exits.map((e) => errorOf(e)?._tag)).toEqual([undefined, "ServerError", "ServerError", "CircuitOpenError"])
    }).pipe(
      Effect.provide(CircuitBreaker.layerConfig.pipe(Layer.provide(LlmMock.layer([LlmMock.reply("ok"), ...failures(3)])))),
      Effect.withConfigProvider(
        ConfigProvider.fromMap(new Map([["LLM_CIRCUIT_FAILURE_RATIO", "0.6"], ["LLM_CIRCUIT_MINIMUM_CALLS", "3"]]))
      )
    )
  )

  it.effect("layerConfig guards the Llm service in context", () =>
    Effect.gen(function* () {
      const exits = yield* Effect.all(Array.from({ length: 3 }, () => Effect.exit(Llm.complete(request))))
      expect(exits.map((e) => errorOf(e)?._tag)).toEqual(["ServerError", "ServerError", "CircuitOpenError"])
    }).pipe(
      Effect.provide(CircuitBreaker.layerConfig.pipe(Layer.provide(LlmMock.layer(failures(3))))),
      Effect.withConfigProvider(ConfigProvider.fromMap(new Map([["LLM_CIRCUIT_FAILURE_THRESHOLD", "2"]])))
    )
  )
})
