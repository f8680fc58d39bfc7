/**
 * The pieces policies and providers build answers from. An answer (`Llm.Answer`) is Effect's own
 * pull form of a stream, as `Stream.toPull` gives it: opened in a scope, then pulled for chunks of
 * parts until it fails with `Option.none()` (the end) or `Option.some(error)`.
 *
 * Why not a `Stream`: running one costs about 230 µs of CPU (`Stream.runCollect` of two parts,
 * measured on this project's 2-core machine), a third of a whole OpenAI call through the SDK, before
 * any policy; each policy that holds a pull of the stream beneath it (`Stream.toPull`) costs about
 * 100 µs more. An answer pulled directly costs about 16 µs (bench/policies.ts, "bare collect").
 *
 * @internal
 */
import {
  Chunk,
  Clock,
  Context,
  DefaultServices,
  Duration,
  Effect,
  ExecutionStrategy,
  Exit,
  type Fiber,
  FiberId,
  Option,
  Scope
} from "effect"
import type * as Llm from "../Llm.js"
import type { LlmError } from "../LlmError.js"
import type * as LlmRequest from "../LlmRequest.js"
import { withTextEmitted } from "./llmErrorWith.js"

type Parts = Chunk.Chunk<LlmRequest.LlmStreamEvent>

/** The end of an answer. */
export const end: Llm.Pull = Effect.fail(Option.none())

/** An answer that fails with `error` when pulled. */
export const failed = (error: LlmError): Llm.Answer => Effect.succeed(Effect.fail(Option.some(error)))

/** An answer of the parts `effect` gives, run when it is first pulled; then the end. */
export const once = (effect: Effect.Effect<Parts, LlmError>): Llm.Answer =>
  Effect.sync(() => {
    let done = false
    return Effect.suspend(() => {
      if (done) return end
      done = true
      return Effect.mapError(effect, Option.some)
    })
  })

/** Whether a chunk holds the `Finish`: the answer is complete. */
export const hasFinish = (parts: Parts): boolean => {
  for (const part of parts) if (part._tag === "Finish") return true
  return false
}

/**
 * Pulls `pull` to its end, handing each chunk to `onChunk`.
 */
export const drain = (pull: Llm.Pull, onChunk: (parts: Parts) => void): Effect.Effect<void, LlmError> => {
  const loop: Effect.Effect<void, LlmError> = Effect.matchEffect(pull, {
    onFailure: (error) => (Option.isNone(error) ? Effect.void : Effect.fail(error.value)),
    onSuccess: (parts) => {
      onChunk(parts)
      return loop
    }
  })
  return loop
}

/**
 * The exit an answer ended with, for the finalizers that record it: its own failure, else success
 * when it ended or its scope closed normally (an answer not read to its end counts as one that did
 * not finish), else the scope's exit (an interruption).
 */
const outcome = (failure: LlmError | undefined, scopeExit: Exit.Exit<unknown, unknown>): Exit.Exit<void, LlmError> =>
  failure !== undefined ? Exit.fail(failure) : scopeExit._tag === "Success" ? Exit.void : (scopeExit as Exit.Exit<void, never>)

/**
 * Watches an answer: `onParts` sees every chunk as it is pulled, and `onEnd` runs once, when the
 * answer's scope closes, with how it ended. `onEnd` runs uninterruptibly, like any finalizer.
 */
export const observe = (
  answer: Llm.Answer,
  onParts: (parts: Parts) => void,
  onEnd: (exit: Exit.Exit<void, LlmError>) => Effect.Effect<void>
): Llm.Answer =>
  Effect.flatMap(Effect.scope, (scope) => {
    let failure: LlmError | undefined
    // Added before the answer is opened, so it runs after the answer's own finalizers: what the
    // answer records when it ends (its usage, its outcome) is there for `onEnd`.
    const ended = Scope.addFinalizerExit(scope, (exit) => onEnd(outcome(failure, exit)))
    return Effect.zipRight(
      ended,
      Effect.map(answer, (pull) =>
        Effect.mapBoth(pull, {
          onFailure: (error) => {
            if (Option.isSome(error)) failure = error.value
            return error
          },
          onSuccess: (parts) => {
            onParts(parts)
            return parts
          }
        })
      )
    )
  })

