/**
 * Shared pieces of the provider suites: the simulator, providers pointed at it, and small helpers
 * to run a call and read the result.
 */
import { Chunk, Effect, Either, Redacted, Stream } from "effect"
import * as Path from "node:path"
import * as Simulator from "../../simulator/Simulator.js"
import * as Anthropic from "../../src/Anthropic.js"
import * as Llm from "../../src/Llm.js"
import type { LlmError } from "../../src/LlmError.js"
import type * as LlmRequest from "../../src/LlmRequest.js"
import * as OpenAi from "../../src/OpenAi.js"
import * as OpenAiCompatible from "../../src/OpenAiCompatible.js"
import { recordedFixturesDir } from "../recordedFixtures.js"

/** Distinctive fake keys: no error, message or header may ever show them. */
export const openAiKey = "sk-test-OPENAI-7f3c9a1e5b2d4c6e8a0f"
export const anthropicKey = "sk-ant-test-ANTHROPIC-2b4d6f8a0c1e3a5c"
export const compatibleKey = "gsk_test_COMPATIBLE_9e8d7c6b5a4f3e2d"

export const recorded = (file: string) => Path.join(recordedFixturesDir, file)

export const hello: LlmRequest.LlmRequest = { messages: [{ role: "user", content: "hello there" }] }

export type Provider = "openai" | "anthropic" | "compatible"

/** The simulator route each provider talks to. */
export const routeOf = (provider: Provider): Simulator.Route => (provider === "anthropic" ? "anthropic" : "openai")

/** A provider of the given kind pointed at `url` (the simulator's, or any server's). */
export const providerAt = (provider: Provider, url: string): Effect.Effect<Llm.Provider> =>
  provider === "openai"
    ? OpenAi.make({ apiKey: Redacted.make(openAiKey), baseURL: `${url}/v1` })
    : provider === "anthropic"
      ? Anthropic.make({ apiKey: Redacted.make(anthropicKey), baseURL: url })
      : OpenAiCompatible.make({
          name: "groq",
          baseURL: `${url}/v1`,
          apiKey: Redacted.make(compatibleKey),
          model: "llama-3.3-70b-versatile"
        })

/**
 * A running simulator, a provider of the given kind pointed at it, and the service over that
 * provider alone (`Llm.fromProvider`: requests validated and routed, as users call it).
 */
export const setup = (provider: Provider, options: Simulator.Options = {}) =>
  Effect.gen(function* () {
    const sim = yield* Simulator.make(options)
    const made = yield* providerAt(provider, sim.url)
    return { sim, provider: made, service: Llm.fromProvider(made), route: routeOf(provider) }
  })

/**
 * The environment of an `LlmLive` pointed at the simulator: OpenAI (the default) and Anthropic with
 * `key`, short backoff for a simulator on real time, and `extra` on top.
 */
export const liveEnv = (sim: Simulator.Simulator, key: string, extra: Record<string, string> = {}) =>
  new Map(
    Object.entries({
      OPENAI_API_KEY: key,
      OPENAI_BASE_URL: `${sim.url}/v1`,
      ANTHROPIC_API_KEY: key,
      ANTHROPIC_BASE_URL: sim.url,
      LLM_PROVIDER: "openai",
      LLM_RETRY_BASE_DELAY_MS: "5",
      LLM_RETRY_MAX_DELAY_MS: "20",
      LLM_TIMEOUT_MS: "2000",
      ...extra
    })
  )

/** Runs a stream to the end and returns its events. */
export const collect = (stream: Stream.Stream<LlmRequest.LlmStreamEvent, LlmError>) =>
  Effect.map(Stream.runCollect(stream), Chunk.toArray)

/** The text of a stream's `TextDelta`s and its one `Finish` (the stream must have exactly one, last). */
export const summarize = (events: ReadonlyArray<LlmRequest.LlmStreamEvent>) => {
  const finishes = events.filter((e) => e._tag === "Finish")
  const last = events.at(-1)
  if (finishes.length !== 1 || last?._tag !== "Finish") {
    throw new Error(`expected exactly one Finish, last; got ${finishes.length}`)
  }
  const text = events.map((e) => (e._tag === "TextDelta" ? e.text : "")).join("")
  const empty = events.filter((e) => e._tag === "TextDelta" && e.text === "").length
  return { text, finish: last, emptyDeltas: empty }
}

/** The failure of an effect, which must fail. */
export const failure = <A>(effect: Effect.Effect<A, LlmError>) =>
  Effect.flatMap(Effect.either(effect), (result) =>
    Either.isLeft(result) ? Effect.succeed(result.left) : Effect.dieMessage("expected a failure")
  )

/** Polls a condition in real time (the simulator's sockets close asynchronously). */
export const eventually = (condition: () => boolean, withinMs: number) =>
  Effect.promise(async () => {
    const start = performance.now()
    while (!condition()) {
      if (performance.now() - start > withinMs) return false
      await new Promise((resolve) => setTimeout(resolve, 5))
    }
    return true
  })

/** Everything an error exposes, as text, to search for secrets. */
export const exposed = (error: unknown) => `${String(error)}\n${JSON.stringify(error)}`

/** The parts a wire stream state emits for one provider event. */
export const emitted = (
  state: { readonly onEvent: (event: unknown, emit: (part: LlmRequest.LlmStreamEvent) => void) => void },
  event: unknown
): Array<LlmRequest.LlmStreamEvent> => {
  const parts: Array<LlmRequest.LlmStreamEvent> = []
  state.onEvent(event, (part) => parts.push(part))
  return parts
}
