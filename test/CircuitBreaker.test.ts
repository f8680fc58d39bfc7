import { describe, expect, it } from "@effect/vitest"
import {
  Cause,
  Clock,
  ConfigProvider,
  Duration,
  Effect,
  Exit,
  Fiber,
  HashMap,
  Layer,
  Logger,
  LogLevel,
  Option,
  Stream,
  TestClock
} from "effect"
import * as CircuitBreaker from "../src/CircuitBreaker.js"
import * as Llm from "../src/Llm.js"
import type { LlmError } from "../src/LlmError.js"
import * as LlmMock from "../src/LlmMock.js"

const request = { provider: "openai", messages: [{ role: "user" as const, content: "hello" }] }

const failures = (n: number, tag: LlmMock.ErrorTag = "ServerError") => Array.from({ length: n }, () => LlmMock.fail(tag))
const replies = (n: number) => Array.from({ length: n }, () => LlmMock.reply("ok"))

const errorOf = <A>(exit: Exit.Exit<A, LlmError>) =>
  Exit.isFailure(exit) ? Option.getOrUndefined(Cause.failureOption(exit.cause)) : undefined

/** A deterministic random number generator (mulberry32), so a "random" provider fails the same calls every run. */
const seeded = (seed: number) => () => {
  seed = (seed + 0x6d2b79f5) | 0
  let t = Math.imul(seed ^ (seed >>> 15), 1 | seed)
  t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296
}

/**
 * A breaker in front of `providers` behind a router, recording every state change as
 * `provider:from->to@time`.
 */
const guarded = (providers: ReadonlyArray<Llm.Provider>, options: CircuitBreaker.Options = {}) =>
  Effect.gen(function* () {
    const changes: Array<string> = []
    const breaker = yield* CircuitBreaker.make({
      ...options,
      onStateChange: (c) =>
        Effect.flatMap(Clock.currentTimeMillis, (now) => Effect.sync(() => changes.push(`${c.provider}:${c.from}->${c.to}@${now}`)))
    })
    const llm = Llm.router({ providers, policies: [breaker] })
    const states = () => changes.map((c) => c.slice(c.indexOf(":") + 1, c.indexOf("@")))
    return { llm, changes, states }
  })

/** One scripted provider named `openai` behind a breaker. */
const scripted = (script: ReadonlyArray<LlmMock.Step>, options: CircuitBreaker.Options = {}, mock: LlmMock.Options = {}) =>
  Effect.gen(function* () {
    const provider = yield* LlmMock.make(script, { provider: "openai", ...mock })
    return { provider, ...(yield* guarded([provider], options)) }
  })

const attempt = (llm: Llm.Service, times = 1) =>
  Effect.forEach(Array.from({ length: times }), () => Effect.exit(llm.complete(request)))

