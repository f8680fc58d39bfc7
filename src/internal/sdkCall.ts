/**
 * Running SDK calls as Effects and Streams: every call gets an `AbortSignal` that fires when the fiber
 * is interrupted (or the stream's scope closes), and every failure becomes one `LlmError`.
 *
 * @internal
 */
import { Chunk, Clock, Effect, Either, Option, Stream } from "effect"
import type { LlmError } from "../LlmError.js"
import type * as LlmRequest from "../LlmRequest.js"
import * as ProviderErrors from "./providerErrors.js"

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

const failWith = (caller: Caller, cause: unknown, textEmitted: number) =>
  Effect.flatMap(Clock.currentTimeMillis, (now) =>
    Effect.fail(
      ProviderErrors.fromCause(cause, { provider: caller.provider, secret: caller.secret, now, textEmitted }, caller.sdk)
    )
  )

const identity = (u: unknown) => u

/**
 * One request/response call. Interrupting the fiber aborts the HTTP request.
 *
 * @internal
 */
export const request = <A>(
  caller: Caller,
  run: (signal: AbortSignal) => Promise<A>
): Effect.Effect<A, LlmError> =>
  Effect.catchAll(Effect.tryPromise({ try: run, catch: identity }), (cause) => failWith(caller, cause, 0))

/**
 * What a provider's stream mapping keeps between events.
 *
 * @internal
 */
export interface StreamState<Event> {
  readonly onEvent: (event: Event) => LlmRequest.TextDelta | undefined
  readonly finish: () => Either.Either<LlmRequest.Finish, LlmError>
  readonly emitted: () => number
}

/** Events buffered ahead of a slow consumer before reading from the SDK pauses. */
const highWaterMark = 4096

/**
 * A streamed call: opens the SDK stream, emits the `TextDelta`s the state machine derives from its
 * events and then the one `Finish`. The request's `AbortController` is aborted when the stream's scope
 * closes, so a consumer that stops early or is interrupted releases the connection.
 *
 * A plain loop reads the SDK's iterator into a buffer, and each pull takes everything buffered as
 * one chunk. The consumer is woken a macrotask after the first new event, so all the events of one
 * network read (decoded by the SDK in microtasks) arrive together and every combinator downstream
 * pays once per read rather than once per event.
 *
 * @internal
 */
export const stream = <Event>(
  caller: Caller,
  open: (signal: AbortSignal) => Promise<AsyncIterable<Event>>,
  makeState: () => StreamState<Event>
): Stream.Stream<LlmRequest.LlmStreamEvent, LlmError> =>
  Stream.unwrapScoped(
    Effect.gen(function* () {
      const controller = new AbortController()
      // Set once reading pauses on a full buffer; resumed by the consumer, or by the finalizer.
      let paused: (() => void) | undefined
      const resumeReading = () => {
        const resume = paused
        paused = undefined
        resume?.()
      }
      yield* Effect.addFinalizer(() =>
        Effect.sync(() => {
          controller.abort()
          resumeReading()
        })
      )
      const state = makeState()
      const toError = (cause: unknown) => failWith(caller, cause, state.emitted())
      const iterable = yield* Effect.catchAll(
        Effect.tryPromise({ try: () => open(controller.signal), catch: identity }),
        toError
      )
      const iterator = iterable[Symbol.asyncIterator]()

      let buffer: Array<LlmRequest.LlmStreamEvent> = []
      let reading = false
      let ended = false
      let failed = false
      let failure: unknown
      let finished = false
      let waiting: ((resume: Effect.Effect<void>) => void) | undefined
      let wakeScheduled = false
      const wakeLater = () => {
        wakeScheduled = false
        const resume = waiting
        waiting = undefined
        resume?.(Effect.void)
      }
      const wake = () => {
        if (waiting === undefined || wakeScheduled) return
        wakeScheduled = true
        setImmediate(wakeLater)
      }
      const read = async () => {
        try {
          for (;;) {
            const next = await iterator.next()
            if (next.done === true || controller.signal.aborted) break
            const delta = state.onEvent(next.value)
            if (delta === undefined) continue
            buffer.push(delta)
            wake()
            if (buffer.length >= highWaterMark) await new Promise<void>((resolve) => (paused = resolve))
          }
        } catch (cause) {
          failed = true
          failure = cause
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
      const pull: Effect.Effect<Chunk.Chunk<LlmRequest.LlmStreamEvent>, Option.Option<LlmError>> = Effect.suspend(() => {
        if (buffer.length > 0) {
          const events = Chunk.unsafeFromArray(buffer)
          buffer = []
          resumeReading()
          return Effect.succeed(events)
        }
        if (ended) {
          if (finished) return Effect.fail(Option.none())
          finished = true
          if (failed) return Effect.mapError(toError(failure), Option.some)
          return Either.match(state.finish(), {
            onLeft: (error) => Effect.fail(Option.some(error)),
            onRight: (event) => Effect.succeed(Chunk.of<LlmRequest.LlmStreamEvent>(event))
          })
        }
        if (!reading) {
          reading = true
          void read()
        }
        return Effect.zipRight(waitForEvents, pull)
      })
      return Stream.repeatEffectChunkOption(pull)
    })
  )
