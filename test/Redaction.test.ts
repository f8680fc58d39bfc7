/**
 * No key may surface anywhere the observability layers write: log lines (message, fields, cause),
 * span names, attributes and end states, metric names and tags, and the errors callers receive.
 * Calls run through the real providers against the simulator on loopback, with known keys.
 */
import { describe, expect, it } from "@effect/vitest"
import {
  Cause,
  ConfigProvider,
  Duration,
  Effect,
  Either,
  HashMap,
  Logger,
  LogLevel,
  Metric,
  Option,
  Redacted,
  Stream
} from "effect"
import * as Simulator from "../simulator/Simulator.js"
import * as Anthropic from "../src/Anthropic.js"
import * as Llm from "../src/Llm.js"
import * as Redaction from "../src/internal/redaction.js"
import { ConnectionError, InvalidRequestError, type LlmError } from "../src/LlmError.js"
import type * as LlmRequest from "../src/LlmRequest.js"
import * as Logging from "../src/Logging.js"
import * as OpenAi from "../src/OpenAi.js"
import * as OpenAiCompatible from "../src/OpenAiCompatible.js"
import * as Retry from "../src/Retry.js"
import * as Tracing from "../src/Tracing.js"
import * as Usage from "../src/Usage.js"
import { recording } from "./recordingTracer.js"

// One key shaped like OpenAI's, one with no recognisable shape (only scrubbed because it is known).
const openAiKey = "sk-proj-REDACTIONtest0123456789abcdef"
const plainKey = "PLAINsecretVALUE-4242-zyxw"

const request = (metadata: Record<string, string> = {}): LlmRequest.LlmRequest => ({
  model: "gpt-4o-mini",
  messages: [{ role: "user", content: "hello there" }],
  metadata: { agent: "judge", ...metadata }
})

/** Everything the observability layers wrote, as text to search. */
const observed = Effect.gen(function* () {
  const lines: Array<string> = []
  const logger = Logger.make(({ annotations, cause, logLevel, message }) => {
    lines.push(
      [logLevel.label, JSON.stringify(message), JSON.stringify(Object.fromEntries(HashMap.toEntries(annotations))), Cause.pretty(cause)].join(" ")
    )
  })
  const { spans, tracer } = yield* recording
  const run = <A, E, R>(effect: Effect.Effect<A, E, R>) =>
    effect.pipe(
      Effect.withTracer(tracer),
      Effect.provide(Logger.replace(Logger.defaultLogger, logger)),
      Logger.withMinimumLogLevel(LogLevel.All)
    )
  const spanText = () =>
    spans
      .map((span) =>
        [
          span.name,
          JSON.stringify(Object.fromEntries(span.attributes)),
          span.status._tag === "Ended" && span.status.exit._tag === "Failure" ? Cause.pretty(span.status.exit.cause) : ""
        ].join(" ")
      )
      .join("\n")
  const metricText = Effect.map(Metric.snapshot, (pairs) =>
    pairs.map((pair) => `${pair.metricKey.name} ${pair.metricKey.tags.map((tag) => `${tag.key}=${tag.value}`).join(",")}`).join("\n")
  )
  return { lines, spans, run, spanText, metricText }
})

/** Every observability policy, at the call and at the attempt level, around a provider. */
const instrumented = (provider: Llm.Provider, secrets: ReadonlyArray<Redacted.Redacted<string>>) =>
  Effect.map(
    Effect.all([
      Tracing.make({ secrets }),
      Logging.make({ bodies: true, secrets }),
      Retry.make({ maxRetries: 1, base: Duration.millis(1) }),
      Tracing.make({ level: "attempt", secrets }),
      Logging.make({ level: "attempt", secrets }),
      Usage.make()
    ]),
    (policies) => Llm.router({ providers: [provider], policies })
  )

const errorText = (error: LlmError) => `${String(error)}\n${error.message}\n${error.stack ?? ""}\n${JSON.stringify(error)}`

const failureOf = <A>(effect: Effect.Effect<A, LlmError>) =>
  Effect.flatMap(Effect.either(effect), (result) =>
    Either.isLeft(result) ? Effect.succeed(result.left) : Effect.dieMessage("expected a failure")
  )

