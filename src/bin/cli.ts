#!/usr/bin/env node
/**
 * `clearside-llm`: ask a model from the command line through the `Llm` service.
 *
 * With a provider configured in the environment it uses `LlmLive`; with none it answers from the
 * built-in echo mock and says so on stderr. Errors are one line on stderr and an exit code by
 * error tag (see `--help`).
 *
 * @since 0.1.0
 */
import { RateLimiter } from "@effect/experimental"
import { parseArgs } from "node:util"
import { Cause, ConfigError, Data, Effect, Exit, Layer, Option, Stream } from "effect"
import * as LlmConfig from "../LlmConfig.js"
import * as Llm from "../Llm.js"
import { isLlmError, type LlmError } from "../LlmError.js"
import * as LlmLive from "../LlmLive.js"
import * as LlmMock from "../LlmMock.js"
import * as Logging from "../Logging.js"
import type * as LlmRequest from "../LlmRequest.js"

const usage = `Usage: clearside-llm [options] <prompt...>

Asks a model for an answer and prints it. Providers come from the environment (OPENAI_API_KEY,
ANTHROPIC_API_KEY, OPENAI_COMPATIBLE_NAME + OPENAI_COMPATIBLE_BASE_URL, see .env.example); with
none configured the built-in echo mock answers.

Options:
  -p, --provider <name>  provider to ask (default: LLM_PROVIDER, else the first configured)
  -m, --model <name>     model to use (default: LLM_DEFAULT_MODEL, else the provider's)
  -s, --system <text>    system instructions sent before the prompt
      --stream           print the answer as it arrives
      --json             print the response as JSON; with --stream, one event per line

A tool call the model makes is printed as a line "tool call: name(arguments) [id]", a refusal as
"refusal: <the model's reason>".
  -h, --help             show this help

Exit codes:
  0  answered
  1  unexpected failure
  2  usage error, invalid request, unknown model, or bad configuration
  3  authentication failed (AuthenticationError)
  4  rate limited or out of quota (RateLimitError, QuotaExceededError)
  5  timed out (TimeoutError)
  6  provider or connection failure (ServerError, OverloadedError, ConnectionError,
     CircuitOpenError, ResponseParseError, OutputValidationError, ToolCallError,
     MaxStepsError)
`

const exitCodes: Record<LlmError["_tag"], number> = {
  InvalidRequestError: 2,
  NotFoundError: 2,
  AuthenticationError: 3,
  RateLimitError: 4,
  QuotaExceededError: 4,
  TimeoutError: 5,
  ServerError: 6,
  OverloadedError: 6,
  ConnectionError: 6,
  CircuitOpenError: 6,
  ResponseParseError: 6,
  OutputValidationError: 6,
  ToolCallError: 6,
  MaxStepsError: 6
}

class UsageError extends Data.TaggedError("UsageError")<{ readonly message: string }> {}

interface Arguments {
  readonly help: boolean
  readonly stream: boolean
  readonly json: boolean
  readonly request: LlmRequest.LlmRequest
}

const parse = (argv: ReadonlyArray<string>): Effect.Effect<Arguments, UsageError> =>
  Effect.try({
    try: () =>
      parseArgs({
        args: [...argv],
        allowPositionals: true,
        strict: true,
        options: {
          provider: { type: "string", short: "p" },
          model: { type: "string", short: "m" },
          system: { type: "string", short: "s" },
          stream: { type: "boolean", default: false },
          json: { type: "boolean", default: false },
          help: { type: "boolean", short: "h", default: false }
        }
      }),
    catch: (error) => new UsageError({ message: error instanceof Error ? error.message : String(error) })
  }).pipe(
    Effect.flatMap(({ positionals, values }) => {
      const prompt = positionals.join(" ")
      if (!values.help && prompt.trim() === "") {
        return Effect.fail(new UsageError({ message: "no prompt given" }))
      }
      const messages: Array<LlmRequest.Message> = []
      if (values.system !== undefined) messages.push({ role: "system", content: values.system })
      messages.push({ role: "user", content: prompt })
      return Effect.succeed({
        help: values.help,
        stream: values.stream,
        json: values.json,
        request: {
          messages,
          ...(values.provider === undefined ? {} : { provider: values.provider }),
          ...(values.model === undefined ? {} : { model: values.model })
        }
      })
    })
  )

const write = (text: string) => Effect.sync(() => void process.stdout.write(text))
const warn = (text: string) => Effect.sync(() => void process.stderr.write(`${text}\n`))

