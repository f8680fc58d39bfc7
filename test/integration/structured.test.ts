/**
 * Structured output over real HTTP through the real SDKs: against the simulator (which answers a
 * schema'd request with a value generated from the schema it received), against Prism validating
 * every request on OpenAI's own API description, and on recorded provider answers.
 */
import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import { Chunk, Effect, Redacted, Schema, Stream } from "effect"
import { readFileSync } from "node:fs"
import * as Simulator from "../../simulator/Simulator.js"
import * as Anthropic from "../../src/Anthropic.js"
import * as Llm from "../../src/Llm.js"
import type { LlmError } from "../../src/LlmError.js"
import * as OpenAi from "../../src/OpenAi.js"
import * as OpenAiCompatible from "../../src/OpenAiCompatible.js"
import { type Prism, startPrism } from "../prism.js"
import { anthropicKey, compatibleKey, failure, openAiKey, recorded } from "./support.js"

const Claim = Schema.Struct({
  text: Schema.String,
  stance: Schema.Literal("for", "against"),
  confidence: Schema.optional(Schema.Number)
})

/** Arrays, optional fields, a literal union and a transformed field (a `Date` from a string). */
const Extraction = Schema.Struct({
  speaker: Schema.String,
  claims: Schema.Array(Claim),
  madeAt: Schema.Date,
  rebuttal: Schema.optional(Schema.String)
})

const turn = { messages: [{ role: "user" as const, content: "Extract the claims of this debate turn: 'Cars must go.'" }] }

interface Kind {
  readonly name: string
  readonly route: Simulator.Route
  readonly make: (url: string) => Effect.Effect<Llm.Provider>
  /** What the wire body must carry for structured output. */
  readonly checkBody: (body: Record<string, unknown>) => void
}

const strictSchema = (body: Record<string, unknown>) => {
  const format = body.response_format as { type: string; json_schema: { name: string; strict: boolean; schema: Record<string, unknown> } }
  expect(format.type).toBe("json_schema")
  expect(format.json_schema.name).toBe("extraction")
  expect(format.json_schema.strict).toBe(true)
  expect(format.json_schema.schema.required).toEqual(["speaker", "claims", "madeAt", "rebuttal"])
  expect(format.json_schema.schema.additionalProperties).toBe(false)
}

const kinds: ReadonlyArray<Kind> = [
  {
    name: "OpenAI (strict json_schema)",
    route: "openai",
    make: (url) => OpenAi.make({ apiKey: Redacted.make(openAiKey), baseURL: `${url}/v1` }),
    checkBody: strictSchema
  },
  {
    name: "Anthropic, native output format (a model that has it)",
    route: "anthropic",
    make: (url) => Anthropic.make({ apiKey: Redacted.make(anthropicKey), baseURL: url, model: "claude-sonnet-4-6" }),
    checkBody: (body) => {
      const config = body.output_config as { format: { type: string; schema: Record<string, unknown> } }
      expect(config.format.type).toBe("json_schema")
      expect(config.format.schema.required).toEqual(["speaker", "claims", "madeAt"])
      expect(config.format.schema.additionalProperties).toBe(false)
      expect(body.tools).toBeUndefined()
    }
  },
  {
    name: "Anthropic, forced tool (a model without native output)",
    route: "anthropic",
    make: (url) => Anthropic.make({ apiKey: Redacted.make(anthropicKey), baseURL: url, model: "claude-3-5-haiku-latest" }),
    checkBody: (body) => {
      expect(body.tool_choice).toEqual({ type: "tool", name: "extraction" })
      const [tool] = body.tools as Array<{ name: string; input_schema: Record<string, unknown> }>
      expect(tool!.name).toBe("extraction")
      expect(tool!.input_schema.type).toBe("object")
      expect(body.output_config).toBeUndefined()
    }
  },
  {
    name: "a compatible endpoint (json_schema)",
    route: "openai",
    make: (url) =>
      OpenAiCompatible.make({ name: "groq", baseURL: `${url}/v1`, apiKey: Redacted.make(compatibleKey), model: "llama-3.3-70b-versatile" }),
    checkBody: strictSchema
  },
  {
    name: "a compatible endpoint in JSON mode (json_object, the schema in the system prompt)",
    route: "openai",
    make: (url) =>
      OpenAiCompatible.make({ name: "local", baseURL: `${url}/v1`, model: "qwen3", structuredOutput: "json_object" }),
    checkBody: (body) => {
      expect(body.response_format).toEqual({ type: "json_object" })
      const [system] = body.messages as Array<{ role: string; content: string }>
      expect(system!.role).toBe("system")
      expect(system!.content).toContain("JSON Schema")
      expect(system!.content).toContain(`"madeAt"`)
    }
  }
]

const expected = {
  speaker: "sample",
  claims: [{ text: "sample", stance: "for", confidence: 1 }],
  madeAt: new Date("2026-12-02T09:30:00.000Z"),
  rebuttal: "sample"
}

