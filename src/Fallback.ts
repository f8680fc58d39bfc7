/**
 * Falls back to other providers or models when one fails for good.
 *
 * A call first goes where the request says. When it fails with a retryable error (after its own
 * retries) or a `CircuitOpenError`, the request is sent again to the next target of the chain, with
 * `provider` and `model` rewritten, through the routed service (so the response's `provider` says
 * who answered), and so on down the chain; targets equal to one already tried are skipped. A
 * failure that would fail again anywhere (`InvalidRequestError`, `AuthenticationError`,
 * `QuotaExceededError`, any non-retryable error, an overall deadline) ends the call at once. When
 * every target fails, the last error is returned. Streams fall back only before their first event.
 *
 * Wrap the router (e.g. `Llm.router` over providers that each carry their own retry and breaker),
 * since fallback works by changing `request.provider`.
 *
 * @example
 * import { Effect } from "effect"
 * import { Fallback, Llm, LlmMock } from "@clearside/llm"
 *
 * const routed = Llm.router({
 *   providers: { anthropic: LlmMock.echo({ provider: "anthropic" }), openai: LlmMock.echo({ provider: "openai" }) },
 *   defaultProvider: "anthropic"
 * })
 * const llm = Fallback.make({ chain: [{ provider: "openai", model: "gpt-4o-mini" }] })(routed)
 *
 * @since 0.1.0
 */
import type { Stream } from "effect"
import { Config, ConfigError, Effect, Either, Layer } from "effect"
import * as Llm from "./Llm.js"
import type { LlmError } from "./LlmError.js"
import type { LlmRequest, LlmResponse, LlmStreamEvent } from "./LlmRequest.js"
import * as StreamUnwrap from "./internal/streamUnwrap.js"
import { recoverBeforeFirstEvent } from "./internal/streamFirstEvent.js"

/**
 * One link of the chain: a provider name and, optionally, the model to ask there (else the
 * provider's default model).
 *
 * @example
 * import type { Fallback } from "@clearside/llm"
 * const target: Fallback.Target = { provider: "openai", model: "gpt-4o-mini" }
 *
 * @since 0.1.0
 * @category Models
 */
export interface Target {
  readonly provider: string
  readonly model?: string
}

/**
 * What `onFallback` is told when a call moves on: the provider that failed, its error, and the
 * target tried next.
 *
 * @example
 * import type { Fallback } from "@clearside/llm"
 * const describe = (info: Fallback.FallbackInfo) => `${info.from} failed (${info.error._tag}), trying ${info.to.provider}`
 *
 * @since 0.1.0
 * @category Models
 */
export interface FallbackInfo {
  readonly from: string
  readonly error: LlmError
  readonly to: Target
}

/**
 * Fallback options: the ordered `chain` of targets, and `onFallback`, run each time a call moves
 * to the next target (every move is also logged at warn).
 *
 * @example
 * import { Effect } from "effect"
 * import type { Fallback } from "@clearside/llm"
 *
 * const options: Fallback.Options = {
 *   chain: [{ provider: "anthropic", model: "claude-sonnet-4-5" }, { provider: "openai", model: "gpt-4o-mini" }],
 *   onFallback: (info) => Effect.log(`falling back to ${info.to.provider}`)
 * }
 *
 * @since 0.1.0
 * @category Models
 */
export interface Options {
  readonly chain: ReadonlyArray<Target>
  readonly onFallback?: (info: FallbackInfo) => Effect.Effect<void>
}

/**
 * Whether a failure may succeed elsewhere: retryable errors and an open circuit.
 *
 * @example
 * import { Fallback, LlmError } from "@clearside/llm"
 * Fallback.shouldFallBack(new LlmError.AuthenticationError({ provider: "openai", message: "bad key" })) // false
 *
 * @since 0.1.0
 * @category Predicates
 */
export const shouldFallBack = (error: LlmError): boolean =>
  error._tag === "CircuitOpenError" ||
  (error.retryable &&
    error._tag !== "InvalidRequestError" &&
    error._tag !== "AuthenticationError" &&
    error._tag !== "QuotaExceededError")

const retarget = (request: LlmRequest, target: Target): LlmRequest => {
  const { model: _model, ...rest } = request
  return target.model === undefined ? { ...rest, provider: target.provider } : { ...rest, provider: target.provider, model: target.model }
}

/**
 * Wraps a routed service with the fallback chain.
 *
 * @example
 * import { Fallback, LlmMock } from "@clearside/llm"
 * const llm = Fallback.make({ chain: [{ provider: "openai" }] })(LlmMock.echo())
 *
 * @since 0.1.0
 * @category Constructors
 */
