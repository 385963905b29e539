/**
 * Candidates: which providers serve a model, under which id and at what price. The simulator
 * answers from its profiles (read at call time, so providers added later count); the price
 * catalog plugs in with `setCatalogCandidates`. A model nobody knows has no candidates: a mode
 * then goes through OpenRouter's own provider routing (see `openrouter.ts`).
 */
import { SIM_MODELS, SIM_PROVIDERS } from '../sim/profiles.js';

export interface Candidate {
  provider: string;
  /** The provider's own id for the model. */
  providerModel: string;
  /** US dollars per million input tokens, when known. */
  inputPrice?: number | undefined;
  /** US dollars per million output tokens, when known. */
  outputPrice?: number | undefined;
  /** Body fields this deployment needs (OpenRouter provider pinning, say). */
  extraBody?: Record<string, unknown> | undefined;
}

export interface CandidateSource {
  /** Providers serving `model` (as the user named it, e.g. `sim/llama`); empty when unknown. */
  providersFor(model: string): Candidate[];
  /** Whether `provider` no longer serves `model` (as the user named it; `providerModel` is the provider's id). */
  retired?(model: string, provider: string, providerModel: string): boolean;
}

/** The simulator's models, from `SIM_MODELS` / `SIM_PROVIDERS` as they are at call time. */
export const simCandidates: CandidateSource = {
  providersFor(model: string): Candidate[] {
    if (!model.startsWith('sim/')) return [];
    const name = model.slice(4);
    const profile = Object.hasOwn(SIM_MODELS, name) ? SIM_MODELS[name] : undefined;
    if (!profile) return [];
    return profile.providers.flatMap((provider) => {
      const p = Object.hasOwn(SIM_PROVIDERS, provider) ? SIM_PROVIDERS[provider] : undefined;
      return p ? [{ provider, providerModel: name, inputPrice: p.inputPrice, outputPrice: p.outputPrice }] : [{ provider, providerModel: name }];
    });
  },
};

let catalogLookup: ((model: string) => Candidate[] | undefined) | undefined;
let retiredLookup: ((model: string, provider: string, providerModel: string) => boolean) | undefined;

/**
 * Let the price catalog say which providers serve a model and at what price (undefined:
 * unknown), and which deployments it marks retired.
 */
export function setCatalogCandidates(fn: ((model: string) => Candidate[] | undefined) | undefined, retired?: (model: string, provider: string, providerModel: string) => boolean): void {
  catalogLookup = fn;
  retiredLookup = retired;
}

/** The simulator first, then the catalog. */
export const defaultCandidates: CandidateSource = {
  providersFor(model: string): Candidate[] {
    const sim = simCandidates.providersFor(model);
    if (sim.length > 0) return sim;
    return catalogLookup?.(model) ?? [];
  },
  retired(model: string, provider: string, providerModel: string): boolean {
    return !model.startsWith('sim/') && (retiredLookup?.(model, provider, providerModel) ?? false);
  },
};

/** Prices blended 3:1 (input:output), the figure `lowest-cost` compares. */
export function blendedPrice(c: { inputPrice?: number | undefined; outputPrice?: number | undefined }): number | undefined {
  if (c.inputPrice === undefined || c.outputPrice === undefined) return undefined;
  return (3 * c.inputPrice + c.outputPrice) / 4;
}
