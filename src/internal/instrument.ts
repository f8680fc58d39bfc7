/**
 * One pass over a call (or one provider attempt) for the span of `Tracing` and the log line of
 * `Logging`: both policies are this one, alone or together, so a stack that traces and logs reads
 * the fiber once and ends everything in one finalizer.
 *
 * It also keeps what the policies share about the call in progress, in the fiber's context next
 * to the parent span: how many provider attempts the call has made and the usage they reported.
 * Call-level instruments (outside the retry policy) open a call; attempt-level ones (inside it)
 * number each attempt once, however many of them sit around the same attempt; `Usage.make` adds
 * each attempt's usage to the call's totals.
 *
 * Spans are Effect's (`Effect.makeSpan`, ended with the stream's exit) and lines go to the fiber's
 * own loggers with its annotations and log spans, as `Effect.logWithLevel` would send them (see
 * `emit`), so the application's logger, tracer and minimum level decide what becomes of them.
 *
 * @internal
 */
import {
  Cause,
  type Chunk,
  Clock,
  Context,
  DefaultServices,
  Effect,
  type Exit,
  type Fiber,
  FiberRef,
  FiberRefs,
  HashMap,
  HashSet,
  Inspectable,
  LogLevel,
  Option,
  type Redacted,
  Scope,
  Tracer
} from "effect"
import type * as Llm from "../Llm.js"
import type { LlmError } from "../LlmError.js"
import type * as LlmRequest from "../LlmRequest.js"
import * as Pricing from "../Pricing.js"
import * as Answer from "./answer.js"
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

/** The call a context is in, if any. */
export const unsafeCall = (context: Context.Context<never>): CallState | undefined => callOf(context)

// ---------------------------------------------------------------------------------------------
// Log levels
// ---------------------------------------------------------------------------------------------

/** The level names the library's options and environment accept. */
export type LevelName = "trace" | "debug" | "info" | "warn" | "error" | "fatal" | "none"

/** Every level name, lowest first. */
export const levelNames: ReadonlyArray<LevelName> = ["trace", "debug", "info", "warn", "error", "fatal", "none"]

/** Effect's log level of a level name. */
export const logLevelOf: Readonly<Record<LevelName, LogLevel.LogLevel>> = {
  trace: LogLevel.Trace,
  debug: LogLevel.Debug,
  info: LogLevel.Info,
  warn: LogLevel.Warning,
  error: LogLevel.Error,
  fatal: LogLevel.Fatal,
  none: LogLevel.None
}

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

/** The operation a mode stands for in log lines and metric labels, as `Llm.Service` names it. */
export const operationOf = (mode: Llm.Mode): "complete" | "stream" => (mode === "whole" ? "complete" : "stream")

/** How a call or an attempt ended, for its span and its log line. */
interface Finished {
  readonly request: LlmRequest.LlmRequest
  readonly mode: Llm.Mode
  readonly exit: Exit.Exit<unknown, LlmError>
  readonly finish: LlmRequest.Finish | undefined
  readonly text: string | undefined
  readonly latencyMs: number
  readonly firstPartMs: number | undefined
  readonly attempt: number
  readonly call: CallState | undefined
}

const truncate = (text: string, max: number) =>
  text.length <= max ? text : `${text.slice(0, max)}… (${text.length - max} more characters)`

const millis = (from: bigint, to: bigint) => Math.round(Number(to - from) / 1e3) / 1e3

const failureOf = (exit: Exit.Exit<unknown, LlmError>): LlmError | undefined =>
  exit._tag === "Failure" ? Option.getOrUndefined(Cause.failureOption(exit.cause)) : undefined

/** `success` only with a `Finish`: a stream that ended early (read in part) was interrupted. */
const outcomeOf = (exit: Exit.Exit<unknown, LlmError>, finished: boolean) =>
  exit._tag === "Success"
    ? finished
      ? "success"
      : "interrupted"
    : Cause.isInterruptedOnly(exit.cause)
      ? "interrupted"
      : "failure"

/**
 * The log line of a call (`llm call`, debug or info) or of an attempt (`llm attempt`, debug).
 *
 * @internal
 */
export interface LogOptions {
  /** The level of the call line (default `debug`); attempt lines are always at debug. */
  readonly callLevel?: "debug" | "info" | undefined
  /** The library's own minimum: lines below it are not emitted (default `trace`: all of them). */
  readonly minimumLevel?: LevelName | undefined
  /** Log the request messages and the answer text (call lines only). */
  readonly bodies?: boolean | undefined
  /** Longest body logged, in characters (default 2000). */
  readonly maxBodyChars?: number | undefined
  /** Prices for `cost_usd` when no `Usage` policy measures the attempts. */
  readonly prices?: Pricing.PriceTable | undefined
}

