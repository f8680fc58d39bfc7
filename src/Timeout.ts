/**
 * Time limits on calls to the `Llm` service.
 *
 * {@link make} limits each attempt: `complete` must answer within `timeout` (default 30 s, or the
 * request's own `timeout`); a stream must deliver its first event within `firstToken` and each
 * next event within `idle` of the previous one (both default to the attempt timeout). There is no
 * limit on a stream's total length. A timed-out attempt is interrupted, which aborts its HTTP
 * request, and fails with a retryable `TimeoutError` whose `phase` is `"attempt"`, `"first-token"`
 * or `"idle"`. Put it inside `Retry` so each attempt gets its own limit.
 *
 * {@link deadline} is the optional overall limit across all attempts (`phase: "deadline"`, not
 * retryable); put it outside `Retry` and `Fallback`.
 *
 * @example
 * import { Duration, Layer } from "effect"
 * import { LlmMock, Retry, Timeout } from "@clearside/llm"
 *
 * const layer = Timeout.layerDeadline({ deadline: Duration.minutes(2) }).pipe(
 *   Layer.provide(Retry.layer()),
 *   Layer.provide(Timeout.layer({ timeout: Duration.seconds(20), idle: Duration.seconds(5) })),
 *   Layer.provide(LlmMock.layerEcho())
 * )
 *
 * @since 0.1.0
 */
import {
  Clock,
  Config,
  type ConfigError,
  Context,
  DefaultServices,
  Duration,
  Effect,
  type Exit,
  Fiber,
  type FiberId,
  Layer,
  Option
} from "effect"
import * as Llm from "./Llm.js"
import { TimeoutError } from "./LlmError.js"
import type { LlmRequest } from "./LlmRequest.js"
import * as NativeLimits from "./internal/nativeLimits.js"
import * as StreamWatchdog from "./internal/streamWatchdog.js"

/**
 * Per-attempt limits. `timeout` (default 30 s) bounds a `complete` call; `firstToken` and `idle`
 * bound a stream's wait for its first event and between events, and default to `timeout`. A
 * request's own `timeout` replaces all three for that request.
 *
 * @example
 * import { Duration } from "effect"
 * import type { Timeout } from "@clearside/llm"
 * const options: Timeout.Options = { timeout: Duration.seconds(30), firstToken: Duration.seconds(10) }
 *
 * @since 0.1.0
 * @category Models
 */
export interface Options {
  readonly timeout?: Duration.DurationInput
  readonly firstToken?: Duration.DurationInput
  readonly idle?: Duration.DurationInput
}

const providerOf = (request: LlmRequest): string => request.provider ?? "unknown"

const timeoutError = (request: LlmRequest, phase: "attempt" | "first-token" | "idle" | "deadline", limit: Duration.Duration) =>
  new TimeoutError({
    provider: providerOf(request),
    phase,
    retryable: phase !== "deadline",
    message:
      phase === "attempt"
        ? `No answer from ${providerOf(request)} within ${Duration.format(limit)}`
        : phase === "first-token"
          ? `No first token from ${providerOf(request)} within ${Duration.format(limit)}`
          : phase === "idle"
            ? `The ${providerOf(request)} stream sent nothing for ${Duration.format(limit)}`
            : `The call to ${providerOf(request)} did not finish within its ${Duration.format(limit)} deadline`
  })

// The process's own clock, whose timers can be host timers. Any other clock (e.g. `TestClock`) is
// asked to sleep, so that its time drives the limit.
const liveClock = Context.get(DefaultServices.liveServices, Clock.Clock)

/** Starts a timer that calls `fire` when it expires; returns its cancel. */
type StartTimer = (fire: () => void) => () => void

const hostTimer =
  (millis: number): StartTimer =>
  (fire) => {
    if (millis > NativeLimits.maxTimerMillis) return () => {}
    const handle = setTimeout(fire, millis)
    return () => clearTimeout(handle)
  }

const fiberTimer =
  (sleeper: Fiber.RuntimeFiber<void>, by: FiberId.FiberId): StartTimer =>
  (fire) => {
    const observer = (exit: Exit.Exit<void>) => {
      if (exit._tag === "Success") fire()
    }
    sleeper.addObserver(observer)
    return () => {
      sleeper.removeObserver(observer)
      sleeper.unsafeInterruptAsFork(by)
    }
  }

/**
 * Waits for `child` until the timer fires, then interrupts it, waits for it to end and fails with
 * `onTimeout()`. Interrupting the waiting fiber interrupts the child and waits for it.
 */
