/** Usage arithmetic: zeros, sums. Kept pure so Chat never mutates a usage it handed out. */
import type { TokenUsage, Usage } from './types.js';

export function zeroUsage(): Usage {
  return { promptTokens: 0, completionTokens: 0, totalTokens: 0, cost: 0 };
}

const BREAKDOWNS = ['cachedTokens', 'cacheWriteTokens', 'cacheWrite1hTokens', 'reasoningTokens'] as const;

/**
 * The sum of two usages. Cost is the sum of the known costs, and null when nothing priced
 * has been added: a conversation on a model with no known price reports null, not 0.
 */
export function addUsage(a: Usage, b: Usage): Usage {
  const aEmpty = a.totalTokens === 0 && a.cost === 0;
  let cost: number | null;
  if (b.cost === null) cost = aEmpty ? null : a.cost;
  else if (a.cost === null) cost = b.cost;
  else cost = addDollars(a.cost, b.cost);
  const out: Usage = {
    promptTokens: a.promptTokens + b.promptTokens,
    completionTokens: a.completionTokens + b.completionTokens,
    totalTokens: a.totalTokens + b.totalTokens,
    cost,
  };
  for (const key of BREAKDOWNS) {
    if (a[key] !== undefined || b[key] !== undefined) out[key] = (a[key] ?? 0) + (b[key] ?? 0);
  }
  if (a.savedCost !== undefined || b.savedCost !== undefined) out.savedCost = addDollars(a.savedCost ?? 0, b.savedCost ?? 0);
  return out;
}

export function withCost(tokens: TokenUsage, cost: number | null): Usage {
  // Same object as `{ ...tokens, cost }`; in Node 20 a spread followed by another property
  // takes a slow path (about 1 µs, once per turn), Object.assign does not.
  return Object.assign({}, tokens, { cost });
}

/** Dollars to integer femto-dollars (1e-15 dollars; exact for any cost a single turn has). */
export function toFemto(dollars: number): bigint {
  return BigInt(Math.round(dollars * 1e15));
}

export function fromFemto(femto: bigint): number {
  return Number(femto) / 1e15;
}

/** Two dollar amounts summed in integer femto-dollars, so sums of many turns do not drift. */
export function addDollars(a: number, b: number): number {
  return fromFemto(toFemto(a) + toFemto(b));
}
