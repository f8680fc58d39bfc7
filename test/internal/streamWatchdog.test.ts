import { describe, expect, it } from "@effect/vitest"
import { Chunk, Deferred, Duration, Effect, Fiber, Option, Stream, TestClock } from "effect"
import * as StreamWatchdog from "../../src/internal/streamWatchdog.js"

const isDone = (fiber: Fiber.RuntimeFiber<unknown, unknown>) => Effect.map(Fiber.poll(fiber), Option.isSome)

/** Emits `first` at once, then `later` after `gap`. */
const twoChunks = (gap: Duration.DurationInput) =>
  Stream.concat(Stream.make("first"), Stream.fromEffect(Effect.as(Effect.sleep(gap), "later")))

const limits = { first: 10_000, idle: 1_000, onTimeout: (started: boolean) => (started ? "idle" : "first-token") }

describe("streamWatchdog.limitWaits: limits per wait", () => {
  it.effect("applies a short idle limit right after the first chunk, even when the first-token limit is longer", () =>
    Effect.gen(function* () {
      // The first chunk arrives at 500 ms, while the watcher waits out the first-token limit.
      const source = Stream.concat(Stream.fromEffect(Effect.as(Effect.sleep(Duration.millis(500)), "first")), twoChunks(Duration.seconds(5)))
      const fiber = yield* Effect.fork(Stream.runCollect(StreamWatchdog.limitWaits(source, limits)))
      yield* TestClock.adjust(Duration.millis(500))
      yield* TestClock.adjust(Duration.millis(999))
      expect(yield* isDone(fiber)).toBe(false)
      yield* TestClock.adjust(Duration.millis(1))
      expect(yield* Fiber.await(fiber)).toMatchObject({ cause: { error: "idle" } })
    })
  )

  it.effect("does not count the time the consumer spends between pulls as idle", () =>
    Effect.gen(function* () {
      const stream = StreamWatchdog.limitWaits(Stream.make("a", "b", "c").pipe(Stream.rechunk(1)), limits)
      // The consumer takes 3 s per element, three times the idle limit; the source is never late.
      const fiber = yield* Effect.fork(Stream.runCollect(Stream.tap(stream, () => Effect.sleep(Duration.seconds(3)))))
      yield* TestClock.adjust(Duration.seconds(10))
      expect(Chunk.toReadonlyArray(yield* Fiber.join(fiber))).toEqual(["a", "b", "c"])
    })
  )

  it.effect("pulls the source only when the consumer asks", () =>
    Effect.gen(function* () {
      let pulls = 0
      const source = Stream.repeatEffect(Effect.sync(() => ++pulls)).pipe(Stream.rechunk(1))
      const taken = yield* Stream.runCollect(Stream.take(StreamWatchdog.limitWaits(source, limits), 3))
      expect(Chunk.toReadonlyArray(taken)).toEqual([1, 2, 3])
      expect(pulls).toBe(3)
    })
  )

  it.effect("interrupts the pending pull when it fails the stream", () =>
    Effect.gen(function* () {
      const released = yield* Deferred.make<void>()
      const source = Stream.concat(
        Stream.make("first"),
        Stream.fromEffect(Effect.onInterrupt(Effect.never, () => Deferred.succeed(released, undefined)))
      )
      const exit = yield* Effect.fork(Stream.runCollect(StreamWatchdog.limitWaits(source, limits)))
      yield* TestClock.adjust(Duration.seconds(1))
      expect(yield* Fiber.await(exit)).toMatchObject({ cause: { error: "idle" } })
      expect(yield* Deferred.isDone(released)).toBe(true)
    })
  )
})

describe("streamWatchdog.limitTotal: limits the whole stream", () => {
  it.effect("fails a stream still running at the limit, and lets one that ends in time through", () =>
    Effect.gen(function* () {
      const options = { total: 3_000, onTimeout: () => "deadline" }
      const late = yield* Effect.fork(Stream.runCollect(StreamWatchdog.limitTotal(twoChunks(Duration.seconds(5)), options)))
      const early = yield* Effect.fork(Stream.runCollect(StreamWatchdog.limitTotal(twoChunks(Duration.seconds(2)), options)))
      yield* TestClock.adjust(Duration.millis(2999))
      expect(yield* isDone(late)).toBe(false)
      expect(Chunk.toReadonlyArray(yield* Fiber.join(early))).toEqual(["first", "later"])
      yield* TestClock.adjust(Duration.millis(1))
      expect(yield* Fiber.await(late)).toMatchObject({ cause: { error: "deadline" } })
    })
  )
})
