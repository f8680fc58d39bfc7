/**
 * No key reaches an error, a log line, a span or a metric label, whatever the provider sends back.
 * A server written here echoes every configured key into every field it controls: request ids,
 * rate-limit headers, error codes, types and messages (JSON, text, and HTML with tags inside the
 * key), a 200's `id` and `model`, and stream payloads. The stack is `LlmLive` built from
 * environment-like configuration, as a user runs it, with `LLM_LOG_LEVEL=debug` and
 * `LLM_LOG_BODIES=true`, calling OpenAI, Anthropic and a compatible endpoint through the real SDKs
 * over real HTTP, with keys of 3, 5, 8 and 40 characters. Spans and log records go through
 * `@effect/opentelemetry` to in-memory exporters; every one of them is searched.
 */
import { NodeSdk } from "@effect/opentelemetry"
import { RateLimiter } from "@effect/experimental"
import { describe, expect, it } from "@effect/vitest"
import { InMemoryLogRecordExporter, type ReadableLogRecord, SimpleLogRecordProcessor } from "@opentelemetry/sdk-logs"
import { InMemorySpanExporter, type ReadableSpan, SimpleSpanProcessor } from "@opentelemetry/sdk-trace-base"
import { Cause, ConfigProvider, Effect, Exit, HashMap, List, Logger, LogLevel, Metric, Stream } from "effect"
import * as Http from "node:http"
import * as Net from "node:net"
import * as Util from "node:util"
import * as LlmLive from "../../src/LlmLive.js"
import type * as LlmRequest from "../../src/LlmRequest.js"
import * as RateLimitStore from "../../src/RateLimitStore.js"

type Provider = "openai" | "anthropic" | "house"

/** Three keys of `length` characters, one per provider, that ordinary text would not contain. */
const keysOf = (length: number): Readonly<Record<Provider, string>> => {
  if (length === 40) {
    return {
      openai: "c4n4ry0011223344556677889900aabbccddeeff",
      anthropic: "c4n4ry1122334455667788990011bbccddeeffaa",
      house: "c4n4ry2233445566778899001122ccddeeffaabb"
    }
  }
  const seeds: Record<Provider, string> = { openai: "Qz7Rk2Tp", anthropic: "Vy8Pm3Wd", house: "Xw9Ln4Jh" }
  return {
    openai: seeds.openai.slice(0, length),
    anthropic: seeds.anthropic.slice(0, length),
    house: seeds.house.slice(0, length)
  }
}

/** A key with markup inside it, as an error page might show it. */
const split = (key: string) => `${key.slice(0, 1)}<wbr>${key.slice(1, 2)}<b></b>${key.slice(2)}`

const scenarios = ["answer", "json400", "json429", "text500", "html503", "htmlNoTitle", "errorInAnswer"] as const
type Scenario = (typeof scenarios)[number]

/**
 * The server: the last message of each request names the scenario; every key is echoed in every
 * header and field. The caller's own key (from `authorization` or `x-api-key`) comes first.
 */
const serve = (keys: Readonly<Record<Provider, string>>) =>
  Effect.acquireRelease(
    Effect.promise(
      () =>
        new Promise<{ readonly url: string; readonly server: Http.Server; readonly sockets: Set<Net.Socket>; readonly seen: Array<string> }>(
          (resolve) => {
            const sockets = new Set<Net.Socket>()
            const seen: Array<string> = []
            const server = Http.createServer((request, response) => {
              let body = ""
              request.setEncoding("utf8")
              request.on("data", (piece: string) => (body += piece))
              request.on("end", () => {
                const parsed = JSON.parse(body) as { messages: Array<{ content: string }>; stream?: boolean }
                const scenario = parsed.messages.at(-1)!.content as Scenario
                const sent = String(request.headers["x-api-key"] ?? request.headers.authorization ?? "").replace(/^Bearer /, "")
                seen.push(sent)
                const all = [sent, ...Object.values(keys)].join(" ")
                const anthropic = request.url?.includes("/messages") === true
                answer(response, { scenario, all, anthropic, stream: parsed.stream === true })
              })
            })
            server.on("connection", (socket) => {
              sockets.add(socket)
              socket.on("close", () => sockets.delete(socket))
            })
            server.listen(0, "127.0.0.1", () => {
              const address = server.address() as Net.AddressInfo
              resolve({ url: `http://127.0.0.1:${address.port}`, server, sockets, seen })
            })
          }
        )
    ),
    ({ server, sockets }) =>
      Effect.promise(
        () =>
          new Promise<void>((resolve) => {
            for (const socket of sockets) socket.destroy()
            server.close(() => resolve())
          })
      )
  )

