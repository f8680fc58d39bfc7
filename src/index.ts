/**
 * `@clearside/llm`: one `Llm` service for OpenAI, Anthropic and OpenAI-compatible providers, with
 * retry, timeouts, rate limits, a circuit breaker, fallback, metrics, logs and spans, in Effect's own
 * terms.
 *
 * @since 0.1.0
 */

/**
 * The `Llm` service tag, its `Service` interface, the `complete` / `stream` accessors and `router`.
 *
 * @since 0.1.0
 */
export * as Llm from "./Llm.js"

/**
 * Request, response, usage and stream event schemas, and request validation.
 *
 * @since 0.1.0
 */
export * as LlmRequest from "./LlmRequest.js"

/**
 * Tools the model may call, with their Effect `Schema` parameters and handlers, for `Llm.runTools`.
 *
 * @since 0.1.0
 */
export * as Tool from "./Tool.js"

/**
 * The tagged error union.
 *
 * @since 0.1.0
 */
export * as LlmError from "./LlmError.js"

/**
 * Test doubles for `Llm`: scripted answers, stream chunks and errors, a request recorder, simulated
 * latency under `TestClock`, and the deterministic echo model.
 *
 * @since 0.1.0
 */
export * as LlmMock from "./LlmMock.js"

/**
 * Environment configuration through Effect's `Config`: providers, default provider and model,
 * timeout and retries.
 *
 * @since 0.1.0
 */
export * as LlmConfig from "./LlmConfig.js"

/**
 * The `Llm` layer built from the environment: every configured provider, routed by name.
 *
 * @since 0.1.0
 */
export * as LlmLive from "./LlmLive.js"

/**
 * The OpenAI provider on the official `openai` client: `make`, `layer`, `layerConfig`.
 *
 * @since 0.1.0
 */
export * as OpenAi from "./OpenAi.js"

/**
 * The Anthropic provider on the official `@anthropic-ai/sdk` client: `make`, `layer`, `layerConfig`.
 *
 * @since 0.1.0
 */
export * as Anthropic from "./Anthropic.js"

/**
 * Any OpenAI-compatible endpoint (Groq, Mistral, DeepSeek, xAI, Ollama, vLLM...) under a name of your
 * choice: `make`, `layer`, `layerConfig`.
 *
 * @since 0.1.0
 */
export * as OpenAiCompatible from "./OpenAiCompatible.js"

/**
 * Azure OpenAI (provider `azure`) on the `openai` SDK's `AzureOpenAI` client: `make`, `layer`,
 * `layerConfig`.
 *
 * @since 0.1.0
 */
export * as AzureOpenAi from "./AzureOpenAi.js"

/**
 * Retry with capped, jittered exponential backoff that honours `retryAfter`.
 *
 * @since 0.1.0
 */
export * as Retry from "./Retry.js"

/**
 * Per-attempt, first-token, idle and overall deadline timeouts.
 *
 * @since 0.1.0
 */
export * as Timeout from "./Timeout.js"

/**
 * Requests-per-minute, tokens-per-minute and in-flight limits per provider.
 *
 * @since 0.1.0
 */
export * as RateLimit from "./RateLimit.js"

/**
 * Where the rate limiter keeps its buckets: in memory, or in Redis shared by every instance.
 *
 * @since 0.1.0
 */
export * as RateLimitStore from "./RateLimitStore.js"

/**
 * A circuit breaker per provider.
 *
 * @since 0.1.0
 */
export * as CircuitBreaker from "./CircuitBreaker.js"

/**
 * Fallback along a chain of providers and models.
 *
 * @since 0.1.0
 */
export * as Fallback from "./Fallback.js"

/**
 * Token usage, cost and latency metrics per attempt, and `withUsage` attribution.
 *
 * @since 0.1.0
 */
export * as Usage from "./Usage.js"

/**
 * Model prices per million tokens and the cost of a usage.
 *
 * @since 0.1.0
 */
export * as Pricing from "./Pricing.js"

/**
 * Structured log lines per call and per attempt, and Effect's built-in loggers from the environment.
 *
 * @since 0.1.0
 */
export * as Logging from "./Logging.js"

/**
 * GenAI spans per call and per attempt.
 *
 * @since 0.1.0
 */
export * as Tracing from "./Tracing.js"

/**
 * Every error class by name, for `instanceof` checks and construction.
 *
 * @since 0.1.0
 */
export {
  AuthenticationError,
  CircuitOpenError,
  ConnectionError,
  InvalidRequestError,
  MaxStepsError,
  NotFoundError,
  OutputValidationError,
  OverloadedError,
  QuotaExceededError,
  RateLimitError,
  ResponseParseError,
  ServerError,
  TimeoutError,
  ToolCallError
} from "./LlmError.js"
