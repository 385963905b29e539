/**
 * Exact cost from canonical usage and a price list.
 *
 * Usage is canonical (see types.ts): promptTokens holds every input token, cached and
 * cache-written ones included; completionTokens every output token, reasoning included.
 * So: uncached input = prompt - cached - cacheWrite at the input price, cached tokens at the
 * cache-read price, cache writes at the cache-write price (those kept an hour at the 1-hour
 * write price, else twice the input price as Anthropic bills them), output (reasoning inside, counted
 * once) at the output price, plus the per-request price.
 *
 * A missing cache-read or cache-write price bills those tokens at the input price: the
 * sources (OpenRouter, models.dev, genai-prices) leave the field out when a provider has no
 * separate cache rate. A missing input or output price for tokens that were used means the
 * cost is unknown: null, and one warning per model.
 *
 * Arithmetic is in integers: each price becomes an integer count of 1e-15 dollars per token
 * (prices are per million tokens, so that is the price times 1e9, exact for any price with up
 * to nine decimals), products and sums are BigInt, and one division at the end gives the
 * double nearest to the exact decimal.
 */
import type { TokenUsage } from '../types.js';
import { defaultCatalog, type Pricing, type PriceTier } from './catalog.js';
import { dollarsToFemto, femtoToDollars } from '../money.js';

export type WarnHandler = (message: string) => void;

const defaultWarn: WarnHandler = (message) => {
  process.stderr.write(`switchboard: warning: ${message}\n`);
};
let warnHandler: WarnHandler = defaultWarn;
const warned = new Set<string>();

/** Redirect warnings (unknown prices, ...); returns the previous handler. `undefined` restores stderr. */
export function setWarnHandler(handler: WarnHandler | undefined): WarnHandler {
  const previous = warnHandler;
  warnHandler = handler ?? defaultWarn;
  return previous;
}

/** Emit `message` once per `key` for the life of the process (or until resetWarnings). */
export function warnOnce(key: string, message: string): void {
  if (warned.has(key)) return;
  warned.add(key);
  warnHandler(message);
}

/** Forget which warnings were given (tests). */
export function resetWarnings(): void {
  warned.clear();
}

/** Dollars per million tokens -> integer 1e-15 dollars per token. */
function perTokenUnits(pricePerMillion: number): bigint {
  return BigInt(Math.round(pricePerMillion * 1e9));
}

/** The prices in force for this prompt size: the highest tier the prompt exceeds overrides the base. */
function effectivePricing(pricing: Pricing, promptTokens: number): Pricing {
  if (!pricing.tiers || pricing.tiers.length === 0) return pricing;
  let tier: PriceTier | undefined;
  for (const t of pricing.tiers) if (promptTokens > t.above && (!tier || t.above > tier.above)) tier = t;
  if (!tier) return pricing;
  const out: Pricing = { ...pricing };
  if (tier.input !== undefined) out.input = tier.input;
  if (tier.output !== undefined) out.output = tier.output;
  if (tier.cacheRead !== undefined) out.cacheRead = tier.cacheRead;
  if (tier.cacheWrite !== undefined) out.cacheWrite = tier.cacheWrite;
  if (tier.cacheWrite1h !== undefined) out.cacheWrite1h = tier.cacheWrite1h;
  if (tier.reasoning !== undefined) out.reasoning = tier.reasoning;
  return out;
}

function count(n: number | undefined): number {
  return n !== undefined && Number.isFinite(n) && n > 0 ? Math.floor(n) : 0;
}

/**
 * Cost in US dollars of one turn (or summed turns), or null when a needed price is unknown.
 * `model` names the model in the one-time warning.
 */
export function computeCost(usage: TokenUsage, pricing: Pricing | null | undefined, model = 'this model'): number | null {
  const femto = computeCostFemto(usage, pricing, model);
  return femto === null ? null : femtoToDollars(femto);
}

/** The exact cost in integer femto-dollars (1e-15 USD), or null when a needed price is unknown. */
export function computeCostFemto(usage: TokenUsage, pricing: Pricing | null | undefined, model = 'this model'): bigint | null {
  const prompt = count(usage.promptTokens);
  const completion = count(usage.completionTokens);
  const cached = Math.min(count(usage.cachedTokens), prompt);
  const cacheWrite = Math.min(count(usage.cacheWriteTokens), prompt - cached);
  const hourWrites = Math.min(count(usage.cacheWrite1hTokens), cacheWrite);
  const reasoning = Math.min(count(usage.reasoningTokens), completion);
  const uncached = prompt - cached - cacheWrite;

  if (!pricing) {
    warnOnce(`price:${model}`, `no price known for ${model}; its cost is reported as null.`);
    return null;
  }
  const p = effectivePricing(pricing, prompt);
  const missing: string[] = [];
  if (prompt > 0 && p.input === undefined) missing.push('input');
  if (completion > 0 && p.output === undefined) missing.push('output');
  if (missing.length > 0) {
    warnOnce(`price:${model}`, `no ${missing.join(' or ')} price known for ${model}; its cost is reported as null.`);
    return null;
  }

  const input = p.input ?? 0;
  const output = p.output ?? 0;
  let units = 0n;
  units += BigInt(uncached) * perTokenUnits(input);
  units += BigInt(cached) * perTokenUnits(p.cacheRead ?? input);
  units += BigInt(cacheWrite - hourWrites) * perTokenUnits(p.cacheWrite ?? input);
  if (hourWrites > 0) units += BigInt(hourWrites) * perTokenUnits(p.cacheWrite1h ?? 2 * input);
  if (p.reasoning !== undefined) {
    units += BigInt(completion - reasoning) * perTokenUnits(output);
    units += BigInt(reasoning) * perTokenUnits(p.reasoning);
  } else {
    units += BigInt(completion) * perTokenUnits(output);
  }
  if (p.request !== undefined) units += dollarsToFemto(p.request);
  return units;
}

/** The pricing for `model` at `provider` in the default catalog (loaded on first call). */
export function priceFor(model: string, provider?: string): Pricing | undefined {
  return defaultCatalog().priceFor(model, provider);
}

/** Cost of a turn of `model` at `provider` from the default catalog, femto-dollars; null (and one warning) if unpriced. */
export function costFemtoFor(usage: TokenUsage, model: string, provider?: string): bigint | null {
  const label = provider === undefined ? model : `${model}@${provider}`;
  return computeCostFemto(usage, priceFor(model, provider), label);
}

/** The same in dollars. */
export function costFor(usage: TokenUsage, model: string, provider?: string): number | null {
  const femto = costFemtoFor(usage, model, provider);
  return femto === null ? null : femtoToDollars(femto);
}
