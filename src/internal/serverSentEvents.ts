/**
 * Server-sent events, decoded a network read at a time.
 *
 * The SDKs decode a stream through three async generators, so every event costs several promise
 * turns, and they copy the rest of the read buffer once per event: a read holding many events (a
 * fast provider, or a busy consumer that lets them pile up) costs time quadratic in its size. This
 * decoder takes each read whole, in one synchronous pass, with the same rules: lines end at CRLF,
 * LF or CR; a blank line ends an event; `event:` and `data:` fields are read (several data lines
 * join with LF), comments and other fields are skipped; an unfinished event at the end of the body
 * is dropped.
 *
 * @internal
 */

/**
 * One event: its `event:` field, if any, and its data.
 *
 * @internal
 */
export interface Message {
  readonly event: string | undefined
  readonly data: string
}

/**
 * An `error` event in the body of a successful response, thrown by a provider's decoding so that
 * it maps like the SDK's own error for it. `body` is the event's data.
 *
 * @internal
 */
export class ErrorEvent {
  constructor(readonly body: unknown) {}
}

/**
 * A decoder for one body: `push` each read to it; it calls `onMessage` for every event the read
 * completes.
 *
 * @internal
 */
export interface Decoder {
  readonly push: (bytes: Uint8Array) => void
}

const LF = 10
const CR = 13

/**
 * A fresh {@link Decoder}. An exception thrown by `onMessage` stops the read it came from and
 * propagates out of `push`.
 *
 * Linear in the body: each read is scanned once, from its own start, and a line that spans reads is
 * kept as its pieces and joined once, when it ends. (Joining the unfinished line to every new read
 * and searching the whole again made one long line cost time quadratic in its length: a 20 MiB
 * `data:` line in 16 KiB reads took 10 s; now 0.1 s.)
 *
 * @internal
 */
export const decoder = (onMessage: (message: Message) => void): Decoder => {
  const text = new TextDecoder()
  // The pieces of a line the reads so far did not finish, and whether the last read ended on a CR
  // (an LF at the start of the next read then belongs to it).
  let partial: Array<string> = []
  let afterCR = false
  let event: string | undefined
  let data: Array<string> = []

  const line = (value: string) => {
    if (value === "") {
      // Like the SDKs, an event with neither a name nor data is no event.
      if ((event === undefined || event === "") && data.length === 0) return
      const message: Message = { event, data: data.length === 1 ? data[0]! : data.join("\n") }
      event = undefined
      data = []
      onMessage(message)
      return
    }
    if (value.charCodeAt(0) === 58 /* : */) return
    const colon = value.indexOf(":")
    const field = colon === -1 ? value : value.slice(0, colon)
    if (field !== "data" && field !== "event") return
    let start = colon === -1 ? value.length : colon + 1
    if (value.charCodeAt(start) === 32 /* space */) start++
    if (field === "data") data.push(value.slice(start))
    else event = value.slice(start)
  }

  // The line ending at `end` of `chunk`, whose first piece (if any) came from earlier reads.
  const lineEnding = (chunk: string, start: number, end: number) => {
    if (partial.length === 0) return line(chunk.slice(start, end))
    partial.push(chunk.slice(start, end))
    const value = partial.join("")
    partial = []
    line(value)
  }

  return {
    push: (bytes) => {
      let chunk = text.decode(bytes, { stream: true })
      if (chunk === "") return
      if (afterCR) {
        afterCR = false
        if (chunk.charCodeAt(0) === LF) chunk = chunk.slice(1)
      }
      let start = 0
      if (chunk.indexOf("\r") === -1) {
        // Only LF ends lines here: one native search per line.
        for (let end = chunk.indexOf("\n"); end !== -1; end = chunk.indexOf("\n", start)) {
          const current = start
          start = end + 1
          lineEnding(chunk, current, end)
        }
      } else {
        for (let i = 0; i < chunk.length; i++) {
          const code = chunk.charCodeAt(i)
          if (code !== LF && code !== CR) continue
          const current = start
          const end = i
          if (code === CR) {
            if (i + 1 === chunk.length) afterCR = true
            else if (chunk.charCodeAt(i + 1) === LF) i++
          }
          start = i + 1
          lineEnding(chunk, current, end)
        }
      }
      if (start < chunk.length) partial.push(start === 0 ? chunk : chunk.slice(start))
    }
  }
}