const answer = (
  response: Http.ServerResponse,
  { all, anthropic, scenario, stream }: { scenario: Scenario; all: string; anthropic: boolean; stream: boolean }
) => {
  const echoed: Record<string, string> = {
    "x-request-id": `req ${all}`,
    "request-id": `req ${all}`,
    "x-ratelimit-remaining-requests": all,
    "anthropic-ratelimit-requests-remaining": all
  }
  const json = (status: number, body: unknown) => {
    response.writeHead(status, { ...echoed, "content-type": "application/json" })
    response.end(JSON.stringify(body))
  }
  const sse = (events: ReadonlyArray<{ readonly event?: string; readonly data: unknown }>) => {
    response.writeHead(200, { ...echoed, "content-type": "text/event-stream" })
    for (const { data, event } of events) {
      response.write(`${event === undefined ? "" : `event: ${event}\n`}data: ${typeof data === "string" ? data : JSON.stringify(data)}\n\n`)
    }
    response.end()
  }
  const errorBody = anthropic
    ? { type: "error", error: { type: all, message: `denied for ${all}` } }
    : { error: { message: `denied for ${all}`, type: all, code: all } }
  switch (scenario) {
    case "answer": {
      const text = `the answer mentions ${all}`
      if (!stream) {
        return json(
          200,
          anthropic
            ? {
                id: all,
                type: "message",
                role: "assistant",
                model: all,
                content: [{ type: "text", text }],
                stop_reason: "end_turn",
                usage: { input_tokens: 3, output_tokens: 4 }
              }
            : {
                id: all,
                object: "chat.completion",
                model: all,
                choices: [{ index: 0, message: { role: "assistant", content: text }, finish_reason: "stop" }],
                usage: { prompt_tokens: 3, completion_tokens: 4, total_tokens: 7 }
              }
        )
      }
      return sse(
        anthropic
          ? [
              {
                event: "message_start",
                data: { type: "message_start", message: { id: all, model: all, usage: { input_tokens: 3, output_tokens: 0 } } }
              },
              { event: "content_block_start", data: { type: "content_block_start", index: 0, content_block: { type: "text", text: "" } } },
              { event: "content_block_delta", data: { type: "content_block_delta", index: 0, delta: { type: "text_delta", text } } },
              { event: "message_delta", data: { type: "message_delta", delta: { stop_reason: "end_turn" }, usage: { output_tokens: 4 } } },
              { event: "message_stop", data: { type: "message_stop" } }
            ]
          : [
              { data: { id: all, model: all, choices: [{ index: 0, delta: { content: text }, finish_reason: null }] } },
              { data: { id: all, model: all, choices: [{ index: 0, delta: {}, finish_reason: "stop" }] } },
              { data: { id: all, model: all, choices: [], usage: { prompt_tokens: 3, completion_tokens: 4, total_tokens: 7 } } },
              { data: "[DONE]" }
            ]
      )
    }
    case "json400":
      return json(400, errorBody)
    case "json429":
      return json(429, errorBody)
    case "text500":
      response.writeHead(500, { ...echoed, "content-type": "text/plain" })
      return response.end(`upstream refused key ${all}`)
    case "html503":
    case "htmlNoTitle": {
      const keys = all.split(" ").map(split).join(" ")
      response.writeHead(503, { ...echoed, "content-type": "text/html" })
      return response.end(
        scenario === "html503"
          ? `<html><head><title>Down for ${keys}</title></head><body><p>key ${keys}</p></body></html>`
          : `<html><body><h1>Down</h1><p>key ${keys}</p></body></html>`
      )
    }
    case "errorInAnswer":
      if (!stream) return json(200, errorBody)
      return sse(
        anthropic
          ? [
              { event: "message_start", data: { type: "message_start", message: { id: all, model: all, usage: { input_tokens: 1 } } } },
              { event: "error", data: errorBody }
            ]
          : [{ data: { id: all, model: all, choices: [{ index: 0, delta: { content: "partial" }, finish_reason: null }] } }, { data: errorBody }]
      )
  }
}

