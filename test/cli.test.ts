import { execFile } from "node:child_process"
import { readFileSync } from "node:fs"
import * as Path from "node:path"
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest"
import * as Simulator from "../simulator/Simulator.js"

const cli = Path.resolve(import.meta.dirname, "../src/bin/cli.ts")

interface Result {
  readonly code: number | null
  readonly stdout: string
  readonly stderr: string
}

/** Runs the CLI as a real child process with a clean environment plus `env`. */
const run = (args: ReadonlyArray<string>, env: Record<string, string> = {}): Promise<Result> =>
  new Promise((resolve) => {
    execFile(
      process.execPath,
      ["--import", "tsx", cli, ...args],
      { env: { PATH: process.env.PATH ?? "", HOME: process.env.HOME ?? "", ...env }, timeout: 20_000 },
      (error, stdout, stderr) => resolve({ code: error ? (typeof error.code === "number" ? error.code : null) : 0, stdout, stderr })
    )
  })

const mockNotice = "answering from the built-in echo mock"

/** stderr holds exactly one line, and no stack trace. */
const expectOneErrorLine = (result: Result, start: string) => {
  const lines = result.stderr.trimEnd().split("\n")
  expect(lines.at(-1)).toMatch(new RegExp(`^${start.replace(/[()]/g, "\\$&")}`))
  expect(result.stderr).not.toMatch(/^\s+at /m)
}

describe("with no provider configured the CLI answers from the echo mock", () => {
  it("prints the mock's answer and says on stderr that it is the mock", async () => {
    const result = await run(["hello", "world"])
    expect(result.code).toBe(0)
    expect(result.stdout).toBe("echo: hello world\n")
    expect(result.stderr).toContain(mockNotice)
  })

  it("--stream prints the same answer as it arrives", async () => {
    const result = await run(["--stream", "one two three"])
    expect(result.code).toBe(0)
    expect(result.stdout).toBe("echo: one two three\n")
  })

  it("--json prints the whole response as one JSON object", async () => {
    const result = await run(["--json", "--system", "be brief", "hi there"])
    expect(result.code).toBe(0)
    const response = JSON.parse(result.stdout) as Record<string, unknown>
    expect(response).toMatchObject({
      provider: "mock",
      model: "mock-echo",
      content: "echo: hi there",
      finishReason: "stop",
      usage: { inputTokens: 4, outputTokens: 3, totalTokens: 7 }
    })
  })

  it("--stream --json prints one event per line, TextDeltas then one Finish", async () => {
    const result = await run(["--stream", "--json", "a b"])
    expect(result.code).toBe(0)
    const events = result.stdout.trimEnd().split("\n").map((line) => JSON.parse(line) as { _tag: string; text?: string })
    expect(events.map((e) => e._tag)).toEqual(["TextDelta", "TextDelta", "TextDelta", "Finish"])
    expect(events.map((e) => e.text ?? "").join("")).toBe("echo: a b")
  })

  it("a copy of .env.example, blank values and all, still means the mock", async () => {
    const example = readFileSync(Path.resolve(import.meta.dirname, "../.env.example"), "utf8")
    const env = Object.fromEntries(
      example
        .split("\n")
        .filter((line) => /^[A-Z_]+=/.test(line))
        .map((line) => [line.slice(0, line.indexOf("=")), line.slice(line.indexOf("=") + 1)])
    )
    expect(Object.keys(env)).toContain("OPENAI_API_KEY")
    const result = await run(["hi"], env)
    expect(result.code).toBe(0)
    expect(result.stderr).toContain(mockNotice)
  })
})

describe("usage and request errors exit 2 with one line on stderr", () => {
  it("--help prints the flags and exit codes and exits 0", async () => {
    const result = await run(["--help"])
    expect(result.code).toBe(0)
    expect(result.stdout).toContain("Usage: clearside-llm")
    expect(result.stdout).toContain("--stream")
    expect(result.stdout).toContain("Exit codes")
  })

  it("an unknown flag exits 2", async () => {
    const result = await run(["--bogus", "hi"])
    expect(result.code).toBe(2)
    expect(result.stdout).toBe("")
    expectOneErrorLine(result, "error: Unknown option '--bogus'")
  })

  it("no prompt exits 2", async () => {
    const result = await run([])
    expect(result.code).toBe(2)
    expectOneErrorLine(result, "error: no prompt given")
  })

  it("a provider that is not configured is an InvalidRequestError, exit 2", async () => {
    const result = await run(["--provider", "openai", "hi"])
    expect(result.code).toBe(2)
    expectOneErrorLine(result, 'error: InvalidRequestError (openai): Invalid request: provider "openai" is not configured')
  })

  it("a malformed variable is a ConfigError naming it, exit 2", async () => {
    const result = await run(["hi"], { LLM_TIMEOUT_MS: "abc" })
    expect(result.code).toBe(2)
    expectOneErrorLine(result, 'error: ConfigError: LLM_TIMEOUT_MS must be a whole number of milliseconds')
  })
})

