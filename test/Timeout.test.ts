import { describe, expect, it } from "@effect/vitest"
import { Chunk, ConfigProvider, Duration, Effect, Exit, Fiber, Option, Stream, TestClock } from "effect"
import * as Llm from "../src/Llm.js"
import type * as LlmRequest from "../src/LlmRequest.js"
import * as LlmMock from "../src/LlmMock.js"
import * as Retry from "../src/Retry.js"
import * as Timeout from "../src/Timeout.js"

const request = { provider: "openai", messages: [{ role: "user" as const, content: "hello" }] }

const isDone = <A, E>(fiber: Fiber.Fiber<A, E>) => Effect.map(Fiber.poll(fiber), Option.isSome)

describe("Timeout: per attempt", () => {
  it.effect("fails with a retryable TimeoutError (phase attempt) at the configured duration", () =>
    Effect.gen(function* () {
      const mock = yield* LlmMock.make([LlmMock.hang()])
      const fiber = yield* Effect.fork(Llm.withPolicies(mock, [yield* Timeout.make({ timeout: Duration.seconds(10) })]).complete(request))
      yield* TestClock.adjust(Duration.millis(9999))
      expect(yield* isDone(fiber)).toBe(false)
      yield* TestClock.adjust(Duration.millis(1))
      const exit = yield* Fiber.await(fiber)
      expect(exit).toMatchObject({
        cause: { error: { _tag: "TimeoutError", phase: "attempt", retryable: true, provider: "openai" } }
      })
    })
  )

  it.effect("defaults to 30 seconds", () =>
    Effect.gen(function* () {
      const mock = yield* LlmMock.make([LlmMock.hang()])
      const fiber = yield* Effect.fork(Llm.withPolicies(mock, [yield* Timeout.make()]).complete(request))
      yield* TestClock.adjust(Duration.millis(29_999))
      expect(yield* isDone(fiber)).toBe(false)
      yield* TestClock.adjust(Duration.millis(1))
      expect(yield* isDone(fiber)).toBe(true)
    })
  )

  it.effect("lets an answer that arrives in time through", () =>
    Effect.gen(function* () {
      const mock = yield* LlmMock.make([LlmMock.reply("in time", { latency: Duration.seconds(9) })])
      const fiber = yield* Effect.fork(Llm.withPolicies(mock, [yield* Timeout.make({ timeout: Duration.seconds(10) })]).complete(request))
      yield* TestClock.adjust(Duration.seconds(9))
      expect((yield* Fiber.join(fiber)).content).toBe("in time")
    })
  )

  it.effect("uses the request's own timeout instead of the configured one", () =>
    Effect.gen(function* () {
      const mock = yield* LlmMock.make([LlmMock.hang()])
      const call = Llm.withPolicies(mock, [yield* Timeout.make({ timeout: Duration.seconds(30) })]).complete({ ...request, timeout: Duration.seconds(2) })
      const fiber = yield* Effect.fork(call)
      yield* TestClock.adjust(Duration.millis(1999))
      expect(yield* isDone(fiber)).toBe(false)
      yield* TestClock.adjust(Duration.millis(1))
      expect(yield* Fiber.await(fiber)).toMatchObject({ cause: { error: { _tag: "TimeoutError", phase: "attempt" } } })
    })
  )

  it.effect("interrupts the timed-out attempt", () =>
    Effect.gen(function* () {
      let interrupted = false
      const service = Llm.fromCall(() =>
        Llm.fromStream(Stream.fromEffect(Effect.onInterrupt(Effect.never, () => Effect.sync(() => (interrupted = true)))))
      )
      const fiber = yield* Effect.fork(Llm.withPolicies(service, [yield* Timeout.make({ timeout: Duration.seconds(1) })]).complete(request))
      yield* TestClock.adjust(Duration.seconds(1))
      yield* Fiber.await(fiber)
      expect(interrupted).toBe(true)
    })
  )

  it.effect("gives each retry its own attempt timeout when placed inside Retry", () =>
    Effect.gen(function* () {
      const mock = yield* LlmMock.make([LlmMock.hang(), LlmMock.reply("second attempt")])
      const service = Llm.withPolicies(Llm.withPolicies(mock, [yield* Timeout.make({ timeout: Duration.seconds(5) })]), [yield* Retry.make({ base: Duration.seconds(1) })])
      const fiber = yield* Effect.fork(service.complete(request))
      yield* TestClock.adjust(Duration.seconds(10))
      expect((yield* Fiber.join(fiber)).content).toBe("second attempt")
      expect((yield* mock.calls).length).toBe(2)
    })
  )
})

