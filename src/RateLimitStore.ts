/**
 * Where `RateLimit` keeps its buckets: in process memory (the default), or in Redis so that every
 * instance of a service spends one budget. Provider limits belong to the API key: with per-process
 * buckets, N instances on one key spend N times the limit and the provider answers with 429s.
 *
 * - Buckets are keyed by provider and by {@link fingerprint} of the API key (pass
 *   {@link keyNamespaces} as `RateLimit.Options.keyNamespaces`): two keys never share a budget, and
 *   no key is ever written to Redis.
 * - A provider's 429 `retryAfter` seen by one instance pauses that provider in every instance: it
 *   is written to Redis with an expiry and published; each instance keeps the pause in memory, so a
 *   call costs no extra round trip.
 * - When Redis cannot be reached, calls go on with limits kept locally, each divided by the number
 *   of instances (`LLM_RATE_LIMIT_INSTANCES`), with a warning log and the
 *   `llm.client.rate_limit.store_degraded` gauge at 1; once Redis answers again the shared buckets
 *   are used again. A dead Redis never stalls a call: the client has no offline queue, no
 *   per-command retry, 500 ms connect and command timeouts, and after a failed command Redis is
 *   skipped for a second before it is tried again.
 *
 * @example
 * import { Layer } from "effect"
 * import { LlmMock, RateLimit, RateLimitStore } from "@clearside/llm"
 *
 * // LLM_RATE_LIMIT_STORE=redis REDIS_URL=redis://127.0.0.1:6379 LLM_RATE_LIMIT_INSTANCES=4
 * const layer = RateLimit.layer({ rpm: 500 }).pipe(
 *   Layer.provide(LlmMock.layerEcho()),
 *   Layer.provide(RateLimitStore.layerConfig)
 * )
 *
 * @since 0.1.0
 */
import { createHash } from "node:crypto"
import { RateLimiter } from "@effect/experimental"
import { Config, ConfigError, Context, Duration, Effect, Either, Layer, Metric, Option, Redacted, type Scope } from "effect"
import type * as LlmConfig from "./LlmConfig.js"
import * as BlankIsUnset from "./internal/blankIsUnset.js"
import * as RedisConnection from "./internal/redisRateLimitStore.js"

/**
 * A short, stable, non-secret name for an API key: the first 16 hex digits of its SHA-256
 * (`"keyless"` for none). Used in store keys so each key has its own budget.
 *
 * @example
 * import { Redacted } from "effect"
 * import { RateLimitStore } from "@clearside/llm"
 *
 * const id = RateLimitStore.fingerprint(Redacted.make("sk-test")) // 16 hex digits
 *
 * @since 0.1.0
 * @category Utils
 */
export const fingerprint = (key: Redacted.Redacted<string> | undefined): string =>
  key === undefined ? "keyless" : createHash("sha256").update(Redacted.value(key)).digest("hex").slice(0, 16)

/**
 * The key namespace of each configured provider, `{ openai: fingerprint(OPENAI_API_KEY), ... }`,
 * for `RateLimit.Options.keyNamespaces`.
 *
 * @example
 * import { Effect } from "effect"
 * import { LlmConfig, RateLimitStore } from "@clearside/llm"
 *
 * const namespaces = Effect.map(LlmConfig.config, RateLimitStore.keyNamespaces)
 *
 * @since 0.1.0
 * @category Utils
 */
export const keyNamespaces = (
  config: Pick<LlmConfig.LlmConfig, "openai" | "anthropic" | "openaiCompatible"> &
    Pick<Partial<LlmConfig.LlmConfig>, "azure" | "compatibleEndpoints">
): Readonly<Record<string, string>> => ({
  ...(config.openai === undefined ? {} : { openai: fingerprint(config.openai.apiKey) }),
  ...(config.anthropic === undefined ? {} : { anthropic: fingerprint(config.anthropic.apiKey) }),
  ...(config.azure === undefined ? {} : { azure: fingerprint(config.azure.apiKey) }),
  ...Object.fromEntries(
    [...(config.openaiCompatible === undefined ? [] : [config.openaiCompatible]), ...(config.compatibleEndpoints ?? [])].map(
      (endpoint) => [endpoint.name, fingerprint(endpoint.apiKey)]
    )
  )
})