/** Everything a user could see of an error. */
const errorViews = (error: unknown) => [
  String(error),
  JSON.stringify(error),
  Util.inspect(error, { depth: 10, showHidden: true }),
  Cause.pretty(Cause.fail(error))
]

/** The keys (or halves of long ones) that `text` shows, also once markup and spaces are gone. */
const leaksIn = (text: string, keys: ReadonlyArray<string>) => {
  const forms = [text, text.replace(/<[^<>]*>/g, ""), text.replace(/<[^<>]*>|\s+/g, "")]
  const needles = keys.flatMap((key) => (key.length >= 40 ? [key, key.slice(0, 20), key.slice(20)] : [key]))
  return needles.filter((needle) => forms.some((form) => form.includes(needle)))
}

const envFor = (url: string, keys: Readonly<Record<Provider, string>>): Record<string, string> => ({
  OPENAI_API_KEY: keys.openai,
  OPENAI_BASE_URL: `${url}/v1`,
  ANTHROPIC_API_KEY: keys.anthropic,
  ANTHROPIC_BASE_URL: url,
  OPENAI_COMPATIBLE_NAME: "house",
  OPENAI_COMPATIBLE_BASE_URL: `${url}/v1`,
  OPENAI_COMPATIBLE_API_KEY: keys.house,
  OPENAI_COMPATIBLE_MODEL: "house-model",
  LLM_LOG_LEVEL: "debug",
  LLM_LOG_BODIES: "true",
  // One retry of what is retryable, at once: attempt spans and retry metrics get written too.
  LLM_MAX_RETRIES: "1",
  LLM_RETRY_BASE_DELAY_MS: "0",
  LLM_RETRY_MAX_DELAY_MS: "0",
  LLM_CIRCUIT_MODE: "consecutive",
  LLM_CIRCUIT_FAILURE_THRESHOLD: "100000"
})

/**
 * The in-memory exporters, keeping what they were given: shutting the SDK down (when the layer's
 * scope closes, after a flush) empties their own lists.
 */
const keeping = () => {
  const spans: Array<ReadableSpan> = []
  const logs: Array<ReadableLogRecord> = []
  const spanExporter = new InMemorySpanExporter()
  const logExporter = new InMemoryLogRecordExporter()
  const exportSpans = spanExporter.export.bind(spanExporter)
  const exportLogs = logExporter.export.bind(logExporter)
  spanExporter.export = (batch, done) => {
    spans.push(...batch)
    exportSpans(batch, done)
  }
  logExporter.export = (batch, done) => {
    logs.push(...batch)
    exportLogs(batch, done)
  }
  return { spans, logs, spanExporter, logExporter }
}

/** What the observability stack exported: log lines (the program's logger and OTel's), spans, metrics. */
const exported = (lines: ReadonlyArray<string>, spans: ReadonlyArray<ReadableSpan>, logs: ReadonlyArray<ReadableLogRecord>) =>
  Effect.map(Metric.snapshot, (metrics) => ({
    lines,
    spans: spans.map((span) =>
      JSON.stringify({
        name: span.name,
        attributes: span.attributes,
        status: span.status,
        events: span.events.map((event) => ({ name: event.name, attributes: event.attributes })),
        links: span.links
      })
    ),
    logs: logs.map((record) => JSON.stringify({ body: record.body, attributes: record.attributes })),
    labels: metrics.map((pair) => `${pair.metricKey.name} ${pair.metricKey.tags.map((tag) => `${tag.key}=${tag.value}`).join(",")}`)
  }))

const lineOf = (options: Logger.Logger.Options<unknown>) =>
  JSON.stringify({
    level: options.logLevel.label,
    message: options.message,
    annotations: Object.fromEntries(HashMap.toEntries(options.annotations)),
    spans: List.toArray(options.spans).map((span) => span.label),
    cause: Cause.pretty(options.cause)
  })