describe("Timeout: interrupting a limited call", () => {
  const interruptible = (onInterrupt: () => void): Llm.Service =>
    Llm.fromCall(() => Llm.fromStream(Stream.fromEffect(Effect.onInterrupt(Effect.never, () => Effect.sync(onInterrupt)))))

  it.effect("interrupting the caller interrupts the attempt and waits for it", () =>
    Effect.gen(function* () {
      let interrupted = false
      const service = Llm.withPolicies(interruptible(() => (interrupted = true)), [yield* Timeout.make({ timeout: Duration.seconds(10) })])
      const fiber = yield* Effect.fork(service.complete(request))
      yield* TestClock.adjust(Duration.seconds(1))
      const exit = yield* Fiber.interrupt(fiber)
      expect(Exit.isInterrupted(exit)).toBe(true)
      expect(interrupted).toBe(true)
    })
  )

  it.live("on the live clock, a late attempt is interrupted and fails with phase attempt", () =>
    Effect.gen(function* () {
      let interrupted = false
      const service = Llm.withPolicies(interruptible(() => (interrupted = true)), [yield* Timeout.make({ timeout: Duration.millis(20) })])
      const exit = yield* Effect.exit(service.complete(request))
      expect(exit).toMatchObject({ cause: { error: { _tag: "TimeoutError", phase: "attempt", retryable: true } } })
      expect(interrupted).toBe(true)
    })
  )

  it.live("on the live clock, an answer in time goes through and interrupting the caller interrupts the attempt", () =>
    Effect.gen(function* () {
      const timeout = yield* Timeout.make({ timeout: Duration.seconds(30) })
      const limited = (service: Llm.Service) => Llm.withPolicies(service, [timeout])
      const answer = yield* limited(LlmMock.echo()).complete(request)
      expect(answer.content).toBe("echo: hello")
      let interrupted = false
      const fiber = yield* Effect.fork(limited(interruptible(() => (interrupted = true))).complete(request))
      yield* Effect.sleep(Duration.millis(5))
      expect(Exit.isInterrupted(yield* Fiber.interrupt(fiber))).toBe(true)
      expect(interrupted).toBe(true)
    })
  )

  it.live("on the live clock, a deadline longer than a host timer can hold never fires", () =>
    Effect.gen(function* () {
      const bounded = Llm.withPolicies(LlmMock.echo(), [yield* Timeout.makeDeadline({ deadline: Duration.days(30) })])
      expect((yield* bounded.complete(request)).content).toBe("echo: hello")
    })
  )
})

