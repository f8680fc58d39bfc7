/**
 * `npm run chaos`: the full soak, 5,000 calls at concurrency 50 against a simulator (in a child
 * process) injecting 20% transient faults with a fixed seed, once with three retries and no
 * fallback, once with a fault-free fallback provider. Writes `bench/results/chaos.json` and
 * `chaos.md`. CHAOS_CALLS, CHAOS_CONCURRENCY, CHAOS_SEED override the defaults.
 */
import { writeFileSync } from "node:fs"
import * as Sim from "./simulator.js"
import * as Soak from "./soak.js"
import { machine, round } from "./stats.js"

const env = (name: string, fallback: number) => {
  const value = Number(process.env[name])
  return Number.isFinite(value) && value > 0 ? value : fallback
}
const calls = env("CHAOS_CALLS", 5000)
const concurrency = env("CHAOS_CONCURRENCY", 50)
const seed = env("CHAOS_SEED", 7)

const soak = async (withFallback: boolean) => {
  const primary = await Sim.spawn({ faultRate: 0.2, faults: Soak.faults, seed, faultsBy: "content" })
  const fallback = withFallback ? await Sim.spawn() : undefined
  try {
    console.log(`soak: ${calls} calls, concurrency ${concurrency}, 20% faults, seed ${seed}, fallback ${withFallback ? "on" : "off"}`)
    const report = await Soak.run({ calls, concurrency, primary, ...(fallback === undefined ? {} : { fallback }) })
    console.log(JSON.stringify(report, null, 1))
    return report
  } finally {
    await primary.close()
    await fallback?.close()
  }
}

const noFallback = await soak(false)
const withFallback = await soak(true)

const goals = (r: Soak.Report, minSuccess: number) => ({
  success: r.successRate >= minSuccess,
  allFailuresTyped: r.untypedFailures === 0,
  noOpenConnections: r.openConnectionsAfterIdle === 0,
  heapWithin10Pct: r.heapGrowthPct <= 10
})
const results = {
  machine: machine(),
  calls,
  concurrency,
  seed,
  faultRate: 0.2,
  faults: Soak.faults,
  noFallback: { ...noFallback, goals: goals(noFallback, 0.998) },
  withFallback: { ...withFallback, goals: goals(withFallback, 1) }
}
writeFileSync(new URL("./results/chaos.json", import.meta.url), JSON.stringify(results, null, 2) + "\n")

const row = (name: string, r: Soak.Report) =>
  `| ${name} | ${round(r.successRate * 100, 2)}% | ${JSON.stringify(r.failuresByTag).replaceAll("|", "/")} | ${r.attemptsPerCall} | ${r.p50Ms} | ${r.p99Ms} | ${r.openConnectionsAtEnd} / ${r.openConnectionsAfterIdle} | ${round(r.heapBeforeBytes / 2 ** 20, 1)} → ${round(r.heapAfterBytes / 2 ** 20, 1)} MiB (${r.heapGrowthPct}%) | ${round(r.wallMs / 1000, 1)} |`
const md = [
  `Chaos soak measured ${results.machine.date.slice(0, 10)} on ${results.machine.cpu}, ${results.machine.cores} cores, Node ${results.machine.node}: ${calls} calls (every 4th a stream), concurrency ${concurrency}, 20% faults (${Soak.faults.join(", ")}), seed ${seed}, LLM_TIMEOUT_MS=${noFallback.config.LLM_TIMEOUT_MS ?? "?"}, 3 retries with 10-50 ms backoff, the circuit breaker at its defaults (ratio 0.5 over 10 s, at least 20 outcomes, 30 s cooldown); the second run adds LLM_FALLBACK to a fault-free simulator (${withFallback.answeredByFallback} calls answered there). Warm-up calls (100 per run) are not counted.`,
  "",
  "| run | success | failures by tag | attempts per call | p50 (ms) | p99 (ms) | open connections at end / after idle | heap (after GC) | wall (s) |",
  "| --- | ---: | --- | ---: | ---: | ---: | ---: | --- | ---: |",
  row("3 retries, no fallback (goal ≥ 99.8%)", noFallback),
  row("3 retries + fallback (goal 100%)", withFallback),
  ""
].join("\n")
writeFileSync(new URL("./results/chaos.md", import.meta.url), md)
console.log(md)
