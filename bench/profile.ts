/**
 * One client, one case, for a CPU profile: `npm run build && node --cpu-prof --import tsx
 * --import ./bench/built.mjs bench/profile.ts <llmLive|llmLiveFiber|openaiSdk>
 * <complete|stream|inflight|streams> [count]` (the library from `dist/`, see bench/built.mjs). Starts the simulator
 * in a child process like `bench/run.ts` does.
 *
 * `inflight` makes `count` calls (default 2000) with 200 in flight, 10 ms before headers; `streams`
 * reads `count` streams (default 100) at once of 100 events, one per network read 3 ms apart: the
 * shapes of the inflightCpu and streamCpu cases. Prints the CPU time per call or per event.
 */
import { Effect, Stream } from "effect"
import { performance } from "node:perf_hooks"
import OpenAI from "openai"
import { Llm } from "../src/index.js"
import * as Live from "./live.js"
import * as Sim from "./simulator.js"

const [client = "llmLive", kind = "complete", countArg] = process.argv.slice(2)
const count = Number(countArg ?? (kind === "stream" ? 20 : kind === "streams" ? 100 : 2000))
const sim = await Sim.spawn()
const baseURL = `${sim.url}/v1`
const live = Live.make(Live.allPolicies(baseURL))
const llm = await live.runtime.runPromise(Llm.Llm)
const sdk = new OpenAI({ apiKey: "sk-bench-not-a-real-key", baseURL, maxRetries: 0 })
const words = kind === "stream" ? 2000 : 100
const streamed = kind === "stream" || kind === "streams"
const content = streamed ? Array.from({ length: words }, (_, i) => `w${i}`).join(" ") : "Say hello to the benchmark"
const messages = [{ role: "user" as const, content }]

const once =
  client === "llmLive"
    ? streamed
      ? () => live.runtime.runPromise(Stream.runDrain(llm.stream({ messages })))
      : () => live.runtime.runPromise(Effect.asVoid(llm.complete({ messages, maxTokens: 32 })))
    : streamed
      ? async () => {
          for await (const _ of await sdk.chat.completions.create({ model: "sim-gpt", messages, stream: true })) void _
        }
      : async () => {
          await sdk.chat.completions.create({ model: "sim-gpt", messages, max_tokens: 32 })
        }

/** Runs `n` tasks with at most `concurrency` at once. */
const pool = async (n: number, concurrency: number, task: () => Promise<unknown>) => {
  let next = 0
  await Promise.all(
    Array.from({ length: Math.min(n, concurrency) }, async () => {
      while (next++ < n) await task()
    })
  )
}

const concurrency = kind === "inflight" ? 200 : kind === "streams" ? count : 1
const script = kind === "inflight" ? { delayBeforeHeadersMs: 10 } : kind === "streams" ? { delayBetweenChunksMs: 3 } : undefined

// `llmLiveFiber`: all calls from one Effect program, as an application makes them.
const loop = async (n: number) => {
  if (script !== undefined) await sim.enqueue("openai", [script], n)
  if (client !== "llmLiveFiber") return pool(n, concurrency, once)
  const one = streamed ? Stream.runDrain(llm.stream({ messages })) : Effect.asVoid(llm.complete({ messages, maxTokens: 32 }))
  return live.runtime.runPromise(Effect.forEach(Array.from({ length: n }), () => one, { concurrency, discard: true }))
}

await loop(Math.min(100, count))
await sim.reset()
const cpu = process.cpuUsage()
const start = performance.now()
await loop(count)
const ms = performance.now() - start
const spent = process.cpuUsage(cpu)
const ops = streamed ? count * words : count
console.log(
  `${client} ${kind}: ${count} in ${ms.toFixed(0)} ms, ${((spent.user + spent.system) / ops).toFixed(1)} CPU µs per ${streamed ? "event" : "call"}`
)
await live.runtime.dispose()
await sim.close()
