/**
 * One pass over a call (or one provider attempt) for the span and the log line of `Tracing` and
 * `Logging`: both are built from this module, alone or together, so a stack that traces and logs
 * reads the fiber once, opens at most one local context and ends everything in one finalizer.
 *
 * It also keeps what the instruments share about the call in progress, in the fiber's context next
 * to the parent span: how many provider attempts the call has made and the usage they reported.
 * Call-level instruments (outside the retry policy) open a call; attempt-level ones (inside it)
 * number each attempt once, however many of them sit around the same attempt; `Usage.wrap` adds
 * each attempt's usage to the call's totals.
 *
 * @internal
 */
import {
  Cause,
  Clock,
  Context,
  DefaultServices,
  Effect,
  type Exit,
  type Fiber,
  FiberRef,
  HashMap,
  HashSet,
  Inspectable,
  LogLevel,
  Option,
  type Redacted,
  Scope,
  Stream,
  Tracer
} from "effect"
import type * as Llm from "../Llm.js"
import type { LlmError } from "../LlmError.js"
import type * as LlmRequest from "../LlmRequest.js"
import * as Pricing from "../Pricing.js"
import * as StreamUnwrap from "./streamUnwrap.js"
import * as Redaction from "./redaction.js"
import * as Accumulator from "./usageAccumulator.js"

/**
 * The call in progress. Its attempts run one after another, so the attempt in progress is kept
 * here too, set by the outermost attempt-level instrument and cleared when that attempt ends.
 */
export interface CallState {
  attempts: number
  /** The attempt in progress (1-based), 0 between attempts. */
  attempt: number
  readonly totals: Accumulator.Totals
}

class CurrentCall extends Context.Tag("@clearside/llm/internal/CurrentCall")<CurrentCall, CallState>() {}

const callOf = (context: Context.Context<never>): CallState | undefined =>
  context.unsafeMap.get(CurrentCall.key) as CallState | undefined

/** The call the fiber is in, if any. */
export const unsafeCall = (fiber: Fiber.RuntimeFiber<unknown, unknown>): CallState | undefined =>
  callOf(fiber.currentContext)

// ---------------------------------------------------------------------------------------------
// Span and log contents
// ---------------------------------------------------------------------------------------------

/** The span name of the GenAI conventions: `chat {model}`, or `chat` when no model is named. */
export const spanName = (request: LlmRequest.LlmRequest): string =>
  request.model === undefined ? "chat" : `chat ${request.model}`

/** The GenAI request attributes of a request. */
export const requestAttributes = (request: LlmRequest.LlmRequest): Record<string, unknown> => {
  const attributes: Record<string, unknown> = { "gen_ai.operation.name": "chat" }
  if (request.provider !== undefined) attributes["gen_ai.provider.name"] = request.provider
  if (request.model !== undefined) attributes["gen_ai.request.model"] = request.model
  if (request.maxTokens !== undefined) attributes["gen_ai.request.max_tokens"] = request.maxTokens
  if (request.temperature !== undefined) attributes["gen_ai.request.temperature"] = request.temperature
  if (request.topP !== undefined) attributes["gen_ai.request.top_p"] = request.topP
  return attributes
}

/** The GenAI response attributes of an answer. */
export const responseAttributes = (answer: LlmRequest.LlmResponse | LlmRequest.Finish): Record<string, unknown> => {
  const attributes: Record<string, unknown> = {
    "gen_ai.provider.name": answer.provider,
    "gen_ai.response.id": answer.id,
    "gen_ai.response.model": answer.model,
    "gen_ai.response.finish_reasons": [answer.finishReason],
    "gen_ai.usage.input_tokens": answer.usage.inputTokens,
    "gen_ai.usage.output_tokens": answer.usage.outputTokens
  }
  if (answer.usage.cachedInputTokens !== undefined) {
    attributes["gen_ai.usage.cache_read.input_tokens"] = answer.usage.cachedInputTokens
  }
  if (answer.usage.reasoningTokens !== undefined) {
    attributes["gen_ai.usage.reasoning.output_tokens"] = answer.usage.reasoningTokens
  }
  return attributes
}

const setAll = (span: Tracer.Span, attributes: Record<string, unknown>) => {
  for (const key in attributes) span.attribute(key, attributes[key])
}

type Operation = "complete" | "stream"
type Answer = LlmRequest.LlmResponse | LlmRequest.Finish

