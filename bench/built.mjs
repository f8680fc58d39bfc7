/**
 * Runs the benchmarks on the library as it ships: `node --import tsx --import ./bench/built.mjs`
 * loads every module of `src/` from its compiled twin in `dist/` (run `npm run build` first), while
 * the benchmarks themselves stay TypeScript.
 *
 * Why: tsx compiles with esbuild's `keepNames`, which wraps every function the library creates in a
 * call that defines its `name`. On a call path that creates closures per call that costs about a
 * third of the library's CPU under load (bench/policies.ts's whole stack with 200 calls in flight:
 * 330 µs per call from source through tsx, 228 µs from `dist/`), a cost no user of the published
 * package pays. The SDKs the benchmarks compare against are compiled JavaScript too.
 */
import { register } from "node:module"

register("./builtHooks.mjs", import.meta.url)
