/**
 * The tool loop over real HTTP through the real SDKs, against the simulator scripted with tool
 * calls: the wire body of every step, concurrency, corrections, the step bound, interruption and
 * usage, on OpenAI, Anthropic and a compatible endpoint.
 */
import { describe, expect, it } from "@effect/vitest"
import { Chunk, type Duration, Effect, Fiber, Schema, Stream, TestClock } from "effect"
import type * as Simulator from "../../simulator/Simulator.js"
import * as Llm from "../../src/Llm.js"
import * as Retry from "../../src/Retry.js"
import * as Tool from "../../src/Tool.js"
import { eventually, type Provider, setup } from "./support.js"

const providers: ReadonlyArray<Provider> = ["openai", "anthropic", "compatible"]

const findEvidence = Tool.make({
  name: "find_evidence",
  description: "Searches the evidence base for a claim",
  parameters: Schema.Struct({ claim: Schema.String }),
  success: Schema.Array(Schema.Struct({ source: Schema.String, quote: Schema.String })),
  handler: ({ claim }) => Effect.succeed([{ source: "survey-2024", quote: `62% agree that ${claim}` }])
})

const countWords = Tool.make({
  name: "count_words",
  description: "Counts the words of a text",
  parameters: Schema.Struct({ text: Schema.String }),
  handler: ({ text }) => Effect.succeed({ words: text.split(/\s+/).length })
})

const ask = { messages: [{ role: "user" as const, content: "Do cities want fewer cars? Cite evidence." }] }

const bodies = (sim: Simulator.Simulator) =>
  sim.requests().filter((r) => r.route === "openai" || r.route === "anthropic").map((r) => r.body as Record<string, unknown>)

type Wire = Record<string, unknown>

/** The tool definitions a body carries, as (name, description, schema) in each wire format. */
const toolsOf = (provider: Provider, body: Wire) =>
  (body.tools as Array<Wire>).map((tool) => {
    if (provider === "anthropic") return { name: tool.name, description: tool.description, schema: tool.input_schema }
    const fn = tool.function as Wire
    expect(tool.type).toBe("function")
    return { name: fn.name, description: fn.description, schema: fn.parameters }
  })

/** The tool calls and tool results of a body's messages, in each wire format. */
const turnsOf = (provider: Provider, body: Wire) => {
  const calls: Array<{ id: unknown; name: unknown; input: unknown }> = []
  const results: Array<{ id: unknown; content: unknown; isError: boolean }> = []
  for (const message of body.messages as Array<Wire>) {
    if (provider === "anthropic") {
      if (!Array.isArray(message.content)) continue
      for (const block of message.content as Array<Wire>) {
        if (block.type === "tool_use") calls.push({ id: block.id, name: block.name, input: block.input })
        if (block.type === "tool_result") results.push({ id: block.tool_use_id, content: block.content, isError: block.is_error === true })
      }
    } else {
      for (const call of (message.tool_calls as Array<Wire> | undefined) ?? []) {
        const fn = call.function as Wire
        calls.push({ id: call.id, name: fn.name, input: JSON.parse(fn.arguments as string) })
      }
      if (message.role === "tool") results.push({ id: message.tool_call_id, content: message.content, isError: false })
    }
  }
  return { calls, results }
}

/** Moves the test clock on while the fiber runs, yielding real time to the HTTP in between. */
const drive = <A, E>(fiber: Fiber.RuntimeFiber<A, E>, step: Duration.DurationInput = "100 millis") =>
  Effect.gen(function* () {
    for (let i = 0; i < 2_000; i++) {
      const done = yield* Fiber.poll(fiber)
      if (done._tag === "Some") return yield* Fiber.join(fiber)
      yield* Effect.promise(() => new Promise((resolve) => setTimeout(resolve, 2)))
      yield* TestClock.adjust(step)
    }
    return yield* Effect.dieMessage("the loop did not end")
  })

