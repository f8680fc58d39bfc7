/**
 * The tool loop of `Llm.runTools` and `Llm.streamTools`: ask the model with the tools' JSON
 * Schemas, decode each call's arguments, run the handlers with bounded concurrency outside the
 * model call (so a retry never runs one again), send the results back, stop at an answer without
 * tool calls or after the last step.
 *
 * @internal
 */
import { Effect, Either, ParseResult, Predicate, Schema, Stream } from "effect"
import type * as Llm from "../Llm.js"
import { type LlmError, MaxStepsError, ToolCallError } from "../LlmError.js"
import * as LlmRequest from "../LlmRequest.js"
import type * as Tool from "../Tool.js"
import * as StreamUnwrap from "./streamUnwrap.js"
import * as Accumulator from "./usageAccumulator.js"

const clamp = (value: number | undefined, fallback: number, max: number): number =>
  value === undefined || !Number.isFinite(value) ? fallback : Math.max(1, Math.min(max, Math.floor(value)))

/** The options, the request the model is sent each step, and the tools by name. */
const setup = <Tools extends ReadonlyArray<Tool.Any>>(options: Llm.ToolsRequest<Tools>) => {
  const { concurrency, maxSteps, tools, ...request } = options
  return {
    request: { ...request, tools: tools.map((tool) => tool.definition) } satisfies LlmRequest.LlmRequest,
    byName: new Map<string, Tool.Any>(tools.map((tool) => [tool.name, tool])),
    maxSteps: clamp(maxSteps, 8, 1_000),
    concurrency: clamp(concurrency, 4, 1_000)
  }
}

/** A call ready to run (its arguments decoded), or the error result it gets instead. */
type Prepared =
  | { readonly _tag: "Run"; readonly call: LlmRequest.ResponseToolCall; readonly tool: Tool.Any; readonly args: unknown }
  | { readonly _tag: "Rejected"; readonly call: LlmRequest.ResponseToolCall; readonly reason: string }

const decodeArguments = (tool: Tool.Any, call: LlmRequest.ResponseToolCall): Effect.Effect<Either.Either<unknown, string>, never, unknown> => {
  if (call.arguments === undefined) {
    return Effect.succeed(Either.left(`the arguments are not valid JSON (${call.argumentsText.slice(0, 200)})`))
  }
  if (tool.wrapped && !(Predicate.isRecord(call.arguments) && "value" in call.arguments)) {
    return Effect.succeed(Either.left(`the arguments must be an object with a "value" property`))
  }
  const value = tool.wrapped ? (call.arguments as { readonly value: unknown }).value : call.arguments
  return Schema.decodeUnknown(tool.parameters, { errors: "all", onExcessProperty: "ignore" })(value).pipe(
    Effect.map((args) => Either.right(args)),
    Effect.catchAll((error) => Effect.succeed(Either.left(ParseResult.TreeFormatter.formatErrorSync(error))))
  )
}

/**
 * Decodes a step's calls. A call naming no tool, or whose arguments do not decode, gets an error
 * result; a tool whose previous call was rejected too fails the loop (`struck` holds those tools,
 * and is updated for the next step).
 */
const prepare = (
  response: LlmRequest.LlmResponse,
  byName: ReadonlyMap<string, Tool.Any>,
  struck: Set<string>
): Effect.Effect<ReadonlyArray<Prepared>, ToolCallError, unknown> =>
  Effect.gen(function* () {
    const prepared: Array<Prepared> = []
    const rejected = new Set<string>()
    const accepted = new Set<string>()
    for (const call of response.toolCalls) {
      const tool = byName.get(call.name)
      const decoded = tool === undefined
        ? Either.left(`there is no tool named "${call.name}" (the tools are: ${[...byName.keys()].join(", ") || "none"})`)
        : yield* decodeArguments(tool, call)
      if (Either.isRight(decoded)) {
        accepted.add(call.name)
        prepared.push({ _tag: "Run", call, tool: tool!, args: decoded.right })
        continue
      }
      if (struck.has(call.name)) {
        return yield* Effect.fail(
          new ToolCallError({
            provider: response.provider,
            tool: call.name,
            callId: call.id,
            message: `The model called "${call.name}" with a call that cannot be run, again after an error result told it what was wrong: ${decoded.left}`.slice(0, 2_000)
          })
        )
      }
      rejected.add(call.name)
      prepared.push({ _tag: "Rejected", call, reason: decoded.left })
    }
    for (const name of accepted) struck.delete(name)
    for (const name of rejected) struck.add(name)
    return prepared
  })

