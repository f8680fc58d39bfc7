import { readFileSync } from "node:fs"
import { describe, expect, it } from "@effect/vitest"
import { type Config, ConfigError, ConfigProvider, Duration, Effect, Option, Redacted } from "effect"
import type * as CircuitBreaker from "../src/CircuitBreaker.js"
import * as LlmConfig from "../src/LlmConfig.js"
import type * as Logging from "../src/Logging.js"
import type * as Pricing from "../src/Pricing.js"
import type * as RateLimit from "../src/RateLimit.js"
import type * as RateLimitStore from "../src/RateLimitStore.js"
import type * as Retry from "../src/Retry.js"
import type * as Timeout from "../src/Timeout.js"

type Env = Readonly<Record<string, string>>

const read = (env: Env, config: Config.Config<LlmConfig.LlmConfig> = LlmConfig.config) =>
  config.pipe(Effect.withConfigProvider(ConfigProvider.fromMap(new Map(Object.entries(env)))))

const failure = (env: Env) => Effect.flip(read(env))

/** The variables a ConfigError names, from its paths. */
const named = (error: ConfigError.ConfigError): ReadonlyArray<string> => {
  switch (error._op) {
    case "And":
    case "Or":
      return [...named(error.left), ...named(error.right)]
    default:
      return [error.path.join(".")]
  }
}

/** The messages of a ConfigError's leaves. */
const messages = (error: ConfigError.ConfigError): ReadonlyArray<string> => {
  switch (error._op) {
    case "And":
    case "Or":
      return [...messages(error.left), ...messages(error.right)]
    case "InvalidData":
    case "MissingData":
    case "SourceUnavailable":
    case "Unsupported":
      return [error.message]
  }
}

const millis = (duration: Duration.Duration | undefined) => (duration === undefined ? undefined : Duration.toMillis(duration))

const redis = { LLM_RATE_LIMIT_STORE: "redis", REDIS_URL: "redis://127.0.0.1:6379" }
const consecutive = { LLM_CIRCUIT_MODE: "consecutive" }

/** Every whole-number variable: its range, its default, the setting it lands in, what else it needs set. */
interface WholeNumber {
  readonly name: string
  readonly min: number
  readonly max: number
  readonly milliseconds: boolean
  readonly fallback: number | undefined
  readonly value: (config: LlmConfig.LlmConfig) => number | undefined
  readonly env?: Env
}

const ratioMode = (config: LlmConfig.LlmConfig) => (config.circuitBreaker.mode === "ratio" ? config.circuitBreaker : undefined)
const consecutiveMode = (config: LlmConfig.LlmConfig) =>
  config.circuitBreaker.mode === "consecutive" ? config.circuitBreaker : undefined
const redisStore = (config: LlmConfig.LlmConfig) => (config.store.store === "redis" ? config.store : undefined)
const timerMax = 2_147_483_647

const limitVariables = (provider: "openai" | "anthropic" | undefined): ReadonlyArray<WholeNumber> => {
  const suffix = provider === undefined ? "" : `_${provider.toUpperCase()}`
  const limits = (config: LlmConfig.LlmConfig) => (provider === undefined ? config.rateLimit : config.rateLimit.providers[provider])
  return [
    { name: `LLM_RATE_LIMIT_RPM${suffix}`, min: 1, max: 1_000_000, milliseconds: false, fallback: undefined, value: (c) => limits(c)?.rpm },
    { name: `LLM_RATE_LIMIT_BURST${suffix}`, min: 1, max: 1_000_000, milliseconds: false, fallback: undefined, value: (c) => limits(c)?.burst },
    { name: `LLM_RATE_LIMIT_TPM${suffix}`, min: 1, max: 1_000_000_000, milliseconds: false, fallback: undefined, value: (c) => limits(c)?.tpm },
    { name: `LLM_MAX_CONCURRENCY${suffix}`, min: 1, max: 100_000, milliseconds: false, fallback: undefined, value: (c) => limits(c)?.maxConcurrency }
  ]
}

const wholeNumbers: ReadonlyArray<WholeNumber> = [
  { name: "LLM_MAX_RETRIES", min: 0, max: 100, milliseconds: false, fallback: 3, value: (c) => c.retry.maxRetries },
  { name: "LLM_RETRY_BASE_DELAY_MS", min: 0, max: 600_000, milliseconds: true, fallback: 500, value: (c) => millis(c.retry.base) },
  { name: "LLM_RETRY_MAX_DELAY_MS", min: 0, max: 600_000, milliseconds: true, fallback: 10_000, value: (c) => millis(c.retry.maxDelay) },
  { name: "LLM_RETRY_MAX_RETRY_AFTER_MS", min: 0, max: 600_000, milliseconds: true, fallback: 60_000, value: (c) => millis(c.retry.maxRetryAfter) },
  { name: "LLM_TIMEOUT_MS", min: 1, max: timerMax, milliseconds: true, fallback: 30_000, value: (c) => millis(c.timeout.timeout) },
  { name: "LLM_STREAM_FIRST_TOKEN_TIMEOUT_MS", min: 1, max: timerMax, milliseconds: true, fallback: undefined, value: (c) => millis(c.timeout.firstToken) },
  { name: "LLM_STREAM_IDLE_TIMEOUT_MS", min: 1, max: timerMax, milliseconds: true, fallback: undefined, value: (c) => millis(c.timeout.idle) },
  { name: "LLM_DEADLINE_MS", min: 1, max: timerMax, milliseconds: true, fallback: undefined, value: (c) => millis(c.timeout.deadline) },
  ...limitVariables(undefined),
  ...limitVariables("openai"),
  ...limitVariables("anthropic"),
  { name: "LLM_RATE_LIMIT_MAX_WAIT_MS", min: 0, max: 600_000, milliseconds: true, fallback: 30_000, value: (c) => millis(c.rateLimit.maxWait) },
  { name: "LLM_RATE_LIMIT_INSTANCES", min: 1, max: 1000, milliseconds: false, fallback: 1, value: (c) => redisStore(c)?.instances, env: redis },
  { name: "LLM_RATE_LIMIT_REDIS_TIMEOUT_MS", min: 1, max: 60_000, milliseconds: true, fallback: 500, value: (c) => millis(redisStore(c)?.timeout), env: redis },
  { name: "LLM_CIRCUIT_MINIMUM_CALLS", min: 1, max: 100_000, milliseconds: false, fallback: 20, value: (c) => ratioMode(c)?.minimumCalls },
  { name: "LLM_CIRCUIT_WINDOW_MS", min: 1000, max: 3_600_000, milliseconds: true, fallback: 10_000, value: (c) => millis(ratioMode(c)?.window) },
  { name: "LLM_CIRCUIT_FAILURE_THRESHOLD", min: 1, max: 100_000, milliseconds: false, fallback: 5, value: (c) => consecutiveMode(c)?.failureThreshold, env: consecutive },
  { name: "LLM_CIRCUIT_COOLDOWN_MS", min: 1, max: 3_600_000, milliseconds: true, fallback: 30_000, value: (c) => millis(c.circuitBreaker.cooldown) }
]