describe("Timeout: streams", () => {
  const run = (stream: Stream.Stream<unknown, unknown>) => Effect.fork(Stream.runCollect(stream))

  it.effect("fails with phase first-token when the first event is late", () =>
    Effect.gen(function* () {
      const mock = yield* LlmMock.make([LlmMock.reply("slow start", { latency: Duration.seconds(20) })])
      const policy = yield* Timeout.make({ timeout: Duration.seconds(60), firstToken: Duration.seconds(5) })
      const fiber = yield* run(Llm.withPolicies(mock, [policy]).stream(request))
      yield* TestClock.adjust(Duration.millis(4999))
      expect(yield* isDone(fiber)).toBe(false)
      yield* TestClock.adjust(Duration.millis(1))
      expect(yield* Fiber.await(fiber)).toMatchObject({
        cause: { error: { _tag: "TimeoutError", phase: "first-token", retryable: true } }
      })
    })
  )

  it.effect("fails with phase idle when the pause between events is too long", () =>
    Effect.gen(function* () {
      const mock = yield* LlmMock.make([LlmMock.chunks(["a", "b", "c"], { chunkDelay: Duration.seconds(4) })])
      // Fine with 5 s between events; fails once a gap reaches 3 s.
      const ok = yield* run(Llm.withPolicies(mock, [yield* Timeout.make({ idle: Duration.seconds(5) })]).stream(request))
      yield* TestClock.adjust(Duration.seconds(20))
      const events = yield* Fiber.join(ok)
      expect(Chunk.size(events)).toBe(4)

      const slow = yield* LlmMock.make([LlmMock.chunks(["a", "b", "c"], { chunkDelay: Duration.seconds(4) })])
      const fiber = yield* run(Llm.withPolicies(slow, [yield* Timeout.make({ idle: Duration.seconds(3) })]).stream(request))
      yield* TestClock.adjust(Duration.millis(2999))
      expect(yield* isDone(fiber)).toBe(false)
      yield* TestClock.adjust(Duration.millis(1))
      expect(yield* Fiber.await(fiber)).toMatchObject({ cause: { error: { _tag: "TimeoutError", phase: "idle" } } })
    })
  )

  it.effect("first-token and idle default to the attempt timeout", () =>
    Effect.gen(function* () {
      const mock = yield* LlmMock.make([LlmMock.chunks(["a", "b"], { hang: true })])
      const fiber = yield* run(Llm.withPolicies(mock, [yield* Timeout.make({ timeout: Duration.seconds(8) })]).stream(request))
      yield* TestClock.adjust(Duration.millis(7999))
      expect(yield* isDone(fiber)).toBe(false)
      yield* TestClock.adjust(Duration.millis(1))
      expect(yield* Fiber.await(fiber)).toMatchObject({ cause: { error: { _tag: "TimeoutError", phase: "idle" } } })
    })
  )

  it.effect("puts no limit on a stream's total length", () =>
    Effect.gen(function* () {
      const pieces = Array.from({ length: 20 }, (_, i) => `w${i} `)
      const mock = yield* LlmMock.make([LlmMock.chunks(pieces, { chunkDelay: Duration.seconds(4) })])
      const fiber = yield* run(Llm.withPolicies(mock, [yield* Timeout.make({ timeout: Duration.seconds(5) })]).stream(request))
      yield* TestClock.adjust(Duration.seconds(100))
      expect(Chunk.size(yield* Fiber.join(fiber))).toBe(21)
    })
  )

  it.effect("the request's timeout replaces the stream limits", () =>
    Effect.gen(function* () {
      const mock = yield* LlmMock.make([LlmMock.reply("late", { latency: Duration.seconds(3) })])
      const policy = yield* Timeout.make({ firstToken: Duration.seconds(30) })
      const fiber = yield* run(Llm.withPolicies(mock, [policy]).stream({ ...request, timeout: Duration.seconds(1) }))
      yield* TestClock.adjust(Duration.seconds(1))
      expect(yield* Fiber.await(fiber)).toMatchObject({ cause: { error: { phase: "first-token" } } })
    })
  )
})