const describeFailure = (error: unknown): string => {
  const tag = Predicate.hasProperty(error, "_tag") && typeof error._tag === "string" ? error._tag : undefined
  const message = Predicate.hasProperty(error, "message") && typeof error.message === "string" && error.message !== "" ? error.message : undefined
  if (message !== undefined) return tag !== undefined && tag !== message ? `${tag}: ${message}` : message
  if (tag !== undefined) return tag
  try {
    return JSON.stringify(error) ?? String(error)
  } catch {
    return String(error)
  }
}

/** The `error.type` of a failed tool run: the failure's tag, else `ToolError`. */
const errorType = (error: unknown): string =>
  Predicate.hasProperty(error, "_tag") && typeof error._tag === "string" ? error._tag.slice(0, 100) : "ToolError"

/** A JSON value for the wire: what `JSON.stringify` keeps (a result it cannot write is a defect). */
const jsonOf = (value: unknown): unknown => (value === undefined ? null : (JSON.parse(JSON.stringify(value) ?? "null") as unknown))

/** Runs one prepared call: its handler under an `execute_tool` span, or its error result. */
const execute = (prepared: Prepared): Effect.Effect<Llm.ToolResult, unknown, unknown> => {
  const { call } = prepared
  if (prepared._tag === "Rejected") {
    return Effect.succeed({
      id: call.id,
      name: call.name,
      isError: true,
      result: `The call of "${call.name}" cannot be run: ${prepared.reason}. Call it again with corrected arguments.`
    })
  }
  const { args, tool } = prepared
  return Effect.gen(function* () {
    const outcome = yield* Effect.either(tool.handler(args))
    if (Either.isLeft(outcome)) {
      yield* Effect.annotateCurrentSpan("error.type", errorType(outcome.left))
      if (tool.failureMode === "fail") return yield* Effect.fail(outcome.left)
      return { id: call.id, name: call.name, isError: true, result: `The tool failed: ${describeFailure(outcome.left)}` }
    }
    const encoded = yield* Effect.orDie(Schema.encodeUnknown(tool.success)(outcome.right))
    return { id: call.id, name: call.name, isError: false, result: yield* Effect.try({ try: () => jsonOf(encoded), catch: (e) => e }).pipe(Effect.orDie) }
  }).pipe(
    Effect.withSpan(`execute_tool ${call.name}`, {
      kind: "internal",
      attributes: {
        "gen_ai.operation.name": "execute_tool",
        "gen_ai.tool.name": call.name,
        "gen_ai.tool.call.id": call.id,
        "gen_ai.tool.type": "function",
        ...(tool.description !== undefined ? { "gen_ai.tool.description": tool.description } : {})
      }
    })
  )
}

/** The messages of the next step: the model's answer and one `tool` message with the results, in call order. */
const nextMessages = (
  messages: ReadonlyArray<LlmRequest.Message>,
  response: LlmRequest.LlmResponse,
  results: ReadonlyArray<Llm.ToolResult>
): ReadonlyArray<LlmRequest.Message> => [
  ...messages,
  LlmRequest.assistantMessage(response),
  {
    role: "tool",
    content: results.map((r) => ({ type: "tool-result" as const, id: r.id, name: r.name, result: r.result, ...(r.isError ? { isError: true } : {}) }))
  }
]

const maxStepsReached = (response: LlmRequest.LlmResponse, steps: number) =>
  new MaxStepsError({
    provider: response.provider,
    steps,
    message: `${response.provider} (${response.model}) was still calling tools after ${steps} ${steps === 1 ? "step" : "steps"} (raise maxSteps if the task needs more)`
  })

const addUsage = (total: LlmRequest.Usage, usage: LlmRequest.Usage): LlmRequest.Usage => {
  const sum: { -readonly [K in keyof LlmRequest.Usage]: LlmRequest.Usage[K] } = {
    inputTokens: total.inputTokens + usage.inputTokens,
    outputTokens: total.outputTokens + usage.outputTokens,
    totalTokens: total.totalTokens + usage.totalTokens
  }
  if (total.cachedInputTokens !== undefined || usage.cachedInputTokens !== undefined) {
    sum.cachedInputTokens = (total.cachedInputTokens ?? 0) + (usage.cachedInputTokens ?? 0)
  }
  if (total.reasoningTokens !== undefined || usage.reasoningTokens !== undefined) {
    sum.reasoningTokens = (total.reasoningTokens ?? 0) + (usage.reasoningTokens ?? 0)
  }
  return sum
}

const zero: LlmRequest.Usage = { inputTokens: 0, outputTokens: 0, totalTokens: 0 }

/**
 * The loop over whole answers.
 *
 * @internal
 */
