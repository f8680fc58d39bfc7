/**
 * A local provider simulator: a real HTTP server on loopback that speaks the OpenAI chat
 * completions API (`POST /v1/chat/completions`), the Anthropic messages API (`POST /v1/messages`)
 * and `GET /v1/models`, as JSON and as SSE, in the wire formats the official SDKs read.
 *
 * Without scripts it answers every request by echoing the last user message, with plausible
 * usage. Tests script the next answers per route (errors, headers, delays, dropped connections,
 * malformed bodies, recorded provider responses), inspect the recorded requests, count attempts
 * and open connections. Options add seeded random faults and requests/tokens-per-window limits.
 *
 * The server runs on its own Effect runtime, so its delays are real time even when `make` is
 * called from an `it.effect` test under `TestClock`; its lifetime is still the caller's `Scope`.
 *
 * @example
 * import { Effect } from "effect"
 * import OpenAI from "openai"
 * import * as Simulator from "./Simulator.js"
 *
 * const program = Effect.scoped(
 *   Effect.gen(function* () {
 *     const sim = yield* Simulator.make()
 *     sim.enqueue("openai", { status: 429, headers: { "retry-after": "1" } }, { text: "hello" })
 *     const client = new OpenAI({ apiKey: "sk-test", baseURL: sim.url + "/v1", maxRetries: 1 })
 *     const answer = yield* Effect.promise(() =>
 *       client.chat.completions.create({ model: "gpt-4o-mini", messages: [{ role: "user", content: "hi" }] })
 *     )
 *     return [answer.choices[0]?.message.content, sim.attempts("openai")]
 *   })
 * )
 *
 * @since 0.1.0
 */
import { HttpServerRequest, HttpServerResponse } from "@effect/platform"
import type { HttpServerError } from "@effect/platform"
import { NodeHttpServer, NodeHttpServerRequest } from "@effect/platform-node"
import { Clock, Duration, Effect, Exit, Scope } from "effect"
import { readFile } from "node:fs/promises"
import * as Http from "node:http"
import type * as Net from "node:net"
import * as Path from "node:path"
import { hash32, mulberry32 } from "./internal/random.js"
import { type Decision, makeLimiter, type WindowCount } from "./internal/window.js"
import * as Structured from "./internal/structured.js"
import * as Wire from "./internal/wire.js"

/**
 * The two chat routes a script can target.
 *
 * @example
 * import type { Simulator } from "./Simulator.js"
 *
 * const route: Simulator.Route = "anthropic"
 *
 * @since 0.1.0
 * @category Models
 */
export type Route = Wire.Route

/**
 * One scripted answer. Every field is optional; an empty script is a normal echo answer.
 * Behaviour fields (`hang`, `destroyBeforeHeaders`) win over body fields; among body fields the
 * first present of `replay`, `malformed`, `chunks`, `body`, `text` decides the answer.
 *
 * @example
 * import type { Simulator } from "./Simulator.js"
 *
 * const overloaded: Simulator.Script = { status: 529, headers: { "retry-after": "2" } }
 * const slowStream: Simulator.Script = { text: "one two three", delayBetweenChunksMs: 20, closeAfterChunks: 3 }
 *
 * @since 0.1.0
 * @category Models
 */
