import { describe, expect, it } from "@effect/vitest"
import { RateLimiter } from "@effect/experimental"
import { ConfigProvider, Effect, Redacted } from "effect"
import * as Http from "node:http"
import type * as Net from "node:net"
import * as AzureOpenAi from "../src/AzureOpenAi.js"
import * as Llm from "../src/Llm.js"
import * as LlmLive from "../src/LlmLive.js"
import { collect, exposed, failure, hello, summarize } from "./integration/support.js"

const azureKey = "azure-test-KEY-3f2e1d0c9b8a7f6e"

interface Seen {
  readonly method: string
  readonly url: string
  readonly headers: Http.IncomingHttpHeaders
  readonly body: Record<string, unknown>
}

type Reply = { readonly status: number; readonly body: string; readonly contentType?: string }

/** A server on loopback that records each request and answers it with `reply`; closed with the scope. */
const azureLike = (reply: (seen: Seen) => Reply) =>
  Effect.acquireRelease(
    Effect.async<{ readonly url: string; readonly seen: Array<Seen>; readonly server: Http.Server }>((resume) => {
      const seen: Array<Seen> = []
      const server = Http.createServer((request, response) => {
        let text = ""
        request.setEncoding("utf8")
        request.on("data", (piece: string) => (text += piece))
        request.on("end", () => {
          const entry = { method: request.method ?? "", url: request.url ?? "", headers: request.headers, body: JSON.parse(text) as Record<string, unknown> }
          seen.push(entry)
          const { body, contentType = "application/json", status } = reply(entry)
          response.writeHead(status, { "content-type": contentType })
          response.end(body)
        })
      })
      server.listen(0, "127.0.0.1", () => {
        const { port } = server.address() as Net.AddressInfo
        resume(Effect.succeed({ url: `http://127.0.0.1:${port}`, seen, server }))
      })
    }),
    ({ server }) =>
      Effect.async<void>((resume) => {
        server.closeAllConnections()
        server.close(() => resume(Effect.void))
      })
  )

const completion = (choice: Record<string, unknown>) =>
  JSON.stringify({
    id: "chatcmpl-azure",
    object: "chat.completion",
    model: "gpt-4o-mini-2024-07-18",
    prompt_filter_results: [{ prompt_index: 0, content_filter_results: {} }],
    choices: [{ index: 0, ...choice }],
    usage: { prompt_tokens: 5, completion_tokens: 2, total_tokens: 7 }
  })

const answered = completion({ message: { role: "assistant", content: "hi from azure" }, finish_reason: "stop" })

const options = (url: string): AzureOpenAi.Options => ({
  apiKey: Redacted.make(azureKey),
  endpoint: `${url}/`,
  apiVersion: "2024-10-21",
  deployment: "my-gpt4o"
})

