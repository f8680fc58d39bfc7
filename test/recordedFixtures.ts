/**
 * Where the recorded provider responses live: `shared/fixtures/recorded` beside the repository
 * (see its README), or `RECORDED_FIXTURES_DIR` when set.
 */
import * as Path from "node:path"
import { fileURLToPath } from "node:url"

const repositoryRoot = Path.resolve(Path.dirname(fileURLToPath(import.meta.url)), "..")

export const recordedFixturesDir =
  process.env["RECORDED_FIXTURES_DIR"] ?? Path.resolve(repositoryRoot, "../shared/fixtures/recorded")
