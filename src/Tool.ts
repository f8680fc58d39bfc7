/**
 * Tools the model may call: a name, what it is for, its `parameters` as an Effect `Schema` (sent to
 * the model as JSON Schema, and used to decode the arguments it sends), the `success` Schema of its
 * result (used to encode the result sent back) and its `handler`. `Llm.runTools` runs the loop: it
 * asks the model, runs the handlers of the tools it called, sends the results back and stops at an
 * answer without tool calls.
 *
 * @example
 * import { Effect, Schema } from "effect"
 * import { Llm, LlmMock, Tool } from "@clearside/llm"
 *
 * const lookup = Tool.make({
 *   name: "lookup_rate",
 *   description: "The exchange rate of a currency pair",
 *   parameters: Schema.Struct({ pair: Schema.String }),
 *   success: Schema.Struct({ rate: Schema.Number }),
 *   handler: ({ pair }) => Effect.succeed({ rate: pair === "EURUSD" ? 1.08 : 1 })
 * })
 *
 * const answer = Llm.runTools({
 *   tools: [lookup],
 *   messages: [{ role: "user", content: "How many dollars is one euro?" }]
 * }).pipe(
 *   Effect.map(({ response }) => response.content),
 *   Effect.provide(LlmMock.layer([LlmMock.toolCall("lookup_rate", { pair: "EURUSD" }), LlmMock.reply("About 1.08 dollars.")]))
 * )
 *
 * @since 0.1.0
 */
import type { Effect } from "effect"
import { Schema, SchemaAST } from "effect"
import * as StructuredOutput from "./internal/structuredOutput.js"
import type * as LlmRequest from "./LlmRequest.js"

/**
 * What a handler's typed failure does: `"error"` (the default) sends it to the model as an error
 * result, so the model can try something else; `"fail"` fails the loop with it.
 *
 * @example
 * import type { Tool } from "@clearside/llm"
 * const mode: Tool.FailureMode = "fail"
 *
 * @since 0.1.0
 * @category Models
 */
export type FailureMode = "error" | "fail"

/**
 * A tool: its `name` (`^[a-zA-Z0-9_-]{1,64}$`), `description`, the `parameters` and `success`
 * Schemas, the `handler`, its `failureMode`, and `definition`, the `LlmRequest.Tool` the model is
 * sent (the parameters as JSON Schema; a root that is not an object is sent as `{ value }`).
 *
 * @example
 * import { Effect, Schema } from "effect"
 * import { Tool } from "@clearside/llm"
 *
 * const echo = Tool.make({ name: "echo", parameters: Schema.String, handler: (text) => Effect.succeed(text) })
 * const sent = echo.definition.parameters // { type: "object", properties: { value: { type: "string" } }, ... }
 *
 * @since 0.1.0
 * @category Models
 */
export interface Tool<
  Name extends string,
  Parameters extends Schema.Schema.Any,
  Success extends Schema.Schema.Any,
  E,
  R
> {
  readonly name: Name
  readonly description: string | undefined
  readonly parameters: Parameters
  readonly success: Success
  readonly failureMode: FailureMode
  readonly handler: (args: Schema.Schema.Type<Parameters>) => Effect.Effect<Schema.Schema.Type<Success>, E, R>
  readonly definition: LlmRequest.Tool
  /** Whether the parameters are sent wrapped as `{ value }` (a root that is not an object). */
  readonly wrapped: boolean
}

/**
 * Any tool, whatever its types.
 *
 * @example
 * import type { Tool } from "@clearside/llm"
 * const names = (tools: ReadonlyArray<Tool.Any>) => tools.map((tool) => tool.name)
 *
 * @since 0.1.0
 * @category Models
 */
export type Any = Tool<string, Schema.Schema.Any, Schema.Schema.Any, unknown, unknown>

/**
 * The typed failures of a tool's handler.
 *
 * @example
 * import type { Effect, Schema } from "effect"
 * import type { Tool } from "@clearside/llm"
 * type Failure = Tool.Error<Tool.Tool<"t", typeof Schema.String, typeof Schema.Number, "not-found", never>> // "not-found"
 *
 * @since 0.1.0
 * @category Models
 */
export type Error<T> = T extends Tool<string, Schema.Schema.Any, Schema.Schema.Any, infer E, infer _R> ? E : never

/**
 * What a tool needs from the context: its handler's and its Schemas' requirements.
 *
 * @example
 * import type { Schema } from "effect"
 * import type { Tool } from "@clearside/llm"
 * type Needs = Tool.Context<Tool.Tool<"t", typeof Schema.String, typeof Schema.Number, never, "Db">> // "Db"
 *
 * @since 0.1.0
 * @category Models
 */
export type Context<T> = T extends Tool<string, infer P, infer S, infer _E, infer R>
  ? R | Schema.Schema.Context<P> | Schema.Schema.Context<S>
  : never

/**
 * Builds a tool. `parameters` decodes the model's arguments (transformations included) and is sent
 * as JSON Schema; `success` (default `Schema.Unknown`) encodes the handler's result into the JSON
 * sent back; `failureMode` (default `"error"`) says what a typed failure of the handler does. A
 * defect in the handler always fails the loop.
 *
 * @example
 * import { Effect, Schema } from "effect"
 * import { Tool } from "@clearside/llm"
 *
 * const findEvidence = Tool.make({
 *   name: "find_evidence",
 *   description: "Searches the evidence base for a claim",
 *   parameters: Schema.Struct({ claim: Schema.String, limit: Schema.optional(Schema.Number) }),
 *   success: Schema.Array(Schema.Struct({ source: Schema.String, quote: Schema.String })),
 *   handler: ({ claim }) => Effect.succeed([{ source: "survey-2024", quote: `About: ${claim}` }])
 * })
 *
 * @since 0.1.0
 * @category Constructors
 */
export const make = <
  const Name extends string,
  Parameters extends Schema.Schema.Any,
  E,
  R,
  Success extends Schema.Schema.Any = typeof Schema.Unknown
>(options: {
  readonly name: Name
  readonly description?: string | undefined
  readonly parameters: Parameters
  readonly success?: Success | undefined
  readonly failureMode?: FailureMode | undefined
  readonly handler: (args: Schema.Schema.Type<Parameters>) => Effect.Effect<Schema.Schema.Type<Success>, E, R>
}): Tool<Name, Parameters, Success, E, R> => {
  const target = StructuredOutput.target(options.parameters, { name: options.name })
  // `Schema.Struct({})` (a tool without arguments) is "any object" in JSON Schema, which is no object schema.
  const encoded = SchemaAST.encodedAST(options.parameters.ast)
  const empty = SchemaAST.isTypeLiteral(encoded) && encoded.propertySignatures.length === 0 && encoded.indexSignatures.length === 0
  const parameters = empty ? { type: "object", properties: {}, required: [], additionalProperties: false } : target.format.schema
  return {
    name: options.name,
    description: options.description,
    parameters: options.parameters,
    success: (options.success ?? Schema.Unknown) as Success,
    failureMode: options.failureMode ?? "error",
    handler: options.handler,
    wrapped: !empty && target.wrapped,
    definition: {
      name: options.name,
      ...(options.description !== undefined ? { description: options.description } : {}),
      parameters
    }
  }
}