describe("Redaction of a known OpenAI key over real HTTP", () => {
  it.scopedLive("no log line, span, metric tag or error shows the key, whatever the provider answers", () =>
    Effect.gen(function* () {
      const sim = yield* Simulator.make()
      const provider = yield* OpenAi.make({ apiKey: Redacted.make(openAiKey), baseURL: `${sim.url}/v1` })
      const llm = yield* instrumented(provider, [Redacted.make(openAiKey)])
      const { lines, run, spanText, metricText, spans } = yield* observed
      const errors: Array<LlmError> = []

      // a normal answer, whole and streamed, with the key pasted into the request's metadata
      sim.enqueue("openai", { text: "fine" }, { text: "streamed fine" })
      yield* run(llm.complete(request({ note: `my key is ${openAiKey}` })))
      yield* run(Stream.runDrain(llm.stream(request())))
      // 401 whose body echoes the key
      sim.enqueue("openai", {
        status: 401,
        body: { error: { message: `Incorrect API key provided: ${openAiKey}.`, type: "invalid_request_error", code: "invalid_api_key" } }
      })
      errors.push(yield* run(failureOf(llm.complete(request()))))
      // 500 twice (retried once) with the authorization header echoed in the body
      const echoed = { status: 500, body: { error: { message: `upstream rejected Authorization: Bearer ${openAiKey}`, type: "server_error" } } }
      sim.enqueue("openai", echoed, echoed)
      errors.push(yield* run(failureOf(llm.complete(request()))))
      // a stream whose connection drops mid-way
      sim.enqueue("openai", { text: "one two three four", closeAfterChunks: 2 })
      errors.push(yield* run(failureOf(Stream.runDrain(llm.stream(request())))))

      expect(errors.map((error) => error._tag)).toEqual(["AuthenticationError", "ServerError", expect.any(String)])
      expect(sim.requests().length).toBe(6)
      // the scan below only means something if the layers wrote plenty
      expect(lines.filter((line) => line.includes("llm call"))).toHaveLength(5)
      expect(lines.some((line) => line.includes("[redacted]"))).toBe(true)
      expect(spans.length).toBeGreaterThanOrEqual(11)

      const everything = [...lines, spanText(), yield* metricText, ...errors.map(errorText)].join("\n")
      expect(everything).not.toContain(openAiKey)
      expect(everything).not.toContain(openAiKey.slice(8))
    }))
})

describe("Redaction of a key with no recognisable shape", () => {
  it.scopedLive("scrubs the exact value of a configured secret from an OpenAI-compatible endpoint's errors", () =>
    Effect.gen(function* () {
      const sim = yield* Simulator.make()
      const provider = yield* OpenAiCompatible.make({
        name: "house",
        baseURL: `${sim.url}/v1`,
        apiKey: Redacted.make(plainKey),
        model: "house-model"
      })
      const { lines, run, spanText, metricText } = yield* observed
      sim.enqueue("openai", { status: 403, body: { error: { message: `key ${plainKey} is not allowed here` } } })
      const llm = yield* instrumented(provider, [Redacted.make(plainKey)])
      const error = yield* run(failureOf(llm.complete(request())))
      expect(error._tag).toBe("AuthenticationError")
      const everything = [...lines, spanText(), yield* metricText, errorText(error)].join("\n")
      expect(everything).not.toContain(plainKey)
    }))

  it.effect("scrubs a key carried in an error's message (e.g. from a connection error's cause)", () =>
    Effect.gen(function* () {
      const leaky: Llm.Provider = {
        name: "house",
        model: "house-model",
        call: (_request, mode) =>
          Stream.fail(
            mode === "whole"
              ? new ConnectionError({
                  provider: "house",
                  message: `connect ECONNREFUSED while sending x-api-key: ${plainKey} and Bearer ${openAiKey}`
                })
              : new ConnectionError({ provider: "house", message: `socket hang up (${plainKey})` })
          )
      }
      // the raw provider does leak: this is what the policies must catch
      expect((yield* failureOf(Llm.fromProvider(leaky).complete(request()))).message).toContain(plainKey)

      const { lines, run, spanText, metricText } = yield* observed
      const secrets = [Redacted.make(plainKey)]
      const policies = yield* Effect.all([
        Tracing.make({ secrets }),
        Logging.make({ secrets }),
        Tracing.make({ level: "attempt", secrets }),
        Logging.make({ level: "attempt", secrets }),
        Usage.make()
      ])
      const llm = Llm.router({ providers: [leaky], policies })
      const first = yield* run(failureOf(llm.complete(request())))
      const second = yield* run(failureOf(Stream.runDrain(llm.stream(request()))))
      expect(first.message).toContain("[redacted]")
      expect(first).toBeInstanceOf(ConnectionError)
      expect(first.retryable).toBe(true)
      const everything = [...lines, spanText(), yield* metricText, errorText(first), errorText(second)].join("\n")
      expect(lines.filter((line) => line.includes("llm attempt"))).toHaveLength(2)
      expect(everything).not.toContain(plainKey)
      expect(everything).not.toContain(openAiKey)
    }))

  it("leaves text without secrets untouched and keeps the error value when nothing was scrubbed", () =>
    Effect.gen(function* () {
      const error = new ConnectionError({ provider: "openai", message: "Connection reset by the provider" })
      const logging = yield* Logging.make()
      const llm = Llm.fromCall(logging(() => Stream.fail(error)))
      expect(yield* failureOf(llm.complete(request()))).toBe(error)
    }).pipe(Effect.provide(Logger.remove(Logger.defaultLogger)), Effect.runPromise))
})