describe("CircuitBreaker: failure ratio over a sliding window (the default)", () => {
  it.effect("decides nothing on fewer than 20 outcomes, opens at the 20th failure, then fails fast locally", () =>
    Effect.gen(function* () {
      const { llm, provider, states } = yield* scripted([...failures(20), LlmMock.reply("never reached")])
      yield* attempt(llm, 19)
      expect(states()).toEqual([])
      yield* attempt(llm)
      expect(states()).toEqual(["closed->open"])
      yield* TestClock.adjust(Duration.seconds(10))
      const error = errorOf(yield* Effect.exit(llm.complete(request)))
      expect(error).toMatchObject({ _tag: "CircuitOpenError", provider: "openai", local: true, retryable: false })
      expect(error?._tag === "CircuitOpenError" && Duration.toMillis(error.retryAfter!)).toBe(20_000)
      expect((yield* provider.calls).length).toBe(20)
    })
  )

  it.effect("opens when the share of failures reaches failureRatio, not below it", () =>
    Effect.gen(function* () {
      const { llm, states } = yield* scripted([...replies(7), ...failures(7)], { minimumCalls: 10 })
      yield* attempt(llm, 7)
      // 1/8 .. 6/13 failed: minimumCalls reached from the 10th call on, but below one half.
      for (let i = 0; i < 6; i++) {
        yield* attempt(llm)
        expect(states()).toEqual([])
      }
      yield* attempt(llm) // 7/14
      expect(states()).toEqual(["closed->open"])
    })
  )

  it.effect("old outcomes leave the window as time passes", () =>
    Effect.gen(function* () {
      const { llm, states } = yield* scripted([...replies(6), ...failures(5)], { minimumCalls: 5, window: Duration.seconds(10) })
      yield* attempt(llm, 6)
      yield* TestClock.adjust(Duration.seconds(5))
      yield* attempt(llm, 4)
      expect(states()).toEqual([]) // 4/10
      yield* TestClock.adjust(Duration.seconds(5))
      // The six successes of t=0 have left; the four failures of t=5s are still in the window.
      yield* attempt(llm)
      expect(states()).toEqual(["closed->open"]) // 5/5
    })
  )

  it.effect("failures older than the window do not count at all", () =>
    Effect.gen(function* () {
      const { llm, states } = yield* scripted(failures(6), { minimumCalls: 5, window: Duration.seconds(10) })
      yield* attempt(llm, 4)
      yield* TestClock.adjust(Duration.seconds(10))
      yield* attempt(llm)
      yield* TestClock.adjust(Duration.minutes(5))
      yield* attempt(llm)
      expect(states()).toEqual([])
    })
  )

  it.effect("the provider refusing a call (429, bad request, bad key, unknown model, quota) counts as a healthy outcome", () =>
    Effect.gen(function* () {
      const { llm, states } = yield* scripted(
        [
          ...failures(5, "RateLimitError"),
          ...failures(2, "InvalidRequestError"),
          ...failures(1, "AuthenticationError"),
          ...failures(1, "NotFoundError"),
          ...failures(1, "QuotaExceededError"),
          ...failures(10)
        ],
        { minimumCalls: 10 }
      )
      yield* attempt(llm, 19)
      expect(states()).toEqual([]) // 9/19
      yield* attempt(llm)
      expect(states()).toEqual(["closed->open"]) // 10/20
    })
  )

  it.effect("local failures, another circuit's refusal and a caller's deadline are not recorded at all", () =>
    Effect.gen(function* () {
      const { llm, states } = yield* scripted(
        [
          LlmMock.fail("RateLimitError", { local: true }),
          LlmMock.fail("ServerError", { local: true }),
          LlmMock.fail("CircuitOpenError"),
          LlmMock.fail("TimeoutError", { phase: "deadline", retryable: false }),
          ...failures(2)
        ],
        { failureRatio: 1, minimumCalls: 2 }
      )
      // Counted as failures they would open the circuit at the second call...
      yield* attempt(llm, 5)
      expect(states()).toEqual([])
      // ...and counted as healthy outcomes they would keep it from reaching 2/2.
      yield* attempt(llm)
      expect(states()).toEqual(["closed->open"])
    })
  )

  it.effect("each retryable provider failure counts: 5xx, overload, connection, timeout, unreadable body", () =>
    Effect.gen(function* () {
      const tags = ["ServerError", "OverloadedError", "ConnectionError", "TimeoutError", "ResponseParseError"] as const
      const { llm, states } = yield* scripted(
        tags.map((tag) => LlmMock.fail(tag)),
        { failureRatio: 1, minimumCalls: 5 }
      )
      yield* attempt(llm, 5)
      expect(states()).toEqual(["closed->open"])
    })
  )

  it.effect("the window starts empty when the circuit closes again", () =>
    Effect.gen(function* () {
      const { llm, states } = yield* scripted([...failures(4), LlmMock.reply("probe ok"), ...failures(4)], {
        minimumCalls: 4,
        window: Duration.minutes(5),
        cooldown: Duration.seconds(30)
      })
      yield* attempt(llm, 4)
      yield* TestClock.adjust(Duration.seconds(30))
      expect((yield* llm.complete(request)).content).toBe("probe ok")
      expect(states()).toEqual(["closed->open", "open->half-open", "half-open->closed"])
      // The four failures before the circuit opened are still within 5 minutes, but no longer count.
      yield* attempt(llm, 3)
      expect(states()).toHaveLength(3)
      yield* attempt(llm)
      expect(states()).toHaveLength(4)
    })
  )

  it.effect("calls admitted before the circuit opened change nothing when they end after it closed again", () =>
    Effect.gen(function* () {
      const slow = LlmMock.fail("ServerError", { latency: Duration.seconds(1) })
      const { llm, states } = yield* scripted([slow, slow, ...failures(2), LlmMock.reply("probe ok")], {
        failureRatio: 1,
        minimumCalls: 2,
        cooldown: Duration.millis(500)
      })
      const inFlight = yield* Effect.all([Effect.fork(llm.complete(request)), Effect.fork(llm.complete(request))])
      yield* TestClock.adjust(Duration.millis(1))
      yield* attempt(llm, 2) // opens while the slow two are in flight
      yield* TestClock.adjust(Duration.millis(500))
      expect((yield* llm.complete(request)).content).toBe("probe ok")
      expect(states()).toEqual(["closed->open", "open->half-open", "half-open->closed"])
      yield* TestClock.adjust(Duration.seconds(1))
      for (const fiber of inFlight) expect(errorOf(yield* Fiber.await(fiber))?._tag).toBe("ServerError")
      // Counted in the new window, their two failures would have opened it again at 2/2.
      expect(states()).toEqual(["closed->open", "open->half-open", "half-open->closed"])
    })
  )
})

