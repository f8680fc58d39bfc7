/**
 * The `Llm` service: the one door through which an agent asks a model for an answer, whole
 * (`complete`) or streamed (`stream`).
 *
 * Everything is built on one contract. A {@link Provider} is a name, a default model and one
 * function, {@link Call}, from a validated, routed request to an {@link Answer}: the answer's parts
 * (`TextDelta`s and one last `Finish`) in Effect's own pull form of a stream, the one
 * `Stream.toPull` gives and `Stream.fromPull` takes. `mode` says which wire request to make (one
 * whole JSON answer, or a stream of server-sent events); both come back as the same parts. A
 * {@link Policy} (retry, timeouts, rate limits, circuit breaker, fallback, usage, logging, tracing)
 * turns one `Call` into a guarded one, so each is written once and holds for `complete` and
 * `stream` alike. `complete` is the parts collected into an `LlmResponse` by {@link collect};
 * `stream` is the answer as a `Stream` ({@link toStream}).
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
import { type Chunk, Context, Effect, Either, Layer, Option, type Schema, type Scope, Stream } from "effect"
import * as Answers from "./internal/answer.js"
import * as PartialJson from "./internal/partialJson.js"
import * as StreamUnwrap from "./internal/streamUnwrap.js"
import * as StructuredOutput from "./internal/structuredOutput.js"
import * as ToolLoop from "./internal/toolLoop.js"
import { InvalidRequestError, type LlmError, OutputValidationError, ResponseParseError } from "./LlmError.js"
import * as LlmRequest from "./LlmRequest.js"
import type * as Tool from "./Tool.js"

/**
 * Which wire request a call makes: `"whole"` asks for one JSON answer, `"streamed"` for server-sent
 * events. Both are read into the same parts.
 *
 * @example
 * import type { Llm } from "@clearside/llm"
 * const mode: Llm.Mode = "streamed"
 *
 * @since 0.1.0
 * @category Models
 */
export type Mode = "whole" | "streamed"

/**
 * One pull of an answer: the next chunk of parts, or a failure with `Option.none()` at the end and
 * `Option.some(error)` when the answer failed. Pulling again after the end gives the end again.
 *
 * @example
 * import { Chunk, Effect, Option } from "effect"
 * import type { Llm } from "@clearside/llm"
 *
 * const nothingMore: Llm.Pull = Effect.fail(Option.none())
 * const onePart: Llm.Pull = Effect.succeed(Chunk.of({ _tag: "TextDelta", text: "hi" }))
 *
 * @since 0.1.0
 * @category Models
 */
export type Pull = Effect.Effect<Chunk.Chunk<LlmRequest.LlmStreamEvent>, Option.Option<LlmError>>

/**
 * An answer: opened in a `Scope` (which holds its connection, rate-limit slot and the like until
 * it closes), then pulled ({@link Pull}) until it ends after its one `Finish`. It is Effect's pull
 * form of a stream: `Stream.toPull(stream)` is an answer ({@link fromStream}) and
 * `Stream.fromPull(answer)` its stream ({@link toStream}). Opening never fails; a failure comes with
 * the first pull.
 *
 * @example
 * import { Stream } from "effect"
 * import { Llm, type LlmRequest } from "@clearside/llm"
 *
 * const answer: Llm.Answer = Llm.fromStream(
 *   Stream.make<Array<LlmRequest.LlmStreamEvent>>(
 *     { _tag: "TextDelta", text: "hi" },
 *     { _tag: "Finish", id: "1", provider: "p", model: "m", finishReason: "stop", usage: { inputTokens: 1, outputTokens: 1, totalTokens: 2 } }
 *   )
 * )
 *
 * @since 0.1.0
 * @category Models
 */
export type Answer = Effect.Effect<Pull, never, Scope.Scope>

