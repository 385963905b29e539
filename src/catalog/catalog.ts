/**
 * The model catalog: ids, providers, prices, context and capabilities, from the snapshot
 * built out of published data packages (scripts/build-catalog.mjs), the simulator's models,
 * and, after a refresh, OpenRouter's live list. The snapshot JSON is read on first use only,
 * so commands that never look at a price do not pay for it.
 */
import { readFileSync } from 'node:fs';
import { SIM_DEFAULT_PROVIDER, SIM_MODELS, SIM_PROVIDERS, type SimProviderProfile } from '../sim/profiles.js';

/** Prices apply above a prompt size (Gemini and Claude long-context rates): the whole request. */
export interface PriceTier {
  /** The tier applies when promptTokens is greater than this. */
  above: number;
  input?: number;
  output?: number;
  cacheRead?: number;
  cacheWrite?: number;
  cacheWrite1h?: number;
  reasoning?: number;
}

/**
 * US dollars per million tokens, except `request` (dollars per request) and `image`
 * (dollars per input image, OpenRouter's unit). A missing field means "not known".
 */
export interface Pricing {
  input?: number;
  output?: number;
  cacheRead?: number;
  cacheWrite?: number;
  /** Cache writes kept for an hour (Anthropic's `ttl: "1h"`); when absent, twice the input price, Anthropic's rate. */
  cacheWrite1h?: number;
  /** Reasoning tokens when billed apart from other output (rare); otherwise output's price. */
  reasoning?: number;
  request?: number;
  image?: number;
  /** Input audio tokens. */
  audio?: number;
  tiers?: PriceTier[];
}

export interface ModelProvider {
  /** Provider name as in the registry (`openai`, `groq`, `openrouter`, `sim-fast`, ...). */
  provider: string;
  /** That provider's own id for the model. */
  model: string;
  /** Present when this provider's price differs from the model's reference price. */
  pricing?: Pricing;
  /** Set when the provider no longer serves the model, or says it soon will not (see scripts/build-catalog.mjs). */
  status?: ModelStatus;
}

/** A model or deployment on its way out (`deprecated`) or gone (`retired`); absent when served. */
export type ModelStatus = 'deprecated' | 'retired';

export interface CatalogModel {
  /** OpenRouter-style `vendor/model` where possible. */
  id: string;
  name: string;
  providers: ModelProvider[];
  /** The reference price: the vendor's own API, else OpenRouter's, else the first provider's. */
  pricing?: Pricing;
  contextLength?: number;
  maxOutput?: number;
  modalities?: { input: string[]; output: string[] };
  capabilities?: { tools?: boolean; structuredOutput?: boolean; reasoning?: boolean };
  /** Other names the model answers to: provider-native and dated ids. */
  aliases?: string[];
  /** Set when every provider of the model has deprecated or retired it. */
  status?: ModelStatus;
}

export interface CatalogData {
  /** Where the data came from: package names (or `openrouter`) and versions (or fetch times). */
  source: Record<string, string>;
  generatedAt: string;
  models: CatalogModel[];
}

interface DeploymentEntry {
  model: CatalogModel;
  provider: ModelProvider;
}

/** An indexed catalog: every lookup is one Map access. */
export class Catalog {
  readonly source: Record<string, string>;
  readonly generatedAt: string;
  private readonly models: CatalogModel[];
  private readonly byName = new Map<string, CatalogModel>();
  private readonly byDeployment = new Map<string, DeploymentEntry>();

  constructor(data: CatalogData) {
    this.source = data.source;
    this.generatedAt = data.generatedAt;
    this.models = data.models;
    for (const m of data.models) this.byName.set(m.id.toLowerCase(), m);
    // Native ids before other aliases, and an earlier claim is never overwritten.
    for (const m of data.models) {
      for (const p of m.providers) {
        const native = p.model.toLowerCase();
        if (!this.byName.has(native)) this.byName.set(native, m);
        const key = deploymentKey(p.provider, p.model);
        if (!this.byDeployment.has(key)) this.byDeployment.set(key, { model: m, provider: p });
      }
    }
    for (const m of data.models) {
      for (const alias of m.aliases ?? []) {
        const key = alias.toLowerCase();
        if (!this.byName.has(key)) this.byName.set(key, m);
      }
    }
  }

