/**
 * Sums the usage of every provider attempt made inside a region, for `Usage.withUsage` and the
 * per-call log line. Each region adds a sink to a fiber-inherited list; forked fibers share the
 * very same sinks (by reference), so concurrent calls add to the same totals.
 *
 * @internal
 */
import { Effect, type Exit, FiberRef } from "effect"
import type * as LlmRequest from "../LlmRequest.js"

/** A running total (mutated in place: fibers run one at a time on the JS thread). */
export interface Totals {
  attempts: number
  inputTokens: number
  outputTokens: number
  cachedInputTokens: number
  reasoningTokens: number
  totalTokens: number
  costUsd: number
  estimated: boolean
  repairs: number
}

export const empty = (): Totals => ({
  attempts: 0,
  inputTokens: 0,
  outputTokens: 0,
  cachedInputTokens: 0,
  reasoningTokens: 0,
  totalTokens: 0,
  costUsd: 0,
  estimated: false,
  repairs: 0
})

export const sinks = FiberRef.unsafeMake<ReadonlyArray<Totals>>([], { join: (parent) => parent })

/** Adds one attempt (with its usage, if any) to a running total. */
export const unsafeAddTo = (
  totals: Totals,
  usage: LlmRequest.Usage | undefined,
  costUsd: number,
  estimated: boolean
): void => {
  totals.attempts += 1
  if (usage === undefined) return
  totals.inputTokens += usage.inputTokens
  totals.outputTokens += usage.outputTokens
  totals.cachedInputTokens += usage.cachedInputTokens ?? 0
  totals.reasoningTokens += usage.reasoningTokens ?? 0
  totals.totalTokens += usage.totalTokens
  totals.costUsd += costUsd
  totals.estimated ||= estimated
}

/** Counts one repair turn of structured output in every open region. */
export const addRepair: Effect.Effect<void> = Effect.flatMap(FiberRef.get(sinks), (open) =>
  Effect.sync(() => {
    for (const totals of open) totals.repairs += 1
  })
)

/** Runs `self` as a region, then hands its totals (whatever the exit) to `onDone`. */
export const track = <A, E, R, R2>(
  self: Effect.Effect<A, E, R>,
  onDone: (exit: Exit.Exit<A, E>, totals: Totals) => Effect.Effect<void, never, R2>
): Effect.Effect<A, E, R | R2> =>
  Effect.suspend(() => {
    const totals = empty()
    return Effect.locallyWith(self, sinks, (open) => [...open, totals]).pipe(
      Effect.onExit((exit) => onDone(exit, totals))
    )
  })
