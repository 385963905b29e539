/**
 * What a provider's prompt cache saved on one request: the cost at the uncached price (every
 * input token at the input price) less the cost as billed. Cached reads are cheaper than
 * input (a tenth at Anthropic, a half or a quarter elsewhere) and cache writes dearer (1.25x
 * or 2x at Anthropic), so a request that only writes the cache saves a negative amount; that
 * is reported as it is, and paid back by the reads that follow.
 */
import type { TokenUsage } from '../types.js';
import { dollarsToFemto, femtoToDollars } from '../money.js';

/** Undefined when nothing was read from or written to a cache, or a price is unknown. */
export function providerCacheSaving(tokens: TokenUsage, cost: number | null, price: (usage: TokenUsage) => number | null): number | undefined {
  const saved = providerCacheSavingFemto(tokens, cost === null ? null : dollarsToFemto(cost), (uncached) => {
    const full = price(uncached);
    return full === null ? null : dollarsToFemto(full);
  });
  return saved === undefined ? undefined : femtoToDollars(saved);
}

/** The same in femto-dollars, for the gateway's ledger and request log. */
export function providerCacheSavingFemto(tokens: TokenUsage, costFemto: bigint | null, priceFemto: (usage: TokenUsage) => bigint | null): bigint | undefined {
  if (costFemto === null || !((tokens.cachedTokens ?? 0) > 0 || (tokens.cacheWriteTokens ?? 0) > 0)) return undefined;
  const full = priceFemto({ ...tokens, cachedTokens: 0, cacheWriteTokens: 0 });
  return full === null ? undefined : full - costFemto;
}
