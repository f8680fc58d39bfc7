/**
 * Small statistics and process helpers shared by the benchmarks and the soak.
 */
import { cpus } from "node:os"
import { setFlagsFromString } from "node:v8"
import { runInNewContext } from "node:vm"

/** The value below which `p` (0..1) of the sorted samples fall (nearest rank). */
export const percentile = (samples: ReadonlyArray<number>, p: number): number => {
  if (samples.length === 0) return Number.NaN
  const sorted = [...samples].sort((a, b) => a - b)
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil(p * sorted.length) - 1))
  return sorted[rank]!
}

/** The median of the samples. */
export const median = (samples: ReadonlyArray<number>): number => percentile(samples, 0.5)

/** Rounds to `digits` decimals, for reports. */
export const round = (value: number, digits = 2): number => Math.round(value * 10 ** digits) / 10 ** digits

/**
 * A full garbage collection. Uses `global.gc` under `--expose-gc`, and otherwise turns the flag on
 * at run time so that `npm run bench` needs no node flags.
 */
export const collectGarbage: () => void = (() => {
  const exposed = (globalThis as { gc?: () => void }).gc
  if (exposed !== undefined) return exposed
  setFlagsFromString("--expose-gc")
  return runInNewContext("gc") as () => void
})()

/** Heap in use after a full collection, in bytes. */
export const settledHeap = async (): Promise<number> => {
  for (let i = 0; i < 3; i++) {
    collectGarbage()
    await new Promise((resolve) => setImmediate(resolve))
  }
  collectGarbage()
  return process.memoryUsage().heapUsed
}

/** The machine a result was measured on. */
export const machine = () => ({
  cpu: cpus()[0]?.model.trim() ?? "unknown",
  cores: cpus().length,
  node: process.version,
  platform: `${process.platform} ${process.arch}`,
  date: new Date().toISOString()
})