describe("CircuitBreaker: consecutive failures", () => {
  const consecutive: CircuitBreaker.Options = { mode: "consecutive" }

  it.effect("opens after 5 consecutive retryable failures and then fails fast without calling the provider", () =>
    Effect.gen(function* () {
      const { llm, provider, states } = yield* scripted([...failures(5), LlmMock.reply("never reached")], consecutive)
      yield* attempt(llm, 4)
      expect(states()).toEqual([])
      yield* attempt(llm)
      expect(states()).toEqual(["closed->open"])
      yield* TestClock.adjust(Duration.seconds(10))
      const error = errorOf(yield* Effect.exit(llm.complete(request)))
      expect(error).toMatchObject({ _tag: "CircuitOpenError", local: true })
      expect(error?._tag === "CircuitOpenError" && Duration.toMillis(error.retryAfter!)).toBe(20_000)
      expect((yield* provider.calls).length).toBe(5)
    })
  )

  it.effect("a success or a provider's refusal resets the count", () =>
    Effect.gen(function* () {
      const { llm, states } = yield* scripted(
        [...failures(4), LlmMock.reply("ok"), ...failures(4), ...failures(1, "RateLimitError"), ...failures(4)],
        consecutive
      )
      yield* attempt(llm, 14)
      expect(states()).toEqual([])
    })
  )

  it.effect("failureThreshold sets the run length, and refusals alone never trip it", () =>
    Effect.gen(function* () {
      const { llm, states } = yield* scripted(
        [...failures(6, "InvalidRequestError"), ...failures(6, "AuthenticationError"), ...failures(2)],
        { mode: "consecutive", failureThreshold: 2 }
      )
      yield* attempt(llm, 13)
      expect(states()).toEqual([])
      yield* attempt(llm)
      expect(states()).toEqual(["closed->open"])
    })
  )
})