describe("a two-tool, three-step conversation", () => {
  for (const provider of providers) {
    it.scoped(`${provider}: ends with the answer, and every step sends the tools and the turns so far`, () =>
      Effect.gen(function* () {
        const { route, service, sim } = yield* setup(provider)
        sim.enqueue(
          route,
          { toolCalls: [{ id: "c1", name: "find_evidence", arguments: { claim: "cities want fewer cars" } }], usage: { inputTokens: 40, outputTokens: 8 } },
          { text: "Counting.", toolCalls: [{ id: "c2", name: "count_words", arguments: { text: "62% agree that cities want fewer cars" } }], usage: { inputTokens: 70, outputTokens: 9 } },
          { text: "Yes: 62% agree (survey-2024).", usage: { inputTokens: 90, outputTokens: 7 } }
        )
        const { response, steps, usage } = yield* Llm.runTools({ tools: [findEvidence, countWords], ...ask }).pipe(
          Effect.provideService(Llm.Llm, service)
        )
        expect(response.content).toBe("Yes: 62% agree (survey-2024).")
        expect(steps.map((s) => s.toolCalls.map((c) => c.name))).toStrictEqual([["find_evidence"], ["count_words"], []])

        const sent = bodies(sim)
        expect(sent).toHaveLength(3)
        for (const body of sent) {
          expect(toolsOf(provider, body)).toStrictEqual([
            { name: "find_evidence", description: "Searches the evidence base for a claim", schema: expect.objectContaining({ type: "object", required: ["claim"] }) },
            { name: "count_words", description: "Counts the words of a text", schema: expect.objectContaining({ type: "object", required: ["text"] }) }
          ])
        }
        expect(turnsOf(provider, sent[0]!)).toStrictEqual({ calls: [], results: [] })
        const evidence = [{ source: "survey-2024", quote: "62% agree that cities want fewer cars" }]
        expect(turnsOf(provider, sent[1]!)).toStrictEqual({
          calls: [{ id: "c1", name: "find_evidence", input: { claim: "cities want fewer cars" } }],
          results: [{ id: "c1", content: JSON.stringify(evidence), isError: false }]
        })
        expect(turnsOf(provider, sent[2]!)).toStrictEqual({
          calls: [
            { id: "c1", name: "find_evidence", input: { claim: "cities want fewer cars" } },
            { id: "c2", name: "count_words", input: { text: "62% agree that cities want fewer cars" } }
          ],
          results: [
            { id: "c1", content: JSON.stringify(evidence), isError: false },
            { id: "c2", content: JSON.stringify({ words: 7 }), isError: false }
          ]
        })

        // Usage is the sum of the steps, as each provider reported it.
        expect(steps.map((s) => [s.response.usage.inputTokens, s.response.usage.outputTokens])).toStrictEqual([[40, 8], [70, 9], [90, 7]])
        expect(usage).toMatchObject({ inputTokens: 200, outputTokens: 24, totalTokens: 224 })
      })
    )

    it.scoped(`${provider}: streamed, each step is a streamed request and the answer streams last`, () =>
      Effect.gen(function* () {
        const { route, service, sim } = yield* setup(provider)
        sim.enqueue(
          route,
          { toolCalls: [{ id: "c1", name: "find_evidence", arguments: { claim: "cars" } }] },
          { toolCalls: [{ id: "c2", name: "count_words", arguments: { text: "a b c" } }] },
          { text: "Three words." }
        )
        const events = Chunk.toArray(
          yield* Stream.runCollect(Llm.streamTools({ tools: [findEvidence, countWords], ...ask })).pipe(Effect.provideService(Llm.Llm, service))
        )
        expect(events.filter((e) => e._tag === "StepStart")).toHaveLength(3)
        expect(events.flatMap((e) => (e._tag === "ToolResult" ? [e.id] : []))).toStrictEqual(["c1", "c2"])
        expect(events.flatMap((e) => (e._tag === "TextDelta" ? [e.text] : [])).join("")).toBe("Three words.")
        const last = events.at(-1)!
        expect(last._tag === "StepFinish" && last.step.response.content).toBe("Three words.")
        for (const body of bodies(sim)) expect(body.stream).toBe(true)
        expect(turnsOf(provider, bodies(sim)[2]!).results.map((r) => r.id)).toStrictEqual(["c1", "c2"])
      })
    )
  }
})

