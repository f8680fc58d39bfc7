/**
 * Structured-output requests: which schema a request asks the answer to match (OpenAI
 * `response_format`, Anthropic `output_config.format` or a forced tool), and a value generated from
 * that schema for the default answer.
 *
 * @internal
 */
import type { Route } from "./wire.js"

type Json = Record<string, unknown>

const isRecord = (u: unknown): u is Json => typeof u === "object" && u !== null && !Array.isArray(u)

/**
 * What a request asks for: the schema, and on Anthropic the forced tool's name when the answer must
 * come as that tool's input.
 */
export interface Wanted {
  readonly schema: Json
  readonly tool?: string
}

/** The JSON Schema stated in JSON mode's system prompt: its last line that is a JSON object. */
const schemaInSystemPrompt = (body: Json): Json | undefined => {
  const messages = Array.isArray(body.messages) ? body.messages : []
  const system = messages.find((m: unknown) => isRecord(m) && m.role === "system")
  if (!isRecord(system) || typeof system.content !== "string") return undefined
  for (const line of system.content.split("\n").reverse()) {
    try {
      const parsed: unknown = JSON.parse(line)
      if (isRecord(parsed)) return parsed
    } catch {
      // not this line
    }
  }
  return {}
}

export const wanted = (route: Route, body: unknown): Wanted | undefined => {
  if (!isRecord(body)) return undefined
  if (route === "openai") {
    const format = body.response_format
    if (!isRecord(format)) return undefined
    if (format.type === "json_schema" && isRecord(format.json_schema) && isRecord(format.json_schema.schema)) {
      return { schema: format.json_schema.schema }
    }
    if (format.type === "json_object") {
      const schema = schemaInSystemPrompt(body)
      return schema === undefined ? undefined : { schema }
    }
    return undefined
  }
  const config = body.output_config
  if (isRecord(config) && isRecord(config.format) && isRecord(config.format.schema)) return { schema: config.format.schema }
  const choice = body.tool_choice
  if (isRecord(choice) && choice.type === "tool" && typeof choice.name === "string" && Array.isArray(body.tools)) {
    const tool = body.tools.find((t: unknown) => isRecord(t) && t.name === choice.name)
    if (isRecord(tool) && isRecord(tool.input_schema)) return { schema: tool.input_schema, tool: choice.name }
  }
  return undefined
}

const dateLike = (schema: Json) =>
  schema.format === "date-time" || schema.format === "date" || (typeof schema.description === "string" && /\bdate\b/i.test(schema.description))

/** A value that matches `schema`: the first branch of a union, every property, one array item. */
export const generate = (schema: Json, root: Json = schema, depth = 0): unknown => {
  if (depth > 32) return null
  if (typeof schema.$ref === "string" && schema.$ref.startsWith("#/$defs/")) {
    const defs = isRecord(root.$defs) ? root.$defs : {}
    const target = defs[schema.$ref.slice("#/$defs/".length)]
    return isRecord(target) ? generate(target, root, depth + 1) : null
  }
  if ("const" in schema) return schema.const
  if (Array.isArray(schema.enum) && schema.enum.length > 0) return schema.enum[0]
  const union = Array.isArray(schema.anyOf) ? schema.anyOf : Array.isArray(schema.oneOf) ? schema.oneOf : undefined
  if (union !== undefined) {
    const branch = union.find((b: unknown) => isRecord(b) && b.type !== "null") ?? union[0]
    return isRecord(branch) ? generate(branch, root, depth + 1) : null
  }
  const type = Array.isArray(schema.type) ? schema.type.find((t) => t !== "null") : schema.type
  switch (type) {
    case "object": {
      const properties = isRecord(schema.properties) ? schema.properties : {}
      return Object.fromEntries(
        Object.entries(properties).map(([key, value]) => [key, isRecord(value) ? generate(value, root, depth + 1) : null])
      )
    }
    case "array": {
      const count = typeof schema.minItems === "number" && schema.minItems > 0 ? Math.min(schema.minItems, 8) : 1
      return Array.from({ length: count }, () => (isRecord(schema.items) ? generate(schema.items, root, depth + 1) : null))
    }
    case "string": {
      if (dateLike(schema)) return "2026-12-02T09:30:00.000Z"
      const min = typeof schema.minLength === "number" ? schema.minLength : 0
      return "sample".padEnd(min, "x")
    }
    case "integer":
      return typeof schema.minimum === "number" ? Math.ceil(schema.minimum) : 1
    case "number":
      return typeof schema.minimum === "number" ? schema.minimum : 1
    case "boolean":
      return true
    case "null":
      return null
    default:
      return {}
  }
}