describe("CircuitBreaker: half-open", () => {
  /** A circuit opened at t=0 by two failures, with a 30 s cooldown. */
  const opened = (script: ReadonlyArray<LlmMock.Step>) =>
    Effect.gen(function* () {
      const setup = yield* scripted([...failures(2), ...script], { mode: "consecutive", failureThreshold: 2, cooldown: Duration.seconds(30) })
      yield* attempt(setup.llm, 2)
      return setup
    })

  it.effect("after the cooldown lets exactly one probe through while others fail fast, and closes on its success", () =>
    Effect.gen(function* () {
      const { llm, provider, states } = yield* opened([LlmMock.reply("probe ok", { latency: Duration.seconds(2) }), LlmMock.reply("after")])
      yield* TestClock.adjust(Duration.millis(29_999))
      expect(errorOf(yield* Effect.exit(llm.complete(request)))?._tag).toBe("CircuitOpenError")
      yield* TestClock.adjust(Duration.millis(1))
      const probe = yield* Effect.fork(llm.complete(request))
      yield* TestClock.adjust(Duration.millis(1))
      for (const exit of yield* attempt(llm, 3)) {
        const error = errorOf(exit)
        expect(error).toMatchObject({ _tag: "CircuitOpenError", local: true })
        // How long the probe takes is not known.
        expect(error?._tag === "CircuitOpenError" && error.retryAfter).toBeUndefined()
      }
      yield* TestClock.adjust(Duration.seconds(2))
      expect((yield* Fiber.join(probe)).content).toBe("probe ok")
      expect((yield* llm.complete(request)).content).toBe("after")
      expect((yield* provider.calls).length).toBe(4)
      expect(states()).toEqual(["closed->open", "open->half-open", "half-open->closed"])
    })
  )

  it.effect("re-opens on a failed probe for another full cooldown", () =>
    Effect.gen(function* () {
      const { llm, states } = yield* opened([LlmMock.fail("OverloadedError"), LlmMock.reply("recovered")])
      yield* TestClock.adjust(Duration.seconds(30))
      expect(errorOf(yield* Effect.exit(llm.complete(request)))?._tag).toBe("OverloadedError")
      const error = errorOf(yield* Effect.exit(llm.complete(request)))
      expect(error?._tag === "CircuitOpenError" && Duration.toMillis(error.retryAfter!)).toBe(30_000)
      yield* TestClock.adjust(Duration.seconds(30))
      expect((yield* llm.complete(request)).content).toBe("recovered")
      expect(states()).toEqual(["closed->open", "open->half-open", "half-open->open", "open->half-open", "half-open->closed"])
    })
  )

  it.effect("a probe the provider refuses (bad request) closes the circuit: the provider is up", () =>
    Effect.gen(function* () {
      const { llm, states } = yield* opened([LlmMock.fail("InvalidRequestError")])
      yield* TestClock.adjust(Duration.seconds(30))
      yield* attempt(llm)
      expect(states().at(-1)).toBe("half-open->closed")
    })
  )

  it.effect("an interrupted probe lets the next caller probe", () =>
    Effect.gen(function* () {
      const { llm, states } = yield* opened([LlmMock.hang(), LlmMock.reply("second probe")])
      yield* TestClock.adjust(Duration.seconds(30))
      const probe = yield* Effect.fork(llm.complete(request))
      yield* TestClock.adjust(Duration.millis(1))
      yield* Fiber.interrupt(probe)
      expect((yield* llm.complete(request)).content).toBe("second probe")
      expect(states()).toEqual(["closed->open", "open->half-open", "half-open->closed"])
    })
  )
})