const ruleOf = (variable: WholeNumber) =>
  `a whole number ${variable.milliseconds ? "of milliseconds " : ""}from ${variable.min} to ${variable.max}`

/** Values no whole-number variable accepts, whatever its range. */
const notWholeNumbers = [
  "abc", "-5", " -5 ", "1e308", "1e3", "1.5", "1.0", "0x10", "0b1", "+5", "1_000", "12abc", "Infinity", "-Infinity", "NaN",
  "99999999999999999999", "1 000"
]

/** The failure of one variable, checked to name it, its rule and the value it got. */
const expectRejected = (env: Env, name: string, rule: string, got: string) =>
  Effect.gen(function* () {
    const error = yield* failure(env)
    expect(ConfigError.isConfigError(error)).toBe(true)
    expect(error._op).toBe("InvalidData")
    expect(named(error)).toEqual([name])
    expect(messages(error)).toEqual([`${name} must be ${rule}, got ${got}`])
  })

describe("whole numbers: every variable rejects what is not in its range, naming itself, its rule and the value", () => {
  for (const variable of wholeNumbers) {
    const outOfRange = [...(variable.min > 0 ? [String(variable.min - 1)] : []), String(variable.max + 1)]
    for (const value of [...notWholeNumbers, ...outOfRange]) {
      it.effect(`${variable.name}=${JSON.stringify(value)} is rejected`, () =>
        expectRejected({ ...variable.env, [variable.name]: value }, variable.name, ruleOf(variable), JSON.stringify(value.trim())))
    }
  }
})

describe("whole numbers: the ends of each range are accepted, blank means the default, spaces are trimmed", () => {
  for (const variable of wholeNumbers) {
    it.effect(`${variable.name} accepts ${variable.min} and ${variable.max}, and " ${variable.max} "`, () =>
      Effect.gen(function* () {
        for (const [text, expected] of [
          [String(variable.min), variable.min],
          [String(variable.max), variable.max],
          [` ${variable.max} `, variable.max]
        ] as const) {
          const config = yield* read({ ...variable.env, [variable.name]: text })
          expect(variable.value(config)).toBe(expected)
        }
      }))

    it.effect(`${variable.name} unset, empty or blank is ${String(variable.fallback)}`, () =>
      Effect.gen(function* () {
        for (const env of [{}, { [variable.name]: "" }, { [variable.name]: " \t" }]) {
          const config = yield* read({ ...variable.env, ...env })
          expect(variable.value(config)).toBe(variable.fallback)
        }
      }))
  }
})

/** Every variable that takes one of a few words. */
const words: ReadonlyArray<{
  readonly name: string
  readonly choices: ReadonlyArray<string>
  readonly rule: string
  readonly fallback: unknown
  readonly value: (config: LlmConfig.LlmConfig) => unknown
  readonly accepted: ReadonlyArray<readonly [string, unknown]>
  readonly env?: Env
}> = [
  {
    name: "LLM_LOG_LEVEL",
    choices: ["trace", "debug", "info", "warn", "error", "fatal", "none"],
    rule: "one of trace, debug, info, warn, error, fatal, none",
    fallback: "trace",
    value: (c) => c.logging.minimumLevel,
    accepted: [["trace", "trace"], ["debug", "debug"], ["info", "info"], ["warn", "warn"], ["error", "error"], ["fatal", "fatal"], ["none", "none"], [" WARN ", "warn"]]
  },
  {
    name: "LLM_LOG_CALL_LEVEL",
    choices: ["debug", "info"],
    rule: "one of debug, info",
    fallback: "debug",
    value: (c) => c.logging.callLevel,
    accepted: [["debug", "debug"], ["info", "info"], ["Info", "info"]]
  },
  {
    name: "LLM_LOG_FORMAT",
    choices: ["pretty", "json", "logfmt"],
    rule: "one of pretty, json, logfmt",
    fallback: undefined,
    value: (c) => c.logging.format,
    accepted: [["pretty", "pretty"], ["json", "json"], ["logfmt", "logfmt"], ["JSON", "json"]]
  },
  {
    name: "LLM_LOG_BODIES",
    choices: ["true", "false"],
    rule: "true or false",
    fallback: false,
    value: (c) => c.logging.bodies,
    accepted: [["true", true], ["false", false], ["TRUE", true], ["yes", true], ["off", false], ["1", true], ["0", false]]
  },
  {
    name: "LLM_RATE_LIMIT_STORE",
    choices: ["memory", "redis"],
    rule: "one of memory, redis",
    fallback: "memory",
    value: (c) => c.store.store,
    accepted: [["memory", "memory"], ["redis", "redis"], ["Redis", "redis"]],
    env: { REDIS_URL: "redis://127.0.0.1:6379" }
  },
  {
    name: "LLM_CIRCUIT_MODE",
    choices: ["ratio", "consecutive"],
    rule: "one of ratio, consecutive",
    fallback: "ratio",
    value: (c) => c.circuitBreaker.mode,
    accepted: [["ratio", "ratio"], ["consecutive", "consecutive"], ["CONSECUTIVE", "consecutive"]]
  }
]

/** Words no word variable takes: the names an object lookup would find, near misses, numbers. */
const notWords = ["abc", "constructor", "__proto__", "toString", "hasOwnProperty", "valueOf", "warning", "all", "2", "-1", "null", "undefined", "in fo"]

describe("words: every variable rejects a word it does not know, naming itself, its choices and the value", () => {
  for (const variable of words) {
    for (const value of [...notWords, `${variable.choices[0]}x`]) {
      it.effect(`${variable.name}=${JSON.stringify(value)} is rejected`, () =>
        expectRejected({ ...variable.env, [variable.name]: value }, variable.name, variable.rule, JSON.stringify(value)))
    }
    it.effect(`${variable.name} accepts ${variable.accepted.map(([text]) => text).join(", ")}; blank is its default`, () =>
      Effect.gen(function* () {
        for (const [text, expected] of variable.accepted) {
          expect(variable.value(yield* read({ ...variable.env, [variable.name]: text }))).toEqual(expected)
        }
        for (const blank of ["", "  "]) {
          expect(variable.value(yield* read({ ...variable.env, [variable.name]: blank }))).toEqual(variable.fallback)
        }
      }))
  }
})

