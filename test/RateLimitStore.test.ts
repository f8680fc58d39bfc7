import * as Net from "node:net"
import { describe, expect, it } from "@effect/vitest"
import { ConfigProvider, Duration, Effect, Fiber, Layer, Logger, Metric, Redacted, Stream, TestClock } from "effect"
import * as Llm from "../src/Llm.js"
import type { LlmStreamEvent } from "../src/LlmRequest.js"
import * as RateLimit from "../src/RateLimit.js"
import * as RateLimitStore from "../src/RateLimitStore.js"

const env = (entries: ReadonlyArray<readonly [string, string]>) => ConfigProvider.fromMap(new Map(entries))

/** A loopback port with nothing listening on it: connections are refused at once. */
const closedPort = () =>
  new Promise<number>((resolve, reject) => {
    const server = Net.createServer()
    server.once("error", reject)
    server.listen(0, "127.0.0.1", () => {
      const address = server.address()
      const port = typeof address === "object" && address !== null ? address.port : 0
      server.close(() => resolve(port))
    })
  })

const request = (extra: { maxTokens?: number } = {}) => ({
  provider: "openai",
  messages: [{ role: "user" as const, content: "hello" }],
  ...extra
})

/** Records the virtual time at which each call reached the provider. */
const recorder = (usage = { inputTokens: 60, outputTokens: 40, totalTokens: 100 }) => {
  const starts: Array<number> = []
  const provider: Llm.Provider = {
    name: "openai",
    model: "m",
    call: (r) =>
      Llm.fromStream(Stream.fromEffect(
        Effect.map(TestClock.currentTimeMillis, (now): LlmStreamEvent => {
          starts.push(now)
          return { _tag: "Finish", id: "r", provider: r.provider ?? "openai", model: "m", finishReason: "stop", usage }
        })
      ))
  }
  return { starts, provider }
}

/** The provider of `fake` behind `RateLimit.make(options)` on the store in context. */
const limited = (options: RateLimit.Options, fake: ReturnType<typeof recorder>) =>
  Effect.map(RateLimit.make(options), (limit) => Llm.router({ providers: [fake.provider], policies: [limit] }))

const collectLogs = () => {
  const lines: Array<string> = []
  const logger = Logger.make(({ logLevel, message }) => {
    lines.push(`${logLevel.label} ${Array.isArray(message) ? message.join(" ") : String(message)}`)
  })
  return { lines, layer: Logger.replace(Logger.defaultLogger, logger) }
}

describe("RateLimitStore: API-key fingerprints", () => {
  it("is 16 hex digits of the key's SHA-256, the same for the same key", () => {
    const a = RateLimitStore.fingerprint(Redacted.make("sk-live-abcdef"))
    expect(a).toMatch(/^[0-9a-f]{16}$/)
    expect(RateLimitStore.fingerprint(Redacted.make("sk-live-abcdef"))).toBe(a)
    // sha256("sk-live-abcdef"), first 16 hex digits
    expect(a).toBe("199b923537bfdaa2")
  })

  it("differs between keys and never contains the key", () => {
    const a = RateLimitStore.fingerprint(Redacted.make("sk-one"))
    const b = RateLimitStore.fingerprint(Redacted.make("sk-two"))
    expect(a).not.toBe(b)
    expect(a).not.toContain("sk-one")
  })

  it("names a missing key keyless", () => {
    expect(RateLimitStore.fingerprint(undefined)).toBe("keyless")
  })

  it("gives each configured provider its key's fingerprint as its key namespace", () => {
    const config = {
      openai: { apiKey: Redacted.make("sk-openai") },
      anthropic: { apiKey: Redacted.make("sk-ant") },
      openaiCompatible: { name: "ollama", baseURL: "http://127.0.0.1:11434/v1" }
    }
    expect(RateLimitStore.keyNamespaces(config)).toEqual({
      openai: RateLimitStore.fingerprint(Redacted.make("sk-openai")),
      anthropic: RateLimitStore.fingerprint(Redacted.make("sk-ant")),
      ollama: "keyless"
    })
    expect(RateLimitStore.keyNamespaces({})).toEqual({})
  })
})

