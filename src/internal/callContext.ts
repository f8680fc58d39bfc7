/**
 * What the instruments share about the call in progress: how many provider attempts it has made.
 * Call-level wrappers (outside the retry policy) open a call; attempt-level wrappers (inside it)
 * number each attempt once, however many of them sit around the same attempt.
 *
 * @internal
 */
import { Effect, FiberRef, type Scope } from "effect"

/** The call in progress. */
export interface CallState {
  attempts: number
}

const keepParent = <A>(parent: A) => parent

const currentCall = FiberRef.unsafeMake<CallState | undefined>(undefined, { join: keepParent })
const currentAttempt = FiberRef.unsafeMake<number>(0, { join: keepParent })

/** Runs `f` in the current call, opening one if none is open. */
export const call = <A, E, R>(f: (state: CallState) => Effect.Effect<A, E, R>): Effect.Effect<A, E, R> =>
  Effect.flatMap(FiberRef.get(currentCall), (open) => {
    if (open !== undefined) return f(open)
    const state: CallState = { attempts: 0 }
    return Effect.locally(Effect.locally(f(state), currentAttempt, 0), currentCall, state)
  })

/** {@link call} for a scope (e.g. a stream's): the call stays open until the scope closes. */
export const callScoped = <A, E, R>(
  f: (state: CallState) => Effect.Effect<A, E, R>
): Effect.Effect<A, E, R | Scope.Scope> =>
  Effect.flatMap(FiberRef.get(currentCall), (open) => {
    if (open !== undefined) return f(open)
    const state: CallState = { attempts: 0 }
    return Effect.zipRight(
      Effect.zipRight(Effect.locallyScoped(currentCall, state), Effect.locallyScoped(currentAttempt, 0)),
      f(state)
    )
  })

const nextAttempt = (open: CallState | undefined) => (open === undefined ? 1 : ++open.attempts)

/** Runs `f` with this attempt's number (1-based), counting the attempt once. */
export const attempt = <A, E, R>(f: (attempt: number) => Effect.Effect<A, E, R>): Effect.Effect<A, E, R> =>
  Effect.flatMap(FiberRef.get(currentAttempt), (current) =>
    current > 0
      ? f(current)
      : Effect.flatMap(FiberRef.get(currentCall), (open) => {
          const n = nextAttempt(open)
          return Effect.locally(f(n), currentAttempt, n)
        })
  )

/** {@link attempt} for a scope (e.g. a stream's). */
export const attemptScoped = <A, E, R>(
  f: (attempt: number) => Effect.Effect<A, E, R>
): Effect.Effect<A, E, R | Scope.Scope> =>
  Effect.flatMap(FiberRef.get(currentAttempt), (current) =>
    current > 0
      ? f(current)
      : Effect.flatMap(FiberRef.get(currentCall), (open) => {
          const n = nextAttempt(open)
          return Effect.zipRight(Effect.locallyScoped(currentAttempt, n), f(n))
        })
  )