describe("CircuitBreaker: streams", () => {
  it.effect("a stream is admitted when it starts and fails fast while the circuit is open", () =>
    Effect.gen(function* () {
      const { llm, provider } = yield* scripted([...failures(2), LlmMock.reply("ok")], { failureRatio: 1, minimumCalls: 2 })
      const stream = llm.stream(request)
      yield* Effect.exit(Stream.runDrain(stream))
      yield* Effect.exit(Stream.runDrain(stream))
      expect(errorOf(yield* Effect.exit(Stream.runDrain(stream)))?._tag).toBe("CircuitOpenError")
      expect((yield* provider.calls).map((c) => c.method)).toEqual(["stream", "stream"])
    })
  )

  it.effect("a stream that fails after some parts counts as a failure", () =>
    Effect.gen(function* () {
      const { llm, states } = yield* scripted(
        [LlmMock.chunks(["Half", " an"], { error: "ConnectionError" }), LlmMock.chunks(["Half"], { error: "ConnectionError" })],
        { failureRatio: 1, minimumCalls: 2 }
      )
      yield* Effect.exit(Stream.runDrain(llm.stream(request)))
      yield* Effect.exit(Stream.runDrain(llm.stream(request)))
      expect(states()).toEqual(["closed->open"])
    })
  )

  it.effect("a consumer that stops early, an interruption and a failure downstream record nothing", () =>
    Effect.gen(function* () {
      const { llm, states } = yield* scripted(
        [LlmMock.chunks(["one", " two"]), LlmMock.hang(), LlmMock.chunks(["one", " two"]), ...failures(2)],
        { failureRatio: 1, minimumCalls: 2 }
      )
      yield* Stream.runDrain(llm.stream(request).pipe(Stream.take(1)))
      const hanging = yield* Effect.fork(Stream.runDrain(llm.stream(request)))
      yield* TestClock.adjust(Duration.millis(1))
      yield* Fiber.interrupt(hanging)
      const downstream = llm.stream(request).pipe(Stream.mapEffect(() => Effect.fail(LlmMock.error("ServerError", { provider: "openai" }))))
      yield* Effect.exit(Stream.runDrain(downstream))
      // Counted as healthy, these would keep the ratio below 1; counted as failures, the first
      // provider failure would already be the second failure of two.
      yield* attempt(llm)
      expect(states()).toEqual([])
      yield* attempt(llm)
      expect(states()).toEqual(["closed->open"])
    })
  )
})

