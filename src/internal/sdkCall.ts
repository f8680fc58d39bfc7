/**
 * Running SDK calls as Effects and Streams: every call gets an `AbortSignal` that fires when the fiber
 * is interrupted (or the stream ends early), and every failure becomes one `LlmError`. A call can
 * also carry its attempt's limits ({@link NativeLimits}): a complete's limit and a stream's
 * first-token and idle limits are then host timers that abort the request, with no extra fiber.
 *
 * @internal
 */
import { Chunk, Clock, Context, DefaultServices, Duration, Effect, type Either, Option, Stream } from "effect"
import type { LlmError } from "../LlmError.js"
import type * as LlmRequest from "../LlmRequest.js"
import type * as NativeLimits from "./nativeLimits.js"
import { maxTimerMillis } from "./nativeLimits.js"
import * as ProviderErrors from "./providerErrors.js"
import * as ServerSentEvents from "./serverSentEvents.js"

/**
 * Who is calling, for error messages, and which key to keep out of them.
 *
 * @internal
 */
export interface Caller {
  readonly provider: string
  readonly secret: string | undefined
  readonly sdk: ProviderErrors.SdkErrors
}

const failWith = (caller: Caller, cause: unknown, textEmitted: number, headers?: Headers) =>
  Effect.flatMap(Clock.currentTimeMillis, (now) => {
    const context = { provider: caller.provider, secret: caller.secret, now, textEmitted }
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
 * A complete call's limit on the live clock: after `millis` the request is aborted and the call
 * fails with `onTimeout()`.
 *
 * @internal
 */
export interface Limit {
  readonly millis: number
  readonly onTimeout: () => LlmError
}

/**
 * One request/response call whose answer `decode` reads. Interrupting the fiber aborts the HTTP
 * request; so does reaching `limit`, which then fails the call.
 *
 * @internal
 */
export const request = <A, B>(
  caller: Caller,
  run: (signal: AbortSignal) => Promise<A>,
  decode: (answer: A) => Either.Either<B, LlmError>,
  limit?: Limit
): Effect.Effect<B, LlmError> =>
  Effect.async<B, LlmError>((resume) => {
    const controller = new AbortController()
    let settled = false
    let timer: ReturnType<typeof setTimeout> | undefined
    if (limit !== undefined && limit.millis <= maxTimerMillis) {
      timer = setTimeout(() => {
        if (settled) return
        settled = true
        controller.abort()
        resume(Effect.fail(limit.onTimeout()))
      }, limit.millis)
    }
    started(run, controller.signal).then(
      (answer) => {
        if (settled) return
        settled = true
        if (timer !== undefined) clearTimeout(timer)
        resume(decode(answer))
      },
      (cause: unknown) => {
        if (settled) return
        settled = true
        if (timer !== undefined) clearTimeout(timer)
        resume(failWith(caller, cause, 0))
      }
    )
    return Effect.sync(() => {
      if (settled) return
      settled = true
      if (timer !== undefined) clearTimeout(timer)
      controller.abort()
    })
  })

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
  readonly onEvent: (event: Event) => LlmRequest.TextDelta | undefined
  readonly finish: () => Either.Either<LlmRequest.Finish, LlmError>
  readonly emitted: () => number
}

/** Events buffered ahead of a slow consumer before reading the body pauses. */
const highWaterMark = 4096

const liveClock = Context.get(DefaultServices.liveServices, Clock.Clock)

type Pull = Effect.Effect<Chunk.Chunk<LlmRequest.LlmStreamEvent>, Option.Option<LlmError>>

/**
 * A streamed call: sends the request through the SDK (which turns an error status into its own
 * error), then reads the response's body, emitting the `TextDelta`s the state machine derives from
 * its events and then the one `Finish`. The request's `AbortController` is aborted when the stream
 * ends before the body does, so a consumer that stops early or is interrupted releases the
 * connection.
 *
 * A plain loop opens the request and reads the body, decoding each network read whole
 * ({@link ServerSentEvents}) into a buffer, and each pull takes everything buffered as one chunk.
 * The consumer is woken a macrotask after a read that added events, so every combinator downstream
 * pays once per read rather than once per event.
 *
 * With `limits`, each wait of the consumer for a chunk (the first one includes opening the request)
 * is limited: `first` until a chunk has been delivered, `idle` after. On the live clock one host
 * timer per stream checks the waits, re-armed only when it fires early; on any other clock (e.g.
 * `TestClock`) each wait sleeps on that clock. A limit reached aborts the request and fails the
 * stream with `onTimeout(started)`.
 *
 * @internal
 */
export const stream = <Event>(
  caller: Caller,
  open: (signal: AbortSignal) => Promise<Response>,
  makeState: () => StreamState<Event>,
  limits?: NativeLimits.WaitLimits
): Stream.Stream<LlmRequest.LlmStreamEvent, LlmError> =>
  Stream.suspend(() => {
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
    let ended = false
    let failed = false
    let failure: unknown
    let finished = false
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
    let headers: Headers | undefined
    const read = async () => {
      try {
        const response = await open(controller.signal)
        headers = response.headers
        if (response.body === null) throw new Error("the response has no body")
        const reader = response.body.getReader()
        const decoder = ServerSentEvents.decoder((message) => {
          const event = state.decode(message)
          if (event === undefined) return
          const delta = state.onEvent(event)
          if (delta !== undefined) buffer.push(delta)
        })
        for (;;) {
          const next = await reader.read()
          if (next.done || controller.signal.aborted) break
          decoder.push(next.value)
          if (buffer.length === 0) continue
          wake()
          if (buffer.length >= highWaterMark) await new Promise<void>((resolve) => (paused = resolve))
        }
      } catch (cause) {
        // Aborting is how this stream stops a request; whoever aborted has its own outcome.
        if (!controller.signal.aborted) {
          failed = true
          failure = cause
        }
      }
      ended = true
      wake()
    }
    const waitForEvents = Effect.async<void>((resume) => {
      waiting = resume
      return Effect.sync(() => {
        waiting = undefined
      })
    })

    // Limits: whether a chunk has been delivered, when the consumer began its current wait (clock
    // millis, -1 when it is not waiting), and the error once a limit was reached.
    let delivered = false
    let since = -1
    let timedOut: LlmError | undefined
    let clock: Clock.Clock | undefined
    let timer: ReturnType<typeof setTimeout> | undefined
    let timerAt = Infinity
    const limitNow = () => (limits === undefined ? Infinity : delivered ? limits.idle : limits.first)
    const timeOut = () => {
      timedOut = limits!.onTimeout(delivered)
      controller.abort()
    }
    const arm = (at: number, now: number) => {
      if (at - now > maxTimerMillis) return
      if (timer !== undefined) {
        if (timerAt <= at) return
        clearTimeout(timer)
      }
      timerAt = at
      timer = setTimeout(onTimer, Math.max(0, at - now))
    }
    const onTimer = () => {
      timer = undefined
      timerAt = Infinity
      if (since < 0 || buffer.length > 0 || ended || timedOut !== undefined) return
      const at = since + limitNow()
      const now = Date.now()
      if (now < at) return arm(at, now)
      timeOut()
      wakeNow()
    }
    // The wait for events, limited on the stream's clock.
    const waitWithin: Pull = Effect.suspend(() => {
      if (clock === liveClock) {
        if (since < 0) {
          since = Date.now()
          arm(since + limitNow(), since)
        }
        return Effect.zipRight(waitForEvents, pull)
      }
      const now = clock!.unsafeCurrentTimeMillis()
      if (since < 0) since = now
      const remaining = since + limitNow() - now
      if (remaining <= 0) {
        timeOut()
        return pull
      }
      return Effect.zipRight(Effect.timeoutOption(waitForEvents, Duration.millis(remaining)), pull)
    })
    const limited: Pull = Effect.clockWith((current) => {
      clock = current
      return waitWithin
    })

    const pull: Pull = Effect.suspend(() => {
      if (buffer.length > 0) {
        const events = Chunk.unsafeFromArray(buffer)
        buffer = []
        since = -1
        delivered = true
        resumeReading()
        return Effect.succeed(events)
      }
      if (timedOut !== undefined) {
        if (finished) return Effect.fail(Option.none())
        finished = true
        return Effect.fail(Option.some(timedOut))
      }
      if (ended) {
        since = -1
        if (finished) return Effect.fail(Option.none())
        finished = true
        if (failed) return Effect.mapError(failWith(caller, failure, state.emitted(), headers), Option.some)
        const finish = state.finish()
        return finish._tag === "Right"
          ? Effect.succeed(Chunk.of<LlmRequest.LlmStreamEvent>(finish.right))
          : Effect.fail(Option.some(finish.left))
      }
      if (!reading) {
        reading = true
        void read()
      }
      if (limits === undefined) return Effect.zipRight(waitForEvents, pull)
      return clock === undefined ? limited : waitWithin
    })
    const release = Effect.sync(() => {
      if (timer !== undefined) clearTimeout(timer)
      timer = undefined
      // A stream the SDK finished reading has released its connection already.
      if (!ended || failed) controller.abort()
      resumeReading()
    })
    return Stream.ensuring(Stream.repeatEffectChunkOption(pull), release)
  })