/** The echo mock, as the only provider, so `--provider openai` without a key is still an error. */
const mock: Llm.Service = Llm.router({ providers: [LlmMock.echo({ provider: "mock" })] })

const service = Effect.gen(function* () {
  const configured = yield* LlmLive.configuredProviders
  if (configured.length > 0) return yield* Effect.provide(LlmLive.make, RateLimiter.layerStoreMemory)
  yield* warn(
    "note: no LLM provider is configured (set OPENAI_API_KEY, ANTHROPIC_API_KEY, AZURE_OPENAI_ENDPOINT, OPENAI_COMPATIBLE_BASE_URL or OPENAI_COMPATIBLE_ENDPOINTS); " +
      "answering from the built-in echo mock"
  )
  return mock
})

/** A tool call as one readable line: `tool call: name(arguments) [id]`. */
const toolCallLine = (call: { readonly id: string; readonly name: string; readonly argumentsText: string }) =>
  `tool call: ${call.name}(${call.argumentsText}) [${call.id}]\n`

const refusalLine = (refusal: string) => `refusal: ${oneLine(refusal)}\n`

/** The whole answer as text: its text, then a line per tool call and the refusal, if any. */
const readable = (response: LlmRequest.LlmResponse): string => {
  const extra = response.toolCalls.map(toolCallLine).join("") + (response.refusal !== undefined ? refusalLine(response.refusal) : "")
  return response.content === "" && extra !== "" ? extra : `${response.content}\n${extra}`
}

const run = (args: Arguments) =>
  Effect.gen(function* () {
    const llm = yield* service
    if (!args.stream) {
      const response = yield* llm.complete(args.request)
      yield* write(args.json ? `${JSON.stringify(response)}\n` : readable(response))
      return
    }
    // Where the output stands: nothing written yet, inside answer text, or after a full line.
    let at: "start" | "text" | "line" = "start"
    yield* llm.stream(args.request).pipe(
      Stream.runForEach((event) => {
        if (args.json) return write(`${JSON.stringify(event)}\n`)
        switch (event._tag) {
          case "TextDelta":
            at = "text"
            return write(event.text)
          case "ToolCall": {
            const line = `${at === "text" ? "\n" : ""}${toolCallLine(event)}`
            at = "line"
            return write(line)
          }
          case "Finish": {
            const refusal = event.refusal !== undefined ? refusalLine(event.refusal) : ""
            return write(at === "line" ? refusal : at === "text" || refusal === "" ? `\n${refusal}` : refusal)
          }
          default:
            return Effect.void
        }
      })
    )
  })

/**
 * Answers go to stdout; log lines go to stderr through the logger `LLM_LOG_FORMAT` names (logfmt
 * by default): warnings and worse, or from the level `LLM_LOG_LEVEL` names.
 */
const logToStderr = Layer.unwrapEffect(
  Effect.map(LlmConfig.config, ({ logging }) =>
    Logging.layerLogger({
      format: logging.format ?? "logfmt",
      level: logging.minimumLevel === "trace" ? "warn" : logging.minimumLevel,
      stderr: true
    })
  )
)

const main = (argv: ReadonlyArray<string>) =>
  Effect.flatMap(parse(argv), (args) => (args.help ? write(usage) : run(args))).pipe(Effect.provide(logToStderr))

const oneLine = (text: string) => text.replace(/\s*\n\s*/g, " ").trim()

/** One readable line and an exit code for whatever stopped the program. */
const report = (cause: Cause.Cause<UsageError | ConfigError.ConfigError | LlmError>): readonly [string, number] => {
  const failure = Cause.failureOption(cause)
  if (Option.isSome(failure)) {
    const error = failure.value
    if (error instanceof UsageError) return [`error: ${error.message} (try --help)`, 2]
    if (isLlmError(error)) return [`error: ${error._tag} (${error.provider}): ${oneLine(error.message)}`, exitCodes[error._tag]]
    if (ConfigError.isConfigError(error)) {
      const detail = error._op === "InvalidData" || error._op === "MissingData" ? error.message : String(error)
      return [`error: ConfigError: ${oneLine(detail)}`, 2]
    }
  }
  if (Cause.isInterruptedOnly(cause)) return ["error: interrupted", 1]
  const defect = Cause.squash(cause)
  return [`error: unexpected failure: ${oneLine(defect instanceof Error ? defect.message : String(defect))}`, 1]
}

const exit = await Effect.runPromiseExit(main(process.argv.slice(2)))
if (Exit.isFailure(exit)) {
  const [line, code] = report(exit.cause)
  process.stderr.write(`${line}\n`)
  process.exitCode = code
} else {
  process.exitCode = 0
}
