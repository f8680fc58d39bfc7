import { describe, expect, it } from "@effect/vitest"
import { ConfigProvider, Effect, Layer, Redacted } from "effect"
import * as Llm from "../src/Llm.js"
import * as OpenAiCompatible from "../src/OpenAiCompatible.js"
import * as Simulator from "../simulator/Simulator.js"
import { collect, compatibleKey, failure, hello, setup, summarize } from "./integration/support.js"

const lastBody = (sim: Simulator.Simulator) => sim.requests().at(-1)?.body as Record<string, unknown>

describe("the provider name", () => {
  it.scoped("responses, stream events and errors report the configured name", () =>
    Effect.gen(function* () {
      const { route, service, sim } = yield* setup("compatible")
      expect((yield* service.complete(hello)).provider).toBe("groq")
      const { finish } = summarize(yield* collect(service.stream(hello)))
      expect(finish.provider).toBe("groq")
      sim.enqueue(route, { status: 500 })
      expect((yield* failure(service.complete(hello))).provider).toBe("groq")
    })
  )

  it.scoped("the layer routes under the name, so a request naming it is accepted and another name is not", () =>
    Effect.gen(function* () {
      const sim = yield* Simulator.make()
      const layer = OpenAiCompatible.layer({ name: "local", baseURL: `${sim.url}/v1`, model: "llama3.2" })
      const ok = yield* Effect.provide(Llm.complete({ ...hello, provider: "local" }), layer)
      expect(ok.provider).toBe("local")
      const error = yield* failure(Effect.provide(Llm.complete({ ...hello, provider: "openai" }), layer))
      expect(error).toMatchObject({ _tag: "InvalidRequestError", field: "provider" })
    })
  )
})

describe("keys", () => {
  it.scoped("without a key no authorization header is sent", () =>
    Effect.gen(function* () {
      const sim = yield* Simulator.make()
      const service = Llm.fromProvider(yield* OpenAiCompatible.make({ name: "ollama", baseURL: `${sim.url}/v1`, model: "llama3.2" }))
      yield* service.complete(hello)
      yield* collect(service.stream(hello))
      for (const request of sim.requests()) expect(request.headers.authorization).toBeUndefined()
    })
  )

  it.scoped("with a key it is sent as the authorization header", () =>
    Effect.gen(function* () {
      const { service, sim } = yield* setup("compatible")
      yield* service.complete(hello)
      expect(sim.requests().at(-1)?.headers.authorization).toBe("<redacted>")
    })
  )
})

describe("request mapping", () => {
  it.scoped("maxTokens is sent as max_tokens and streams ask for usage", () =>
    Effect.gen(function* () {
      const { service, sim } = yield* setup("compatible")
      yield* collect(service.stream({ ...hello, maxTokens: 32 }))
      expect(lastBody(sim)).toMatchObject({
        model: "llama-3.3-70b-versatile",
        max_tokens: 32,
        stream: true,
        stream_options: { include_usage: true }
      })
      expect(lastBody(sim).max_completion_tokens).toBeUndefined()
    })
  )

  it.scoped("without a configured model the provider's model is empty and a request must name one, else InvalidRequestError on model", () =>
    Effect.gen(function* () {
      const sim = yield* Simulator.make()
      const provider = yield* OpenAiCompatible.make({ name: "vllm", baseURL: `${sim.url}/v1` })
      expect(provider).toMatchObject({ name: "vllm", model: "" })
      const service = Llm.fromProvider(provider)
      const error = yield* failure(service.complete(hello))
      expect(error).toMatchObject({ _tag: "InvalidRequestError", field: "model", provider: "vllm" })
      const streamError = yield* failure(collect(service.stream(hello)))
      expect(streamError).toMatchObject({ _tag: "InvalidRequestError", field: "model" })
      expect(sim.attempts()).toBe(0)
      const ok = yield* service.complete({ ...hello, model: "qwen3" })
      expect(ok.model).toBe("qwen3")
    })
  )
})