describe("Timeout: overall deadline", () => {
  it.effect("fails with a non-retryable TimeoutError (phase deadline) across all retries", () =>
    Effect.gen(function* () {
      const mock = yield* LlmMock.make([LlmMock.fail("ServerError"), LlmMock.fail("ServerError"), LlmMock.reply("late", { latency: Duration.seconds(30) })])
      const service = Llm.withPolicies(Llm.withPolicies(mock, [yield* Retry.make({ base: Duration.seconds(1) })]), [yield* Timeout.makeDeadline({ deadline: Duration.seconds(10) })])
      const fiber = yield* Effect.fork(service.complete(request))
      yield* TestClock.adjust(Duration.seconds(10))
      expect(yield* Fiber.await(fiber)).toMatchObject({
        cause: { error: { _tag: "TimeoutError", phase: "deadline", retryable: false } }
      })
      expect((yield* mock.calls).length).toBe(3)
    })
  )

  it.effect("bounds a whole stream", () =>
    Effect.gen(function* () {
      const mock = yield* LlmMock.make([LlmMock.chunks(["a", "b", "c", "d"], { chunkDelay: Duration.seconds(2) })])
      const fiber = yield* Effect.fork(Stream.runCollect(Llm.withPolicies(mock, [yield* Timeout.makeDeadline({ deadline: Duration.seconds(5) })]).stream(request)))
      yield* TestClock.adjust(Duration.seconds(5))
      expect(yield* Fiber.await(fiber)).toMatchObject({ cause: { error: { phase: "deadline" } } })
    })
  )

  it.effect("lets a call that finishes in time through", () =>
    Effect.gen(function* () {
      const mock = yield* LlmMock.make([LlmMock.reply("ok"), LlmMock.reply("streamed ok")])
      const service = Llm.withPolicies(mock, [yield* Timeout.makeDeadline({ deadline: Duration.seconds(5) })])
      expect((yield* service.complete(request)).content).toBe("ok")
      const events = yield* Stream.runCollect(service.stream(request))
      expect(Chunk.size(events)).toBe(3)
    })
  )
})

describe("Timeout: layers and config", () => {
  const env = (entries: ReadonlyArray<readonly [string, string]>) => ConfigProvider.fromMap(new Map(entries))

  it.effect("config reads LLM_TIMEOUT_MS and the stream variables", () =>
    Effect.gen(function* () {
      const options = yield* Effect.withConfigProvider(
        Timeout.config,
        env([["LLM_TIMEOUT_MS", "12000"], ["LLM_STREAM_IDLE_TIMEOUT_MS", "4000"]])
      )
      expect(Duration.toMillis(Duration.decode(options.timeout!))).toBe(12_000)
      expect(Duration.toMillis(Duration.decode(options.idle!))).toBe(4000)
      expect(options.firstToken).toBeUndefined()
    })
  )

  it.effect("config rejects a non-positive timeout", () =>
    Effect.gen(function* () {
      const result = yield* Effect.either(Effect.withConfigProvider(Timeout.config, env([["LLM_TIMEOUT_MS", "0"]])))
      expect(result._tag).toBe("Left")
    })
  )

  it.effect("layerConfig applies the configured attempt timeout", () =>
    Effect.gen(function* () {
      const fiber = yield* Effect.fork(
        Llm.complete(request).pipe(
          Effect.provide(Timeout.layerConfig),
          Effect.provide(LlmMock.layer([LlmMock.hang()])),
          Effect.withConfigProvider(env([["LLM_TIMEOUT_MS", "3000"]]))
        )
      )
      yield* TestClock.adjust(Duration.seconds(3))
      expect(yield* Fiber.await(fiber)).toMatchObject({ cause: { error: { phase: "attempt" } } })
    })
  )

  it.effect("layerDeadlineConfig applies LLM_DEADLINE_MS and changes nothing when it is unset", () =>
    Effect.gen(function* () {
      const call = (entries: ReadonlyArray<readonly [string, string]>) =>
        Effect.fork(
          Llm.complete(request).pipe(
            Effect.provide(Timeout.layerDeadlineConfig),
            Effect.provide(LlmMock.layer([LlmMock.reply("slow", { latency: Duration.seconds(60) })])),
            Effect.withConfigProvider(env(entries))
          )
        )
      const bounded = yield* call([["LLM_DEADLINE_MS", "5000"]])
      const unbounded = yield* call([])
      yield* TestClock.adjust(Duration.seconds(60))
      expect(yield* Fiber.await(bounded)).toMatchObject({ cause: { error: { phase: "deadline" } } })
      const exit = yield* Fiber.await(unbounded)
      expect(Exit.isSuccess(exit) && exit.value.content).toBe("slow")
    })
  )

  it.effect("layer and layerDeadline wrap the Llm service in context", () =>
    Effect.gen(function* () {
      const fiber = yield* Effect.fork(
        Llm.complete(request).pipe(
          Effect.provide(Timeout.layerDeadline({ deadline: Duration.seconds(9) })),
          Effect.provide(Timeout.layer({ timeout: Duration.seconds(2) })),
          Effect.provide(LlmMock.layer([LlmMock.hang()]))
        )
      )
      yield* TestClock.adjust(Duration.seconds(2))
      expect(yield* Fiber.await(fiber)).toMatchObject({ cause: { error: { phase: "attempt" } } })
    })
  )
})

