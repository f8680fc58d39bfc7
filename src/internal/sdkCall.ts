/**
 * Running SDK calls as streams of answer parts: every call gets an `AbortSignal` that fires when
 * the stream is interrupted or left early, and every failure becomes one `LlmError`. No time limit
 * is enforced here: that is the `Timeout` policy's, which interrupts the stream.
 *
 * @internal
 */
import { Chunk, Clock, Effect, Either, Option, Scope } from "effect"
import type * as Llm from "../Llm.js"
import { type LlmError, ResponseParseError } from "../LlmError.js"
import type * as LlmRequest from "../LlmRequest.js"
import * as ProviderErrors from "./providerErrors.js"
import * as Answer from "./answer.js"
import type * as Redaction from "./redaction.js"
import * as ServerSentEvents from "./serverSentEvents.js"

/**
 * Who is calling, for error messages, and the sanitiser every text the provider sent goes through.
 *
 * @internal
 */
export interface Caller {
  readonly provider: string
  readonly scrub: Redaction.Scrub
  readonly sdk: ProviderErrors.SdkErrors
}

type Parts = Chunk.Chunk<LlmRequest.LlmStreamEvent>

const failWith = (caller: Caller, cause: unknown, textEmitted: number, headers?: Headers) =>
  Effect.flatMap(Clock.currentTimeMillis, (now) => {
    const context = { provider: caller.provider, scrub: caller.scrub, now, textEmitted }
    return Effect.fail(
      cause instanceof ServerSentEvents.ErrorEvent
        ? ProviderErrors.fromErrorEvent(cause.body, headers, context)
        : ProviderErrors.fromCause(cause, context, caller.sdk)
    )
  })

const started = <A>(run: (signal: AbortSignal) => Promise<A>, signal: AbortSignal): Promise<A> => {
  try {
    return run(signal)
  } catch (cause) {
    return Promise.reject(cause)
  }
}

/**
 * A whole answer as parts: its reasoning (one `ReasoningDelta` with the signature), its text (one
 * `TextDelta`), each tool call (`ToolCallStart`, one `ToolCallDelta` with the arguments, `ToolCall`),
 * then its `Finish`. Nothing is emitted for what the answer does not have.
 *
 * @internal
 */
export const parts = (response: LlmRequest.LlmResponse): Parts => {
  const { content, reasoning, reasoningSignature, toolCalls, ...rest } = response
  const events: Array<LlmRequest.LlmStreamEvent> = []
  if (reasoning !== undefined) {
    events.push(
      reasoningSignature === undefined
        ? { _tag: "ReasoningDelta", text: reasoning }
        : { _tag: "ReasoningDelta", text: reasoning, signature: reasoningSignature }
    )
  }
  if (content !== "") events.push({ _tag: "TextDelta", text: content })
  for (const call of toolCalls) {
    events.push({ _tag: "ToolCallStart", id: call.id, name: call.name })
    if (call.argumentsText !== "") events.push({ _tag: "ToolCallDelta", id: call.id, argumentsDelta: call.argumentsText })
    events.push({ _tag: "ToolCall", ...call })
  }
  events.push({ _tag: "Finish", ...rest })
  return Chunk.unsafeFromArray(events)
}

/**
 * Reads a whole answer's body: the answer, or the error it reports or why it is not one.
 *
 * @internal
 */
export type ReadWhole = (body: unknown) => Either.Either<LlmRequest.LlmResponse, LlmError>

/**
 * One request for a whole answer, as its parts (see {@link parts}). Interrupting the stream aborts
 * the HTTP request.
 *
 * @internal
 */