describe("RateLimitStore: configuration", () => {
  const read = (entries: ReadonlyArray<readonly [string, string]>) =>
    Effect.either(Effect.withConfigProvider(RateLimitStore.config, env(entries)))

  it.effect("uses memory when LLM_RATE_LIMIT_STORE is unset or blank", () =>
    Effect.gen(function* () {
      expect(yield* read([])).toMatchObject({ right: { store: "memory" } })
      expect(yield* read([["LLM_RATE_LIMIT_STORE", " "]])).toMatchObject({ right: { store: "memory" } })
      expect(yield* read([["LLM_RATE_LIMIT_STORE", "memory"], ["REDIS_URL", "redis://127.0.0.1:1"]])).toMatchObject({
        right: { store: "memory" }
      })
    })
  )

  it.effect("reads redis with its URL, instance count and timeout", () =>
    Effect.gen(function* () {
      const result = yield* read([
        ["LLM_RATE_LIMIT_STORE", "Redis"],
        ["REDIS_URL", "redis://:secret@127.0.0.1:6380/2"],
        ["LLM_RATE_LIMIT_INSTANCES", "4"],
        ["LLM_RATE_LIMIT_REDIS_TIMEOUT_MS", "250"]
      ])
      if (result._tag === "Left" || result.right.store !== "redis") throw new Error("expected the redis store")
      expect(Redacted.isRedacted(result.right.url)).toBe(true)
      expect(String(result.right.url)).not.toContain("secret")
      expect(result.right.instances).toBe(4)
      expect(Duration.toMillis(Duration.decode(result.right.timeout!))).toBe(250)
    })
  )

  it.effect("defaults to one instance and a 500 ms timeout", () =>
    Effect.gen(function* () {
      const result = yield* read([["LLM_RATE_LIMIT_STORE", "redis"], ["REDIS_URL", "redis://127.0.0.1:6379"]])
      expect(result).toMatchObject({ right: { store: "redis", instances: 1 } })
    })
  )

  it.effect("requires REDIS_URL with the redis store, and says so", () =>
    Effect.gen(function* () {
      const missing = yield* read([["LLM_RATE_LIMIT_STORE", "redis"]])
      expect(missing._tag).toBe("Left")
      expect(String(missing._tag === "Left" ? missing.left : "")).toMatch(/REDIS_URL is required/)
      const blank = yield* read([["LLM_RATE_LIMIT_STORE", "redis"], ["REDIS_URL", "  "]])
      expect(blank._tag).toBe("Left")
    })
  )

  it.effect("rejects an unknown store and a non-positive instance count", () =>
    Effect.gen(function* () {
      const store = yield* read([["LLM_RATE_LIMIT_STORE", "postgres"]])
      expect(String(store._tag === "Left" ? store.left : "")).toMatch(/memory or redis/)
      const instances = yield* read([["LLM_RATE_LIMIT_INSTANCES", "0"]])
      expect(String(instances._tag === "Left" ? instances.left : "")).toMatch(/LLM_RATE_LIMIT_INSTANCES must be a positive/)
    })
  )

  it.effect("layerConfig gives the memory store by default, blank values and all, with pauses kept in the process", () =>
    Effect.gen(function* () {
      const fake = recorder()
      const llm = yield* limited({ rpm: 2 }, fake)
      const fiber = yield* Effect.fork(Effect.all([llm.complete(request()), llm.complete(request()), llm.complete(request())]))
      yield* TestClock.adjust(Duration.seconds(30))
      yield* Fiber.join(fiber)
      expect(fake.starts).toEqual([0, 0, 30_000])
      const pauses = yield* RateLimitStore.SharedPauses
      let heard = 0
      pauses.watch("llm:openai:pause", () => heard++)
      yield* pauses.announce("llm:openai:pause", 1000)
      expect(heard).toBe(0)
    }).pipe(
      Effect.provide(RateLimitStore.layerConfig),
      Effect.withConfigProvider(env([["LLM_RATE_LIMIT_STORE", ""], ["LLM_RATE_LIMIT_INSTANCES", " "], ["REDIS_URL", ""]]))
    )
  )
})