/**
 * Provider pauses shared between instances. `announce` pauses a store key for `millis` everywhere;
 * `watch` registers a listener called with the remaining milliseconds when another instance
 * pauses that key, and once for a pause already in force. `watch` only registers: it never blocks
 * or fails.
 *
 * @example
 * import { Effect } from "effect"
 * import type { RateLimitStore } from "@clearside/llm"
 *
 * const none: RateLimitStore.Pauses = { announce: () => Effect.void, watch: () => {} }
 *
 * @since 0.1.0
 * @category Models
 */
export interface Pauses {
  readonly announce: (key: string, millis: number) => Effect.Effect<void>
  readonly watch: (key: string, onPause: (millis: number) => void) => void
}

/**
 * The pauses of the store in use. `RateLimit` reads it when present; without it, a pause stays in
 * the process that saw the 429.
 *
 * @example
 * import { Effect } from "effect"
 * import { RateLimitStore } from "@clearside/llm"
 *
 * const shared = Effect.serviceOption(RateLimitStore.SharedPauses)
 *
 * @since 0.1.0
 * @category Tags
 */
export class SharedPauses extends Context.Tag("@clearside/llm/RateLimitStore/SharedPauses")<SharedPauses, Pauses>() {}

/**
 * 1 while the shared store is unreachable and limits are kept locally, else 0.
 *
 * @example
 * import { Metric } from "effect"
 * import { RateLimitStore } from "@clearside/llm"
 * const degraded = Metric.value(RateLimitStore.storeDegraded)
 *
 * @since 0.1.0
 * @category Metrics
 */
export const storeDegraded = Metric.gauge("llm.client.rate_limit.store_degraded", {
  description: "1 while the shared rate-limit store is unreachable and limits are kept locally"
})

/**
 * Bucket operations answered locally because the shared store was unreachable.
 *
 * @example
 * import { Metric } from "effect"
 * import { RateLimitStore } from "@clearside/llm"
 * const local = Metric.value(RateLimitStore.localDecisions)
 *
 * @since 0.1.0
 * @category Metrics
 */
export const localDecisions = Metric.counter("llm.client.rate_limit.store_local_decisions", {
  description: "Rate-limit decisions taken locally while the shared store was unreachable",
  incremental: true
})

/**
 * Options of the Redis store: `url` (`redis://[:password@]host:port[/db]`), `instances` (default
 * 1) the number of instances sharing the limits, which divides each limit while Redis is
 * unreachable, `timeout` (default 500 ms) for connecting and for each command, and `prefix`
 * (default none) before every Redis key.
 *
 * @example
 * import { Redacted } from "effect"
 * import type { RateLimitStore } from "@clearside/llm"
 *
 * const options: RateLimitStore.RedisOptions = { url: Redacted.make("redis://127.0.0.1:6379"), instances: 4 }
 *
 * @since 0.1.0
 * @category Models
 */
export interface RedisOptions {
  readonly url: Redacted.Redacted<string> | string
  readonly instances?: number
  readonly timeout?: Duration.DurationInput
  readonly prefix?: string
}

/**
 * The store as configured: `memory`, or `redis` with its options.
 *
 * @example
 * import type { RateLimitStore } from "@clearside/llm"
 * const memory: RateLimitStore.StoreConfig = { store: "memory" }
 *
 * @since 0.1.0
 * @category Models
 */
export type StoreConfig = { readonly store: "memory" } | ({ readonly store: "redis" } & RedisOptions)

/** Pauses that stay in the process: `RateLimit` keeps its own, so there is nothing to do. */
const localPauses: Pauses = { announce: () => Effect.void, watch: () => {} }

/** How long Redis is skipped after a failed command, in real time. */
const skipAfterFailureMs = 1000

type Store = Context.Tag.Service<RateLimiter.RateLimiterStore>

/**
 * A memory store whose limits are divided by `instances`: each call is charged `instances` times
 * its tokens, so a bucket holds 1/instances of the calls and refills at 1/instances of the rate,
 * while the remaining level it reports keeps the unit `RateLimit` computes its waits in. Refunds
 * never lift a bucket above its limit.
 */
const divided = (local: Store, instances: number): Store => ({
  fixedWindow: (options) => local.fixedWindow({ ...options, tokens: options.tokens * instances }),
  tokenBucket: (options) => {
    if (options.tokens >= 0) return local.tokenBucket({ ...options, tokens: options.tokens * instances })
    return Effect.flatMap(local.tokenBucket({ ...options, tokens: 0 }), (level) => {
      const refund = Math.min(-options.tokens * instances, options.limit - level)
      return refund > 0 ? local.tokenBucket({ ...options, tokens: -refund }) : Effect.succeed(level)
    })
  }
})