export const run = <Tools extends ReadonlyArray<Tool.Any>>(
  llm: Llm.Service,
  options: Llm.ToolsRequest<Tools>
): Effect.Effect<Llm.ToolsResponse, LlmError | Tool.Error<Tools[number]>, Tool.Context<Tools[number]>> => {
  const { byName, concurrency, maxSteps, request } = setup(options)
  const loop = Effect.gen(function* () {
    const steps: Array<Llm.Step> = []
    const struck = new Set<string>()
    let messages = request.messages
    for (let index = 0; ; index++) {
      const response = yield* llm.complete({ ...request, messages })
      if (response.toolCalls.length === 0) {
        steps.push({ index, response, toolCalls: [], results: [] })
        return { response, steps }
      }
      if (index + 1 >= maxSteps) return yield* Effect.fail(maxStepsReached(response, maxSteps))
      const prepared = yield* prepare(response, byName, struck)
      const results = yield* Effect.forEach(prepared, execute, { concurrency })
      steps.push({ index, response, toolCalls: response.toolCalls, results })
      messages = nextMessages(messages, response, results)
    }
  })
  return Effect.suspend(() => {
    let costUsd = 0
    return Accumulator.track(loop, (_exit, totals) => Effect.sync(() => void (costUsd = totals.costUsd))).pipe(
      Effect.map(({ response, steps }): Llm.ToolsResponse => ({
        response,
        steps,
        usage: { ...steps.reduce((total, step) => addUsage(total, step.response.usage), zero), costUsd }
      })),
      Effect.tap(({ steps }) => Effect.annotateCurrentSpan("llm.tools.steps", steps.length))
    )
  }).pipe(Effect.withSpan("Llm.runTools", { attributes: { "gen_ai.operation.name": "invoke_agent" } })) as Effect.Effect<
    Llm.ToolsResponse,
    LlmError | Tool.Error<Tools[number]>,
    Tool.Context<Tools[number]>
  >
}

/**
 * The loop over streamed answers: each step's parts as they come, each tool result as its handler
 * ends, and the step's boundaries.
 *
 * @internal
 */
export const stream = <Tools extends ReadonlyArray<Tool.Any>>(
  llm: Llm.Service,
  collect: (events: ReadonlyArray<LlmRequest.LlmStreamEvent>) => Effect.Effect<LlmRequest.LlmResponse, LlmError>,
  options: Llm.ToolsRequest<Tools>
): Stream.Stream<Llm.ToolsEvent, LlmError | Tool.Error<Tools[number]>, Tool.Context<Tools[number]>> => {
  const { byName, concurrency, maxSteps, request } = setup(options)
  const step = (struck: Set<string>, index: number, messages: ReadonlyArray<LlmRequest.Message>): Stream.Stream<Llm.ToolsEvent, unknown, unknown> =>
    Stream.suspend(() => {
      const events: Array<LlmRequest.LlmStreamEvent> = []
      const parts = Stream.tap(llm.stream({ ...request, messages }), (event) => Effect.sync(() => void events.push(event)))
      const after = StreamUnwrap.unwrap(
        Effect.gen(function* () {
          const response = yield* collect(events)
          if (response.toolCalls.length === 0) {
            return Stream.make<Array<Llm.ToolsEvent>>({ _tag: "StepFinish", step: { index, response, toolCalls: [], results: [] } })
          }
          if (index + 1 >= maxSteps) return yield* Effect.fail(maxStepsReached(response, maxSteps))
          const prepared = yield* prepare(response, byName, struck)
          // Results stream in the order they end, and go back to the model in call order.
          const ordered: Array<Llm.ToolResult> = new Array(prepared.length)
          const results = Stream.fromIterable(prepared.map((call, position) => ({ call, position }))).pipe(
            Stream.mapEffect(({ call, position }) => Effect.map(execute(call), (result) => ({ result, position })), { concurrency, unordered: true }),
            Stream.map(({ position, result }): Llm.ToolsEvent => {
              ordered[position] = result
              return { _tag: "ToolResult", step: index, ...result }
            })
          )
          const next = Stream.suspend(() =>
            Stream.concat(
              Stream.make<Array<Llm.ToolsEvent>>({ _tag: "StepFinish", step: { index, response, toolCalls: response.toolCalls, results: ordered } }),
              step(struck, index + 1, nextMessages(messages, response, ordered))
            )
          )
          return Stream.concat(results, next)
        })
      )
      return Stream.concat(Stream.make<Array<Llm.ToolsEvent>>({ _tag: "StepStart", index }), Stream.concat(parts, after))
    })
  return Stream.suspend(() => step(new Set(), 0, request.messages)).pipe(Stream.withSpan("Llm.streamTools", { attributes: { "gen_ai.operation.name": "invoke_agent" } })) as Stream.Stream<
    Llm.ToolsEvent,
    LlmError | Tool.Error<Tools[number]>,
    Tool.Context<Tools[number]>
  >
}
