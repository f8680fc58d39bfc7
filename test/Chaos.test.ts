/**
 * A reduced chaos soak inside `npm test`: 500 calls at concurrency 50 through `LlmLive` against a
 * simulator injecting 20% seeded transient faults (the full one is `npm run chaos`). The simulators
 * run in child processes, so their recorded requests do not count in this process's heap, and on
 * real time, so the soak does too, with a 1 s attempt timeout, 10-50 ms backoff and the circuit
 * breaker at its default settings.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import * as Sim from "../bench/simulator.js"
import * as Soak from "../bench/soak.js"

const calls = 500
const concurrency = 50
const seed = 7

const soak = (options: { readonly fallback: boolean; readonly config?: Record<string, string> }) => {
  const state: { report?: Soak.Report } = {}
  const sims: Array<Sim.Remote> = []
  beforeAll(async () => {
    const primary = await Sim.spawn({ faultRate: 0.2, faults: Soak.faults, seed, faultsBy: "content" })
    sims.push(primary)
    const fallback = options.fallback ? await Sim.spawn() : undefined
    if (fallback !== undefined) sims.push(fallback)
    state.report = await Soak.run({
      calls,
      concurrency,
      primary,
      ...(fallback === undefined ? {} : { fallback }),
      ...(options.config === undefined ? {} : { config: options.config }),
      settleMs: 7000
    })
  }, 60_000)
  afterAll(async () => {
    for (const sim of sims) await sim.close()
  })
  return () => {
    if (state.report === undefined) throw new Error("the soak did not run")
    return state.report
  }
}

describe("chaos soak with three retries and no fallback", () => {
  const report = soak({ fallback: false })

  it("meets the fault rate it was given: more attempts than calls", () => {
    expect(report().attemptsPerCall).toBeGreaterThan(1.1)
  })

  it("succeeds for at least 99.8% of calls", () => {
    expect(report().successRate).toBeGreaterThanOrEqual(0.998)
  })

  it("fails only with typed LlmErrors", () => {
    expect(report().untypedFailures).toBe(0)
    expect(Object.keys(report().failuresByTag).filter((tag) => tag.startsWith("untyped:"))).toEqual([])
  })

  it("leaves no connection open at the simulator", () => {
    expect(report().openConnectionsAfterIdle).toBe(0)
  })

  it("returns the heap to within 10% of its start", () => {
    expect(report().heapGrowthPct).toBeLessThanOrEqual(10)
  })
})

// One retry instead of three, so that about 4% of calls exhaust the primary and must be answered
// by the fallback: the soak then fails if the fallback does not work.
describe("chaos soak with one retry and a fault-free fallback provider", () => {
  const report = soak({ fallback: true, config: { LLM_MAX_RETRIES: "1" } })

  it("succeeds for every call, those the primary failed answered by the fallback", () => {
    expect(report().successRate).toBe(1)
    expect(report().answeredByFallback).toBeGreaterThan(0)
  })

  it("leaves no connection open at either simulator", () => {
    expect(report().openConnectionsAfterIdle).toBe(0)
  })

  it("returns the heap to within 10% of its start", () => {
    expect(report().heapGrowthPct).toBeLessThanOrEqual(10)
  })
})