export interface Script {
  /** HTTP status. Defaults to 200; with status >= 400 and no `body`, a provider-shaped error body. */
  readonly status?: number
  /** Extra response headers (retry-after, retry-after-ms, x-should-retry, rate-limit headers...). */
  readonly headers?: Readonly<Record<string, string>>
  /** Response body: an object is sent as JSON, a string as is (with `content-type: application/json`). */
  readonly body?: unknown
  /** SSE payloads (JSON strings or objects), framed per route and followed by `[DONE]` on OpenAI. */
  readonly chunks?: ReadonlyArray<unknown>
  /** A normal answer with this text, as JSON or SSE as the request's `stream` asks. */
  readonly text?: string
  /**
   * Tool calls the answer makes (after its text), in each wire format: OpenAI `tool_calls` (streamed
   * as an id-and-name delta and argument fragments) or Anthropic `tool_use` blocks. `id` defaults to
   * `call_sim<n>_<i>`; `argumentsText` to `arguments` as JSON (give it to send broken JSON).
   */
  readonly toolCalls?: ReadonlyArray<{
    readonly id?: string
    readonly name: string
    readonly arguments?: unknown
    readonly argumentsText?: string
  }>
  /** Reasoning before the answer: `reasoning_content` on OpenAI, a signed `thinking` block on Anthropic. */
  readonly reasoning?: string
  /** The signature of the Anthropic thinking block (default `sim-signature`). */
  readonly signature?: string
  /** A refusal: OpenAI `content: null` with `refusal`, Anthropic `stop_reason: "refusal"` with `stop_details`. */
  readonly refusal?: string
  /** Usage reported with a `text` or default answer; missing counts are estimated. */
  readonly usage?: { readonly inputTokens?: number; readonly outputTokens?: number }
  /** Real-time delay before the status line and headers are sent. */
  readonly delayBeforeHeadersMs?: number
  /** Real-time delay between two SSE frames. */
  readonly delayBetweenChunksMs?: number
  /** Never answer; the request stays open until the client or the simulator closes it. */
  readonly hang?: boolean
  /** Send headers and the first `n` frames (a JSON body is one frame), then never send more. */
  readonly hangAfterChunks?: number
  /** Send headers and the first `n` frames (a JSON body is one frame), then destroy the socket. */
  readonly closeAfterChunks?: number
  /** Reset the connection before any byte of the response is sent. */
  readonly destroyBeforeHeaders?: boolean
  /** Answer 200 with a truncated JSON body (`"json"`) or an SSE stream with a broken frame (`"sse"`). */
  readonly malformed?: "json" | "sse"
  /**
   * Path (absolute, or relative to the working directory) of a recorded response: `*.json` is sent
   * as the body (status 400 when it holds an `error`), `*.chunks.txt` as one SSE frame per line.
   */
  readonly replay?: string
}

/**
 * A request as the simulator received it; credential headers are redacted.
 *
 * @example
 * import type { Simulator } from "./Simulator.js"
 *
 * const modelOf = (request: Simulator.RecordedRequest) =>
 *   typeof request.body === "object" && request.body !== null && "model" in request.body ? request.body.model : undefined
 *
 * @since 0.1.0
 * @category Models
 */
export interface RecordedRequest {
  readonly route: Route | "models" | "unknown"
  readonly method: string
  readonly path: string
  readonly headers: Readonly<Record<string, string>>
  /** The parsed JSON body, the raw text when it is not JSON, `undefined` when empty. */
  readonly body: unknown
}

/**
 * Kinds of random faults.
 *
 * @example
 * import type { Simulator } from "./Simulator.js"
 *
 * const faults: ReadonlyArray<Simulator.FaultKind> = ["429", "503", "reset"]
 *
 * @since 0.1.0
 * @category Models
 */
export type FaultKind = "429" | "500" | "502" | "503" | "529" | "reset" | "hang" | "stream-drop"

/**
 * Every fault kind, the default set for `faultRate`.
 *
 * @example
 * import * as Simulator from "./Simulator.js"
 *
 * console.log(Simulator.allFaults.length)
 *
 * @since 0.1.0
 * @category Constants
 */
export const allFaults: ReadonlyArray<FaultKind> = ["429", "500", "502", "503", "529", "reset", "hang", "stream-drop"]

/**
 * Options for `make` and `start`.
 *
 * @example
 * import type { Simulator } from "./Simulator.js"
 *
 * const chaos: Simulator.Options = { faultRate: 0.1, faults: ["429", "503"], seed: 7, rpm: 60 }
 *
 * @since 0.1.0
 * @category Models
 */
export interface Options {
  /** TCP port; 0 (the default) picks a free one. */
  readonly port?: number
  /** Interface to listen on; defaults to 127.0.0.1. */
  readonly host?: string
  /** Probability (0..1) that an unscripted chat request gets a random fault. */
  readonly faultRate?: number
  /** Faults to draw from; defaults to `allFaults`. */
  readonly faults?: ReadonlyArray<FaultKind>
  /** Seed of the fault generator; the same seed gives the same faults in the same order. */
  readonly seed?: number
  /**
   * How faults are drawn: `"arrival"` (the default) from one sequence in the order requests arrive;
   * `"content"` from the seed, the last user message and how often that message was sent before,
   * so each distinct call meets the same faults on its attempts however calls interleave.
   */
  readonly faultsBy?: "arrival" | "content"
  /** Chat requests accepted per window; more are answered 429 with `retry-after`. */
  readonly rpm?: number
  /** Tokens accepted per window (estimated prompt tokens plus `max_tokens`); more are answered 429. */
  readonly tpm?: number
  /** Length of the limit window in milliseconds; defaults to 60000. */
  readonly windowMs?: number
}

