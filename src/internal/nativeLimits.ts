/**
 * Per-attempt limits a service enforces itself. The SDK providers time their own HTTP requests with
 * host timers and abort them on expiry, so `Timeout` can hand them the attempt's limits instead of
 * running each attempt in a child fiber and each stream through a watchdog. A service offers this
 * by carrying {@link NativeLimits} under {@link symbol}; any other service gets the generic limits.
 *
 * @internal
 */
import type { Effect, Stream } from "effect"
import type * as Llm from "../Llm.js"
import type { LlmError } from "../LlmError.js"
import type * as LlmRequest from "../LlmRequest.js"

/**
 * Limits on a stream's waits, in milliseconds: `first` until the first event has been delivered,
 * `idle` for every wait after it. `onTimeout(started)` is the error.
 *
 * @internal
 */
export interface WaitLimits {
  readonly first: number
  readonly idle: number
  readonly onTimeout: (started: boolean) => LlmError
}

/**
 * The calls of a service that enforces limits itself.
 *
 * @internal
 */
export interface NativeLimits {
  /**
   * `complete` that fails with `onTimeout()` and aborts its request after `millis`. Only used on
   * the live clock: the limit is a host timer.
   */
  readonly complete: (
    request: LlmRequest.LlmRequest,
    millis: number,
    onTimeout: () => LlmError
  ) => Effect.Effect<LlmRequest.LlmResponse, LlmError>
  /** `stream` with its waits limited; the limits follow whatever clock the stream runs on. */
  readonly stream: (
    request: LlmRequest.LlmRequest,
    limits: WaitLimits
  ) => Stream.Stream<LlmRequest.LlmStreamEvent, LlmError>
}

/**
 * Where a service keeps its {@link NativeLimits}.
 *
 * @internal
 */
export const symbol: unique symbol = Symbol.for("@clearside/llm/NativeLimits")

type Carrier = Llm.Service & { readonly [symbol]?: NativeLimits }

/**
 * The service's own limits, if it has them.
 *
 * @internal
 */
export const get = (service: Llm.Service): NativeLimits | undefined => (service as Carrier)[symbol]

/**
 * `service`, carrying `limits`.
 *
 * @internal
 */
export const attach = (service: Llm.Service, limits: NativeLimits): Llm.Service => {
  const carrier: Carrier = { complete: service.complete, stream: service.stream, [symbol]: limits }
  return carrier
}

/**
 * Longest host timer: longer ones fire at once, so (like Effect's own clock) limits beyond it are
 * treated as never reached.
 *
 * @internal
 */
export const maxTimerMillis = 2 ** 31 - 1