/** Every failure of an answer's pulls through `f`. */
export const mapError = (answer: Llm.Answer, f: (error: LlmError) => LlmError): Llm.Answer =>
  Effect.map(answer, (pull) => Effect.mapError(pull, (error) => (Option.isSome(error) ? Option.some(f(error.value)) : error)))

/** Runs `effect` on each failure of an answer's pulls, before passing it on. */
export const tapError = (answer: Llm.Answer, f: (error: LlmError) => Effect.Effect<void>): Llm.Answer =>
  Effect.map(answer, (pull) => Effect.tapError(pull, (error) => (Option.isSome(error) ? f(error.value) : Effect.void)))

/**
 * Runs `before` when the answer is first pulled, then the answer: for admissions (a rate-limit
 * slot, the breaker) that decide whether the call may go out at all. `before` may fail the call.
 */
export const first = (answer: Llm.Answer, before: (scope: Scope.Scope) => Effect.Effect<void, LlmError>): Llm.Answer =>
  Effect.flatMap(Effect.scope, (scope) =>
    Effect.map(answer, (pull) => {
      let admitted = false
      const admit = Effect.zipRight(
        Effect.mapError(before(scope), Option.some),
        Effect.suspend(() => {
          admitted = true
          return pull
        })
      )
      return Effect.suspend(() => (admitted ? pull : admit))
    })
  )

/**
 * Opens `answer`; if it fails before its first part, `recover(error)` gives the answer to open
 * instead (or fails, to give up with that error). Each attempt runs in a scope of its own, closed
 * when it fails, so a failed attempt's resources (its connection, its rate-limit slot) are given
 * back before the next starts. Once a part has been delivered nothing is restarted: a failure ends
 * the answer with the error, carrying `textEmitted` (characters of text already sent).
 */
export const recoverBeforeFirst = (
  answer: Llm.Answer,
  recover: (error: LlmError) => Effect.Effect<Llm.Answer, LlmError>
): Llm.Answer =>
  Effect.map(Effect.scope, (scope) => {
    let current: Llm.Pull | undefined
    let textEmitted = 0
    const counted = (parts: Parts): Parts => {
      for (const part of parts) if (part._tag === "TextDelta") textEmitted += part.text.length
      return parts
    }
    const started = (pull: Llm.Pull): Llm.Pull =>
      Effect.mapBoth(pull, {
        onFailure: (error) => (Option.isSome(error) && textEmitted > 0 ? Option.some(withTextEmitted(error.value, textEmitted)) : error),
        onSuccess: counted
      })
    const attempt = (next: Llm.Answer): Llm.Pull =>
      Effect.flatMap(Scope.fork(scope, ExecutionStrategy.sequential), (child) =>
        Effect.flatMap(Scope.extend(next, child), (pull) => {
          const firstParts: Llm.Pull = Effect.matchEffect(pull, {
            onFailure: (error) => {
              if (Option.isNone(error)) {
                current = end
                return end
              }
              return Effect.zipRight(
                Scope.close(child, Exit.fail(error.value)),
                Effect.flatMap(Effect.mapError(recover(error.value), Option.some), attempt)
              )
            },
            onSuccess: (parts) => {
              if (Chunk.isEmpty(parts)) return firstParts
              current = started(pull)
              return Effect.succeed(counted(parts))
            }
          })
          return firstParts
        })
      )
    const opening = attempt(answer)
    return Effect.suspend(() => current ?? opening)
  })

/**
 * A limit on the wait for one pull: how long, and the error it fails with.
 */
export interface PullLimit {
  readonly millis: number
  readonly error: () => LlmError
}

interface Waiting {
  readonly deadline: number
  readonly expire: () => void
}

