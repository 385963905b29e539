/**
 * Small deterministic randomness for the simulator: a string hash to derive seeds and a
 * seeded PRNG. Same seed, same sequence, on every machine: replies, jitter and failures
 * are reproducible.
 */

import { seededRandom } from '../random.js';

/** A source of numbers in [0, 1). */
export type Rng = () => number;

/** FNV-1a, 32 bits: a fast, well-spread hash of a string, used only to derive seeds. */
export function hashString(text: string): number {
  let hash = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    hash ^= text.charCodeAt(i);
    hash = Math.imul(hash, 0x01000193);
  }
  return hash >>> 0;
}

/** mulberry32: a tiny PRNG with a 32-bit state, good enough for simulated behaviour. */
export const createRng: (seed: number) => Rng = seededRandom;

/** One element of a non-empty list, chosen by `rng`. */
export function pick<T>(rng: Rng, items: readonly T[]): T {
  const item = items[Math.floor(rng() * items.length)];
  if (item === undefined) throw new Error('pick() from an empty list');
  return item;
}

/** An integer in [min, max], both included. */
export function intBetween(rng: Rng, min: number, max: number): number {
  return min + Math.floor(rng() * (max - min + 1));
}
