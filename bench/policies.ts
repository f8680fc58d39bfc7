/**
 * What each policy and instrument costs in CPU, with no network in the way: every policy's `make`
 * alone around an in-process provider that answers at once (a resolved promise, so each call still
 * suspends its fiber as a real one does), and the whole stack `LlmLive.compose` builds. CPU time
 * of this process (`process.cpuUsage`, user + system), not wall time, median of the rounds.
 *
 * Two reference rows show what the stream machinery costs before any policy: `Effect.promise`
 * alone (the answer with no stream at all), and "bare collect", `Llm.collect` of the provider's
 * parts. Policy rows are the µs they add to "bare collect" per `complete` call, and to a bare
 * `Stream.runDrain` per 2,001-event stream of 21 chunks.
 *
 * A third column gives the heap each `complete` holds while it waits for its answer (2,000 calls
 * started at once around a provider that answers only when told, measured after a full GC; needs
 * `--expose-gc`). Under load this is what the garbage collector copies on every young-generation
 * collection, so it costs CPU on every call in flight, not only memory.
 */
import { Chunk, Duration, Effect, Fiber, Layer, Logger, LogLevel, ManagedRuntime, Option, Stream } from "effect"
import type { LlmRequest } from "../src/index.js"
import { CircuitBreaker, Fallback, Llm, LlmLive, Logging, Pricing, RateLimit, RateLimitStore, Retry, Timeout, Tracing, Usage } from "../src/index.js"
import { median, round } from "./stats.js"

const usage = { inputTokens: 10, outputTokens: 5, totalTokens: 15 }
const response: LlmRequest.LlmResponse = { id: "r1", provider: "openai", model: "sim-gpt", content: "hello", toolCalls: [], finishReason: "stop", usage }
const finish: LlmRequest.Finish = { _tag: "Finish", id: "r1", provider: "openai", model: "sim-gpt", finishReason: "stop", usage }
const whole: ReadonlyArray<LlmRequest.LlmStreamEvent> = [{ _tag: "TextDelta", text: "hello" }, finish]
const deltas = Chunk.unsafeFromArray(
  Array.from({ length: 100 }, (_, i): LlmRequest.LlmStreamEvent => ({ _tag: "TextDelta", text: `w${i} ` }))
)

const wholeChunk = Chunk.unsafeFromArray(whole)
const finishChunk = Chunk.of<LlmRequest.LlmStreamEvent>(finish)
const end = Effect.fail(Option.none())

/**
 * Answers at once: a whole answer is one resolved promise of its two parts; a stream is 20 chunks
 * of 100 deltas, then a `Finish` after one resolved promise. Written as an answer directly, as the
 * library's providers are (see `Llm.Answer`).
 */
const instant: Llm.Provider = {
  name: "openai",
  model: "sim-gpt",
  call: (_request, mode) =>
    Effect.sync(() => {
      let pulled = 0
      return Effect.suspend(() => {
        pulled++
        if (mode === "whole") return pulled === 1 ? Effect.promise(() => Promise.resolve(wholeChunk)) : end
        if (pulled <= 20) return Effect.succeed(deltas)
        return pulled === 21 ? Effect.promise(() => Promise.resolve(finishChunk)) : end
      })
    })
}

/** Like `instant`, but a whole answer comes only once `releaseHeld` is called. */
let held: Array<() => void> = []
const releaseHeld = () => {
  for (const release of held) release()
  held = []
}
const holding: Llm.Provider = {
  ...instant,
  call: () =>
    Effect.sync(() => {
      let pulled = false
      return Effect.suspend(() => {
        if (pulled) return end
        pulled = true
        return Effect.async<Chunk.Chunk<LlmRequest.LlmStreamEvent>>((resume) => {
          held.push(() => resume(Effect.succeed(wholeChunk)))
        })
      })
    })
}

// Routed already (provider and model set), as every policy but the router sees a request.
const request: LlmRequest.LlmRequest = { provider: "openai", model: "sim-gpt", messages: [{ role: "user", content: "Say hello" }], maxTokens: 32 }
const limits = { rpm: 1_000_000, tpm: 1_000_000_000, maxConcurrency: 100_000 }