describe("Timeout under load: one watchdog per answer, thousands of answers at once", () => {
  // On the live clock: `TestClock.adjust` wakes its sleepers one at a time, about 4.5 ms each here,
  // which for thousands of them takes far longer than the calls. The provider is written as an
  // answer (no Stream per call), so that the CPU of 3,000 calls stays far below the margins: a part
  // every 5 ms against a 500 ms limit. Each test takes about a second.
  const calls = 3_000
  const usage = { inputTokens: 1, outputTokens: 1, totalTokens: 2 }
  const finish: LlmRequest.LlmStreamEvent = { _tag: "Finish", id: "1", provider: "openai", model: "m", finishReason: "stop", usage }

  /** Three parts 5 ms apart, then the `Finish`; a request saying "stall" never sends its second part. */
  const paced: Llm.Call = (r) =>
    Effect.sync(() => {
      const stalls = r.messages[0]!.content === "stall"
      let pulled = 0
      return Effect.suspend((): Llm.Pull => {
        pulled++
        if (pulled === 1) return Effect.succeed(Chunk.of<LlmRequest.LlmStreamEvent>({ _tag: "TextDelta", text: "a" }))
        if (stalls) return Effect.never
        if (pulled <= 3) return Effect.as(Effect.sleep(Duration.millis(5)), Chunk.of<LlmRequest.LlmStreamEvent>({ _tag: "TextDelta", text: "b" }))
        return pulled === 4 ? Effect.succeed(Chunk.of(finish)) : Effect.fail(Option.none())
      })
    })

  const asks = Array.from({ length: calls }, (_, i) => ({
    provider: "openai",
    messages: [{ role: "user" as const, content: i % 2 === 0 ? "answer" : "stall" }]
  }))
  const failedIn = (phase: string) => (exit: Exit.Exit<unknown, unknown>) =>
    Exit.isFailure(exit) && JSON.stringify(exit.cause).includes(`"phase":"${phase}"`)

  it.live("3,000 concurrent streams: the stalled half fail at their idle limit, the rest finish", () =>
    Effect.gen(function* () {
      const service = Llm.fromCall(Llm.compose(paced, [yield* Timeout.make({ firstToken: Duration.seconds(60), idle: Duration.millis(500) })]))
      const started = Date.now()
      const exits = yield* Effect.forEach(asks, (r) => Effect.exit(Stream.runCollect(service.stream(r))), { concurrency: "unbounded" })
      expect(exits.filter((exit, i) => i % 2 === 0 && Exit.isSuccess(exit) && Chunk.size(exit.value) === 4)).toHaveLength(calls / 2)
      expect(exits.filter((exit, i) => i % 2 === 1 && failedIn("idle")(exit))).toHaveLength(calls / 2)
      // At the idle limit, not at the first-token limit of 60 s.
      expect(Date.now() - started).toBeLessThan(30_000)
    }))

  it.live("3,000 concurrent whole calls: the stalled half fail at the attempt limit", () =>
    Effect.gen(function* () {
      const service = Llm.fromCall(Llm.compose(paced, [yield* Timeout.make({ timeout: Duration.millis(500) })]))
      const exits = yield* Effect.forEach(asks, (r) => Effect.exit(service.complete(r)), { concurrency: "unbounded" })
      expect(exits.filter((exit, i) => i % 2 === 0 && Exit.isSuccess(exit))).toHaveLength(calls / 2)
      expect(exits.filter((exit, i) => i % 2 === 1 && failedIn("attempt")(exit))).toHaveLength(calls / 2)
    }))
})
