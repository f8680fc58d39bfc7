/**
 * Starts Portkey's open-source AI gateway (a dev dependency) on a free loopback port, for tests
 * that put a real third-party gateway between the library and an upstream written in the test.
 *
 * The gateway has no option for the address it listens on and listens on every interface, so it
 * is started with a preloaded module that binds a listen given only a port to 127.0.0.1. `--headless`
 * leaves out its web console.
 */
import * as Path from "node:path"
import { freePort, startServer } from "./childProcess.js"

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

export interface Portkey {
  /** The gateway's OpenAI-compatible base URL, `http://127.0.0.1:<port>/v1`. */
  readonly url: string
  readonly stop: () => Promise<void>
}

/** Starts the gateway and resolves once it answers (within 30 s). */
export const startPortkey = async (): Promise<Portkey> => {
  const port = await freePort()
  const base = `http://127.0.0.1:${port}`
  const server = await startServer({
    name: "the gateway",
    command: process.execPath,
    args: ["--import", `data:text/javascript,${encodeURIComponent(loopbackOnly)}`, gatewayMain, `--port=${port}`, "--headless"],
    readyUrl: base,
    env: { ...process.env, NODE_ENV: "test" }
  })
  return { url: `${base}/v1`, stop: server.stop }
}