describe("LLM_CIRCUIT_FAILURE_RATIO: a share greater than 0 and at most 1", () => {
  const rule = "a decimal number greater than 0 and at most 1, such as 0.5"
  for (const value of ["abc", "0", "0.0", "-0.5", "1.5", "1.0001", "2", "1e-1", "5e-1", "0x1", ".", "Infinity", "NaN", "50%", "0,5"]) {
    it.effect(`LLM_CIRCUIT_FAILURE_RATIO=${JSON.stringify(value)} is rejected`, () =>
      expectRejected({ LLM_CIRCUIT_FAILURE_RATIO: value }, "LLM_CIRCUIT_FAILURE_RATIO", rule, JSON.stringify(value)))
  }
  it.effect("accepts 1, 0.5, .25, 1.0 and 0.0001; blank is 0.5", () =>
    Effect.gen(function* () {
      for (const [text, expected] of [["1", 1], ["0.5", 0.5], [".25", 0.25], ["1.0", 1], ["0.0001", 0.0001], ["", 0.5], [" ", 0.5]] as const) {
        expect(ratioMode(yield* read({ LLM_CIRCUIT_FAILURE_RATIO: text }))?.failureRatio).toBe(expected)
      }
    }))
})

describe("URLs: a base URL is an http(s) URL, and no password in one is repeated", () => {
  const bases = [
    ["OPENAI_BASE_URL", { OPENAI_API_KEY: "k" }],
    ["ANTHROPIC_BASE_URL", { ANTHROPIC_API_KEY: "k" }],
    ["OPENAI_COMPATIBLE_BASE_URL", { OPENAI_COMPATIBLE_NAME: "x" }]
  ] as const
  for (const [name, env] of bases) {
    for (const value of ["not a url", "ftp://example.test", "localhost:8080", "http://", "file:///etc/passwd", "javascript:alert(1)"]) {
      it.effect(`${name}=${JSON.stringify(value)} is rejected`, () =>
        expectRejected({ ...env, [name]: value }, name, "an http(s) URL", JSON.stringify(value)))
    }
    it.effect(`${name} with a password is rejected without it`, () =>
      Effect.gen(function* () {
        yield* expectRejected({ ...env, [name]: "ftp://user:hunter2@example.test/" }, name, "an http(s) URL", JSON.stringify("ftp://user:***@example.test/"))
        const unparsed = yield* failure({ ...env, [name]: "user:hunter2@ example" })
        expect(String(unparsed)).not.toContain("hunter2")
        expect(String(unparsed)).toContain(name)
      }))
  }

  it.effect("REDIS_URL with the redis store is a redis:// or rediss:// URL with a host", () =>
    Effect.gen(function* () {
      const rule = "a redis:// or rediss:// URL such as redis://127.0.0.1:6379"
      for (const value of ["http://127.0.0.1:6379", "localhost:6379", "redis://", "127.0.0.1"]) {
        yield* expectRejected({ LLM_RATE_LIMIT_STORE: "redis", REDIS_URL: value }, "REDIS_URL", rule, JSON.stringify(value))
      }
      const masked = yield* failure({ LLM_RATE_LIMIT_STORE: "redis", REDIS_URL: "http://:hunter2@127.0.0.1:6379" })
      expect(messages(masked)).toEqual([`REDIS_URL must be ${rule}, got "http://:***@127.0.0.1:6379/"`])
      const unparsed = yield* failure({ LLM_RATE_LIMIT_STORE: "redis", REDIS_URL: "redis://:hunter2@ bad host" })
      expect(String(unparsed)).not.toContain("hunter2")
      expect(named(unparsed)).toEqual(["REDIS_URL"])
    }))

  it.effect("REDIS_URL is required with the redis store", () =>
    Effect.gen(function* () {
      for (const env of [{ LLM_RATE_LIMIT_STORE: "redis" }, { LLM_RATE_LIMIT_STORE: "redis", REDIS_URL: " " }]) {
        const error = yield* failure(env)
        expect(error._op).toBe("MissingData")
        expect(named(error)).toEqual(["REDIS_URL"])
        expect(String(error)).toContain("REDIS_URL is required when LLM_RATE_LIMIT_STORE=redis")
      }
    }))

  it.effect("REDIS_URL is not checked when the memory store does not use it", () =>
    Effect.gen(function* () {
      expect((yield* read({ REDIS_URL: "not a url" })).store).toEqual({ store: "memory" })
    }))

  it.effect("the redis store keeps its URL Redacted", () =>
    Effect.gen(function* () {
      const store = redisStore(yield* read({ LLM_RATE_LIMIT_STORE: "redis", REDIS_URL: " rediss://:hunter2@cache.internal:6380/1 " }))
      expect(store && Redacted.value(store.url)).toBe("rediss://:hunter2@cache.internal:6380/1")
      expect(JSON.stringify(store)).not.toContain("hunter2")
    }))
})

describe("LLM_PRICES: a JSON table of non-negative, finite prices", () => {
  const cases = [
    ["abc", "Unexpected token"],
    ["[]", "Expected { readonly [x: string]"],
    ['{"m":{"input":-1,"output":1}}', "at m.input: Expected a non-negative number, actual -1"],
    ['{"m":{"input":1e999,"output":1}}', "at m.input: Expected a finite number, actual Infinity"],
    ['{"m":{"input":1}}', "at m.output: is missing"],
    ['{"m":{"input":1,"output":2,"cachedinput":1}}', "at m.cachedinput: is unexpected"],
    ['{"m":"cheap"}', "at m: Expected { readonly input"]
  ] as const
  for (const [value, detail] of cases) {
    it.effect(`LLM_PRICES=${value} is rejected: ${detail}`, () =>
      Effect.gen(function* () {
        const error = yield* failure({ LLM_PRICES: value })
        expect(named(error)).toEqual(["LLM_PRICES"])
        const [message] = messages(error)
        expect(message).toContain("LLM_PRICES must be a JSON object of USD prices per million tokens")
        expect(message).toContain(`got ${JSON.stringify(value)}`)
        expect(message).toContain(detail)
      }))
  }
  it.effect("a table is read as the entries to add; blank is none", () =>
    Effect.gen(function* () {
      const table = '{"my-model":{"input":1,"cachedInput":0.5,"output":2},"free":{"input":0,"output":0}}'
      expect((yield* read({ LLM_PRICES: table })).prices).toEqual({
        "my-model": { input: 1, cachedInput: 0.5, output: 2 },
        free: { input: 0, output: 0 }
      })
      expect((yield* read({ LLM_PRICES: " " })).prices).toEqual({})
    }))
})

