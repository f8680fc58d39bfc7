import { describe, expect, expectTypeOf, it } from "@effect/vitest"
import { Chunk, Context, Data, Effect, Exit, Fiber, Metric, MetricState, Schema, Stream, TestClock } from "effect"
import * as Llm from "../src/Llm.js"
import type { LlmError } from "../src/LlmError.js"
import * as LlmMock from "../src/LlmMock.js"
import type * as LlmRequest from "../src/LlmRequest.js"
import * as Retry from "../src/Retry.js"
import * as Tool from "../src/Tool.js"
import * as Usage from "../src/Usage.js"
import { recording } from "./recordingTracer.js"

class NotFound extends Data.TaggedError("NotFound")<{ readonly message: string }> {}

const Evidence = Schema.Struct({ source: Schema.String, quote: Schema.String })

const findEvidence = Tool.make({
  name: "find_evidence",
  description: "Searches the evidence base for a claim",
  parameters: Schema.Struct({ claim: Schema.String, limit: Schema.optional(Schema.Number) }),
  success: Schema.Array(Evidence),
  handler: ({ claim }) =>
    claim === "nothing"
      ? Effect.fail(new NotFound({ message: `no evidence for "${claim}"` }))
      : Effect.succeed([{ source: "survey-2024", quote: `62% agree that ${claim}` }])
})

const countWords = Tool.make({
  name: "count_words",
  parameters: Schema.String,
  success: Schema.NumberFromString,
  handler: (text) => Effect.succeed(text.split(/\s+/).length)
})

const ask = { messages: [{ role: "user" as const, content: "Do cities want fewer cars? Cite evidence." }] }

/** The `tool` messages of a request, as (id, result, isError). */
const toolResultsOf = (request: LlmRequest.LlmRequest) =>
  request.messages.flatMap((m) =>
    m.role === "tool" && typeof m.content !== "string"
      ? m.content.flatMap((p) => (p.type === "tool-result" ? [{ id: p.id, result: p.result, isError: p.isError ?? false }] : []))
      : []
  )

/** The tokens of one type counted in `gen_ai.client.token.usage` for a model, over all other labels. */
const tokensCounted = (model: string, type: string) =>
  Effect.map(Metric.snapshot, (pairs) => {
    let total = 0
    for (const pair of pairs) {
      const labels = new Map(pair.metricKey.tags.map((tag) => [tag.key, tag.value]))
      if (pair.metricKey.name !== "gen_ai.client.token.usage" || labels.get("gen_ai.request.model") !== model) continue
      if (labels.get("gen_ai.token.type") === type && MetricState.isHistogramState(pair.metricState)) total += pair.metricState.sum
    }
    return total
  })

/** Runs an effect to its end, moving the test clock on while it waits. */
const settle = <A, E>(effect: Effect.Effect<A, E>) =>
  Effect.gen(function* () {
    const fiber = yield* Effect.fork(effect)
    yield* TestClock.adjust("1 hour")
    return yield* Fiber.await(fiber)
  })

describe("Tool.make", () => {
  it("sends an object Schema as its JSON Schema, without $schema", () => {
    expect(findEvidence.definition).toStrictEqual({
      name: "find_evidence",
      description: "Searches the evidence base for a claim",
      parameters: {
        type: "object",
        required: ["claim"],
        properties: { claim: { type: "string" }, limit: { type: "number" } },
        additionalProperties: false
      }
    })
    expect(findEvidence.wrapped).toBe(false)
    expect(findEvidence.failureMode).toBe("error")
  })

  it("sends a root that is not an object wrapped as { value }, and keeps $defs", () => {
    expect(countWords.wrapped).toBe(true)
    expect(countWords.definition.parameters).toMatchObject({ type: "object", properties: { value: { type: "string" } }, required: ["value"] })
    interface Node { readonly name: string; readonly children: ReadonlyArray<Node> }
    const NodeSchema: Schema.Schema<Node> = Schema.Struct({
      name: Schema.String,
      children: Schema.Array(Schema.suspend((): Schema.Schema<Node> => NodeSchema))
    }).annotations({ identifier: "Node" })
    const tree = Tool.make({ name: "tree", parameters: NodeSchema, handler: () => Effect.void })
    expect(tree.definition.parameters.$defs).toBeDefined()
    expect(tree.definition.parameters.type).toBe("object")
  })

  it("sends a tool without arguments (Schema.Struct({})) as an empty object schema", () => {
    const now = Tool.make({ name: "now", parameters: Schema.Struct({}), handler: () => Effect.succeed("06:00") })
    expect(now.wrapped).toBe(false)
    expect(now.definition.parameters).toStrictEqual({ type: "object", properties: {}, required: [], additionalProperties: false })
  })
})

