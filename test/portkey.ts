/**
 * Starts Portkey's open-source AI gateway (a dev dependency) on a free loopback port, for tests
 * that put a real third-party gateway between the library and an upstream written in the test.
 *
 * The gateway has no option for the address it listens on and listens on every interface, so it
 * is started with a preloaded module that binds a listen given only a port to 127.0.0.1. `--headless`
 * leaves out its web console.
 */
import { type ChildProcess, spawn } from "node:child_process"
import { createServer } from "node:net"
import * as Path from "node:path"

const gatewayMain = Path.join(import.meta.dirname, "..", "node_modules", "@portkey-ai", "gateway", "build", "start-server.js")

/** Rewrites `listen(port)` and `listen(port, callback)` to listen on 127.0.0.1 only. */
const loopbackOnly = [
  `import net from "node:net";`,
  `const listen = net.Server.prototype.listen;`,
  `net.Server.prototype.listen = function (...args) {`,
  `  if (typeof args[0] === "number" && (args[1] === undefined || typeof args[1] === "function")) {`,
  `    if (args[1] === undefined) args[1] = "127.0.0.1"; else args.splice(1, 0, "127.0.0.1");`,
  `  }`,
  `  return listen.apply(this, args);`,
  `};`
].join("\n")

const freePort = (): Promise<number> =>
  new Promise((resolve, reject) => {
    const server = createServer()
    server.once("error", reject)
    server.listen(0, "127.0.0.1", () => {
      const address = server.address()
      const port = typeof address === "object" && address !== null ? address.port : 0
      server.close(() => resolve(port))
    })
  })

export interface Portkey {
  /** The gateway's OpenAI-compatible base URL, `http://127.0.0.1:<port>/v1`. */
  readonly url: string
  readonly stop: () => Promise<void>
}

const stopped = (child: ChildProcess): Promise<void> =>
  new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) return resolve()
    child.once("exit", () => resolve())
    child.kill("SIGTERM")
  })

/** Starts the gateway and resolves once it answers (within 30 s). */
export const startPortkey = async (): Promise<Portkey> => {
  const port = await freePort()
  const child = spawn(
    process.execPath,
    ["--import", `data:text/javascript,${encodeURIComponent(loopbackOnly)}`, gatewayMain, `--port=${port}`, "--headless"],
    { stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, NODE_ENV: "test" } }
  )
  let output = ""
  const read = (data: Buffer) => {
    output = (output + data.toString("utf8")).slice(-8_000)
  }
  child.stdout?.on("data", read)
  child.stderr?.on("data", read)
  const base = `http://127.0.0.1:${port}`
  const deadline = Date.now() + 30_000
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`the gateway exited with ${child.exitCode}:\n${output}`)
    try {
      const response = await fetch(base)
      await response.arrayBuffer()
      return { url: `${base}/v1`, stop: () => stopped(child) }
    } catch {
      await new Promise((resolve) => setTimeout(resolve, 100))
    }
  }
  await stopped(child)
  throw new Error(`the gateway did not start within 30 s:\n${output}`)
}
