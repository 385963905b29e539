/** Usage arithmetic: zeros, sums. Kept pure so Chat never mutates a usage it handed out. */
import { dollarsToFemto, femtoToDollars } from './money.js';
import type { TokenUsage, Usage } from './types.js';

export function zeroUsage(): Usage {
  return { promptTokens: 0, completionTokens: 0, totalTokens: 0, cost: 0 };
}

const BREAKDOWNS = ['cachedTokens', 'cacheWriteTokens', 'cacheWrite1hTokens', 'reasoningTokens'] as const;

/**
 * The sum of two usages. Cost is the exact sum of the known costs (added as integer
 * femto-dollars, see money.ts), and null when nothing priced has been added: a conversation
 * on a model with no known price reports null, not 0.
 */
export function addUsage(a: Usage, b: Usage): Usage {
  const aEmpty = a.totalTokens === 0 && a.cost === 0;
  let cost: number | null;
  if (b.cost === null) cost = aEmpty ? null : a.cost;
  else if (a.cost === null) cost = b.cost;
  else cost = femtoToDollars(dollarsToFemto(a.cost) + dollarsToFemto(b.cost));
  const out: Usage = {
    promptTokens: a.promptTokens + b.promptTokens,
    completionTokens: a.completionTokens + b.completionTokens,
    totalTokens: a.totalTokens + b.totalTokens,
    cost,
  };
  for (const key of BREAKDOWNS) {
    if (a[key] !== undefined || b[key] !== undefined) out[key] = (a[key] ?? 0) + (b[key] ?? 0);
  }
  if (a.savedCost !== undefined || b.savedCost !== undefined) out.savedCost = femtoToDollars(dollarsToFemto(a.savedCost ?? 0) + dollarsToFemto(b.savedCost ?? 0));
  return out;
}

export function withCost(tokens: TokenUsage, cost: number | null): Usage {
  // Same object as `{ ...tokens, cost }`; in Node 20 a spread followed by another property
  // takes a slow path (about 1 µs, once per turn), Object.assign does not.
  return Object.assign({}, tokens, { cost });
}

/**
 * Usage of a provider whose input count leaves out cache reads and writes (Anthropic,
 * Bedrock): the canonical prompt counts all three.
 */
export function usageWithSeparateCache(counts: { input?: number; output?: number; cacheRead?: number | undefined; cacheWrite?: number | undefined }): TokenUsage {
  const prompt = (counts.input ?? 0) + (counts.cacheRead ?? 0) + (counts.cacheWrite ?? 0);
  const completion = counts.output ?? 0;
  const out: TokenUsage = { promptTokens: prompt, completionTokens: completion, totalTokens: prompt + completion };
  if (counts.cacheRead !== undefined) out.cachedTokens = counts.cacheRead;
  if (counts.cacheWrite !== undefined) out.cacheWriteTokens = counts.cacheWrite;
  return out;
}
