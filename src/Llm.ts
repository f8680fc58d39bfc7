/**
 * The `Llm` service: the one door through which an agent asks a model for an answer, whole
 * (`complete`) or streamed (`stream`). Providers (`OpenAi`, `Anthropic`, `OpenAiCompatible`,
 * `LlmMock`) are layers that implement it; `LlmLive` builds it from the environment.
 *
 * @example
 * import { Effect } from "effect"
 * import { Llm, LlmMock } from "@clearside/llm"
 *
 * const program = Effect.gen(function* () {
 *   const response = yield* Llm.complete({ messages: [{ role: "user", content: "hello there" }] })
 *   return response.content
 * })
 *
 * Effect.runPromise(program.pipe(Effect.provide(LlmMock.layerEcho())))
 *
 * @since 0.1.0
 */
import type { Stream } from "effect"
import { Context, Effect } from "effect"
import * as Dispatch from "./internal/dispatch.js"
import * as NativeLimits from "./internal/nativeLimits.js"
import * as RequestCheck from "./internal/requestCheck.js"
import * as StreamUnwrap from "./internal/streamUnwrap.js"
import type { LlmError } from "./LlmError.js"
import * as LlmRequest from "./LlmRequest.js"

/**
 * What a provider implements. Both functions receive a request already validated by
 * `LlmRequest.decode`, with `provider` set to the name the request was routed to.
 *
 * @example
 * import { Effect, Stream } from "effect"
 * import type { Llm } from "@clearside/llm"
 *
 * const silent: Llm.Service = {
 *   complete: (request) =>
 *     Effect.succeed({
 *       id: "1", provider: request.provider ?? "silent", model: "none", content: "",
 *       finishReason: "stop", usage: { inputTokens: 0, outputTokens: 0, totalTokens: 0 }
 *     }),
 *   stream: () => Stream.empty
 * }
 *
 * @since 0.1.0
 * @category Models
 */
export interface Service {
  readonly complete: (request: LlmRequest.LlmRequest) => Effect.Effect<LlmRequest.LlmResponse, LlmError>
  readonly stream: (request: LlmRequest.LlmRequest) => Stream.Stream<LlmRequest.LlmStreamEvent, LlmError>
}

/**
 * The service tag.
 *
 * @example
 * import { Effect } from "effect"
 * import { Llm } from "@clearside/llm"
 *
 * const program = Effect.gen(function* () {
 *   const llm = yield* Llm.Llm
 *   return yield* llm.complete({ messages: [{ role: "user", content: "hi" }] })
 * })
 *
 * @since 0.1.0
 * @category Tags
 */
export class Llm extends Context.Tag("@clearside/llm/Llm")<Llm, Service>() {}

/**
 * Asks the model in context for a whole answer.
 *
 * @example
 * import { Effect } from "effect"
 * import { Llm, LlmMock } from "@clearside/llm"
 *
 * const answer = Llm.complete({ messages: [{ role: "user", content: "ping" }] }).pipe(
 *   Effect.map((r) => r.content),
 *   Effect.provide(LlmMock.layerEcho())
 * )
 *
 * @since 0.1.0
 * @category Accessors
 */
export const complete = (
  request: LlmRequest.LlmRequest
): Effect.Effect<LlmRequest.LlmResponse, LlmError, Llm> => Effect.flatMap(Llm, (llm) => llm.complete(request))

/**
 * Asks the model in context for an answer as a stream of `TextDelta`s and one last `Finish`.
 *
 * @example
 * import { Effect, Stream } from "effect"
 * import { Llm, LlmMock } from "@clearside/llm"
 *
 * const printed = Llm.stream({ messages: [{ role: "user", content: "one two three" }] }).pipe(
 *   Stream.runForEach((event) => Effect.log(event)),
 *   Effect.provide(LlmMock.layerEcho())
 * )
 *
 * @since 0.1.0
 * @category Accessors
 */
export const stream = (
  request: LlmRequest.LlmRequest
): Stream.Stream<LlmRequest.LlmStreamEvent, LlmError, Llm> =>
  StreamUnwrap.unwrap(Effect.map(Llm, (llm) => llm.stream(request)))

