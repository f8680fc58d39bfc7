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
 * @internal
 */
export const decoder = (onMessage: (message: Message) => void): Decoder => {
  const text = new TextDecoder()
  // The start of a line the last read did not finish, and whether that read ended on a CR (an LF
  // at the start of the next read then belongs to it).
  let partial = ""
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

  return {
    push: (bytes) => {
      let chunk = text.decode(bytes, { stream: true })
      if (chunk === "") return
      if (afterCR) {
        afterCR = false
        if (chunk.charCodeAt(0) === LF) chunk = chunk.slice(1)
      }
      const all = partial === "" ? chunk : partial + chunk
      let start = 0
      if (all.indexOf("\r") === -1) {
        // Only LF ends lines here: one native search per line.
        for (let end = all.indexOf("\n"); end !== -1; end = all.indexOf("\n", start)) {
          const current = start
          start = end + 1
          line(all.slice(current, end))
        }
      } else {
        for (let i = 0; i < all.length; i++) {
          const code = all.charCodeAt(i)
          if (code !== LF && code !== CR) continue
          const value = all.slice(start, i)
          if (code === CR) {
            if (i + 1 === all.length) afterCR = true
            else if (all.charCodeAt(i + 1) === LF) i++
          }
          start = i + 1
          line(value)
        }
      }
      partial = start === 0 ? all : all.slice(start)
    }
  }
}