describe("with a key set the CLI asks the configured provider", () => {
  let sim: Simulator.Started
  beforeAll(async () => {
    sim = await Simulator.start()
  })
  afterAll(async () => {
    await sim.close()
  })
  beforeEach(() => sim.reset())

  const openai = () => ({ OPENAI_API_KEY: "sk-test-cli-secret", OPENAI_BASE_URL: `${sim.url}/v1` })

  it("answers from the provider over HTTP, without the mock notice", async () => {
    sim.enqueue("openai", { text: "A cap on calls per minute." })
    const result = await run(["Explain rate limits"], openai())
    expect(result.code).toBe(0)
    expect(result.stdout).toBe("A cap on calls per minute.\n")
    expect(result.stderr).not.toContain(mockNotice)
    expect(sim.attempts("openai")).toBe(1)
  })

  it("keeps stdout for the answer: log lines, even at LLM_LOG_LEVEL=info, go to stderr", async () => {
    sim.enqueue("openai", { status: 503 }, { text: "after one retry" })
    const result = await run(["hi"], { ...openai(), LLM_LOG_LEVEL: "info", LLM_LOG_CALL_LEVEL: "info", LLM_RETRY_BASE_DELAY_MS: "5" })
    expect(result.code).toBe(0)
    expect(result.stdout).toBe("after one retry\n")
    expect(result.stderr).toMatch(/level=WARN .*Retrying the openai call after ServerError/)
    expect(result.stderr).toMatch(/level=INFO .*message="llm call".*attempts=2/)
    expect(result.stderr).not.toContain("sk-test-cli-secret")
  })

  it("streams from the provider", async () => {
    sim.enqueue("openai", { text: "streamed from the provider" })
    const result = await run(["--stream", "hi"], openai())
    expect(result.code).toBe(0)
    expect(result.stdout).toBe("streamed from the provider\n")
  })

  it("prints a tool call the model makes as a readable line, after the text", async () => {
    sim.enqueue("openai", { text: "Let me check.", toolCalls: [{ id: "call_7", name: "get_weather", arguments: { city: "Oslo" } }] })
    const result = await run(["Weather in Oslo?"], openai())
    expect(result.code).toBe(0)
    expect(result.stdout).toBe('Let me check.\ntool call: get_weather({"city":"Oslo"}) [call_7]\n')
  })

  it("prints a streamed tool call as the same line", async () => {
    sim.enqueue("openai", { toolCalls: [{ id: "call_8", name: "get_weather", arguments: { city: "Rome" } }] })
    const result = await run(["--stream", "Weather in Rome?"], openai())
    expect(result.code).toBe(0)
    expect(result.stdout).toBe('tool call: get_weather({"city":"Rome"}) [call_8]\n')
  })

  it("prints a refusal as a readable line, whole and streamed", async () => {
    sim.enqueue("openai", { refusal: "I can't help with that." }, { refusal: "I can't help with that." })
    const whole = await run(["something bad"], openai())
    expect(whole.stdout).toBe("refusal: I can't help with that.\n")
    const streamed = await run(["--stream", "something bad"], openai())
    expect(streamed.stdout).toBe("refusal: I can't help with that.\n")
  })

  it("--json carries the tool calls and the refusal", async () => {
    sim.enqueue("openai", { toolCalls: [{ id: "call_9", name: "now" }] }, { refusal: "No." })
    const calls = JSON.parse((await run(["--json", "time?"], openai())).stdout) as Record<string, unknown>
    expect(calls.toolCalls).toStrictEqual([{ id: "call_9", name: "now", arguments: {}, argumentsText: "{}" }])
    expect(calls.finishReason).toBe("tool_calls")
    const refused = JSON.parse((await run(["--json", "bad"], openai())).stdout) as Record<string, unknown>
    expect(refused).toMatchObject({ refusal: "No.", finishReason: "refusal", content: "" })
  })

  const failures: ReadonlyArray<readonly [string, Simulator.Script, number, string]> = [
    ["a 401", { status: 401 }, 3, "error: AuthenticationError (openai):"],
    ["a 429", { status: 429, headers: { "retry-after": "1" } }, 4, "error: RateLimitError (openai):"],
    ["a 500", { status: 500 }, 6, "error: ServerError (openai):"],
    ["a provider that never answers", { hang: true }, 5, "error: TimeoutError (openai):"]
  ]
  for (const [what, script, code, line] of failures) {
    it(`${what} exits ${code} with one error line and no key in it`, async () => {
      sim.enqueue("openai", script)
      const result = await run(["hi"], { ...openai(), LLM_MAX_RETRIES: "0", LLM_TIMEOUT_MS: "300" })
      expect(result.code).toBe(code)
      expect(result.stdout).toBe("")
      expectOneErrorLine(result, line)
      expect(result.stderr).not.toContain("sk-test-cli-secret")
    })
  }
})