describe("CircuitBreaker: the error-rate promise", () => {
  /** A provider named `openai` failing a share of calls at random (seeded), each after a random latency. */
  const flaky = (failing: number, seed: number, latency: { readonly min: number; readonly max: number }) => {
    const random = seeded(seed)
    let failed = 0
    const step = LlmMock.respond(() => {
      const ms = latency.min + Math.floor(random() * (latency.max - latency.min))
      if (random() >= failing) return LlmMock.reply("ok", { latency: Duration.millis(ms) })
      failed += 1
      return LlmMock.fail("ServerError", { latency: Duration.millis(ms) })
    })
    return Effect.map(LlmMock.make([], { provider: "openai", fallback: step }), (provider) => ({ provider, failed: () => failed }))
  }

  it.effect("a provider failing 15% of calls, 30 concurrent callers, 300 calls: no CircuitOpenError at all", () =>
    Effect.gen(function* () {
      const { failed, provider } = yield* flaky(0.15, 15, { min: 100, max: 500 })
      const { changes, llm } = yield* guarded([provider])
      const run = yield* Effect.fork(Effect.forEach(Array.from({ length: 300 }), () => Effect.exit(llm.complete(request)), { concurrency: 30 }))
      yield* TestClock.adjust(Duration.minutes(1))
      const exits = yield* Fiber.join(run)
      const tags = exits.map((exit) => errorOf(exit)?._tag)
      expect(tags.filter((tag) => tag === "CircuitOpenError")).toEqual([])
      expect(changes).toEqual([])
      expect((yield* provider.calls).length).toBe(300)
      // The provider did fail its share: every failure reached the caller as the provider's own.
      expect(failed()).toBeGreaterThan(30)
      expect(tags.filter((tag) => tag === "ServerError")).toHaveLength(failed())
    })
  )

  it.effect("a provider failing 20% of calls for 60 s under 30 concurrent callers: the circuit is never open", () =>
    Effect.gen(function* () {
      const { failed, provider } = yield* flaky(0.2, 20, { min: 1500, max: 4500 })
      const { changes, llm } = yield* guarded([provider])
      const caller = Effect.gen(function* () {
        const tags: Array<string | undefined> = []
        while ((yield* Clock.currentTimeMillis) < 60_000) tags.push(errorOf(yield* Effect.exit(llm.complete(request)))?._tag)
        return tags
      })
      const run = yield* Effect.fork(Effect.all(Array.from({ length: 30 }, () => caller), { concurrency: "unbounded" }))
      yield* TestClock.adjust(Duration.seconds(65))
      const tags = (yield* Fiber.join(run)).flat()
      expect(changes).toEqual([])
      expect(tags.filter((tag) => tag === "CircuitOpenError")).toEqual([])
      expect(tags.length).toBeGreaterThan(500)
      expect(failed()).toBeGreaterThan(tags.length * 0.15)
    })
  )

  it.effect("one stall failing all 30 calls in flight together leaves it closed, where counting consecutive failures opens it", () =>
    Effect.gen(function* () {
      const stalled = (mode: CircuitBreaker.Mode) =>
        Effect.gen(function* () {
          let arrived = 0
          // 30 callers, 1 s a call: each second's wave of 30 arrives together; the fourth one stalls.
          const step = LlmMock.respond(() => {
            const wave = Math.floor(arrived++ / 30)
            return wave === 3
              ? LlmMock.fail("TimeoutError", { phase: "attempt", latency: Duration.seconds(1) })
              : LlmMock.reply("ok", { latency: Duration.seconds(1) })
          })
          const provider = yield* LlmMock.make([], { provider: "openai", fallback: step })
          const { changes, llm } = yield* guarded([provider], { mode })
          const run = yield* Effect.fork(Effect.forEach(Array.from({ length: 180 }), () => Effect.exit(llm.complete(request)), { concurrency: 30 }))
          yield* TestClock.adjust(Duration.seconds(7))
          const tags = (yield* Fiber.join(run)).map((exit) => errorOf(exit)?._tag)
          return { changes, open: tags.filter((tag) => tag === "CircuitOpenError").length }
        })
      const ratio = yield* stalled("ratio")
      expect(ratio).toEqual({ changes: [], open: 0 })
      const start = yield* Clock.currentTimeMillis
      const consecutive = yield* stalled("consecutive")
      // Opened by the stalled wave, it turns away nearly all of the 60 calls left, on a provider that answers them.
      expect(consecutive.changes).toEqual([`openai:closed->open@${start + 4000}`])
      expect(consecutive.open).toBeGreaterThan(50)
    })
  )

  it.effect("a provider that is down: opens within the first wave, fails fast after, and closes once a probe succeeds", () =>
    Effect.gen(function* () {
      let down = true
      let arrived = 0
      // Callers' failures arrive 10 ms apart, the 20th at t=290ms.
      const step = LlmMock.respond(() =>
        down
          ? LlmMock.fail("ConnectionError", { latency: Duration.millis(100 + 10 * (arrived++ % 30)) })
          : LlmMock.reply("back", { latency: Duration.millis(500) })
      )
      const provider = yield* LlmMock.make([], { provider: "openai", fallback: step })
      const { changes, llm } = yield* guarded([provider])
      const wave = () => Effect.fork(Effect.all(Array.from({ length: 30 }, () => Effect.exit(llm.complete(request))), { concurrency: 30 }))

      const first = yield* wave()
      yield* TestClock.adjust(Duration.seconds(1))
      const firstTags = (yield* Fiber.join(first)).map((exit) => errorOf(exit)?._tag)
      expect(changes).toEqual(["openai:closed->open@290"])
      // All thirty were in flight before it opened, so all thirty got the provider's own error.
      expect(firstTags).toEqual(Array.from({ length: 30 }, () => "ConnectionError"))
      expect((yield* provider.calls).length).toBe(30)

      const second = yield* wave()
      const secondTags = (yield* Fiber.join(second)).map((exit) => errorOf(exit)?._tag)
      expect(secondTags).toEqual(Array.from({ length: 30 }, () => "CircuitOpenError"))
      expect((yield* provider.calls).length).toBe(30)

      down = false
      yield* TestClock.adjust(Duration.seconds(30))
      const probe = yield* Effect.fork(llm.complete(request))
      yield* TestClock.adjust(Duration.millis(1))
      expect(errorOf(yield* Effect.exit(llm.complete(request)))?._tag).toBe("CircuitOpenError")
      yield* TestClock.adjust(Duration.millis(500))
      expect((yield* Fiber.join(probe)).content).toBe("back")
      expect(changes.slice(1)).toEqual(["openai:open->half-open@31000", "openai:half-open->closed@31500"])
      const third = yield* wave()
      yield* TestClock.adjust(Duration.seconds(1))
      expect((yield* Fiber.join(third)).every(Exit.isSuccess)).toBe(true)
      expect((yield* provider.calls).length).toBe(61)
    })
  )

  it.effect("whole answers and streams open it alike, and a closed circuit of one provider keeps another's calls going", () =>
    Effect.gen(function* () {
      const openai = yield* LlmMock.make(failures(20), { provider: "openai" })
      const anthropic = yield* LlmMock.make(replies(2), { provider: "anthropic" })
      const { llm, changes } = yield* guarded([openai, anthropic])
      for (let i = 0; i < 10; i++) {
        yield* Effect.exit(llm.complete(request))
        yield* Effect.exit(Stream.runDrain(llm.stream(request)))
      }
      expect(changes).toEqual(["openai:closed->open@0"])
      expect(errorOf(yield* Effect.exit(Stream.runDrain(llm.stream(request))))?._tag).toBe("CircuitOpenError")
      expect((yield* llm.complete({ ...request, provider: "anthropic" })).content).toBe("ok")
      expect(yield* Stream.runCollect(llm.stream({ ...request, provider: "anthropic" }))).toHaveLength(2)
    })
  )
})