const awaitWithin = <A, E>(
  child: Fiber.RuntimeFiber<A, E>,
  by: FiberId.FiberId,
  startTimer: StartTimer,
  onTimeout: () => E
): Effect.Effect<A, E> =>
  Effect.async<A, E>((resume) => {
    let timedOut: ((exit: Exit.Exit<A, E>) => void) | undefined
    const cancel = startTimer(() => {
      child.removeObserver(done)
      timedOut = () => resume(Effect.fail(onTimeout()))
      child.addObserver(timedOut)
      child.unsafeInterruptAsFork(by)
    })
    const done = (exit: Exit.Exit<A, E>) => {
      cancel()
      resume(exit)
    }
    child.addObserver(done)
    return Effect.suspend(() => {
      cancel()
      child.removeObserver(done)
      if (timedOut !== undefined) child.removeObserver(timedOut)
      return Fiber.interrupt(child)
    })
  })

/**
 * `Effect.timeoutFail` for one attempt at the cost of one fiber: the attempt runs in a child fiber
 * and the waiting fiber holds the timer (a host timer on the live clock, else a sleeping fiber on
 * the fiber's clock). A timed-out attempt is interrupted and awaited before the failure.
 */
const limitTo = <A, E>(self: Effect.Effect<A, E>, limit: Duration.Duration, onTimeout: () => E): Effect.Effect<A, E> =>
  Effect.uninterruptibleMask((restore) =>
    Effect.withFiberRuntime<A, E>((parent) => {
      const by = parent.id()
      // A daemon: the waiting fiber interrupts and awaits it whenever it stops waiting.
      const attempt = Effect.forkDaemon(restore(self))
      const clock = Context.get(parent.currentDefaultServices, Clock.Clock)
      if (clock === liveClock) {
        const startTimer = hostTimer(Duration.toMillis(limit))
        return Effect.flatMap(attempt, (child) => restore(awaitWithin(child, by, startTimer, onTimeout)))
      }
      return Effect.flatMap(attempt, (child) =>
        Effect.flatMap(Effect.forkDaemon(Effect.interruptible(clock.sleep(limit))), (sleeper) =>
          restore(awaitWithin(child, by, fiberTimer(sleeper, by), onTimeout))
        )
      )
    })
  )

/**
 * Wraps a service with per-attempt limits.
 *
 * @example
 * import { Duration } from "effect"
 * import { LlmMock, Timeout } from "@clearside/llm"
 *
 * const limited = Timeout.make({ timeout: Duration.seconds(10) })(LlmMock.echo())
 *
 * @since 0.1.0
 * @category Constructors
 */
export const make =
  (options: Options = {}) =>
  (service: Llm.Service): Llm.Service => {
    const timeout = Duration.decode(options.timeout ?? Duration.seconds(30))
    const firstToken = Duration.decode(options.firstToken ?? timeout)
    const idle = Duration.decode(options.idle ?? timeout)
    // A provider that limits its own requests takes the limits directly: no extra fiber, watchdog or
    // stream stage per attempt.
    const native = NativeLimits.get(service)
    const waitLimits = (request: LlmRequest): NativeLimits.WaitLimits => {
      const first = request.timeout ?? firstToken
      const next = request.timeout ?? idle
      return {
        first: Duration.toMillis(first),
        idle: Duration.toMillis(next),
        onTimeout: (started) => (started ? timeoutError(request, "idle", next) : timeoutError(request, "first-token", first))
      }
    }
    return {
      complete: (request) => {
        const limit = request.timeout ?? timeout
        const onTimeout = () => timeoutError(request, "attempt", limit)
        if (native === undefined) return limitTo(service.complete(request), limit, onTimeout)
        return Effect.withFiberRuntime((fiber) =>
          Context.get(fiber.currentDefaultServices, Clock.Clock) === liveClock
            ? native.complete(request, Duration.toMillis(limit), onTimeout)
            : limitTo(service.complete(request), limit, onTimeout)
        )
      },
      stream: (request) =>
        native === undefined
          ? StreamWatchdog.limitWaits(service.stream(request), waitLimits(request))
          : native.stream(request, waitLimits(request))
    }
  }

/**
 * Wraps a service with an overall deadline: the whole call, with every retry and fallback inside
 * it, must finish within `deadline`, else it is interrupted and fails with a non-retryable
 * `TimeoutError` (`phase: "deadline"`). For a stream the deadline covers the whole stream.
 *
 * @example
 * import { Duration } from "effect"
 * import { LlmMock, Retry, Timeout } from "@clearside/llm"
 *
 * const bounded = Timeout.deadline({ deadline: Duration.minutes(1) })(Retry.make()(LlmMock.echo()))
 *
 * @since 0.1.0
 * @category Constructors
 */
export const deadline =
  (options: { readonly deadline: Duration.DurationInput }) =>
  (service: Llm.Service): Llm.Service => {
    const limit = Duration.decode(options.deadline)
    return {
      complete: (request) => limitTo(service.complete(request), limit, () => timeoutError(request, "deadline", limit)),
      stream: (request) =>
        StreamWatchdog.limitTotal(service.stream(request), {
          total: Duration.toMillis(limit),
          onTimeout: () => timeoutError(request, "deadline", limit)
        })
    }
  }

