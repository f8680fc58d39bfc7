import { afterEach, describe, expect, it } from "@effect/vitest"
import { spawn } from "node:child_process"
import OpenAI from "openai"
import * as Simulator from "../../simulator/Simulator.js"

const running: Array<Simulator.Started> = []
const start = async (options: Simulator.Options) => {
  const sim = await Simulator.start(options)
  running.push(sim)
  return sim
}
afterEach(async () => {
  await Promise.all(running.splice(0).map((sim) => sim.close()))
})

const post = (sim: Simulator.Simulator, body: object = {}, route: Simulator.Route = "openai", signal?: AbortSignal) =>
  fetch(sim.url + (route === "openai" ? "/v1/chat/completions" : "/v1/messages"), {
    method: "POST",
    body: JSON.stringify({ messages: [{ role: "user", content: "hello" }], ...body }),
    ...(signal === undefined ? {} : { signal })
  })

/** The status of each of `n` sequential requests; "reset" when the connection failed. */
const outcomes = async (sim: Simulator.Simulator, n: number) => {
  const out: Array<number | "reset"> = []
  for (let i = 0; i < n; i++) {
    out.push(await post(sim).then((r) => r.text().then(() => r.status), () => "reset" as const))
  }
  return out
}

describe("random faults are deterministic for a seed", () => {
  it("two simulators with the same seed inject the same faults in the same order", async () => {
    const options = { faultRate: 0.5, faults: ["429", "500", "503", "reset"] as const, seed: 42 }
    const first = await outcomes(await start(options), 24)
    const second = await outcomes(await start(options), 24)
    expect(second).toEqual(first)
    expect(first).toContain(200)
    expect(first.some((o) => o !== 200)).toBe(true)
  })

  it("a different seed gives a different sequence", async () => {
    const faults = ["429", "500", "503"] as const
    const a = await outcomes(await start({ faultRate: 0.5, faults, seed: 1 }), 24)
    const b = await outcomes(await start({ faultRate: 0.5, faults, seed: 2 }), 24)
    expect(a).not.toEqual(b)
  })

  it("reset restarts the fault sequence", async () => {
    const sim = await start({ faultRate: 0.5, faults: ["500", "503"], seed: 9 })
    const first = await outcomes(sim, 12)
    sim.reset()
    expect(await outcomes(sim, 12)).toEqual(first)
  })

  it("faults drawn by content follow each message's own attempts, whatever the order of arrival", async () => {
    const options = { faultRate: 0.5, faults: ["500", "503"] as const, seed: 5, faultsBy: "content" as const }
    const status = (sim: Simulator.Simulator, content: string) =>
      fetch(sim.url + "/v1/chat/completions", {
        method: "POST",
        body: JSON.stringify({ messages: [{ role: "user", content }] })
      }).then((r) => r.text().then(() => r.status))
    const messages = Array.from({ length: 8 }, (_, i) => `call ${i}`)
    // Three attempts of each message: in order on one simulator, in reverse on the other.
    const forward = await start(options)
    const inOrder: Record<string, Array<number>> = {}
    for (const m of messages) for (let a = 0; a < 3; a++) (inOrder[m] ??= []).push(await status(forward, m))
    const backward = await start(options)
    const reversed: Record<string, Array<number>> = {}
    for (let a = 0; a < 3; a++) for (const m of [...messages].reverse()) (reversed[m] ??= []).push(await status(backward, m))
    expect(reversed).toEqual(inOrder)
    expect(Object.values(inOrder).flat()).toContain(200)
    expect(Object.values(inOrder).flat().some((s) => s !== 200)).toBe(true)
  })

  it("a fault rate of 0 injects nothing", async () => {
    const sim = await start({ faultRate: 0, seed: 3 })
    expect(new Set(await outcomes(sim, 10))).toEqual(new Set([200]))
  })

  it("scripted answers take precedence over random faults", async () => {
    const sim = await start({ faultRate: 1, faults: ["500"] })
    sim.enqueue("openai", { text: "scripted" })
    const response = await post(sim)
    expect(response.status).toBe(200)
    expect((await post(sim)).status).toBe(500)
  })
})

