import { randomUUID } from "node:crypto"
import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import * as Simulator from "../../simulator/Simulator.js"
import { connect, type PrivateRedis, redisUrl, runWorkers, startPrivateRedis, type WorkerConfig, type WorkerResult } from "./support.js"

// Several service instances are separate processes here, so these tests run in real time: each
// worker is a `node` process limited by `RateLimit` on the Redis store, calling the simulator.

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

const base = (simUrl: string, redis: string): Omit<WorkerConfig, "concurrency" | "durationMs" | "instances"> => ({
  simUrl,
  redisUrl: redis,
  apiKey: `sk-shared-${randomUUID()}`,
  keyPrefix: `test:${randomUUID()}:llm:`
})

const startsIn = (result: WorkerResult, from: number, to: number) => result.starts.filter((at) => at > from && at < to).length

describe.runIf(redisUrl !== undefined)("RateLimit shared through Redis by several processes", () => {
  const url = redisUrl ?? ""

  beforeAll(async () => {
    // Set but unreachable is a failure, not a skip.
    const probe = await connect(url)
    probe.disconnect()
  })

  describe("one budget for every instance", () => {
    it("4 processes hammering for 10 s stay within the shared rpm, with no 429 from the provider", { timeout: 60_000 }, async () => {
      const rpm = 600
      const refillMs = 60_000 / rpm
      // The simulator refuses anything over what a 600 rpm bucket can let through in 12 s (its
      // full burst, then one request per 100 ms), in one window spanning the whole run. Four
      // unshared buckets would send four times as much.
      const sim = await Simulator.start({ rpm: rpm + (12_000 / refillMs) + 10, windowMs: 60_000 })
      try {
        const shared = base(sim.url, url)
        const run = await runWorkers(
          Array.from({ length: 4 }, () => ({ ...shared, rpm, instances: 4, concurrency: 8, durationMs: 10_000 }))
        )
        const results = await run.results
        const windows = sim.windows()
        const accepted = windows.reduce((sum, window) => sum + window.accepted, 0)
        const rejected = windows.reduce((sum, window) => sum + window.rejected, 0)
        const starts = results.flatMap((result) => result.starts)
        const first = Math.min(...starts)
        const last = Math.max(...starts)
        // A token bucket lets through its capacity, then one request per refill interval.
        const allowed = rpm + Math.floor((last - first) / refillMs) + 1

        expect(last - first).toBeGreaterThan(9_000)
        expect(rejected).toBe(0)
        for (const result of results) {
          expect(result.failures).toEqual({})
          expect(result.localDecisions).toBe(0)
          // Every instance got a share, so the budget really was split between processes.
          expect(result.successes).toBeGreaterThan(0)
        }
        expect(accepted).toBeLessThanOrEqual(Math.ceil(allowed * 1.02))
        // The workers kept the limiter busy: they used nearly all of it.
        expect(accepted).toBeGreaterThanOrEqual(Math.floor(allowed * 0.9))
      } finally {
        await sim.close()
      }
    })
  })

  describe("a provider's 429", () => {
    it("seen by one process pauses the others for its retry-after", { timeout: 60_000 }, async () => {
      const sim = await Simulator.start()
      try {
        const retryAfterMs = 2000
        // The 41st call is refused; the calls before it show every worker was busy.
        sim.enqueue(
          "openai",
          ...Array.from({ length: 40 }, () => ({ text: "ok" })),
          {
            status: 429,
            headers: { "retry-after": String(retryAfterMs / 1000) },
            body: { error: { message: "Rate limit reached for requests", type: "requests", code: "rate_limit_exceeded" } }
          }
        )
        const shared = base(sim.url, url)
        const run = await runWorkers(
          Array.from({ length: 4 }, () => ({ ...shared, instances: 4, concurrency: 1, thinkMs: 50, durationMs: 5000 }))
        )
        const results = await run.results
        const seen = results.flatMap((result) => result.providerRateLimits)
        expect(seen).toHaveLength(1)
        const { at, retryAfterMs: announced } = seen[0]!
        expect(announced).toBe(retryAfterMs)
        for (const result of results) {
          // Busy before, silent during the pause (a margin either side for delivery), busy after.
          expect(startsIn(result, 0, at)).toBeGreaterThan(0)
          expect(startsIn(result, at + 400, at + retryAfterMs - 400)).toBe(0)
          expect(startsIn(result, at + retryAfterMs, Infinity)).toBeGreaterThan(0)
          // Only the provider's own 429 failed, in the process that received it.
          expect(result.failures).toEqual(result.providerRateLimits.length > 0 ? { RateLimitError: 1 } : {})
        }
      } finally {
        await sim.close()
      }
    })
  })

  describe("Redis lost and back", () => {
    let redis: PrivateRedis | undefined
    afterAll(async () => {
      await redis?.stop()
    })

    it("keeps every call working on divided local limits while Redis is down, then shares again", { timeout: 60_000 }, async () => {
      redis = await startPrivateRedis()
      const sim = await Simulator.start()
      try {
        const shared = base(sim.url, redis.url)
        const run = await runWorkers(
          Array.from({ length: 3 }, () => ({ ...shared, rpm: 120, instances: 3, concurrency: 2, durationMs: 9000 }))
        )
        await sleep(3000 - (Date.now() - run.startedAt))
        const killedAt = Date.now()
        await redis.kill()
        await sleep(6000 - (Date.now() - run.startedAt))
        await redis.restart()
        const restartedAt = Date.now()
        const results = await run.results

        for (const result of results) {
          expect(result.failures).toEqual({})
          expect(startsIn(result, 0, killedAt)).toBeGreaterThan(0)
          expect(startsIn(result, killedAt, restartedAt)).toBeGreaterThan(0)
          expect(result.logs.filter((line) => /^WARN Rate limit store unreachable .*1\/3 of each limit/.test(line))).toHaveLength(1)
          expect(result.logs.some((line) => /^INFO Rate limit store reachable again/.test(line))).toBe(true)
          expect(result.localDecisions).toBeGreaterThan(0)
          expect(result.degradedGauge).toBe(0)
        }
        // The restarted server started empty: the bucket in it was written after it came back.
        const admin = await connect(redis.url)
        try {
          const keys = await admin.keys(`${shared.keyPrefix}*`)
          expect(keys.some((key) => key.endsWith(":rpm"))).toBe(true)
        } finally {
          admin.disconnect()
        }
      } finally {
        await sim.close()
      }
    })
  })
})
