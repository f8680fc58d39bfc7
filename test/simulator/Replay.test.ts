import Anthropic from "@anthropic-ai/sdk"
import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import { existsSync, readFileSync } from "node:fs"
import * as Path from "node:path"
import OpenAI from "openai"
import * as Simulator from "../../simulator/Simulator.js"
import { recordedFixturesDir } from "../recordedFixtures.js"

const fixtures = recordedFixturesDir

let sim: Simulator.Started
let openai: OpenAI
let anthropic: Anthropic

beforeAll(async () => {
  sim = await Simulator.start()
  openai = new OpenAI({ apiKey: "sk-test", baseURL: sim.url + "/v1", maxRetries: 0 })
  anthropic = new Anthropic({ apiKey: "test", baseURL: sim.url, maxRetries: 0 })
})
afterAll(() => sim.close())

/**
 * The recordings replayed here (both tables of the fixtures' README): a new recording is replayed
 * here only once it is named here.
 */
const replayed: Record<"openai-chat" | "anthropic-messages", ReadonlyArray<string>> = {
  "openai-chat": [
    "azure-model-router.chunks.txt",
    "deepseek-json.json",
    "deepseek-reasoning.chunks.txt",
    "deepseek-reasoning.json",
    "deepseek-text.chunks.txt",
    "deepseek-text.json",
    "deepseek-tool-call.chunks.txt",
    "deepseek-tool-call.json",
    "groq-reasoning.chunks.txt",
    "groq-reasoning.json",
    "groq-text.chunks.txt",
    "groq-text.json",
    "groq-tool-call.chunks.txt",
    "groq-tool-call.json",
    "mistral-incremental-tool-call.chunks.txt",
    "mistral-text.chunks.txt",
    "mistral-text.json",
    "mistral-tool-call.chunks.txt",
    "mistral-tool-call.json",
    "openai-text.chunks.txt",
    "openai-text.json",
    "reasoning-model-legacy-parameter-error.json",
    "xai-text.chunks.txt",
    "xai-text.json",
    "xai-tool-call.chunks.txt",
    "xai-tool-call.json"
  ],
  "anthropic-messages": [
    "anthropic-claude-opus-5-reasoning-high.1.json",
    "anthropic-clear-thinking.1.chunks.txt",
    "anthropic-clear-thinking.1.json",
    "anthropic-json-output-format.1.chunks.txt",
    "anthropic-json-output-format.1.json",
    "anthropic-json-tool.1.chunks.txt",
    "anthropic-json-tool.1.json",
    "anthropic-message-delta-input-tokens.chunks.txt",
    "anthropic-refusal-no-details.json",
    "anthropic-refusal.chunks.txt",
    "anthropic-refusal.json",
    "anthropic-text.chunks.txt",
    "anthropic-text.json",
    "anthropic-tool-no-args.chunks.txt",
    "anthropic-tool-no-args.json",
    "duplicate-message-start.chunks.txt",
    "spliced-message-start.chunks.txt"
  ]
}

const filesIn = (dir: keyof typeof replayed, suffix: string) =>
  replayed[dir].filter((name) => name.endsWith(suffix)).map((name) => Path.join(fixtures, dir, name))

const lines = (file: string): Array<unknown> =>
  readFileSync(file, "utf8")
    .split(/\r?\n/)
    .filter((line) => line.trim() !== "")
    .map((line) => JSON.parse(line) as unknown)

const json = (file: string): unknown => JSON.parse(readFileSync(file, "utf8"))

const isError = (body: unknown) => typeof body === "object" && body !== null && "error" in body

const user = [{ role: "user" as const, content: "replay" }]

describe("the recorded fixtures are present", () => {
  it("finds every OpenAI and Anthropic recording replayed here", () => {
    const all = [...filesIn("openai-chat", ""), ...filesIn("anthropic-messages", "")]
    expect(all.filter((file) => !existsSync(file))).toEqual([])
  })
})

describe("replay of OpenAI JSON recordings", () => {
  for (const file of filesIn("openai-chat", ".json")) {
    const recorded = json(file)
    if (isError(recorded)) {
      it(`${Path.basename(file)} comes back as a 400 API error carrying the recorded error`, async () => {
        sim.enqueue("openai", { replay: file })
        const error = await openai.chat.completions.create({ model: "m", messages: user }).catch((e: unknown) => e)
        expect(error).toBeInstanceOf(OpenAI.BadRequestError)
        expect((error as InstanceType<typeof OpenAI.BadRequestError>).error).toEqual((recorded as { error: unknown }).error)
      })
    } else {
      it(`${Path.basename(file)} comes back through the SDK exactly as recorded`, async () => {
        sim.enqueue("openai", { replay: file })
        expect(await openai.chat.completions.create({ model: "m", messages: user })).toEqual(recorded)
      })
    }
  }
})

describe("replay of OpenAI stream recordings", () => {
  for (const file of filesIn("openai-chat", ".chunks.txt")) {
    it(`${Path.basename(file)} yields every recorded chunk in order`, async () => {
      sim.enqueue("openai", { replay: file })
      const stream = await openai.chat.completions.create({ model: "m", messages: user, stream: true })
      const chunks: Array<unknown> = []
      for await (const chunk of stream) chunks.push(chunk)
      expect(chunks).toEqual(lines(file))
    })
  }
})

describe("replay of Anthropic JSON recordings", () => {
  for (const file of filesIn("anthropic-messages", ".json")) {
    it(`${Path.basename(file)} comes back through the SDK exactly as recorded`, async () => {
      sim.enqueue("anthropic", { replay: file })
      expect(await anthropic.messages.create({ model: "c", max_tokens: 8, messages: user })).toEqual(json(file))
    })
  }
})

describe("replay of Anthropic stream recordings", () => {
  for (const file of filesIn("anthropic-messages", ".chunks.txt")) {
    it(`${Path.basename(file)} yields every recorded event in order (the SDK drops pings)`, async () => {
      sim.enqueue("anthropic", { replay: file })
      const stream = await anthropic.messages.create({ model: "c", max_tokens: 8, messages: user, stream: true })
      const events: Array<unknown> = []
      for await (const event of stream) events.push(event)
      const expected = lines(file).filter((e) => (e as { type?: unknown }).type !== "ping")
      expect(events).toEqual(expected)
    })
  }

  it("frames each recorded line as an event named by its type, then closes", async () => {
    const file = Path.join(fixtures, "anthropic-messages", "anthropic-text.chunks.txt")
    sim.enqueue("anthropic", { replay: file })
    const response = await fetch(sim.url + "/v1/messages", { method: "POST", body: JSON.stringify({ stream: true }) })
    const text = await response.text()
    const expected = readFileSync(file, "utf8")
      .split(/\r?\n/)
      .filter((line) => line.trim() !== "")
      .map((line) => `event: ${(JSON.parse(line) as { type: string }).type}\ndata: ${line}\n\n`)
      .join("")
    expect(text).toBe(expected)
  })
})

describe("replay errors", () => {
  it("a missing recording is answered 500 naming the file", async () => {
    sim.enqueue("openai", { replay: "/nonexistent/recording.json" })
    const response = await fetch(sim.url + "/v1/chat/completions", { method: "POST", body: "{}" })
    expect(response.status).toBe(500)
    expect(JSON.stringify(await response.json())).toContain("/nonexistent/recording.json")
  })
})
