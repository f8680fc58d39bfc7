/**
 * Time limits on a stream without a race per pull. The stream is pulled by a producer fiber on
 * demand and each chunk is handed to the consumer; one watcher fiber per stream sleeps through
 * Effect's `Clock` (so `TestClock` drives it) until the next moment a limit could be reached,
 * re-checks the timestamps the handoff keeps, and fails the consumer's pull when a limit is
 * passed. Closing the stream's scope interrupts both fibers and the pull in flight, which releases
 * the source (for a provider: aborts its HTTP request).
 *
 * @internal
 */
import { Chunk, type Clock, Effect, Exit, Option, Stream } from "effect"

type Pull<A, E> = Effect.Effect<Chunk.Chunk<A>, Option.Option<E>>
type Resume<A, E> = (result: Pull<A, E>) => void

/**
 * What a watcher sees of the stream it guards.
 *
 * @internal
 */
export interface Handoff<E> {
  readonly clock: Clock.Clock
  /** When the consumer began its current wait for a chunk (clock millis), or -1 when it is not waiting. */
  readonly waitingSince: () => number
  /** Whether a non-empty chunk has been delivered. */
  readonly started: () => boolean
  /** Fails the stream: the pending pull at once, else the next one. */
  readonly fail: (error: E) => void
}

/**
 * Runs `stream` through a demand-driven handoff guarded by `watch`, forked for the stream's life.
 *
 * @internal
 */
export const guarded = <A, E>(
  stream: Stream.Stream<A, E>,
  watch: (handoff: Handoff<E>) => Effect.Effect<void>
): Stream.Stream<A, E> =>
  Stream.unwrapScoped(
    Effect.gen(function* () {
      const clock = yield* Effect.clock
      const upstream = yield* Stream.toPull(stream)
      let consumer: Resume<A, E> | undefined
      let producer: ((go: Effect.Effect<void>) => void) | undefined
      let demand = false
      let waitingSince = -1
      let started = false
      let failure: Option.Option<E> = Option.none()

      const deliver = (result: Pull<A, E>) => {
        const resume = consumer
        consumer = undefined
        waitingSince = -1
        resume?.(result)
      }
      const awaitDemand = Effect.async<void>((resume) => {
        if (demand) {
          demand = false
          resume(Effect.void)
          return
        }
        producer = resume
        return Effect.sync(() => {
          producer = undefined
        })
      })
      const produce = Effect.forever(
        Effect.zipRight(
          awaitDemand,
          Effect.flatMap(Effect.exit(upstream), (exit) =>
            Effect.sync(() => {
              if (Exit.isSuccess(exit) && Chunk.isNonEmpty(exit.value)) started = true
              deliver(exit)
            })
          )
        )
      )
      const pull: Pull<A, E> = Effect.async<Chunk.Chunk<A>, Option.Option<E>>((resume) => {
        if (Option.isSome(failure)) {
          resume(Effect.fail(failure))
          return
        }
        consumer = resume
        waitingSince = clock.unsafeCurrentTimeMillis()
        const go = producer
        producer = undefined
        if (go === undefined) demand = true
        else go(Effect.void)
        return Effect.sync(() => {
          consumer = undefined
          waitingSince = -1
        })
      })
      const handoff: Handoff<E> = {
        clock,
        waitingSince: () => waitingSince,
        started: () => started,
        fail: (error) => {
          failure = Option.some(error)
          if (consumer !== undefined) deliver(Effect.fail(failure))
        }
      }
      yield* Effect.forkScoped(produce)
      yield* Effect.forkScoped(watch(handoff))
      return Stream.repeatEffectChunkOption(pull)
    })
  )

/**
 * Limits each wait for a chunk: `first` until a non-empty chunk has arrived, `idle` after, both in
 * milliseconds. `onTimeout(started)` is the error.
 *
 * @internal
 */
export const limitWaits = <A, E>(
  stream: Stream.Stream<A, E>,
  options: { readonly first: number; readonly idle: number; readonly onTimeout: (started: boolean) => E }
): Stream.Stream<A, E> =>
  guarded(stream, (handoff) => {
    const { first, idle } = options
    const check: Effect.Effect<void> = Effect.suspend(() => {
      const now = handoff.clock.unsafeCurrentTimeMillis()
      const started = handoff.started()
      const limit = started ? idle : first
      const since = handoff.waitingSince()
      const remaining = since < 0 ? limit : since + limit - now
      if (since >= 0 && remaining <= 0) {
        handoff.fail(options.onTimeout(started))
        return Effect.void
      }
      // Before the first chunk, wake at least every `idle`: the next wait may be an idle one.
      return Effect.zipRight(Effect.sleep(started ? remaining : Math.min(remaining, idle)), check)
    })
    return check
  })

/**
 * Limits the whole stream to `total` milliseconds from its start. `onTimeout()` is the error.
 *
 * @internal
 */
export const limitTotal = <A, E>(
  stream: Stream.Stream<A, E>,
  options: { readonly total: number; readonly onTimeout: () => E }
): Stream.Stream<A, E> =>
  guarded(stream, (handoff) => Effect.zipRight(Effect.sleep(options.total), Effect.sync(() => handoff.fail(options.onTimeout()))))
