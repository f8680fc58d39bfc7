/**
 * The resolve hook of `bench/built.mjs`: a module under `src/` resolves to its compiled twin under
 * `dist/`, and fails clearly when that was not built.
 */
import { existsSync } from "node:fs"
import { fileURLToPath } from "node:url"

const source = new URL("../src/", import.meta.url).href
const built = new URL("../dist/", import.meta.url).href

export async function resolve(specifier, context, next) {
  const resolved = await next(specifier, context)
  if (!resolved.url.startsWith(source)) return resolved
  const url = built + resolved.url.slice(source.length).replace(/\.ts$/, ".js")
  if (!existsSync(fileURLToPath(url))) throw new Error(`${url} is missing: run \`npm run build\` before the benchmarks`)
  return { ...resolved, url, format: "module" }
}
