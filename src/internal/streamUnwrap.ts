/**
 * `Stream.unwrap` at the channel level.
 *
 * @internal
 */
import { Channel, Effect, Stream } from "effect"

/**
 * The stream an effect produces, like `Stream.unwrap`. `Stream.unwrap` runs the produced stream
 * as a `flatMap` inner stream, which costs a few microseconds on every chunk; sequencing the
 * channels costs nothing per chunk.
 *
 * @internal
 */
export const unwrap = <A, E, R, E2, R2>(
  effect: Effect.Effect<Stream.Stream<A, E, R>, E2, R2>
): Stream.Stream<A, E | E2, R | R2> => Stream.fromChannel(Channel.unwrap(Effect.map(effect, Stream.toChannel)))