describe("Azure-shaped requests on the wire", () => {
  it.scoped("the deployment is in the path, the key in api-key, the api-version in the query, no Authorization", () =>
    Effect.gen(function* () {
      const server = yield* azureLike(() => ({ status: 200, body: answered }))
      const service = Llm.fromProvider(yield* AzureOpenAi.make({ ...options(server.url), query: { trace: "on" }, headers: { "x-team": "agents" } }))
      const response = yield* service.complete({ ...hello, maxTokens: 16 })
      expect(response).toMatchObject({ provider: "azure", content: "hi from azure", finishReason: "stop" })
      const [request] = server.seen
      expect(request?.method).toBe("POST")
      const url = new URL(request?.url ?? "", server.url)
      expect(url.pathname).toBe("/openai/deployments/my-gpt4o/chat/completions")
      expect(Object.fromEntries(url.searchParams)).toEqual({ "api-version": "2024-10-21", trace: "on" })
      expect(request?.headers["api-key"]).toBe(azureKey)
      expect(request?.headers["x-team"]).toBe("agents")
      expect(request?.headers.authorization).toBeUndefined()
      expect(request?.body).toMatchObject({ model: "my-gpt4o", max_completion_tokens: 16 })
    })
  )

  it.scoped("a request naming a model uses it as the deployment", () =>
    Effect.gen(function* () {
      const server = yield* azureLike(() => ({ status: 200, body: answered }))
      const service = Llm.fromProvider(yield* AzureOpenAi.make(options(server.url)))
      yield* service.complete({ ...hello, model: "other-deployment" })
      expect(new URL(server.seen[0]?.url ?? "", server.url).pathname).toBe("/openai/deployments/other-deployment/chat/completions")
    })
  )

  it.scoped("without a deployment a request must name one", () =>
    Effect.gen(function* () {
      const server = yield* azureLike(() => ({ status: 200, body: answered }))
      const { deployment: _, ...rest } = options(server.url)
      const error = yield* failure(Llm.fromProvider(yield* AzureOpenAi.make(rest)).complete(hello))
      expect(error).toMatchObject({ _tag: "InvalidRequestError", field: "model", provider: "azure" })
      expect(server.seen).toEqual([])
    })
  )
})

describe("Azure's content filter", () => {
  it.scoped("an answer the filter withheld, with no message at all, finishes with content_filter", () =>
    Effect.gen(function* () {
      const server = yield* azureLike(() => ({
        status: 200,
        body: completion({ finish_reason: "content_filter", content_filter_results: { hate: { filtered: true, severity: "high" } } })
      }))
      const response = yield* Llm.fromProvider(yield* AzureOpenAi.make(options(server.url))).complete(hello)
      expect(response).toMatchObject({ content: "", finishReason: "content_filter" })
    })
  )

  it.scoped("a stream cut by the filter finishes with content_filter", () =>
    Effect.gen(function* () {
      const chunks = [
        { id: "", model: "", choices: [], prompt_filter_results: [{ prompt_index: 0, content_filter_results: {} }] },
        { id: "c1", model: "gpt-4o-mini", choices: [{ index: 0, delta: { role: "assistant", content: "Once" } }] },
        { id: "c1", model: "gpt-4o-mini", choices: [{ index: 0, delta: {}, finish_reason: "content_filter" }] }
      ]
      const body = [...chunks.map((chunk) => `data: ${JSON.stringify(chunk)}\n\n`), "data: [DONE]\n\n"].join("")
      const server = yield* azureLike(() => ({ status: 200, body, contentType: "text/event-stream" }))
      const { finish, text } = summarize(yield* collect(Llm.fromProvider(yield* AzureOpenAi.make(options(server.url))).stream(hello)))
      expect(text).toBe("Once")
      expect(finish).toMatchObject({ id: "c1", model: "gpt-4o-mini", finishReason: "content_filter" })
    })
  )

  it.scoped("a prompt the filter refused is an InvalidRequestError with code content_filter and Azure's message", () =>
    Effect.gen(function* () {
      const server = yield* azureLike(() => ({
        status: 400,
        body: JSON.stringify({
          error: {
            message: "The response was filtered due to the prompt triggering Azure OpenAI's content management policy.",
            type: null,
            param: "prompt",
            code: "content_filter",
            status: 400,
            innererror: { code: "ResponsibleAIPolicyViolation" }
          }
        })
      }))
      const error = yield* failure(Llm.fromProvider(yield* AzureOpenAi.make(options(server.url))).complete(hello))
      expect(error).toMatchObject({ _tag: "InvalidRequestError", status: 400, code: "content_filter", retryable: false })
      expect(error.message).toContain("content management policy")
      expect(exposed(error)).not.toContain(azureKey)
    })
  )
})

