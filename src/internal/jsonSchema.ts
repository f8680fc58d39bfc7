/**
 * JSON Schema rewriting for structured output: what `JSONSchema.make` gives, in the form each
 * provider accepts.
 *
 * @internal
 */
import { Predicate } from "effect"

/** A JSON Schema object, as `JSONSchema.make` produces it. */
export type JsonSchema = Readonly<Record<string, unknown>>

const isSchema = (value: unknown): value is JsonSchema => Predicate.isRecord(value) && !Array.isArray(value)

const acceptsNull = (schema: JsonSchema): boolean =>
  schema.type === "null" ||
  (Array.isArray(schema.type) && schema.type.includes("null")) ||
  (Array.isArray(schema.anyOf) && schema.anyOf.some((branch) => isSchema(branch) && acceptsNull(branch)))

const nullable = (schema: JsonSchema): JsonSchema => {
  if (acceptsNull(schema)) return schema
  if (typeof schema.type === "string" && schema.enum === undefined && schema.const === undefined) {
    return { ...schema, type: [schema.type, "null"] }
  }
  if (Array.isArray(schema.anyOf)) return { ...schema, anyOf: [...schema.anyOf, { type: "null" }] }
  return { anyOf: [schema, { type: "null" }] }
}

const mapValues = (record: unknown, f: (schema: JsonSchema) => JsonSchema): unknown =>
  isSchema(record) ? Object.fromEntries(Object.entries(record).map(([key, value]) => [key, isSchema(value) ? f(value) : value])) : record

const mapArray = (items: unknown, f: (schema: JsonSchema) => JsonSchema): unknown =>
  Array.isArray(items) ? items.map((item) => (isSchema(item) ? f(item) : item)) : items

/** Applies `f` to every subschema (properties, items, unions, definitions), then to the schema. */
const rewrite = (schema: JsonSchema, f: (schema: JsonSchema) => JsonSchema): JsonSchema => {
  const go = (s: JsonSchema): JsonSchema => rewrite(s, f)
  const out: Record<string, unknown> = { ...schema }
  if (out.properties !== undefined) out.properties = mapValues(out.properties, go)
  if (out.$defs !== undefined) out.$defs = mapValues(out.$defs, go)
  if (isSchema(out.items)) out.items = go(out.items)
  else if (out.items !== undefined) out.items = mapArray(out.items, go)
  if (out.prefixItems !== undefined) out.prefixItems = mapArray(out.prefixItems, go)
  for (const key of ["anyOf", "oneOf", "allOf"] as const) if (out[key] !== undefined) out[key] = mapArray(out[key], go)
  if (isSchema(out.additionalProperties)) out.additionalProperties = go(out.additionalProperties)
  return f(out)
}

const withoutMeta = (schema: JsonSchema): JsonSchema => {
  const { $schema: _, ...rest } = schema
  return rest
}

const isObjectWithProperties = (schema: JsonSchema): boolean => isSchema(schema.properties)

/**
 * Whether a schema describes a JSON object, as both providers require of the root.
 *
 * @internal
 */
export const isObjectSchema = (schema: JsonSchema): boolean => schema.type === "object" && isObjectWithProperties(schema)

/**
 * OpenAI's strict mode: every object lists all its properties as required, with the optional ones
 * made nullable (a `null` answer is read back as absent), no additional properties, and `anyOf`
 * for `oneOf` (strict mode knows only `anyOf`).
 *
 * @internal
 */
export const strict = (schema: JsonSchema): JsonSchema =>
  withoutMeta(
    rewrite(schema, (s) => {
      const out: Record<string, unknown> = { ...s }
      if (out.oneOf !== undefined && out.anyOf === undefined) {
        out.anyOf = out.oneOf
        delete out.oneOf
      }
      if (isObjectWithProperties(s)) {
        const properties = s.properties as Record<string, JsonSchema>
        const required = new Set(Array.isArray(s.required) ? (s.required as Array<string>) : [])
        out.properties = Object.fromEntries(
          Object.entries(properties).map(([key, value]) => [key, required.has(key) ? value : nullable(value)])
        )
        out.required = Object.keys(properties)
        out.additionalProperties = false
      }
      return out
    })
  )

/**
 * Anthropic's structured output and tool input schemas: objects closed to additional properties,
 * optional properties left optional.
 *
 * @internal
 */
export const closed = (schema: JsonSchema): JsonSchema =>
  withoutMeta(
    rewrite(schema, (s) => (isObjectWithProperties(s) && s.additionalProperties === undefined ? { ...s, additionalProperties: false } : s))
  )

const resolve = (schema: JsonSchema, root: JsonSchema): JsonSchema => {
  const ref = schema.$ref
  if (typeof ref !== "string" || !ref.startsWith("#/$defs/")) return schema
  const target = (root.$defs as Record<string, unknown> | undefined)?.[ref.slice("#/$defs/".length)]
  return isSchema(target) ? target : schema
}

/**
 * Removes the `null`s a strict-mode answer gives for properties that are optional and not nullable
 * in the original schema, so that the value decodes with the original `Schema`.
 *
 * @internal
 */
export const dropStrictNulls = (value: unknown, schema: JsonSchema): unknown => {
  const go = (v: unknown, s: JsonSchema, depth: number): unknown => {
    if (depth > 64) return v
    const target = resolve(s, schema)
    if (Array.isArray(v)) {
      const items = target.items
      return isSchema(items) ? v.map((item) => go(item, items, depth + 1)) : v
    }
    if (!Predicate.isRecord(v)) return v
    if (Array.isArray(target.anyOf)) {
      const objectBranch = target.anyOf.find((branch) => isSchema(branch) && isObjectWithProperties(resolve(branch, schema)))
      return isSchema(objectBranch) ? go(v, objectBranch, depth + 1) : v
    }
    if (!isObjectWithProperties(target)) return v
    const properties = target.properties as Record<string, JsonSchema>
    const required = new Set(Array.isArray(target.required) ? (target.required as Array<string>) : [])
    const out: Record<string, unknown> = {}
    for (const [key, item] of Object.entries(v)) {
      const property = properties[key]
      if (property === undefined) {
        out[key] = item
        continue
      }
      if (item === null && !required.has(key) && !acceptsNull(resolve(property, schema))) continue
      out[key] = go(item, property, depth + 1)
    }
    return out
  }
  return go(value, schema, 0)
}
