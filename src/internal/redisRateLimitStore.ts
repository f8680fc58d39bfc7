/**
 * The Redis side of the shared rate-limit store: one command connection running the token-bucket
 * and fixed-window scripts, and one subscriber connection that hears pauses announced by other
 * processes. Plain promises, so the caller decides how failures are handled.
 *
 * @internal
 */
import { createHash, randomUUID } from "node:crypto"
import { Effect, type Scope } from "effect"
import { Redis } from "ioredis"
import * as Redaction from "./redaction.js"

/**
 * Same rule as `RateLimiter.layerStoreMemory`'s token bucket (a bucket starts full, refills one
 * token per `refill_ms`, may go negative with overflow), with three differences: time is the Redis
 * server's (`TIME`), so instances with skewed clocks agree; both fields live in one hash; and the
 * hash expires once it would be full again, so idle buckets leave nothing behind.
 */
const tokenBucketScript = `
local key = KEYS[1]
local tokens = tonumber(ARGV[1])
local refill_ms = tonumber(ARGV[2])
local limit = tonumber(ARGV[3])
local overflow = ARGV[4] == "1"
local time = redis.call("TIME")
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
local state = redis.call("HMGET", key, "tokens", "last")
local current = tonumber(state[1])
local last = tonumber(state[2])
if not current or not last then
  current = limit
  last = now
else
  local add = math.floor((now - last) / refill_ms)
  if add > 0 then
    current = math.min(limit, current + add)
    last = last + add * refill_ms
  end
end
local next = current - tokens
if overflow or next >= 0 then
  current = next
end
redis.call("HSET", key, "tokens", current, "last", last)
local full_in = math.max(0, limit - current) * refill_ms
redis.call("PEXPIRE", key, math.ceil(full_in) + 1000)
return next
`

/** `RateLimiter.layerStoreMemory`'s fixed window, on a counter with a PX expiry. */
const fixedWindowScript = `
local key = KEYS[1]
local tokens = tonumber(ARGV[1])
local refill_ms = tonumber(ARGV[2])
local limit = tonumber(ARGV[3])
local current = tonumber(redis.call("GET", key))
if not current then
  current = 0
end
local ttl = redis.call("PTTL", key)
if ttl < 0 then
  ttl = 0
end
if limit > 0 and current + tokens > limit then
  return { current + tokens, ttl }
end
local next_ttl = ttl + math.ceil(refill_ms * tokens)
if next_ttl > 0 then
  redis.call("SET", key, current + tokens, "PX", next_ttl)
end
return { current + tokens, next_ttl }
`

/** Extends a pause (never shortens it) and tells every subscriber. */
const pauseScript = `
local key = KEYS[1]
local ms = tonumber(ARGV[1])
if redis.call("PTTL", key) < ms then
  redis.call("SET", key, "1", "PX", ms)
end
redis.call("PUBLISH", ARGV[2], ARGV[3])
return 1
`

interface Script {
  readonly body: string
  readonly sha: string
}

const script = (body: string): Script => ({ body, sha: createHash("sha1").update(body).digest("hex") })

const scripts = {
  tokenBucket: script(tokenBucketScript),
  fixedWindow: script(fixedWindowScript),
  pause: script(pauseScript)
}

/** @internal */
export interface Options {
  readonly url: string
  /** Prefix of every key and of the pause channel. */
  readonly prefix: string
  readonly connectTimeoutMs: number
  readonly commandTimeoutMs: number
}

/** @internal */
export interface Connection {
  /** True while the command connection is up; when false, nothing is sent. */
  readonly isReady: () => boolean
  /** The last connection error seen, for the degraded-mode warning. */
  readonly lastError: () => string
  /** Why a command failed, without the URL's password even where Redis repeats it. */
  readonly reasonOf: (error: unknown) => string
  readonly tokenBucket: (key: string, tokens: number, limit: number, refillMs: number, overflow: boolean) => Promise<number>
  readonly fixedWindow: (key: string, tokens: number, refillMs: number, limit: number | undefined) => Promise<readonly [number, number]>
  /** Pauses `key` for `ms` in Redis and announces it to every other connection. */
  readonly announcePause: (key: string, ms: number) => Promise<void>
  /** Calls `onPause(ms)` when another process pauses `key`, and once for a pause already in force. */
  readonly watchPause: (key: string, onPause: (ms: number) => void) => void
}

/** ioredis's words for a command refused or cut off because the connection is down. */
const disconnected = /enableOfflineQueue|Connection is closed|max retries per request/i

/**
 * Why a command or connection failed, in a few words and without a URL (it may hold a password).
 *
 * @internal
 */
export const reasonOf = (error: unknown, scrub: Redaction.Scrub = Redaction.shapesOnly): string => {
  const message = error instanceof Error ? error.message : String(error)
  return disconnected.test(message) ? "not connected" : scrub(message.replace(/redis:\/\/\S*/g, "redis://<redacted>"), 300)
}

const isNoScript = (error: unknown) => error instanceof Error && error.message.startsWith("NOSCRIPT")