describe("nothing a provider sends back shows a configured key", () => {
  for (const length of [3, 5, 8, 40]) {
    it.scopedLive(`keys of ${length} characters, through LlmLive, OpenAI, Anthropic and a compatible endpoint`, () =>
      Effect.gen(function* () {
        const keys = keysOf(length)
        const all = Object.values(keys)
        const { seen, url } = yield* serve(keys)
        const { logExporter, logs, spanExporter, spans } = keeping()
        const lines: Array<string> = []
        const errors: Array<unknown> = []
        const answers: Array<LlmRequest.LlmResponse> = []
        const texts: Array<string> = []

        yield* Effect.gen(function* () {
          const llm = yield* LlmLive.make.pipe(Effect.provide(RateLimiter.layerStoreMemory))
          for (const provider of ["openai", "anthropic", "house"] as const) {
            for (const scenario of scenarios) {
              const request: LlmRequest.LlmRequest = { provider, messages: [{ role: "user", content: scenario }] }
              const whole = yield* Effect.exit(llm.complete(request))
              const streamed = yield* Effect.exit(Stream.runCollect(llm.stream(request)))
              const causes = [Exit.causeOption(whole), Exit.causeOption(streamed)].flatMap((cause) => (cause._tag === "Some" ? [cause.value] : []))
              for (const cause of causes) errors.push(...Cause.failures(cause), Cause.pretty(cause))
              if (scenario === "answer") {
                expect(Exit.isSuccess(whole) && Exit.isSuccess(streamed), `${provider} ${scenario}`).toBe(true)
                if (Exit.isSuccess(whole)) {
                  answers.push(whole.value)
                  texts.push(whole.value.content)
                }
                if (Exit.isSuccess(streamed)) {
                  for (const part of streamed.value) {
                    if (part._tag === "TextDelta") texts.push(part.text)
                    else if (part._tag === "Finish") answers.push({ ...part, content: "", toolCalls: [] })
                  }
                }
              } else {
                expect(Exit.isFailure(whole) && Exit.isFailure(streamed), `${provider} ${scenario}`).toBe(true)
              }
            }
          }
        }).pipe(
          Effect.provide(
            NodeSdk.layer(() => ({
              resource: { serviceName: "secrets-test" },
              spanProcessor: new SimpleSpanProcessor(spanExporter),
              logRecordProcessor: new SimpleLogRecordProcessor({ exporter: logExporter })
            }))
          ),
          Effect.provide(Logger.replace(Logger.defaultLogger, Logger.make((options) => void lines.push(lineOf(options))))),
          Logger.withMinimumLogLevel(LogLevel.Debug),
          Effect.withConfigProvider(ConfigProvider.fromMap(new Map(Object.entries(envFor(url, keys)))))
        )

        // The server did get each provider's own key, and did echo every key back.
        expect(new Set(seen)).toEqual(new Set(all))
        // The answer's own text is the caller's, returned as it was sent.
        expect(texts.filter((text) => text.includes(keys.openai))).toHaveLength(6)
        // An answer keeps an id and a model, scrubbed.
        expect(answers).toHaveLength(6)
        for (const answered of answers) {
          expect(leaksIn(`${answered.id} ${answered.model}`, all)).toEqual([])
          expect(answered.id).toContain("[redacted]")
        }

        const found = yield* exported(lines, spans, logs)
        // The search means something only if the stack wrote plenty, with bodies and provider fields.
        expect(found.lines.filter((line) => line.includes("llm call"))).toHaveLength(3 * scenarios.length * 2)
        expect(found.lines.some((line) => line.includes("response_body"))).toBe(true)
        expect(found.lines.some((line) => line.includes("request_id"))).toBe(true)
        expect(found.spans.some((span) => span.includes("gen_ai.response.id"))).toBe(true)
        expect(found.spans.some((span) => span.includes("exception.type"))).toBe(true)
        expect(found.logs.length).toBeGreaterThanOrEqual(found.lines.filter((line) => line.includes("llm ")).length)
        expect(errors.length).toBeGreaterThan(3 * (scenarios.length - 1) * 2)

        const groups: Record<string, ReadonlyArray<string>> = {
          errors: errors.flatMap(errorViews),
          lines: found.lines,
          spans: found.spans,
          logRecords: found.logs,
          metricLabels: found.labels
        }
        for (const [where, texts] of Object.entries(groups)) {
          for (const text of texts) expect(leaksIn(text, all), `${where}: ${text.slice(0, 2_000)}`).toEqual([])
        }
      })
    )
  }
})

