/**
 * Gives the Redis tests (test/redis/) a Redis: the one in `REDIS_URL` when it is set, otherwise a
 * `redis-server` started here on a free loopback port, persistence off, in a temporary directory,
 * and stopped when the run ends. Its address is put in `process.env.REDIS_URL` before any test
 * file runs; the test workers inherit it.
 *
 * Without either, the Redis tests are skipped with one line saying how to run them, except under
 * `CI=true`, where that fails the run.
 */
import { redisServerOnPath, startPrivateRedis } from "./redis/support.js"

const howToRun = "install redis-server (apt-get install redis-server) or set REDIS_URL=redis://host:port"

const inCi = () => ["true", "1"].includes((process.env.CI ?? "").toLowerCase())

export default async function setup(): Promise<(() => Promise<void>) | undefined> {
  if (process.env.REDIS_URL?.trim()) return undefined
  if (!redisServerOnPath()) {
    if (inCi()) {
      const message = `CI=true but the Redis tests have no Redis: no REDIS_URL and no redis-server on the PATH; ${howToRun}`
      // Vitest reports a failed global setup after "No test files found" and an empty coverage
      // summary; the cause comes first here too.
      process.stderr.write(`${message}\n`)
      throw new Error(message)
    }
    process.stderr.write(`Redis tests skipped: no REDIS_URL and no redis-server on the PATH; to run them, ${howToRun}.\n`)
    return undefined
  }
  const redis = await startPrivateRedis()
  process.env.REDIS_URL = redis.url
  return async () => {
    delete process.env.REDIS_URL
    await redis.stop()
  }
}