/**
 * The contract: one exchange with a model, as an {@link Answer} whose parts end with one `Finish`.
 * Inside {@link router} the request is validated and routed: `provider` and `model` are set.
 *
 * @example
 * import { Stream } from "effect"
 * import { Llm, type LlmRequest } from "@clearside/llm"
 *
 * const silent: Llm.Call = (request) =>
 *   Llm.fromStream(
 *     Stream.make<Array<LlmRequest.LlmStreamEvent>>({
 *       _tag: "Finish", id: "1", provider: request.provider ?? "silent", model: request.model ?? "none",
 *       finishReason: "stop", usage: { inputTokens: 0, outputTokens: 0, totalTokens: 0 }
 *     })
 *   )
 *
 * @since 0.1.0
 * @category Models
 */
export type Call = (request: LlmRequest.LlmRequest, mode: Mode) => Answer

/**
 * An answer from a `Stream` of parts (`Stream.toPull`): the easy way to write a provider or a
 * test double. A stream costs more CPU per call than an answer built directly (about 100 µs).
 *
 * @example
 * import { Stream } from "effect"
 * import { Llm, type LlmRequest } from "@clearside/llm"
 *
 * const answer = Llm.fromStream(Stream.make<Array<LlmRequest.LlmStreamEvent>>({ _tag: "TextDelta", text: "hello" }))
 *
 * @since 0.1.0
 * @category Constructors
 */
export const fromStream = (parts: Stream.Stream<LlmRequest.LlmStreamEvent, LlmError>): Answer => Stream.toPull(parts)

/**
 * An answer as a `Stream` of its parts (`Stream.fromPull`): opened when the stream runs, closed
 * when it ends.
 *
 * @example
 * import { Effect, Stream } from "effect"
 * import { Llm, LlmMock } from "@clearside/llm"
 *
 * const parts = Llm.toStream(LlmMock.echo().call({ messages: [{ role: "user", content: "hi" }] }, "streamed"))
 * const printed = Stream.runForEach(parts, (part) => Effect.log(part._tag))
 *
 * @since 0.1.0
 * @category Combinators
 */
export const toStream = (answer: Answer): Stream.Stream<LlmRequest.LlmStreamEvent, LlmError> => Stream.fromPull(answer)

/**
 * What a provider is: its name (the `provider` its answers and errors report), the model it answers
 * with when a request names none, and its {@link Call}. `OpenAi`, `Anthropic`, `OpenAiCompatible`
 * and `LlmMock` make providers; a provider of your own gets every policy by writing `call`.
 *
 * @example
 * import { Stream } from "effect"
 * import { Llm, type LlmRequest } from "@clearside/llm"
 *
 * const local: Llm.Provider = {
 *   name: "local",
 *   model: "tiny-1",
 *   call: (request) =>
 *     Llm.fromStream(
 *       Stream.make<Array<LlmRequest.LlmStreamEvent>>(
 *         { _tag: "TextDelta", text: "hi" },
 *         { _tag: "Finish", id: "1", provider: "local", model: request.model ?? "tiny-1", finishReason: "stop",
 *           usage: { inputTokens: 1, outputTokens: 1, totalTokens: 2 } }
 *       )
 *     )
 * }
 *
 * @since 0.1.0
 * @category Models
 */
export interface Provider {
  readonly name: string
  readonly model: string
  readonly call: Call
}

/**
 * What every policy is: a function from the next call to a guarded one.
 *
 * @example
 * import { Effect } from "effect"
 * import type { Llm } from "@clearside/llm"
 *
 * const announced: Llm.Policy = (next) => (request, mode) =>
 *   Effect.zipRight(Effect.log(`asking ${request.provider}`), next(request, mode))
 *
 * @since 0.1.0
 * @category Models
 */
export type Policy = (next: Call) => Call

/**
 * The service: `call` is the contract, `complete` and `stream` are derived from it by
 * {@link fromCall}.
 *
 * @example
 * import { Llm, LlmMock } from "@clearside/llm"
 *
 * const service: Llm.Service = Llm.fromCall(LlmMock.echo().call)
 *
 * @since 0.1.0
 * @category Models
 */
