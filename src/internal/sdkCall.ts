/**
 * Running SDK calls as Effects and Streams: every call gets an `AbortSignal` that fires when the fiber
 * is interrupted (or the stream's scope closes), and every failure becomes one `LlmError`.
 *
 * @internal
 */
import { Clock, Effect, Either, Option, Stream } from "effect"
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

/**
 * A streamed call: opens the SDK stream, emits the `TextDelta`s the state machine derives from its
 * events and then the one `Finish`. The request's `AbortController` is aborted when the stream's scope
 * closes, so a consumer that stops early or is interrupted releases the connection.
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
      yield* Effect.addFinalizer(() => Effect.sync(() => controller.abort()))
      const state = makeState()
      const toError = (cause: unknown) => failWith(caller, cause, state.emitted())
      const iterable = yield* Effect.catchAll(
        Effect.tryPromise({ try: () => open(controller.signal), catch: identity }),
        toError
      )
      const iterator = iterable[Symbol.asyncIterator]()
      // Pull SDK events until one carries text (most do); `undefined` means the body ended.
      const pull = async (): Promise<LlmRequest.TextDelta | undefined> => {
        for (;;) {
          const next = await iterator.next()
          if (next.done === true) return undefined
          const delta = state.onEvent(next.value)
          if (delta !== undefined) return delta
        }
      }
      const deltas = Stream.repeatEffectOption(
        Effect.flatMap(Effect.tryPromise({ try: pull, catch: Option.some }), (delta) =>
          delta === undefined ? Effect.fail(Option.none()) : Effect.succeed(delta)
        )
      )
      const finish = Stream.suspend(() =>
        Either.match(state.finish(), {
          onLeft: (error): Stream.Stream<LlmRequest.LlmStreamEvent, unknown> => Stream.fail(error),
          onRight: (event) => Stream.succeed(event)
        })
      )
      return Stream.concat(deltas, finish).pipe(Stream.catchAll((cause) => Stream.fromEffect(toError(cause))))
    })
  )
