/**
 * A tracer for tests that keeps every span Effect's own tracer makes.
 */
import { Effect, Tracer } from "effect"

/** Effect's tracer of the fiber, wrapped to keep the spans it makes in `spans`. */
export const recording = Effect.map(Effect.tracer, (native) => {
  const spans: Array<Tracer.Span> = []
  const tracer = Tracer.make({
    span: (...args) => {
      const span = native.span(...args)
      spans.push(span)
      return span
    },
    context: (f, fiber) => native.context(f, fiber)
  })
  return { spans, tracer }
})
