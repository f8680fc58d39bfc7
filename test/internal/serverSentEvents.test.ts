import { _iterSSEMessages } from "@anthropic-ai/sdk/core/streaming"
import { describe, expect, it } from "@effect/vitest"
import * as ServerSentEvents from "../../src/internal/serverSentEvents.js"

const encoder = new TextEncoder()

/** Decodes `reads` with the library's decoder. */
const decode = (reads: ReadonlyArray<Uint8Array>) => {
  const messages: Array<ServerSentEvents.Message> = []
  const decoder = ServerSentEvents.decoder((message) => messages.push(message))
  for (const bytes of reads) decoder.push(bytes)
  return messages
}

/** Decodes `reads` with the SDK's own decoder, from a response body that delivers them one by one. */
const decodeWithSdk = async (reads: ReadonlyArray<Uint8Array>) => {
  let next = 0
  const body = new ReadableStream<Uint8Array>({
    pull: (controller) => (next < reads.length ? controller.enqueue(reads[next++]!) : controller.close())
  })
  const messages: Array<ServerSentEvents.Message> = []
  for await (const sse of _iterSSEMessages(new Response(body), new AbortController())) {
    messages.push({ event: sse.event ?? undefined, data: sse.data })
  }
  return messages
}

/** `bytes` cut at `cuts` (sorted offsets). */
const split = (bytes: Uint8Array, cuts: ReadonlyArray<number>) => {
  const reads: Array<Uint8Array> = []
  let from = 0
  for (const cut of [...cuts, bytes.length]) {
    reads.push(bytes.slice(from, cut))
    from = cut
  }
  return reads
}

/** A small deterministic generator, so a failing split can be reproduced. */
const random = (seed: number) => () => {
  seed = (seed * 1103515245 + 12345) % 2147483648
  return seed / 2147483648
}

const bodies: Record<string, string> = {
  "LF": "data: {\"a\":1}\n\ndata: {\"a\":2}\n\n",
  "CRLF": "event: message_start\r\ndata: {\"b\":1}\r\n\r\nevent: ping\r\ndata: {}\r\n\r\n",
  "CR": "data: one\r\rdata: two\r\r",
  "mixed line ends": "data: a\r\ndata: b\n\rdata: c\r\r\n\n",
  "multi-line data": "data: first\ndata: second\ndata:\n\n",
  "comments and other fields": ": keep-alive\nid: 7\nretry: 1000\ndata: x\n\n: bye\n\n",
  "no space after the colon, and a field without one": "data:tight\n\ndata\n\nevent:named\n\n",
  "two spaces keep one": "data:  two\n\n",
  "an empty event name and no data is no event": "event:\n\n\n\ndata: after\n\n",
  "unicode split across reads": "data: héllo wörld 🌍 ✓\n\ndata: 日本語\n\n",
  "an unfinished event at the end is dropped": "data: done\n\ndata: cut off",
  "a last line with no line end": "data: done\n\n: comment"
}

describe("server-sent events are decoded as the SDKs decode them", () => {
  it("LF, CRLF and CR line ends; multi-line data; comments; names", () => {
    expect(decode([encoder.encode(bodies["CRLF"]!)])).toStrictEqual([
      { event: "message_start", data: "{\"b\":1}" },
      { event: "ping", data: "{}" }
    ])
    expect(decode([encoder.encode(bodies["CR"]!)])).toStrictEqual([
      { event: undefined, data: "one" },
      { event: undefined, data: "two" }
    ])
    expect(decode([encoder.encode(bodies["multi-line data"]!)])).toStrictEqual([{ event: undefined, data: "first\nsecond\n" }])
    expect(decode([encoder.encode(bodies["comments and other fields"]!)])).toStrictEqual([{ event: undefined, data: "x" }])
    expect(decode([encoder.encode(bodies["no space after the colon, and a field without one"]!)])).toStrictEqual([
      { event: undefined, data: "tight" },
      { event: undefined, data: "" },
      { event: "named", data: "" }
    ])
  })

  it("a CR at the end of one read and an LF at the start of the next end one line", () => {
    expect(decode([encoder.encode("data: a\r"), encoder.encode("\n\r"), encoder.encode("\ndata: b\r\n\r\n")])).toStrictEqual([
      { event: undefined, data: "a" },
      { event: undefined, data: "b" }
    ])
  })

  it("a character split across reads is decoded whole", () => {
    const bytes = encoder.encode("data: 🌍\n\n")
    expect(decode([bytes.slice(0, 8), bytes.slice(8)])).toStrictEqual([{ event: undefined, data: "🌍" }])
  })

  it("an error thrown for an event stops the read and reaches the caller", () => {
    const seen: Array<string> = []
    const decoder = ServerSentEvents.decoder((message) => {
      if (message.event === "error") throw new ServerSentEvents.ErrorEvent(message.data)
      seen.push(message.data)
    })
    expect(() => decoder.push(encoder.encode("data: 1\n\nevent: error\ndata: boom\n\ndata: 2\n\n"))).toThrow(ServerSentEvents.ErrorEvent)
    expect(seen).toStrictEqual(["1"])
  })

  for (const [name, body] of Object.entries(bodies)) {
    it(`same messages as the SDK for every cut into two reads, and 50 random cuts: ${name}`, async () => {
      const bytes = encoder.encode(body)
      const expected = await decodeWithSdk([bytes])
      expect(expected.length).toBeGreaterThan(0)
      for (let cut = 0; cut <= bytes.length; cut++) {
        const reads = split(bytes, [cut])
        expect(decode(reads), `cut at ${cut}`).toStrictEqual(expected)
      }
      const next = random(body.length)
      for (let round = 0; round < 50; round++) {
        const cuts = Array.from({ length: 1 + Math.floor(next() * 6) }, () => Math.floor(next() * bytes.length)).sort((a, b) => a - b)
        const reads = split(bytes, cuts)
        expect(decode(reads), `cuts at ${cuts.join(",")}`).toStrictEqual(await decodeWithSdk(reads))
      }
    })
  }
})

describe("a long line spanning many reads", () => {
  const mib = 20 * 1024 * 1024
  const payload = "x".repeat(mib)
  for (const [name, end] of [["LF", "\n"], ["CRLF", "\r\n"]] as const) {
    it(`a 20 MiB data line in 16 KiB reads is one message with all of it (${name})`, () => {
      const bytes = encoder.encode(`event: big${end}data: ${payload}${end}${end}data: after${end}${end}`)
      const reads: Array<Uint8Array> = []
      for (let at = 0; at < bytes.length; at += 16 * 1024) reads.push(bytes.subarray(at, at + 16 * 1024))
      const messages = decode(reads)
      expect(messages.length).toBe(2)
      expect(messages[0]!.event).toBe("big")
      expect(messages[0]!.data.length).toBe(mib)
      expect(messages[0]!.data === payload).toBe(true)
      expect(messages[1]).toStrictEqual({ event: undefined, data: "after" })
    })
  }
})
