import { RateLimiter } from "@effect/experimental"
import { describe, expect, it } from "@effect/vitest"
import {
  Cause,
  Chunk,
  Clock,
  ConfigProvider,
  Deferred,
  Duration,
  Effect,
  Either,
  Exit,
  Fiber,
  FiberId,
  Layer,
  Option,
  Stream,
  TestClock
} from "effect"
import * as Llm from "../src/Llm.js"
import { type LlmError, RateLimitError } from "../src/LlmError.js"
import * as LlmMock from "../src/LlmMock.js"
import type { LlmStreamEvent, Usage } from "../src/LlmRequest.js"
import * as RateLimit from "../src/RateLimit.js"
import * as RateLimitStore from "../src/RateLimitStore.js"
import * as Retry from "../src/Retry.js"

const request = (provider = "openai", extra: { maxTokens?: number; content?: string } = {}) => ({
  provider,
  messages: [{ role: "user" as const, content: extra.content ?? "hello" }],
  ...(extra.maxTokens === undefined ? {} : { maxTokens: extra.maxTokens })
})

const finish = (provider: string, n: number, usage: Usage): LlmStreamEvent => ({
  _tag: "Finish",
  id: `r${n}`,
  provider,
  model: "m",
  finishReason: "stop",
  usage
})

/**
 * Providers that record when each call reached them (virtual time), which caller it was (the
 * prompt), and how many ran at once. `answer(n)` decides call n (0-based): an error, or the usage
 * to report. A stream sends one `TextDelta` at once and its `Finish` (or error) after `latency`.
 */
const fakeProviders = (
  options: {
    latency?: Duration.DurationInput
    /** Answers after this instead of `latency`, e.g. a shared clock tick. */
    wait?: Effect.Effect<void>
    answer?: (n: number) => LlmError | Usage | undefined
  } = {}
) => {
  const starts: Array<number> = []
  const callers: Array<string> = []
  let inFlight = 0
  let maxInFlight = 0
  const latency = options.wait ?? (options.latency === undefined ? Effect.void : Effect.sleep(options.latency))
  const begin = (content: string) =>
    Effect.flatMap(Clock.currentTimeMillis, (now) =>
      Effect.sync(() => {
        starts.push(now)
        callers.push(content)
        inFlight++
        if (inFlight > maxInFlight) maxInFlight = inFlight
        return starts.length - 1
      })
    )
  const end = Effect.sync(() => {
    inFlight--
  })
  const provider = (name: string): Llm.Provider => ({
    name,
    model: "m",
    call: (r) =>
      Llm.fromStream(Stream.unwrap(
        Effect.map(begin(String(r.messages[0]?.content ?? "")), (n) => {
          const result = options.answer?.(n) ?? { inputTokens: 3, outputTokens: 2, totalTokens: 5 }
          const last: Effect.Effect<LlmStreamEvent, LlmError> =
            "_tag" in result ? Effect.zipRight(latency, Effect.fail(result)) : Effect.as(latency, finish(name, n, result))
          return Stream.concat(Stream.make<[LlmStreamEvent]>({ _tag: "TextDelta", text: "ok" }), Stream.fromEffect(last)).pipe(
            Stream.ensuring(end)
          )
        })
      ))
  })
  return { provider, starts, callers, inFlight: () => inFlight, maxInFlight: () => maxInFlight }
}

type Fake = ReturnType<typeof fakeProviders>

/** The routed service over `openai` and `anthropic`, limited by `RateLimit.make(options)` (and `outer` policies outside it). */
const limited = (options: RateLimit.Options, fake: Fake, outer: ReadonlyArray<Llm.Policy> = []) =>
  Effect.map(RateLimit.make(options), (limit) =>
    Llm.router({ providers: [fake.provider("openai"), fake.provider("anthropic")], policies: [...outer, limit] })
  )

const failureOf = <A>(exit: Exit.Exit<A, LlmError>): LlmError | undefined =>
  Exit.isFailure(exit) ? Option.getOrUndefined(Cause.failureOption(exit.cause)) : undefined

/**
 * Waits that end on a shared clock tick: every call begun at the same instant answers `ms` later
 * through one sleep, so thousands of calls cost `TestClock` one step per instant, not one each.
 */
const answerAfter = (ms: number): Effect.Effect<void> => {
  const due = new Map<number, Deferred.Deferred<void>>()
  return Effect.clockWith((clock) =>
    Effect.suspend(() => {
      const at = clock.unsafeCurrentTimeMillis() + ms
      const existing = due.get(at)
      if (existing !== undefined) return Deferred.await(existing)
      const tick = Deferred.unsafeMake<void>(FiberId.none)
      due.set(at, tick)
      const ring = Effect.zipRight(
        Effect.sleep(Duration.millis(ms)),
        Effect.sync(() => {
          due.delete(at)
          Deferred.unsafeDone(tick, Exit.void)
        })
      )
      return Effect.zipRight(Effect.forkDaemon(ring), Deferred.await(tick))
    })
  )
}