describe("each fault kind does what it names", () => {
  it("429 answers a rate-limit error with retry-after", async () => {
    const sim = await start({ faultRate: 1, faults: ["429"] })
    const response = await post(sim)
    expect(response.status).toBe(429)
    expect(response.headers.get("retry-after")).toBe("1")
    expect(await response.json()).toMatchObject({ error: { code: "rate_limit_exceeded" } })
  })

  for (const status of ["500", "502", "503", "529"] as const) {
    it(`${status} answers that status with a provider-shaped error body`, async () => {
      const sim = await start({ faultRate: 1, faults: [status] })
      const response = await post(sim, {}, "anthropic")
      expect(response.status).toBe(Number(status))
      expect(await response.json()).toMatchObject({ type: "error", error: { type: status === "529" ? "overloaded_error" : "api_error" } })
    })
  }

  it("reset drops the connection before any header", async () => {
    const sim = await start({ faultRate: 1, faults: ["reset"] })
    await expect(post(sim)).rejects.toThrow()
    expect(sim.attempts()).toBe(1)
  })

  it("hang never answers until the client gives up", async () => {
    const sim = await start({ faultRate: 1, faults: ["hang"] })
    const controller = new AbortController()
    let settled = false
    const pending = post(sim, {}, "openai", controller.signal).finally(() => (settled = true))
    await new Promise((r) => setTimeout(r, 50))
    expect(sim.attempts()).toBe(1)
    expect(settled).toBe(false)
    controller.abort()
    await expect(pending).rejects.toThrow(/abort/i)
  })

  it("stream-drop sends the headers and closes before the first event", async () => {
    const sim = await start({ faultRate: 1, faults: ["stream-drop"] })
    const response = await post(sim, { stream: true })
    expect(response.status).toBe(200)
    expect(response.headers.get("content-type")).toMatch(/^text\/event-stream/)
    const reader = response.body!.getReader()
    await expect(reader.read()).rejects.toThrow()
  })

  it("through the OpenAI SDK, faults surface as the SDK's own errors", async () => {
    const sim = await start({ faultRate: 1, faults: ["503"] })
    const client = new OpenAI({ apiKey: "sk-test", baseURL: sim.url + "/v1", maxRetries: 0 })
    const error = await client.chat.completions.create({ model: "m", messages: [{ role: "user", content: "x" }] }).catch((e: unknown) => e)
    expect(error).toBeInstanceOf(OpenAI.InternalServerError)
    expect((error as InstanceType<typeof OpenAI.InternalServerError>).status).toBe(503)
  })
})

describe("enforced limits", () => {
  it("rpm lets that many requests through per window and answers the rest 429 with retry-after", async () => {
    const sim = await start({ rpm: 3 })
    const responses = await Promise.all([1, 2, 3, 4, 5].map(() => post(sim)))
    expect(responses.map((r) => r.status).sort()).toEqual([200, 200, 200, 429, 429])
    const rejected = responses.find((r) => r.status === 429)!
    expect(Number(rejected.headers.get("retry-after"))).toBeGreaterThanOrEqual(1)
    expect(Number(rejected.headers.get("retry-after-ms"))).toBeGreaterThan(0)
    expect(rejected.headers.get("x-ratelimit-remaining-requests")).toBe("0")
    expect(sim.windows()).toEqual([expect.objectContaining({ accepted: 3, rejected: 2 })])
  })

  it("accepted responses carry the provider's rate-limit headers with what remains", async () => {
    const sim = await start({ rpm: 10, tpm: 1000 })
    const openai = await post(sim)
    expect(openai.headers.get("x-ratelimit-limit-requests")).toBe("10")
    expect(openai.headers.get("x-ratelimit-remaining-requests")).toBe("9")
    expect(openai.headers.get("x-ratelimit-limit-tokens")).toBe("1000")
    const anthropic = await post(sim, {}, "anthropic")
    expect(anthropic.headers.get("anthropic-ratelimit-requests-remaining")).toBe("8")
    expect(Date.parse(anthropic.headers.get("anthropic-ratelimit-requests-reset") ?? "")).toBeGreaterThan(0)
  })

  it("tpm counts the prompt estimate plus max_tokens and refuses what would exceed it", async () => {
    const sim = await start({ tpm: 100 })
    expect((await post(sim, { max_tokens: 60 })).status).toBe(200)
    const refused = await post(sim, { max_tokens: 60 })
    expect(refused.status).toBe(429)
    expect(JSON.stringify(await refused.json())).toContain("tokens")
    expect((await post(sim, { max_tokens: 10 })).status).toBe(200)
  })

  it("a new window accepts requests again and the old window's counts are kept", async () => {
    const sim = await start({ rpm: 1, windowMs: 300 })
    expect((await post(sim)).status).toBe(200)
    const refused = await post(sim)
    expect(refused.status).toBe(429)
    const wait = Number(refused.headers.get("retry-after-ms"))
    expect(wait).toBeLessThanOrEqual(300)
    await new Promise((r) => setTimeout(r, wait + 5))
    expect((await post(sim)).status).toBe(200)
    expect(sim.windows().map((w) => [w.accepted, w.rejected])).toEqual([[1, 1], [1, 0]])
  })
})

describe("the standalone command", () => {
  const run = (args: ReadonlyArray<string>) => {
    const child = spawn(process.execPath, ["--import", "tsx", "simulator/main.ts", ...args], { stdio: ["ignore", "pipe", "pipe"] })
    let out = ""
    child.stdout.on("data", (data: Buffer) => (out += data.toString()))
    child.stderr.on("data", (data: Buffer) => (out += data.toString()))
    const exited = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)))
    return { child, output: () => out, exited }
  }

  it("prints its URL, serves with the given faults and stops on SIGINT", async () => {
    const { child, exited, output } = run(["--port", "0", "--fault-rate", "1", "--faults", "503", "--seed", "1"])
    for (let i = 0; i < 400 && !/listening on http/.test(output()); i++) await new Promise((r) => setTimeout(r, 25))
    const url = /listening on (http:\/\/\S+)/.exec(output())?.[1]
    expect(url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/)
    const response = await fetch(url + "/v1/chat/completions", { method: "POST", body: "{}" })
    expect(response.status).toBe(503)
    child.kill("SIGINT")
    expect(await exited).toBe(0)
  })

  it("refuses an unknown fault kind with exit code 2", async () => {
    const { exited, output } = run(["--faults", "429,teapot"])
    expect(await exited).toBe(2)
    expect(output()).toContain("unknown fault kind(s): teapot")
  })
})
