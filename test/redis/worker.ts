/**
 * One instance of a service for the shared-limit tests, run as its own process:
 * `node --import tsx test/redis/worker.ts '<WorkerConfig JSON>'`.
 *
 * It builds the OpenAI provider against the simulator, limited by `RateLimit` on the Redis store,
 * prints `{"ready":true}`, waits for a `go` line on stdin, then calls the provider from
 * `concurrency` loops for `durationMs` and prints one `WorkerResult` JSON line.
 */
import * as Readline from "node:readline"
import { Duration, Effect, Logger, Metric, Redacted } from "effect"
import * as Llm from "../../src/Llm.js"
import * as OpenAi from "../../src/OpenAi.js"
import * as RateLimit from "../../src/RateLimit.js"
import * as RateLimitStore from "../../src/RateLimitStore.js"
import type { WorkerConfig, WorkerResult } from "./support.js"

const config: WorkerConfig = JSON.parse(process.argv[2] ?? "{}")

const result: WorkerResult = {
  starts: [],
  successes: 0,
  failures: {},
  providerRateLimits: [],
  logs: [],
  degradedGauge: -1,
  localDecisions: -1
}

const logger = Logger.make(({ logLevel, message }) => {
  result.logs.push(`${logLevel.label} ${Array.isArray(message) ? message.join(" ") : String(message)}`)
})

const go = () =>
  new Promise<void>((resolve) => {
    const lines = Readline.createInterface({ input: process.stdin })
    lines.on("line", (line) => {
      if (line.trim() === "go") {
        lines.close()
        resolve()
      }
    })
  })

const program = Effect.gen(function* () {
  const apiKey = Redacted.make(config.apiKey)
  const openai = yield* OpenAi.make({ apiKey, baseURL: `${config.simUrl}/v1`, model: "gpt-4o-mini" })
  // The moment each call really reaches the provider, after the limiter let it through.
  const timed: Llm.Provider = {
    ...openai,
    call: (request, mode) =>
      Effect.map(openai.call(request, mode), (pull) => {
        let started = false
        return Effect.suspend(() => {
          if (!started) {
            started = true
            result.starts.push(Date.now())
          }
          return pull
        })
      })
  }
  const limit = yield* RateLimit.make({
    ...(config.rpm === undefined ? {} : { rpm: config.rpm }),
    maxWait: Duration.seconds(30),
    keyPrefix: config.keyPrefix,
    keyNamespaces: { openai: RateLimitStore.fingerprint(apiKey) }
  })
  const llm = Llm.router({ providers: [timed], policies: [limit] })

  process.stdout.write(`${JSON.stringify({ ready: true })}\n`)
  yield* Effect.promise(go)

  const call = llm.complete({ provider: "openai", messages: [{ role: "user", content: "ping" }], maxTokens: 16 }).pipe(
    Effect.matchEffect({
      onSuccess: () =>
        Effect.sync(() => {
          result.successes++
        }),
      onFailure: (error) =>
        Effect.sync(() => {
          result.failures[error._tag] = (result.failures[error._tag] ?? 0) + 1
          if (error._tag === "RateLimitError" && !error.local) {
            result.providerRateLimits.push({ at: Date.now(), retryAfterMs: error.retryAfter ? Duration.toMillis(error.retryAfter) : -1 })
          }
        })
    })
  )
  const think = config.thinkMs === undefined ? Effect.void : Effect.sleep(Duration.millis(config.thinkMs))
  const loop = Effect.forever(Effect.zipRight(call, think))
  // Callers still waiting for capacity at the end are interrupted, which gives their reservation back.
  yield* Effect.all(Array.from({ length: config.concurrency }, () => loop), { concurrency: "unbounded" }).pipe(
    Effect.timeout(Duration.millis(config.durationMs)),
    Effect.ignore
  )
  result.degradedGauge = (yield* Metric.value(RateLimitStore.storeDegraded)).value
  result.localDecisions = (yield* Metric.value(RateLimitStore.localDecisions)).count
}).pipe(
  Effect.scoped,
  Effect.provide(
    RateLimitStore.layerRedis({ url: Redacted.make(config.redisUrl), instances: config.instances, timeout: Duration.millis(500) })
  ),
  Effect.provide(Logger.replace(Logger.defaultLogger, logger))
)

Effect.runPromise(program).then(
  () => {
    process.stdout.write(`${JSON.stringify(result)}\n`, () => process.exit(0))
  },
  (error: unknown) => {
    process.stderr.write(`worker failed: ${String(error)}\n`, () => process.exit(1))
  }
)