const logFields = (options: LogOptions, level: Level, scrub: Redaction.Scrub) => {
  const bodies = level === "call" && options.bodies === true
  const maxBodyChars = options.maxBodyChars ?? 2_000
  const prices = options.prices ?? Pricing.defaults
  return (done: Finished): Record<string, unknown> => {
    const { finish, request } = done
    const error = failureOf(done.exit)
    const fields: Record<string, unknown> = {
      provider: request.provider ?? finish?.provider ?? error?.provider ?? "unknown",
      model: scrub(finish?.model ?? request.model ?? "unknown", Redaction.maxFieldLength),
      operation: operationOf(done.mode),
      outcome: outcomeOf(done.exit, finish !== undefined),
      latency_ms: done.latencyMs
    }
    if (done.firstPartMs !== undefined) fields.first_chunk_ms = done.firstPartMs
    // The answer's id on success; the provider's request id (x-request-id / request-id) on failure.
    if (finish !== undefined) {
      fields.response_id = scrub(finish.id, Redaction.maxFieldLength)
      fields.finish_reason = finish.finishReason
    }
    if (error?.requestId !== undefined) fields.request_id = scrub(error.requestId, Redaction.maxFieldLength)
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
      if (done.text !== undefined && done.text !== "") fields.response_body = truncate(scrub(done.text), maxBodyChars)
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
    } else if (finish !== undefined) {
      fields.input_tokens = finish.usage.inputTokens
      fields.output_tokens = finish.usage.outputTokens
      fields.total_tokens = finish.usage.totalTokens
      fields.cost_usd = Pricing.cost(prices, finish.model, finish.usage)
    }
    return fields
  }
}

/**
 * Hands one line to the application's loggers, as `Effect.logWithLevel` inside
 * `Effect.annotateLogs` and `Effect.provide(context)` would, in one synchronous step: the fiber's
 * loggers, annotations and log spans, the line's fields added to the annotations, the given context
 * (the call's span) in the fiber refs a logger sees. The application's minimum level was checked when
 * the call started. Measured against those three combinators around the same line: ~50 µs less CPU
 * per line logged (35-63 µs over three paired runs of 2,000 `complete` calls on this project's
 * 2-core machine), since `annotateLogs` and `provide` each set and restore a fiber ref around it.
 */
