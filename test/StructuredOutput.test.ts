import { describe, expect, it } from "@effect/vitest"
import { Chunk, Effect, Either, Metric, MetricState, Schema, Stream } from "effect"
import * as JsonSchema from "../src/internal/jsonSchema.js"
import * as PartialJson from "../src/internal/partialJson.js"
import * as StructuredOutput from "../src/internal/structuredOutput.js"
import * as Llm from "../src/Llm.js"
import * as LlmMock from "../src/LlmMock.js"
import * as Retry from "../src/Retry.js"
import * as Usage from "../src/Usage.js"
import { recording } from "./recordingTracer.js"

const Verdict = Schema.Struct({
  winner: Schema.Literal("affirmative", "negative"),
  margin: Schema.optional(Schema.Number),
  decidedAt: Schema.Date,
  reasons: Schema.Array(Schema.String)
})

const verdict = { winner: "negative", margin: 2, decidedAt: "2026-12-02T10:00:00.000Z", reasons: ["rebuttal", "evidence"] }

/** Repairs counted in `Usage.outputRepairs`, over all its labels. */
const repairsCounted = Effect.map(Metric.snapshot, (pairs) => {
  let total = 0
  for (const pair of pairs) {
    if (pair.metricKey.name === "llm.client.output.repairs" && MetricState.isCounterState(pair.metricState)) total += Number(pair.metricState.count)
  }
  return total
})

const ask = { messages: [{ role: "user" as const, content: "Who won the debate?" }] }

describe("the partial JSON parser", () => {
  const documents = [
    verdict,
    { a: [1, -2.5, 3e2, true, false, null], b: { c: "q\"uo\\te\n\u00e9\ud83d\ude00", d: [] }, e: {} },
    [{ x: 1 }, [2, [3]], "s"],
    { nested: { deeper: { deepest: ["a", { b: "c" }] } } }
  ]

  it("reads every prefix of a document into a value consistent with it, and the whole into the document", () => {
    for (const document of documents) {
      const text = JSON.stringify(document, null, 1)
      const parser = PartialJson.make()
      for (const c of text) parser.push(c)
      expect(parser.done()).toBe(true)
      expect(parser.failed()).toBe(false)
      expect(parser.value()).toEqual(document)
    }
  })

  it("gives the value so far: partial strings, numbers and literals, no half-read keys", () => {
    const parser = PartialJson.make()
    parser.push(`{"name": "Ad`)
    expect(parser.value()).toEqual({ name: "Ad" })
    parser.push(`a", "sco`)
    expect(parser.value()).toEqual({ name: "Ada" })
    parser.push(`re": 4`)
    expect(parser.value()).toEqual({ name: "Ada", score: 4 })
    parser.push(`2, "ok": t`)
    expect(parser.value()).toEqual({ name: "Ada", score: 42, ok: true })
    parser.push(`rue, "list": [1, {"k": [`)
    expect(parser.value()).toEqual({ name: "Ada", score: 42, ok: true, list: [1, { k: [] }] })
  })

  it("snapshots are independent values: later text does not change an earlier snapshot", () => {
    const parser = PartialJson.make()
    parser.push(`{"items": [1, 2`)
    const first = parser.value()
    parser.push(`, 3]}`)
    expect(first).toEqual({ items: [1, 2] })
    expect(parser.value()).toEqual({ items: [1, 2, 3] })
  })

  it("skips text before the document (a code fence) and stops at the first character that cannot be JSON", () => {
    const fenced = PartialJson.make()
    fenced.push("```json\n{\"a\": 1}\n```")
    expect(fenced.value()).toEqual({ a: 1 })
    const broken = PartialJson.make()
    broken.push(`{"a": 1, "b": tru`)
    broken.push(`x}`)
    expect(broken.failed()).toBe(true)
    expect(broken.value()).toEqual({ a: 1 })
    expect(PartialJson.make().value()).toBeUndefined()
  })

  it("reports whether a fragment changed the value: keys, colons, commas and closings do not", () => {
    const parser = PartialJson.make()
    expect(parser.push("  ")).toBe(false)
    expect(parser.push("{")).toBe(true)
    expect(parser.push(`   \n"key`)).toBe(false)
    expect(parser.push(`": `)).toBe(false)
    expect(parser.push(`"v`)).toBe(true)
    expect(parser.push(`al"`)).toBe(true)
    expect(parser.push(`, "n": 1`)).toBe(true)
    expect(parser.push(`}`)).toBe(false)
  })

  it("reads a 1 MiB document fed one character at a time", () => {
    const document = { rows: Array.from({ length: 20_000 }, (_, i) => ({ id: i, label: `row ${i}` })) }
    const text = JSON.stringify(document)
    const parser = PartialJson.make()
    for (let i = 0; i < text.length; i++) parser.push(text[i]!)
    expect(parser.value()).toEqual(document)
  })
})

