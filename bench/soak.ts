/**
 * The chaos soak: many calls at a fixed concurrency through `LlmLive` against a simulator that
 * injects seeded transient faults (429 with `retry-after`, 500, 502, 503, 529, a connection reset
 * before headers, a hang past the timeout, a stream dropped before its first event), optionally
 * with a fault-free fallback provider. Used by `bench/chaos.ts` and `test/Chaos.test.ts`.
 */
import { Cause, Effect, Exit, Stream } from "effect"
import { performance } from "node:perf_hooks"
import type * as Simulator from "../simulator/Simulator.js"
import { Llm, LlmError } from "../src/index.js"
import type { LlmRequest } from "../src/index.js"
import * as Live from "./live.js"
import type { Stats } from "./simulator.js"
import { percentile, round, settledHeap } from "./stats.js"

/**
 * A simulator the soak can read: its URL and counters, in this process or another.
 */
export interface Target {
  readonly url: string
  readonly stats: () => Promise<Stats>
}

/**
 * The fault mix of the soak: every fault kind the brief names.
 */
export const faults: ReadonlyArray<Simulator.FaultKind> = ["429", "500", "502", "503", "529", "reset", "hang", "stream-drop"]

/**
 * Options of one soak run.
 */
export interface Options {
  readonly calls: number
  readonly concurrency: number
  /** The faulty primary (OpenAI route). */
  readonly primary: Target
  /** A fault-free simulator whose Anthropic route is the fallback, when given. */
  readonly fallback?: Target
  /** Every n-th call is a stream instead of a `complete` (default 4). */
  readonly streamEvery?: number
  /** Extra or overriding configuration variables. */
  readonly config?: Readonly<Record<string, string>>
  /** How long to wait for the client's idle keep-alive sockets to close (default 8000 ms). */
  readonly settleMs?: number
  /** Calls made before the measured run, with the same mix (default 100). */
  readonly warmupCalls?: number
  /** A call still running after this long is abandoned and counted as `untyped:watchdog` (default 10000 ms). */
  readonly watchdogMs?: number
}

/**
 * What a soak run measured.
 */
export interface Report {
  readonly calls: number
  readonly succeeded: number
  readonly successRate: number
  /** Failures by `LlmError` tag; anything else is counted under `untyped:<kind>`. */
  readonly failuresByTag: Record<string, number>
  readonly untypedFailures: number
  readonly answeredByFallback: number
  readonly attemptsPerCall: number
  readonly primaryAttempts: number
  readonly fallbackAttempts: number
  readonly p50Ms: number
  readonly p99Ms: number
  readonly maxMs: number
  readonly wallMs: number
  /** Sockets open at the simulators right after the last call, and once idle keep-alive ended. */
  readonly openConnectionsAtEnd: number
  readonly openConnectionsAfterIdle: number
  readonly heapBeforeBytes: number
  readonly heapAfterBytes: number
  readonly heapGrowthPct: number
  readonly logLines: Record<string, number>
  readonly config: Record<string, string>
}

/**
 * The soak's configuration: a short timeout so hangs end quickly, small backoff, three retries,
 * limits that never wait, and the circuit breaker at its defaults (ratio mode: opens at half the
 * outcomes of 10 s failing, once 20 are counted), which a 20% fault rate must not trip.
 */
export const config = (options: Pick<Options, "primary" | "fallback" | "config">): Record<string, string> => ({
  ...Live.allPolicies(`${options.primary.url}/v1`),
  LLM_TIMEOUT_MS: "1000",
  LLM_MAX_RETRIES: "3",
  LLM_RETRY_BASE_DELAY_MS: "10",
  LLM_RETRY_MAX_DELAY_MS: "50",
  ...(options.fallback === undefined
    ? {}
    : {
        ANTHROPIC_API_KEY: "sk-ant-bench-not-a-real-key",
        ANTHROPIC_BASE_URL: options.fallback.url,
        LLM_FALLBACK: "anthropic:sim-claude"
      }),
  ...options.config
})

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

const totalOpen = async (targets: ReadonlyArray<Target>) => {
  let open = 0
  for (const target of targets) open += (await target.stats()).openConnections
  return open
}

/**
 * Runs the soak and reports what it saw. Never throws for a failed call: failures are counted.
 */