/** How a call or an attempt ended, for its span and its log line. */
interface Finished {
  readonly request: LlmRequest.LlmRequest
  readonly operation: Operation
  readonly exit: Exit.Exit<unknown, LlmError>
  readonly answer: Answer | undefined
  readonly text: string | undefined
  readonly latencyMs: number
  readonly firstChunkMs: number | undefined
  readonly attempt: number
  readonly call: CallState | undefined
}

const truncate = (text: string, max: number) =>
  text.length <= max ? text : `${text.slice(0, max)}… (${text.length - max} more characters)`

const millis = (from: bigint, to: bigint) => Math.round(Number(to - from) / 1e3) / 1e3

const failureOf = (exit: Exit.Exit<unknown, LlmError>): LlmError | undefined =>
  exit._tag === "Failure" ? Option.getOrUndefined(Cause.failureOption(exit.cause)) : undefined

const outcomeOf = (exit: Exit.Exit<unknown, LlmError>, finished: boolean) =>
  exit._tag === "Success"
    ? finished
      ? "success"
      : "interrupted"
    : Cause.isInterruptedOnly(exit.cause)
      ? "interrupted"
      : "failure"

/**
 * The log line of a call (`llm call`, info) or of an attempt (`llm attempt`, debug).
 *
 * @internal
 */
export interface LogOptions {
  /** Log the request messages and the answer text (call lines only). */
  readonly bodies?: boolean | undefined
  /** Longest body logged, in characters (default 2000). */
  readonly maxBodyChars?: number | undefined
  /** Prices for `cost_usd` when no `Usage.wrap` measures the attempts. */
  readonly prices?: Pricing.PriceTable | undefined
}

const logFields = (options: LogOptions, level: Level, scrub: Redaction.Scrub) => {
  const bodies = level === "call" && options.bodies === true
  const maxBodyChars = options.maxBodyChars ?? 2_000
  const prices = options.prices ?? Pricing.defaults
  return (done: Finished): Record<string, unknown> => {
    const { answer, request } = done
    const error = failureOf(done.exit)
    const fields: Record<string, unknown> = {
      provider: request.provider ?? answer?.provider ?? error?.provider ?? "unknown",
      model: answer?.model ?? request.model ?? "unknown",
      operation: done.operation,
      outcome: outcomeOf(done.exit, answer !== undefined),
      latency_ms: done.latencyMs
    }
    if (done.firstChunkMs !== undefined) fields.first_chunk_ms = done.firstChunkMs
    // The answer's id on success; the provider's request id (x-request-id / request-id) on failure.
    if (answer !== undefined) fields.response_id = answer.id
    if (error?.requestId !== undefined) fields.request_id = error.requestId
    if (answer !== undefined) fields.finish_reason = answer.finishReason
    if (error !== undefined) {
      fields.error_tag = error._tag
      fields.error_message = scrub(error.message)
      fields.retryable = error.retryable
    }
    if (request.metadata !== undefined) {
      for (const [key, value] of Object.entries(request.metadata)) fields[`metadata.${key}`] = scrub(value)
    }
    if (bodies) {
      fields.request_body = truncate(scrub(JSON.stringify(request.messages)), maxBodyChars)
      const text = answer !== undefined && "content" in answer ? answer.content : done.text
      if (text !== undefined && text !== "") fields.response_body = truncate(scrub(text), maxBodyChars)
    }
    if (level === "attempt") {
      fields.attempt = done.attempt
      return fields
    }
    const totals = done.call?.totals
    fields.attempts = Math.max(done.call?.attempts ?? 0, totals?.attempts ?? 0, 1)
    if (totals !== undefined && totals.attempts > 0) {
      fields.input_tokens = totals.inputTokens
      fields.output_tokens = totals.outputTokens
      fields.total_tokens = totals.totalTokens
      fields.cost_usd = totals.costUsd
      if (totals.estimated) fields.usage_estimated = true
    } else if (answer !== undefined) {
      fields.input_tokens = answer.usage.inputTokens
      fields.output_tokens = answer.usage.outputTokens
      fields.total_tokens = answer.usage.totalTokens
      fields.cost_usd = Pricing.cost(prices, answer.model, answer.usage)
    }
    return fields
  }
}

/**
 * Hands one line to the fiber's loggers, with its fields added to the fiber's log annotations, as
 * `Effect.logWithLevel` inside `Effect.annotateLogs` would; synchronously, without changing any
 * fiber ref (the level was checked when the call started).
 */