describe("JSON Schema per provider", () => {
  const json = StructuredOutput.target(Verdict, {}).format.schema

  it("OpenAI strict mode: every property required, optional ones nullable, objects closed", () => {
    const strict = JsonSchema.strict(json)
    expect(strict.required).toEqual(["winner", "margin", "decidedAt", "reasons"])
    expect(strict.additionalProperties).toBe(false)
    expect((strict.properties as Record<string, unknown>).margin).toEqual({ type: ["number", "null"] })
    expect(strict.$schema).toBeUndefined()
  })

  it("a strict answer's null for an optional property is read back as absent", () =>
    Effect.gen(function* () {
      const target = StructuredOutput.target(Verdict, {})
      const read = yield* StructuredOutput.read(JSON.stringify({ ...verdict, margin: null }), target)
      const value = Either.getOrThrow(read)
      expect(value).toEqual({ winner: "negative", decidedAt: new Date(verdict.decidedAt), reasons: verdict.reasons })
      expect("margin" in value).toBe(false)
    }).pipe(Effect.runPromise))

  it("a root that is not an object is sent wrapped as { value } and unwrapped", () =>
    Effect.gen(function* () {
      const target = StructuredOutput.target(Schema.Array(Schema.String), { name: "tags" })
      expect(target.wrapped).toBe(true)
      expect(target.format.schema.required).toEqual(["value"])
      const read = yield* StructuredOutput.read(`{"value": ["a", "b"]}`, target)
      expect(Either.getOrThrow(read)).toEqual(["a", "b"])
    }).pipe(Effect.runPromise))

  it("the name defaults to the schema's identifier, made safe for the wire", () => {
    const Named = Schema.Struct({ a: Schema.String }).annotations({ identifier: "Debate Verdict" })
    expect(StructuredOutput.target(Named, {}).format.name).toBe("Debate_Verdict")
    expect(StructuredOutput.target(Schema.Struct({ a: Schema.String }), {}).format.name).toBe("output")
  })
})