/** The µs of CPU (user + system) one run of `run` takes per operation. */
const cpuPerOp = async (ops: number, run: () => Promise<unknown>): Promise<number> => {
  const before = process.cpuUsage()
  await run()
  const spent = process.cpuUsage(before)
  return (spent.user + spent.system) / ops
}

/** A result of {@link measure}: absolute µs for the reference rows, µs added for the others. */
export interface Result {
  readonly completeUs: Record<string, number | null>
  readonly streamUs: Record<string, number | null>
  /** `null` without `--expose-gc`. */
  readonly heldKiB: Record<string, number | null> | null
}

const promiseAlone = "Effect.promise alone (no stream; absolute)"
const bareCollect = "bare collect: Llm.collect / runDrain of the provider's parts, no policy (absolute)"

/**
 * Per-call and per-stream CPU of each policy alone and of the composed stack, in µs over the bare
 * provider (medians of `rounds` runs).
 */
export const measure = async (options: { readonly calls: number; readonly streams: number; readonly rounds: number }): Promise<Result> => {
  // Lines at info are formatted (logfmt) and dropped, as in the other cases; debug lines are below
  // the application's level, as by default.
  const discard = Logger.map(Logger.logfmtLogger, () => undefined)
  const runtime = ManagedRuntime.make(
    Layer.mergeAll(RateLimitStore.layerMemory, Logger.replace(Logger.defaultLogger, discard), Logger.minimumLogLevel(LogLevel.Info))
  )
  const prices = Pricing.defaults
  const policies = await runtime.runPromise(
    Effect.all({
      "Timeout.make (attempt 30 s)": Timeout.make({ timeout: Duration.seconds(30) }),
      "Timeout.makeDeadline (30 s)": Timeout.makeDeadline({ deadline: Duration.seconds(30) }),
      "Usage.make": Usage.make({ prices }),
      "RateLimit.make (rpm, tpm, concurrency)": RateLimit.make(limits),
      "CircuitBreaker.make (ratio, defaults)": CircuitBreaker.make({}),
      "Retry.make (3 retries)": Retry.make({ maxRetries: 3 }),
      "Fallback.make (empty chain)": Fallback.make({ chain: [] }),
      "Logging.make attempt (debug, below the level)": Logging.make({ level: "attempt" }),
      "Logging.make call (debug by default, below the level)": Logging.make({}),
      "Logging.make call (info line, formatted)": Logging.make({ callLevel: "info" }),
      "Tracing.make attempt (built-in tracer)": Tracing.make({ level: "attempt" }),
      "Tracing.make call (built-in tracer)": Tracing.make({})
    })
  )
  /** Every row's call around `provider`: the provider alone, each policy, the router, the stack. */
  const callsAround = async (provider: Llm.Provider): Promise<Record<string, Llm.Call>> => {
    const stack = await runtime.runPromise(
      LlmLive.compose({
        providers: [provider],
        defaultProvider: "openai",
        policies: { retry: { maxRetries: 3 }, timeout: { timeout: Duration.seconds(30) }, rateLimit: limits, circuitBreaker: {}, fallback: [], prices }
      })
    )
    return {
      [bareCollect]: provider.call,
      ...Object.fromEntries(Object.entries(policies).map(([name, policy]) => [name, policy(provider.call)])),
      "Llm.fromProvider (validation, routing)": Llm.fromProvider(provider).call,
      "LlmLive.compose (all of them, default logging)": stack.call
    }
  }
  const calls = await callsAround(instant)
  const completeOf = (call: Llm.Call) => () =>
    cpuPerOp(options.calls, () =>
      runtime.runPromise(
        Effect.gen(function* () {
          for (let i = 0; i < options.calls; i++) yield* Llm.collect(call(request, "whole"))
        })
      )
    )
  const promiseOnly = () =>
    cpuPerOp(options.calls, () =>
      runtime.runPromise(
        Effect.gen(function* () {
          for (let i = 0; i < options.calls; i++) yield* Effect.promise(() => Promise.resolve(response))
        })
      )
    )
  const streamOf = (call: Llm.Call) => () =>
    cpuPerOp(options.streams, () =>
      runtime.runPromise(
        Effect.gen(function* () {
          for (let i = 0; i < options.streams; i++) yield* Stream.runDrain(Llm.toStream(call(request, "streamed")))
        })
      )
    )
  const run = async (runners: Record<string, () => Promise<number>>) => {
    const samples: Record<string, Array<number>> = {}
    for (const runner of Object.values(runners)) await runner()
    const names = Object.keys(runners)
    for (let r = 0; r < options.rounds; r++) {
      // The order rotates every round so a noisy machine moves every row alike.
      for (let i = 0; i < names.length; i++) {
        const name = names[(i + r) % names.length]!
        ;(samples[name] ??= []).push(await runners[name]!())
      }
    }
    const bare = median(samples[bareCollect]!)
    return Object.fromEntries(
      Object.entries(samples).map(([name, values]) => [
        name,
        name === bareCollect || name === promiseAlone ? round(median(values)) : round(median(values) - bare)
      ])
    )
  }
  const completeUs = await run({
    [promiseAlone]: promiseOnly,
    ...Object.fromEntries(Object.entries(calls).map(([name, call]) => [name, completeOf(call)]))
  })
  const streamUs = await run(Object.fromEntries(Object.entries(calls).map(([name, call]) => [name, streamOf(call)])))
  const heldKiB = await measureHeld(runtime, {
    [promiseAlone]: () => Effect.async<unknown>((resume) => void held.push(() => resume(Effect.void))),
    ...Object.fromEntries(
      Object.entries(await callsAround(holding)).map(([name, call]) => [name, () => Llm.collect(call(request, "whole"))])
    )
  })
  await runtime.dispose()
  return { completeUs, streamUs: { [promiseAlone]: null, ...streamUs }, heldKiB }
}