/**
 * Builds the Redis store and its shared pauses for the lifetime of the scope. Waits up to `timeout`
 * for the first connection, and never fails: an unreachable Redis means local limits until it
 * answers.
 *
 * @example
 * import { Duration, Effect } from "effect"
 * import { RateLimitStore } from "@clearside/llm"
 *
 * const program = Effect.scoped(
 *   Effect.flatMap(RateLimitStore.makeRedis({ url: "redis://127.0.0.1:6379" }), ({ store }) =>
 *     store.tokenBucket({ key: "llm:openai:rpm", tokens: 1, limit: 60, refillRate: Duration.seconds(1), allowOverflow: true })
 *   )
 * )
 *
 * @since 0.1.0
 * @category Constructors
 */
export const makeRedis = (
  options: RedisOptions
): Effect.Effect<{ readonly store: Store; readonly pauses: Pauses }, never, Scope.Scope> =>
  Effect.gen(function* () {
    const instances = Math.max(1, Math.floor(options.instances ?? 1))
    const timeoutMs = Duration.toMillis(Duration.decode(options.timeout ?? Duration.millis(500)))
    const connection = yield* RedisConnection.connect({
      url: Redacted.isRedacted(options.url) ? Redacted.value(options.url) : options.url,
      prefix: options.prefix ?? "",
      connectTimeoutMs: timeoutMs,
      commandTimeoutMs: timeoutMs
    })
    const local = divided(yield* Effect.provide(RateLimiter.RateLimiterStore, RateLimiter.layerStoreMemory), instances)
    const prefix = options.prefix ?? ""
    let degraded = false
    let skipUntil = 0

    const enter = (reason: string) =>
      Effect.suspend(() => {
        if (degraded) return Effect.void
        degraded = true
        return Effect.zipRight(
          Metric.set(storeDegraded, 1),
          Effect.logWarning(
            `Rate limit store unreachable (${reason}): limiting locally at 1/${instances} of each limit until Redis answers again`
          ).pipe(Effect.annotateLogs({ rateLimitStore: "redis", instances }))
        )
      })

    const leave = Effect.suspend(() => {
      if (!degraded) return Effect.void
      degraded = false
      return Effect.zipRight(
        Metric.set(storeDegraded, 0),
        Effect.logInfo("Rate limit store reachable again: limits are shared again").pipe(Effect.annotateLogs({ rateLimitStore: "redis" }))
      )
    })

    /** Runs `remote` on Redis when it is up, else (or when it fails) `fallback` locally. */
    const shared = <A>(remote: () => Promise<A>, fallback: Effect.Effect<A, RateLimiter.RateLimiterError>) => {
      const locally = (reason: string) => Effect.zipRight(Effect.zipRight(enter(reason), Metric.increment(localDecisions)), fallback)
      if (!connection.isReady()) return locally(connection.lastError())
      if (skipUntil !== 0) {
        if (Date.now() < skipUntil) return locally(connection.lastError())
        skipUntil = 0
      }
      return Effect.matchEffect(Effect.tryPromise(remote), {
        onFailure: (error) =>
          Effect.suspend(() => {
            skipUntil = Date.now() + skipAfterFailureMs
            return locally(connection.reasonOf(error.cause))
          }),
        onSuccess: (value) => (degraded ? Effect.as(leave, value) : Effect.succeed(value))
      })
    }

    const store: Store = {
      tokenBucket: (o) =>
        shared(
          () => connection.tokenBucket(prefix + o.key, o.tokens, o.limit, Duration.toMillis(o.refillRate), o.allowOverflow),
          local.tokenBucket(o)
        ),
      fixedWindow: (o) =>
        shared(() => connection.fixedWindow(prefix + o.key, o.tokens, Duration.toMillis(o.refillRate), o.limit), local.fixedWindow(o))
    }

    const pauses: Pauses = {
      announce: (key, millis) =>
        connection.isReady()
          ? Effect.ignore(Effect.tryPromise(() => connection.announcePause(`${prefix}${key}`, millis)))
          : Effect.void,
      watch: (key, onPause) => connection.watchPause(`${prefix}${key}`, onPause)
    }
    return { store, pauses }
  })