describe("several malformed variables are reported together", () => {
  it.effect("each bad variable has its own message", () =>
    Effect.gen(function* () {
      const error = yield* failure({ LLM_RETRY_BASE_DELAY_MS: "abc", LLM_CIRCUIT_COOLDOWN_MS: "1e308", LLM_LOG_LEVEL: "constructor" })
      expect([...named(error)].sort()).toEqual(["LLM_CIRCUIT_COOLDOWN_MS", "LLM_LOG_LEVEL", "LLM_RETRY_BASE_DELAY_MS"])
      expect(String(error)).toContain('LLM_RETRY_BASE_DELAY_MS must be a whole number of milliseconds from 0 to 600000, got "abc"')
    }))
})

describe("the policy sections", () => {
  it.effect("defaults apply when nothing is set", () =>
    Effect.gen(function* () {
      const config = yield* read({})
      expect(config.retry).toEqual({
        maxRetries: 3,
        base: Duration.millis(500),
        maxDelay: Duration.seconds(10),
        maxRetryAfter: Duration.minutes(1)
      })
      expect(config.timeout).toEqual({ timeout: Duration.seconds(30) })
      expect(config.rateLimit).toEqual({ providers: {}, maxWait: Duration.seconds(30) })
      expect(config.store).toEqual({ store: "memory" })
      expect(config.circuitBreaker).toEqual({
        mode: "ratio",
        failureRatio: 0.5,
        minimumCalls: 20,
        window: Duration.seconds(10),
        cooldown: Duration.seconds(30)
      })
      expect(config.logging).toEqual({ minimumLevel: "trace", callLevel: "debug", bodies: false })
      expect(config.prices).toEqual({})
    }))

  it.effect("the consecutive mode carries its threshold and no ratio fields", () =>
    Effect.gen(function* () {
      const config = yield* read({ LLM_CIRCUIT_MODE: "consecutive", LLM_CIRCUIT_FAILURE_THRESHOLD: "50", LLM_CIRCUIT_COOLDOWN_MS: "200" })
      expect(config.circuitBreaker).toEqual({ mode: "consecutive", failureThreshold: 50, cooldown: Duration.millis(200) })
    }))

  it.effect("a provider's own limits sit under its name, apart from the shared ones", () =>
    Effect.gen(function* () {
      const config = yield* read({ LLM_RATE_LIMIT_RPM: "60", LLM_RATE_LIMIT_RPM_OPENAI: "500", LLM_RATE_LIMIT_BURST_OPENAI: "1" })
      expect(config.rateLimit.rpm).toBe(60)
      expect(config.rateLimit.providers).toEqual({ openai: { rpm: 500, burst: 1 } })
      expect(config.rateLimit.providers["constructor"]).toBeUndefined()
    }))

  it.effect("configFor reads a compatible endpoint's own limits, its name upper-cased with _ for other characters", () =>
    Effect.gen(function* () {
      const env = {
        OPENAI_COMPATIBLE_NAME: "my-endpoint.v2",
        OPENAI_COMPATIBLE_BASE_URL: "http://127.0.0.1:1/v1",
        LLM_RATE_LIMIT_TPM_MY_ENDPOINT_V2: "1000",
        LLM_MAX_CONCURRENCY_MY_ENDPOINT_V2: "4"
      }
      expect((yield* read(env)).rateLimit.providers).toEqual({})
      const config = yield* read(env, LlmConfig.configFor(["my-endpoint.v2"]))
      expect(config.rateLimit.providers).toEqual({ "my-endpoint.v2": { tpm: 1000, maxConcurrency: 4 } })
      yield* Effect.flip(read({ ...env, LLM_RATE_LIMIT_TPM_MY_ENDPOINT_V2: "-5" }, LlmConfig.configFor(["my-endpoint.v2"]))).pipe(
        Effect.map((error) =>
          expect(messages(error)).toEqual(['LLM_RATE_LIMIT_TPM_MY_ENDPOINT_V2 must be a whole number from 1 to 1000000000, got "-5"'])
        )
      )
    }))

  it.effect("each section is its policy's options, ready to pass on", () =>
    Effect.gen(function* () {
      const config = yield* read({ ...redis, LLM_LOG_FORMAT: "json", LLM_LOG_LEVEL: "debug", LLM_DEADLINE_MS: "120000" })
      // Type-level: each section must stay assignable to the options its policy takes.
      const retry: Retry.Options = config.retry
      const timeout: Timeout.Options = config.timeout
      const rateLimit: RateLimit.Options = config.rateLimit
      const store: RateLimitStore.StoreConfig = config.store
      const circuitBreaker: CircuitBreaker.Options = config.circuitBreaker
      const logging: Logging.Options = config.logging
      const prices: Pricing.PriceTable = config.prices
      expect([retry, timeout, rateLimit, store, circuitBreaker, logging, prices].every((section) => section !== undefined)).toBe(true)
      expect(millis(config.timeout.deadline)).toBe(120_000)
      expect(config.logging).toEqual({ minimumLevel: "debug", callLevel: "debug", format: "json", bodies: false })
    }))
})

describe("providers: defaults apply when nothing is set", () => {
  it.effect("no provider, no default model", () =>
    Effect.gen(function* () {
      const config = yield* read({})
      expect(config.provider).toBeUndefined()
      expect(config.defaultModel).toBeUndefined()
      expect(LlmConfig.configuredProviders(config)).toEqual([])
      expect(LlmConfig.defaultProvider(config)).toEqual(Option.none())
    }))

  it.effect("blank values, as in a copied .env.example, count as unset", () =>
    Effect.gen(function* () {
      const config = yield* read({
        LLM_PROVIDER: "",
        LLM_DEFAULT_MODEL: " ",
        OPENAI_API_KEY: "",
        OPENAI_BASE_URL: "",
        ANTHROPIC_API_KEY: "  ",
        ANTHROPIC_BASE_URL: "",
        OPENAI_COMPATIBLE_NAME: "",
        OPENAI_COMPATIBLE_BASE_URL: "",
        OPENAI_COMPATIBLE_API_KEY: "",
        OPENAI_COMPATIBLE_MODEL: "\t"
      })
      expect(LlmConfig.configuredProviders(config)).toEqual([])
      expect(config.defaultModel).toBeUndefined()
    }))
})