/**
 * A running simulator.
 *
 * @example
 * import { Effect } from "effect"
 * import * as Simulator from "./Simulator.js"
 *
 * const attempts = Effect.scoped(
 *   Effect.gen(function* () {
 *     const sim: Simulator.Simulator = yield* Simulator.make()
 *     yield* Effect.promise(() => fetch(sim.url + "/v1/models"))
 *     return sim.requests().length
 *   })
 * )
 *
 * @since 0.1.0
 * @category Models
 */
export interface Simulator {
  /** `http://127.0.0.1:PORT` (or the `host` option); OpenAI clients use `url + "/v1"`, Anthropic clients `url`. */
  readonly url: string
  /** Queues scripts for the next requests on a route, answered in order. */
  readonly enqueue: (route: Route, ...scripts: ReadonlyArray<Script>) => void
  /** Every request received so far, oldest first. */
  readonly requests: () => ReadonlyArray<RecordedRequest>
  /** Chat requests received on a route, or on both routes when none is given. */
  readonly attempts: (route?: Route) => number
  /** Sockets currently open on the server. */
  readonly openConnections: () => number
  /** Requests accepted and rejected per limit window, oldest first. */
  readonly windows: () => ReadonlyArray<WindowCount>
  /** Forgets scripts, recorded requests, attempts and limit windows; restarts the fault sequence. */
  readonly reset: () => void
}

/**
 * A simulator started outside Effect, with a `close` that ends open responses and frees the port.
 *
 * @example
 * import * as Simulator from "./Simulator.js"
 *
 * const sim: Simulator.Started = await Simulator.start()
 * await sim.close()
 *
 * @since 0.1.0
 * @category Models
 */
export interface Started extends Simulator {
  readonly close: () => Promise<void>
}

type Raw = {
  readonly request: Http.IncomingMessage
  readonly response: Http.ServerResponse
}

const redacted = new Set(["authorization", "x-api-key", "api-key"])

const routeOf = (method: string, path: string): RecordedRequest["route"] => {
  if (method === "POST" && (path === "/v1/chat/completions" || path === "/chat/completions")) return "openai"
  if (method === "POST" && (path === "/v1/messages" || path === "/messages")) return "anthropic"
  if (method === "GET" && (path === "/v1/models" || path === "/models")) return "models"
  return "unknown"
}

const jsonHeaders = { "content-type": "application/json" }
const sseHeaders = { "content-type": "text/event-stream; charset=utf-8", "cache-control": "no-cache" }

/** Writes one piece and waits until it was handed to the socket; an aborted socket interrupts. */
const write = (raw: Raw, text: string) =>
  Effect.async<void>((resume) => {
    raw.response.write(text, (error) => resume(error ? Effect.interrupt : Effect.void))
  })

const destroy = (raw: Raw) =>
  Effect.zipRight(
    Effect.sync(() => raw.request.socket.destroy()),
    Effect.never
  )

const reset = (raw: Raw) =>
  Effect.zipRight(
    Effect.sync(() => raw.request.socket.resetAndDestroy()),
    Effect.never
  )

const sleepMs = (ms: number | undefined) => (ms !== undefined && ms > 0 ? Effect.sleep(Duration.millis(ms)) : Effect.void)

/**
 * Sends a response frame by frame on the raw Node response, so it can stop, hang or drop the
 * connection at an exact frame.
 */
