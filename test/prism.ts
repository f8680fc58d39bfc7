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
import * as Path from "node:path"
import { freePort, startServer } from "./childProcess.js"

export const openApiDescription = Path.join(import.meta.dirname, "fixtures", "openapi", "openai-chat-completions.yaml")

const prismBin = Path.join(import.meta.dirname, "..", "node_modules", ".bin", "prism")

export interface Prism {
  /** The base URL: Prism serves the description's paths at the root, without `/v1`. */
  readonly url: string
  readonly stop: () => Promise<void>
}

/** Starts Prism and resolves once it accepts requests (within 30 s). */
export const startPrism = async (mode: "validate" | "random"): Promise<Prism> => {
  const port = await freePort()
  const url = `http://127.0.0.1:${port}`
  const server = await startServer({
    name: "Prism",
    command: prismBin,
    args: ["mock", "-h", "127.0.0.1", "-p", String(port), mode === "validate" ? "--errors" : "-d", openApiDescription],
    readyUrl: `${url}/models`,
    headers: { authorization: "Bearer prism" }
  })
  return { url, stop: server.stop }
}