describe("providers: values that are set are read", () => {
  it.effect("reads every provider variable into the typed record", () =>
    Effect.gen(function* () {
      const config = yield* read({
        LLM_PROVIDER: "anthropic",
        LLM_DEFAULT_MODEL: "claude-sonnet-4-5",
        OPENAI_API_KEY: "sk-openai-secret",
        OPENAI_BASE_URL: "http://127.0.0.1:9999/v1",
        ANTHROPIC_API_KEY: "sk-ant-secret",
        OPENAI_COMPATIBLE_NAME: "ollama",
        OPENAI_COMPATIBLE_BASE_URL: "http://127.0.0.1:11434/v1"
      })
      expect(config.provider).toBe("anthropic")
      expect(config.defaultModel).toBe("claude-sonnet-4-5")
      expect(config.openai?.baseURL).toBe("http://127.0.0.1:9999/v1")
      expect(config.openai && Redacted.value(config.openai.apiKey)).toBe("sk-openai-secret")
      expect(config.anthropic?.baseURL).toBeUndefined()
      expect(config.openaiCompatible).toEqual({ name: "ollama", baseURL: "http://127.0.0.1:11434/v1" })
      expect(LlmConfig.configuredProviders(config)).toEqual(["openai", "anthropic", "ollama"])
      expect(LlmConfig.defaultProvider(config)).toEqual(Option.some("anthropic"))
    }))

  it.effect("a key is trimmed, as a key pasted with a newline would otherwise be sent with it", () =>
    Effect.gen(function* () {
      const config = yield* read({ OPENAI_API_KEY: " sk-openai-secret\n" })
      expect(config.openai && Redacted.value(config.openai.apiKey)).toBe("sk-openai-secret")
    }))

  it.effect("the default provider is the first configured one when LLM_PROVIDER is unset", () =>
    Effect.gen(function* () {
      const config = yield* read({ ANTHROPIC_API_KEY: "k", OPENAI_COMPATIBLE_NAME: "groq", OPENAI_COMPATIBLE_BASE_URL: "https://api.groq.com/openai/v1" })
      expect(LlmConfig.defaultProvider(config)).toEqual(Option.some("anthropic"))
    }))

  it.effect("a compatible endpoint may carry a key, and LLM_PROVIDER may name it", () =>
    Effect.gen(function* () {
      const config = yield* read({
        LLM_PROVIDER: "groq",
        OPENAI_COMPATIBLE_NAME: "groq",
        OPENAI_COMPATIBLE_BASE_URL: "https://api.groq.com/openai/v1",
        OPENAI_COMPATIBLE_API_KEY: "gsk-secret",
        OPENAI_COMPATIBLE_MODEL: "llama-3.3-70b"
      })
      expect(config.openaiCompatible?.model).toBe("llama-3.3-70b")
      expect(config.openaiCompatible?.apiKey && Redacted.value(config.openaiCompatible.apiKey)).toBe("gsk-secret")
      expect(LlmConfig.defaultProvider(config)).toEqual(Option.some("groq"))
    }))
})

describe("providers: a malformed value is a ConfigError naming its variable", () => {
  const cases: ReadonlyArray<readonly [string, Env, string]> = [
    ["OPENAI_COMPATIBLE_NAME", { OPENAI_COMPATIBLE_BASE_URL: "http://127.0.0.1:1/v1" }, "is required"],
    ["OPENAI_COMPATIBLE_NAME", { OPENAI_COMPATIBLE_NAME: "openai", OPENAI_COMPATIBLE_BASE_URL: "http://127.0.0.1:1/v1" }, "not \"openai\""],
    ["OPENAI_COMPATIBLE_NAME", { OPENAI_COMPATIBLE_NAME: "my endpoint", OPENAI_COMPATIBLE_BASE_URL: "http://127.0.0.1:1/v1" }, "letters, digits"],
    ["OPENAI_COMPATIBLE_NAME", { OPENAI_COMPATIBLE_NAME: "constructor", OPENAI_COMPATIBLE_BASE_URL: "http://127.0.0.1:1/v1" }, "got \"constructor\""],
    ["OPENAI_COMPATIBLE_NAME", { OPENAI_COMPATIBLE_NAME: "toString", OPENAI_COMPATIBLE_BASE_URL: "http://127.0.0.1:1/v1" }, "already carry"],
    ["OPENAI_COMPATIBLE_BASE_URL", { OPENAI_COMPATIBLE_NAME: "groq" }, "is required"],
    ["OPENAI_COMPATIBLE_BASE_URL", { OPENAI_COMPATIBLE_API_KEY: "k" }, "is required"],
    ["OPENAI_COMPATIBLE_BASE_URL", { OPENAI_COMPATIBLE_MODEL: "llama3.2" }, "is required"],
    ["LLM_PROVIDER", { LLM_PROVIDER: "openai", ANTHROPIC_API_KEY: "k" }, "not configured (configured: anthropic)"],
    ["LLM_PROVIDER", { LLM_PROVIDER: "anthropic" }, "set ANTHROPIC_API_KEY"],
    ["LLM_PROVIDER", { LLM_PROVIDER: "groq" }, "set OPENAI_COMPATIBLE_NAME"]
  ]
  for (const [variable, env, rule] of cases) {
    it.effect(`${variable}=${JSON.stringify(Object.values(env).at(-1))} is rejected: ${rule}`, () =>
      Effect.gen(function* () {
        const error = yield* failure(env)
        expect(ConfigError.isConfigError(error)).toBe(true)
        expect(named(error)).toEqual([variable])
        expect(String(error)).toContain(variable)
        expect(String(error)).toContain(rule)
      }))
  }
})

describe("secrets stay Redacted", () => {
  it.effect("no key appears in String() or JSON of the config", () =>
    Effect.gen(function* () {
      const config = yield* read({
        OPENAI_API_KEY: "sk-openai-0123456789",
        ANTHROPIC_API_KEY: "sk-ant-0123456789",
        OPENAI_COMPATIBLE_NAME: "groq",
        OPENAI_COMPATIBLE_BASE_URL: "https://api.groq.com/openai/v1",
        OPENAI_COMPATIBLE_API_KEY: "gsk-0123456789"
      })
      expect(Redacted.isRedacted(config.openai?.apiKey)).toBe(true)
      expect(Redacted.isRedacted(config.anthropic?.apiKey)).toBe(true)
      expect(Redacted.isRedacted(config.openaiCompatible?.apiKey)).toBe(true)
      const shown = `${String(config.openai?.apiKey)} ${JSON.stringify(config)} ${String(config.anthropic?.apiKey)}`
      for (const secret of ["sk-openai-0123456789", "sk-ant-0123456789", "gsk-0123456789"]) {
        expect(shown).not.toContain(secret)
      }
      expect(JSON.stringify(config)).toContain("<redacted>")
    }))

  it.effect("a malformed value's error never carries a key", () =>
    Effect.gen(function* () {
      const error = yield* failure({ OPENAI_API_KEY: "sk-openai-0123456789", LLM_PROVIDER: "anthropic", LLM_TIMEOUT_MS: "x" })
      expect(String(error)).not.toContain("sk-openai-0123456789")
    }))

  it.effect("secrets lists the keys and the Redis password, as written and decoded", () =>
    Effect.gen(function* () {
      const config = yield* read({
        OPENAI_API_KEY: "sk-openai-0123456789",
        OPENAI_COMPATIBLE_NAME: "groq",
        OPENAI_COMPATIBLE_BASE_URL: "https://api.groq.com/openai/v1",
        OPENAI_COMPATIBLE_API_KEY: "gsk-0123456789",
        LLM_RATE_LIMIT_STORE: "redis",
        REDIS_URL: "redis://:p%40ss@127.0.0.1:6379"
      })
      expect(LlmConfig.secrets(config).map(Redacted.value)).toEqual(["sk-openai-0123456789", "gsk-0123456789", "p%40ss", "p@ss"])
      const broken = yield* read({ LLM_RATE_LIMIT_STORE: "redis", REDIS_URL: "redis://:%zz@127.0.0.1" })
      expect(LlmConfig.secrets(broken).map(Redacted.value)).toEqual(["%zz"])
    }))
})