/** A Redis that refuses every command, repeating the password it was sent in its error. */
const refusingRedis = Effect.acquireRelease(
  Effect.promise(
    () =>
      new Promise<{ readonly server: Net.Server; readonly port: number; readonly commands: Array<string> }>((resolve) => {
        const commands: Array<string> = []
        const server = Net.createServer((socket) => {
          socket.setEncoding("utf8")
          socket.on("data", (data: string) => {
            commands.push(data)
            // RESP arrays: `*3 $4 AUTH $7 default $N password`, maybe followed by other commands.
            const parts = data.split("\r\n").filter((part) => part !== "" && !/^[*$]/.test(part))
            const auth = parts.findIndex((part) => part.toUpperCase() === "AUTH")
            const password = auth === -1 ? "?" : parts[auth + 2]
            socket.write(`-WRONGPASS invalid username-password pair, password ${password} refused\r\n`)
          })
          socket.on("error", () => undefined)
        })
        server.listen(0, "127.0.0.1", () => resolve({ server, port: (server.address() as Net.AddressInfo).port, commands }))
      })
  ),
  ({ server }) => Effect.promise(() => new Promise<void>((resolve) => server.close(() => resolve())))
)

describe("the password of REDIS_URL", () => {
  it.scopedLive("appears in no log line, error or span, even when Redis repeats it", () =>
    Effect.gen(function* () {
      const password = "Pw5hunter2"
      const keys = keysOf(40)
      const { url } = yield* serve(keys)
      const redis = yield* refusingRedis
      const { logExporter, logs, spanExporter, spans } = keeping()
      const lines: Array<string> = []
      const errors: Array<unknown> = []
      yield* Effect.gen(function* () {
        const llm = yield* LlmLive.make.pipe(Effect.provide(RateLimitStore.layerConfig))
        for (const scenario of ["answer", "json400"]) {
          const exit = yield* Effect.exit(llm.complete({ provider: "openai", messages: [{ role: "user", content: scenario }] }))
          if (Exit.isFailure(exit)) errors.push(...Cause.failures(exit.cause), Cause.pretty(exit.cause))
        }
      }).pipe(
        Effect.scoped,
        Effect.provide(
          NodeSdk.layer(() => ({
            resource: { serviceName: "secrets-test" },
            spanProcessor: new SimpleSpanProcessor(spanExporter),
            logRecordProcessor: new SimpleLogRecordProcessor({ exporter: logExporter })
          }))
        ),
        Effect.provide(Logger.replace(Logger.defaultLogger, Logger.make((options) => void lines.push(lineOf(options))))),
        Logger.withMinimumLogLevel(LogLevel.Debug),
        Effect.withConfigProvider(
          ConfigProvider.fromMap(
            new Map(
              Object.entries({
                ...envFor(url, keys),
                LLM_RATE_LIMIT_STORE: "redis",
                REDIS_URL: `redis://default:${password}@127.0.0.1:${redis.port}/0`,
                LLM_RATE_LIMIT_REDIS_TIMEOUT_MS: "200",
                LLM_RATE_LIMIT_RPM: "600"
              })
            )
          )
        )
      )
      // Redis was sent the password and repeated it; the store then limited locally and said why.
      expect(redis.commands.some((command) => command.includes(password))).toBe(true)
      const warning = lines.find((line) => line.includes("Rate limit store unreachable"))
      expect(warning).toContain("WRONGPASS")
      expect(warning).toContain("[redacted]")
      expect(errors.length).toBeGreaterThan(0)

      const found = yield* exported(lines, spans, logs)
      expect(found.logs.length).toBeGreaterThan(0)
      for (const text of [...errors.flatMap(errorViews), ...found.lines, ...found.spans, ...found.logs, ...found.labels]) {
        expect(leaksIn(text, [password, ...Object.values(keys)]), text.slice(0, 2_000)).toEqual([])
      }
    })
  )
})