describe("CircuitBreaker: reporting", () => {
  it.effect("logs a warning naming the provider when a circuit opens, and info when it half-opens and closes", () =>
    Effect.gen(function* () {
      const lines: Array<{ level: string; message: string; provider: unknown; to: unknown }> = []
      const capture = Logger.replace(
        Logger.defaultLogger,
        Logger.make(({ annotations, logLevel, message }) => {
          const fields = Object.fromEntries(HashMap.toEntries(annotations))
          const text = Array.isArray(message) ? message.join(" ") : String(message)
          lines.push({ level: logLevel.label, message: text, provider: fields.provider, to: fields.to })
        })
      )
      const { llm } = yield* scripted([...failures(20), LlmMock.reply("ok")])
      yield* attempt(llm, 20).pipe(Effect.provide(capture))
      yield* TestClock.adjust(Duration.seconds(30))
      yield* attempt(llm).pipe(Effect.provide(capture), Logger.withMinimumLogLevel(LogLevel.Info))
      expect(lines.map((l) => [l.level, l.provider, l.to])).toEqual([
        ["WARN", "openai", "open"],
        ["INFO", "openai", "half-open"],
        ["INFO", "openai", "closed"]
      ])
      expect(lines[0]?.message).toBe(
        "Circuit for openai opened: 20 of the last 20 calls within 10s failed; calls fail fast for 30s"
      )
    })
  )
})