const emit = (
  fiber: Fiber.RuntimeFiber<unknown, unknown>,
  context: Context.Context<never>,
  logLevel: LogLevel.LogLevel,
  message: string,
  fields: Record<string, unknown>
): void => {
  const loggers = fiber.getFiberRef(FiberRef.currentLoggers)
  if (HashSet.size(loggers) === 0) return
  const refs = FiberRefs.updateAs(fiber.getFiberRefs(), { fiberId: fiber.id(), fiberRef: FiberRef.currentContext, value: context })
  const options = {
    fiberId: fiber.id(),
    logLevel,
    message,
    cause: Cause.empty,
    context: refs,
    spans: fiber.getFiberRef(FiberRef.currentLogSpan),
    annotations: HashMap.mutate(fiber.getFiberRef(FiberRef.currentLogAnnotations), (annotations) => {
      for (const key in fields) HashMap.set(annotations, key, fields[key])
    }),
    date: new Date(Context.get(fiber.currentDefaultServices, Clock.Clock).unsafeCurrentTimeMillis())
  }
  Inspectable.withRedactableContext(refs, () => {
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
  /** A log line per call or per attempt. */
  readonly log?: LogOptions | undefined
  /** Key values to scrub from errors and lines, besides anything shaped like a provider key. */
  readonly secrets?: ReadonlyArray<Redacted.Redacted<string>> | undefined
}

/**
 * Effect's own default tracer, which keeps spans in memory and exports them nowhere. Under it no
 * spans are made at all (one comparison per call): nobody could read them. Any other tracer
 * (`@effect/opentelemetry`, a test's recorder) gets every span.
 */
const builtInTracer = Context.get(DefaultServices.liveServices, Tracer.Tracer)

// No stack trace per span: capturing one costs more than the rest of the span.
const spanOptions = (attributes: Record<string, unknown>) =>
  ({ kind: "client", attributes, captureStackTrace: false }) as const

/**
 * A policy that scrubs errors of secrets and adds a span and/or a log line per call or per
 * attempt, in one pass over the stream of parts.
 *
 * @internal
 */
export const make = (options: Options): Llm.Policy => {
  const level = options.level
  const scrub = Redaction.make(options.secrets)
  const scrubbed = (error: LlmError) => Redaction.scrubError(scrub, error)
  const log = options.log
  const lineLevel = level === "call" && log?.callLevel === "info" ? LogLevel.Info : LogLevel.Debug
  // The library's own filter; the application's minimum level is checked on each call.
  const logs = log !== undefined && !LogLevel.greaterThan(logLevelOf[log.minimumLevel ?? "trace"], lineLevel)
  const message = level === "call" ? "llm call" : "llm attempt"
  const fieldsOf = logs ? logFields(log, level, scrub) : undefined
  const collectText = level === "call" && log?.bodies === true
  const trace = options.trace === true

  return (next) => (request, mode) =>
      Effect.withFiberRuntime((fiber) => {
        const callerContext = fiber.currentContext
        // Skipping the work when the application's level drops the line is Effect's own check, made
        // once when the call starts rather than once the line is built.
        const logging =
          fieldsOf !== undefined && !LogLevel.greaterThan(fiber.getFiberRef(FiberRef.currentMinimumLogLevel), lineLevel)
        const tracing = trace && fiber.currentTracer !== builtInTracer
        let call = callOf(callerContext)
        /** A call this instrument opens, to put in the inner call's context. */
        let opened: CallState | undefined
        /** The call whose attempt this instrument numbers, and so clears when the attempt ends. */
        let numbered: CallState | undefined
        let attempt = 0
        if (level === "call") {
          // Only a call-level instrument that records opens the call: giving a stream a context of
          // its own (`Stream.provideContext`) costs ~40 µs per call (measured on this project's
          // 2-core machine), for attempt numbers and totals that nothing would read.
          if (call === undefined && (logging || tracing)) call = opened = { attempts: 0, attempt: 0, totals: Accumulator.empty() }
        } else if (call === undefined) {
          attempt = 1
        } else if (call.attempt > 0) {
          attempt = call.attempt
        } else {
          attempt = call.attempt = ++call.attempts
          numbered = call
        }
        const inner = Answer.mapError(next(request, mode), scrubbed)
        if (!logging && !tracing) {
          if (numbered === undefined) return inner
          const clear = Effect.sync(() => (numbered.attempt = 0))
          return Effect.flatMap(Effect.scope, (scope) => Effect.zipRight(Scope.addFinalizer(scope, clear), inner))
        }
        const clock = Context.get(fiber.currentDefaultServices, Clock.Clock)
        const timing = fiber.getFiberRef(FiberRef.currentTracerTimingEnabled)
        const start = clock.unsafeCurrentTimeNanos()

        const observed = (span: Tracer.Span | undefined): Llm.Answer => {
          let firstPartAt: bigint | undefined
          let finish: LlmRequest.Finish | undefined
          let text = ""
          const watch = (parts: Chunk.Chunk<LlmRequest.LlmStreamEvent>) => {
            for (const part of parts) {
              if (part._tag === "Finish") {
                finish = part
              } else {
                if (collectText && part._tag === "TextDelta") text += part.text
                firstPartAt ??= clock.unsafeCurrentTimeNanos()
              }
            }
          }
          const end = (exit: Exit.Exit<unknown, LlmError>): Effect.Effect<void> => {
            if (numbered !== undefined) numbered.attempt = 0
            if (span !== undefined && span.status._tag !== "Ended") {
              const error = failureOf(exit)
              if (error !== undefined) span.attribute("error.type", error._tag)
              else if (finish !== undefined) {
                const attributes = responseAttributes(finish)
                attributes["gen_ai.response.id"] = scrub(finish.id, Redaction.maxFieldLength)
                attributes["gen_ai.response.model"] = scrub(finish.model, Redaction.maxFieldLength)
                for (const key in attributes) span.attribute(key, attributes[key])
              }
              span.end(timing ? clock.unsafeCurrentTimeNanos() : 0n, exit)
            }
            if (!logging || fieldsOf === undefined) return Effect.void
            const fields = fieldsOf({
              request,
              mode,
              exit,
              finish,
              text: collectText ? text : undefined,
              latencyMs: millis(start, clock.unsafeCurrentTimeNanos()),
              // A whole answer's parts all arrive at its end: only a stream has a first part of its own.
              firstPartMs: mode === "streamed" && firstPartAt !== undefined ? millis(start, firstPartAt) : undefined,
              attempt,
              call
            })
            // A stream's finalizer runs outside the context given to the stream: the line is logged
            // in the caller's context (and this span), so log records carry the call's spans.
            const lineContext = span === undefined ? callerContext : Context.add(callerContext, Tracer.ParentSpan, span)
            return Effect.withFiberRuntime((fiber) => {
              emit(fiber, lineContext, lineLevel, message, fields)
              return Effect.void
            })
          }
          // The inner call runs under this span and, when this instrument opened the call, with it.
          const withCall =
            span === undefined && opened === undefined
              ? undefined
              : <R>(context: Context.Context<R>): Context.Context<R> => {
                  let added = context
                  if (span !== undefined) added = Context.add(added, Tracer.ParentSpan, span)
                  if (opened !== undefined) added = Context.add(added, CurrentCall, opened)
                  return added
                }
          const answer =
            withCall === undefined
              ? inner
              : Effect.map(Effect.mapInputContext(inner, withCall<Scope.Scope>), (pull) => Effect.mapInputContext(pull, withCall<never>))
          return Answer.observe(answer, watch, end)
        }
        if (!tracing) return observed(undefined)
        const attributes = requestAttributes(request)
        if (level === "attempt") attributes["llm.attempt.number"] = attempt
        return Effect.flatMap(Effect.makeSpan(level === "call" ? spanName(request) : "llm.attempt", spanOptions(attributes)), observed)
      })
}
