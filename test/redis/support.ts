/**
 * Support for the Redis tests: the `REDIS_URL` switch, a reachability check, a private
 * `redis-server` that a test may kill and restart, and worker processes.
 */
import { type ChildProcess, spawn } from "node:child_process"
import { accessSync, constants, mkdtempSync, readFileSync, rmSync } from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"
import * as Readline from "node:readline"
import { fileURLToPath } from "node:url"
import { Redis } from "ioredis"
import { freePort } from "../childProcess.js"

/**
 * The Redis the tests use; they run whenever it is set. Set by the caller, or by the global setup
 * (test/globalSetup.ts), which starts a redis-server of its own when the caller sets none.
 */
export const redisUrl: string | undefined = process.env.REDIS_URL?.trim() || undefined

/** Whether `redis-server` can be started: an executable of that name on the PATH. */
export const redisServerOnPath = (): boolean =>
  (process.env.PATH ?? "").split(Path.delimiter).some((dir) => {
    if (dir === "") return false
    try {
      accessSync(Path.join(dir, "redis-server"), constants.X_OK)
      return true
    } catch {
      return false
    }
  })

/** Connects to `url` and pings it; rejects with a readable message when it cannot. */
export const connect = async (url: string): Promise<Redis> => {
  const redis = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null, connectTimeout: 2000 })
  redis.on("error", () => {})
  try {
    await redis.connect()
    await redis.ping()
    return redis
  } catch (error) {
    redis.disconnect()
    throw new Error(`REDIS_URL is set but Redis does not answer at ${url.replace(/\/\/[^@]*@/, "//<redacted>@")}: ${String(error)}`)
  }
}

/**
 * A `redis-server` of the test's own on a free loopback port, persistence off, in the foreground
 * of a child process, working in a temporary directory of its own.
 */
export interface PrivateRedis {
  readonly url: string
  /** SIGKILL: the server dies at once, as in a crash. */
  readonly kill: () => Promise<void>
  /** Starts a new, empty server on the same port. */
  readonly restart: () => Promise<void>
  /** Kills the server and removes its directory. */
  readonly stop: () => Promise<void>
}

const waitForExit = (child: ChildProcess) =>
  new Promise<void>((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) resolve()
    else child.once("exit", () => resolve())
  })

export const startPrivateRedis = async (): Promise<PrivateRedis> => {
  const port = await freePort()
  const url = `redis://127.0.0.1:${port}`
  const dir = mkdtempSync(Path.join(Os.tmpdir(), "clearside-llm-redis-"))
  const logfile = Path.join(dir, "redis.log")
  let child: ChildProcess | undefined
  const launch = async () => {
    const started = spawn(
      "redis-server",
      ["--bind", "127.0.0.1", "--port", String(port), "--save", "", "--appendonly", "no", "--dir", dir, "--logfile", logfile],
      { stdio: "ignore" }
    )
    child = started
    const deadline = Date.now() + 10_000
    for (;;) {
      try {
        const probe = await connect(url)
        probe.disconnect()
        return
      } catch (error) {
        if (started.exitCode !== null || Date.now() > deadline) {
          const log = (() => {
            try {
              return readFileSync(logfile, "utf8").trim().split("\n").slice(-5).join("\n")
            } catch {
              return "(no log)"
            }
          })()
          throw new Error(`redis-server on port ${port} did not answer PING: ${String(error)}\n${log}`)
        }
        await new Promise((resolve) => setTimeout(resolve, 50))
      }
    }
  }
  const kill = async () => {
    if (child === undefined) return
    const dying = child
    child = undefined
    dying.kill("SIGKILL")
    await waitForExit(dying)
  }
  const stop = async () => {
    await kill()
    rmSync(dir, { recursive: true, force: true })
  }
  try {
    await launch()
  } catch (error) {
    await stop()
    throw error
  }
  return { url, kill, restart: launch, stop }
}

/** What a worker is told to do (see worker.ts). */
export interface WorkerConfig {
  readonly simUrl: string
  readonly redisUrl: string
  readonly apiKey: string
  readonly keyPrefix: string
  readonly rpm?: number
  readonly instances: number
  readonly concurrency: number
  readonly durationMs: number
  /** Pause after each call of a loop. */
  readonly thinkMs?: number
}

/** What a worker reports when it is done. */
export interface WorkerResult {
  /** Epoch milliseconds at which each call reached the provider. */
  readonly starts: Array<number>
  successes: number
  readonly failures: Record<string, number>
  /** 429s answered by the provider (not local rejections). */
  readonly providerRateLimits: Array<{ readonly at: number; readonly retryAfterMs: number }>
  readonly logs: Array<string>
  degradedGauge: number
  localDecisions: number
}

export interface Worker {
  readonly ready: Promise<void>
  readonly go: () => void
  readonly result: Promise<WorkerResult>
  readonly kill: () => void
}

const workerPath = Path.join(Path.dirname(fileURLToPath(import.meta.url)), "worker.ts")

export const spawnWorker = (config: WorkerConfig): Worker => {
  const child = spawn(process.execPath, ["--import", "tsx", workerPath, JSON.stringify(config)], {
    stdio: ["pipe", "pipe", "pipe"]
  })
  let stderr = ""
  child.stderr?.on("data", (chunk: Buffer) => {
    stderr += chunk.toString()
  })
  const lines = Readline.createInterface({ input: child.stdout! })
  let markReady: () => void = () => {}
  let resolveResult: (result: WorkerResult) => void = () => {}
  let fail: (error: Error) => void = () => {}
  const ready = new Promise<void>((resolve) => {
    markReady = resolve
  })
  const result = new Promise<WorkerResult>((resolve, reject) => {
    resolveResult = resolve
    fail = reject
  })
  lines.on("line", (line) => {
    const parsed: unknown = JSON.parse(line)
    if (typeof parsed === "object" && parsed !== null && "ready" in parsed) markReady()
    else resolveResult(parsed as WorkerResult)
  })
  child.once("exit", (code) => {
    if (code !== 0) fail(new Error(`worker exited with ${code}: ${stderr}`))
  })
  // A worker that dies before it is ready fails `result`; `ready` must not hang the test then.
  result.catch(() => markReady())
  return {
    ready,
    go: () => child.stdin?.write("go\n"),
    result,
    kill: () => {
      if (child.exitCode === null) child.kill("SIGKILL")
    }
  }
}

/** Starts `count` workers, waits until all are ready, then lets them go at once. */
export const runWorkers = async (configs: ReadonlyArray<WorkerConfig>) => {
  const workers = configs.map(spawnWorker)
  try {
    await Promise.all(workers.map((worker) => worker.ready))
    const startedAt = Date.now()
    for (const worker of workers) worker.go()
    return { startedAt, results: Promise.all(workers.map((worker) => worker.result)), workers }
  } catch (error) {
    for (const worker of workers) worker.kill()
    throw error
  }
}
