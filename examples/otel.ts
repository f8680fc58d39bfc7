/**
 * Exports the library's spans and metrics with `@effect/opentelemetry` to the console.
 *
 * It starts the provider simulator on loopback, calls it through the real OpenAI SDK with every
 * observability layer in place (call span and log line outside the retry policy; attempt spans,
 * attempt log lines and usage metrics inside it), and prints:
 * - the spans (`chat gpt-4o-mini` with its `llm.attempt` children) as the SDK's console exporter
 *   prints them,
 * - the metrics (`gen_ai.client.token.usage`, `gen_ai.client.operation.duration`,
 *   `llm.client.requests`, `llm.client.cost`, ...) flushed when the program ends,
 * - the log lines in logfmt, and the usage attributed to the work by `Usage.withUsage`.
 *
 * Run: `npx tsx examples/otel.ts`
 */
import { NodeSdk } from "@effect/opentelemetry"
import { ConsoleMetricExporter, PeriodicExportingMetricReader } from "@opentelemetry/sdk-metrics"
import { ConsoleSpanExporter, SimpleSpanProcessor } from "@opentelemetry/sdk-trace-base"
import { Chunk, Duration, Effect, Layer, Redacted, Stream } from "effect"
import * as Simulator from "../simulator/Simulator.js"
import * as Llm from "../src/Llm.js"
import * as Logging from "../src/Logging.js"
import * as OpenAi from "../src/OpenAi.js"
import * as Retry from "../src/Retry.js"
import * as Tracing from "../src/Tracing.js"
import * as Usage from "../src/Usage.js"

const Otel = NodeSdk.layer(() => ({
  resource: { serviceName: "clearside-llm-example" },
  spanProcessor: new SimpleSpanProcessor(new ConsoleSpanExporter()),
  // exported once, when the program ends and the meter provider shuts down
  metricReader: new PeriodicExportingMetricReader({ exporter: new ConsoleMetricExporter(), exportIntervalMillis: 600_000 })
}))

/** The observability policies around a provider, in the order the live layer uses. */
const instrumented = (provider: Llm.Provider) =>
  Effect.gen(function* () {
    const perCall = [yield* Tracing.make({ level: "call" }), yield* Logging.make({ level: "call", callLevel: "info" })]
    const perProvider = [
      yield* Retry.make({ maxRetries: 2, base: Duration.millis(20), onRetry: Usage.recordRetry }),
      yield* Tracing.make({ level: "attempt" }),
      yield* Logging.make({ level: "attempt" }),
      yield* Usage.make()
    ]
    return Llm.router({ providers: [{ ...provider, call: Llm.compose(provider.call, perProvider) }], policies: perCall })
  })

const program = Effect.gen(function* () {
  const sim = yield* Simulator.make()
  const openai = yield* OpenAi.make({ apiKey: Redacted.make("sk-example-not-a-real-key"), baseURL: `${sim.url}/v1` })
  const llm = yield* instrumented(openai)

  // The first attempt fails with a 503 and is retried; the stream answers at once.
  sim.enqueue(
    "openai",
    { status: 503 },
    { text: "A rate limit caps how often you may call.", usage: { inputTokens: 12, outputTokens: 9 } },
    { text: "Backoff waits longer after each failure.", usage: { inputTokens: 10, outputTokens: 7 } }
  )
  const [[answer, streamed], usage] = yield* Usage.withUsage(
    Effect.all(
      [
        llm.complete({
          model: "gpt-4o-mini",
          messages: [{ role: "user", content: "What is a rate limit?" }],
          maxTokens: 64,
          metadata: { agent: "example" }
        }),
        Stream.runCollect(
          llm.stream({ model: "gpt-4o-mini", messages: [{ role: "user", content: "And backoff?" }], temperature: 0.2 })
        )
      ],
      { concurrency: 1 }
    ).pipe(Effect.withSpan("example.work"))
  )
  const text = Chunk.toArray(streamed)
    .map((event) => (event._tag === "TextDelta" ? event.text : ""))
    .join("")
  yield* Effect.log(`complete: ${answer.content}`)
  yield* Effect.log(`stream: ${text}`)
  yield* Effect.log(
    `withUsage: ${usage.attempts} attempts, ${usage.inputTokens} input + ${usage.outputTokens} output tokens, $${usage.costUsd.toFixed(8)}`
  )
})

Effect.runPromise(
  program.pipe(Effect.scoped, Effect.provide(Layer.merge(Otel, Logging.layerLogger({ format: "logfmt" }))))
).catch((error: unknown) => {
  process.exitCode = 1
  throw error
})
