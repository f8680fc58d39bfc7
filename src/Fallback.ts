/**
 * Falls back to other providers or models when one fails for good.
 *
 * A call first goes where the request says. When it fails before its first part with an error
 * {@link shouldFallBack} accepts (a retryable error after the provider's own retries, or an open
 * circuit), the request is sent again to the next target of the chain, with `provider` and `model`
 * rewritten, and so on down the chain; a target equal to one already tried is skipped. When every
 * target fails, the last error is returned. Errors that would fail again anywhere
 * (`InvalidRequestError`, `AuthenticationError`, `QuotaExceededError`, `NotFoundError`, any
 * non-retryable error such as an overall deadline) pass through at once.
 *
 * A stream that has sent a part is never restarted elsewhere: its failure ends it, with
 * `textEmitted` counting the characters already sent. A whole answer's parts all arrive at once at
 * the end, so `complete` falls back on any such failure. Each move is logged at warn, annotated
 * with the failed `provider` and `model`, the `target` and the `error` tag.
 *
 * Put it where `request.provider` chooses the provider: as a policy of `Llm.router`, or around the
 * router with {@link layer}. A target naming no model sends the request without one, for the router
 * or the provider to fill in its default.
 *
 * @example
 * import { Effect } from "effect"
 * import { Fallback, Llm, LlmMock } from "@clearside/llm"
 *
 * const service = Effect.map(Fallback.make({ chain: [{ provider: "openai", model: "gpt-4o-mini" }] }), (fallback) =>
 *   Llm.router({
 *     providers: [LlmMock.echo({ provider: "anthropic" }), LlmMock.echo({ provider: "openai" })],
 *     policies: [fallback]
 *   })
 * )
 *
 * @since 0.1.0
 */
import { Config, ConfigError, Effect, Either } from "effect"
import * as Llm from "./Llm.js"
import type { LlmError } from "./LlmError.js"
import type { LlmRequest } from "./LlmRequest.js"
import * as Answer from "./internal/answer.js"

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
 * Fallback options: the ordered `chain` of targets (default none: the policy changes nothing), and
 * `onFallback`, run each time a call moves to the next target (e.g. to count it in a metric).
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
  readonly chain?: ReadonlyArray<Target>
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

const same = (a: Target, b: Target): boolean => a.provider === b.provider && a.model === b.model

const targetName = (target: Target): string => (target.model === undefined ? target.provider : `${target.provider}:${target.model}`)

/**
 * Builds the fallback policy.
 *
 * @example
 * import { Effect } from "effect"
 * import { Fallback, Llm, LlmMock } from "@clearside/llm"
 *
 * const guarded = Effect.map(Fallback.make({ chain: [{ provider: "openai" }] }), (fallback) =>
 *   Llm.compose(LlmMock.echo().call, [fallback])
 * )
 *
 * @since 0.1.0
 * @category Constructors
 */
export const make = (options: Options = {}): Effect.Effect<Llm.Policy> =>
  Effect.sync(() => {
    const chain = options.chain ?? []
    const policy: Llm.Policy = (next) =>
      chain.length === 0
        ? next
        : (request, mode) =>
            // Per call: the targets tried so far, from its first failure on (the request's own
            // target first; outside a router, the provider its error names).
            Effect.suspend(() => {
              const tried: Array<Target> = []
              let current = request
              let from = 0
              return Answer.recoverBeforeFirst(next(request, mode), (error) => {
                if (!shouldFallBack(error)) return Effect.fail(error)
                const failed = current.provider ?? error.provider
                if (tried.length === 0) tried.push(current.model === undefined ? { provider: failed } : { provider: failed, model: current.model })
                for (let i = from; i < chain.length; i++) {
                  const target = chain[i]!
                  if (tried.some((t) => same(t, target))) continue
                  tried.push(target)
                  const log = Effect.logWarning(
                    `Falling back from ${failed} to ${targetName(target)} after ${error._tag}: ${error.message}`
                  ).pipe(
                    Effect.annotateLogs({
                      provider: failed,
                      model: current.model ?? "default",
                      target: targetName(target),
                      error: error._tag
                    })
                  )
                  const report =
                    options.onFallback === undefined ? log : Effect.zipRight(log, options.onFallback({ from: failed, error, to: target }))
                  current = retarget(current, target)
                  from = i + 1
                  return Effect.as(report, next(current, mode))
                }
                return Effect.fail(error)
              })
            })
    return policy
  })

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
 * Fallback options from the environment: the chain from `LLM_FALLBACK` (empty when unset), e.g.
 * `LLM_FALLBACK=anthropic:claude-sonnet-4-5,openai:gpt-4o-mini`. A malformed value fails with a
 * `ConfigError` that names the bad entry.
 *
 * @example
 * import { Effect } from "effect"
 * import { Fallback } from "@clearside/llm"
 * const options = Effect.runSync(Fallback.config)
 *
 * @since 0.1.0
 * @category Config
 */
export const config: Config.Config<Options> = Config.string("LLM_FALLBACK").pipe(
  Config.withDefault(""),
  Config.mapOrFail((value) =>
    Either.match(parse(value), {
      onLeft: (message) => Either.left(ConfigError.InvalidData(["LLM_FALLBACK"], message)),
      onRight: (chain): Either.Either<Options, ConfigError.ConfigError> => Either.right({ chain })
    })
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
export const layer = (options?: Options) => Llm.layerPolicy(make(options))

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
export const layerConfig = Llm.layerPolicy(Effect.flatMap(config, make))
