import Anthropic from "@anthropic-ai/sdk"
import { afterEach, beforeEach, describe, expect, it } from "@effect/vitest"
import { Effect, Fiber, TestClock } from "effect"
import * as Net from "node:net"
import OpenAI from "openai"
import * as Simulator from "../../simulator/Simulator.js"

let sim: Simulator.Started
let openai: OpenAI
let anthropic: Anthropic

// A fresh simulator per test, so keep-alive connections of earlier tests do not count.
beforeEach(async () => {
  sim = await Simulator.start()
  openai = new OpenAI({ apiKey: "sk-test", baseURL: sim.url + "/v1", maxRetries: 0 })
  anthropic = new Anthropic({ apiKey: "test", baseURL: sim.url, maxRetries: 0 })
})
afterEach(() => sim.close())

const user = (content: string) => [{ role: "user" as const, content }]

const postOpenAi = (body: unknown, signal?: AbortSignal) =>
  fetch(sim.url + "/v1/chat/completions", {
    method: "POST",
    headers: { "content-type": "application/json", authorization: "Bearer sk-secret" },
    body: JSON.stringify(body),
    ...(signal === undefined ? {} : { signal })
  })

/** Reads a whole body as the list of pieces the network delivered. */
const reads = async (response: Response): Promise<Array<string>> => {
  const reader = response.body!.getReader()
  const decoder = new TextDecoder()
  const out: Array<string> = []
  for (;;) {
    const { done, value } = await reader.read()
    if (done) return out
    out.push(decoder.decode(value))
  }
}

/** Waits (real time, polling) until a condition holds, failing after a second. */
const until = async (condition: () => boolean) => {
  for (let i = 0; i < 200 && !condition(); i++) await new Promise((r) => setTimeout(r, 5))
  expect(condition()).toBe(true)
}

const caught = async (promise: Promise<unknown>): Promise<unknown> => {
  try {
    await promise
  } catch (error) {
    return error
  }
  throw new Error("expected a failure")
}

describe("default answers", () => {
  it("the OpenAI SDK reads a JSON completion that echoes the last user message with usage", async () => {
    const completion = await openai.chat.completions.create({
      model: "gpt-4o-mini",
      messages: [{ role: "system", content: "be brief" }, ...user("first"), { role: "assistant", content: "ok" }, ...user("say this back")]
    })
    expect(completion.object).toBe("chat.completion")
    expect(completion.model).toBe("gpt-4o-mini")
    expect(completion.choices[0]?.message).toMatchObject({ role: "assistant", content: "say this back" })
    expect(completion.choices[0]?.finish_reason).toBe("stop")
    expect(completion.usage?.completion_tokens).toBeGreaterThan(0)
    expect(completion.usage?.prompt_tokens).toBeGreaterThan(0)
    expect(completion.usage?.total_tokens).toBe(completion.usage!.prompt_tokens + completion.usage!.completion_tokens)
  })

  it("the OpenAI SDK streams the answer word by word and gets a usage chunk with no choices when include_usage is set", async () => {
    const stream = await openai.chat.completions.create({
      model: "gpt-4o-mini",
      messages: user("one two three"),
      stream: true,
      stream_options: { include_usage: true }
    })
    const chunks = []
    for await (const chunk of stream) chunks.push(chunk)
    const text = chunks.map((c) => c.choices[0]?.delta.content ?? "").join("")
    expect(text).toBe("one two three")
    expect(chunks.filter((c) => c.choices[0]?.delta.content).length).toBe(3)
    expect(chunks.every((c) => c.object === "chat.completion.chunk")).toBe(true)
    expect(chunks.at(-2)?.choices[0]?.finish_reason).toBe("stop")
    expect(chunks.at(-1)?.choices).toEqual([])
    expect(chunks.at(-1)?.usage?.completion_tokens).toBeGreaterThan(0)
  })

  it("an OpenAI stream without include_usage carries no usage chunk", async () => {
    const stream = await openai.chat.completions.create({ model: "m", messages: user("a b"), stream: true })
    const chunks = []
    for await (const chunk of stream) chunks.push(chunk)
    expect(chunks.every((c) => c.choices.length === 1 && c.usage === undefined)).toBe(true)
  })

  it("the Anthropic SDK reads a message that echoes the last user message with usage", async () => {
    const message = await anthropic.messages.create({
      model: "claude-sonnet-4-5",
      max_tokens: 64,
      system: "be brief",
      messages: user("hello claude")
    })
    expect(message).toMatchObject({
      type: "message",
      role: "assistant",
      model: "claude-sonnet-4-5",
      content: [{ type: "text", text: "hello claude" }],
      stop_reason: "end_turn"
    })
    expect(message.usage.input_tokens).toBeGreaterThan(0)
    expect(message.usage.output_tokens).toBeGreaterThan(0)
  })

  it("the Anthropic SDK streams message_start, text deltas, message_delta and message_stop", async () => {
    const stream = anthropic.messages.stream({ model: "claude-x", max_tokens: 64, messages: user("stream me please") })
    const types: Array<string> = []
    stream.on("streamEvent", (event) => types.push(event.type))
    const final = await stream.finalMessage()
    expect(final.content.map((block) => (block.type === "text" ? block.text : block.type))).toEqual(["stream me please"])
    expect(final.stop_reason).toBe("end_turn")
    expect(final.usage.output_tokens).toBeGreaterThan(1)
    expect(types[0]).toBe("message_start")
    expect(types.filter((t) => t === "content_block_delta").length).toBe(3)
    expect(types.slice(-2)).toEqual(["message_delta", "message_stop"])
  })

  it("GET /v1/models lists models in the OpenAI shape, or the Anthropic shape for Anthropic clients", async () => {
    const openAiModels = await openai.models.list()
    expect(openAiModels.data.map((m) => m.id)).toEqual(["sim-gpt"])
    const anthropicModels = await anthropic.models.list()
    expect(anthropicModels.data.map((m) => m.id)).toEqual(["sim-claude"])
    expect(sim.attempts()).toBe(0)
  })

  it("an unknown path gets a 404 in the OpenAI error shape", async () => {
    const response = await fetch(sim.url + "/v1/embeddings", { method: "POST", body: "{}" })
    expect(response.status).toBe(404)
    expect(await response.json()).toMatchObject({ error: { type: "invalid_request_error" } })
  })

  it("a body that is not JSON gets a 400 in the route's error shape", async () => {
    const response = await fetch(sim.url + "/v1/messages", { method: "POST", body: "{not json" })
    expect(response.status).toBe(400)
    expect(await response.json()).toMatchObject({ type: "error", error: { type: "invalid_request_error" } })
  })
})

