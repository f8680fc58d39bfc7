import { describe, expect, it } from "@effect/vitest"
import { Chunk, Effect, Either, Stream } from "effect"
import OpenAI from "openai"
import * as OpenAiWire from "../../src/internal/openAiWire.js"
import * as Redaction from "../../src/internal/redaction.js"
import * as SdkCall from "../../src/internal/sdkCall.js"

const caller: SdkCall.Caller = {
  provider: "openai",
  scrub: Redaction.shapesOnly,
  sdk: { APIError: OpenAI.APIError, APIConnectionError: OpenAI.APIConnectionError, APIConnectionTimeoutError: OpenAI.APIConnectionTimeoutError }
}

const frame = (value: unknown) => `data: ${JSON.stringify(value)}\n\n`
const delta = (text: string) => frame({ id: "c1", model: "m", choices: [{ index: 0, delta: { content: text }, finish_reason: null }] })
const stop = frame({ id: "c1", model: "m", choices: [{ index: 0, delta: {}, finish_reason: "stop" }] }) + "data: [DONE]\n\n"

const encoder = new TextEncoder()

/** A response whose body delivers `reads` one by one. */
const response = (reads: ReadonlyArray<string | Uint8Array>, headers?: Record<string, string>) => {
  let next = 0
  const body = new ReadableStream<Uint8Array>({
    pull: (controller) => {
      if (next === reads.length) return controller.close()
      const read = reads[next++]!
      controller.enqueue(typeof read === "string" ? encoder.encode(read) : read)
    }
  })
  return new Response(body, headers === undefined ? {} : { headers })
}

const streamOf = (answer: () => Response) =>
  SdkCall.stream(
    caller,
    () => Promise.resolve(answer()),
    () => OpenAiWire.streamState("openai", "m"),
    (body) => OpenAiWire.response(body, { provider: "openai", now: 0 }, "m")
  )

const texts = (events: Chunk.Chunk<{ readonly _tag: string; readonly text?: string }>) =>
  Chunk.toReadonlyArray(events).map((event) => event.text ?? event._tag)

describe("a streamed call reads the response body itself", () => {
  it.effect("a body cut into one-byte reads, splitting characters, gives the same events as one read", () =>
    Effect.gen(function* () {
      const body = encoder.encode(delta("Hé") + delta("llo 🌍") + stop)
      const bytes = Array.from(body, (byte) => Uint8Array.of(byte))
      const whole = yield* Stream.runCollect(streamOf(() => response([body])))
      const pieces = yield* Stream.runCollect(streamOf(() => response(bytes)))
      expect(texts(whole)).toStrictEqual(["Hé", "llo 🌍", "Finish"])
      expect(texts(pieces)).toStrictEqual(texts(whole))
    })
  )

  it.effect("an error event fails the stream after the text so far, with the response's request id", () =>
    Effect.gen(function* () {
      const answer = () =>
        response([delta("Hi"), frame({ error: { type: "server_error", message: "boom" } })], { "x-request-id": "req_42" })
      const seen: Array<string> = []
      const result = yield* Effect.either(
        Stream.runForEach(streamOf(answer), (event) => Effect.sync(() => seen.push(event._tag === "TextDelta" ? event.text : event._tag)))
      )
      expect(seen).toStrictEqual(["Hi"])
      expect(Either.isLeft(result) && result.left).toMatchObject({ _tag: "ServerError", requestId: "req_42", textEmitted: 2 })
    })
  )

  it.effect("a response without a body is a ConnectionError", () =>
    Effect.gen(function* () {
      const result = yield* Effect.either(Stream.runCollect(streamOf(() => new Response(null))))
      expect(Either.isLeft(result) && result.left).toMatchObject({
        _tag: "ConnectionError",
        message: "openai connection failed before the answer was complete: the response has no body"
      })
    })
  )
})