const indices = (n: number) => Array.from({ length: n }, (_, i) => i)

/** `RateLimiter`'s memory store, and the library's (the same buckets, with pauses kept in the process). */
const stores = [
  ["RateLimiter.layerStoreMemory", RateLimiter.layerStoreMemory],
  ["RateLimitStore.layerMemory", RateLimitStore.layerMemory]
] as const

describe.each(stores)("on %s", (_name, store) => {
  describe("RateLimit: requests per minute", () => {
    it.effect("spaces requests as the limit says: a full bucket at once, then one per 60/rpm seconds", () =>
      Effect.gen(function* () {
        const fake = fakeProviders()
        const llm = yield* limited({ rpm: 6 }, fake)
        const fiber = yield* Effect.fork(Effect.all(indices(9).map(() => llm.complete(request())), { concurrency: "unbounded" }))
        yield* TestClock.adjust(Duration.minutes(1))
        yield* Fiber.join(fiber)
        expect(fake.starts).toEqual([0, 0, 0, 0, 0, 0, 10_000, 20_000, 30_000])
      }).pipe(Effect.provide(store))
    )

    it.effect("with burst: 1 spaces every request evenly from the first, at the same rate", () =>
      Effect.gen(function* () {
        const fake = fakeProviders()
        const llm = yield* limited({ rpm: 6, burst: 1, maxWait: Duration.minutes(2) }, fake)
        const fiber = yield* Effect.fork(Effect.all(indices(4).map(() => llm.complete(request())), { concurrency: "unbounded" }))
        yield* TestClock.adjust(Duration.minutes(1))
        yield* Fiber.join(fiber)
        expect(fake.starts).toEqual([0, 10_000, 20_000, 30_000])
      }).pipe(Effect.provide(store))
    )

    it.effect("limits streams as it limits whole answers", () =>
      Effect.gen(function* () {
        const fake = fakeProviders()
        const llm = yield* limited({ rpm: 2 }, fake)
        const fiber = yield* Effect.fork(
          Effect.all([Stream.runDrain(llm.stream(request())), llm.complete(request()), Stream.runDrain(llm.stream(request()))], {
            concurrency: "unbounded"
          })
        )
        yield* TestClock.adjust(Duration.seconds(30))
        yield* Fiber.join(fiber)
        expect(fake.starts).toEqual([0, 0, 30_000])
      }).pipe(Effect.provide(store))
    )

    it.effect("tells onWait how long each waiting call waits, and nothing for calls that go at once", () =>
      Effect.gen(function* () {
        const fake = fakeProviders()
        const waits: Array<readonly [string, number]> = []
        const llm = yield* limited(
          {
            rpm: 2,
            maxWait: Duration.minutes(2),
            onWait: (info) => Effect.sync(() => void waits.push([info.provider, Duration.toMillis(info.delay)]))
          },
          fake
        )
        const fiber = yield* Effect.fork(Effect.all(indices(4).map(() => llm.complete(request())), { concurrency: "unbounded" }))
        yield* TestClock.adjust(Duration.minutes(1))
        yield* Fiber.join(fiber)
        expect(waits).toEqual([
          ["openai", 30_000],
          ["openai", 60_000]
        ])
      }).pipe(Effect.provide(store))
    )

    it.effect("refuses at once with a local RateLimitError naming the limit when the wait would exceed maxWait, and gives the reservation back", () =>
      Effect.gen(function* () {
        const fake = fakeProviders()
        const llm = yield* limited({ rpm: 2, maxWait: Duration.seconds(40) }, fake)
        yield* llm.complete(request())
        yield* llm.complete(request())
        // The third would start at 30 s (fits), the fourth at 60 s (does not).
        const third = yield* Effect.fork(llm.complete(request()))
        const fourth = yield* Effect.fork(llm.complete(request()))
        const error = failureOf(yield* Fiber.await(fourth))
        expect(error).toBeInstanceOf(RateLimitError)
        expect(error).toMatchObject({ local: true, retryable: true, provider: "openai" })
        expect(error?._tag === "RateLimitError" && Duration.toMillis(error.retryAfter!)).toBe(60_000)
        expect(error?.message).toMatch(/^Local rate limit for openai \(requests per minute\): capacity returns in 1m, more than the 40s/)
        // The refused call's reservation was given back: at 30 s the next caller gets the 60 s
        // turn (30 s away, within maxWait); had it been kept, that turn would be 60 s away.
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
        const fake = fakeProviders()
        const llm = yield* limited({ rpm: 1, maxWait: Duration.minutes(2), providers: { anthropic: { rpm: 3 } } }, fake)
        const fiber = yield* Effect.fork(
          Effect.all(
            ["openai", "openai", "anthropic", "anthropic", "anthropic"].map((name) => llm.complete(request(name))),
            { concurrency: "unbounded" }
          )
        )
        yield* TestClock.adjust(Duration.minutes(2))
        yield* Fiber.join(fiber)
        expect([...fake.starts].sort((a, b) => a - b)).toEqual([0, 0, 0, 0, 60_000])
      }).pipe(Effect.provide(store))
    )

    it.effect("is not retried by Retry (the wait was already spent)", () =>
      Effect.gen(function* () {
        const fake = fakeProviders()
        const retry = yield* Retry.make()
        const llm = yield* limited({ rpm: 1, maxWait: Duration.seconds(1) }, fake, [retry])
        yield* llm.complete(request())
        const exit = yield* Effect.exit(llm.complete(request()))
        expect(failureOf(exit)).toMatchObject({ _tag: "RateLimitError", local: true })
        expect(fake.starts).toEqual([0])
      }).pipe(Effect.provide(store))
    )
  })

  describe("RateLimit: tokens per minute", () => {
    // "hello" + maxTokens 500: ceil(5 / 4) + 4 + 3 + 500 = 509 tokens charged before the call.
    const estimate = 509

    it.effect("charges the estimate before the call and refunds the difference to the real usage on the Finish", () =>
      Effect.gen(function* () {
        const fake = fakeProviders({ answer: () => ({ inputTokens: 60, outputTokens: 40, totalTokens: 100 }) })
        const llm = yield* limited({ tpm: 1000 }, fake)
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
        const fake = fakeProviders({ answer: () => ({ inputTokens: 100, outputTokens: 800, totalTokens: 900 }) })
        const llm = yield* limited({ tpm: 1000 }, fake)
        yield* llm.complete(request("openai", { maxTokens: 500 }))
        const second = yield* Effect.fork(llm.complete(request("openai", { maxTokens: 500 })))
        yield* TestClock.adjust(Duration.minutes(1))
        yield* Fiber.join(second)
        // 100 left after settling 900; the second needs 509: 409 tokens at 60 ms.
        expect(fake.starts).toEqual([0, 409 * 60])
      }).pipe(Effect.provide(store))
    )

    it.effect("settles a stream against the usage of its Finish", () =>
      Effect.gen(function* () {
        const fake = fakeProviders({ answer: () => ({ inputTokens: 60, outputTokens: 40, totalTokens: 100 }) })
        const llm = yield* limited({ tpm: 1000 }, fake)
        for (let i = 0; i < 5; i++) yield* Stream.runDrain(llm.stream(request("openai", { maxTokens: 500 })))
        const sixth = yield* Effect.fork(Stream.runDrain(llm.stream(request("openai", { maxTokens: 500 }))))
        yield* TestClock.adjust(Duration.seconds(10))
        yield* Fiber.join(sixth)
        expect(fake.starts).toEqual([0, 0, 0, 0, 0, 540])
      }).pipe(Effect.provide(store))
    )

    it.effect("keeps the whole charge of a call that fails", () =>
      Effect.gen(function* () {
        const down = LlmMock.error("ServerError", { provider: "openai" })
        const fake = fakeProviders({ answer: (n) => (n === 0 ? down : { inputTokens: 60, outputTokens: 40, totalTokens: 100 }) })
        const llm = yield* limited({ tpm: 1000 }, fake)
        yield* Effect.exit(llm.complete(request("openai", { maxTokens: 500 })))
        // 491 left after the failed call's 509: the next needs 509, 18 tokens at 60 ms.
        const second = yield* Effect.fork(llm.complete(request("openai", { maxTokens: 500 })))
        yield* TestClock.adjust(Duration.seconds(10))
        yield* Fiber.join(second)
        expect(fake.starts).toEqual([0, 18 * 60])
      }).pipe(Effect.provide(store))
    )

    it.effect("refuses a request larger than the whole budget at once, locally and for good, without calling the provider", () =>
      Effect.gen(function* () {
        const fake = fakeProviders()
        const llm = yield* limited({ tpm: 400 }, fake)
        const whole = failureOf(yield* Effect.exit(llm.complete(request("openai", { maxTokens: 500 }))))
        expect(whole).toMatchObject({ _tag: "RateLimitError", retryable: false, local: true })
        expect(whole?.message).toMatch(/Local rate limit for openai \(tokens per minute\): the request needs about 509 tokens, more than the whole budget of 400/)
        const streamed = failureOf(yield* Effect.exit(Stream.runDrain(llm.stream(request("openai", { maxTokens: 500 })))))
        expect(streamed).toMatchObject({ _tag: "RateLimitError", retryable: false, local: true })
        expect(fake.starts).toEqual([])
      }).pipe(Effect.provide(store))
    )

    it.effect("charges a default output budget when the request sets no maxTokens", () =>
      Effect.gen(function* () {
        const fake = fakeProviders()
        const llm = yield* limited({ tpm: 1000, defaultOutputTokens: 2000 }, fake)
        const exit = yield* Effect.exit(llm.complete(request()))
        expect(failureOf(exit)).toMatchObject({ _tag: "RateLimitError", retryable: false, local: true })
      }).pipe(Effect.provide(store))
    )
  })

  describe("RateLimit: calls in flight", () => {
    it.effect("never runs more than maxConcurrency calls at once, even under 200 concurrent callers", () =>
      Effect.gen(function* () {
        const fake = fakeProviders({ latency: Duration.seconds(1) })
        const llm = yield* limited({ maxConcurrency: 5, maxWait: Duration.minutes(2) }, fake)
        const fiber = yield* Effect.fork(Effect.all(indices(200).map(() => llm.complete(request())), { concurrency: "unbounded" }))
        yield* TestClock.adjust(Duration.minutes(1))
        const responses = yield* Fiber.join(fiber)
        expect(responses).toHaveLength(200)
        expect(fake.maxInFlight()).toBe(5)
        expect(fake.starts.at(-1)).toBe(39_000)
      }).pipe(Effect.provide(store))
    )

    it.effect("admits waiters in the order they arrived", () =>
      Effect.gen(function* () {
        const fake = fakeProviders({ latency: Duration.seconds(1) })
        const llm = yield* limited({ maxConcurrency: 1 }, fake)
        const fibers: Array<Fiber.RuntimeFiber<unknown, LlmError>> = []
        for (const i of indices(6)) fibers.push(yield* Effect.fork(llm.complete(request("openai", { content: `caller ${i}` }))))
        yield* TestClock.adjust(Duration.seconds(6))
        yield* Fiber.joinAll(fibers)
        expect(fake.callers).toEqual(indices(6).map((i) => `caller ${i}`))
        expect(fake.starts).toEqual([0, 1000, 2000, 3000, 4000, 5000])
      }).pipe(Effect.provide(store))
    )

    it.effect("holds a slot until the stream ends", () =>
      Effect.gen(function* () {
        const fake = fakeProviders({ latency: Duration.seconds(1) })
        const llm = yield* limited({ maxConcurrency: 2 }, fake)
        const fiber = yield* Effect.fork(
          Effect.all(indices(6).map(() => Stream.runDrain(llm.stream(request()))), { concurrency: "unbounded" })
        )
        yield* TestClock.adjust(Duration.seconds(30))
        yield* Fiber.join(fiber)
        expect(fake.maxInFlight()).toBe(2)
        expect(fake.starts).toEqual([0, 0, 1000, 1000, 2000, 2000])
      }).pipe(Effect.provide(store))
    )

    it.effect("refuses with a local RateLimitError naming the concurrency limit when no slot frees within maxWait", () =>
      Effect.gen(function* () {
        const fake = fakeProviders({ latency: Duration.seconds(10) })
        const llm = yield* limited({ maxConcurrency: 1, maxWait: Duration.seconds(3) }, fake)
        const first = yield* Effect.fork(llm.complete(request()))
        const second = yield* Effect.fork(Effect.zip(Effect.exit(llm.complete(request())), Clock.currentTimeMillis))
        yield* TestClock.adjust(Duration.seconds(3))
        const [exit, at] = yield* Fiber.join(second)
        expect(at).toBe(3000)
        const error = failureOf(exit)
        expect(error).toMatchObject({ _tag: "RateLimitError", local: true, provider: "openai" })
        expect(error?.message).toBe("Local concurrency limit for openai: no free slot of 1 calls in flight within 3s (maxWait)")
        yield* TestClock.adjust(Duration.seconds(7))
        yield* Fiber.join(first)
        // The slot is free again, and the refused caller never took it.
        const third = yield* Effect.fork(llm.complete(request()))
        yield* TestClock.adjust(Duration.seconds(10))
        yield* Fiber.join(third)
        expect(fake.starts).toEqual([0, 10_000])
      }).pipe(Effect.provide(store))
    )

    it.effect("counts the slot wait against maxWait, so the rate wait gets only what is left", () =>
      Effect.gen(function* () {
        const fake = fakeProviders({ latency: Duration.seconds(20) })
        // One request every 30 s; a second caller waits 20 s for the slot, then its turn is 30 s
        // away: 50 s in all, more than maxWait, though each wait alone would fit.
        const llm = yield* limited({ maxConcurrency: 1, rpm: 2, burst: 1, maxWait: Duration.seconds(40) }, fake)
        yield* Effect.fork(llm.complete(request()))
        const second = yield* Effect.fork(Effect.zip(Effect.exit(llm.complete(request())), Clock.currentTimeMillis))
        yield* TestClock.adjust(Duration.minutes(1))
        const [exit, at] = yield* Fiber.join(second)
        expect(at).toBe(20_000)
        expect(failureOf(exit)?.message).toMatch(/^Local rate limit for openai \(requests per minute\): capacity returns in 30s, more than the 20s left of the 40s a call may wait \(maxWait\)$/)
        expect(fake.starts).toEqual([0])
      }).pipe(Effect.provide(store))
    )

    it.effect("gives back the slot of a caller interrupted during its call", () =>
      Effect.gen(function* () {
        const fake = fakeProviders({ latency: Duration.seconds(10) })
        const llm = yield* limited({ maxConcurrency: 1 }, fake)
        const first = yield* Effect.fork(llm.complete(request()))
        yield* TestClock.adjust(Duration.seconds(1))
        yield* Fiber.interrupt(first)
        const second = yield* Effect.fork(llm.complete(request()))
        yield* TestClock.adjust(Duration.seconds(10))
        yield* Fiber.join(second)
        expect(fake.starts).toEqual([0, 1000])
      }).pipe(Effect.provide(store))
    )

    it.effect("gives back the slot of a stream interrupted before its end, and of one whose reader stops early", () =>
      Effect.gen(function* () {
        const fake = fakeProviders({ latency: Duration.seconds(10) })
        const llm = yield* limited({ maxConcurrency: 1 }, fake)
        const first = yield* Effect.fork(Stream.runDrain(llm.stream(request())))
        yield* TestClock.adjust(Duration.seconds(1))
        yield* Fiber.interrupt(first)
        // Only the first part is read: the stream ends there and its slot is free.
        yield* Stream.runDrain(Stream.take(llm.stream(request()), 1))
        const third = yield* Effect.fork(llm.complete(request()))
        yield* TestClock.adjust(Duration.seconds(10))
        yield* Fiber.join(third)
        expect(fake.starts).toEqual([0, 1000, 1000])
        expect(fake.inFlight()).toBe(0)
      }).pipe(Effect.provide(store))
    )

    it.effect("lets a caller interrupted while waiting leave the queue without a slot, the next waiter taking its turn", () =>
      Effect.gen(function* () {
        const fake = fakeProviders({ latency: Duration.seconds(10) })
        const llm = yield* limited({ maxConcurrency: 1 }, fake)
        yield* Effect.fork(llm.complete(request("openai", { content: "first" })))
        const second = yield* Effect.fork(llm.complete(request("openai", { content: "second" })))
        const third = yield* Effect.fork(llm.complete(request("openai", { content: "third" })))
        yield* TestClock.adjust(Duration.seconds(1))
        yield* Fiber.interrupt(second)
        yield* TestClock.adjust(Duration.seconds(9))
        // At 10 s the first ends: the third takes the slot, the interrupted second never does.
        expect(fake.callers).toEqual(["first", "third"])
        expect(fake.starts).toEqual([0, 10_000])
        yield* TestClock.adjust(Duration.seconds(10))
        yield* Fiber.join(third)
        // Nothing is held once all have ended: a new call starts at once.
        yield* Effect.fork(llm.complete(request("openai", { content: "fourth" })))
        yield* TestClock.adjust(Duration.millis(1))
        expect(fake.starts).toEqual([0, 10_000, 20_000])
      }).pipe(Effect.provide(store))
    )
  })

  describe("RateLimit: a provider's 429", () => {
    const tooMany = (retryAfter: Duration.DurationInput) =>
      new RateLimitError({ provider: "openai", message: "Too many requests", retryAfter: Duration.decode(retryAfter) })

    it.effect("pauses every caller of that provider until retryAfter has passed", () =>
      Effect.gen(function* () {
        const limited429 = tooMany(Duration.seconds(5))
        const fake = fakeProviders({ answer: (n) => (n === 0 ? limited429 : undefined) })
        const llm = yield* limited({}, fake)
        const first = yield* Effect.exit(llm.complete(request()))
        expect(failureOf(first)).toBe(limited429)
        const others = yield* Effect.fork(Effect.all(indices(10).map(() => llm.complete(request())), { concurrency: "unbounded" }))
        const other = yield* Effect.fork(llm.complete(request("anthropic")))
        yield* TestClock.adjust(Duration.millis(4999))
        // Only the first call and the other provider's call have reached a provider.
        expect(fake.starts).toEqual([0, 0])
        yield* TestClock.adjust(Duration.millis(1))
        yield* Fiber.join(others)
        yield* Fiber.join(other)
        expect(fake.starts.slice(2)).toEqual(indices(10).map(() => 5000))
      }).pipe(Effect.provide(store))
    )

    it.effect("pauses the provider on a stream's 429 before the caller sees the error", () =>
      Effect.gen(function* () {
        const fake = fakeProviders({ answer: (n) => (n === 0 ? tooMany(Duration.seconds(5)) : undefined) })
        const llm = yield* limited({}, fake)
        // The caller calls again as soon as the stream fails: that call waits for the pause.
        const fiber = yield* Effect.fork(Stream.runDrain(llm.stream(request())).pipe(Effect.catchAll(() => llm.complete(request()))))
        yield* TestClock.adjust(Duration.millis(4999))
        expect(fake.starts).toEqual([0])
        yield* TestClock.adjust(Duration.millis(1))
        yield* Fiber.join(fiber)
        expect(fake.starts).toEqual([0, 5000])
      }).pipe(Effect.provide(store))
    )

    it.effect("refuses at once, naming the pause, when the pause is longer than maxWait", () =>
      Effect.gen(function* () {
        const fake = fakeProviders({ answer: (n) => (n === 0 ? tooMany(Duration.minutes(2)) : undefined) })
        const llm = yield* limited({ maxWait: Duration.seconds(30) }, fake)
        yield* Effect.exit(llm.complete(request()))
        const error = failureOf(yield* Effect.exit(Stream.runDrain(llm.stream(request()))))
        expect(error).toMatchObject({ _tag: "RateLimitError", local: true })
        expect(error?.message).toMatch(/^Local rate limit for openai \(pause after the provider's 429\): capacity returns in 1m/)
        expect(fake.starts).toEqual([0])
      }).pipe(Effect.provide(store))
    )

    it.effect("pauses for at most maxRetryAfter (60 s by default), however long the provider asks", () =>
      Effect.gen(function* () {
        const fake = fakeProviders({ answer: (n) => (n === 0 ? tooMany(Duration.millis(1e9)) : undefined) })
        const llm = yield* limited({ maxWait: Duration.minutes(5) }, fake)
        yield* Effect.exit(llm.complete(request()))
        const next = yield* Effect.fork(llm.complete(request()))
        yield* TestClock.adjust(Duration.seconds(60))
        yield* Fiber.join(next)
        expect(fake.starts).toEqual([0, 60_000])
      }).pipe(Effect.provide(store))
    )

    it.effect("pauses for at most the maxRetryAfter given, even for an infinite retryAfter", () =>
      Effect.gen(function* () {
        const fake = fakeProviders({ answer: (n) => (n === 0 ? tooMany(Duration.infinity) : undefined) })
        const llm = yield* limited({ maxWait: Duration.minutes(5), maxRetryAfter: Duration.seconds(5) }, fake)
        yield* Effect.exit(llm.complete(request()))
        const next = yield* Effect.fork(llm.complete(request()))
        yield* TestClock.adjust(Duration.seconds(5))
        yield* Fiber.join(next)
        expect(fake.starts).toEqual([0, 5000])
      }).pipe(Effect.provide(store))
    )
  })

  describe("RateLimit: options out of range", () => {
    it.effect("treats a limit that is not a positive number as off", () =>
      Effect.gen(function* () {
        const fake = fakeProviders({ latency: Duration.seconds(1) })
        const llm = yield* limited({ rpm: 0, tpm: Number.NaN, maxConcurrency: -1, providers: { openai: { burst: Infinity } } }, fake)
        const fiber = yield* Effect.fork(Effect.all(indices(20).map(() => llm.complete(request())), { concurrency: "unbounded" }))
        yield* TestClock.adjust(Duration.seconds(1))
        yield* Fiber.join(fiber)
        expect(fake.starts).toEqual(indices(20).map(() => 0))
      }).pipe(Effect.provide(store))
    )

    it.effect("holds an infinite maxWait to what a timer holds instead of failing", () =>
      Effect.gen(function* () {
        const fake = fakeProviders()
        const llm = yield* limited({ rpm: 1, maxWait: Duration.infinity, maxRetryAfter: Duration.infinity }, fake)
        yield* llm.complete(request())
        const second = yield* Effect.fork(llm.complete(request()))
        yield* TestClock.adjust(Duration.minutes(1))
        yield* Fiber.join(second)
        expect(fake.starts).toEqual([0, 60_000])
      }).pipe(Effect.provide(store))
    )
  })

  describe("RateLimit: layers and config", () => {
    const env = (entries: ReadonlyArray<readonly [string, string]>) => ConfigProvider.fromMap(new Map(entries))

    it.effect("layerConfig limits the Llm service in context", () =>
      Effect.gen(function* () {
        const fiber = yield* Effect.fork(
          Effect.all([Llm.complete(request()), Llm.complete(request())], { concurrency: "unbounded" }).pipe(
            Effect.zipRight(Clock.currentTimeMillis),
            Effect.provide(RateLimit.layerConfig.pipe(Layer.provide(LlmMock.layerEcho()), Layer.provide(store))),
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
        expect(Chunk.toReadonlyArray(events).map((event) => event._tag)).toEqual(["TextDelta", "TextDelta", "TextDelta", "Finish"])
      }).pipe(
        Effect.provide(
          RateLimit.layer({ rpm: 1000, tpm: 1_000_000, maxConcurrency: 10 }).pipe(Layer.provide(LlmMock.layerEcho()), Layer.provide(store))
        )
      )
    )
  })

  describe("RateLimit: shared stores", () => {
    /** A memory store that records the keys it is asked for. */
    const recordingStore = Effect.map(Effect.provide(RateLimiter.RateLimiterStore, RateLimiter.layerStoreMemory), (memory) => {
      const keys = new Set<string>()
      const recording: typeof memory = {
        fixedWindow: (o) => memory.fixedWindow(o),
        tokenBucket: (o) => {
          keys.add(o.key)
          return memory.tokenBucket(o)
        }
      }
      return { keys, store: recording }
    })

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
      return { announced, pauses, hear: (key: string, ms: number) => listeners.get(key)?.forEach((listener) => listener(ms)) }
    }

    it.effect("puts each provider's key namespace in its store keys, so two keys never share a budget", () =>
      Effect.gen(function* () {
        const { keys, store: recording } = yield* recordingStore
        const fake = fakeProviders()
        const withKey = (namespace: string) =>
          limited({ rpm: 1, tpm: 10_000, keyNamespaces: { openai: namespace } }, fake).pipe(
            Effect.provideService(RateLimiter.RateLimiterStore, recording)
          )
        const first = yield* withKey("aaaa")
        const second = yield* withKey("bbbb")
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
        const seen = fakeProviders({ answer: (n) => (n === 0 ? limited429 : undefined) })
        const other = fakeProviders()
        const withBoard = (fake: Fake) =>
          limited({ keyNamespaces: { openai: "fp" } }, fake).pipe(Effect.provideService(RateLimitStore.SharedPauses, shared.pauses), Effect.provide(store))
        const instanceA = yield* withBoard(seen)
        const instanceB = yield* withBoard(other)
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

    it.effect("announces at most maxRetryAfter, and holds a pause heard from elsewhere to it", () =>
      Effect.gen(function* () {
        const shared = board()
        const fake = fakeProviders({
          answer: (n) => (n === 0 ? new RateLimitError({ provider: "openai", message: "Too many requests", retryAfter: Duration.days(30) }) : undefined)
        })
        const llm = yield* limited({ maxWait: Duration.minutes(5), maxRetryAfter: Duration.seconds(10) }, fake).pipe(
          Effect.provideService(RateLimitStore.SharedPauses, shared.pauses),
          Effect.provide(store)
        )
        yield* Effect.exit(llm.complete(request()))
        expect(shared.announced).toEqual([["llm:openai:pause", 10_000]])
        yield* TestClock.adjust(Duration.seconds(10))
        // Another instance announces an absurd pause (or garbage): this one waits at most 10 s.
        shared.hear("llm:openai:pause", 1e12)
        shared.hear("llm:openai:pause", Number.NaN)
        const next = yield* Effect.fork(llm.complete(request()))
        yield* TestClock.adjust(Duration.seconds(10))
        yield* Fiber.join(next)
        expect(fake.starts).toEqual([0, 20_000])
      })
    )

    it.effect("does not announce a local refusal", () =>
      Effect.gen(function* () {
        const shared = board()
        const fake = fakeProviders()
        const llm = yield* limited({ rpm: 1, maxWait: Duration.seconds(1) }, fake).pipe(
          Effect.provideService(RateLimitStore.SharedPauses, shared.pauses),
          Effect.provide(store)
        )
        yield* llm.complete(request())
        const exit = yield* Effect.exit(llm.complete(request()))
        expect(failureOf(exit)).toMatchObject({ _tag: "RateLimitError", local: true })
        expect(shared.announced).toEqual([])
      })
    )
  })
})

describe("RateLimit: under load", () => {
  it.effect(
    "5,000 callers through maxConcurrency 10 against a 20 ms provider all finish in 10 s of virtual time, never more than 10 in flight, admitted in arrival order",
    () =>
      Effect.gen(function* () {
        const fake = fakeProviders({ wait: answerAfter(20) })
        const llm = yield* limited({ maxConcurrency: 10, maxWait: Duration.minutes(1) }, fake)
        const finished: Array<number> = []
        const fiber = yield* Effect.fork(
          Effect.forEach(
            indices(5000),
            (i) => Effect.zipRight(llm.complete(request("openai", { content: String(i) })), Effect.flatMap(Clock.currentTimeMillis, (now) => Effect.sync(() => finished.push(now)))),
            { concurrency: "unbounded", discard: true }
          )
        )
        yield* TestClock.adjust(Duration.millis(9999))
        expect(finished.length).toBe(4990)
        yield* TestClock.adjust(Duration.millis(1))
        yield* Fiber.join(fiber)
        expect(finished.length).toBe(5000)
        expect(Math.max(...finished)).toBe(10_000)
        expect(fake.maxInFlight()).toBe(10)
        expect(fake.callers).toEqual(indices(5000).map(String))
        // Ten at a time, each ten 20 ms after the last.
        expect(fake.starts).toEqual(indices(5000).map((i) => Math.floor(i / 10) * 20))
      }).pipe(Effect.provide(RateLimitStore.layerMemory)),
    120_000
  )

  it.effect(
    "with 3,000 waiting and maxWait 1 s, those still waiting at 1 s fail then with the local RateLimitError and never take a slot afterwards",
    () =>
      Effect.gen(function* () {
        // 30 ms calls: turns at 0, 30, ..., 990 ms, none at the very instant the waits run out.
        const fake = fakeProviders({ wait: answerAfter(30) })
        const llm = yield* limited({ maxConcurrency: 10, maxWait: Duration.seconds(1) }, fake)
        const failedAt: Array<number> = []
        const fiber = yield* Effect.fork(
          Effect.forEach(
            indices(3000),
            (i) =>
              llm.complete(request("openai", { content: String(i) })).pipe(
                Effect.tapError(() => Effect.flatMap(Clock.currentTimeMillis, (now) => Effect.sync(() => failedAt.push(now)))),
                Effect.either
              ),
            { concurrency: "unbounded" }
          )
        )
        yield* TestClock.adjust(Duration.seconds(5))
        const results = yield* Fiber.join(fiber)
        const refused = results.filter(Either.isLeft).map((result) => result.left)
        expect(results.filter(Either.isRight)).toHaveLength(340)
        expect(refused).toHaveLength(2660)
        expect(refused.every((error) => error._tag === "RateLimitError" && error.local && /Local concurrency limit for openai/.test(error.message))).toBe(true)
        expect(new Set(failedAt)).toEqual(new Set([1000]))
        // Admitted in order and all before 1 s; nobody took a slot after refusing.
        expect(fake.callers).toEqual(indices(340).map(String))
        expect(Math.max(...fake.starts)).toBe(990)
        expect(fake.maxInFlight()).toBe(10)
      }).pipe(Effect.provide(RateLimitStore.layerMemory)),
    120_000
  )

  it.live(
    "3,000 calls through maxConcurrency 10 against a provider answering in 1 ms of real time all finish, never more than 10 in flight",
    () =>
      Effect.gen(function* () {
        const fake = fakeProviders({ latency: Duration.millis(1) })
        const llm = yield* limited({ maxConcurrency: 10 }, fake)
        const results = yield* Effect.forEach(indices(3000), (i) => Effect.either(llm.complete(request("openai", { content: String(i) }))), {
          concurrency: "unbounded"
        })
        expect(results.filter(Either.isRight)).toHaveLength(3000)
        expect(fake.maxInFlight()).toBe(10)
        expect(fake.inFlight()).toBe(0)
      }).pipe(Effect.provide(RateLimitStore.layerMemory), Effect.timeout(Duration.seconds(30))),
    60_000
  )
})

describe("RateLimit: config", () => {
  const env = (entries: ReadonlyArray<readonly [string, string]>) => ConfigProvider.fromMap(new Map(entries))
  const read = (entries: ReadonlyArray<readonly [string, string]>) => Effect.either(Effect.withConfigProvider(RateLimit.config, env(entries)))

  it.effect("reads shared and per-provider limits, maxWait and maxRetryAfter", () =>
    Effect.gen(function* () {
      const result = yield* read([
        ["LLM_RATE_LIMIT_RPM", "100"],
        ["LLM_MAX_CONCURRENCY", "8"],
        ["LLM_RATE_LIMIT_RPM_OPENAI", "500"],
        ["LLM_RATE_LIMIT_BURST_OPENAI", "8"],
        ["LLM_RATE_LIMIT_TPM_ANTHROPIC", "6000"],
        ["LLM_RATE_LIMIT_MAX_WAIT_MS", "5000"],
        ["LLM_RETRY_MAX_RETRY_AFTER_MS", "20000"]
      ])
      if (Either.isLeft(result)) throw new Error(String(result.left))
      const options = result.right
      expect(options.rpm).toBe(100)
      expect(options.tpm).toBeUndefined()
      expect(options.maxConcurrency).toBe(8)
      expect(options.providers).toEqual({ openai: { rpm: 500, burst: 8 }, anthropic: { tpm: 6000 } })
      expect(Duration.toMillis(Duration.decode(options.maxWait!))).toBe(5000)
      expect(Duration.toMillis(Duration.decode(options.maxRetryAfter!))).toBe(20_000)
    })
  )

  it.effect("defaults maxWait to 30 s and maxRetryAfter to 60 s, every limit off", () =>
    Effect.gen(function* () {
      const result = yield* read([])
      if (Either.isLeft(result)) throw new Error(String(result.left))
      expect(Duration.toMillis(Duration.decode(result.right.maxWait!))).toBe(30_000)
      expect(Duration.toMillis(Duration.decode(result.right.maxRetryAfter!))).toBe(60_000)
      expect(result.right.rpm).toBeUndefined()
      expect(result.right.providers).toEqual({})
    })
  )

  it.effect("rejects a limit or a wait that is not a whole number in range, naming the variable", () =>
    Effect.gen(function* () {
      for (const [name, value] of [
        ["LLM_RATE_LIMIT_RPM", "0"],
        ["LLM_RATE_LIMIT_TPM_OPENAI", "lots"],
        ["LLM_MAX_CONCURRENCY", "1e3"],
        ["LLM_RATE_LIMIT_MAX_WAIT_MS", "-5"],
        ["LLM_RETRY_MAX_RETRY_AFTER_MS", "999999999999"]
      ] as const) {
        const result = yield* read([[name, value]])
        expect(Either.isLeft(result) && String(result.left)).toMatch(new RegExp(`${name} must be a whole number`))
      }
    })
  )
})
