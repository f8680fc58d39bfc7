/**
 * Starts Prism (a dev dependency) on OpenAI's own API description (`test/fixtures/openapi/`) on a
 * free loopback port, for tests that check the library's wire format against a description written
 * by neither the SDK nor this project.
 *
 * - `"validate"` (`prism mock --errors`): every request is validated against the description and a
 *   violation is answered 422 with the list of violations.
 * - `"random"` (`prism mock -d`): answers are random bodies that are valid for the description.
 *
 * Prism cannot stream: it answers `text/event-stream` requests with a 500.
 */
import { type ChildProcess, spawn } from "node:child_process"
import { createServer } from "node:net"
import * as Path from "node:path"

export const openApiDescription = Path.join(import.meta.dirname, "fixtures", "openapi", "openai-chat-completions.yaml")

const prismBin = Path.join(import.meta.dirname, "..", "node_modules", ".bin", "prism")

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

export interface Prism {
  /** The base URL: Prism serves the description's paths at the root, without `/v1`. */
  readonly url: string
  readonly stop: () => Promise<void>
}

const stopped = (child: ChildProcess): Promise<void> =>
  new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) return resolve()
    child.once("exit", () => resolve())
    child.kill("SIGTERM")
  })

/** Starts Prism and resolves once it accepts requests (within 30 s). */
export const startPrism = async (mode: "validate" | "random"): Promise<Prism> => {
  const port = await freePort()
  const args = ["mock", "-h", "127.0.0.1", "-p", String(port), mode === "validate" ? "--errors" : "-d", openApiDescription]
  const child = spawn(prismBin, args, { stdio: ["ignore", "pipe", "pipe"] })
  let output = ""
  const read = (data: Buffer) => {
    output = (output + data.toString("utf8")).slice(-8_000)
  }
  child.stdout?.on("data", read)
  child.stderr?.on("data", read)
  const url = `http://127.0.0.1:${port}`
  const deadline = Date.now() + 30_000
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`Prism exited with ${child.exitCode}:\n${output}`)
    try {
      const response = await fetch(`${url}/models`, { headers: { authorization: "Bearer prism" } })
      await response.arrayBuffer()
      return { url, stop: () => stopped(child) }
    } catch {
      await new Promise((resolve) => setTimeout(resolve, 100))
    }
  }
  await stopped(child)
  throw new Error(`Prism did not start within 30 s:\n${output}`)
}
