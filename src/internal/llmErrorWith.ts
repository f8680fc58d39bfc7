import type { LlmError } from "../LlmError.js"

type ErrorConstructor = new (props: Record<string, unknown>) => LlmError

/**
 * A copy of `error` with `textEmitted` set, of the same class. `message` is not an own enumerable
 * property of a tagged error, so it is passed explicitly.
 *
 * @internal
 */
export const withTextEmitted = (error: LlmError, textEmitted: number): LlmError =>
  error.textEmitted === textEmitted
    ? error
    : new (error.constructor as ErrorConstructor)({ ...error, message: error.message, textEmitted })