const withSimulator = <A, E>(kind: Kind, f: (sim: Simulator.Simulator, service: Llm.Service) => Effect.Effect<A, E, Llm.Llm>) =>
  Effect.scoped(
    Effect.gen(function* () {
      const sim = yield* Simulator.make()
      const service = Llm.fromProvider(yield* kind.make(sim.url))
      return yield* f(sim, service).pipe(Effect.provideService(Llm.Llm, service))
    })
  )

const lastBody = (sim: Simulator.Simulator, index = -1) => sim.requests().filter((r) => r.route !== "models").at(index)!.body as Record<string, unknown>

describe.each(kinds)("structured output: $name", (kind) => {
  it.effect("generateObject decodes the nested value, with the schema on the wire", () =>
    withSimulator(kind, (sim) =>
      Effect.gen(function* () {
        const { value, response } = yield* Llm.generateObject({ schema: Extraction, name: "extraction", ...turn })
        expect(value).toEqual(expected)
        expect(value.madeAt).toBeInstanceOf(Date)
        expect(response.finishReason).toBe("stop")
        kind.checkBody(lastBody(sim))
      })
    ))

  it.effect("streamObject gives the first partial object with the first fragment, then the decoded object", () =>
    withSimulator(kind, (sim) =>
      Effect.gen(function* () {
        const events = Chunk.toArray(yield* Stream.runCollect(Llm.streamObject({ schema: Extraction, name: "extraction", ...turn })))
        const partials = events.filter((e) => e._tag === "PartialObject")
        // The simulator streams JSON in 12-character fragments: the first is `{"speaker":"`.
        expect(partials[0]!.value).toEqual({ speaker: "" })
        expect(partials.length).toBeGreaterThan(5)
        const last = events.at(-1)!
        expect(last._tag).toBe("Object")
        if (last._tag === "Object") {
          expect(last.value).toEqual(expected)
          expect(JSON.parse(last.response.content)).toMatchObject({ speaker: "sample" })
        }
        kind.checkBody(lastBody(sim))
        expect(lastBody(sim).stream).toBe(true)
      })
    ))

  it.effect("an answer that is not JSON is repaired in one more turn that carries it and the reason", () =>
    withSimulator(kind, (sim) =>
      Effect.gen(function* () {
        sim.enqueue(kind.route, { text: "{ not json" })
        const { value } = yield* Llm.generateObject({ schema: Extraction, name: "extraction", ...turn })
        expect(value).toEqual(expected)
        expect(sim.attempts(kind.route)).toBe(2)
        const messages = lastBody(sim).messages as Array<{ role: string; content: unknown }>
        const texts = JSON.stringify(messages)
        expect(texts).toContain("does not match the required JSON schema")
        expect(messages.filter((m) => m.role === "assistant")).toHaveLength(1)
        kind.checkBody(lastBody(sim))
      })
    ))

  it.effect("two answers that do not decode fail with OutputValidationError and the raw text", () =>
    withSimulator(kind, (sim) =>
      Effect.gen(function* () {
        sim.enqueue(kind.route, { text: `{"speaker": 7}` }, { text: `{"speaker": "Ada", "claims": "none"}` })
        const error = yield* Effect.flip(Llm.generateObject({ schema: Extraction, name: "extraction", ...turn }))
        expect(error._tag).toBe("OutputValidationError")
        if (error._tag !== "OutputValidationError") return
        expect(error.attempts).toBe(2)
        expect(JSON.parse(error.text)).toEqual({ speaker: "Ada", claims: "none" })
        expect(error.message).toContain("claims")
        expect(sim.attempts(kind.route)).toBe(2)
      })
    ))
})

describe("structured-output requests pass OpenAI's API description (Prism)", () => {
  let prism: Prism
  beforeAll(async () => {
    prism = await startPrism("validate")
  })
  afterAll(() => prism.stop())

  // Prism answers a valid request with the description's example (content "string", not JSON), so a
  // valid request ends in OutputValidationError after its repair turn; an invalid one would be a 422,
  // an InvalidRequestError.
  const viaPrism = (make: (url: string) => Effect.Effect<Llm.Provider>) =>
    Effect.gen(function* () {
      const service = Llm.fromProvider(yield* make(prism.url))
      const error: LlmError = yield* failure(
        Llm.generateObject({ schema: Extraction, name: "extraction", description: "The claims of a debate turn", ...turn }).pipe(
          Effect.provideService(Llm.Llm, service)
        )
      )
      expect(error._tag).toBe("OutputValidationError")
      expect(error.message).toContain("not valid JSON")
    })

  it.effect("json_schema (strict), with the repair turn", () =>
    viaPrism((url) => OpenAi.make({ apiKey: Redacted.make(openAiKey), baseURL: url })))

  it.effect("json_object with the schema in the system prompt", () =>
    viaPrism((url) => OpenAiCompatible.make({ name: "local", baseURL: url, apiKey: Redacted.make(compatibleKey), model: "gpt-4o-mini", structuredOutput: "json_object" })))
})

