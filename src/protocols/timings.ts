/**
 * llama.cpp's `timings` object: the server's own measurement of a request, which beats ours
 * (ours includes the network and the client's event loop). llama.cpp sends it on its last
 * OpenAI-shaped chunk; the simulator, with `timings: true`, adds it to the last event of
 * every protocol it speaks (an extra field the official clients ignore), and each client
 * half reads it from there.
 */
import type { ProviderTiming } from '../types.js';

/** The part of llama.cpp's `timings` we read and write. */
export interface WireTimings {
  /** Output tokens per second while generating. */
  predicted_per_second?: unknown;
  /** Output tokens generated. */
  predicted_n?: unknown;
  /** Milliseconds spent generating them. */
  predicted_ms?: unknown;
}

/** The provider's own output speed from a `timings` object, when it is a usable number. */
export function readTimings(timings: WireTimings | null | undefined): ProviderTiming | undefined {
  const tps = timings?.predicted_per_second;
  return typeof tps === 'number' && Number.isFinite(tps) && tps > 0 ? { tokensPerSecond: tps } : undefined;
}

/** How long a reply took to generate, as a server reports it. */
export interface GenerationTiming extends ProviderTiming {
  /** Output tokens generated. */
  tokens?: number;
  /** Milliseconds spent generating them. */
  ms?: number;
}

/** A `timings` object for a generation timing (what a server half writes). */
export function writeTimings(timing: GenerationTiming): WireTimings {
  const out: WireTimings = {};
  if (timing.tokens !== undefined) out.predicted_n = timing.tokens;
  if (timing.ms !== undefined) out.predicted_ms = Math.round(timing.ms * 1000) / 1000;
  if (timing.tokensPerSecond !== undefined) out.predicted_per_second = Math.round(timing.tokensPerSecond * 1000) / 1000;
  return out;
}