/**
 * KiB of heap per call in flight for each case (median of three rounds of 2,000 calls): absolute
 * for the reference rows, added to "bare collect" for the others.
 */
const measureHeld = async (
  runtime: ManagedRuntime.ManagedRuntime<never, never>,
  cases: Record<string, () => Effect.Effect<unknown, unknown>>
): Promise<Record<string, number> | null> => {
  const gc = (globalThis as { gc?: () => void }).gc
  if (gc === undefined) return null
  const inFlight = 2000
  const samples: Record<string, number> = {}
  for (const [name, start] of Object.entries(cases)) {
    const rounds: Array<number> = []
    for (let r = 0; r < 3; r++) {
      gc()
      const before = process.memoryUsage().heapUsed
      const fibers = Array.from({ length: inFlight }, () => runtime.runFork(start()))
      await new Promise((resolve) => setTimeout(resolve, 20))
      if (held.length < inFlight) throw new Error(`${name}: only ${held.length} of ${inFlight} calls reached the provider`)
      gc()
      rounds.push((process.memoryUsage().heapUsed - before) / inFlight / 1024)
      releaseHeld()
      await runtime.runPromise(Fiber.joinAll(fibers))
    }
    samples[name] = median(rounds)
  }
  const bare = samples[bareCollect]!
  return Object.fromEntries(
    Object.entries(samples).map(([name, kib]) => [name, round(name === bareCollect || name === promiseAlone ? kib : kib - bare, 2)])
  )
}

/** The markdown table of {@link measure}'s result. */
export const markdown = (result: Result): ReadonlyArray<string> => [
  "| policy | CPU µs per `complete` (added to bare collect) | CPU µs per stream of 2,001 events in 21 chunks (added to bare runDrain) | KiB held per `complete` in flight (added to bare collect) |",
  "| --- | ---: | ---: | ---: |",
  ...Object.keys(result.completeUs).map(
    (name) => `| ${name} | ${result.completeUs[name] ?? "-"} | ${result.streamUs[name] ?? "-"} | ${result.heldKiB?.[name] ?? "-"} |`
  )
]