/**
 * The deadlines of every pull waiting under one time-limit policy, watched by one timer set for
 * the earliest: the policy's calls share it, and a call sets none of its own. On the live clock it
 * is a Node timer that does not keep the process alive (`unref`); on any other clock (`TestClock`)
 * a fiber asleep on that clock.
 */
export interface Watch {
  readonly add: (waiting: Waiting, clock: Clock.Clock) => Effect.Effect<void>
  readonly remove: (waiting: Waiting) => void
}

const liveClock = Context.get(DefaultServices.liveServices, Clock.Clock)

/** A {@link Watch}, one per time-limit policy. */
export const makeWatch = (): Watch => {
  const waiting = new Set<Waiting>()
  let wakeAt = Infinity
  /** Expires what is due; the earliest deadline left, or `Infinity`. */
  const expireDue = (now: number): number => {
    let earliest = Infinity
    for (const entry of waiting) {
      if (entry.deadline <= now) {
        waiting.delete(entry)
        entry.expire()
      } else if (entry.deadline < earliest) earliest = entry.deadline
    }
    return earliest
  }

  // The live clock: a Node timer.
  let timer: ReturnType<typeof setTimeout> | undefined
  const arm = (deadline: number, now: number) => {
    if (timer !== undefined) clearTimeout(timer)
    wakeAt = deadline
    timer = setTimeout(onTimer, Math.max(1, deadline - now))
    timer.unref?.()
  }
  const onTimer = () => {
    timer = undefined
    const now = Date.now()
    const earliest = expireDue(now)
    if (earliest === Infinity) wakeAt = Infinity
    else arm(earliest, now)
  }

  // Any other clock: a fiber asleep on it.
  let watcher: Fiber.RuntimeFiber<void> | undefined
  const watch = (clock: Clock.Clock): Effect.Effect<void> =>
    Effect.suspend(() => {
      const now = clock.unsafeCurrentTimeMillis()
      const earliest = expireDue(now)
      wakeAt = earliest
      if (earliest === Infinity) {
        watcher = undefined
        return Effect.void
      }
      return Effect.zipRight(clock.sleep(Duration.millis(earliest - now)), watch(clock))
    })

  return {
    add: (entry, clock) =>
      Effect.suspend(() => {
        waiting.add(entry)
        if (clock === liveClock) {
          if (timer === undefined || entry.deadline < wakeAt) arm(entry.deadline, Date.now())
          return Effect.void
        }
        if (watcher !== undefined && entry.deadline >= wakeAt) return Effect.void
        // No watcher, or one asleep past this deadline: a new one, from now.
        watcher?.unsafeInterruptAsFork(FiberId.none)
        wakeAt = entry.deadline
        return Effect.asVoid(
          Effect.tap(Effect.forkDaemon(watch(clock)), (forked) => {
            watcher = forked
          })
        )
      }),
    remove: (entry) => {
      waiting.delete(entry)
    }
  }
}

/**
 * Each wait for a pull of an answer given at most the limit `limitOf` names for it (`undefined`: no
 * limit), failing with its error when it runs out; the read that ran out is interrupted (which
 * aborts the provider's request) and waited for. Nothing is limited once the `Finish` has come.
 *
 * Written by hand rather than `Effect.timeoutFail` on each pull: that races every pull against a
 * sleep of its own, two fibers and a timer, about 38 µs of CPU per pull in bench/policies.ts and
 * about 360 µs per whole call over HTTP (a real timer set and cleared), which a stream of one event
 * per network read pays per event. Here one reader fiber per answer pulls the answer beneath, one
 * chunk ahead, and hands each chunk to the caller's pull; a caller that has to wait adds its
 * deadline to the policy's {@link Watch}. Tested under load in test/Timeout.test.ts.
 */
