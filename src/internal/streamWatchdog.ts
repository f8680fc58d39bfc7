/**
 * Time limits on a stream without a race per pull. The stream is pulled by a producer fiber on
 * demand and each chunk is handed to the consumer; one watcher per stream waits until the next
 * moment a limit could be reached (a host timer on the live clock, else a fiber sleeping through
 * Effect's `Clock`, so that `TestClock` drives it), re-checks the timestamps the handoff keeps, and
 * fails the consumer's pull when a limit is passed. The end of the stream closes its scope, which
 * interrupts the producer and the pull in flight and releases the source (for a provider: aborts
 * its HTTP request).
 *
 * @internal
 */
import { Channel, Chunk, Clock, Context, DefaultServices, Effect, Exit, Option, Scope, Stream } from "effect"
import { maxTimerMillis } from "./nativeLimits.js"

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
 * Runs `stream` through a demand-driven handoff guarded by `watch`, which is started with the
 * stream (inline: it forks or schedules whatever must outlive the call into `scope`, which closes
 * when the stream ends).
 *
 * The stream is set up on its first pull, in a scope of its own closed when the stream ends, so that
 * no scoped layer sits between the consumer and the handoff.
 *
 * @internal
 */
export const guarded = <A, E>(
  stream: Stream.Stream<A, E>,
  watch: (handoff: Handoff<E>, scope: Scope.Scope) => Effect.Effect<void>
): Stream.Stream<A, E> =>
  Stream.suspend(() => {
    let scope: Scope.CloseableScope | undefined
    let consumer: Resume<A, E> | undefined
    let producer: ((go: Effect.Effect<void>) => void) | undefined
    let demand = false
    let waitingSince = -1
    let started = false
    let failure: Option.Option<E> = Option.none()
    let clock: Clock.Clock | undefined

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
    const produce = (upstream: Pull<A, E>) =>
      Effect.forever(
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
      waitingSince = clock!.unsafeCurrentTimeMillis()
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
      get clock() {
        return clock!
      },
      waitingSince: () => waitingSince,
      started: () => started,
      fail: (error) => {
        failure = Option.some(error)
        if (consumer !== undefined) deliver(Effect.fail(failure))
      }
    }
    let current: Pull<A, E> = Effect.clockWith((current_) => {
      clock = current_
      return Effect.flatMap(Scope.make(), (opened) => {
        scope = opened
        return Effect.flatMap(Scope.extend(Stream.toPull(stream), opened), (upstream) => {
          current = pull
          return Effect.zipRight(
            Effect.zipRight(Effect.forkIn(produce(upstream), opened), watch(handoff, opened)),
            pull
          )
        })
      })
    })
    const channel = Channel.ensuringWith(Stream.toChannel(Stream.repeatEffectChunkOption(Effect.suspend(() => current))), (exit) =>
      scope === undefined ? Effect.void : Scope.close(scope, exit)
    )
    return Stream.fromChannel(channel)
  })

const liveClock = Context.get(DefaultServices.liveServices, Clock.Clock)

/**
 * Runs `check` after `millis` and again whenever it asks (by returning the next delay), until it
 * returns `undefined` or `scope` closes: host timers on the live clock, a fiber sleeping on the
 * stream's clock otherwise.
 */
const schedule = (
  clock: Clock.Clock,
  scope: Scope.Scope,
  millis: number,
  check: () => number | undefined
): Effect.Effect<void> => {
  if (clock === liveClock) {
    return Effect.suspend(() => {
      let handle: ReturnType<typeof setTimeout> | undefined
      const arm = (delay: number | undefined) => {
        handle = undefined
        if (delay !== undefined && delay <= maxTimerMillis) handle = setTimeout(() => arm(check()), Math.max(0, delay))
      }
      arm(millis)
      return Scope.addFinalizer(
        scope,
        Effect.sync(() => {
          if (handle !== undefined) clearTimeout(handle)
        })
      )
    })
  }
  const loop = (delay: number | undefined): Effect.Effect<void> =>
    delay === undefined ? Effect.void : Effect.flatMap(Effect.sleep(delay), () => loop(check()))
  return Effect.asVoid(Effect.forkIn(loop(millis), scope))
}

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
  guarded(stream, (handoff, scope) => {
    const { first, idle } = options
    const check = (): number | undefined => {
      const now = handoff.clock.unsafeCurrentTimeMillis()
      const started = handoff.started()
      const limit = started ? idle : first
      const since = handoff.waitingSince()
      const remaining = since < 0 ? limit : since + limit - now
      if (since >= 0 && remaining <= 0) {
        handoff.fail(options.onTimeout(started))
        return undefined
      }
      // Before the first chunk, wake at least every `idle`: the next wait may be an idle one.
      return started ? remaining : Math.min(remaining, idle)
    }
    return schedule(handoff.clock, scope, Math.min(first, idle), check)
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
  guarded(stream, (handoff, scope) =>
    schedule(handoff.clock, scope, options.total, () => {
      handoff.fail(options.onTimeout())
      return undefined
    })
  )
