import { randomUUID } from "node:crypto"
import { RateLimiter } from "@effect/experimental"
import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import { Duration, Effect, Logger, LogLevel, Metric, Redacted } from "effect"
import type { Redis } from "ioredis"
import * as Llm from "../../src/Llm.js"
import * as LlmMock from "../../src/LlmMock.js"
import * as RateLimit from "../../src/RateLimit.js"
import * as RateLimitStore from "../../src/RateLimitStore.js"
import { connect, type PrivateRedis, redisUrl, startPrivateRedis } from "./support.js"

// Real Redis, real time: these tests wait on the server's clock, never on TestClock.
describe.runIf(redisUrl !== undefined)("RateLimitStore on Redis", () => {
  const url = redisUrl ?? ""
  let admin: Redis
  beforeAll(async () => {
    admin = await connect(url)
  })
  afterAll(() => admin?.disconnect())

  const prefix = () => `test:${randomUUID()}:`
  const storeOf = (options: Partial<RateLimitStore.RedisOptions> = {}) => RateLimitStore.makeRedis({ url, ...options })
  const bucket = (key: string, tokens: number, overrides: { limit?: number; refillRate?: Duration.Duration; allowOverflow?: boolean } = {}) => ({
    key,
    tokens,
    limit: overrides.limit ?? 5,
    refillRate: overrides.refillRate ?? Duration.minutes(1),
    allowOverflow: overrides.allowOverflow ?? true
  })

  describe("token buckets", () => {
    it.live("answers as the memory store does, with and without overflow", () =>
      Effect.gen(function* () {
        const memory = yield* Effect.provide(RateLimiter.RateLimiterStore, RateLimiter.layerStoreMemory)
        const { store } = yield* storeOf({ prefix: prefix() })
        const steps = [
          bucket("b", 2, { allowOverflow: false }),
          bucket("b", 2, { allowOverflow: false }),
          bucket("b", 2, { allowOverflow: false }),
          bucket("b", 1),
          bucket("b", 3),
          bucket("b", -2)
        ]
        const onRedis: Array<number> = []
        const inMemory: Array<number> = []
        for (const step of steps) {
          onRedis.push(yield* store.tokenBucket(step))
          inMemory.push(yield* memory.tokenBucket(step))
        }
        expect(onRedis).toEqual([3, 1, -1, 0, -3, -1])
        expect(onRedis).toEqual(inMemory)
      }).pipe(Effect.scoped)
    )

    it.live("is one budget for every connection", () =>
      Effect.gen(function* () {
        const shared = prefix()
        const first = yield* storeOf({ prefix: shared })
        const second = yield* storeOf({ prefix: shared })
        yield* first.store.tokenBucket(bucket("b", 3))
        expect(yield* second.store.tokenBucket(bucket("b", 1))).toBe(1)
        expect(yield* first.store.tokenBucket(bucket("b", 0))).toBe(1)
      }).pipe(Effect.scoped)
    )

    it.live("refills by the server's clock", () =>
      Effect.gen(function* () {
        const { store } = yield* storeOf({ prefix: prefix() })
        const fast = { limit: 2, refillRate: Duration.millis(100) }
        expect(yield* store.tokenBucket(bucket("b", 2, fast))).toBe(0)
        yield* Effect.sleep(Duration.millis(250))
        expect(yield* store.tokenBucket(bucket("b", 0, fast))).toBe(2)
      }).pipe(Effect.scoped)
    )

    it.live("counts fixed windows on Redis", () =>
      Effect.gen(function* () {
        const { store } = yield* storeOf({ prefix: prefix() })
        const window = { key: "w", tokens: 1, refillRate: Duration.seconds(10), limit: 2 }
        expect((yield* store.fixedWindow(window))[0]).toBe(1)
        expect((yield* store.fixedWindow(window))[0]).toBe(2)
        const [over, ttl] = yield* store.fixedWindow(window)
        expect(over).toBe(3)
        expect(ttl).toBeGreaterThan(10_000)
      }).pipe(Effect.scoped)
    )
  })

  describe("keys", () => {
    it.live("carry the provider and the key's fingerprint, expire, and hold nothing secret", () =>
      Effect.gen(function* () {
        const namespace = prefix()
        const secret = "sk-test-do-not-store-0123456789"
        const apiKey = Redacted.make(secret)
        const { store } = yield* storeOf({ prefix: namespace })
        const limit = yield* RateLimit.make({ rpm: 100, tpm: 10_000, keyNamespaces: { openai: RateLimitStore.fingerprint(apiKey) } }).pipe(
          Effect.provideService(RateLimiter.RateLimiterStore, store)
        )
        const llm = Llm.router({ providers: [LlmMock.echo({ provider: "openai" })], policies: [limit] })
        yield* llm.complete({ provider: "openai", messages: [{ role: "user", content: "hi" }] })
        const keys = (yield* Effect.promise(() => admin.keys(`${namespace}*`))).sort()
        const fp = RateLimitStore.fingerprint(apiKey)
        expect(keys).toEqual([`${namespace}llm:openai:${fp}:rpm`, `${namespace}llm:openai:${fp}:tpm`])
        for (const key of keys) {
          const fields = yield* Effect.promise(() => admin.hgetall(key))
          expect(JSON.stringify(fields)).not.toContain(secret)
          expect(Object.keys(fields).sort()).toEqual(["last", "tokens"])
          const ttl = yield* Effect.promise(() => admin.pttl(key))
          expect(ttl).toBeGreaterThan(0)
          expect(ttl).toBeLessThanOrEqual(60_000 + 1000)
        }
      }).pipe(Effect.scoped)
    )
  })

  describe("Redis lost and back, in one process", () => {
    let own: PrivateRedis | undefined
    afterAll(async () => {
      await own?.stop()
    })

    it.live("answers locally while the server is gone and from Redis again once it is back", () =>
      Effect.gen(function* () {
        const redis = yield* Effect.promise(startPrivateRedis)
        own = redis
        const { pauses, store } = yield* RateLimitStore.makeRedis({ url: redis.url, instances: 2, timeout: Duration.millis(200) })
        const degraded = Effect.map(Metric.value(RateLimitStore.storeDegraded), (state) => state.value)
        const take = store.tokenBucket(bucket("b", 1, { limit: 10 }))
        expect(yield* take).toBe(9)
        expect(yield* degraded).toBe(0)

        yield* Effect.promise(redis.kill)
        // Charged twice on a local bucket of the same size: 1/2 of the limit.
        expect(yield* take).toBe(8)
        expect(yield* take).toBe(6)
        expect((yield* store.fixedWindow({ key: "w", tokens: 1, refillRate: Duration.seconds(1), limit: 10 }))[0]).toBe(2)
        expect(yield* degraded).toBe(1)
        yield* pauses.announce("k", 1000)

        yield* Effect.promise(redis.restart)
        let answer = yield* take
        for (let i = 0; i < 100 && (yield* degraded) === 1; i++) {
          yield* Effect.sleep(Duration.millis(50))
          answer = yield* take
        }
        expect(yield* degraded).toBe(0)
        // The restarted server is empty: a fresh bucket of 10.
        expect(answer).toBe(9)
      }).pipe(Effect.scoped, Logger.withMinimumLogLevel(LogLevel.None))
    )
  })

  describe("pauses", () => {
    it.live("reach another connection's watchers, and a later watcher catches up", () =>
      Effect.gen(function* () {
        const shared = prefix()
        const first = yield* storeOf({ prefix: shared })
        const second = yield* storeOf({ prefix: shared })
        const heard: Array<number> = []
        const own: Array<number> = []
        second.pauses.watch("llm:openai:fp:pause", (ms) => heard.push(ms))
        first.pauses.watch("llm:openai:fp:pause", (ms) => own.push(ms))
        yield* first.pauses.announce("llm:openai:fp:pause", 3000)
        for (let i = 0; i < 100 && heard.length === 0; i++) yield* Effect.sleep(Duration.millis(10))
        expect(heard).toEqual([3000])
        // The announcer already paused itself; it does not hear its own announcement.
        expect(own).toEqual([])
        expect(yield* Effect.promise(() => admin.pttl(`${shared}llm:openai:fp:pause`))).toBeGreaterThan(2000)

        const late = yield* storeOf({ prefix: shared })
        const caughtUp: Array<number> = []
        late.pauses.watch("llm:openai:fp:pause", (ms) => caughtUp.push(ms))
        for (let i = 0; i < 100 && caughtUp.length === 0; i++) yield* Effect.sleep(Duration.millis(10))
        expect(caughtUp).toHaveLength(1)
        expect(caughtUp[0]).toBeGreaterThan(0)
        expect(caughtUp[0]).toBeLessThanOrEqual(3000)
      }).pipe(Effect.scoped)
    )

    it.live("ignore messages on the channel that are not announcements", () =>
      Effect.gen(function* () {
        const shared = prefix()
        const { pauses } = yield* storeOf({ prefix: shared })
        const heard: Array<number> = []
        pauses.watch("k", (ms) => heard.push(ms))
        const channel = `${shared}clearside-llm:pauses`
        yield* Effect.promise(async () => {
          await admin.publish(channel, "not json")
          await admin.publish(channel, "null")
          // Keys on the channel carry the store's prefix.
          await admin.publish(channel, JSON.stringify({ key: `${shared}k` }))
          await admin.publish(channel, JSON.stringify({ key: `${shared}k`, ms: "soon", origin: "elsewhere" }))
          await admin.publish(channel, JSON.stringify({ key: `${shared}other`, ms: 900, origin: "elsewhere" }))
          await admin.publish(channel, JSON.stringify({ key: `${shared}k`, ms: 1500, origin: "elsewhere" }))
        })
        for (let i = 0; i < 100 && heard.length === 0; i++) yield* Effect.sleep(Duration.millis(10))
        expect(heard).toEqual([1500])
      }).pipe(Effect.scoped)
    )

    it.live("are held to what a timer holds: a non-finite pause is not written, a huge one is cut to 2^31 - 1 ms", () =>
      Effect.gen(function* () {
        const shared = prefix()
        const { pauses } = yield* storeOf({ prefix: shared })
        expect((yield* Effect.exit(pauses.announce("nan", Number.NaN)))._tag).toBe("Success")
        expect((yield* Effect.exit(pauses.announce("forever", Infinity)))._tag).toBe("Success")
        yield* pauses.announce("huge", 1e12)
        expect(yield* Effect.promise(() => admin.pttl(`${shared}nan`))).toBe(-2)
        expect(yield* Effect.promise(() => admin.pttl(`${shared}forever`))).toBe(-2)
        const huge = yield* Effect.promise(() => admin.pttl(`${shared}huge`))
        expect(huge).toBeGreaterThan(2_147_000_000)
        expect(huge).toBeLessThanOrEqual(2_147_483_647)
      }).pipe(Effect.scoped)
    )

    it.live("never shorten a longer pause already in force", () =>
      Effect.gen(function* () {
        const shared = prefix()
        const { pauses } = yield* storeOf({ prefix: shared })
        yield* pauses.announce("k", 5000)
        yield* pauses.announce("k", 1000)
        expect(yield* Effect.promise(() => admin.pttl(`${shared}k`))).toBeGreaterThan(4000)
      }).pipe(Effect.scoped)
    )
  })
})