export const run = async (options: Options): Promise<Report> => {
  const settings = config(options)
  const live = Live.make(settings)
  const llm = await live.runtime.runPromise(Llm.Llm)
  const targets = options.fallback === undefined ? [options.primary] : [options.primary, options.fallback]
  const streamEvery = options.streamEvery ?? 4
  const requestFor = (i: number): LlmRequest.LlmRequest => ({
    messages: [{ role: "user", content: `soak call ${i} asks for a short answer` }],
    maxTokens: 32
  })

  const failuresByTag: Record<string, number> = {}
  let untypedFailures = 0
  let succeeded = 0
  let answeredByFallback = 0
  const latencies: Array<number> = []

  const one = (i: number) => {
    const request = requestFor(i)
    const call: Effect.Effect<string, LlmError.LlmError> =
      i % streamEvery === streamEvery - 1
        ? Effect.flatMap(Stream.runCollect(llm.stream(request)), (events) => {
            const finish = [...events].find((event) => event._tag === "Finish")
            return Effect.succeed(finish?._tag === "Finish" ? finish.provider : "incomplete")
          })
        : Effect.map(llm.complete(request), (response) => response.provider)
    return Effect.suspend(() => {
      const start = performance.now()
      return Effect.map(Effect.exit(Effect.timeoutOption(call, options.watchdogMs ?? 10_000)), (result) => {
        latencies.push(performance.now() - start)
        if (Exit.isSuccess(result) && result.value._tag === "None") {
          failuresByTag["untyped:watchdog"] = (failuresByTag["untyped:watchdog"] ?? 0) + 1
          untypedFailures++
          return
        }
        const exit = Exit.map(result, (value) => (value._tag === "Some" ? value.value : "incomplete"))
        if (Exit.isSuccess(exit)) {
          if (exit.value === "incomplete") {
            failuresByTag["untyped:stream-without-finish"] = (failuresByTag["untyped:stream-without-finish"] ?? 0) + 1
            untypedFailures++
            return
          }
          succeeded++
          if (exit.value !== "openai") answeredByFallback++
          return
        }
        const failure = Cause.failureOption(exit.cause)
        if (failure._tag === "Some" && LlmError.isLlmError(failure.value)) {
          failuresByTag[failure.value._tag] = (failuresByTag[failure.value._tag] ?? 0) + 1
        } else {
          const kind = `untyped:${Cause.isDie(exit.cause) ? "defect" : Cause.isInterrupted(exit.cause) ? "interrupt" : "other"}`
          failuresByTag[kind] = (failuresByTag[kind] ?? 0) + 1
          untypedFailures++
        }
      })
    })
  }

  // Warm up with the same mix before the heap is first measured, so that clients, lazily built
  // state and first-use paths (streams, errors, retries) do not count as growth. Not reported.
  const warmup = options.warmupCalls ?? 100
  await live.runtime.runPromise(
    Effect.forEach(Array.from({ length: warmup }, (_, i) => i), one, { concurrency: options.concurrency, discard: true })
  )
  for (const tag of Object.keys(failuresByTag)) delete failuresByTag[tag]
  untypedFailures = 0
  succeeded = 0
  answeredByFallback = 0
  latencies.length = 0
  const before = await Promise.all(targets.map((t) => t.stats()))
  const heapBeforeBytes = await settledHeap()

  const start = performance.now()
  await live.runtime.runPromise(
    Effect.forEach(Array.from({ length: options.calls }, (_, i) => i), one, {
      concurrency: options.concurrency,
      discard: true
    })
  )
  const wallMs = performance.now() - start
  const openConnectionsAtEnd = await totalOpen(targets)
  const heapAfterBytes = await settledHeap()
  const after = await Promise.all(targets.map((t) => t.stats()))
  const attempts = (i: number) => {
    const b = before[i]
    const a = after[i]
    return a === undefined || b === undefined ? 0 : a.attempts.openai + a.attempts.anthropic - b.attempts.openai - b.attempts.anthropic
  }
  await live.runtime.dispose()

  const deadline = performance.now() + (options.settleMs ?? 8000)
  let openConnectionsAfterIdle = await totalOpen(targets)
  while (openConnectionsAfterIdle > 0 && performance.now() < deadline) {
    await sleep(100)
    openConnectionsAfterIdle = await totalOpen(targets)
  }

  const primaryAttempts = attempts(0)
  const fallbackAttempts = options.fallback === undefined ? 0 : attempts(1)
  return {
    calls: options.calls,
    succeeded,
    successRate: succeeded / options.calls,
    failuresByTag,
    untypedFailures,
    answeredByFallback,
    attemptsPerCall: round((primaryAttempts + fallbackAttempts) / options.calls, 3),
    primaryAttempts,
    fallbackAttempts,
    p50Ms: round(percentile(latencies, 0.5)),
    p99Ms: round(percentile(latencies, 0.99)),
    maxMs: round(Math.max(...latencies)),
    wallMs: round(wallMs),
    openConnectionsAtEnd,
    openConnectionsAfterIdle,
    heapBeforeBytes,
    heapAfterBytes,
    heapGrowthPct: round(((heapAfterBytes - heapBeforeBytes) / heapBeforeBytes) * 100, 2),
    logLines: { ...live.logs },
    config: Object.fromEntries(Object.entries(settings).filter(([name]) => !name.endsWith("_KEY")))
  }
}