describe("a retried step never runs a handler again", () => {
  for (const provider of providers) {
    it.scoped(`${provider}: a 503 on the second step is retried; the first step's handler ran once`, () =>
      Effect.gen(function* () {
        const { route, service, sim } = yield* setup(provider)
        let runs = 0
        const counted = Tool.make({ ...findEvidence, handler: (args) => Effect.zipRight(Effect.sync(() => runs++), findEvidence.handler(args)) })
        sim.enqueue(route, { toolCalls: [{ id: "r1", name: "find_evidence", arguments: { claim: "cars" } }] }, { status: 503 }, { text: "Answered." })
        const retried = Llm.withPolicies(service, [yield* Retry.make({ maxRetries: 2 })])
        const fiber = yield* Effect.fork(Llm.runTools({ tools: [counted], ...ask }).pipe(Effect.provideService(Llm.Llm, retried)))
        const { response, steps } = yield* drive(fiber)
        expect(response.content).toBe("Answered.")
        expect(steps).toHaveLength(2)
        expect(runs).toBe(1)
        expect(sim.attempts(route)).toBe(3)
        const [, failed, answered] = bodies(sim)
        expect(answered).toStrictEqual(failed)
      })
    )
  }
})

describe("parallel tool calls run concurrently within the bound", () => {
  for (const provider of providers) {
    it.scoped(`${provider}: five calls of one answer, at most two handlers at once, results in call order`, () =>
      Effect.gen(function* () {
        const { route, service, sim } = yield* setup(provider)
        let running = 0
        let most = 0
        const slow = Tool.make({
          name: "slow",
          parameters: Schema.Struct({ n: Schema.Number }),
          handler: ({ n }) =>
            Effect.acquireUseRelease(
              Effect.sync(() => (most = Math.max(most, ++running))),
              () => Effect.as(Effect.sleep("1 second"), n * 10),
              () => Effect.sync(() => running--)
            )
        })
        sim.enqueue(route, { toolCalls: [1, 2, 3, 4, 5].map((n) => ({ id: `p${n}`, name: "slow", arguments: { n } })) }, { text: "done" })
        const fiber = yield* Effect.fork(Llm.runTools({ tools: [slow], concurrency: 2, ...ask }).pipe(Effect.provideService(Llm.Llm, service)))
        const { steps } = yield* drive(fiber)
        expect(most).toBe(2)
        expect(running).toBe(0)
        expect(steps[0]!.results.map((r) => [r.id, r.result])).toStrictEqual([["p1", 10], ["p2", 20], ["p3", 30], ["p4", 40], ["p5", 50]])
        expect(turnsOf(provider, bodies(sim)[1]!).results.map((r) => r.id)).toStrictEqual(["p1", "p2", "p3", "p4", "p5"])
      })
    )
  }
})

