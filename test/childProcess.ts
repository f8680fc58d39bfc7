/**
 * Servers the tests start as child processes (Prism, Portkey's gateway, redis-server): a free
 * loopback port to give them, and a start that waits until the server answers.
 */
import { type ChildProcess, spawn } from "node:child_process"
import { createServer } from "node:net"

/** A free TCP port on 127.0.0.1. */
export const freePort = (): Promise<number> =>
  new Promise((resolve, reject) => {
    const server = createServer()
    server.once("error", reject)
    server.listen(0, "127.0.0.1", () => {
      const address = server.address()
      const port = typeof address === "object" && address !== null ? address.port : 0
      server.close(() => resolve(port))
    })
  })

/** Stops a child process (SIGTERM) and resolves once it has exited. */
export const stopped = (child: ChildProcess): Promise<void> =>
  new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) return resolve()
    child.once("exit", () => resolve())
    child.kill("SIGTERM")
  })

/**
 * Spawns `command` and resolves once a GET of `readyUrl` gets any answer (within 30 s); its stop
 * ends the process. Fails with the process's last output when it exits or does not answer in time.
 */
export const startServer = async (options: {
  readonly name: string
  readonly command: string
  readonly args: ReadonlyArray<string>
  readonly readyUrl: string
  readonly headers?: Record<string, string>
  readonly env?: NodeJS.ProcessEnv
}): Promise<{ readonly stop: () => Promise<void> }> => {
  const child = spawn(options.command, [...options.args], {
    stdio: ["ignore", "pipe", "pipe"],
    ...(options.env === undefined ? {} : { env: options.env })
  })
  let output = ""
  const read = (data: Buffer) => {
    output = (output + data.toString("utf8")).slice(-8_000)
  }
  child.stdout?.on("data", read)
  child.stderr?.on("data", read)
  const deadline = Date.now() + 30_000
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`${options.name} exited with ${child.exitCode}:\n${output}`)
    try {
      const response = await fetch(options.readyUrl, options.headers === undefined ? {} : { headers: options.headers })
      await response.arrayBuffer()
      return { stop: () => stopped(child) }
    } catch {
      await new Promise((resolve) => setTimeout(resolve, 100))
    }
  }
  await stopped(child)
  throw new Error(`${options.name} did not start within 30 s:\n${output}`)
}
