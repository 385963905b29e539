/**
 * A mode or constraints on a model nobody has figures for, sent through OpenRouter: its own
 * provider routing does the choosing (`provider` object in the request body). Field names as
 * OpenRouter documents them: `sort` ('price' | 'throughput' | 'latency'), `only`, `ignore`,
 * `max_price` ({ prompt, completion } in $ per million tokens), `preferred_min_throughput`
 * (tokens/s, applies to p50) and `preferred_max_latency` (seconds, applies to p50).
 */
import type { Constraint, Mode } from './grammar.js';

export interface OpenRouterProviderPreferences {
  sort?: 'price' | 'throughput' | 'latency';
  only?: string[];
  ignore?: string[];
  max_price?: { prompt?: number; completion?: number };
  preferred_min_throughput?: number;
  preferred_max_latency?: number;
  allow_fallbacks?: boolean;
}

const SORT: Record<Mode, OpenRouterProviderPreferences['sort']> = {
  'lowest-cost': 'price',
  'lowest-input-cost': 'price',
  'lowest-output-cost': 'price',
  'highest-tks-per-sec': 'throughput',
  'lowest-ttft': 'latency',
  'lowest-itl': 'throughput',
  'lowest-latency': 'latency',
};

/**
 * OpenRouter provider preferences for a mode and constraints. Thresholds OpenRouter cannot
 * express (a blended `cost`, whole `latency`, `itl`, lower bounds on prices) are left to the
 * router's own measurements.
 */
export function openRouterPreferences(mode: Mode | null, constraints: Constraint[]): OpenRouterProviderPreferences | undefined {
  const prefs: OpenRouterProviderPreferences = {};
  if (mode) prefs.sort = SORT[mode];
  for (const c of constraints) {
    if (c.kind === 'providers') prefs.only = [...(prefs.only ?? []), ...c.providers];
    else if (c.kind === 'skip-providers') prefs.ignore = [...(prefs.ignore ?? []), ...c.providers];
    else if (c.metric === 'tps' && (c.op === '>' || c.op === '>=')) prefs.preferred_min_throughput = c.value;
    else if (c.metric === 'ttft' && (c.op === '<' || c.op === '<=')) prefs.preferred_max_latency = c.value / 1000;
    else if (c.metric === 'input-cost' && (c.op === '<' || c.op === '<=')) prefs.max_price = { ...prefs.max_price, prompt: c.value };
    else if (c.metric === 'output-cost' && (c.op === '<' || c.op === '<=')) prefs.max_price = { ...prefs.max_price, completion: c.value };
  }
  return Object.keys(prefs).length > 0 ? prefs : undefined;
}
