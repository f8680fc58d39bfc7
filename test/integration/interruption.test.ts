/**
 * Interrupting a call aborts its HTTP request: the simulator sees the connection close. These suites
 * poll the simulator's open sockets in real time (sockets close asynchronously), so they run live.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect, Fiber, Stream } from "effect"
import { collect, eventually, hello, type Provider, setup } from "./support.js"

const providers: ReadonlyArray<Provider> = ["openai", "anthropic", "compatible"]

/** Frames up to and including the first text piece: OpenAI sends a role chunk first, Anthropic message_start, content_block_start and a ping. */
const throughFirstText = (provider: Provider) => (provider === "anthropic" ? 4 : 2)

/** Waits (real time) until the simulator received `n` chat requests. */
const received = (attempts: () => number, n: number) =>
  Effect.flatMap(eventually(() => attempts() >= n, 5_000), (ok) =>
    ok ? Effect.void : Effect.dieMessage(`the simulator did not receive ${n} requests`)
  )

describe("interrupting complete closes the connection", () => {
  for (const provider of providers) {
    it.live(`${provider}: the connection is closed within 100 ms of interrupting a pending complete`, () =>
      Effect.scoped(
        Effect.gen(function* () {
          const { route, service, sim } = yield* setup(provider)
          sim.enqueue(route, { hang: true })
          const fiber = yield* Effect.fork(service.complete(hello))
          yield* received(() => sim.attempts(route), 1)
          expect(sim.openConnections()).toBe(1)
          yield* Fiber.interrupt(fiber)
          expect(yield* eventually(() => sim.openConnections() === 0, 100)).toBe(true)
        })
      )
    )
  }
})

describe("interrupting or leaving a stream closes the connection", () => {
  for (const provider of providers) {
    it.live(`${provider}: the connection is closed within 100 ms of interrupting a stream mid-body`, () =>
      Effect.scoped(
        Effect.gen(function* () {
          const { route, service, sim } = yield* setup(provider)
          sim.enqueue(route, { text: "one two three four five", hangAfterChunks: throughFirstText(provider) })
          const seen: Array<string> = []
          const fiber = yield* Effect.fork(
            Stream.runForEach(service.stream(hello), (e) => Effect.sync(() => seen.push(e._tag)))
          )
          expect(yield* eventually(() => seen.length > 0, 5_000)).toBe(true)
          expect(sim.openConnections()).toBe(1)
          yield* Fiber.interrupt(fiber)
          expect(yield* eventually(() => sim.openConnections() === 0, 100)).toBe(true)
        })
      )
    )

    it.live(`${provider}: taking the first delta and stopping closes the connection within 100 ms`, () =>
      Effect.scoped(
        Effect.gen(function* () {
          const { route, service, sim } = yield* setup(provider)
          sim.enqueue(route, { text: "one two three four five", hangAfterChunks: throughFirstText(provider) })
          const first = yield* collect(Stream.take(service.stream(hello), 1))
          expect(first).toStrictEqual([{ _tag: "TextDelta", text: "one " }])
          expect(yield* eventually(() => sim.openConnections() === 0, 100)).toBe(true)
        })
      )
    )

    it.live(`${provider}: interrupting a stream before its headers arrive closes the connection`, () =>
      Effect.scoped(
        Effect.gen(function* () {
          const { route, service, sim } = yield* setup(provider)
          sim.enqueue(route, { hang: true })
          const fiber = yield* Effect.fork(Stream.runDrain(service.stream(hello)))
          yield* received(() => sim.attempts(route), 1)
          yield* Fiber.interrupt(fiber)
          expect(yield* eventually(() => sim.openConnections() === 0, 100)).toBe(true)
        })
      )
    )
  }
})

describe("no connection leaks after many interrupted requests", () => {
  it.live("after 200 interrupted requests (completes and streams, both SDKs) none are open", () =>
    Effect.scoped(
      Effect.gen(function* () {
        const openai = yield* setup("openai")
        const anthropic = yield* setup("anthropic")
        const total = 200
        const one = (i: number) =>
          Effect.gen(function* () {
            const { route, service, sim } = i % 2 === 0 ? openai : anthropic
            sim.enqueue(route, i % 4 < 2 ? { hang: true } : { text: "a b c d e f", hangAfterChunks: 2 })
            const before = sim.attempts(route)
            const fiber = yield* Effect.fork(
              i % 4 < 2 ? Effect.asVoid(service.complete(hello)) : Stream.runDrain(service.stream(hello))
            )
            yield* received(() => sim.attempts(route), before + 1)
            yield* Fiber.interrupt(fiber)
          })
        // One at a time, so each request is seen by the simulator before it is interrupted.
        for (let i = 0; i < total; i++) yield* one(i)
        expect(openai.sim.attempts("openai") + anthropic.sim.attempts("anthropic")).toBe(total)
        const closed = yield* eventually(
          () => openai.sim.openConnections() === 0 && anthropic.sim.openConnections() === 0,
          100
        )
        expect(closed).toBe(true)
      })
    )
  )
})
