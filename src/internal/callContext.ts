/**
 * What the instruments share about the call in progress: how many provider attempts it has made
 * and the usage they reported. Call-level wrappers (outside the retry policy) open a call;
 * attempt-level wrappers (inside it) number each attempt once, however many of them sit around the
 * same attempt; `Usage.wrap` adds each attempt's usage to the call's totals.
 *
 * @internal
 */
import { Effect, FiberRef, type Fiber, type Scope } from "effect"
import * as Accumulator from "./usageAccumulator.js"

/** The call in progress. */
export interface CallState {
  attempts: number
  readonly totals: Accumulator.Totals
}

interface Current {
  readonly call: CallState | undefined
  /** The attempt in progress (1-based), 0 outside any attempt. */
  readonly attempt: number
}

// One fiber ref for both, so that opening a call or an attempt is a single local change.
const current = FiberRef.unsafeMake<Current>({ call: undefined, attempt: 0 }, { join: (parent) => parent })

/** The call the fiber is in, if any. */
export const unsafeCall = (fiber: Fiber.RuntimeFiber<unknown, unknown>): CallState | undefined =>
  fiber.getFiberRef(current).call

const open = (): CallState => ({ attempts: 0, totals: Accumulator.empty() })

/** Runs `f` in the current call, opening one if none is open. */
export const call = <A, E, R>(f: (state: CallState) => Effect.Effect<A, E, R>): Effect.Effect<A, E, R> =>
  Effect.flatMap(FiberRef.get(current), ({ call }) => {
    if (call !== undefined) return f(call)
    const state = open()
    return Effect.locally(f(state), current, { call: state, attempt: 0 })
  })

/** {@link call} for a scope (e.g. a stream's): the call stays open until the scope closes. */
export const callScoped = <A, E, R>(
  f: (state: CallState) => Effect.Effect<A, E, R>
): Effect.Effect<A, E, R | Scope.Scope> =>
  Effect.flatMap(FiberRef.get(current), ({ call }) => {
    if (call !== undefined) return f(call)
    const state = open()
    return Effect.zipRight(Effect.locallyScoped(current, { call: state, attempt: 0 }), f(state))
  })

const nextAttempt = (call: CallState | undefined) => (call === undefined ? 1 : ++call.attempts)

/** Runs `f` with this attempt's number (1-based), counting the attempt once. */
export const attempt = <A, E, R>(f: (attempt: number) => Effect.Effect<A, E, R>): Effect.Effect<A, E, R> =>
  Effect.flatMap(FiberRef.get(current), ({ attempt, call }) => {
    if (attempt > 0) return f(attempt)
    const n = nextAttempt(call)
    return Effect.locally(f(n), current, { call, attempt: n })
  })

/** {@link attempt} for a scope (e.g. a stream's). */
export const attemptScoped = <A, E, R>(
  f: (attempt: number) => Effect.Effect<A, E, R>
): Effect.Effect<A, E, R | Scope.Scope> =>
  Effect.flatMap(FiberRef.get(current), ({ attempt, call }) => {
    if (attempt > 0) return f(attempt)
    const n = nextAttempt(call)
    return Effect.zipRight(Effect.locallyScoped(current, { call, attempt: n }), f(n))
  })