/**
 * Wraps the `Llm` service in context with per-attempt limits.
 *
 * @example
 * import { Duration, Layer } from "effect"
 * import { LlmMock, Timeout } from "@clearside/llm"
 *
 * const layer = Timeout.layer({ timeout: Duration.seconds(20) }).pipe(Layer.provide(LlmMock.layerEcho()))
 *
 * @since 0.1.0
 * @category Layers
 */
export const layer = (options: Options = {}): Layer.Layer<Llm.Llm, never, Llm.Llm> =>
  Layer.effect(Llm.Llm, Effect.map(Llm.Llm, make(options)))

/**
 * Wraps the `Llm` service in context with an overall deadline.
 *
 * @example
 * import { Duration, Layer } from "effect"
 * import { LlmMock, Timeout } from "@clearside/llm"
 *
 * const layer = Timeout.layerDeadline({ deadline: Duration.minutes(2) }).pipe(Layer.provide(LlmMock.layerEcho()))
 *
 * @since 0.1.0
 * @category Layers
 */
export const layerDeadline = (options: { readonly deadline: Duration.DurationInput }): Layer.Layer<Llm.Llm, never, Llm.Llm> =>
  Layer.effect(Llm.Llm, Effect.map(Llm.Llm, deadline(options)))

const positiveMillis = (name: string) =>
  Config.integer(name).pipe(
    Config.validate({ message: `${name} must be a positive number of milliseconds`, validation: (n) => n > 0 }),
    Config.map(Duration.millis)
  )

/**
 * Per-attempt limits from the environment: `LLM_TIMEOUT_MS` (30000),
 * `LLM_STREAM_FIRST_TOKEN_TIMEOUT_MS` and `LLM_STREAM_IDLE_TIMEOUT_MS` (both default to the
 * attempt timeout).
 *
 * @example
 * import { Effect } from "effect"
 * import { Timeout } from "@clearside/llm"
 * const options = Effect.runSync(Timeout.config)
 *
 * @since 0.1.0
 * @category Config
 */
export const config: Config.Config<Options> = Config.map(
  Config.all({
    timeout: positiveMillis("LLM_TIMEOUT_MS").pipe(Config.withDefault(Duration.seconds(30))),
    firstToken: Config.option(positiveMillis("LLM_STREAM_FIRST_TOKEN_TIMEOUT_MS")),
    idle: Config.option(positiveMillis("LLM_STREAM_IDLE_TIMEOUT_MS"))
  }),
  ({ firstToken, idle, timeout }): Options => ({
    timeout,
    ...(Option.isSome(firstToken) ? { firstToken: firstToken.value } : {}),
    ...(Option.isSome(idle) ? { idle: idle.value } : {})
  })
)

/**
 * The overall deadline from `LLM_DEADLINE_MS`, if set.
 *
 * @example
 * import { Effect } from "effect"
 * import { Timeout } from "@clearside/llm"
 * const deadline = Effect.runSync(Timeout.deadlineConfig) // Option.none() when unset
 *
 * @since 0.1.0
 * @category Config
 */
export const deadlineConfig: Config.Config<Option.Option<Duration.Duration>> = Config.option(positiveMillis("LLM_DEADLINE_MS"))

/**
 * {@link layer} with options read from {@link config}.
 *
 * @example
 * import { Layer } from "effect"
 * import { LlmMock, Timeout } from "@clearside/llm"
 * const layer = Timeout.layerConfig.pipe(Layer.provide(LlmMock.layerEcho()))
 *
 * @since 0.1.0
 * @category Layers
 */
export const layerConfig: Layer.Layer<Llm.Llm, ConfigError.ConfigError, Llm.Llm> = Layer.effect(
  Llm.Llm,
  Effect.flatMap(config, (options) => Effect.map(Llm.Llm, make(options)))
)

/**
 * {@link layerDeadline} with the deadline read from `LLM_DEADLINE_MS`; leaves the service
 * unchanged when the variable is unset.
 *
 * @example
 * import { Layer } from "effect"
 * import { LlmMock, Timeout } from "@clearside/llm"
 * const layer = Timeout.layerDeadlineConfig.pipe(Layer.provide(LlmMock.layerEcho()))
 *
 * @since 0.1.0
 * @category Layers
 */
export const layerDeadlineConfig: Layer.Layer<Llm.Llm, ConfigError.ConfigError, Llm.Llm> = Layer.effect(
  Llm.Llm,
  Effect.flatMap(deadlineConfig, (limit) =>
    Effect.map(Llm.Llm, (service) => (Option.isSome(limit) ? deadline({ deadline: limit.value })(service) : service))
  )
)