const sendFrames = (
  raw: Raw,
  options: {
    readonly status: number
    readonly headers: Record<string, string>
    readonly frames: ReadonlyArray<string>
    readonly delayMs: number | undefined
    readonly hangAfter: number | undefined
    readonly closeAfter: number | undefined
  }
) =>
  Effect.gen(function* () {
    raw.response.writeHead(options.status, options.headers)
    raw.response.flushHeaders()
    for (let i = 0; i < options.frames.length; i++) {
      if (options.closeAfter !== undefined && i >= options.closeAfter) return yield* destroy(raw)
      if (options.hangAfter !== undefined && i >= options.hangAfter) return yield* Effect.never
      if (i > 0) yield* sleepMs(options.delayMs)
      yield* write(raw, options.frames[i]!)
    }
    if (options.closeAfter !== undefined && options.frames.length >= options.closeAfter) return yield* destroy(raw)
    if (options.hangAfter !== undefined) return yield* Effect.never
    yield* Effect.async<void>((resume) => {
      raw.response.end(() => resume(Effect.void))
    })
    return HttpServerResponse.empty()
  })

type Body =
  | { readonly _tag: "Json"; readonly status: number; readonly text: string }
  | { readonly _tag: "Sse"; readonly status: number; readonly frames: ReadonlyArray<string> }

const parseJsonOrText = (text: string): unknown => {
  if (text.length === 0) return undefined
  const parsed = Wire.safeParse(text)
  return parsed === undefined ? text : parsed
}

const replayBody = (route: Route, path: string, status: number | undefined) =>
  Effect.tryPromise(() => readFile(Path.resolve(path), "utf8")).pipe(
    Effect.map((content): Body => {
      if (path.endsWith(".chunks.txt")) {
        const lines = content.split(/\r?\n/).filter((line) => line.trim() !== "")
        return {
          _tag: "Sse",
          status: status ?? 200,
          frames: [...lines.map((line) => Wire.frame(route, line)), ...Wire.terminator(route)]
        }
      }
      const parsed = Wire.safeParse(content)
      const isError = typeof parsed === "object" && parsed !== null && "error" in parsed
      return { _tag: "Json", status: status ?? (isError ? 400 : 200), text: content }
    }),
    Effect.orElseSucceed(
      (): Body => ({
        _tag: "Json",
        status: 500,
        text: JSON.stringify(Wire.errorBody(route, 500, `simulator: cannot read replay file ${path}`))
      })
    )
  )

const malformedBody = (route: Route, kind: "json" | "sse", answer: Wire.Answer): Body => {
  if (kind === "json") {
    const whole = JSON.stringify(route === "openai" ? Wire.openAiCompletion(answer) : Wire.anthropicMessage(answer))
    return { _tag: "Json", status: 200, text: whole.slice(0, Math.floor(whole.length / 2)) }
  }
  const first = route === "openai" ? Wire.openAiChunks(answer, {})[0] : Wire.anthropicEvents(answer)[0]
  const broken = route === "openai" ? "data: {\"id\":\"broken\",\"choices\":[{\n\n" : "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\n\n"
  return { _tag: "Sse", status: 200, frames: [Wire.frame(route, first), broken, ...Wire.terminator(route)] }
}

const textBody = (route: Route, requestBody: unknown, answer: Wire.Answer, status: number): Body => {
  if (Wire.wantsStream(requestBody)) {
    const payloads = route === "openai" ? Wire.openAiChunks(answer, requestBody) : Wire.anthropicEvents(answer)
    return { _tag: "Sse", status, frames: [...payloads.map((p) => Wire.frame(route, p)), ...Wire.terminator(route)] }
  }
  return {
    _tag: "Json",
    status,
    text: JSON.stringify(route === "openai" ? Wire.openAiCompletion(answer) : Wire.anthropicMessage(answer))
  }
}

const bodyOf = (route: Route, script: Script, requestBody: unknown, answer: Wire.Answer): Effect.Effect<Body> => {
  if (script.replay !== undefined) return replayBody(route, script.replay, script.status)
  if (script.malformed !== undefined) return Effect.succeed(malformedBody(route, script.malformed, answer))
  if (script.chunks !== undefined) {
    return Effect.succeed({
      _tag: "Sse",
      status: script.status ?? 200,
      frames: [...script.chunks.map((c) => Wire.frame(route, c)), ...Wire.terminator(route)]
    })
  }
  const status = script.status ?? 200
  if (script.body !== undefined) {
    return Effect.succeed({
      _tag: "Json",
      status,
      text: typeof script.body === "string" ? script.body : JSON.stringify(script.body)
    })
  }
  if (status >= 400) return Effect.succeed({ _tag: "Json", status, text: JSON.stringify(Wire.errorBody(route, status)) })
  return Effect.succeed(textBody(route, requestBody, answer, status))
}

