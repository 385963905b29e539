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
    // A host that no longer serves the model is no choice (pinning it still sends, with a warning).
    if (p.status === 'retired' || !registry.has(p.provider)) continue;
    const config = registry.get(p.provider);
    if (config.simulated || !hasKey(config, env)) continue;
    const pricing = p.pricing ?? entry.pricing;
    out.push({ provider: p.provider, providerModel: p.model, inputPrice: pricing?.input, outputPrice: pricing?.output });
  }
  return out.some((c) => c.provider !== 'openrouter') ? out : undefined;
}

/** Whether the catalog marks `model` (a catalog id, or the provider's own `providerModel`) at `provider` as retired. */
export function catalogRetired(model: string, provider: string, providerModel: string): boolean {
  const catalog = defaultCatalog();
  const at = catalog.get(model)?.providers.find((p) => p.provider === provider) ?? catalog.atProvider(provider, providerModel)?.provider;
  return at?.status === 'retired';
}