export const whole = <A>(
  caller: Caller,
  run: (signal: AbortSignal) => Promise<A>,
  read: (answer: A) => Either.Either<LlmRequest.LlmResponse, LlmError>
): Llm.Answer =>
  Answer.once(
    Effect.async<Parts, LlmError>((resume) => {
      const controller = new AbortController()
      let settled = false
      started(run, controller.signal).then(
        (answer) => {
          if (settled) return
          settled = true
          // A throw here would be lost in the promise and leave the call hanging.
          let answered: Either.Either<LlmRequest.LlmResponse, LlmError>
          try {
            answered = read(answer)
          } catch (cause) {
            return resume(failWith(caller, cause, 0))
          }
          resume(Either.isRight(answered) ? Effect.succeed(parts(answered.right)) : Effect.fail(answered.left))
        },
        (cause: unknown) => {
          if (settled) return
          settled = true
          resume(failWith(caller, cause, 0))
        }
      )
      return Effect.sync(() => {
        if (settled) return
        settled = true
        controller.abort()
      })
    })
  )

/**
 * What a provider's stream mapping keeps between events.
 *
 * @internal
 */
export interface StreamState<Event> {
  /**
   * The provider's event in one server-sent event, or `undefined` for one to skip. Throws a
   * `SyntaxError` for data that is not JSON and an `ErrorEvent` for an error the provider reports
   * in the stream.
   */
  readonly decode: (message: ServerSentEvents.Message) => Event | undefined
  /** Hands the parts one provider event carries to `emit`, in order. */
  readonly onEvent: (event: Event, emit: (part: LlmRequest.LlmStreamEvent) => void) => void
  /** Whether the provider's end-of-answer event (`[DONE]`, `message_stop`) has been read. */
  readonly done: () => boolean
  readonly finish: () => Either.Either<LlmRequest.Finish, LlmError>
  readonly emitted: () => number
}

/** Events buffered ahead of a slow consumer before reading the body pauses. */
const highWaterMark = 4096

type Pull = Llm.Pull

const end = Answer.end

/** Like the SDKs: `application/json` or any `+json` media type is a JSON body. */
const isJson = (headers: Headers): boolean => {
  const media = headers.get("content-type")?.split(";")[0]?.trim().toLowerCase()
  return media !== undefined && (media.includes("application/json") || media.endsWith("+json"))
}

/**
 * A streamed call: sends the request through the SDK (which turns an error status into its own
 * error), then reads the response's body, emitting the parts the state machine derives from its
 * events and then the one `Finish`.
 *
 * A plain loop opens the request and reads the body, decoding each network read whole
 * ({@link ServerSentEvents}) into a buffer, and each pull takes everything buffered as one chunk.
 * The consumer is woken a macrotask after a read that added events, so every combinator downstream
 * pays once per read rather than once per event.
 *
 * The answer is over at the provider's end-of-answer event: the `Finish` is emitted at once, and
 * the rest of the body is only drained (so that a connection the server then ends can be reused)
 * until the stream is released. Releasing a stream whose body has not ended aborts the request, so
 * a consumer that stops early, an interruption, or a server that keeps the connection open after
 * its last event all free the socket.
 *
 * A gateway that answers a stream request with a whole JSON body (streaming turned off) is read as
 * that whole answer, by `readWhole`; JSON that is no answer is a `ResponseParseError` that is not
 * retryable, since the same request would get the same body again.
 *
 * @internal
 */