/**
 * Validates every request before `service` sees it: a bad request fails with an
 * `InvalidRequestError` naming the field, and so does a `provider` outside `providers`; a request
 * naming no provider is given `defaultProvider`, and one naming no model is given its provider's
 * entry in `models`, if any, so that the policies, spans, metrics and log lines inside name the model
 * even when the call fails. `router` is this over a dispatch by name; use it on its own to validate
 * once at the outside of a stack of policies.
 *
 * @example
 * import { Llm, LlmMock } from "@clearside/llm"
 *
 * const checked = Llm.validated(LlmMock.echo({ provider: "echo" }), {
 *   providers: ["echo"],
 *   defaultProvider: "echo",
 *   models: { echo: "echo-1" }
 * })
 *
 * @since 0.1.0
 * @category Combinators
 */
export const validated = (
  service: Service,
  options: {
    readonly providers: ReadonlyArray<string>
    readonly defaultProvider: string
    /** The model each provider answers with when a request names none. */
    readonly models?: Readonly<Record<string, string>> | undefined
  }
): Service => {
  const known = new Set(options.providers)
  const models = options.models ?? {}
  const routed = (request: LlmRequest.LlmRequest, name: string): LlmRequest.LlmRequest => {
    const model = request.model ?? (Object.hasOwn(models, name) ? models[name] : undefined)
    if (request.provider === name && request.model === model) return request
    return model === undefined ? { ...request, provider: name } : { ...request, provider: name, model }
  }
  const configured = options.providers.join(", ") || "none"
  // The name reported on a validation error; an untyped caller may send a provider that is not a string.
  const claimed = (input: unknown): string => {
    const provider: unknown = (input as { readonly provider?: unknown } | null | undefined)?.provider
    return typeof provider === "string" && provider !== "" ? provider : options.defaultProvider
  }
  const resolve = (input: LlmRequest.LlmRequest) =>
    Effect.flatMap(LlmRequest.decode(input, claimed(input)), (request) => {
      const name = request.provider ?? options.defaultProvider
      return known.has(name) ? Effect.succeed(routed(request, name)) : Effect.fail(Dispatch.unknownProvider(name, configured))
    })
  // The common valid request, routed to a configured provider, is passed on as decoded without
  // any Effect of its own; anything else goes through the full decode and its error.
  const resolved = (input: LlmRequest.LlmRequest): LlmRequest.LlmRequest | undefined => {
    const request = RequestCheck.check(input)
    if (request === undefined) return undefined
    const name = request.provider ?? options.defaultProvider
    return known.has(name) ? routed(request, name) : undefined
  }
  const onValid = <A>(input: LlmRequest.LlmRequest, run: (request: LlmRequest.LlmRequest) => Effect.Effect<A, LlmError>) => {
    const request = resolved(input)
    return request === undefined ? Effect.flatMap(resolve(input), run) : run(request)
  }
  const onValidStream = <A>(input: LlmRequest.LlmRequest, run: (request: LlmRequest.LlmRequest) => Stream.Stream<A, LlmError>) => {
    const request = resolved(input)
    return request === undefined ? StreamUnwrap.unwrap(Effect.map(resolve(input), run)) : run(request)
  }
  const checked: Service = {
    complete: (input) => onValid(input, service.complete),
    stream: (input) => onValidStream(input, service.stream)
  }
  // A service that enforces the timeout policy's limits itself still does once validated.
  const native = NativeLimits.get(service)
  return native === undefined
    ? checked
    : NativeLimits.attach(checked, {
        complete: (input, millis, onTimeout) => onValid(input, (request) => native.complete(request, millis, onTimeout)),
        stream: (input, limits) => onValidStream(input, (request) => native.stream(request, limits))
      })
}

/**
 * Routes each request to one of several named providers: the request's `provider`, else
 * `defaultProvider`. Every request is validated first, so a bad one fails with an
 * `InvalidRequestError` before any provider is called; an unknown provider name is such an error too.
 *
 * @example
 * import { Layer } from "effect"
 * import { Llm, LlmMock } from "@clearside/llm"
 *
 * const routed = Llm.router({
 *   providers: { fast: LlmMock.echo({ provider: "fast" }), careful: LlmMock.echo({ provider: "careful" }) },
 *   defaultProvider: "fast"
 * })
 * const layer = Layer.succeed(Llm.Llm, routed)
 *
 * @since 0.1.0
 * @category Constructors
 */
export const router = (options: {
  readonly providers: Readonly<Record<string, Service>>
  readonly defaultProvider: string
}): Service =>
  validated(Dispatch.make(options.providers), {
    providers: Object.keys(options.providers),
    defaultProvider: options.defaultProvider
  })