describe("AzureOpenAi.layerConfig", () => {
  it.scoped("reads the SDK's own variables, the deployment from AZURE_OPENAI_DEPLOYMENT", () =>
    Effect.gen(function* () {
      const server = yield* azureLike(() => ({ status: 200, body: answered }))
      const env = new Map([
        ["AZURE_OPENAI_API_KEY", azureKey],
        ["AZURE_OPENAI_ENDPOINT", server.url],
        ["OPENAI_API_VERSION", "2025-04-01-preview"],
        ["AZURE_OPENAI_DEPLOYMENT", "from-env"]
      ])
      const response = yield* Llm.complete(hello).pipe(
        Effect.provide(AzureOpenAi.layerConfig),
        Effect.withConfigProvider(ConfigProvider.fromMap(env))
      )
      expect(response.provider).toBe("azure")
      const url = new URL(server.seen[0]?.url ?? "", server.url)
      expect(url.pathname).toBe("/openai/deployments/from-env/chat/completions")
      expect(url.searchParams.get("api-version")).toBe("2025-04-01-preview")
    })
  )

  it.scoped("without AZURE_OPENAI_DEPLOYMENT the deployment is LLM_DEFAULT_MODEL", () =>
    Effect.gen(function* () {
      const server = yield* azureLike(() => ({ status: 200, body: answered }))
      const env = new Map([
        ["AZURE_OPENAI_API_KEY", azureKey],
        ["AZURE_OPENAI_ENDPOINT", server.url],
        ["OPENAI_API_VERSION", "2024-10-21"],
        ["LLM_DEFAULT_MODEL", "from-default-model"]
      ])
      yield* Llm.complete(hello).pipe(Effect.provide(AzureOpenAi.layerConfig), Effect.withConfigProvider(ConfigProvider.fromMap(env)))
      expect(new URL(server.seen[0]?.url ?? "", server.url).pathname).toBe("/openai/deployments/from-default-model/chat/completions")
    })
  )

  it.effect("without AZURE_OPENAI_ENDPOINT building the layer fails with a ConfigError naming the variables", () =>
    Effect.gen(function* () {
      const error = yield* Effect.flip(
        Llm.complete(hello).pipe(Effect.provide(AzureOpenAi.layerConfig), Effect.withConfigProvider(ConfigProvider.fromMap(new Map())))
      )
      expect(String(error)).toContain("AZURE_OPENAI_API_KEY, AZURE_OPENAI_ENDPOINT and OPENAI_API_VERSION are required")
    })
  )
})

describe("LlmLive with Azure beside OpenAI", () => {
  it.scoped("LLM_PROVIDER=azure with LLM_DEFAULT_MODEL as its deployment; a request naming openai goes there", () =>
    Effect.gen(function* () {
      const azure = yield* azureLike(() => ({ status: 200, body: answered }))
      const openai = yield* azureLike(() => ({ status: 200, body: answered }))
      const env = new Map([
        ["AZURE_OPENAI_API_KEY", azureKey],
        ["AZURE_OPENAI_ENDPOINT", azure.url],
        ["OPENAI_API_VERSION", "2024-10-21"],
        ["OPENAI_API_KEY", "sk-test-BESIDE-AZURE-0123"],
        ["OPENAI_BASE_URL", `${openai.url}/v1`],
        ["LLM_PROVIDER", "azure"],
        ["LLM_DEFAULT_MODEL", "default-deployment"]
      ])
      const llm = yield* LlmLive.make.pipe(Effect.provide(RateLimiter.layerStoreMemory), Effect.withConfigProvider(ConfigProvider.fromMap(env)))
      expect((yield* llm.complete(hello)).provider).toBe("azure")
      expect((yield* llm.complete({ ...hello, provider: "openai" })).provider).toBe("openai")
      expect(new URL(azure.seen[0]?.url ?? "", azure.url).pathname).toBe("/openai/deployments/default-deployment/chat/completions")
      expect(openai.seen[0]?.url).toBe("/v1/chat/completions")
      expect(openai.seen[0]?.body).toMatchObject({ model: "gpt-4o-mini" })
    })
  )
})