const emit = (
  fiber: Fiber.RuntimeFiber<unknown, unknown>,
  clock: Clock.Clock,
  logLevel: LogLevel.LogLevel,
  message: string,
  fields: Record<string, unknown>
): void => {
  const loggers = fiber.getFiberRef(FiberRef.currentLoggers)
  if (HashSet.size(loggers) === 0) return
  const context = fiber.getFiberRefs()
  const options = {
    fiberId: fiber.id(),
    logLevel,
    message,
    cause: Cause.empty,
    context,
    spans: fiber.getFiberRef(FiberRef.currentLogSpan),
    annotations: HashMap.mutate(fiber.getFiberRef(FiberRef.currentLogAnnotations), (annotations) => {
      for (const key in fields) HashMap.set(annotations, key, fields[key])
    }),
    date: new Date(clock.unsafeCurrentTimeMillis())
  }
  Inspectable.withRedactableContext(context, () => {
    for (const logger of loggers) logger.log(options)
  })
}

// ---------------------------------------------------------------------------------------------
// The instrument
// ---------------------------------------------------------------------------------------------

/** Whether an instrument sits around the whole call or around each provider attempt. */
export type Level = "call" | "attempt"

/**
 * What one instrument does.
 *
 * @internal
 */
export interface Options {
  readonly level: Level
  /** A span per call (`chat {model}`) or per attempt (`llm.attempt`). */
  readonly trace?: boolean | undefined
  /** A log line per call (info) or per attempt (debug). */
  readonly log?: LogOptions | undefined
  /** Key values to scrub from errors and lines, besides anything shaped like a provider key. */
  readonly secrets?: ReadonlyArray<Redacted.Redacted<string>> | undefined
}

/**
 * Effect's own default tracer, which keeps spans in memory and exports them nowhere. Under it no
 * spans are made at all: nobody could read them, and making them costs more than the rest of a call's
 * bookkeeping. Any other tracer (`@effect/opentelemetry`, a test's recorder) gets every span.
 */
const builtInTracer = Context.get(DefaultServices.liveServices, Tracer.Tracer)

// No stack trace per span: capturing one costs more than the rest of the span.
const spanOptions = (attributes: Record<string, unknown>) =>
  ({ kind: "client", attributes, captureStackTrace: false }) as const

/** What an instrument decided when the call or attempt started. */
interface Started {
  readonly attempt: number
  readonly call: CallState | undefined
  /** The call whose attempt this instrument numbered, to clear when the attempt ends. */
  readonly numbered: CallState | undefined
  /** The context for the inner service, or `undefined` when it is the caller's. */
  readonly context: Context.Context<never> | undefined
  readonly span: Tracer.Span | undefined
  readonly logging: boolean
  readonly clock: Clock.Clock
  readonly timing: boolean
  readonly start: bigint
}

/**
 * Wraps a service in a span and/or a log line per call or per attempt, with errors scrubbed of
 * secrets, in one pass.
 *
 * @internal
 */