/**
 * The in-process store (`RateLimiter.layerStoreMemory`), with pauses kept in the process.
 *
 * @example
 * import { Layer } from "effect"
 * import { LlmMock, RateLimit, RateLimitStore } from "@clearside/llm"
 *
 * const layer = RateLimit.layer({ rpm: 60 }).pipe(Layer.provide(LlmMock.layerEcho()), Layer.provide(RateLimitStore.layerMemory))
 *
 * @since 0.1.0
 * @category Layers
 */
export const layerMemory: Layer.Layer<RateLimiter.RateLimiterStore | SharedPauses> = Layer.merge(
  RateLimiter.layerStoreMemory,
  Layer.succeed(SharedPauses, localPauses)
)

/**
 * The Redis store and its shared pauses; see {@link makeRedis}.
 *
 * @example
 * import { Layer } from "effect"
 * import { LlmMock, RateLimit, RateLimitStore } from "@clearside/llm"
 *
 * const layer = RateLimit.layer({ rpm: 500 }).pipe(
 *   Layer.provide(LlmMock.layerEcho()),
 *   Layer.provide(RateLimitStore.layerRedis({ url: "redis://127.0.0.1:6379", instances: 4 }))
 * )
 *
 * @since 0.1.0
 * @category Layers
 */
export const layerRedis = (options: RedisOptions): Layer.Layer<RateLimiter.RateLimiterStore | SharedPauses> =>
  Layer.scopedContext(
    Effect.map(makeRedis(options), ({ pauses, store }) =>
      Context.make(RateLimiter.RateLimiterStore, store).pipe(Context.add(SharedPauses, pauses))
    )
  )

const positive = (name: string, fallback: number) =>
  Config.integer(name).pipe(
    Config.validate({ message: `${name} must be a positive whole number`, validation: (n) => n > 0 }),
    Config.withDefault(fallback)
  )

/**
 * The store from the environment: `LLM_RATE_LIMIT_STORE` (`memory`, the default, or `redis`),
 * `REDIS_URL` (required with `redis`), `LLM_RATE_LIMIT_INSTANCES` (1) and
 * `LLM_RATE_LIMIT_REDIS_TIMEOUT_MS` (500). Blank values count as unset.
 *
 * @example
 * import { Effect } from "effect"
 * import { RateLimitStore } from "@clearside/llm"
 * const store = Effect.map(RateLimitStore.config, (c) => c.store)
 *
 * @since 0.1.0
 * @category Config
 */
export const config: Config.Config<StoreConfig> = Config.all({
  store: Config.string("LLM_RATE_LIMIT_STORE").pipe(
    Config.withDefault(""),
    Config.map((value) => value.trim().toLowerCase()),
    Config.validate({
      message: "LLM_RATE_LIMIT_STORE must be memory or redis",
      validation: (value) => value === "" || value === "memory" || value === "redis"
    })
  ),
  url: Config.option(Config.redacted("REDIS_URL")),
  instances: positive("LLM_RATE_LIMIT_INSTANCES", 1),
  timeout: positive("LLM_RATE_LIMIT_REDIS_TIMEOUT_MS", 500)
}).pipe(
  Config.mapOrFail(({ instances, store, timeout, url }) => {
    if (store !== "redis") return Either.right<StoreConfig>({ store: "memory" })
    const given = Option.filter(url, (value) => Redacted.value(value).trim() !== "")
    if (Option.isNone(given)) {
      return Either.left(
        ConfigError.MissingData(["REDIS_URL"], "REDIS_URL is required when LLM_RATE_LIMIT_STORE=redis (e.g. redis://127.0.0.1:6379)")
      )
    }
    return Either.right<StoreConfig>({ store: "redis", url: given.value, instances, timeout: Duration.millis(timeout) })
  })
)

/**
 * The store chosen by {@link config} (a blank variable counts as unset): {@link layerMemory} or
 * {@link layerRedis}.
 *
 * @example
 * import { Layer } from "effect"
 * import { LlmMock, RateLimit, RateLimitStore } from "@clearside/llm"
 *
 * const layer = RateLimit.layerConfig.pipe(Layer.provide(LlmMock.layerEcho()), Layer.provide(RateLimitStore.layerConfig))
 *
 * @since 0.1.0
 * @category Layers
 */
export const layerConfig: Layer.Layer<RateLimiter.RateLimiterStore | SharedPauses, ConfigError.ConfigError> = Layer.unwrapEffect(
  BlankIsUnset.within(Effect.map(config, (options) => (options.store === "redis" ? layerRedis(options) : layerMemory)))
)