describe("CircuitBreaker: layers and config", () => {
  const withEnv = (entries: ReadonlyArray<readonly [string, string]>) =>
    Effect.withConfigProvider(ConfigProvider.fromMap(new Map(entries)))

  it.effect("config defaults to the failure ratio: 0.5 of at least 20 calls within 10 s, a 30 s cooldown", () =>
    Effect.gen(function* () {
      const options = yield* CircuitBreaker.config.pipe(withEnv([]))
      expect(options).toEqual({
        mode: "ratio",
        failureRatio: 0.5,
        minimumCalls: 20,
        window: Duration.millis(10_000),
        cooldown: Duration.millis(30_000)
      })
    })
  )

  it.effect("config reads the variables of the mode it names", () =>
    Effect.gen(function* () {
      const options = yield* CircuitBreaker.config.pipe(
        withEnv([
          ["LLM_CIRCUIT_MODE", "consecutive"],
          ["LLM_CIRCUIT_FAILURE_RATIO", "0.25"],
          ["LLM_CIRCUIT_MINIMUM_CALLS", "50"],
          ["LLM_CIRCUIT_WINDOW_MS", "60000"],
          ["LLM_CIRCUIT_FAILURE_THRESHOLD", "3"],
          ["LLM_CIRCUIT_COOLDOWN_MS", "5000"]
        ])
      )
      expect(options).toEqual({ mode: "consecutive", failureThreshold: 3, cooldown: Duration.millis(5000) })
      const ratio = yield* CircuitBreaker.config.pipe(
        withEnv([
          ["LLM_CIRCUIT_FAILURE_RATIO", "0.25"],
          ["LLM_CIRCUIT_MINIMUM_CALLS", "50"],
          ["LLM_CIRCUIT_WINDOW_MS", "60000"]
        ])
      )
      expect(ratio).toEqual({
        mode: "ratio",
        failureRatio: 0.25,
        minimumCalls: 50,
        window: Duration.millis(60_000),
        cooldown: Duration.millis(30_000)
      })
    })
  )

  const bad: ReadonlyArray<readonly [string, string]> = [
    ["LLM_CIRCUIT_MODE", "sometimes"],
    ["LLM_CIRCUIT_FAILURE_RATIO", "0"],
    ["LLM_CIRCUIT_FAILURE_RATIO", "1.5"],
    ["LLM_CIRCUIT_FAILURE_RATIO", "half"],
    ["LLM_CIRCUIT_MINIMUM_CALLS", "0"],
    ["LLM_CIRCUIT_MINIMUM_CALLS", "100001"],
    ["LLM_CIRCUIT_MINIMUM_CALLS", "2.5"],
    ["LLM_CIRCUIT_WINDOW_MS", "-1"],
    ["LLM_CIRCUIT_FAILURE_THRESHOLD", "0"],
    ["LLM_CIRCUIT_COOLDOWN_MS", "soon"]
  ]
  for (const [name, value] of bad) {
    it.effect(`${name}=${value} is a ConfigError naming the variable`, () =>
      Effect.gen(function* () {
        const error = yield* Effect.flip(CircuitBreaker.config.pipe(withEnv([[name, value]])))
        expect(String(error)).toContain(name)
      })
    )
  }

  it.effect("layer guards the Llm service in context", () =>
    Effect.gen(function* () {
      const exits = yield* Effect.all(Array.from({ length: 3 }, () => Effect.exit(Llm.complete(request))))
      expect(exits.map((e) => errorOf(e)?._tag)).toEqual(["ServerError", "ServerError", "CircuitOpenError"])
    }).pipe(Effect.provide(CircuitBreaker.layer({ failureRatio: 1, minimumCalls: 2 }).pipe(Layer.provide(LlmMock.layer(failures(3))))))
  )

  it.effect("layerConfig reads its options from the environment", () =>
    Effect.gen(function* () {
      const exits = yield* Effect.all(Array.from({ length: 4 }, () => Effect.exit(Llm.complete(request))))
      expect(exits.map((e) => errorOf(e)?._tag)).toEqual([undefined, "ServerError", "ServerError", "CircuitOpenError"])
    }).pipe(
      Effect.provide(CircuitBreaker.layerConfig.pipe(Layer.provide(LlmMock.layer([LlmMock.reply("ok"), ...failures(3)])))),
      withEnv([["LLM_CIRCUIT_MODE", "consecutive"], ["LLM_CIRCUIT_FAILURE_THRESHOLD", "2"]])
    )
  )

  it.effect("out-of-range options are brought into range instead of failing", () =>
    Effect.gen(function* () {
      const { llm, states } = yield* scripted(failures(2), { failureRatio: 7, minimumCalls: -3, window: "soon" as Duration.DurationInput })
      yield* attempt(llm)
      expect(states()).toEqual(["closed->open"]) // ratio 1 of at least 1 call
    })
  )
})
