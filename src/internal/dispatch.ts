/**
 * Sends each (already validated) request to the provider it names.
 *
 * @internal
 */
import { Effect, Stream } from "effect"
import type * as Llm from "../Llm.js"
import { InvalidRequestError } from "../LlmError.js"
import * as NativeLimits from "./nativeLimits.js"

/**
 * The error for a provider name that is not configured.
 *
 * @internal
 */
export const unknownProvider = (name: string, configured: string): InvalidRequestError =>
  new InvalidRequestError({
    provider: name,
    field: "provider",
    message: `Invalid request: provider "${name}" is not configured (configured: ${configured})`
  })

/**
 * A service that calls `providers[request.provider]`. The request must carry a provider name; a name
 * that is not configured fails with an `InvalidRequestError`. When every provider enforces limits
 * itself ({@link NativeLimits}), so does the dispatch.
 *
 * @internal
 */
export const make = (providers: Readonly<Record<string, Llm.Service>>): Llm.Service => {
  const configured = Object.keys(providers).join(", ") || "none"
  const lookup = (name: string | undefined): Llm.Service | InvalidRequestError => {
    const service = name !== undefined && Object.hasOwn(providers, name) ? providers[name] : undefined
    return service ?? unknownProvider(name ?? "none", configured)
  }
  const routed: Llm.Service = {
    complete: (request) => {
      const service = lookup(request.provider)
      return service instanceof InvalidRequestError ? Effect.fail(service) : service.complete(request)
    },
    stream: (request) => {
      const service = lookup(request.provider)
      return service instanceof InvalidRequestError ? Stream.fail(service) : service.stream(request)
    }
  }
  const natives = Object.values(providers).map(NativeLimits.get)
  if (natives.length === 0 || natives.some((native) => native === undefined)) return routed
  return NativeLimits.attach(routed, {
    complete: (request, millis, onTimeout) => {
      const service = lookup(request.provider)
      return service instanceof InvalidRequestError
        ? Effect.fail(service)
        : NativeLimits.get(service)!.complete(request, millis, onTimeout)
    },
    stream: (request, limits) => {
      const service = lookup(request.provider)
      return service instanceof InvalidRequestError ? Stream.fail(service) : NativeLimits.get(service)!.stream(request, limits)
    }
  })
}
