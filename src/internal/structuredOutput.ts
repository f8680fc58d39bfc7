/**
 * Structured output: the JSON Schema a provider is sent for an Effect `Schema`, reading the
 * answer's text back into the Schema's type, and the repair turn's messages.
 *
 * @internal
 */
import { Effect, Either, JSONSchema, Metric, MetricLabel, Option, ParseResult, Predicate, Schema, SchemaAST } from "effect"
import type * as LlmRequest from "../LlmRequest.js"
import * as JsonSchema from "./jsonSchema.js"
import * as Accumulator from "./usageAccumulator.js"

/**
 * The request's `responseFormat` for a schema, and how to read the answer back. A root that is not
 * an object (an array, a union, a string) is sent wrapped as `{ value }`, as both providers want
 * an object at the root, and unwrapped on the way back.
 *
 * @internal
 */
export interface Target<A, I, R> {
  readonly schema: Schema.Schema<A, I, R>
  readonly format: LlmRequest.ResponseFormat
  readonly wrapped: boolean
}

const resolveRoot = (json: JsonSchema.JsonSchema): JsonSchema.JsonSchema => {
  const ref = json.$ref
  if (typeof ref !== "string" || !ref.startsWith("#/$defs/")) return json
  const defs = json.$defs as Record<string, JsonSchema.JsonSchema> | undefined
  const target = defs?.[ref.slice("#/$defs/".length)]
  if (target === undefined) return json
  const { $ref: _, ...rest } = json
  return { ...rest, ...target }
}

const safeName = (name: string): string => name.replace(/[^a-zA-Z0-9_-]/g, "_").slice(0, 64) || "output"

/**
 * The target for a schema; `name` defaults to the schema's identifier, else `output`.
 *
 * @internal
 */
export const target = <A, I, R>(
  schema: Schema.Schema<A, I, R>,
  options: { readonly name?: string | undefined; readonly description?: string | undefined }
): Target<A, I, R> => {
  const json = resolveRoot(JSONSchema.make(schema as Schema.Schema<A, I, never>) as unknown as JsonSchema.JsonSchema)
  const wrapped = !JsonSchema.isObjectSchema(json)
  const { $schema: _, $defs, ...inner } = json
  const sent: Record<string, unknown> = wrapped
    ? { type: "object", properties: { value: inner }, required: ["value"], additionalProperties: false }
    : { ...inner }
  if ($defs !== undefined) sent.$defs = $defs
  const name = safeName(options.name ?? Option.getOrUndefined(SchemaAST.getIdentifierAnnotation(schema.ast)) ?? "output")
  return {
    schema,
    wrapped,
    format: { type: "json", name, schema: sent, ...(options.description !== undefined ? { description: options.description } : {}) }
  }
}

const fenced = /^\s*```[a-zA-Z]*\s*\n?([\s\S]*?)\n?\s*```\s*$/

/** The JSON inside an answer: its text, or the inside of a Markdown code fence around it. */
const jsonText = (text: string): string => fenced.exec(text)?.[1] ?? text

/**
 * Reads the answer's text as the target's type: JSON parsed, strict-mode `null`s of optional
 * properties dropped, unwrapped, then decoded by the Schema (transformations included). A failure is
 * the readable reason, to send back to the model or to report.
 *
 * @internal
 */
export const read = <A, I, R>(text: string, target: Target<A, I, R>): Effect.Effect<Either.Either<A, string>, never, R> => {
  let parsed: unknown
  try {
    parsed = JSON.parse(jsonText(text))
  } catch (cause) {
    const reason = cause instanceof Error ? cause.message : String(cause)
    return Effect.succeed(Either.left(text.trim() === "" ? "the answer is empty, not JSON" : `the answer is not valid JSON (${reason})`))
  }
  const cleaned = JsonSchema.dropStrictNulls(parsed, target.format.schema)
  if (target.wrapped && !(Predicate.isRecord(cleaned) && "value" in cleaned)) {
    return Effect.succeed(Either.left(`the answer is not an object with a "value" property`))
  }
  const value = partialValue(cleaned, target as Target<unknown, unknown, unknown>)
  return Schema.decodeUnknown(target.schema, { errors: "all", onExcessProperty: "ignore" })(value).pipe(
    Effect.map((a) => Either.right(a)),
    Effect.catchAll((error) => Effect.succeed(Either.left(ParseResult.TreeFormatter.formatErrorSync(error))))
  )
}

/**
 * The value parsed so far from a partial answer, unwrapped like {@link read}'s.
 *
 * @internal
 */
export const partialValue = (value: unknown, target: Target<unknown, unknown, unknown>): unknown =>
  target.wrapped ? (Predicate.isRecord(value) ? value.value : undefined) : value

/**
 * The messages of a repair turn: the conversation so far, the model's answer, and what was wrong
 * with it.
 *
 * @internal
 */
export const repairMessages = (
  messages: ReadonlyArray<LlmRequest.Message>,
  answer: string,
  reason: string
): ReadonlyArray<LlmRequest.Message> => [
  ...messages,
  { role: "assistant", content: answer.trim() === "" ? "(an empty answer)" : answer },
  {
    role: "user",
    content: `Your answer does not match the required JSON schema: ${reason}\nAnswer again with only the corrected JSON document, no other text.`
  }
]

/**
 * Repair turns of structured output, labelled with provider and model.
 *
 * @internal
 */
export const repairs = Metric.counter("llm.client.output.repairs", {
  description: "Repair turns of structured output: answers that did not decode and were sent back to the model",
  incremental: true
})

/**
 * Counts a repair turn: the metric, every open `Usage.withUsage` region, and the current span.
 *
 * @internal
 */
export const recordRepair = (response: { readonly provider: string; readonly model: string }, attempt: number): Effect.Effect<void> =>
  Effect.all(
    [
      Metric.increment(
        Metric.taggedWithLabels(repairs, [
          MetricLabel.make("gen_ai.provider.name", response.provider),
          MetricLabel.make("gen_ai.request.model", response.model)
        ])
      ),
      Accumulator.addRepair,
      Effect.annotateCurrentSpan("llm.output.repairs", attempt)
    ],
    { discard: true }
  )