export const make =
  (options: Options) =>
  (service: Llm.Service): Llm.Service => {
    const chain = options.chain
    if (chain.length === 0) return service

    /**
     * Where to go after `error`: the first target from `from` on not yet `tried` (the failed
     * request's own provider and model count as tried), or undefined when the call should fail.
     */
    const next = (request: LlmRequest, error: LlmError, tried: Array<Target>, from: number) => {
      if (!shouldFallBack(error)) return undefined
      if (tried.length === 0) {
        const provider = request.provider ?? error.provider
        tried.push(request.model === undefined ? { provider } : { provider, model: request.model })
      }
      for (let i = from; i < chain.length; i++) {
        const target = chain[i]!
        if (tried.some((t) => t.provider === target.provider && t.model === target.model)) continue
        tried.push(target)
        const log = Effect.logWarning(`Falling back from ${error.provider} to ${target.provider} after ${error._tag}`).pipe(
          Effect.annotateLogs({ from: error.provider, to: target.provider, model: target.model ?? "default", error: error._tag })
        )
        return {
          from: i + 1,
          request: retarget(request, target),
          report: options.onFallback === undefined ? log : Effect.zipRight(log, options.onFallback({ from: error.provider, error, to: target }))
        }
      }
      return undefined
    }

    // The targets tried are tracked from the first failure on: a call answered at once by its own
    // provider costs one `catchAll`.
    return {
      complete: (request) =>
        Effect.catchAll(service.complete(request), (first) => {
          const tried: Array<Target> = []
          const fallBack = (error: LlmError, from: number): Effect.Effect<LlmResponse, LlmError> => {
            const step = next(request, error, tried, from)
            return step === undefined
              ? Effect.fail(error)
              : Effect.zipRight(step.report, Effect.catchAll(service.complete(step.request), (again) => fallBack(again, step.from)))
          }
          return fallBack(first, 0)
        }),
      stream: (request) => {
        // Per run of the stream: the targets tried, from its first failure on.
        const fallBack = (tried: Array<Target>, error: LlmError, from: number): Stream.Stream<LlmStreamEvent, LlmError> | undefined => {
          const step = next(request, error, tried, from)
          return step === undefined
            ? undefined
            : StreamUnwrap.unwrap(
                Effect.as(
                  step.report,
                  recoverBeforeFirstEvent(service.stream(step.request), (again) => fallBack(tried, again, step.from))
                )
              )
        }
        return recoverBeforeFirstEvent(service.stream(request), (first) => fallBack([], first, 0))
      }
    }
  }

/**
 * Parses a chain written as `provider:model` pairs separated by commas (the model may be left out:
 * `anthropic:claude-sonnet-4-5,openai`). Whitespace around entries is ignored; an empty string is
 * an empty chain. Fails with a message naming the bad entry.
 *
 * @example
 * import { Fallback } from "@clearside/llm"
 * Fallback.parse("anthropic:claude-sonnet-4-5,openai:gpt-4o-mini")
 * // Either.right([{ provider: "anthropic", model: "claude-sonnet-4-5" }, { provider: "openai", model: "gpt-4o-mini" }])
 *
 * @since 0.1.0
 * @category Parsing
 */
export const parse = (input: string): Either.Either<ReadonlyArray<Target>, string> => {
  if (input.trim() === "") return Either.right([])
  const targets: Array<Target> = []
  for (const raw of input.split(",")) {
    const entry = raw.trim()
    const colon = entry.indexOf(":")
    const provider = (colon === -1 ? entry : entry.slice(0, colon)).trim()
    const model = colon === -1 ? undefined : entry.slice(colon + 1).trim()
    if (provider === "" || model === "" || (model !== undefined && model.includes(":")) || /\s/.test(provider)) {
      return Either.left(
        `"${entry}" is not a fallback target: expected provider or provider:model, e.g. "anthropic:claude-sonnet-4-5,openai:gpt-4o-mini"`
      )
    }
    targets.push(model === undefined ? { provider } : { provider, model })
  }
  return Either.right(targets)
}

/**
 * The fallback chain from `LLM_FALLBACK` (empty when unset), e.g.
 * `LLM_FALLBACK=anthropic:claude-sonnet-4-5,openai:gpt-4o-mini`. A malformed value fails with a
 * `ConfigError` that names the bad entry.
 *
 * @example
 * import { Effect } from "effect"
 * import { Fallback } from "@clearside/llm"
 * const chain = Effect.runSync(Fallback.config)
 *
 * @since 0.1.0
 * @category Config
 */
export const config: Config.Config<ReadonlyArray<Target>> = Config.string("LLM_FALLBACK").pipe(
  Config.withDefault(""),
  Config.mapOrFail((value) =>
    Either.mapLeft(parse(value), (message) => ConfigError.InvalidData(["LLM_FALLBACK"], message))
  )
)

/**
 * Wraps the `Llm` service in context (a router) with the fallback chain.
 *
 * @example
 * import { Layer } from "effect"
 * import { Fallback, LlmMock } from "@clearside/llm"
 * const layer = Fallback.layer({ chain: [{ provider: "openai" }] }).pipe(Layer.provide(LlmMock.layerEcho()))
 *
 * @since 0.1.0
 * @category Layers
 */
export const layer = (options: Options): Layer.Layer<Llm.Llm, never, Llm.Llm> =>
  Layer.effect(Llm.Llm, Effect.map(Llm.Llm, make(options)))

/**
 * {@link layer} with the chain read from {@link config}; leaves the service unchanged when
 * `LLM_FALLBACK` is unset.
 *
 * @example
 * import { Layer } from "effect"
 * import { Fallback, LlmMock } from "@clearside/llm"
 * const layer = Fallback.layerConfig.pipe(Layer.provide(LlmMock.layerEcho()))
 *
 * @since 0.1.0
 * @category Layers
 */
export const layerConfig: Layer.Layer<Llm.Llm, ConfigError.ConfigError, Llm.Llm> = Layer.unwrapEffect(
  Effect.map(config, (chain) => layer({ chain }))
)