describe("Llm.runTools", () => {
  it("types its failures as LlmError or a tool's error, and its needs as Llm and the tools' context", () => {
    class Archive extends Context.Tag("Archive")<Archive, { readonly search: (q: string) => Effect.Effect<string> }>() {}
    const archived = Tool.make({
      name: "archive",
      parameters: Schema.Struct({ q: Schema.String }),
      handler: ({ q }) => Effect.flatMap(Archive, (archive) => archive.search(q))
    })
    const loop = Llm.runTools({ tools: [findEvidence, archived], ...ask })
    expectTypeOf(loop).toEqualTypeOf<Effect.Effect<Llm.ToolsResponse, LlmError | NotFound, Llm.Llm | Archive>>()
    const events = Llm.streamTools({ tools: [countWords], ...ask })
    expectTypeOf(events).toEqualTypeOf<Stream.Stream<Llm.ToolsEvent, LlmError, Llm.Llm>>()
  })

  it.effect("a two-tool, three-step conversation ends with the answer; every step sends the tools and the results so far", () =>
    Effect.gen(function* () {
      const { response, steps, usage } = yield* Llm.runTools({ tools: [findEvidence, countWords], ...ask })
      expect(response.content).toBe("Yes: 62% agree, in a 6-word quote.")
      expect(steps.map((s) => s.toolCalls.map((c) => c.name))).toStrictEqual([["find_evidence"], ["count_words"], []])
      expect(steps[1]!.results).toStrictEqual([{ id: "call_2", name: "count_words", result: "6", isError: false }])
      const requests = yield* LlmMock.requests
      expect(requests).toHaveLength(3)
      for (const request of requests) expect(request.tools!.map((t) => t.name)).toStrictEqual(["find_evidence", "count_words"])
      expect(toolResultsOf(requests[1]!)).toStrictEqual([
        { id: "call_1", result: [{ source: "survey-2024", quote: "62% agree that cities want fewer cars" }], isError: false }
      ])
      expect(requests[2]!.messages.map((m) => m.role)).toStrictEqual(["user", "assistant", "tool", "assistant", "tool"])
      expect(toolResultsOf(requests[2]!).map((r) => r.result)).toStrictEqual([
        [{ source: "survey-2024", quote: "62% agree that cities want fewer cars" }],
        "6"
      ])
      const sum = steps.reduce((n, s) => n + s.response.usage.totalTokens, 0)
      expect(usage.totalTokens).toBe(sum)
      expect(usage.inputTokens + usage.outputTokens).toBe(sum)
    }).pipe(
      Effect.provide(
        LlmMock.layer([
          LlmMock.toolCall("find_evidence", { claim: "cities want fewer cars" }),
          LlmMock.toolCall("count_words", { value: "62% agree that cities want fewer" }),
          LlmMock.reply("Yes: 62% agree, in a 6-word quote.")
        ])
      )
    ))

  it.effect("a handler's typed failure goes to the model as an error result by default", () =>
    Effect.gen(function* () {
      const { response, steps } = yield* Llm.runTools({ tools: [findEvidence], ...ask })
      expect(response.content).toBe("I found no evidence.")
      expect(steps[0]!.results[0]).toMatchObject({ isError: true, result: 'The tool failed: NotFound: no evidence for "nothing"' })
      expect(toolResultsOf((yield* LlmMock.requests)[1]!)[0]!.isError).toBe(true)
    }).pipe(Effect.provide(LlmMock.layer([LlmMock.toolCall("find_evidence", { claim: "nothing" }), LlmMock.reply("I found no evidence.")]))))

  it.effect("a typed failure of any shape is described to the model: a tag, an Error's message, JSON, else its text", () =>
    Effect.gen(function* () {
      const { spans, tracer } = yield* recording
      const failures: ReadonlyArray<unknown> = [{ _tag: "Busy" }, new Error("disk full"), { code: 7 }, 10n, "plain"]
      const failing = Tool.make({
        name: "failing",
        parameters: Schema.Struct({ i: Schema.Number }),
        handler: ({ i }) => Effect.fail(failures[i])
      })
      const { steps } = yield* Llm.runTools({ tools: [failing], ...ask }).pipe(Effect.withTracer(tracer))
      expect(spans.filter((s) => s.name === "execute_tool failing").map((s) => s.attributes.get("error.type"))).toStrictEqual([
        "Busy", "ToolError", "ToolError", "ToolError", "ToolError"
      ])
      expect(steps[0]!.results.map((r) => r.result)).toStrictEqual([
        "The tool failed: Busy",
        "The tool failed: disk full",
        'The tool failed: {"code":7}',
        "The tool failed: 10",
        'The tool failed: "plain"'
      ])
    }).pipe(
      Effect.provide(
        LlmMock.layer([LlmMock.toolCalls([0, 1, 2, 3, 4].map((i) => ({ name: "failing", arguments: { i } }))), LlmMock.reply("ok")])
      )
    ))

  it.effect("a result the success Schema cannot encode, or that is not JSON, is a defect", () =>
    Effect.gen(function* () {
      const wrong = Tool.make({
        name: "wrong",
        parameters: Schema.Struct({}),
        success: Schema.Number,
        handler: () => Effect.succeed("not a number" as unknown as number)
      })
      const bigint = Tool.make({ name: "bigint", parameters: Schema.Struct({}), handler: () => Effect.succeed(10n) })
      const first = yield* Effect.exit(Llm.runTools({ tools: [wrong], ...ask }))
      expect(Exit.isFailure(first) && first.cause._tag).toBe("Die")
      const second = yield* Effect.exit(Llm.runTools({ tools: [bigint], ...ask }))
      expect(Exit.isFailure(second) && second.cause._tag).toBe("Die")
    }).pipe(Effect.provide(LlmMock.layer([LlmMock.toolCall("wrong", {}), LlmMock.toolCall("bigint", {})]))))

  it.effect("a handler with no result sends null; maxSteps and concurrency that are not finite take their defaults", () =>
    Effect.gen(function* () {
      const quiet = Tool.make({ name: "quiet", parameters: Schema.Struct({}), handler: () => Effect.void })
      const { steps } = yield* Llm.runTools({ tools: [quiet], maxSteps: Number.NaN, concurrency: Infinity, ...ask })
      expect(steps[0]!.results[0]!.result).toBeNull()
    }).pipe(Effect.provide(LlmMock.layer([LlmMock.toolCall("quiet", {}), LlmMock.reply("ok")]))))

  it.effect("failureMode fail fails the loop with the handler's error", () =>
    Effect.gen(function* () {
      const strict = Tool.make({ ...findEvidence, failureMode: "fail" })
      const error = yield* Effect.flip(Llm.runTools({ tools: [strict], ...ask }))
      expect(error).toBeInstanceOf(NotFound)
      expect(yield* LlmMock.requests).toHaveLength(1)
    }).pipe(Effect.provide(LlmMock.layer([LlmMock.toolCall("find_evidence", { claim: "nothing" }), LlmMock.reply("unused")]))))

  it.effect("a defect in a handler fails the loop", () =>
    Effect.gen(function* () {
      const broken = Tool.make({ name: "broken", parameters: Schema.Struct({}), handler: () => Effect.dieMessage("bug in the tool") })
      const exit = yield* Effect.exit(Llm.runTools({ tools: [broken], ...ask }))
      expect(Exit.isFailure(exit) && exit.cause._tag).toBe("Die")
    }).pipe(Effect.provide(LlmMock.layer([LlmMock.toolCall("broken", {}), LlmMock.reply("unused")]))))

  it.effect("bad arguments get one error result saying what was wrong, and the model's corrected call runs", () =>
    Effect.gen(function* () {
      const { response, steps } = yield* Llm.runTools({ tools: [findEvidence], ...ask })
      expect(response.content).toBe("Done.")
      const [bad] = steps[0]!.results
      expect(bad!.isError).toBe(true)
      expect(bad!.result).toContain('The call of "find_evidence" cannot be run')
      expect(bad!.result).toContain("claim")
      expect(steps[1]!.results[0]!.isError).toBe(false)
    }).pipe(
      Effect.provide(
        LlmMock.layer([
          LlmMock.toolCall("find_evidence", { claim: 42 }),
          LlmMock.toolCall("find_evidence", { claim: "cars" }),
          LlmMock.reply("Done.")
        ])
      )
    ))

  it.effect("bad arguments twice for the same tool fail with a ToolCallError; broken JSON and unknown tools count too", () =>
    Effect.gen(function* () {
      const error = yield* Effect.flip(Llm.runTools({ tools: [findEvidence], ...ask }))
      expect(error._tag).toBe("ToolCallError")
      if (error._tag !== "ToolCallError") return
      expect(error).toMatchObject({ tool: "find_evidence", callId: "call_3", retryable: false })
      expect(error.message).toContain("not valid JSON")
      const requests = yield* LlmMock.requests
      expect(toolResultsOf(requests[1]!)[0]!.result).toContain('there is no tool named "find_evidenc"')
      expect(toolResultsOf(requests[2]!).at(-1)!.result).toContain("claim")
    }).pipe(
      Effect.provide(
        LlmMock.layer([
          LlmMock.toolCall("find_evidenc", { claim: "cars" }),
          LlmMock.toolCall("find_evidence", {}),
          LlmMock.toolCall("find_evidence", undefined, { argumentsText: '{"claim": ' }),
          LlmMock.reply("unused")
        ])
      )
    ))

  it.effect("a tool sent no { value } for a wrapped root gets an error result", () =>
    Effect.gen(function* () {
      const { steps } = yield* Llm.runTools({ tools: [countWords], ...ask })
      expect(steps[0]!.results[0]!.result).toContain('"value" property')
    }).pipe(Effect.provide(LlmMock.layer([LlmMock.toolCall("count_words", "a b"), LlmMock.reply("ok")]))))

  it.effect("maxSteps stops a model that never stops with a MaxStepsError, without running the last step's tools", () =>
    Effect.gen(function* () {
      let runs = 0
      const counted = Tool.make({ name: "again", parameters: Schema.Struct({}), handler: () => Effect.sync(() => ++runs) })
      const error = yield* Effect.flip(Llm.runTools({ tools: [counted], maxSteps: 3, ...ask }))
      expect(error._tag).toBe("MaxStepsError")
      expect(error).toMatchObject({ steps: 3, retryable: false })
      expect(error.message).toContain("after 3 steps")
      expect(runs).toBe(2)
      expect(yield* LlmMock.requests).toHaveLength(3)
      const defaulted = yield* Effect.flip(Llm.runTools({ tools: [counted], ...ask }))
      expect(defaulted).toMatchObject({ _tag: "MaxStepsError", steps: 8 })
    }).pipe(Effect.provide(LlmMock.layer([], { fallback: LlmMock.toolCall("again", {}) }))))

  it.effect("parallel calls run concurrently, at most `concurrency` at once, results in call order", () =>
    Effect.gen(function* () {
      let running = 0
      let most = 0
      const slow = Tool.make({
        name: "slow",
        parameters: Schema.Struct({ n: Schema.Number }),
        handler: ({ n }) =>
          Effect.acquireUseRelease(
            Effect.sync(() => (most = Math.max(most, ++running))),
            () => Effect.as(Effect.sleep(`${10 - n} seconds`), n),
            () => Effect.sync(() => running--)
          )
      })
      const fiber = yield* Effect.fork(Llm.runTools({ tools: [slow], concurrency: 2, ...ask }))
      yield* TestClock.adjust("9 seconds")
      expect(most).toBe(2)
      expect(running).toBe(2)
      yield* TestClock.adjust("1 minute")
      const { steps } = yield* Fiber.join(fiber)
      expect(most).toBe(2)
      expect(steps[0]!.results.map((r) => r.result)).toStrictEqual([1, 2, 3, 4, 5])
    }).pipe(
      Effect.provide(
        LlmMock.layer([LlmMock.toolCalls([1, 2, 3, 4, 5].map((n) => ({ name: "slow", arguments: { n } }))), LlmMock.reply("done")])
      )
    ))

  it.effect("interrupting the loop interrupts its running handlers", () =>
    Effect.gen(function* () {
      let started = 0
      let interrupted = 0
      const stuck = Tool.make({
        name: "stuck",
        parameters: Schema.Struct({}),
        handler: () => Effect.zipRight(Effect.sync(() => started++), Effect.never).pipe(Effect.onInterrupt(() => Effect.sync(() => interrupted++)))
      })
      const fiber = yield* Effect.fork(Llm.runTools({ tools: [stuck], ...ask }))
      yield* TestClock.adjust("1 second")
      expect(started).toBe(2)
      yield* Fiber.interrupt(fiber)
      expect(interrupted).toBe(2)
    }).pipe(Effect.provide(LlmMock.layer([LlmMock.toolCalls([{ name: "stuck", arguments: {} }, { name: "stuck", arguments: {} }])]))))

  it.effect("a retried step never runs a handler again: handlers run outside the model call", () =>
    Effect.gen(function* () {
      let runs = 0
      const once = Tool.make({ name: "once", parameters: Schema.Struct({}), handler: () => Effect.sync(() => ++runs) })
      const mock = yield* LlmMock.make([LlmMock.toolCall("once", {}), LlmMock.fail("OverloadedError"), LlmMock.reply("answered")])
      const service = Llm.withPolicies(mock, [yield* Retry.make({ maxRetries: 2 })])
      const exit = yield* settle(Llm.runTools({ tools: [once], ...ask }).pipe(Effect.provideService(Llm.Llm, service)))
      expect(Exit.isSuccess(exit) && exit.value.response.content).toBe("answered")
      expect(runs).toBe(1)
      expect(yield* mock.requests).toHaveLength(3)
    }))

  it.effect("usage and cost add up across steps, in the result, in Usage.withUsage and in the token metric", () =>
    Effect.gen(function* () {
      const before = yield* tokensCounted("priced", "input")
      const mock = yield* LlmMock.make([
        LlmMock.toolCall("find_evidence", { claim: "cars" }, { usage: { inputTokens: 100, outputTokens: 10, totalTokens: 110 } }),
        LlmMock.reply("Answer.", { usage: { inputTokens: 200, outputTokens: 20, totalTokens: 220, cachedInputTokens: 50 } })
      ], { model: "priced" })
      const service = Llm.withPolicies(mock, [yield* Usage.make({ prices: { priced: { input: 1, output: 10 } } })])
      const [{ usage }, summary] = yield* Usage.withUsage(
        Llm.runTools({ tools: [findEvidence], ...ask }).pipe(Effect.provideService(Llm.Llm, service))
      )
      expect(usage).toMatchObject({ inputTokens: 300, outputTokens: 30, totalTokens: 330, cachedInputTokens: 50 })
      expect(summary).toMatchObject({ attempts: 2, inputTokens: 300, outputTokens: 30, totalTokens: 330 })
      expect(usage.costUsd).toBeGreaterThan(0)
      expect(usage.costUsd).toBeCloseTo(summary.costUsd, 12)
      expect((yield* tokensCounted("priced", "input")) - before).toBe(300)
    }))

  it.effect("each tool run is an execute_tool span under the loop's span, with the GenAI attributes", () =>
    Effect.gen(function* () {
      const { spans, tracer } = yield* recording
      yield* Llm.runTools({ tools: [findEvidence, countWords], ...ask }).pipe(Effect.withTracer(tracer))
      const loop = spans.find((s) => s.name === "Llm.runTools")!
      expect(loop.attributes.get("llm.tools.steps")).toBe(2)
      const tools = spans.filter((s) => s.name.startsWith("execute_tool"))
      expect(tools.map((s) => s.name)).toStrictEqual(["execute_tool find_evidence", "execute_tool find_evidence"])
      for (const span of tools) {
        expect(span.attributes.get("gen_ai.operation.name")).toBe("execute_tool")
        expect(span.attributes.get("gen_ai.tool.name")).toBe("find_evidence")
        expect(span.parent._tag === "Some" && span.parent.value.spanId).toBe(loop.spanId)
      }
      expect(tools.map((s) => s.attributes.get("gen_ai.tool.call.id"))).toStrictEqual(["call_1", "call_2"])
      expect(tools[1]!.attributes.get("error.type")).toBe("NotFound")
    }).pipe(
      Effect.provide(
        LlmMock.layer([
          LlmMock.toolCalls([{ name: "find_evidence", arguments: { claim: "cars" } }, { name: "find_evidence", arguments: { claim: "nothing" } }]),
          LlmMock.reply("ok")
        ])
      )
    ))
})