describe("recorded structured answers decode", () => {
  const Recipe = Schema.Struct({
    recipe: Schema.Struct({
      name: Schema.String,
      ingredients: Schema.Array(Schema.Struct({ name: Schema.String, amount: Schema.String })),
      steps: Schema.Array(Schema.String)
    })
  })
  const Weather = Schema.Struct({
    elements: Schema.Array(Schema.Struct({ location: Schema.String, temperature: Schema.Number, condition: Schema.String }))
  })

  const recordedText = (file: string): string =>
    (JSON.parse(readFileSync(recorded(file), "utf8")) as { content: Array<{ text: string }> }).content[0]!.text
  const recordedInput = (file: string): unknown =>
    (JSON.parse(readFileSync(recorded(file), "utf8")) as { content: Array<{ input: unknown }> }).content[0]!.input
  const streamedText = (file: string): string =>
    readFileSync(recorded(file), "utf8")
      .split("\n")
      .filter((line) => line.includes("text_delta"))
      .map((line) => (JSON.parse(line) as { delta: { text: string } }).delta.text)
      .join("")
  const streamedInput = (file: string): unknown =>
    JSON.parse(
      readFileSync(recorded(file), "utf8")
        .split("\n")
        .filter((line) => line.includes("input_json_delta"))
        .map((line) => (JSON.parse(line) as { delta: { partial_json: string } }).delta.partial_json)
        .join("")
    )

  const replayed = <A, I>(
    provider: (url: string) => Effect.Effect<Llm.Provider>,
    route: Simulator.Route,
    file: string,
    schema: Schema.Schema<A, I>,
    streamed: boolean
  ) =>
    Effect.scoped(
      Effect.gen(function* () {
        const sim = yield* Simulator.make()
        const service = Llm.fromProvider(yield* provider(sim.url))
        sim.enqueue(route, { replay: recorded(file) })
        const request = { schema, name: "json", repairs: 0, ...turn }
        const run = streamed
          ? Effect.map(Stream.runCollect(Llm.streamObject(request)), (events) => {
              const last = Chunk.toArray(events).at(-1)!
              if (last._tag !== "Object") throw new Error("the stream did not end with the object")
              return { value: last.value, partials: Chunk.size(events) - 1 }
            })
          : Effect.map(Llm.generateObject(request), ({ value }) => ({ value, partials: 0 }))
        return yield* run.pipe(Effect.provideService(Llm.Llm, service))
      })
    )

  const claude = (model: string) => (url: string) => Anthropic.make({ apiKey: Redacted.make(anthropicKey), baseURL: url, model })

  it.effect("Anthropic's native output format, whole and streamed in 100+ fragments", () =>
    Effect.gen(function* () {
      const whole = yield* replayed(claude("claude-sonnet-4-6"), "anthropic", "anthropic-messages/anthropic-json-output-format.1.json", Recipe, false)
      expect(whole.value).toEqual(JSON.parse(recordedText("anthropic-messages/anthropic-json-output-format.1.json")))
      const Party = Schema.Struct({
        characters: Schema.Array(Schema.Struct({ name: Schema.String, class: Schema.String, description: Schema.String }))
      })
      const file = "anthropic-messages/anthropic-json-output-format.1.chunks.txt"
      const streamed = yield* replayed(claude("claude-sonnet-4-6"), "anthropic", file, Party, true)
      expect(streamed.value).toEqual(JSON.parse(streamedText(file)))
      expect(streamed.partials).toBeGreaterThan(50)
    }))

  it.effect("Anthropic's forced tool: the tool's input is the value, whole and streamed", () =>
    Effect.gen(function* () {
      const whole = yield* replayed(claude("claude-3-5-haiku-latest"), "anthropic", "anthropic-messages/anthropic-json-tool.1.json", Weather, false)
      expect(whole.value).toEqual(recordedInput("anthropic-messages/anthropic-json-tool.1.json"))
      const streamed = yield* replayed(claude("claude-3-5-haiku-latest"), "anthropic", "anthropic-messages/anthropic-json-tool.1.chunks.txt", Weather, true)
      expect(streamed.value).toEqual(streamedInput("anthropic-messages/anthropic-json-tool.1.chunks.txt"))
    }))

  it.effect("DeepSeek in JSON mode", () =>
    Effect.gen(function* () {
      const Report = Schema.Struct({ location: Schema.String, condition: Schema.String, temperature: Schema.Number })
      const deepseek = (url: string) =>
        OpenAiCompatible.make({ name: "deepseek", baseURL: `${url}/v1`, model: "deepseek-reasoner", structuredOutput: "json_object" })
      const { value } = yield* replayed(deepseek, "openai", "openai-chat/deepseek-json.json", Report, false)
      expect(value).toEqual({ location: "San Francisco", condition: "cloudy", temperature: 7 })
    }))
})
