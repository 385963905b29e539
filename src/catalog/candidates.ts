/**
 * The catalog as a source of routing candidates: the providers that serve a model, with
 * their prices, limited to those the user can reach (a key set, or a keyless local server).
 * When only OpenRouter is left, there is nothing for us to choose between: the router then
 * hands the mode to OpenRouter's own provider routing.
 */
import type { ProviderRegistry } from '../providers/registry.js';
import { hasKey, type Env } from '../providers/resolve.js';
import type { Candidate } from '../routing/candidates.js';
import { defaultCatalog } from './catalog.js';

export function catalogCandidates(model: string, registry: ProviderRegistry, env: Env): Candidate[] | undefined {
  const entry = defaultCatalog().get(model);
  if (!entry) return undefined;
  const out: Candidate[] = [];
  for (const p of entry.providers) {
    if (!registry.has(p.provider)) continue;
    const config = registry.get(p.provider);
    if (config.simulated || !hasKey(config, env)) continue;
    const pricing = p.pricing ?? entry.pricing;
    out.push({ provider: p.provider, providerModel: p.model, inputPrice: pricing?.input, outputPrice: pricing?.output });
  }
  return out.some((c) => c.provider !== 'openrouter') ? out : undefined;
}
