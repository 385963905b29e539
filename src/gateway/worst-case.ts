/**
 * The most a request can cost, reserved before it is sent: the prompt's tokens counted with
 * the tokenizer at the input price, plus the output cap at the output price (the request's
 * max tokens, else the server's default cap; never the model's whole output limit), at the
 * dearest deployment the model string could route to.
 */
import { defaultCatalog, type Pricing } from '../catalog/catalog.js';
import { estimateTokens } from '../catalog/context.js';
import { computeCostFemto } from '../catalog/cost.js';
import { sharedModelString } from '../routing/grammar.js';
import type { CanonicalRequest } from '../types.js';

export interface WorstCase {
  promptTokens: number;
  outputCap: number;
  /** Null when some deployment the request may reach has no known price. */
  costFemto: bigint | null;
}

/** Every price the model string may be billed at: a pinned provider's, else each provider's of the model. */
function candidatePrices(model: string): (Pricing | undefined)[] {
  const catalog = defaultCatalog();
  let ast;
  try {
    ast = sharedModelString(model);
  } catch {
    return [catalog.priceFor(model)];
  }
  const prices: (Pricing | undefined)[] = [];
  let previous: string | null = null;
  for (const endpoint of ast.endpoints) {
    const name: string | null = endpoint.model ?? previous;
    previous = name;
    if (name === null) continue;
    if (endpoint.target?.kind === 'provider') {
      prices.push(catalog.priceFor(name, endpoint.target.name));
      continue;
    }
    const entry = catalog.get(name);
    if (!entry) {
      prices.push(undefined);
      continue;
    }
    prices.push(entry.pricing);
    for (const p of entry.providers) if (p.pricing) prices.push(p.pricing);
  }
  return prices;
}

/** `promptTokens`: the tokenizer's count by default; a caller may give an upper bound on it instead. */
export function worstCase(model: string, request: CanonicalRequest, defaultOutputCap: number, promptTokens = estimateTokens(request.messages)): WorstCase {
  const outputCap = request.params.maxTokens ?? defaultOutputCap;
  const usage = { promptTokens, completionTokens: outputCap, totalTokens: promptTokens + outputCap };
  let costFemto: bigint | null = 0n;
  for (const pricing of candidatePrices(model)) {
    if (!pricing) return { promptTokens, outputCap, costFemto: null };
    // Reasoning may be billed apart: the worst case is whichever of the two output prices is dearer.
    for (const reasoningTokens of pricing.reasoning === undefined ? [0] : [0, outputCap]) {
      const cost = computeCostFemto({ ...usage, reasoningTokens }, pricing, model);
      if (cost === null) return { promptTokens, outputCap, costFemto: null };
      if (cost > costFemto) costFemto = cost;
    }
  }
  return { promptTokens, outputCap, costFemto };
}
