import { Cause, Channel, Chunk, Stream } from "effect"
import type { LlmError } from "../LlmError.js"
import type { LlmStreamEvent } from "../LlmRequest.js"
import { withTextEmitted } from "./llmErrorWith.js"

type EventStream = Stream.Stream<LlmStreamEvent, LlmError>

type Reader = Channel.Channel<
  Chunk.Chunk<LlmStreamEvent>,
  Chunk.Chunk<LlmStreamEvent>,
  LlmError,
  LlmError,
  unknown,
  unknown
>

/**
 * Runs `stream`; if it fails before its first event, `recover(error)` may name a stream to run
 * instead (or `undefined` to fail with the error). After the first event nothing is restarted: a
 * failure ends the stream with the error, carrying `textEmitted` (characters of text already sent).
 *
 * One reader passes the chunks on, counting the text, and handles the failure: a stream costs one
 * step per chunk, as `Stream.mapChunks` would, and nothing more.
 *
 * @internal
 */
export const recoverBeforeFirstEvent = (
  stream: EventStream,
  recover: (error: LlmError) => EventStream | undefined
): EventStream => {
  const upstream = Stream.toChannel(stream)
  return Stream.fromChannel(
    Channel.suspend(() => {
      let started = false
      let textEmitted = 0
      const reader: Reader = Channel.readWithCause({
        onInput: (chunk: Chunk.Chunk<LlmStreamEvent>) => {
          const events = Chunk.toReadonlyArray(chunk)
          if (events.length > 0) {
            started = true
            for (let i = 0; i < events.length; i++) {
              const event = events[i]!
              if (event._tag === "TextDelta") textEmitted += event.text.length
            }
          }
          return Channel.flatMap(Channel.write(chunk), next)
        },
        onFailure: (cause) => {
          // As `Stream.catchAll`: only a failure is recovered; an interruption or a defect passes.
          const failure = Cause.failureOrCause(cause)
          if (failure._tag === "Right") return Channel.failCause(failure.right)
          const error = failure.left
          if (started) return Channel.fail(withTextEmitted(error, textEmitted))
          const recovered = recover(error)
          return recovered === undefined ? Channel.fail(error) : Stream.toChannel(recovered)
        },
        onDone: Channel.succeed
      })
      const next = () => reader
      return Channel.pipeTo(upstream, reader)
    })
  )
}