const faultScript = (fault: FaultKind): Script => {
  switch (fault) {
    case "429":
      return { status: 429, headers: { "retry-after": "1", "retry-after-ms": "1000" } }
    case "500":
    case "502":
    case "503":
    case "529":
      return { status: Number(fault) }
    case "reset":
      return { destroyBeforeHeaders: true }
    case "hang":
      return { hang: true }
    case "stream-drop":
      return { closeAfterChunks: 0 }
  }
}

/**
 * Starts the server inside the given scope, on the runtime that runs this effect. `make` and
 * `start` run it on a fresh default runtime so that its clock is the real one.
 */
const serve = (options: Options): Effect.Effect<Started, HttpServerError.ServeError, Scope.Scope> =>
  Effect.gen(function* () {
    const sockets = new Set<Net.Socket>()
    const node = Http.createServer()
    node.on("connection", (socket) => {
      sockets.add(socket)
      socket.on("close", () => sockets.delete(socket))
    })
    const server = yield* NodeHttpServer.make(() => node, { port: options.port ?? 0, host: options.host ?? "127.0.0.1" })
    // Runs before the server's own close, which would otherwise wait for hanging responses.
    yield* Effect.addFinalizer(() =>
      Effect.sync(() => {
        for (const socket of sockets) socket.destroy()
        node.closeAllConnections()
      })
    )

    const queues: Record<Route, Array<Script>> = { openai: [], anthropic: [] }
    let recorded: Array<RecordedRequest> = []
    const counts: Record<Route, number> = { openai: 0, anthropic: 0 }
    let sequence = 0
    const seed = options.seed ?? 1
    let random = mulberry32(seed)
    const faultRate = options.faultRate ?? 0
    const faults = options.faults !== undefined && options.faults.length > 0 ? options.faults : allFaults
    const limiter = makeLimiter({ rpm: options.rpm, tpm: options.tpm, windowMs: options.windowMs ?? 60_000 })

    const sentBefore = new Map<string, number>()
    const drawFault = (requestBody: unknown): FaultKind | undefined => {
      if (faultRate <= 0) return undefined
      let next = random
      if (options.faultsBy === "content") {
        const text = Wire.lastUserText(requestBody)
        const attempt = sentBefore.get(text) ?? 0
        sentBefore.set(text, attempt + 1)
        next = mulberry32(hash32(`${seed}:${attempt}:${text}`))
      }
      if (next() >= faultRate) return undefined
      return faults[Math.floor(next() * faults.length)]
    }

    const limitHeaders = (route: Route, { remainingRequests, remainingTokens, resetMs }: Decision) => {
      const headers: Record<string, string> = {}
      const resetSeconds = `${Math.ceil(resetMs / 1000)}s`
      const resetAt = new Date(Date.now() + resetMs).toISOString()
      if (limiter.rpm !== undefined) {
        if (route === "openai") {
          headers["x-ratelimit-limit-requests"] = String(limiter.rpm)
          headers["x-ratelimit-remaining-requests"] = String(remainingRequests)
          headers["x-ratelimit-reset-requests"] = resetSeconds
        } else {
          headers["anthropic-ratelimit-requests-limit"] = String(limiter.rpm)
          headers["anthropic-ratelimit-requests-remaining"] = String(remainingRequests)
          headers["anthropic-ratelimit-requests-reset"] = resetAt
        }
      }
      if (limiter.tpm !== undefined) {
        if (route === "openai") {
          headers["x-ratelimit-limit-tokens"] = String(limiter.tpm)
          headers["x-ratelimit-remaining-tokens"] = String(remainingTokens)
          headers["x-ratelimit-reset-tokens"] = resetSeconds
        } else {
          headers["anthropic-ratelimit-tokens-limit"] = String(limiter.tpm)
          headers["anthropic-ratelimit-tokens-remaining"] = String(remainingTokens)
          headers["anthropic-ratelimit-tokens-reset"] = resetAt
        }
      }
      return headers
    }

    const answerChat = (route: Route, requestBody: unknown, raw: Raw) =>
      Effect.gen(function* () {
        counts[route]++
        const n = ++sequence
        const now = yield* Clock.currentTimeMillis
        const baseHeaders: Record<string, string> = { [Wire.requestIdHeader(route)]: `req_sim_${n}` }

        const decision = limiter.check(Wire.promptTokens(requestBody) + Wire.maxOutputTokens(requestBody), now)
        Object.assign(baseHeaders, limitHeaders(route, decision))
        if (!decision.accepted) {
          const retryAfterMs = Math.max(1, decision.resetMs)
          return HttpServerResponse.text(
            JSON.stringify(Wire.errorBody(route, 429, `Rate limit reached: ${decision.reason} per window exceeded.`)),
            {
              status: 429,
              contentType: "application/json",
              headers: {
                ...baseHeaders,
                "retry-after": String(Math.ceil(retryAfterMs / 1000)),
                "retry-after-ms": String(retryAfterMs)
              }
            }
          )
        }

        const script = queues[route].shift() ?? (() => {
          const fault = drawFault(requestBody)
          return fault === undefined ? {} : faultScript(fault)
        })()

        yield* sleepMs(script.delayBeforeHeadersMs)
        if (script.hang === true) return yield* Effect.never
        if (script.destroyBeforeHeaders === true) return yield* reset(raw)

        const beyondText = script.toolCalls !== undefined || script.refusal !== undefined
        const structured = beyondText || script.reasoning !== undefined ? undefined : Structured.wanted(route, requestBody)
        const text =
          script.text ??
          (structured !== undefined
            ? JSON.stringify(Structured.generate(structured.schema))
            : beyondText
              ? ""
              : Wire.lastUserText(requestBody))
        const answer: Wire.Answer = {
          tool: structured?.tool,
          json: structured !== undefined,
          id: route === "openai" ? `chatcmpl-sim${n}` : `msg_sim${n}`,
          model: Wire.requestedModel(route, requestBody),
          text,
          created: Math.floor(now / 1000),
          ...(script.toolCalls !== undefined
            ? {
                toolCalls: script.toolCalls.map((call, i) => ({
                  id: call.id ?? (route === "openai" ? `call_sim${n}_${i}` : `toolu_sim${n}_${i}`),
                  name: call.name,
                  argumentsText: call.argumentsText ?? JSON.stringify(call.arguments ?? {})
                }))
              }
            : {}),
          ...(script.reasoning !== undefined ? { reasoning: script.reasoning } : {}),
          ...(script.signature !== undefined ? { signature: script.signature } : {}),
          ...(script.refusal !== undefined ? { refusal: script.refusal } : {}),
          usage: {
            inputTokens: script.usage?.inputTokens ?? Wire.promptTokens(requestBody),
            outputTokens: script.usage?.outputTokens ?? Math.max(1, Wire.estimateTokens(text))
          }
        }
        const body = yield* bodyOf(route, script, requestBody, answer)
        const headers = { ...baseHeaders, ...(body._tag === "Json" ? jsonHeaders : sseHeaders), ...script.headers }
        const cut = script.closeAfterChunks !== undefined || script.hangAfterChunks !== undefined
        if (body._tag === "Json" && !cut) {
          return HttpServerResponse.text(body.text, { status: body.status, headers, contentType: headers["content-type"] })
        }
        return yield* sendFrames(raw, {
          status: body.status,
          headers,
          frames: body._tag === "Json" ? [body.text] : body.frames,
          delayMs: script.delayBetweenChunksMs,
          hangAfter: script.hangAfterChunks,
          closeAfter: script.closeAfterChunks
        })
      })

    const models = (anthropic: boolean) =>
      anthropic
        ? {
            data: ["sim-claude"].map((id) => ({
              type: "model",
              id,
              display_name: "Simulated Claude",
              created_at: "2025-01-01T00:00:00Z"
            })),
            has_more: false,
            first_id: "sim-claude",
            last_id: "sim-claude"
          }
        : {
            object: "list",
            data: ["sim-gpt"].map((id) => ({ id, object: "model", created: 1735689600, owned_by: "simulator" }))
          }

    const app = Effect.gen(function* () {
      const request = yield* HttpServerRequest.HttpServerRequest
      const raw: Raw = {
        request: NodeHttpServerRequest.toIncomingMessage(request),
        response: NodeHttpServerRequest.toServerResponse(request)
      }
      const path = request.url.split("?")[0] ?? "/"
      const route = routeOf(request.method, path)
      const text = yield* Effect.orElseSucceed(request.text, () => "")
      const body = parseJsonOrText(text)
      const headers: Record<string, string> = {}
      for (const [name, value] of Object.entries(request.headers)) {
        headers[name] = redacted.has(name) ? "<redacted>" : value
      }
      recorded.push({ route, method: request.method, path, headers, body })

      if (route === "models") {
        return HttpServerResponse.unsafeJson(models("anthropic-version" in headers))
      }
      if (route === "unknown") {
        return HttpServerResponse.unsafeJson(Wire.errorBody("openai", 404, `simulator: no route for ${request.method} ${path}`), {
          status: 404
        })
      }
      if (text.length > 0 && typeof body === "string") {
        return HttpServerResponse.unsafeJson(Wire.errorBody(route, 400, "The request body is not valid JSON."), { status: 400 })
      }
      return yield* answerChat(route, body, raw)
    })

    yield* server.serve(app)

    const address = server.address
    const port = address._tag === "TcpAddress" ? address.port : 0
    const host = options.host ?? "127.0.0.1"
    const urlHost = host === "0.0.0.0" || host === "::" ? "127.0.0.1" : host.includes(":") ? `[${host}]` : host
    return {
      url: `http://${urlHost}:${port}`,
      enqueue: (route, ...scripts) => {
        queues[route].push(...scripts)
      },
      requests: () => [...recorded],
      attempts: (route) => (route === undefined ? counts.openai + counts.anthropic : counts[route]),
      openConnections: () => sockets.size,
      windows: () => limiter.windows(),
      reset: () => {
        queues.openai = []
        queues.anthropic = []
        recorded = []
        counts.openai = 0
        counts.anthropic = 0
        random = mulberry32(seed)
        sentBefore.clear()
        limiter.reset()
      },
      close: () => Promise.resolve()
    } satisfies Started
  })