describe("bad arguments are corrected by the model after one error result", () => {
  for (const provider of providers) {
    it.scoped(`${provider}: the error result says what was wrong, the corrected call runs, the loop answers`, () =>
      Effect.gen(function* () {
        const { route, service, sim } = yield* setup(provider)
        let runs = 0
        const counted = Tool.make({ ...findEvidence, handler: (args) => Effect.zipRight(Effect.sync(() => runs++), findEvidence.handler(args)) })
        sim.enqueue(
          route,
          { toolCalls: [{ id: "b1", name: "find_evidence", arguments: { claim: 42 } }] },
          { toolCalls: [{ id: "b2", name: "find_evidence", arguments: { claim: "cars" } }] },
          { text: "Corrected." }
        )
        const { response } = yield* Llm.runTools({ tools: [counted], ...ask }).pipe(Effect.provideService(Llm.Llm, service))
        expect(response.content).toBe("Corrected.")
        expect(runs).toBe(1)
        const [error] = turnsOf(provider, bodies(sim)[1]!).results
        expect(error!.id).toBe("b1")
        expect(error!.content).toContain('The call of "find_evidence" cannot be run')
        expect(error!.content).toContain("claim")
        expect(error!.content).toContain("Expected string, actual 42")
        // Anthropic marks it on the wire; Chat Completions has no such field, the text says it.
        expect(error!.isError).toBe(provider === "anthropic")
      })
    )

    it.scoped(`${provider}: the same bad call again fails the loop with a ToolCallError`, () =>
      Effect.gen(function* () {
        const { route, service, sim } = yield* setup(provider)
        sim.enqueue(
          route,
          { toolCalls: [{ id: "b1", name: "find_evidence", argumentsText: '{"claim": ' }] },
          { toolCalls: [{ id: "b2", name: "find_evidence", arguments: {} }] }
        )
        const error = yield* Effect.flip(Llm.runTools({ tools: [findEvidence], ...ask }).pipe(Effect.provideService(Llm.Llm, service)))
        expect(error).toMatchObject({ _tag: "ToolCallError", tool: "find_evidence", callId: "b2", retryable: false })
        expect(sim.attempts(route)).toBe(2)
      })
    )
  }
})

describe("maxSteps stops a model that never stops", () => {
  for (const provider of providers) {
    it.scoped(`${provider}: a MaxStepsError after maxSteps requests`, () =>
      Effect.gen(function* () {
        const { route, service, sim } = yield* setup(provider)
        const again = { toolCalls: [{ name: "find_evidence", arguments: { claim: "more" } }] }
        sim.enqueue(route, again, again, again, again)
        const error = yield* Effect.flip(Llm.runTools({ tools: [findEvidence], maxSteps: 3, ...ask }).pipe(Effect.provideService(Llm.Llm, service)))
        expect(error).toMatchObject({ _tag: "MaxStepsError", steps: 3, retryable: false })
        expect(sim.attempts(route)).toBe(3)
      })
    )
  }
})

describe("an interrupted loop leaves no handler running and no connection open", () => {
  for (const provider of providers) {
    it.scoped(`${provider}: interrupted while its handlers run, no handler is left running and no request is in flight`, () =>
      Effect.gen(function* () {
        const { route, service, sim } = yield* setup(provider)
        let running = 0
        const stuck = Tool.make({
          name: "stuck",
          parameters: Schema.Struct({}),
          handler: () => Effect.acquireUseRelease(Effect.sync(() => running++), () => Effect.never, () => Effect.sync(() => running--))
        })
        sim.enqueue(route, { toolCalls: [{ name: "stuck", arguments: {} }, { name: "stuck", arguments: {} }] })
        const fiber = yield* Effect.fork(Llm.runTools({ tools: [stuck], ...ask }).pipe(Effect.provideService(Llm.Llm, service)))
        expect(yield* eventually(() => running === 2, 5_000)).toBe(true)
        yield* Fiber.interrupt(fiber)
        expect(running).toBe(0)
        // The one request was answered; at most its idle keep-alive socket remains, and no second request was made.
        expect(sim.openConnections()).toBeLessThanOrEqual(1)
        expect(sim.attempts(route)).toBe(1)
      })
    )

    it.scoped(`${provider}: interrupted while the model call hangs, the connection is closed`, () =>
      Effect.gen(function* () {
        const { route, service, sim } = yield* setup(provider)
        sim.enqueue(route, { hang: true })
        const fiber = yield* Effect.fork(Llm.runTools({ tools: [findEvidence], ...ask }).pipe(Effect.provideService(Llm.Llm, service)))
        expect(yield* eventually(() => sim.attempts(route) === 1 && sim.openConnections() === 1, 5_000)).toBe(true)
        yield* Fiber.interrupt(fiber)
        expect(yield* eventually(() => sim.openConnections() === 0, 1_000)).toBe(true)
      })
    )
  }
})
