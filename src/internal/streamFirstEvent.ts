import { Chunk, Stream } from "effect"
import type { LlmError } from "../LlmError.js"
import type { LlmStreamEvent } from "../LlmRequest.js"
import { withTextEmitted } from "./llmErrorWith.js"

type EventStream = Stream.Stream<LlmStreamEvent, LlmError>

/**
 * Runs `stream`; if it fails before its first event, `recover(error)` may name a stream to run
 * instead (or `undefined` to fail with the error). After the first event nothing is restarted: a
 * failure ends the stream with the error, carrying `textEmitted` (characters of text already sent).
 *
 * @internal
 */
export const recoverBeforeFirstEvent = (
  stream: EventStream,
  recover: (error: LlmError) => EventStream | undefined
): EventStream =>
  Stream.suspend(() => {
    let started = false
    let textEmitted = 0
    return stream.pipe(
      Stream.mapChunks((chunk) => {
        if (Chunk.isNonEmpty(chunk)) {
          started = true
          for (const event of chunk) if (event._tag === "TextDelta") textEmitted += event.text.length
        }
        return chunk
      }),
      Stream.catchAll((error) =>
        started ? Stream.fail(withTextEmitted(error, textEmitted)) : (recover(error) ?? Stream.fail(error))
      )
    )
  })