describe("Llm.generateObject", () => {
  it.effect("decodes the answer with the Schema, transformations included", () =>
    Effect.gen(function* () {
      const { value, response } = yield* Llm.generateObject({ schema: Verdict, name: "verdict", ...ask })
      expect(value).toEqual({ ...verdict, decidedAt: new Date(verdict.decidedAt) })
      expect(response.content).toBe(JSON.stringify(verdict))
      const [request] = yield* LlmMock.requests
      expect(request!.responseFormat?.name).toBe("verdict")
    }).pipe(Effect.provide(LlmMock.layer([LlmMock.object(verdict)]))))

  it.effect("sends an answer that does not decode back once with the reason, then decodes the repaired one", () =>
    Effect.gen(function* () {
      const [{ value }, usage] = yield* Usage.withUsage(Llm.generateObject({ schema: Verdict, ...ask }))
      expect(value.winner).toBe("negative")
      const requests = yield* LlmMock.requests
      expect(requests).toHaveLength(2)
      const repair = requests[1]!.messages
      expect(repair.slice(0, 1)).toEqual(ask.messages)
      expect(repair[1]).toEqual({ role: "assistant", content: `{"winner": "draw"}` })
      expect(repair[2]!.role).toBe("user")
      expect(repair[2]!.content).toContain(`"affirmative" | "negative"`)
      expect(usage.repairs).toBe(1)
    }).pipe(
      Effect.provide(Usage.layer()),
      Effect.provide(LlmMock.layer([LlmMock.reply(`{"winner": "draw"}`), LlmMock.object(verdict)]))
    ))

  it.effect("fails with OutputValidationError holding the raw text when the repair does not decode either", () =>
    Effect.gen(function* () {
      const before = yield* repairsCounted
      const error = yield* Effect.flip(Llm.generateObject({ schema: Verdict, ...ask }))
      expect(error._tag).toBe("OutputValidationError")
      if (error._tag !== "OutputValidationError") return
      expect(error.text).toBe("still { not json")
      expect(error.attempts).toBe(2)
      expect(error.retryable).toBe(false)
      expect(error.message).toContain("not valid JSON")
      expect((yield* repairsCounted) - before).toBe(1)
    }).pipe(Effect.provide(LlmMock.layer([LlmMock.reply("{ not json"), LlmMock.reply("still { not json")]))))

  it.effect("the repair turns are an attribute of the Llm.generateObject span", () =>
    Effect.gen(function* () {
      const { spans, tracer } = yield* recording
      yield* Llm.generateObject({ schema: Verdict, ...ask }).pipe(Effect.withTracer(tracer))
      const span = spans.find((s) => s.name === "Llm.generateObject")!
      expect(span.attributes.get("gen_ai.output.type")).toBe("json")
      expect(span.attributes.get("llm.output.repairs")).toBe(1)
    }).pipe(Effect.provide(LlmMock.layer([LlmMock.reply("[]"), LlmMock.object(verdict)]))))

  it.effect("Retry does not retry an OutputValidationError: only the repair turn is sent again", () =>
    Effect.gen(function* () {
      const error = yield* Effect.flip(Llm.generateObject({ schema: Verdict, ...ask }))
      expect(error._tag).toBe("OutputValidationError")
      expect(yield* LlmMock.requests).toHaveLength(2)
    }).pipe(
      Effect.provide(Retry.layer({ maxRetries: 3 })),
      Effect.provide(LlmMock.layer([LlmMock.reply("1"), LlmMock.reply("2"), LlmMock.object(verdict), LlmMock.object(verdict)]))
    ))

  it.effect("repairs: 0 fails on the first answer that does not decode", () =>
    Effect.gen(function* () {
      const error = yield* Effect.flip(Llm.generateObject({ schema: Verdict, repairs: 0, ...ask }))
      expect(error._tag).toBe("OutputValidationError")
      expect(yield* LlmMock.requests).toHaveLength(1)
    }).pipe(Effect.provide(LlmMock.layer([LlmMock.reply("{}"), LlmMock.object(verdict)]))))

  it.effect("a transport failure is not an output failure: it is the call's own error", () =>
    Effect.gen(function* () {
      const error = yield* Effect.flip(Llm.generateObject({ schema: Verdict, ...ask }))
      expect(error._tag).toBe("AuthenticationError")
    }).pipe(Effect.provide(LlmMock.layer([LlmMock.fail("AuthenticationError")]))))
})

describe("Llm.streamObject", () => {
  it.effect("sends partial objects as the text arrives, the first with the first fragment, then the decoded object", () =>
    Effect.gen(function* () {
      const events = Chunk.toArray(yield* Stream.runCollect(Llm.streamObject({ schema: Verdict, ...ask })))
      const partials = events.filter((e) => e._tag === "PartialObject")
      const last = events.at(-1)!
      expect(partials.length).toBeGreaterThan(3)
      expect(partials[0]!.value).toEqual({})
      expect(last._tag).toBe("Object")
      if (last._tag !== "Object") return
      expect(last.value.decidedAt).toEqual(new Date(verdict.decidedAt))
      expect(last.response.content).toBe(JSON.stringify(verdict))
      expect(partials.at(-1)!.value).toEqual(verdict)
    }).pipe(Effect.provide(LlmMock.layer([LlmMock.object(verdict, { fragment: 5 })]))))

  it.effect("after a repair turn the partial objects start again and the repaired object ends the stream", () =>
    Effect.gen(function* () {
      const events = Chunk.toArray(yield* Stream.runCollect(Llm.streamObject({ schema: Verdict, ...ask })))
      const objects = events.filter((e) => e._tag === "Object")
      expect(objects).toHaveLength(1)
      expect(events.filter((e) => e._tag === "PartialObject" && JSON.stringify(e.value) === "{}")).toHaveLength(2)
      expect(yield* LlmMock.requests).toHaveLength(2)
    }).pipe(Effect.provide(LlmMock.layer([LlmMock.object({ winner: "draw" }, { fragment: 1 }), LlmMock.object(verdict, { fragment: 1 })]))))

  it.effect("fails with OutputValidationError after the last repair", () =>
    Effect.gen(function* () {
      const error = yield* Effect.flip(Stream.runDrain(Llm.streamObject({ schema: Verdict, repairs: 0, ...ask })))
      expect(error._tag).toBe("OutputValidationError")
    }).pipe(Effect.provide(LlmMock.layer([LlmMock.reply("nope")]))))
})