export interface Service {
  readonly call: Call
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
 * Collects an answer's parts into the whole answer: the text of every `TextDelta`, the reasoning
 * of every `ReasoningDelta` (and its last signature), every completed `ToolCall` in order, and the
 * `Finish` (with its `refusal`). `ToolCallStart` and `ToolCallDelta` are progress only: a call
 * counts once its `ToolCall` arrives. An answer that ends without a `Finish` fails with a
 * `ResponseParseError`.
 *
 * @example
 * import { Stream } from "effect"
 * import { Llm, type LlmRequest } from "@clearside/llm"
 *
 * const response = Llm.collect(
 *   Llm.fromStream(
 *     Stream.fromIterable<LlmRequest.LlmStreamEvent>([
 *       { _tag: "TextDelta", text: "hi" },
 *       { _tag: "ToolCall", id: "call_1", name: "lookup", arguments: { q: 1 }, argumentsText: '{"q":1}' },
 *       { _tag: "Finish", id: "1", provider: "p", model: "m", finishReason: "tool_calls",
 *         usage: { inputTokens: 1, outputTokens: 1, totalTokens: 2 } }
 *     ])
 *   )
 * )
 *
 * @since 0.1.0
 * @category Combinators
 */
export const collect = (answer: Answer): Effect.Effect<LlmRequest.LlmResponse, LlmError> =>
  Effect.scoped(
    Effect.flatMap(answer, (pull) => {
      let content = ""
      let reasoning: string | undefined
      let signature: string | undefined
      const toolCalls: Array<LlmRequest.ResponseToolCall> = []
      let finish: LlmRequest.Finish | undefined
      return Effect.flatMap(
        Answers.drain(pull, (chunk) => {
          for (const part of chunk) {
            switch (part._tag) {
              case "TextDelta":
                content += part.text
                break
              case "ReasoningDelta":
                reasoning = (reasoning ?? "") + part.text
                if (part.signature !== undefined) signature = part.signature
                break
              case "ToolCall":
                toolCalls.push({ id: part.id, name: part.name, arguments: part.arguments, argumentsText: part.argumentsText })
                break
              case "Finish":
                finish = part
                break
            }
          }
        }),
        () => {
          if (finish === undefined) {
            return Effect.fail(
              new ResponseParseError({ provider: "unknown", message: "The answer ended without a finish", retryable: false })
            )
          }
          const { _tag: _, ...rest } = finish
          return Effect.succeed({
            ...rest,
            content,
            toolCalls,
            ...(reasoning !== undefined ? { reasoning } : {}),
            ...(signature !== undefined ? { reasoningSignature: signature } : {})
          })
        }
      )
    })
  )

/**
 * A service from its call: `complete` asks for a whole answer and collects it, `stream` asks for a
 * stream.
 *
 * @example
 * import { Llm, LlmMock } from "@clearside/llm"
 *
 * const service = Llm.fromCall(LlmMock.echo().call)
 *
 * @since 0.1.0
 * @category Constructors
 */
export const fromCall = (call: Call): Service => ({
  call,
  complete: (request) => collect(call(request, "whole")),
  stream: (request) => toStream(call(request, "streamed"))
})

/**
 * Applies policies to a call, the first outermost: `compose(call, [a, b])` is `a(b(call))`.
 *
 * @example
 * import { Effect } from "effect"
 * import { Llm, LlmMock, Retry, Timeout } from "@clearside/llm"
 *
 * const guarded = Effect.gen(function* () {
 *   const retry = yield* Retry.make({ maxRetries: 2 })
 *   const timeout = yield* Timeout.make({ timeout: "10 seconds" })
 *   return Llm.compose(LlmMock.echo().call, [retry, timeout])
 * })
 *
 * @since 0.1.0
 * @category Combinators
 */
export const compose = (call: Call, policies: ReadonlyArray<Policy>): Call => policies.reduceRight((next, policy) => policy(next), call)

/**
 * A service with policies applied to its call, the first outermost.
 *
 * @example
 * import { Effect } from "effect"
 * import { Llm, LlmMock, Retry } from "@clearside/llm"
 *
 * const retried = Effect.map(Retry.make({ maxRetries: 2 }), (retry) => Llm.withPolicies(LlmMock.echo(), [retry]))
 *
 * @since 0.1.0
 * @category Combinators
 */
export const withPolicies = (service: Service, policies: ReadonlyArray<Policy>): Service =>
  fromCall(compose(service.call, policies))

/**
 * Wraps the `Llm` service in context with a policy, built when the layer is.
 *
 * @example
 * import { Layer } from "effect"
 * import { Llm, LlmMock, Retry } from "@clearside/llm"
 *
 * const layer = Llm.layerPolicy(Retry.make({ maxRetries: 3 })).pipe(Layer.provide(LlmMock.layerEcho()))
 *
 * @since 0.1.0
 * @category Layers
 */
export const layerPolicy = <E, R>(policy: Effect.Effect<Policy, E, R>): Layer.Layer<Llm, E, Llm | R> =>
  Layer.effect(
    Llm,
    Effect.flatMap(Llm, (llm) => Effect.map(policy, (wrap) => fromCall(wrap(llm.call))))
  )

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

const unknownProvider = (name: string, configured: string): InvalidRequestError =>
  new InvalidRequestError({
    provider: name,
    field: "provider",
    local: true,
    message: `Invalid request: provider "${name}" is not configured (configured: ${configured})`
  })

/**
 * The service over several providers. Every request is validated first (`LlmRequest.decode`), so a
 * bad one fails with an `InvalidRequestError` naming the field before anything else runs; then it is
 * routed: a request naming no provider goes to `defaultProvider` (else the first provider), one
 * naming no model gets its provider's `model`, and an unknown provider name is an
 * `InvalidRequestError` too. `policies` wrap the routed call, outermost first (for example a
 * deadline and fallback across providers); each provider's own policies are part of its `call`.
 *
 * @example
 * import { Layer } from "effect"
 * import { Llm, LlmMock } from "@clearside/llm"
 *
 * const routed = Llm.router({
 *   providers: [LlmMock.echo({ provider: "fast" }), LlmMock.echo({ provider: "careful" })],
 *   defaultProvider: "fast"
 * })
 * const layer = Layer.succeed(Llm.Llm, routed)
 *
 * @since 0.1.0
 * @category Constructors
 */
export const router = (options: {
  readonly providers: ReadonlyArray<Provider>
  readonly defaultProvider?: string | undefined
  readonly policies?: ReadonlyArray<Policy> | undefined
}): Service => {
  const byName = new Map(options.providers.map((provider) => [provider.name, provider]))
  const defaultProvider = options.defaultProvider ?? options.providers[0]?.name ?? "none"
  const configured = [...byName.keys()].join(", ") || "none"
  const dispatch: Call = (request, mode) => {
    const provider = byName.get(request.provider ?? defaultProvider)
    return provider === undefined
      ? Answers.failed(unknownProvider(request.provider ?? defaultProvider, configured))
      : provider.call(request, mode)
  }
  const guarded = compose(dispatch, options.policies ?? [])
  const route = (request: LlmRequest.LlmRequest): LlmRequest.LlmRequest | InvalidRequestError => {
    const name = request.provider ?? defaultProvider
    const provider = byName.get(name)
    if (provider === undefined) return unknownProvider(name, configured)
    if (request.provider === name && request.model !== undefined) return request
    return { ...request, provider: name, model: request.model ?? provider.model }
  }
  return fromCall((input, mode) => {
    const decoded = LlmRequest.decodeEither(input, defaultProvider)
    if (Either.isLeft(decoded)) return Answers.failed(decoded.left)
    const routed = route(decoded.right)
    return routed instanceof InvalidRequestError ? Answers.failed(routed) : guarded(routed, mode)
  })
}

/**
 * The service over one provider: {@link router} with that provider alone.
 *
 * @example
 * import { Layer } from "effect"
 * import { Llm, LlmMock } from "@clearside/llm"
 *
 * const layer = Layer.succeed(Llm.Llm, Llm.fromProvider(LlmMock.echo({ provider: "echo" })))
 *
 * @since 0.1.0
 * @category Constructors
 */
export const fromProvider = (provider: Provider): Service => router({ providers: [provider] })

/**
 * What {@link generateObject} and {@link streamObject} take: a request (without `responseFormat`,
 * which they set), the Effect `Schema` of the answer, and optionally its `name` and `description`
 * (sent to the model) and `repairs`, how many times an answer that does not decode is sent back to
 * the model with what was wrong (default 1).
 *
 * @example
 * import { Schema } from "effect"
 * import type { Llm } from "@clearside/llm"
 *
 * const ask: Llm.ObjectRequest<{ readonly winner: string }, { readonly winner: string }, never> = {
 *   schema: Schema.Struct({ winner: Schema.String }),
 *   name: "verdict",
 *   messages: [{ role: "user", content: "Who won the debate?" }]
 * }
 *
 * @since 0.1.0
 * @category Models
 */
export interface ObjectRequest<A, I, R> extends Omit<LlmRequest.LlmRequest, "responseFormat"> {
  readonly schema: Schema.Schema<A, I, R>
  readonly name?: string | undefined
  readonly description?: string | undefined
  readonly repairs?: number | undefined
}

/**
 * A typed answer: the decoded `value` and the `response` it was read from (the last one, after any
 * repair turns).
 *
 * @example
 * import type { Llm } from "@clearside/llm"
 * const show = (answer: Llm.ObjectResponse<{ readonly score: number }>) => `${answer.value.score} (${answer.response.model})`
 *
 * @since 0.1.0
 * @category Models
 */
export interface ObjectResponse<A> {
  readonly value: A
  readonly response: LlmRequest.LlmResponse
}

/**
 * An event of {@link streamObject}: the JSON parsed so far as a plain value (`PartialObject`, not
 * decoded: fields may be missing or cut short; treat it as read-only), and at the end the decoded
 * `Object`.
 *
 * @example
 * import type { Llm } from "@clearside/llm"
 * const show = (event: Llm.ObjectEvent<{ readonly claims: ReadonlyArray<string> }>) =>
 *   event._tag === "PartialObject" ? JSON.stringify(event.value) : event.value.claims.join("; ")
 *
 * @since 0.1.0
 * @category Models
 */
export type ObjectEvent<A> =
  | { readonly _tag: "PartialObject"; readonly value: unknown }
  | { readonly _tag: "Object"; readonly value: A; readonly response: LlmRequest.LlmResponse }

const repairsOf = (repairs: number | undefined): number =>
  repairs === undefined || !Number.isFinite(repairs) ? 1 : Math.max(0, Math.min(10, Math.floor(repairs)))

const outputInvalid = (response: LlmRequest.LlmResponse, reason: string, attempts: number) =>
  new OutputValidationError({
    provider: response.provider,
    message: `The answer of ${response.provider} does not match the schema after ${attempts} ${attempts === 1 ? "attempt" : "attempts"}: ${reason}`.slice(0, 2_000),
    text: response.content,
    attempts
  })

const splitObjectRequest = <A, I, R>(options: ObjectRequest<A, I, R>) => {
  const { description, name, repairs, schema, ...request } = options
  return { request, repairs: repairsOf(repairs), target: StructuredOutput.target(schema, { name, description }) }
}

/**
 * Asks the model in context for a value of `schema`: the provider is sent the JSON Schema in its own
 * form (OpenAI's strict `json_schema`, Anthropic's output format or a forced tool, a compatible
 * endpoint's `json_schema` or `json_object`), and the answer is decoded with the Schema,
 * transformations included. An answer that is not JSON or does not decode is sent back once (see
 * `repairs`) with the reason; then the call fails with an `OutputValidationError` holding the raw
 * text. Every attempt is an ordinary call (retry, limits, usage); repairs are counted in
 * `Usage.outputRepairs`, in `Usage.withUsage` and on the span.
 *
 * @example
 * import { Effect, Schema } from "effect"
 * import { Llm, LlmMock } from "@clearside/llm"
 *
 * const Claims = Schema.Struct({ claims: Schema.Array(Schema.Struct({ text: Schema.String, stance: Schema.Literal("for", "against") })) })
 *
 * const claims = Llm.generateObject({
 *   schema: Claims,
 *   name: "claims",
 *   messages: [{ role: "user", content: "Extract the claims of: 'Cities should ban cars. Buses are cheaper.'" }]
 * }).pipe(
 *   Effect.map(({ value }) => value.claims),
 *   Effect.provide(LlmMock.layer([LlmMock.object({ claims: [{ text: "Cities should ban cars", stance: "for" }] })]))
 * )
 *
 * @since 0.1.0
 * @category Accessors
 */
export const generateObject = <A, I, R>(options: ObjectRequest<A, I, R>): Effect.Effect<ObjectResponse<A>, LlmError, Llm | R> =>
  Effect.gen(function* () {
    const llm = yield* Llm
    const { repairs, request, target } = splitObjectRequest(options)
    let messages = request.messages
    for (let attempt = 1; ; attempt++) {
      const response = yield* llm.complete({ ...request, messages, responseFormat: target.format })
      const read = yield* StructuredOutput.read(response.content, target)
      if (Either.isRight(read)) return { value: read.right, response }
      if (attempt > repairs) return yield* Effect.fail(outputInvalid(response, read.left, attempt))
      yield* StructuredOutput.recordRepair(response, attempt)
      messages = StructuredOutput.repairMessages(messages, response.content, read.left)
    }
  }).pipe(Effect.withSpan("Llm.generateObject", { attributes: { "gen_ai.output.type": "json" } }))

/**
 * Like {@link generateObject}, streamed: a `PartialObject` with the JSON parsed so far for each
 * fragment that changes it (the first with the first fragment), then one `Object` with the decoded
 * value and the response. The text is parsed incrementally, each character once. After a repair
 * turn the partial objects start again from the repaired answer's beginning.
 *
 * @example
 * import { Effect, Schema, Stream } from "effect"
 * import { Llm, LlmMock } from "@clearside/llm"
 *
 * const live = Llm.streamObject({
 *   schema: Schema.Struct({ summary: Schema.String }),
 *   messages: [{ role: "user", content: "Summarise the debate" }]
 * }).pipe(
 *   Stream.runForEach((event) => Effect.log(event._tag, event.value)),
 *   Effect.provide(LlmMock.layer([LlmMock.object({ summary: "A draw" })]))
 * )
 *
 * @since 0.1.0
 * @category Accessors
 */
export const streamObject = <A, I, R>(options: ObjectRequest<A, I, R>): Stream.Stream<ObjectEvent<A>, LlmError, Llm | R> =>
  StreamUnwrap.unwrap(
    Effect.map(Llm, (llm) => {
      const { repairs, request, target } = splitObjectRequest(options)
      const untyped = target as StructuredOutput.Target<unknown, unknown, unknown>
      const attempt = (n: number, messages: ReadonlyArray<LlmRequest.Message>): Stream.Stream<ObjectEvent<A>, LlmError, R> =>
        Stream.suspend(() => {
          const parser = PartialJson.make()
          let content = ""
          let finish: LlmRequest.Finish | undefined
          const partials = Stream.filterMap(
            llm.stream({ ...request, messages, responseFormat: target.format }),
            (event): Option.Option<ObjectEvent<A>> => {
              if (event._tag === "Finish") {
                finish = event
                return Option.none()
              }
              if (event._tag !== "TextDelta") return Option.none()
              content += event.text
              return parser.push(event.text)
                ? Option.some({ _tag: "PartialObject", value: StructuredOutput.partialValue(parser.value(), untyped) })
                : Option.none()
            }
          )
          const end: Stream.Stream<ObjectEvent<A>, LlmError, R> = StreamUnwrap.unwrap(
            Effect.suspend(() => {
              const { _tag: _, ...rest } = finish!
              const response: LlmRequest.LlmResponse = { ...rest, content, toolCalls: [] }
              return Effect.flatMap(StructuredOutput.read(content, target), (read): Effect.Effect<Stream.Stream<ObjectEvent<A>, LlmError, R>, LlmError, R> => {
                if (Either.isRight(read)) return Effect.succeed(Stream.succeed<ObjectEvent<A>>({ _tag: "Object", value: read.right, response }))
                if (n > repairs) return Effect.fail(outputInvalid(response, read.left, n))
                return Effect.as(
                  StructuredOutput.recordRepair(response, n),
                  attempt(n + 1, StructuredOutput.repairMessages(messages, content, read.left))
                )
              })
            })
          )
          return Stream.concat(partials, end)
        })
      return attempt(1, request.messages)
    })
  ).pipe(Stream.withSpan("Llm.streamObject", { attributes: { "gen_ai.output.type": "json" } }))

/**
 * What {@link runTools} and {@link streamTools} take: a request whose `tools` are `Tool`s (their
 * JSON Schemas are sent), `maxSteps`, how many times the model is asked at most (default 8), and
 * `concurrency`, how many handlers run at once (default 4).
 *
 * @example
 * import { Effect, Schema } from "effect"
 * import { type Llm, Tool } from "@clearside/llm"
 *
 * const clock = Tool.make({ name: "now", parameters: Schema.Struct({}), handler: () => Effect.succeed("2026-12-02T06:00:00Z") })
 * const ask: Llm.ToolsRequest<[typeof clock]> = { tools: [clock], maxSteps: 3, messages: [{ role: "user", content: "What time is it?" }] }
 *
 * @since 0.1.0
 * @category Models
 */
export interface ToolsRequest<Tools extends ReadonlyArray<Tool.Any>> extends Omit<LlmRequest.LlmRequest, "tools"> {
  readonly tools: Tools
  readonly maxSteps?: number | undefined
  readonly concurrency?: number | undefined
}

/**
 * The result of one tool call, as sent back to the model: `result` is the handler's value encoded
 * with the tool's `success` Schema, or, when `isError`, the text telling the model what went wrong.
 *
 * @example
 * import type { Llm } from "@clearside/llm"
 * const result: Llm.ToolResult = { id: "call_1", name: "lookup", result: { rate: 1.08 }, isError: false }
 *
 * @since 0.1.0
 * @category Models
 */
export interface ToolResult {
  readonly id: string
  readonly name: string
  readonly result: unknown
  readonly isError: boolean
}

/**
 * One round of {@link runTools}: the model's answer, the tool calls it made and their results (in
 * call order). The last step is the answer, with no calls.
 *
 * @example
 * import type { Llm } from "@clearside/llm"
 * const called = (step: Llm.Step) => step.toolCalls.map((call) => call.name)
 *
 * @since 0.1.0
 * @category Models
 */
export interface Step {
  readonly index: number
  readonly response: LlmRequest.LlmResponse
  readonly toolCalls: ReadonlyArray<LlmRequest.ResponseToolCall>
  readonly results: ReadonlyArray<ToolResult>
}

/**
 * The usage of a whole tool loop: the tokens of every step's answer added up, and `costUsd`, what
 * its calls cost as the `Usage` policy priced them (retried attempts included; 0 without that
 * policy in the stack).
 *
 * @example
 * import type { Llm } from "@clearside/llm"
 * const show = (usage: Llm.ToolsUsage) => `${usage.totalTokens} tokens, $${usage.costUsd.toFixed(4)}`
 *
 * @since 0.1.0
 * @category Models
 */
export interface ToolsUsage extends LlmRequest.Usage {
  readonly costUsd: number
}

/**
 * What {@link runTools} gives: the final `response` (an answer without tool calls), every step,
 * and the usage of all of them.
 *
 * @example
 * import type { Llm } from "@clearside/llm"
 * const summary = (r: Llm.ToolsResponse) => `${r.response.content} (${r.steps.length} steps, ${r.usage.totalTokens} tokens)`
 *
 * @since 0.1.0
 * @category Models
 */
export interface ToolsResponse {
  readonly response: LlmRequest.LlmResponse
  readonly steps: ReadonlyArray<Step>
  readonly usage: ToolsUsage
}

/**
 * An event of {@link streamTools}: a `StepStart`, the model's parts of that step as they stream
 * (`TextDelta`, `ToolCall`, its `Finish`...), a `ToolResult` as each handler ends (in the order
 * they end), and a `StepFinish` with the whole step. The last `StepFinish` holds the answer.
 *
 * @example
 * import type { Llm } from "@clearside/llm"
 * const show = (event: Llm.ToolsEvent) =>
 *   event._tag === "TextDelta" ? event.text : event._tag === "ToolResult" ? `[${event.name} done]` : ""
 *
 * @since 0.1.0
 * @category Models
 */
export type ToolsEvent =
  | LlmRequest.LlmStreamEvent
  | { readonly _tag: "StepStart"; readonly index: number }
  | ({ readonly _tag: "ToolResult"; readonly step: number } & ToolResult)
  | { readonly _tag: "StepFinish"; readonly step: Step }

/**
 * Runs a model with tools until it answers: each step asks the model in context (an ordinary call
 * through the whole stack: retry, limits, breaker, fallback, usage, logs) with the tools' JSON
 * Schemas; each call's arguments are decoded with the tool's `parameters` and its handler runs
 * (at most `concurrency` at once, outside the model call, so a retry never runs a handler again,
 * each under an `execute_tool {name}` span); the results go back as a `tool` message. Arguments
 * that do not decode, or a tool that does not exist, get an error result telling the model what
 * was wrong; the same tool failing so again fails the loop with a `ToolCallError`. A handler's
 * typed failure is an error result, or fails the loop with it when the tool's `failureMode` is
 * `"fail"`; a defect fails the loop. A model still calling tools at step `maxSteps` fails it with
 * a `MaxStepsError`. Interrupting the loop interrupts its running handlers.
 *
 * @example
 * import { Effect, Schema } from "effect"
 * import { Llm, LlmMock, Tool } from "@clearside/llm"
 *
 * const weather = Tool.make({
 *   name: "weather",
 *   parameters: Schema.Struct({ city: Schema.String }),
 *   handler: ({ city }) => Effect.succeed(`Sunny in ${city}`)
 * })
 *
 * const answer = Llm.runTools({ tools: [weather], messages: [{ role: "user", content: "Weather in Oslo?" }] }).pipe(
 *   Effect.map(({ response, steps }) => `${response.content} after ${steps.length} steps`),
 *   Effect.provide(LlmMock.layer([LlmMock.toolCall("weather", { city: "Oslo" }), LlmMock.reply("It is sunny in Oslo.")]))
 * )
 *
 * @since 0.1.0
 * @category Accessors
 */
export const runTools = <const Tools extends ReadonlyArray<Tool.Any>>(
  options: ToolsRequest<Tools>
): Effect.Effect<ToolsResponse, LlmError | Tool.Error<Tools[number]>, Llm | Tool.Context<Tools[number]>> =>
  Effect.flatMap(Llm, (llm) => ToolLoop.run(llm, options))

/**
 * Like {@link runTools}, streamed: every step streams the model's parts, then each tool result
 * as its handler ends, with step boundaries, for a UI that shows the agent working.
 *
 * @example
 * import { Effect, Schema, Stream } from "effect"
 * import { Llm, LlmMock, Tool } from "@clearside/llm"
 *
 * const weather = Tool.make({ name: "weather", parameters: Schema.Struct({ city: Schema.String }), handler: () => Effect.succeed("Sunny") })
 *
 * const shown = Llm.streamTools({ tools: [weather], messages: [{ role: "user", content: "Weather in Oslo?" }] }).pipe(
 *   Stream.runForEach((event) => Effect.log(event._tag)),
 *   Effect.provide(LlmMock.layer([LlmMock.toolCall("weather", { city: "Oslo" }), LlmMock.reply("Sunny.")]))
 * )
 *
 * @since 0.1.0
 * @category Accessors
 */
export const streamTools = <const Tools extends ReadonlyArray<Tool.Any>>(
  options: ToolsRequest<Tools>
): Stream.Stream<ToolsEvent, LlmError | Tool.Error<Tools[number]>, Llm | Tool.Context<Tools[number]>> =>
  StreamUnwrap.unwrap(
    Effect.map(Llm, (llm) => ToolLoop.stream(llm, (events) => collect(fromStream(Stream.fromIterable(events))), options))
  )