/** Waits up to `ms` of real time (not the Effect clock) for the connection to come up. */
const whenReady = (redis: Redis, ms: number): Promise<void> =>
  redis.status === "ready"
    ? Promise.resolve()
    : new Promise((resolve) => {
        const done = () => {
          clearTimeout(timer)
          redis.off("ready", done)
          resolve()
        }
        const timer = setTimeout(done, ms)
        redis.once("ready", done)
      })

/**
 * Opens both connections. ioredis is set to fail fast: no offline queue (a command while
 * disconnected fails at once), no per-command retries, short connect and command timeouts, and a
 * reconnect every second at most so a returning Redis is used again quickly. Waits up to the
 * connect timeout for the first connection, then goes on either way.
 *
 * @internal
 */
export const connect = (options: Options): Effect.Effect<Connection, never, Scope.Scope> =>
  Effect.gen(function* () {
    const instance = randomUUID()
    const channel = `${options.prefix}clearside-llm:pauses`
    let lastError = "not connected"
    const scrub = Redaction.make(Redaction.urlPasswords(options.url))
    const reason = (error: unknown) => reasonOf(error, scrub)
    const watchers = new Map<string, Set<(ms: number) => void>>()

    const open = () => {
      const redis = new Redis(options.url, {
        enableOfflineQueue: false,
        maxRetriesPerRequest: 0,
        connectTimeout: options.connectTimeoutMs,
        commandTimeout: options.commandTimeoutMs,
        retryStrategy: (times) => Math.min(times * 100, 1000),
        lazyConnect: false
      })
      redis.on("error", (error: unknown) => {
        lastError = reason(error)
      })
      return redis
    }

    const close = (redis: Redis) =>
      Effect.promise(async () => {
        if (redis.status === "ready") await Promise.race([redis.quit().catch(() => undefined), new Promise((r) => setTimeout(r, 1000))])
        redis.disconnect()
      })

    const redis = yield* Effect.acquireRelease(Effect.sync(open), close)
    const subscriber = yield* Effect.acquireRelease(Effect.sync(open), close)

    const run = async (which: Script, key: string, args: ReadonlyArray<string | number>): Promise<unknown> => {
      try {
        return await redis.evalsha(which.sha, 1, key, ...args)
      } catch (error) {
        if (!isNoScript(error)) throw error
        return await redis.eval(which.body, 1, key, ...args)
      }
    }

    const notify = (key: string, ms: number) => {
      const listeners = watchers.get(key)
      if (listeners === undefined || ms <= 0) return
      for (const listener of listeners) listener(ms)
    }

    const catchUp = (key: string) => {
      if (redis.status !== "ready") return
      redis.pttl(key).then(
        (ms) => notify(key, ms),
        (error: unknown) => {
          lastError = reason(error)
        }
      )
    }

    // Only `channel` is subscribed; anything on it that is not an announcement is ignored.
    subscriber.on("message", (_channel: string, message: string) => {
      try {
        const parsed: unknown = JSON.parse(message)
        if (typeof parsed !== "object" || parsed === null || !("key" in parsed) || !("ms" in parsed) || !("origin" in parsed)) return
        const { key, ms, origin } = parsed
        if (origin !== instance && typeof key === "string" && typeof ms === "number" && Number.isFinite(ms)) notify(key, ms)
      } catch {
        // Not one of ours.
      }
    })
    // On every (re)connection: subscribe again, and read pauses announced while disconnected.
    let subscribed: Promise<void> = Promise.resolve()
    subscriber.on("ready", () => {
      subscribed = subscriber.subscribe(channel).then(
        () => {
          for (const key of watchers.keys()) catchUp(key)
        },
        (error: unknown) => {
          lastError = reason(error)
        }
      )
    })

    yield* Effect.promise(async () => {
      await Promise.all([whenReady(redis, options.connectTimeoutMs), whenReady(subscriber, options.connectTimeoutMs)])
      await subscribed
    })

    const connection: Connection = {
      isReady: () => redis.status === "ready",
      lastError: () => lastError,
      reasonOf: reason,
      tokenBucket: async (key, tokens, limit, refillMs, overflow) => {
        const answer = await run(scripts.tokenBucket, key, [tokens, refillMs, limit, overflow ? "1" : "0"])
        if (typeof answer !== "number") throw new Error("unexpected token bucket answer")
        return answer
      },
      fixedWindow: async (key, tokens, refillMs, limit) => {
        const answer = await run(scripts.fixedWindow, key, [tokens, refillMs, limit ?? 0])
        if (!Array.isArray(answer)) throw new Error("unexpected fixed window answer")
        return [Number(answer[0]), Number(answer[1])] as const
      },
      announcePause: async (key, ms) => {
        // Within what a timer holds: Redis would refuse a non-finite PX, and a watcher would sleep on it.
        if (!Number.isFinite(ms) || ms <= 0) return
        const duration = Math.min(Math.ceil(ms), 2_147_483_647)
        await run(scripts.pause, key, [duration, channel, JSON.stringify({ key, ms: duration, origin: instance })])
      },
      watchPause: (key, onPause) => {
        let listeners = watchers.get(key)
        if (listeners === undefined) {
          listeners = new Set()
          watchers.set(key, listeners)
        }
        listeners.add(onPause)
        catchUp(key)
      }
    }
    return connection
  })