describe(".env.example lists every variable with its range", () => {
  const example = readFileSync(new URL("../.env.example", import.meta.url), "utf8").split("\n")
  /** The comment lines directly above `NAME=`. */
  const commentOf = (name: string) => {
    const at = example.findIndex((line) => line.startsWith(`${name}=`))
    const above: Array<string> = []
    for (let i = at - 1; i >= 0 && example[i]!.startsWith("#"); i--) above.unshift(example[i]!)
    return at === -1 ? undefined : above.join(" ")
  }
  const shared = wholeNumbers.filter((variable) => !/_(OPENAI|ANTHROPIC)$/.test(variable.name))
  for (const variable of shared) {
    it(`${variable.name} is listed with ${variable.min} to ${variable.max}`, () => {
      expect(commentOf(variable.name)).toContain(`${variable.min} to ${variable.max}`)
    })
  }
  for (const variable of words) {
    it(`${variable.name} is listed with its choices`, () => {
      for (const choice of variable.choices) expect(commentOf(variable.name)).toContain(choice)
    })
  }
  for (const name of [
    "LLM_PROVIDER", "LLM_DEFAULT_MODEL", "OPENAI_API_KEY", "OPENAI_BASE_URL", "ANTHROPIC_API_KEY", "ANTHROPIC_BASE_URL",
    "OPENAI_COMPATIBLE_NAME", "OPENAI_COMPATIBLE_BASE_URL", "OPENAI_COMPATIBLE_API_KEY", "OPENAI_COMPATIBLE_MODEL",
    "OPENAI_HEADERS", "ANTHROPIC_HEADERS", "OPENAI_COMPATIBLE_HEADERS", "OPENAI_COMPATIBLE_QUERY", "OPENAI_COMPATIBLE_ENDPOINTS",
    "AZURE_OPENAI_ENDPOINT", "AZURE_OPENAI_API_KEY", "OPENAI_API_VERSION", "AZURE_OPENAI_DEPLOYMENT",
    "LLM_CIRCUIT_FAILURE_RATIO", "REDIS_URL", "LLM_PRICES", "LLM_FALLBACK"
  ]) {
    it(`${name} is listed with a comment`, () => {
      expect(commentOf(name)).toMatch(/^# ./)
    })
  }
})

const load = (env: Env) => LlmConfig.load.pipe(Effect.withConfigProvider(ConfigProvider.fromMap(new Map(Object.entries(env)))))

const headerValues = (headers: Readonly<Record<string, Redacted.Redacted<string>>> | undefined) =>
  Object.fromEntries(Object.entries(headers ?? {}).map(([name, value]) => [name, Redacted.value(value)]))

describe("custom headers and query parameters", () => {
  const gatewayKey = "pk-gateway-SECRET-1234567890"

  it.effect("OPENAI_HEADERS, ANTHROPIC_HEADERS and OPENAI_COMPATIBLE_HEADERS are read as Redacted values, the query as text", () =>
    Effect.gen(function* () {
      const config = yield* read({
        OPENAI_API_KEY: "sk-openai",
        OPENAI_HEADERS: JSON.stringify({ "OpenAI-Organization": "org-1" }),
        ANTHROPIC_API_KEY: "sk-ant",
        ANTHROPIC_HEADERS: JSON.stringify({ "anthropic-beta": "tools-2024" }),
        OPENAI_COMPATIBLE_NAME: "portkey",
        OPENAI_COMPATIBLE_BASE_URL: "http://127.0.0.1:8787/v1",
        OPENAI_COMPATIBLE_HEADERS: JSON.stringify({ "x-portkey-api-key": gatewayKey, "x-portkey-provider": "openai" }),
        OPENAI_COMPATIBLE_QUERY: JSON.stringify({ "api-version": "2024-10-21" })
      })
      expect(headerValues(config.openai?.headers)).toEqual({ "OpenAI-Organization": "org-1" })
      expect(headerValues(config.anthropic?.headers)).toEqual({ "anthropic-beta": "tools-2024" })
      expect(headerValues(config.openaiCompatible?.headers)).toEqual({ "x-portkey-api-key": gatewayKey, "x-portkey-provider": "openai" })
      expect(Object.values(config.openaiCompatible?.headers ?? {}).every(Redacted.isRedacted)).toBe(true)
      expect(config.openaiCompatible?.query).toEqual({ "api-version": "2024-10-21" })
      expect(String(config.openaiCompatible?.headers?.["x-portkey-api-key"])).not.toContain(gatewayKey)
    })
  )

  it.effect("header values are in LlmConfig.secrets, with the keys", () =>
    Effect.gen(function* () {
      const config = yield* read({
        OPENAI_API_KEY: "sk-openai-key",
        OPENAI_HEADERS: JSON.stringify({ "x-openai-extra": "openai-header-value" }),
        OPENAI_COMPATIBLE_NAME: "portkey",
        OPENAI_COMPATIBLE_BASE_URL: "http://127.0.0.1:8787/v1",
        OPENAI_COMPATIBLE_HEADERS: JSON.stringify({ "x-portkey-api-key": gatewayKey })
      })
      expect(LlmConfig.secrets(config).map(Redacted.value).sort()).toEqual(["openai-header-value", gatewayKey, "sk-openai-key"].sort())
    })
  )

  const malformed: ReadonlyArray<readonly [string, string]> = [
    ["not JSON", `{"x-portkey-api-key": ${gatewayKey}`],
    ["an array", `["${gatewayKey}"]`],
    ["a number value", `{"x-retries": 3, "x-portkey-api-key": "${gatewayKey}"}`],
    ["a header name with a space", `{"x portkey": "${gatewayKey}"}`],
    ["a value with a line break", `{"x-portkey-api-key": "${gatewayKey}\\r\\nx-injected: 1"}`]
  ]
  for (const variable of ["OPENAI_HEADERS", "ANTHROPIC_HEADERS", "OPENAI_COMPATIBLE_HEADERS"]) {
    for (const [what, value] of malformed) {
      it.effect(`${variable} as ${what} is a ConfigError naming it and its rule, without the value`, () =>
        Effect.gen(function* () {
          const error = yield* failure({
            OPENAI_API_KEY: "sk-openai",
            ANTHROPIC_API_KEY: "sk-ant",
            OPENAI_COMPATIBLE_NAME: "portkey",
            OPENAI_COMPATIBLE_BASE_URL: "http://127.0.0.1:8787/v1",
            [variable]: value
          })
          expect(named(error)).toEqual([variable])
          expect(messages(error).join()).toContain(`${variable} must be a JSON object of HTTP header names to string values`)
          expect(String(error)).not.toContain(gatewayKey)
        })
      )
    }
  }

  it.effect("OPENAI_COMPATIBLE_QUERY must be a JSON object of strings", () =>
    Effect.gen(function* () {
      const error = yield* failure({
        OPENAI_COMPATIBLE_NAME: "x",
        OPENAI_COMPATIBLE_BASE_URL: "http://127.0.0.1:1/v1",
        OPENAI_COMPATIBLE_QUERY: `{"key": 5}`
      })
      expect(named(error)).toEqual(["OPENAI_COMPATIBLE_QUERY"])
      expect(messages(error).join()).toContain("must be a JSON object of query parameter names to string values")
    })
  )

  it.effect("compatible headers without a base URL are an error naming OPENAI_COMPATIBLE_BASE_URL", () =>
    Effect.gen(function* () {
      const error = yield* failure({ OPENAI_COMPATIBLE_HEADERS: "{}" })
      expect(named(error)).toEqual(["OPENAI_COMPATIBLE_BASE_URL"])
    })
  )
})

describe("Azure OpenAI from the SDK's own variables", () => {
  const azure = {
    AZURE_OPENAI_API_KEY: "azure-key-0123456789",
    AZURE_OPENAI_ENDPOINT: "https://my-resource.openai.azure.com",
    OPENAI_API_VERSION: "2024-10-21"
  }

  it.effect("the endpoint with its key and API version enables the azure provider; the key is a secret", () =>
    Effect.gen(function* () {
      const config = yield* read({ ...azure, AZURE_OPENAI_DEPLOYMENT: "gpt-4o-mini" })
      expect(config.azure).toMatchObject({ endpoint: azure.AZURE_OPENAI_ENDPOINT, apiVersion: "2024-10-21", deployment: "gpt-4o-mini" })
      expect(LlmConfig.configuredProviders(config)).toEqual(["azure"])
      expect(LlmConfig.secrets(config).map(Redacted.value)).toEqual([azure.AZURE_OPENAI_API_KEY])
      expect(LlmConfig.defaultProvider(config)).toEqual(Option.some("azure"))
    })
  )

  it.effect("OPENAI_API_VERSION alone is ignored: other software sets it too", () =>
    Effect.gen(function* () {
      const config = yield* read({ OPENAI_API_VERSION: "not a version" })
      expect(config.azure).toBeUndefined()
    })
  )

  it.effect("each missing or malformed variable is a ConfigError naming it", () =>
    Effect.gen(function* () {
      const without = (name: keyof typeof azure) => Object.fromEntries(Object.entries(azure).filter(([key]) => key !== name))
      expect(named(yield* failure(without("AZURE_OPENAI_API_KEY")))).toEqual(["AZURE_OPENAI_API_KEY"])
      expect(named(yield* failure(without("OPENAI_API_VERSION")))).toEqual(["OPENAI_API_VERSION"])
      expect(named(yield* failure(without("AZURE_OPENAI_ENDPOINT")))).toEqual(["AZURE_OPENAI_ENDPOINT"])
      const version = yield* failure({ ...azure, OPENAI_API_VERSION: "v1" })
      expect(messages(version).join()).toContain("OPENAI_API_VERSION must be an API version such as 2024-10-21")
      expect(named(yield* failure({ ...azure, AZURE_OPENAI_ENDPOINT: "my-resource" }))).toEqual(["AZURE_OPENAI_ENDPOINT"])
      expect(named(yield* failure({ LLM_PROVIDER: "azure" }))).toEqual(["LLM_PROVIDER"])
      expect(messages(yield* failure({ LLM_PROVIDER: "azure" })).join()).toContain("set AZURE_OPENAI_ENDPOINT")
    })
  )

  it.effect("azure is reserved: no compatible endpoint may take the name", () =>
    Effect.gen(function* () {
      const error = yield* failure({ OPENAI_COMPATIBLE_NAME: "Azure", OPENAI_COMPATIBLE_BASE_URL: "http://127.0.0.1:1/v1" })
      expect(named(error)).toEqual(["OPENAI_COMPATIBLE_NAME"])
    })
  )
})

describe("several named compatible endpoints (LlmConfig.load)", () => {
  const groqKey = "gsk_groq_SECRET_abcdef123456"
  const two = {
    OPENAI_COMPATIBLE_ENDPOINTS: "groq, local-vllm",
    OPENAI_COMPATIBLE_GROQ_BASE_URL: "https://api.groq.com/openai/v1",
    OPENAI_COMPATIBLE_GROQ_API_KEY_VAR: "GROQ_API_KEY",
    GROQ_API_KEY: groqKey,
    OPENAI_COMPATIBLE_GROQ_MODEL: "llama-3.3-70b-versatile",
    OPENAI_COMPATIBLE_GROQ_HEADERS: JSON.stringify({ "x-team": "fast-agents" }),
    OPENAI_COMPATIBLE_LOCAL_VLLM_BASE_URL: "http://127.0.0.1:8000/v1",
    OPENAI_COMPATIBLE_LOCAL_VLLM_QUERY: JSON.stringify({ tenant: "private" })
  }

  it.effect("each listed endpoint is read from its own variables, its key from the variable it names", () =>
    Effect.gen(function* () {
      const config = yield* load(two)
      expect(LlmConfig.configuredProviders(config)).toEqual(["groq", "local-vllm"])
      const [groq, vllm] = config.compatibleEndpoints ?? []
      expect(groq).toMatchObject({ name: "groq", baseURL: "https://api.groq.com/openai/v1", model: "llama-3.3-70b-versatile" })
      expect(groq?.apiKey === undefined ? undefined : Redacted.value(groq.apiKey)).toBe(groqKey)
      expect(headerValues(groq?.headers)).toEqual({ "x-team": "fast-agents" })
      expect(vllm).toEqual({ name: "local-vllm", baseURL: "http://127.0.0.1:8000/v1", query: { tenant: "private" } })
      expect(LlmConfig.secrets(config).map(Redacted.value).sort()).toEqual([groqKey, "fast-agents"].sort())
    })
  )

  it.effect("the single OPENAI_COMPATIBLE_* endpoint keeps working beside them, and each has its own rate limits", () =>
    Effect.gen(function* () {
      const config = yield* load({
        ...two,
        OPENAI_API_KEY: "sk-openai",
        OPENAI_COMPATIBLE_NAME: "ollama",
        OPENAI_COMPATIBLE_BASE_URL: "http://127.0.0.1:11434/v1",
        LLM_RATE_LIMIT_RPM_GROQ: "30",
        LLM_RATE_LIMIT_RPM_LOCAL_VLLM: "600",
        LLM_RATE_LIMIT_RPM_OLLAMA: "60",
        LLM_PROVIDER: "local-vllm"
      })
      expect(LlmConfig.configuredProviders(config)).toEqual(["openai", "ollama", "groq", "local-vllm"])
      expect(config.rateLimit.providers).toMatchObject({ groq: { rpm: 30 }, "local-vllm": { rpm: 600 }, ollama: { rpm: 60 } })
      expect(LlmConfig.defaultProvider(config)).toEqual(Option.some("local-vllm"))
    })
  )

  it.effect("LlmConfig.config accepts LLM_PROVIDER naming a listed endpoint but leaves the endpoints to load", () =>
    Effect.gen(function* () {
      const config = yield* read({ ...two, LLM_PROVIDER: "groq" })
      expect(config.compatibleEndpoints).toBeUndefined()
      expect(config.provider).toBe("groq")
    })
  )

  it.effect("a bad list is a ConfigError naming OPENAI_COMPATIBLE_ENDPOINTS", () =>
    Effect.gen(function* () {
      for (const list of ["groq,groq", "a_b,a-b", "openai", "constructor", "bad name", ",", "ollama"]) {
        const error = yield* Effect.flip(
          load({ OPENAI_COMPATIBLE_NAME: "ollama", OPENAI_COMPATIBLE_BASE_URL: "http://127.0.0.1:1/v1", OPENAI_COMPATIBLE_ENDPOINTS: list })
        )
        expect(named(error), list).toEqual(["OPENAI_COMPATIBLE_ENDPOINTS"])
        expect(messages(error).join()).toContain("must be a comma-separated list of 1 to 50 distinct provider names")
      }
    })
  )

  it.effect("a listed endpoint without its base URL, or whose key variable is unset or misnamed, names the variable at fault", () =>
    Effect.gen(function* () {
      const noUrl = yield* Effect.flip(load({ OPENAI_COMPATIBLE_ENDPOINTS: "groq" }))
      expect(named(noUrl)).toEqual(["OPENAI_COMPATIBLE_GROQ_BASE_URL"])
      const { GROQ_API_KEY: _, ...withoutKey } = two
      const noKey = yield* Effect.flip(load(withoutKey))
      expect(named(noKey)).toEqual(["GROQ_API_KEY"])
      expect(messages(noKey).join()).toContain("OPENAI_COMPATIBLE_GROQ_API_KEY_VAR names it")
      const inline = yield* Effect.flip(load({ ...two, OPENAI_COMPATIBLE_GROQ_API_KEY_VAR: groqKey.replace(/_/g, "-") }))
      expect(named(inline)).toEqual(["OPENAI_COMPATIBLE_GROQ_API_KEY_VAR"])
      const written = yield* Effect.flip(load({ ...two, OPENAI_COMPATIBLE_GROQ_API_KEY_VAR: groqKey }))
      expect(named(written)).toEqual(["OPENAI_COMPATIBLE_GROQ_API_KEY_VAR"])
      expect(String(written)).not.toContain(groqKey)
      expect(String(inline)).not.toContain("SECRET")
      const badHeaders = yield* Effect.flip(load({ ...two, OPENAI_COMPATIBLE_GROQ_HEADERS: `{"x": 1}` }))
      expect(named(badHeaders)).toEqual(["OPENAI_COMPATIBLE_GROQ_HEADERS"])
      const badLimit = yield* Effect.flip(load({ ...two, LLM_RATE_LIMIT_RPM_LOCAL_VLLM: "0" }))
      expect(named(badLimit)).toEqual(["LLM_RATE_LIMIT_RPM_LOCAL_VLLM"])
    })
  )
})

describe("structured output per provider", () => {
  const compatible = { OPENAI_COMPATIBLE_NAME: "local", OPENAI_COMPATIBLE_BASE_URL: "http://127.0.0.1:11434/v1" }

  it.effect("ANTHROPIC_STRUCTURED_OUTPUT and OPENAI_COMPATIBLE_STRUCTURED_OUTPUT reach the providers' settings", () =>
    Effect.gen(function* () {
      const config = yield* read({
        ANTHROPIC_API_KEY: "sk-ant-x",
        ANTHROPIC_STRUCTURED_OUTPUT: "tool",
        ...compatible,
        OPENAI_COMPATIBLE_STRUCTURED_OUTPUT: "JSON_OBJECT"
      })
      expect(config.anthropic?.structuredOutput).toBe("tool")
      expect(config.openaiCompatible?.structuredOutput).toBe("json_object")
      const unset = yield* read({ ANTHROPIC_API_KEY: "sk-ant-x", ...compatible })
      expect(unset.anthropic?.structuredOutput).toBeUndefined()
      expect(unset.openaiCompatible?.structuredOutput).toBeUndefined()
    }))

  it.effect("a named endpoint has its own OPENAI_COMPATIBLE_<NAME>_STRUCTURED_OUTPUT", () =>
    Effect.gen(function* () {
      const config = yield* load({
        OPENAI_COMPATIBLE_ENDPOINTS: "vllm",
        OPENAI_COMPATIBLE_VLLM_BASE_URL: "http://127.0.0.1:8000/v1",
        OPENAI_COMPATIBLE_VLLM_STRUCTURED_OUTPUT: "json_object"
      })
      expect(config.compatibleEndpoints?.[0]?.structuredOutput).toBe("json_object")
    }))

  it.effect("any other value is a ConfigError naming the variable and its rule", () =>
    Effect.gen(function* () {
      const anthropic = yield* failure({ ANTHROPIC_API_KEY: "sk-ant-x", ANTHROPIC_STRUCTURED_OUTPUT: "forced" })
      expect(named(anthropic)).toEqual(["ANTHROPIC_STRUCTURED_OUTPUT"])
      expect(messages(anthropic).join(" ")).toContain("ANTHROPIC_STRUCTURED_OUTPUT must be one of auto, native, tool")
      const endpoint = yield* failure({ ...compatible, OPENAI_COMPATIBLE_STRUCTURED_OUTPUT: "xml" })
      expect(messages(endpoint).join(" ")).toContain("OPENAI_COMPATIBLE_STRUCTURED_OUTPUT must be one of json_schema, json_object")
      const alone = yield* failure({ OPENAI_COMPATIBLE_STRUCTURED_OUTPUT: "json_object" })
      expect(named(alone)).toEqual(["OPENAI_COMPATIBLE_BASE_URL"])
    }))
})
