/**
 * Where the recorded provider responses live: `test/fixtures/recorded` in this repository (see
 * its README for their source, licence and what each one is worth testing).
 */
import * as Path from "node:path"
import { fileURLToPath } from "node:url"

export const recordedFixturesDir = Path.resolve(Path.dirname(fileURLToPath(import.meta.url)), "fixtures", "recorded")
