/**
 * An incremental JSON parser for streamed structured output: fed the answer's text fragment by
 * fragment, it gives the value parsed so far after each one. Every character is read once, so a
 * whole stream costs time linear in its length; a snapshot copies only the containers still open
 * (the path from the root to the value being read), never the finished ones.
 *
 * @internal
 */

type Frame =
  | { readonly kind: "object"; readonly value: Record<string, unknown>; key: string | undefined; expect: "key" | "colon" | "value" | "next" }
  | { readonly kind: "array"; readonly value: Array<unknown>; expect: "value" | "next" }

type Token =
  | { readonly kind: "string"; text: string; escape: boolean; hex: string | undefined; readonly isKey: boolean }
  | { readonly kind: "number"; text: string }
  | { readonly kind: "literal"; text: string }

const literals: ReadonlyArray<readonly [string, unknown]> = [
  ["true", true],
  ["false", false],
  ["null", null]
]

const escapes: Readonly<Record<string, string>> = { '"': '"', "\\": "\\", "/": "/", b: "\b", f: "\f", n: "\n", r: "\r", t: "\t" }

const isWhitespace = (c: string) => c === " " || c === "\n" || c === "\r" || c === "\t"

const wholeNumber = /^-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?$/

const partialNumber = (text: string): number | undefined => {
  const match = /^-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?/.exec(text)
  return match === null ? undefined : Number(match[0])
}

/**
 * A parser of one JSON document arriving in pieces. Text before the first `{` or `[` (a code fence,
 * a sentence) is skipped; `failed()` turns true at the first character that cannot continue JSON,
 * and the value stays what it was.
 *
 * @internal
 */
export interface Parser {
  /** Reads more text; true when the value so far changed. */
  readonly push: (text: string) => boolean
  /** The value so far: `undefined` before the document starts. */
  readonly value: () => unknown
  readonly done: () => boolean
  readonly failed: () => boolean
}

/** @internal */
export const make = (): Parser => {
  const stack: Array<Frame> = []
  let token: Token | undefined
  let started = false
  let done = false
  let failed = false
  let root: unknown = undefined
  // Set by a character that changes the value so far (not by keys, colons, commas or closings).
  let dirty = false

  const complete = (value: unknown) => {
    const parent = stack[stack.length - 1]
    if (parent === undefined) {
      root = value
      done = true
    } else if (parent.kind === "object") {
      parent.value[parent.key!] = value
      parent.key = undefined
      parent.expect = "next"
    } else {
      parent.value.push(value)
      parent.expect = "next"
    }
  }

  const finishToken = (): boolean => {
    const t = token!
    token = undefined
    if (t.kind === "number") {
      if (!wholeNumber.test(t.text)) return false
      complete(Number(t.text))
      return true
    }
    if (t.kind === "literal") {
      const literal = literals.find(([word]) => word === t.text)
      if (literal === undefined) return false
      complete(literal[1])
      return true
    }
    return true
  }

  /** Where a value may start: the frame expects one. */
  const expectsValue = (): boolean => {
    const top = stack[stack.length - 1]
    return top === undefined ? !done : top.expect === "value"
  }

  const step = (c: string): boolean => {
    if (token !== undefined) {
      if (token.kind === "string") {
        if (token.hex !== undefined) {
          if (!/[0-9a-fA-F]/.test(c)) return false
          token.hex += c
          if (token.hex.length === 4) {
            token.text += String.fromCharCode(parseInt(token.hex, 16))
            token.hex = undefined
            dirty ||= !token.isKey
          }
          return true
        }
        if (token.escape) {
          token.escape = false
          if (c === "u") {
            token.hex = ""
            return true
          }
          const escaped = escapes[c]
          if (escaped === undefined) return false
          token.text += escaped
          dirty ||= !token.isKey
          return true
        }
        if (c === "\\") {
          token.escape = true
          return true
        }
        if (c === '"') {
          const t = token
          token = undefined
          if (t.isKey) {
            const top = stack[stack.length - 1] as Extract<Frame, { kind: "object" }>
            top.key = t.text
            top.expect = "colon"
          } else complete(t.text)
          return true
        }
        token.text += c
        dirty ||= !token.isKey
        return true
      }
      if (token.kind === "number" ? /[0-9eE.+-]/.test(c) : /[a-z]/.test(c)) {
        token.text += c
        dirty ||= token.kind === "number"
        return true
      }
      if (!finishToken()) return false
    }
    if (isWhitespace(c)) return true
    const top = stack[stack.length - 1]
    if (top !== undefined && top.expect === "next") {
      if (c === ",") {
        top.expect = top.kind === "object" ? "key" : "value"
        return true
      }
      if ((c === "}" && top.kind === "object") || (c === "]" && top.kind === "array")) {
        stack.pop()
        complete(top.value)
        return true
      }
      return false
    }
    if (top !== undefined && top.kind === "object") {
      if (top.expect === "colon") {
        if (c !== ":") return false
        top.expect = "value"
        return true
      }
      if (top.expect === "key") {
        if (c === '"') {
          token = { kind: "string", text: "", escape: false, hex: undefined, isKey: true }
          return true
        }
        // `{}` and a trailing comma before `}`.
        if (c === "}") {
          stack.pop()
          complete(top.value)
          return true
        }
        return false
      }
    }
    if (top !== undefined && top.kind === "array" && c === "]") {
      stack.pop()
      complete(top.value)
      return true
    }
    if (!expectsValue()) return false
    dirty = true
    if (c === "{") stack.push({ kind: "object", value: {}, key: undefined, expect: "key" })
    else if (c === "[") stack.push({ kind: "array", value: [], expect: "value" })
    else if (c === '"') token = { kind: "string", text: "", escape: false, hex: undefined, isKey: false }
    else if (c === "-" || (c >= "0" && c <= "9")) token = { kind: "number", text: c }
    else if (c === "t" || c === "f" || c === "n") token = { kind: "literal", text: c }
    else return false
    return true
  }

  const push = (text: string): boolean => {
    if (failed || done) return false
    for (let i = 0; i < text.length; i++) {
      const c = text[i]!
      if (!started) {
        if (c !== "{" && c !== "[") continue
        started = true
      }
      if (done) {
        if (!isWhitespace(c)) break
        continue
      }
      if (!step(c)) {
        failed = true
        break
      }
    }
    const changed = dirty
    dirty = false
    return changed
  }

  const pending = (): { readonly present: boolean; readonly value?: unknown } => {
    if (token === undefined || (token.kind === "string" && token.isKey)) return { present: false }
    if (token.kind === "string") return { present: true, value: token.text }
    if (token.kind === "number") {
      const n = partialNumber(token.text)
      return n === undefined ? { present: false } : { present: true, value: n }
    }
    const text = token.text
    const literal = literals.find(([word]) => word.startsWith(text))
    return literal === undefined ? { present: false } : { present: true, value: literal[1] }
  }

  const value = (): unknown => {
    if (done) return root
    if (stack.length === 0) return undefined
    let child = pending()
    for (let i = stack.length - 1; i >= 0; i--) {
      const frame = stack[i]!
      if (frame.kind === "object") {
        const copy: Record<string, unknown> = { ...frame.value }
        if (child.present && frame.key !== undefined) copy[frame.key] = child.value
        child = { present: true, value: copy }
      } else {
        const copy = child.present ? [...frame.value, child.value] : [...frame.value]
        child = { present: true, value: copy }
      }
    }
    return child.value
  }

  return { push, value, done: () => done, failed: () => failed }
}