describe("Llm.streamTools", () => {
  it.effect("streams each step's parts, each tool result and the step boundaries; the last StepFinish holds the answer", () =>
    Effect.gen(function* () {
      const events = Chunk.toArray(yield* Stream.runCollect(Llm.streamTools({ tools: [findEvidence, countWords], ...ask })))
      expect(events.map((e) => e._tag)).toStrictEqual([
        "StepStart", "ToolCallStart", "ToolCallDelta", "ToolCall", "Finish", "ToolResult", "StepFinish",
        "StepStart", "TextDelta", "Finish", "StepFinish"
      ])
      const last = events.at(-1)!
      expect(last._tag === "StepFinish" && last.step.response.content).toBe("Enough.")
      const requests = yield* LlmMock.calls
      expect(requests.map((c) => c.method)).toStrictEqual(["stream", "stream"])
      expect(toolResultsOf(requests[1]!.request)[0]!.result).toStrictEqual([{ source: "survey-2024", quote: "62% agree that cars" }])
    }).pipe(Effect.provide(LlmMock.layer([LlmMock.toolCall("find_evidence", { claim: "cars" }), LlmMock.reply("Enough.")]))))

  it.effect("interrupting the stream interrupts its running handlers", () =>
    Effect.gen(function* () {
      let running = 0
      const stuck = Tool.make({
        name: "stuck",
        parameters: Schema.Struct({}),
        handler: () => Effect.acquireUseRelease(Effect.sync(() => running++), () => Effect.never, () => Effect.sync(() => running--))
      })
      const fiber = yield* Effect.fork(Stream.runDrain(Llm.streamTools({ tools: [stuck], ...ask })))
      yield* TestClock.adjust("1 second")
      expect(running).toBe(2)
      yield* Fiber.interrupt(fiber)
      expect(running).toBe(0)
    }).pipe(Effect.provide(LlmMock.layer([LlmMock.toolCalls([{ name: "stuck", arguments: {} }, { name: "stuck", arguments: {} }])]))))

  it.effect("tool results stream as handlers end; the next request has them in call order", () =>
    Effect.gen(function* () {
      const timed = Tool.make({
        name: "timed",
        parameters: Schema.Struct({ ms: Schema.Number }),
        handler: ({ ms }) => Effect.as(Effect.sleep(ms), ms)
      })
      const fiber = yield* Effect.fork(Stream.runCollect(Llm.streamTools({ tools: [timed], ...ask })))
      yield* TestClock.adjust("1 second")
      const events = Chunk.toArray(yield* Fiber.join(fiber))
      expect(events.flatMap((e) => (e._tag === "ToolResult" ? [e.result] : []))).toStrictEqual([10, 30])
      const finish = events.find((e) => e._tag === "StepFinish")!
      expect(finish._tag === "StepFinish" && finish.step.results.map((r) => r.result)).toStrictEqual([30, 10])
      expect(toolResultsOf((yield* LlmMock.requests)[1]!).map((r) => r.result)).toStrictEqual([30, 10])
    }).pipe(
      Effect.provide(
        LlmMock.layer([LlmMock.toolCalls([{ name: "timed", arguments: { ms: 30 } }, { name: "timed", arguments: { ms: 10 } }]), LlmMock.reply("ok")])
      )
    ))

  it.effect("fails with MaxStepsError and ToolCallError like runTools", () =>
    Effect.gen(function* () {
      const error = yield* Effect.flip(Stream.runDrain(Llm.streamTools({ tools: [findEvidence], maxSteps: 2, ...ask })))
      expect(error._tag).toBe("MaxStepsError")
      const bad = yield* Effect.flip(Stream.runDrain(Llm.streamTools({ tools: [findEvidence], ...ask })))
      expect(bad._tag).toBe("ToolCallError")
    }).pipe(
      Effect.provide(
        LlmMock.layer([
          LlmMock.toolCall("find_evidence", { claim: "cars" }),
          LlmMock.toolCall("find_evidence", { claim: "cars" }),
          LlmMock.toolCall("find_evidence", {}),
          LlmMock.toolCall("find_evidence", {})
        ])
      )
    ))
})