describe("scripted answers", () => {
  it("answers scripts in order per route, then falls back to the default answer", async () => {
    sim.enqueue("openai", { text: "first" }, { text: "second" })
    sim.enqueue("anthropic", { text: "claude" })
    const answer = async () =>
      (await openai.chat.completions.create({ model: "m", messages: user("default") })).choices[0]?.message.content
    expect(await answer()).toBe("first")
    const message = await anthropic.messages.create({ model: "c", max_tokens: 8, messages: user("x") })
    expect(message.content).toEqual([{ type: "text", text: "claude" }])
    expect(await answer()).toBe("second")
    expect(await answer()).toBe("default")
  })

  it("text with usage reports exactly that usage, as JSON and as a stream", async () => {
    sim.enqueue("openai", { text: "fixed", usage: { inputTokens: 11, outputTokens: 7 } })
    const completion = await openai.chat.completions.create({ model: "m", messages: user("x") })
    expect(completion.usage).toMatchObject({ prompt_tokens: 11, completion_tokens: 7, total_tokens: 18 })

    sim.enqueue("anthropic", { text: "fixed", usage: { inputTokens: 5, outputTokens: 3 } })
    const final = await anthropic.messages.stream({ model: "c", max_tokens: 8, messages: user("x") }).finalMessage()
    expect(final.usage).toMatchObject({ input_tokens: 5, output_tokens: 3 })
  })

  it("an error status without a body gets the OpenAI error shape and the headers the SDK reads", async () => {
    sim.enqueue("openai", { status: 429, headers: { "retry-after": "3", "x-ratelimit-remaining-requests": "0" } })
    const error = await caught(openai.chat.completions.create({ model: "m", messages: user("x") }))
    expect(error).toBeInstanceOf(OpenAI.RateLimitError)
    const apiError = error as InstanceType<typeof OpenAI.RateLimitError>
    expect(apiError.status).toBe(429)
    expect(apiError.code).toBe("rate_limit_exceeded")
    expect(apiError.requestID).toMatch(/^req_sim_/)
    expect(apiError.headers.get("retry-after")).toBe("3")
    expect(apiError.headers.get("x-ratelimit-remaining-requests")).toBe("0")
  })

  it("an error status without a body gets the Anthropic error shape with a request-id", async () => {
    sim.enqueue("anthropic", { status: 529, headers: { "x-should-retry": "true" } })
    const error = await caught(anthropic.messages.create({ model: "c", max_tokens: 8, messages: user("x") }))
    expect(error).toBeInstanceOf(Anthropic.APIError)
    const apiError = error as InstanceType<typeof Anthropic.APIError>
    expect(apiError.status).toBe(529)
    expect(apiError.error).toMatchObject({ type: "error", error: { type: "overloaded_error" } })
    expect(apiError.requestID).toMatch(/^req_sim_/)
    expect(apiError.headers?.get("x-should-retry")).toBe("true")
  })

  it("a body object is sent as JSON with the scripted status", async () => {
    const body = { error: { message: "model gone", type: "invalid_request_error", param: "model", code: "model_not_found" } }
    sim.enqueue("openai", { status: 404, body })
    const error = await caught(openai.chat.completions.create({ model: "m", messages: user("x") }))
    expect(error).toBeInstanceOf(OpenAI.NotFoundError)
    expect((error as InstanceType<typeof OpenAI.NotFoundError>).error).toEqual(body.error)
  })

  it("a body string is sent as is", async () => {
    sim.enqueue("openai", { status: 502, body: "<html>bad gateway</html>", headers: { "content-type": "text/html" } })
    const response = await postOpenAi({ messages: user("x") })
    expect(response.status).toBe(502)
    expect(response.headers.get("content-type")).toBe("text/html")
    expect(await response.text()).toBe("<html>bad gateway</html>")
  })

  it("chunks are framed as OpenAI data frames followed by [DONE]", async () => {
    sim.enqueue("openai", { chunks: ['{"a":1}', { b: 2 }] })
    const response = await postOpenAi({ messages: user("x"), stream: true })
    expect(response.headers.get("content-type")).toMatch(/^text\/event-stream/)
    expect((await reads(response)).join("")).toBe('data: {"a":1}\n\ndata: {"b":2}\n\ndata: [DONE]\n\n')
  })

  it("chunks are framed as Anthropic events named by their type", async () => {
    sim.enqueue("anthropic", { chunks: [{ type: "ping" }, '{"type":"message_stop"}'] })
    const response = await fetch(sim.url + "/v1/messages", { method: "POST", body: JSON.stringify({ stream: true }) })
    expect((await reads(response)).join("")).toBe(
      'event: ping\ndata: {"type":"ping"}\n\nevent: message_stop\ndata: {"type":"message_stop"}\n\n'
    )
  })

  it("malformed json makes the SDK fail to parse the body", async () => {
    sim.enqueue("openai", { malformed: "json" })
    const error = await caught(openai.chat.completions.create({ model: "m", messages: user("x") }))
    expect(error).toBeInstanceOf(Error)
    expect(String(error)).toMatch(/JSON/)
  })

  it("malformed sse makes the SDK fail while streaming after the first valid event", async () => {
    sim.enqueue("anthropic", { malformed: "sse" })
    const stream = await anthropic.messages.create({ model: "c", max_tokens: 8, messages: user("x"), stream: true })
    const seen: Array<string> = []
    const error = await caught(
      (async () => {
        for await (const event of stream) seen.push(event.type)
      })()
    )
    expect(seen).toEqual(["message_start"])
    expect(String(error)).toMatch(/JSON/)
  })
})