export const stream = <Event>(
  caller: Caller,
  open: (signal: AbortSignal) => Promise<Response>,
  makeState: () => StreamState<Event>,
  readWhole: ReadWhole
): Llm.Answer =>
  Effect.suspend(() => {
    const controller = new AbortController()
    const state = makeState()
    // Set once reading pauses on a full buffer; resumed by the consumer, or when the stream ends.
    let paused: (() => void) | undefined
    const resumeReading = () => {
      const resume = paused
      paused = undefined
      resume?.()
    }

    let buffer: Array<LlmRequest.LlmStreamEvent> = []
    let reading = false
    // How the stream ends once the buffer is drained; set once, when the answer is over.
    let conclusion: Pull | undefined
    let bodyEnded = false
    let headers: Headers | undefined
    let waiting: ((resume: Effect.Effect<void>) => void) | undefined
    let wakeScheduled = false
    const wakeNow = () => {
      wakeScheduled = false
      const resume = waiting
      waiting = undefined
      resume?.(Effect.void)
    }
    const wake = () => {
      if (waiting === undefined || wakeScheduled) return
      wakeScheduled = true
      setImmediate(wakeNow)
    }

    const finished: Pull = Effect.suspend(() => {
      const finish = state.finish()
      return Either.isRight(finish) ? Effect.succeed(Chunk.of<LlmRequest.LlmStreamEvent>(finish.right)) : Effect.fail(Option.some(finish.left))
    })
    const failed = (cause: unknown): Pull => Effect.mapError(failWith(caller, cause, state.emitted(), headers), Option.some)
    const answered = (text: string): Pull => {
      let body: unknown
      try {
        body = JSON.parse(text)
      } catch {
        return Effect.fail(Option.some(notAnAnswer(caller.provider, `${caller.provider} sent a JSON body that is not valid JSON`)))
      }
      const answer = readWhole(body)
      if (Either.isRight(answer)) return Effect.succeed(parts(answer.right))
      const error = answer.left
      return Effect.fail(Option.some(error._tag === "ResponseParseError" ? notAnAnswer(caller.provider, error.message) : error))
    }

    const read = async () => {
      let outcome: Pull
      try {
        const response = await open(controller.signal)
        headers = response.headers
        if (isJson(response.headers)) {
          const text = await response.text()
          bodyEnded = true
          outcome = answered(text)
        } else {
          if (response.body === null) throw new Error("the response has no body")
          const reader = response.body.getReader()
          const emit = (part: LlmRequest.LlmStreamEvent) => {
            buffer.push(part)
          }
          const decoder = ServerSentEvents.decoder((message) => {
            const event = state.decode(message)
            if (event !== undefined) state.onEvent(event, emit)
          })
          for (;;) {
            const next = await reader.read()
            if (next.done) {
              bodyEnded = true
              break
            }
            if (conclusion !== undefined) continue
            decoder.push(next.value)
            if (state.done()) {
              conclusion = finished
              wake()
              continue
            }
            if (buffer.length === 0) continue
            wake()
            if (buffer.length >= highWaterMark) await new Promise<void>((resolve) => (paused = resolve))
          }
          outcome = finished
        }
      } catch (cause) {
        outcome = failed(cause)
      }
      // Aborting is how this stream stops a request: whoever aborted has its own outcome, and an
      // answer already over keeps its own.
      if (conclusion === undefined && !controller.signal.aborted) conclusion = outcome
      wake()
    }
    const waitForEvents = Effect.async<void>((resume) => {
      waiting = resume
      return Effect.sync(() => {
        waiting = undefined
      })
    })

    const pull: Pull = Effect.suspend(() => {
      if (buffer.length > 0) {
        const events = Chunk.unsafeFromArray(buffer)
        buffer = []
        resumeReading()
        return Effect.succeed(events)
      }
      if (conclusion !== undefined) {
        const last = conclusion
        conclusion = end
        return last
      }
      if (!reading) {
        reading = true
        void read()
      }
      return Effect.zipRight(waitForEvents, pull)
    })
    const release = Effect.sync(() => {
      if (!bodyEnded) controller.abort()
      resumeReading()
    })
    // `Scope.addFinalizer` rather than `Effect.addFinalizer`: the latter diffs and patches the
    // fiber's refs around the finalizer, about 40 µs of CPU per call with 200 in flight.
    return Effect.flatMap(Effect.scope, (scope) => Effect.as(Scope.addFinalizer(scope, release), pull))
  })

const notAnAnswer = (provider: string, message: string) =>
  new ResponseParseError({
    provider,
    message: `${message} (a whole JSON answer to a stream request)`,
    retryable: false
  })
