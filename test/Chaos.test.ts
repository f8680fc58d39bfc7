/**
 * A reduced chaos soak inside `npm test`: 500 calls at concurrency 50 through `LlmLive` against a
 * simulator injecting 20% seeded transient faults (the full one is `npm run chaos`). The simulator
 * runs on real time, so the soak does too, with a 300 ms timeout and 10-50 ms backoff.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import * as Soak from "../bench/soak.js"
import * as Simulator from "../simulator/Simulator.js"

const calls = 500
const concurrency = 50
const seed = 7

const target = (sim: Simulator.Started): Soak.Target => ({
  url: sim.url,
  stats: () =>
    Promise.resolve({
      attempts: { openai: sim.attempts("openai"), anthropic: sim.attempts("anthropic") },
      openConnections: sim.openConnections(),
      windows: sim.windows()
    })
})

const soak = (withFallback: boolean) => {
  const state: { report?: Soak.Report } = {}
  const sims: Array<Simulator.Started> = []
  beforeAll(async () => {
    const primary = await Simulator.start({ faultRate: 0.2, faults: Soak.faults, seed })
    sims.push(primary)
    const fallback = withFallback ? await Simulator.start() : undefined
    if (fallback !== undefined) sims.push(fallback)
    state.report = await Soak.run({
      calls,
      concurrency,
      primary: target(primary),
      ...(fallback === undefined ? {} : { fallback: target(fallback) }),
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
  const report = soak(false)

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

describe("chaos soak with a fault-free fallback provider", () => {
  const report = soak(true)

  it("succeeds for every call, some of them answered by the fallback", () => {
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
