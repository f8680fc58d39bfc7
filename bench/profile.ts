/**
 * One client, one case, for a CPU profile: `node --cpu-prof --import tsx bench/profile.ts
 * <llmLive|openaiSdk> <complete|stream> [count]`. Starts the simulator in a child process like
 * `bench/run.ts` does.
 */
import { Effect, Stream } from "effect"
import { performance } from "node:perf_hooks"
import OpenAI from "openai"
import { Llm } from "../src/index.js"
import * as Live from "./live.js"
import * as Sim from "./simulator.js"

const [client = "llmLive", kind = "complete", countArg] = process.argv.slice(2)
const count = Number(countArg ?? (kind === "stream" ? 20 : 2000))
const sim = await Sim.spawn()
const baseURL = `${sim.url}/v1`
const live = Live.make(Live.allPolicies(baseURL))
const llm = await live.runtime.runPromise(Llm.Llm)
const sdk = new OpenAI({ apiKey: "sk-bench-not-a-real-key", baseURL, maxRetries: 0 })
const content = kind === "stream" ? Array.from({ length: 2000 }, (_, i) => `w${i}`).join(" ") : "Say hello to the benchmark"
const messages = [{ role: "user" as const, content }]

const once =
  client === "llmLive"
    ? kind === "stream"
      ? () => live.runtime.runPromise(Stream.runDrain(llm.stream({ messages })))
      : () => live.runtime.runPromise(Effect.asVoid(llm.complete({ messages, maxTokens: 32 })))
    : kind === "stream"
      ? async () => {
          for await (const _ of await sdk.chat.completions.create({ model: "sim-gpt", messages, stream: true })) void _
        }
      : async () => {
          await sdk.chat.completions.create({ model: "sim-gpt", messages, max_tokens: 32 })
        }

// `llmLiveFiber`: all calls in one fiber, as an Effect program makes them.
const loop = (n: number) =>
  client === "llmLiveFiber"
    ? live.runtime.runPromise(
        Effect.gen(function* () {
          for (let i = 0; i < n; i++) {
            if (kind === "stream") yield* Stream.runDrain(llm.stream({ messages }))
            else yield* llm.complete({ messages, maxTokens: 32 })
          }
        })
      )
    : (async () => {
        for (let i = 0; i < n; i++) await once()
      })()

await loop(Math.min(100, count))
const start = performance.now()
await loop(count)
const ms = performance.now() - start
console.log(`${client} ${kind}: ${count} in ${ms.toFixed(0)} ms, ${((ms * 1000) / count).toFixed(0)} µs each`)
await live.runtime.dispose()
await sim.close()
