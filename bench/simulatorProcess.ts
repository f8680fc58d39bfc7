/**
 * The provider simulator in its own process, so that it does not share an event loop with the
 * code being measured. Started by `bench/simulator.ts` with the simulator options as JSON in
 * `argv[2]`; prints `listening <url>` and then answers `enqueue`, `stats` and `reset` messages
 * over the IPC channel, which the standalone `simulator/main.ts` does not offer.
 */
import * as Simulator from "../simulator/Simulator.js"

type Message =
  | { readonly id: number; readonly op: "enqueue"; readonly route: Simulator.Route; readonly scripts: ReadonlyArray<Simulator.Script>; readonly times?: number }
  | { readonly id: number; readonly op: "stats" }
  | { readonly id: number; readonly op: "reset" }

const options = JSON.parse(process.argv[2] ?? "{}") as Simulator.Options
const sim = await Simulator.start(options)

const answer = (message: Message): unknown => {
  switch (message.op) {
    case "enqueue": {
      for (let i = 0; i < (message.times ?? 1); i++) sim.enqueue(message.route, ...message.scripts)
      return null
    }
    case "stats":
      return {
        attempts: { openai: sim.attempts("openai"), anthropic: sim.attempts("anthropic") },
        openConnections: sim.openConnections(),
        windows: sim.windows()
      }
    case "reset":
      sim.reset()
      return null
  }
}

process.on("message", (message: Message) => {
  process.send?.({ id: message.id, result: answer(message) })
})
process.on("disconnect", () => {
  void sim.close().then(() => process.exit(0))
})
console.log(`listening ${sim.url}`)
