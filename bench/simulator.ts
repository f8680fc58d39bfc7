/**
 * Starts `bench/simulatorProcess.ts` as a child process and talks to it: the URL it listens on,
 * scripts to enqueue, its counters, and a `close` that ends the process.
 */
import { fork } from "node:child_process"
import { fileURLToPath } from "node:url"
import type * as Simulator from "../simulator/Simulator.js"

/**
 * What the benchmarks and the soak need from a simulator, in this process or in a child.
 */
export interface Stats {
  readonly attempts: { readonly openai: number; readonly anthropic: number }
  readonly openConnections: number
  readonly windows: ReadonlyArray<{ readonly start: number; readonly accepted: number; readonly rejected: number; readonly tokens: number }>
}

/**
 * A simulator reached over IPC.
 */
export interface Remote {
  readonly url: string
  readonly pid: number
  readonly enqueue: (route: Simulator.Route, scripts: ReadonlyArray<Simulator.Script>, times?: number) => Promise<void>
  readonly stats: () => Promise<Stats>
  readonly reset: () => Promise<void>
  readonly close: () => Promise<void>
}

const entry = fileURLToPath(new URL("./simulatorProcess.ts", import.meta.url))

/**
 * Forks the simulator process and waits for the URL it prints.
 */
export const spawn = (options: Simulator.Options = {}): Promise<Remote> =>
  new Promise((resolve, reject) => {
    const child = fork(entry, [JSON.stringify({ port: 0, ...options })], {
      execArgv: ["--import", "tsx"],
      stdio: ["ignore", "pipe", "inherit", "ipc"]
    })
    let next = 0
    const pending = new Map<number, (value: unknown) => void>()
    child.on("message", (message: { id: number; result: unknown }) => {
      pending.get(message.id)?.(message.result)
      pending.delete(message.id)
    })
    const call = <A>(message: Record<string, unknown>) =>
      new Promise<A>((done) => {
        const id = next++
        pending.set(id, done as (value: unknown) => void)
        child.send({ ...message, id })
      })
    const exited = new Promise<void>((done) => child.once("exit", () => done()))
    child.once("exit", (code) => reject(new Error(`simulator process exited with code ${code}`)))
    let buffer = ""
    child.stdout?.on("data", (data: Buffer) => {
      buffer += data.toString()
      const match = /listening (http:\/\/\S+)/.exec(buffer)
      if (match?.[1] === undefined) return
      child.stdout?.removeAllListeners("data")
      child.stdout?.resume()
      resolve({
        url: match[1],
        pid: child.pid ?? 0,
        enqueue: (route, scripts, times) => call({ op: "enqueue", route, scripts, times }),
        stats: () => call<Stats>({ op: "stats" }),
        reset: () => call({ op: "reset" }),
        close: () => {
          child.disconnect()
          return exited
        }
      })
    })
  })