describe("RateLimitStore: Redis unreachable", () => {
  const unreachable = (instances: number) =>
    Layer.unwrapEffect(
      Effect.map(Effect.promise(closedPort), (port) =>
        RateLimitStore.layerRedis({ url: Redacted.make(`redis://127.0.0.1:${port}`), instances, timeout: Duration.millis(100) })
      )
    )

  it.effect("keeps calls going on a local limiter whose limit is divided by the instance count", () =>
    Effect.gen(function* () {
      const fake = recorder()
      const llm = yield* limited({ rpm: 6, maxWait: Duration.minutes(1) }, fake)
      const fiber = yield* Effect.fork(Effect.all(Array.from({ length: 5 }, () => llm.complete(request()))))
      yield* TestClock.adjust(Duration.minutes(1))
      yield* Fiber.join(fiber)
      // 6 rpm over 2 instances: 3 at once, then one every 20 s.
      expect(fake.starts).toEqual([0, 0, 0, 20_000, 40_000])
    }).pipe(Effect.provide(unreachable(2)))
  )

  it.effect("settles tokens locally as a memory store with the divided limit would", () =>
    Effect.gen(function* () {
      const fake = recorder()
      const llm = yield* limited({ tpm: 2000 }, fake)
      // Same sequence as one instance with tpm 1000: five calls at once (each settles to 100
      // tokens), the sixth is 9 tokens short, at 30 ms a token of the local bucket's 2000 a minute
      // charged twice.
      for (let i = 0; i < 5; i++) yield* llm.complete(request({ maxTokens: 500 }))
      const sixth = yield* Effect.fork(llm.complete(request({ maxTokens: 500 })))
      yield* TestClock.adjust(Duration.seconds(10))
      yield* Fiber.join(sixth)
      expect(fake.starts).toEqual([0, 0, 0, 0, 0, 540])
    }).pipe(Effect.provide(unreachable(2)))
  )

  it.effect("warns once, sets the degraded gauge and counts each local decision", () => {
    const logs = collectLogs()
    return Effect.gen(function* () {
      const before = (yield* Metric.value(RateLimitStore.localDecisions)).count
      const fake = recorder()
      const llm = yield* limited({ rpm: 100 }, fake)
      for (let i = 0; i < 3; i++) yield* llm.complete(request())
      expect((yield* Metric.value(RateLimitStore.storeDegraded)).value).toBe(1)
      expect((yield* Metric.value(RateLimitStore.localDecisions)).count - before).toBe(3)
      const warnings = logs.lines.filter((line) => line.startsWith("WARN"))
      expect(warnings).toHaveLength(1)
      expect(warnings[0]).toMatch(/Rate limit store unreachable \(.+\): limiting locally at 1\/3 of each limit/)
      expect(warnings[0]).not.toMatch(/redis:\/\//)
    }).pipe(Effect.provide(Layer.merge(unreachable(3), logs.layer)))
  })

  it.effect("answers fixed-window calls locally, and lets pauses be announced and watched without failing", () =>
    Effect.gen(function* () {
      const { pauses, store } = yield* RateLimitStore.makeRedis({
        url: `redis://127.0.0.1:${yield* Effect.promise(closedPort)}`,
        instances: 2,
        timeout: Duration.millis(100)
      })
      // Each call counts for two instances.
      const [count] = yield* store.fixedWindow({ key: "w", tokens: 1, refillRate: Duration.seconds(1), limit: 10 })
      expect(count).toBe(2)
      let heard = 0
      pauses.watch("llm:openai:pause", () => heard++)
      const announced = yield* Effect.exit(pauses.announce("llm:openai:pause", 1000))
      expect(announced._tag).toBe("Success")
      expect(heard).toBe(0)
    }).pipe(Effect.scoped)
  )
})