describe("timing and connection scripts", () => {
  it("delayBeforeHeadersMs holds the response back while an undelayed request is answered", async () => {
    sim.enqueue("openai", { delayBeforeHeadersMs: 150, text: "slow" })
    const order: Array<string> = []
    const slow = postOpenAi({ messages: user("x") }).then(() => order.push("slow"))
    await until(() => sim.attempts("openai") === 1)
    const fast = postOpenAi({ messages: user("x") }).then(() => order.push("fast"))
    await Promise.all([slow, fast])
    expect(order).toEqual(["fast", "slow"])
  })

  it("delayBetweenChunksMs delivers each SSE frame separately", async () => {
    sim.enqueue("openai", { chunks: ["{}", "{}", "{}"], delayBetweenChunksMs: 60 })
    const pieces = await reads(await postOpenAi({ messages: user("x"), stream: true }))
    expect(pieces).toEqual(["data: {}\n\n", "data: {}\n\n", "data: {}\n\n", "data: [DONE]\n\n"])
  })

  it("hang never answers; the connection closes when the client aborts", async () => {
    sim.enqueue("openai", { hang: true })
    const controller = new AbortController()
    const pending = caught(postOpenAi({ messages: user("x") }, controller.signal))
    await until(() => sim.attempts("openai") === 1)
    expect(sim.openConnections()).toBeGreaterThan(0)
    controller.abort()
    expect((await pending as Error).name).toBe("AbortError")
    await until(() => sim.openConnections() === 0)
  })

  it("hangAfterChunks sends n frames and then nothing until the client aborts", async () => {
    sim.enqueue("openai", { chunks: ['{"n":1}', '{"n":2}', '{"n":3}'], hangAfterChunks: 2 })
    const controller = new AbortController()
    const response = await postOpenAi({ messages: user("x"), stream: true }, controller.signal)
    const reader = response.body!.getReader()
    const decoder = new TextDecoder()
    let text = ""
    while (!text.includes('{"n":2}')) text += decoder.decode((await reader.read()).value)
    const next = reader.read()
    let settled = false
    void next.then(() => (settled = true), () => (settled = true))
    await new Promise((r) => setTimeout(r, 50))
    expect(settled).toBe(false)
    expect(text).toBe('data: {"n":1}\n\ndata: {"n":2}\n\n')
    controller.abort()
    await caught(next)
    await until(() => sim.openConnections() === 0)
  })

  it("closeAfterChunks drops the connection after n frames and the SDK stream fails", async () => {
    sim.enqueue("openai", { text: "a b c d e f", closeAfterChunks: 3 })
    const stream = await openai.chat.completions.create({ model: "m", messages: user("x"), stream: true })
    const contents: Array<string> = []
    const error = await caught(
      (async () => {
        for await (const chunk of stream) contents.push(chunk.choices[0]?.delta.content ?? "")
      })()
    )
    expect(contents).toEqual(["", "a ", "b "])
    expect(error).toBeInstanceOf(Error)
    await until(() => sim.openConnections() === 0)
  })

  it("closeAfterChunks 0 sends the headers and then drops the connection", async () => {
    sim.enqueue("anthropic", { closeAfterChunks: 0 })
    const response = await fetch(sim.url + "/v1/messages", {
      method: "POST",
      body: JSON.stringify({ stream: true, messages: user("x") })
    })
    expect(response.status).toBe(200)
    await expect(response.text()).rejects.toThrow()
  })

  it("destroyBeforeHeaders resets the connection and the SDK reports a connection error", async () => {
    sim.enqueue("openai", { destroyBeforeHeaders: true })
    const error = await caught(openai.chat.completions.create({ model: "m", messages: user("x") }))
    expect(error).toBeInstanceOf(OpenAI.APIConnectionError)
    sim.enqueue("anthropic", { destroyBeforeHeaders: true })
    const anthropicError = await caught(anthropic.messages.create({ model: "c", max_tokens: 8, messages: user("x") }))
    expect(anthropicError).toBeInstanceOf(Anthropic.APIConnectionError)
  })

  it("open connections go back to 0 after an SDK request is aborted mid-stream", async () => {
    sim.enqueue("openai", { text: "a b c d e f g h", delayBetweenChunksMs: 30 })
    const controller = new AbortController()
    const stream = await openai.chat.completions.create(
      { model: "m", messages: user("x"), stream: true },
      { signal: controller.signal }
    )
    const seen: Array<string> = []
    // The SDK ends an aborted stream's iteration without throwing.
    for await (const chunk of stream) {
      seen.push(chunk.choices[0]?.delta.content ?? "")
      if (seen.length === 2) controller.abort()
    }
    expect(seen).toEqual(["", "a "])
    await until(() => sim.openConnections() === 0)
  })
})