export const make = (service: Llm.Service, options: Options): Llm.Service => {
  const level = options.level
  const scrub = Redaction.make(options.secrets)
  const scrubbed = (error: LlmError) => Redaction.scrubError(scrub, error)
  const logLevel = level === "call" ? LogLevel.Info : LogLevel.Debug
  const message = level === "call" ? "llm call" : "llm attempt"
  const fieldsOf = options.log === undefined ? undefined : logFields(options.log, level, scrub)
  const collectText = level === "call" && options.log?.bodies === true
  const trace = options.trace === true

  /**
   * Numbers the call or attempt and opens the span, synchronously in the caller's fiber, then runs
   * `use` with what was decided.
   */
  const begin = <A, E, R>(
    fiber: Fiber.RuntimeFiber<unknown, unknown>,
    request: LlmRequest.LlmRequest,
    omitScope: boolean,
    use: (started: Started) => Effect.Effect<A, E, R>
  ): Effect.Effect<A, E, R> => {
    const callerContext = fiber.currentContext
    let call = callOf(callerContext)
    /** A call this instrument opens, to put in the inner service's context. */
    let opened: CallState | undefined
    /** The call whose attempt this instrument numbers, and so clears when the attempt ends. */
    let numbered: CallState | undefined
    let attempt = 0
    if (level === "call") {
      if (call === undefined) call = opened = { attempts: 0, attempt: 0, totals: Accumulator.empty() }
    } else if (call === undefined) {
      attempt = 1
    } else if (call.attempt > 0) {
      attempt = call.attempt
    } else {
      attempt = call.attempt = ++call.attempts
      numbered = call
    }
    const logging =
      fieldsOf !== undefined && !LogLevel.greaterThan(fiber.getFiberRef(FiberRef.currentMinimumLogLevel), logLevel)
    const clock = Context.get(fiber.currentDefaultServices, Clock.Clock)
    const timing = fiber.getFiberRef(FiberRef.currentTracerTimingEnabled)
    const start = logging ? clock.unsafeCurrentTimeNanos() : 0n
    const withSpan = (span: Tracer.Span | undefined) => {
      let context: Context.Context<never> | undefined
      if (span !== undefined || opened !== undefined) {
        context = omitScope ? Context.omit(Scope.Scope)(callerContext) : callerContext
        if (span !== undefined) context = Context.add(context, Tracer.ParentSpan, span)
        if (opened !== undefined) context = Context.add(context, CurrentCall, opened)
      }
      return use({ attempt, call, numbered, context, span, logging, clock, timing, start })
    }
    if (!trace || fiber.currentTracer === builtInTracer) return withSpan(undefined)
    const attributes = requestAttributes(request)
    if (level === "attempt") attributes["llm.attempt.number"] = attempt
    const name = level === "call" ? spanName(request) : "llm.attempt"
    return Effect.flatMap(Effect.makeSpan(name, spanOptions(attributes)), withSpan)
  }

  const end = (
    started: Started,
    done: Omit<Finished, "latencyMs" | "attempt" | "call" | "firstChunkMs"> & { readonly firstChunkAt: bigint | undefined }
  ): Effect.Effect<void> => {
    if (started.numbered !== undefined) started.numbered.attempt = 0
    const span = started.span
    if (span !== undefined && span.status._tag !== "Ended") {
      const error = failureOf(done.exit)
      if (error !== undefined) span.attribute("error.type", error._tag)
      else if (done.answer !== undefined) setAll(span, responseAttributes(done.answer))
      span.end(started.timing ? started.clock.unsafeCurrentTimeNanos() : 0n, done.exit)
    }
    if (!started.logging || fieldsOf === undefined) return Effect.void
    const now = started.clock.unsafeCurrentTimeNanos()
    const fields = fieldsOf({
      ...done,
      latencyMs: millis(started.start, now),
      firstChunkMs: done.firstChunkAt === undefined ? undefined : millis(started.start, done.firstChunkAt),
      attempt: started.attempt,
      call: started.call
    })
    return Effect.withFiberRuntime((fiber) => {
      emit(fiber, started.clock, logLevel, message, fields)
      return Effect.void
    })
  }

  return {
    complete: (request) =>
      Effect.withFiberRuntime((fiber) =>
        begin(fiber, request, false, (started) => {
          const numbered = started.numbered
          const inner = Effect.mapError(service.complete(request), scrubbed)
          const observed =
            started.span === undefined && !started.logging
              ? numbered === undefined
                ? inner
                : Effect.ensuring(inner, Effect.sync(() => (numbered.attempt = 0)))
              : Effect.onExit(inner, (exit) =>
                  end(started, {
                    request,
                    operation: "complete",
                    exit,
                    answer: exit._tag === "Success" ? exit.value : undefined,
                    text: undefined,
                    firstChunkAt: undefined
                  })
                )
          // The span ends and the line is logged inside the span's context, so the log record
          // carries the span.
          return started.context === undefined
            ? observed
            : Effect.locally(observed, FiberRef.currentContext, started.context)
        })
      ),
    stream: (request) =>
      StreamUnwrap.unwrap(
        Effect.withFiberRuntime((fiber) =>
          begin(fiber, request, true, (started) => {
            const inner = Stream.mapError(service.stream(request), scrubbed)
            const run = started.context === undefined ? inner : Stream.provideContext(inner, started.context)
            const numbered = started.numbered
            if (started.span === undefined && !started.logging) {
              return Effect.succeed(
                numbered === undefined ? run : Stream.ensuring(run, Effect.sync(() => (numbered.attempt = 0)))
              )
            }
            const clock = started.clock
            let firstChunkAt: bigint | undefined
            let finish: LlmRequest.Finish | undefined
            let text = ""
            return Effect.succeed(
              run.pipe(
                Stream.mapChunks((events) => {
                  for (const event of events) {
                    if (event._tag === "Finish") {
                      finish = event
                    } else {
                      if (collectText) text += event.text
                      firstChunkAt ??= clock.unsafeCurrentTimeNanos()
                    }
                  }
                  return events
                }),
                Stream.ensuringWith((exit) =>
                  end(started, {
                    request,
                    operation: "stream",
                    exit,
                    answer: finish,
                    text: collectText ? text : undefined,
                    firstChunkAt
                  })
                )
              )
            )
          })
        )
      )
  }
}