  /** A model by id (`openai/gpt-4o-mini`) or alias (`gpt-4o-mini`, `claude-sonnet-4-20250514`). */
  get(idOrAlias: string): CatalogModel | undefined {
    return this.byName.get(idOrAlias.toLowerCase());
  }

  /** The model a provider serves under its own id (`llama-3.3-70b-versatile` at `groq`). */
  atProvider(provider: string, providerModel: string): { model: CatalogModel; provider: ModelProvider } | undefined {
    return this.byDeployment.get(deploymentKey(provider, providerModel));
  }

  all(): readonly CatalogModel[] {
    return this.models;
  }

  get size(): number {
    return this.models.length;
  }

  /**
   * The pricing that applies to `model` at `provider` (the provider's own price when it has
   * one, else the model's reference price); without a provider, the reference price.
   * Undefined when the model is unknown or that provider is not known to serve it.
   */
  priceFor(model: string, provider?: string): Pricing | undefined {
    if (provider !== undefined) {
      const direct = this.atProvider(provider, model);
      if (direct) return direct.provider.pricing ?? direct.model.pricing;
    }
    const entry = this.get(model);
    if (!entry) return undefined;
    if (provider === undefined) return entry.pricing;
    const at = entry.providers.find((p) => p.provider === provider);
    if (!at) return undefined;
    return at.pricing ?? entry.pricing;
  }
}

function deploymentKey(provider: string, model: string): string {
  return `${provider}\u0000${model.toLowerCase()}`;
}

/** A simulated provider's prices, cache rates included. */
function simPricing(profile: SimProviderProfile): Pricing {
  const out: Pricing = { input: profile.inputPrice, output: profile.outputPrice, cacheRead: profile.cacheReadPrice };
  if (profile.cacheWritePrice !== undefined) out.cacheWrite = profile.cacheWritePrice;
  return out;
}

/** The simulator's models with each simulated provider's price, read from its profiles now. */
export function simulatorModels(): CatalogModel[] {
  const out: CatalogModel[] = [];
  for (const [name, profile] of Object.entries(SIM_MODELS)) {
    const providers: ModelProvider[] = [];
    const priced = profile.providers.filter((p) => SIM_PROVIDERS[p] !== undefined);
    const referenceProvider = priced.includes(SIM_DEFAULT_PROVIDER) ? SIM_DEFAULT_PROVIDER : priced[0];
    const ref = referenceProvider === undefined ? undefined : SIM_PROVIDERS[referenceProvider];
    const pricing: Pricing | undefined = ref ? simPricing(ref) : undefined;
    for (const p of profile.providers) {
      const prof = SIM_PROVIDERS[p];
      const entry: ModelProvider = { provider: p, model: name };
      if (prof && ref && JSON.stringify(simPricing(prof)) !== JSON.stringify(pricing)) entry.pricing = simPricing(prof);
      providers.push(entry);
    }
    const model: CatalogModel = {
      id: `sim/${name}`,
      name: `Simulator ${name}`,
      providers,
      contextLength: profile.contextLength,
      modalities: { input: ['text'], output: ['text'] },
      capabilities: { tools: false, structuredOutput: false, reasoning: false },
    };
    if (pricing) model.pricing = pricing;
    out.push(model);
  }
  return out;
}

let snapshotData: CatalogData | undefined;

/** The published-data snapshot plus the simulator's models; parsed once, on first call. */
export function loadSnapshot(): CatalogData {
  if (!snapshotData) {
    const raw = readFileSync(new URL('./snapshot.json', import.meta.url), 'utf8');
    const parsed = JSON.parse(raw) as CatalogData;
    snapshotData = { source: parsed.source, generatedAt: parsed.generatedAt, models: [...parsed.models, ...simulatorModels()] };
  }
  return snapshotData;
}

let current: Catalog | undefined;

/** The catalog in use: the snapshot until a refresh (or the caller) installs another. */
export function defaultCatalog(): Catalog {
  current ??= new Catalog(loadSnapshot());
  return current;
}

/** Install a catalog (after a live refresh, or a test's own); `undefined` returns to the snapshot. */
export function setDefaultCatalog(catalog: Catalog | undefined): void {
  current = catalog;
}