describe("layerConfig", () => {
  const run = (entries: ReadonlyArray<readonly [string, string]>) =>
    Effect.provide(
      Llm.complete(hello),
      OpenAiCompatible.layerConfig.pipe(Layer.provide(Layer.setConfigProvider(ConfigProvider.fromMap(new Map(entries)))))
    )

  it.scoped("reads OPENAI_COMPATIBLE_NAME, _BASE_URL, _API_KEY and _MODEL", () =>
    Effect.gen(function* () {
      const sim = yield* Simulator.make()
      const response = yield* run([
        ["OPENAI_COMPATIBLE_NAME", "mistral"],
        ["OPENAI_COMPATIBLE_BASE_URL", `${sim.url}/v1`],
        ["OPENAI_COMPATIBLE_API_KEY", compatibleKey],
        ["OPENAI_COMPATIBLE_MODEL", "mistral-small-latest"],
        ["LLM_DEFAULT_MODEL", "ignored"]
      ])
      expect(response).toMatchObject({ provider: "mistral", model: "mistral-small-latest" })
      expect(sim.requests().at(-1)?.headers.authorization).toBe("<redacted>")
    })
  )

  it.scoped("falls back to LLM_DEFAULT_MODEL and sends no key when OPENAI_COMPATIBLE_API_KEY is blank", () =>
    Effect.gen(function* () {
      const sim = yield* Simulator.make()
      const response = yield* run([
        ["OPENAI_COMPATIBLE_NAME", "ollama"],
        ["OPENAI_COMPATIBLE_BASE_URL", `${sim.url}/v1`],
        ["OPENAI_COMPATIBLE_API_KEY", ""],
        ["LLM_DEFAULT_MODEL", "llama3.2"]
      ])
      expect(response.model).toBe("llama3.2")
      expect(sim.requests().at(-1)?.headers.authorization).toBeUndefined()
    })
  )

  it.effect("fails with a ConfigError naming OPENAI_COMPATIBLE_BASE_URL when it is missing", () =>
    Effect.gen(function* () {
      const layer = OpenAiCompatible.layerConfig.pipe(
        Layer.provide(Layer.setConfigProvider(ConfigProvider.fromMap(new Map([["OPENAI_COMPATIBLE_NAME", "x"]]))))
      )
      const error = yield* Effect.flip(Effect.scoped(Layer.build(layer)))
      expect(String(error)).toContain("OPENAI_COMPATIBLE_BASE_URL")
    })
  )

  it("the key option is kept Redacted in the options type", () => {
    const options: OpenAiCompatible.Options = { name: "n", baseURL: "http://x", apiKey: Redacted.make(compatibleKey) }
    expect(String(options.apiKey)).not.toContain(compatibleKey)
  })
})

describe("custom headers, query parameters and fetch", () => {
  it.scoped("every request carries the headers and query, through the given fetch", () =>
    Effect.gen(function* () {
      const sim = yield* Simulator.make()
      const seen: Array<{ readonly url: string; readonly headers: Headers }> = []
      const recording = (input: string | URL | Request, init?: RequestInit) => {
        seen.push({ url: input instanceof Request ? input.url : String(input), headers: new Headers(init?.headers) })
        return fetch(input, init)
      }
      const provider = yield* OpenAiCompatible.make({
        name: "gateway",
        baseURL: `${sim.url}/v1`,
        model: "m",
        headers: { "x-portkey-provider": "openai", "x-portkey-api-key": Redacted.make("pk-gateway-0123456789") },
        query: { "api-version": "2024-10-21" },
        fetch: recording
      })
      const service = Llm.fromProvider(provider)
      yield* service.complete(hello)
      yield* collect(service.stream(hello))
      expect(seen.length).toBe(2)
      for (const { headers, url } of seen) {
        expect(new URL(url).searchParams.get("api-version")).toBe("2024-10-21")
        expect(headers.get("x-portkey-provider")).toBe("openai")
        expect(headers.get("x-portkey-api-key")).toBe("pk-gateway-0123456789")
        expect(headers.get("authorization")).toBeNull()
      }
      expect(sim.requests().map((request) => request.headers["x-portkey-provider"])).toEqual(["openai", "openai"])
    })
  )

  it.scoped("a custom authorization header is sent when the endpoint has no key", () =>
    Effect.gen(function* () {
      const sim = yield* Simulator.make()
      const service = Llm.fromProvider(
        yield* OpenAiCompatible.make({ name: "gateway", baseURL: `${sim.url}/v1`, model: "m", headers: { Authorization: "Bearer gw-token-1234567" } })
      )
      yield* service.complete(hello)
      expect(sim.requests().at(-1)?.headers.authorization).toBe("<redacted>")
    })
  )

  it.scoped("an error that repeats a header's value shows it as [redacted]", () =>
    Effect.gen(function* () {
      const sim = yield* Simulator.make()
      const token = "gw-token-SECRET-77665544"
      const service = Llm.fromProvider(
        yield* OpenAiCompatible.make({ name: "gateway", baseURL: `${sim.url}/v1`, model: "m", headers: { "x-token": Redacted.make(token) } })
      )
      sim.enqueue("openai", { status: 401, body: { message: `token ${token} is not valid` } })
      const error = yield* failure(service.complete(hello))
      expect(error).toMatchObject({ _tag: "AuthenticationError", status: 401 })
      expect(error.message).toBe("gateway answered 401: token [redacted] is not valid")
    })
  )
})