describe("request recording", () => {
  it("records route, method, path and parsed body, with credential headers redacted", async () => {
    await postOpenAi({ model: "gpt-x", messages: user("recorded") })
    await fetch(sim.url + "/v1/messages", {
      method: "POST",
      headers: { "x-api-key": "sk-ant-secret", "anthropic-version": "2023-06-01" },
      body: JSON.stringify({ model: "c", messages: user("too") })
    })
    const [first, second] = sim.requests()
    expect(first).toMatchObject({
      route: "openai",
      method: "POST",
      path: "/v1/chat/completions",
      body: { model: "gpt-x", messages: user("recorded") }
    })
    expect(first?.headers["authorization"]).toBe("<redacted>")
    expect(second).toMatchObject({ route: "anthropic", path: "/v1/messages", body: { model: "c" } })
    expect(second?.headers["x-api-key"]).toBe("<redacted>")
    expect(second?.headers["anthropic-version"]).toBe("2023-06-01")
    expect(JSON.stringify(sim.requests())).not.toMatch(/secret/)
  })

  it("the SDKs' API keys never appear in recorded requests", async () => {
    await openai.chat.completions.create({ model: "m", messages: user("x") })
    await anthropic.messages.create({ model: "c", max_tokens: 8, messages: user("x") })
    const recorded = JSON.stringify(sim.requests())
    expect(recorded).not.toContain("sk-test")
    expect(recorded).not.toMatch(/"(authorization|x-api-key)":"(?!<redacted>)/)
  })

  it("counts attempts per route, and reset forgets requests, attempts and scripts", async () => {
    sim.enqueue("openai", { text: "scripted" })
    await postOpenAi({ messages: user("x") })
    await postOpenAi({ messages: user("x") })
    await anthropic.messages.create({ model: "c", max_tokens: 8, messages: user("x") })
    expect([sim.attempts("openai"), sim.attempts("anthropic"), sim.attempts()]).toEqual([2, 1, 3])
    sim.enqueue("openai", { text: "left over" })
    sim.reset()
    expect([sim.attempts(), sim.requests().length]).toEqual([0, 0])
    const completion = await openai.chat.completions.create({ model: "m", messages: user("fresh") })
    expect(completion.choices[0]?.message.content).toBe("fresh")
  })
})

describe("lifetime", () => {
  it.scoped("make keeps real time under TestClock: a scripted delay elapses without adjusting the clock", () =>
    Effect.gen(function* () {
      const local = yield* Simulator.make()
      local.enqueue("openai", { delayBeforeHeadersMs: 20, text: "on time" })
      const client = new OpenAI({ apiKey: "sk-test", baseURL: local.url + "/v1", maxRetries: 0 })
      const fiber = yield* Effect.fork(
        Effect.promise(() => client.chat.completions.create({ model: "m", messages: user("x") }))
      )
      const completion = yield* Fiber.join(fiber)
      expect(completion.choices[0]?.message.content).toBe("on time")
      expect(yield* TestClock.currentTimeMillis).toBe(0)
    })
  )

  it.scoped("an SDK retry after a scripted 429 is answered by the next script", () =>
    Effect.gen(function* () {
      const local = yield* Simulator.make()
      local.enqueue("openai", { status: 429, headers: { "retry-after-ms": "10" } }, { text: "hello" })
      const client = new OpenAI({ apiKey: "sk-test", baseURL: local.url + "/v1", maxRetries: 1 })
      const answer = yield* Effect.promise(() => client.chat.completions.create({ model: "gpt-4o-mini", messages: user("hi") }))
      expect(answer.choices[0]?.message.content).toBe("hello")
      expect(local.attempts("openai")).toBe(2)
    })
  )

  it.effect("closing the scope ends a hanging response and frees the port", () =>
    Effect.gen(function* () {
      const { pending, port } = yield* Effect.scoped(
        Effect.gen(function* () {
          const local = yield* Simulator.make()
          local.enqueue("anthropic", { hang: true })
          const pending = caught(fetch(local.url + "/v1/messages", { method: "POST", body: "{}" }))
          yield* Effect.promise(() =>
            (async () => {
              for (let i = 0; i < 200 && local.attempts() === 0; i++) await new Promise((r) => setTimeout(r, 5))
            })()
          )
          expect(local.attempts("anthropic")).toBe(1)
          return { pending, port: Number(new URL(local.url).port) }
        })
      )
      const error = yield* Effect.promise(() => pending)
      expect(String(error)).toMatch(/fetch failed|terminated|socket/i)
      const rebound = yield* Effect.promise(
        () =>
          new Promise<boolean>((resolve) => {
            const probe = Net.createServer()
            probe.once("error", () => resolve(false))
            probe.listen(port, "127.0.0.1", () => probe.close(() => resolve(true)))
          })
      )
      expect(rebound).toBe(true)
    })
  )

  it("start rejects with a readable error when the port is taken", async () => {
    const port = Number(new URL(sim.url).port)
    await expect(Simulator.start({ port })).rejects.toThrow(`simulator: cannot listen on 127.0.0.1:${port}`)
  })
})