export const limitPulls = (
  answer: Llm.Answer,
  watch: Watch,
  limitOf: (started: boolean) => PullLimit | undefined
): Llm.Answer =>
  Effect.flatMap(Effect.scope, (scope) =>
    Effect.map(answer, (pull) => {
      let started = false
      let finished = false
      // Read ahead and not yet taken: at most one chunk, then the answer's end or failure.
      let ahead: Exit.Exit<Parts, Option.Option<LlmError>> | undefined
      let last: Exit.Exit<Parts, Option.Option<LlmError>> | undefined
      let taker: ((exit: Exit.Exit<Parts, Option.Option<LlmError>>) => void) | undefined
      let resumeReader: (() => void) | undefined
      let reader: Fiber.RuntimeFiber<void> | undefined

      const hand = (exit: Exit.Exit<Parts, Option.Option<LlmError>>) => {
        const waiting = taker
        taker = undefined
        if (waiting !== undefined) waiting(exit)
        else ahead = exit
      }
      const read: Effect.Effect<void> = Effect.matchEffect(pull, {
        onFailure: (error) => Effect.sync(() => hand(Exit.fail(error))),
        onSuccess: (parts) =>
          Effect.suspend(() => {
            hand(Exit.succeed(parts))
            if (ahead === undefined) return read
            // The caller has not taken the last chunk yet: wait until it does.
            return Effect.zipRight(
              Effect.async<void>((resume) => {
                // Taken meanwhile: go on at once.
                if (ahead === undefined) return resume(Effect.void)
                resumeReader = () => resume(Effect.void)
              }),
              read
            )
          })
      })

      const taken = (exit: Exit.Exit<Parts, Option.Option<LlmError>>): Llm.Pull => {
        if (Exit.isSuccess(exit)) {
          const parts = exit.value
          if (Chunk.isNonEmpty(parts)) started = true
          if (hasFinish(parts)) finished = true
        } else last = exit
        return exit
      }

      /** The chunk read ahead, taken: the reader may go on. */
      const takeAhead = (exit: Exit.Exit<Parts, Option.Option<LlmError>>): Llm.Pull => {
        ahead = undefined
        const resume = resumeReader
        resumeReader = undefined
        resume?.()
        return taken(exit)
      }

      const next = (limit: PullLimit | undefined, clock: Clock.Clock): Llm.Pull => {
        let timedOut: Llm.Pull | undefined
        let resumeTaker: ((effect: Llm.Pull) => void) | undefined
        const entry: Waiting | undefined =
          limit === undefined
            ? undefined
            : {
                deadline: clock.unsafeCurrentTimeMillis() + limit.millis,
                // The read is interrupted (aborting the request); the scope's close waits for it.
                expire: () => {
                  const failure = Exit.fail(Option.some(limit.error()))
                  timedOut = failure
                  last = failure
                  taker = undefined
                  reader?.unsafeInterruptAsFork(FiberId.none)
                  resumeTaker?.(failure)
                }
              }
        const wait = Effect.async<Parts, Option.Option<LlmError>>((resume) => {
          // What happened since the deadline was set, before this wait began.
          if (timedOut !== undefined) return resume(timedOut)
          if (ahead !== undefined) {
            if (entry !== undefined) watch.remove(entry)
            return resume(takeAhead(ahead))
          }
          resumeTaker = resume
          taker = (exit) => {
            if (entry !== undefined) watch.remove(entry)
            resume(taken(exit))
          }
          return Effect.sync(() => {
            taker = undefined
            if (entry !== undefined) watch.remove(entry)
          })
        })
        return entry === undefined ? wait : Effect.zipRight(watch.add(entry, clock), wait)
      }

      return Effect.suspend((): Llm.Pull => {
        if (ahead !== undefined) return takeAhead(ahead)
        if (last !== undefined) return last
        const limit = finished ? undefined : limitOf(started)
        if (limit !== undefined && limit.millis <= 0) return Effect.fail(Option.some(limit.error()))
        return Effect.clockWith((clock) => {
          if (reader !== undefined) return next(limit, clock)
          return Effect.zipRight(
            Effect.tap(Effect.forkIn(read, scope), (forked) => {
              reader = forked
            }),
            next(limit, clock)
          )
        })
      })
    })
  )
