import { describe, expect, it } from "@effect/vitest"
import { Duration, Effect, Match, Schema } from "effect"
import * as LlmError from "../src/LlmError.js"
import * as LlmMock from "../src/LlmMock.js"

const retryableByDefault: Record<LlmError.LlmError["_tag"], boolean> = {
  RateLimitError: true,
  QuotaExceededError: false,
  TimeoutError: true,
  InvalidRequestError: false,
  AuthenticationError: false,
  NotFoundError: false,
  ServerError: true,
  OverloadedError: true,
  ConnectionError: true,
  CircuitOpenError: false,
  ResponseParseError: true,
  OutputValidationError: false,
  ToolCallError: false,
  MaxStepsError: false
}

const build = (tag: LlmError.LlmError["_tag"]): LlmError.LlmError => {
  const common = { provider: "openai", message: `${tag} happened` }
  switch (tag) {
    case "RateLimitError":
      return new LlmError.RateLimitError(common)
    case "QuotaExceededError":
      return new LlmError.QuotaExceededError(common)
    case "TimeoutError":
      return new LlmError.TimeoutError(common)
    case "InvalidRequestError":
      return new LlmError.InvalidRequestError(common)
    case "AuthenticationError":
      return new LlmError.AuthenticationError(common)
    case "NotFoundError":
      return new LlmError.NotFoundError(common)
    case "ServerError":
      return new LlmError.ServerError({ ...common, status: 500 })
    case "OverloadedError":
      return new LlmError.OverloadedError(common)
    case "ConnectionError":
      return new LlmError.ConnectionError(common)
    case "CircuitOpenError":
      return new LlmError.CircuitOpenError(common)
    case "ResponseParseError":
      return new LlmError.ResponseParseError(common)
    case "OutputValidationError":
      return new LlmError.OutputValidationError({ ...common, text: "{", attempts: 2 })
    case "ToolCallError":
      return new LlmError.ToolCallError({ ...common, tool: "lookup", callId: "call_1" })
    case "MaxStepsError":
      return new LlmError.MaxStepsError({ ...common, steps: 8 })
  }
}

describe("each error class has its default retryable", () => {
  for (const tag of LlmError.tags) {
    it(`${tag} is ${retryableByDefault[tag] ? "" : "not "}retryable by default`, () => {
      const error = build(tag)
      expect(error._tag).toBe(tag)
      expect(error.retryable).toBe(retryableByDefault[tag])
    })
  }

  it("the tag list covers every member of the union exactly once", () => {
    expect([...LlmError.tags].sort()).toEqual(Object.keys(retryableByDefault).sort())
  })

  it("an explicit retryable overrides the default", () => {
    expect(new LlmError.ServerError({ provider: "openai", message: "no", status: 501, retryable: false }).retryable).toBe(false)
    expect(new LlmError.InvalidRequestError({ provider: "openai", message: "later", retryable: true }).retryable).toBe(true)
  })
})

describe("errors are matched by tag", () => {
  it.effect("catchTag handles only the matching member", () =>
    Effect.gen(function* () {
      const handled = yield* Effect.fail(build("RateLimitError")).pipe(
        Effect.catchTag("RateLimitError", (e) => Effect.succeed(`limited by ${e.provider}`)),
        Effect.catchAll(() => Effect.succeed("other"))
      )
      const passedOn = yield* Effect.fail(build("ServerError")).pipe(
        Effect.catchTag("RateLimitError", () => Effect.succeed("limited")),
        Effect.flip
      )
      expect(handled).toBe("limited by openai")
      expect(passedOn._tag).toBe("ServerError")
    }))

  it.effect("catchTags routes several members and leaves the rest in the error channel", () =>
    Effect.gen(function* () {
      const recover = (error: LlmError.LlmError) =>
        Effect.fail(error).pipe(
          Effect.catchTags({
            TimeoutError: () => Effect.succeed("timeout"),
            OverloadedError: () => Effect.succeed("overloaded")
          }),
          Effect.either
        )
      const timeout = yield* recover(build("TimeoutError"))
      const overloaded = yield* recover(build("OverloadedError"))
      const auth = yield* recover(build("AuthenticationError"))
      expect(timeout._tag === "Right" && timeout.right).toBe("timeout")
      expect(overloaded._tag === "Right" && overloaded.right).toBe("overloaded")
      expect(auth._tag === "Left" && auth.left._tag).toBe("AuthenticationError")
    }))

  it("Match.tag distinguishes every member", () => {
    const describe = Match.type<LlmError.LlmError>().pipe(
      Match.tag("RateLimitError", "QuotaExceededError", () => "slow down"),
      Match.tag("AuthenticationError", () => "check the key"),
      Match.orElse((e) => (e.retryable ? "try again" : "give up"))
    )
    expect(describe(build("QuotaExceededError"))).toBe("slow down")
    expect(describe(build("AuthenticationError"))).toBe("check the key")
    expect(describe(build("ConnectionError"))).toBe("try again")
    expect(describe(build("NotFoundError"))).toBe("give up")
  })

  it("isLlmError recognises members and nothing else", () => {
    for (const tag of LlmError.tags) expect(LlmError.isLlmError(build(tag))).toBe(true)
    expect(LlmError.isLlmError(new Error("boom"))).toBe(false)
    expect(LlmError.isLlmError({ _tag: "SomethingElse" })).toBe(false)
    expect(LlmError.isLlmError(null)).toBe(false)
  })
})

describe("errors carry readable messages and their fields", () => {
  it("message, provider and optional fields are kept as given", () => {
    const error = new LlmError.RateLimitError({
      provider: "anthropic",
      message: "Number of request tokens has exceeded your per-minute rate limit",
      retryAfter: Duration.seconds(12),
      requestId: "req_123",
      headers: { "anthropic-ratelimit-requests-remaining": "0" }
    })
    expect(error.message).toBe("Number of request tokens has exceeded your per-minute rate limit")
    expect(error.provider).toBe("anthropic")
    expect(error.retryAfter).toEqual(Duration.seconds(12))
    expect(error.requestId).toBe("req_123")
    expect(error.headers?.["anthropic-ratelimit-requests-remaining"]).toBe("0")
    expect(error).toBeInstanceOf(Error)
  })

  it("an error's string form names its tag and message", () => {
    const error = new LlmError.ServerError({ provider: "openai", message: "Bad gateway", status: 502 })
    expect(String(error)).toContain("ServerError")
    expect(String(error)).toContain("Bad gateway")
  })

  it("errors round-trip through the union Schema", () => {
    const original = new LlmError.TimeoutError({ provider: "openai", message: "No first token within 5s", phase: "first-token" })
    const encoded = Schema.encodeSync(LlmError.LlmError)(original)
    const decoded = Schema.decodeUnknownSync(LlmError.LlmError)(encoded)
    expect(decoded).toBeInstanceOf(LlmError.TimeoutError)
    expect(decoded._tag === "TimeoutError" && decoded.phase).toBe("first-token")
  })

  it("a field of the wrong type is refused at construction", () => {
    expect(() => new LlmError.ServerError({ provider: "openai", message: "x", status: "500" as unknown as number })).toThrow()
  })

  it("LlmMock.error gives every member a non-empty default message", () => {
    for (const tag of LlmError.tags) expect(LlmMock.error(tag).message).not.toBe("")
  })
})