describe("Redaction keeps spans and logs useful", () => {
  it.effect("keeps the error tag and the rest of the message", () =>
    Effect.gen(function* () {
      const { lines, run, spans } = yield* observed
      const leaky: Llm.Call = () =>
        Stream.fail(new ConnectionError({ provider: "house", message: `refused for Bearer ${openAiKey} at 10.0.0.1` }))
      const llm = Llm.fromCall(Llm.compose(leaky, yield* Effect.all([Tracing.make(), Logging.make()])))
      const error = yield* run(failureOf(llm.complete(request())))
      expect(error.message).toBe("refused for Bearer [redacted] at 10.0.0.1")
      expect(Option.getOrUndefined(Option.fromNullable(spans[0]?.attributes.get("error.type")))).toBe("ConnectionError")
      expect(lines.find((line) => line.includes("llm call"))).toContain("refused for Bearer [redacted] at 10.0.0.1")
    }))
})

describe("the sanitiser", () => {
  const scrubOf = (...secrets: ReadonlyArray<string>) => Redaction.make(secrets.map((secret) => Redacted.make(secret)))

  it("masks a configured secret of any length, a short one also inside ordinary words", () => {
    const scrub = scrubOf("abc", "Xw9Ln", "c4n4ry0011223344556677889900aabbccddeeff")
    expect(scrub("key abc, fabcd")).toBe("key [redacted], f[redacted]d")
    expect(scrub("id Xw9Ln-7")).toBe("id [redacted]-7")
    expect(scrub("c4n4ry0011223344556677889900aabbccddeeff!")).toBe("[redacted]!")
    expect(scrub("nothing to see")).toBe("nothing to see")
  })

  it("masks a secret that markup, soft hyphens or zero-width characters split", () => {
    const key = "c4n4ry0011223344556677889900aabbccddeeff"
    const scrub = scrubOf(key, "Qz7")
    expect(scrub(`<p>${key.slice(0, 10)}<wbr>${key.slice(10, 20)}<b class="x"></b>${key.slice(20)}</p>`)).toBe("<p>[redacted]</p>")
    expect(scrub(`${key.slice(0, 5)}&shy;${key.slice(5, 9)}\u200b${key.slice(9)}`)).toBe("[redacted]")
    expect(scrub("Q<wbr>z&#8203;7 and Q z 7")).toBe("[redacted] and Q z 7")
  })

  it("masks what is shaped like a key, a token or a credential assignment", () => {
    const scrub = Redaction.shapesOnly
    expect(scrub("Incorrect API key provided: sk-proj-****************1234.")).toBe("Incorrect API key provided: [redacted]")
    expect(scrub("gsk_abcdefghijkl and xai-abcdefghijkl")).toBe("[redacted] and [redacted]")
    expect(scrub("Authorization: Bearer abc.def-123")).toBe("Authorization: [redacted]")
    expect(scrub("sent Bearer abc.def-123")).toBe("sent Bearer [redacted]")
    expect(scrub('{"api_key": "qwertyuiop"}')).toBe('{"api_key": "[redacted]"}')
    expect(scrub("token eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0In0.sig")).toBe("token [redacted]")
    expect(scrub("AIzaSyA-abcdefghijklmnopqrstuv")).toBe("[redacted]")
  })

  it("bounds lengths after scrubbing, so a cut never leaves part of a secret", () => {
    const key = "c4n4ry0011223344556677889900aabbccddeeff"
    const scrub = scrubOf(key)
    expect(scrub(`${"x".repeat(190)}${key}`, 200)).toBe(`${"x".repeat(190)}[redacted]`)
    expect(scrub("y".repeat(500), 200)).toBe(`${"y".repeat(199)}…`)
    // Past the scan limit nothing is read, and a secret the limit cut short is dropped with it.
    const huge = `${"z".repeat(Redaction.maxScan - 10)}${key}${"z".repeat(100)}`
    const out = scrub(huge, Redaction.maxScan + 100)
    expect(out.length).toBeLessThanOrEqual(Redaction.maxScan)
    expect(out).not.toContain(key.slice(0, 10))
  })

  it("takes a URL's password as written and as decoded", () => {
    expect(Redaction.urlPasswords("redis://user:p%40ss@127.0.0.1:6379").map(Redacted.value)).toEqual(["p%40ss", "p@ss"])
    expect(Redaction.urlPasswords("redis://:plain@127.0.0.1:6379").map(Redacted.value)).toEqual(["plain"])
    expect(Redaction.urlPasswords("redis://:bad%E0%A4%A@127.0.0.1:6379").map(Redacted.value)).toEqual(["bad%E0%A4%A"])
    expect(Redaction.urlPasswords("redis://127.0.0.1:6379")).toEqual([])
    expect(Redaction.urlPasswords("not a url")).toEqual([])
  })

  it("scrubs every provider-given field of an error, and keeps the value when there was nothing", () => {
    const scrub = scrubOf("Qz7")
    const error = new InvalidRequestError({
      provider: "openai",
      message: "denied for Qz7",
      requestId: "req Qz7",
      headers: { "x-ratelimit-remaining-requests": "Qz7", "x-ratelimit-qz7": "1" },
      code: "Qz7",
      status: 400
    })
    const scrubbed = Redaction.scrubError(scrub, error)
    expect(scrubbed).toBeInstanceOf(InvalidRequestError)
    expect(scrubbed).toMatchObject({
      message: "denied for [redacted]",
      requestId: "req [redacted]",
      headers: { "x-ratelimit-remaining-requests": "[redacted]", "x-ratelimit-qz7": "1" },
      code: "[redacted]",
      status: 400
    })
    expect(scrubbed.stack).not.toContain("Qz7")
    expect(JSON.stringify(scrubbed)).not.toContain("Qz7")
    const clean = new InvalidRequestError({ provider: "openai", message: "fine", requestId: "req-1", headers: { "x-ratelimit-limit-requests": "60" }, code: "bad" })
    expect(Redaction.scrubError(scrub, clean)).toBe(clean)
  })
})

