/**
 * Runs the provider simulator from the command line until Ctrl-C.
 *
 * @example
 * // npm run simulator -- --port 8787 --fault-rate 0.1 --seed 1 --faults 429,503 --rpm 60 --tpm 40000
 *
 * @since 0.1.0
 */
import { NodeRuntime } from "@effect/platform-node"
import { Effect } from "effect"
import { parseArgs } from "node:util"
import * as Simulator from "./Simulator.js"

const usage = `Usage: npm run simulator -- [options]

  --port <n>         TCP port (default 8787, 0 picks a free one)
  --host <address>   interface to listen on (default 127.0.0.1)
  --fault-rate <p>   probability 0..1 of a random fault on an unscripted request (default 0)
  --faults <list>    comma-separated faults to draw from: ${Simulator.allFaults.join(",")}
  --seed <n>         seed of the fault sequence (default 1)
  --rpm <n>          requests accepted per window, then 429 with retry-after
  --tpm <n>          tokens (prompt estimate + max_tokens) accepted per window
  --window-ms <n>    length of the limit window (default 60000)
  --help             show this help`

/** Parses the flags into simulator options, or returns a message saying what is wrong. */
const parse = (argv: ReadonlyArray<string>): Simulator.Options | string => {
  const { values } = parseArgs({
    args: [...argv],
    strict: false,
    options: {
      port: { type: "string" },
      host: { type: "string" },
      "fault-rate": { type: "string" },
      faults: { type: "string" },
      seed: { type: "string" },
      rpm: { type: "string" },
      tpm: { type: "string" },
      "window-ms": { type: "string" },
      help: { type: "boolean" }
    }
  })
  if (values.help === true) return usage
  const number = (name: string, min: number, max = Number.MAX_SAFE_INTEGER): number | string | undefined => {
    const raw = values[name]
    if (raw === undefined) return undefined
    const value = Number(raw)
    return typeof raw === "string" && raw !== "" && Number.isFinite(value) && value >= min && value <= max
      ? value
      : `--${name} must be a number between ${min} and ${max}, got ${String(raw)}`
  }
  const port = number("port", 0, 65535)
  const faultRate = number("fault-rate", 0, 1)
  const seed = number("seed", 0)
  const rpm = number("rpm", 1)
  const tpm = number("tpm", 1)
  const windowMs = number("window-ms", 1)
  for (const value of [port, faultRate, seed, rpm, tpm, windowMs]) if (typeof value === "string") return value
  const faults = typeof values.faults === "string" ? values.faults.split(",").map((f) => f.trim()).filter((f) => f !== "") : []
  const unknown = faults.filter((f) => !(Simulator.allFaults as ReadonlyArray<string>).includes(f))
  if (unknown.length > 0) return `unknown fault kind(s): ${unknown.join(", ")}; known: ${Simulator.allFaults.join(", ")}`
  return {
    port: typeof port === "number" ? port : 8787,
    ...(typeof values.host === "string" ? { host: values.host } : {}),
    ...(typeof faultRate === "number" ? { faultRate } : {}),
    ...(faults.length > 0 ? { faults: faults as ReadonlyArray<Simulator.FaultKind> } : {}),
    ...(typeof seed === "number" ? { seed } : {}),
    ...(typeof rpm === "number" ? { rpm } : {}),
    ...(typeof tpm === "number" ? { tpm } : {}),
    ...(typeof windowMs === "number" ? { windowMs } : {})
  }
}

const options = parse(process.argv.slice(2))
if (typeof options === "string") {
  console.log(options)
  process.exit(options === usage ? 0 : 2)
}

NodeRuntime.runMain(
  Effect.scoped(
    Effect.gen(function* () {
      const sim = yield* Simulator.make(options)
      console.log(`provider simulator listening on ${sim.url}`)
      console.log(`  OpenAI:    baseURL ${sim.url}/v1`)
      console.log(`  Anthropic: baseURL ${sim.url}`)
      console.log("Ctrl-C to stop")
      return yield* Effect.never
    })
  )
)