/**
 * Starts a simulator for callers outside Effect (scripts, benchmarks, other test runners).
 * Rejects when the port cannot be bound.
 *
 * @example
 * import * as Simulator from "./Simulator.js"
 *
 * const sim = await Simulator.start({ port: 8787 })
 * console.log(sim.url)
 * await sim.close()
 *
 * @since 0.1.0
 * @category Constructors
 */
export const start = async (options: Options = {}): Promise<Started> => {
  const scope = Effect.runSync(Scope.make())
  const exit = await Effect.runPromiseExit(Scope.extend(serve(options), scope))
  if (Exit.isFailure(exit)) {
    await Effect.runPromise(Scope.close(scope, exit))
    const where = `${options.host ?? "127.0.0.1"}:${options.port ?? 0}`
    throw new Error(`simulator: cannot listen on ${where}`, { cause: exit.cause })
  }
  let closing: Promise<void> | undefined
  return {
    ...exit.value,
    close: () => (closing ??= Effect.runPromise(Scope.close(scope, Exit.void)))
  }
}

/**
 * Starts a simulator for the lifetime of the current `Scope`: closing the scope ends every open
 * response and frees the port. The server keeps real time even under `TestClock`. A port that
 * cannot be bound is a defect: the simulator is a development tool, not a failure to recover from.
 *
 * @example
 * import { Effect } from "effect"
 * import * as Simulator from "./Simulator.js"
 *
 * const program = Effect.scoped(
 *   Effect.gen(function* () {
 *     const sim = yield* Simulator.make({ seed: 42 })
 *     sim.enqueue("anthropic", { text: "scripted" })
 *     return sim.url
 *   })
 * )
 *
 * @since 0.1.0
 * @category Constructors
 */
export const make = (options: Options = {}): Effect.Effect<Simulator, never, Scope.Scope> =>
  Effect.acquireRelease(
    Effect.promise(() => start(options)),
    (sim) => Effect.promise(() => sim.close())
  ).pipe(
    Effect.map(({ close: _close, ...sim }): Simulator => sim)
  )