describe("a provider from the environment keeps every configured secret out of its errors", () => {
  const keys = { OPENAI_API_KEY: "Oa1key", ANTHROPIC_API_KEY: "An2key", OPENAI_COMPATIBLE_API_KEY: "Co3key" }
  const envAt = (url: string) =>
    ConfigProvider.fromMap(
      new Map(
        Object.entries({
          ...keys,
          LLM_RATE_LIMIT_STORE: "redis",
          REDIS_URL: "redis://:rEdisPw@127.0.0.1:1",
          OPENAI_BASE_URL: `${url}/v1`,
          ANTHROPIC_BASE_URL: url,
          OPENAI_COMPATIBLE_NAME: "house",
          OPENAI_COMPATIBLE_BASE_URL: `${url}/v1`
        })
      )
    )
  const cases = [
    { name: "OpenAi.layerConfig", route: "openai", layer: OpenAi.layerConfig },
    { name: "Anthropic.layerConfig", route: "anthropic", layer: Anthropic.layerConfig },
    { name: "OpenAiCompatible.layerConfig", route: "openai", layer: OpenAiCompatible.layerConfig }
  ] as const
  for (const { layer, name, route } of cases) {
    it.scopedLive(`${name}: the other providers' keys and the Redis password too`, () =>
      Effect.gen(function* () {
        const sim = yield* Simulator.make()
        const all = [...Object.values(keys), "rEdisPw"]
        sim.enqueue(route, { status: 400, body: { error: { message: `bad: ${all.join(" ")}`, type: "invalid_request_error" } } })
        const error = yield* Effect.flip(Llm.complete(request()).pipe(Effect.provide(layer), Effect.withConfigProvider(envAt(sim.url))))
        expect(error._tag).toBe("InvalidRequestError")
        expect(error.message).toContain("bad: [redacted] [redacted] [redacted] [redacted]")
      })
    )
  }
})
