/**
 * `switchboard models [QUERY]`: the catalog as a table or JSON lines, filtered and sorted.
 * The catalog modules are imported when the command runs, never at start-up.
 */
import type { Command } from 'commander';
import type { CatalogModel, ModelStatus, Pricing } from '../catalog/catalog.js';
import type { ProviderSource } from '../catalog/refresh.js';
import { didYouMean } from '../suggest.js';
import { CLIError, commandContext, type CliIO } from './io.js';

interface ModelsOptions {
  all?: boolean;
  provider?: string;
  sort: string;
  json?: boolean;
  refresh?: boolean;
}

const SORTS = ['name', 'price', 'context'] as const;

/** `0.6` -> `0.60`, `0.075` -> `0.075`, `3` -> `3.00`; unknown -> `-`. */
export function formatPrice(value: number | undefined): string {
  if (value === undefined) return '-';
  const fixed = Number(value.toPrecision(12)).toString();
  if (fixed.includes('e')) return value.toFixed(8).replace(/0+$/, '');
  const [whole, frac = ''] = fixed.split('.');
  return `${whole}.${frac.padEnd(2, '0')}`;
}

function formatContext(n: number | undefined): string {
  return n === undefined ? '-' : n.toLocaleString('en-US');
}

/**
 * Whether `text` has `query` starting at a word: `mini` finds `gpt-4o-mini` but not
 * `gemini-2.0-flash`; `gpt-4o` finds `openai/gpt-4o-mini`.
 */
function hasWordPrefix(text: string, query: string): boolean {
  const t = text.toLowerCase();
  for (let at = t.indexOf(query); at >= 0; at = t.indexOf(query, at + 1)) {
    if (at === 0 || /[^a-z0-9]/.test(t[at - 1] as string) || (/[0-9]/.test(t[at - 1] as string) !== /[0-9]/.test(query[0] as string))) return true;
  }
  return false;
}

function matches(m: CatalogModel, query: string): boolean {
  const q = query.toLowerCase();
  const texts = [m.id, m.name, ...(m.aliases ?? []), ...m.providers.map((p) => p.model)];
  return texts.some((t) => hasWordPrefix(t, q));
}

/** The model's status where it is asked about: at one provider, or overall. */
function statusAt(m: CatalogModel, provider: string | undefined): ModelStatus | undefined {
  if (provider === undefined) return m.status;
  return m.providers.find((p) => p.provider === provider)?.status;
}

/** The pricing shown for a row: the provider's own when filtering by provider. */
function rowPricing(m: CatalogModel, provider: string | undefined): Pricing | undefined {
  if (provider === undefined) return m.pricing;
  const at = m.providers.find((p) => p.provider === provider);
  return at?.pricing ?? m.pricing;
}

function compare(sort: string, provider: string | undefined): (a: CatalogModel, b: CatalogModel) => number {
  const byId = (a: CatalogModel, b: CatalogModel): number => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0);
  if (sort === 'price') {
    const key = (m: CatalogModel): number => {
      const p = rowPricing(m, provider);
      // The blend the routing modes use: three input tokens to one output token.
      return p?.input === undefined || p.output === undefined ? Infinity : (3 * p.input + p.output) / 4;
    };
    return (a, b) => key(a) - key(b) || byId(a, b);
  }
  if (sort === 'context') return (a, b) => (b.contextLength ?? -1) - (a.contextLength ?? -1) || byId(a, b);
  return byId;
}

function jsonLine(m: CatalogModel, provider: string | undefined): string {
  const p = rowPricing(m, provider) ?? {};
  const pricing: Record<string, unknown> = {
    input: p.input ?? null,
    output: p.output ?? null,
    cacheRead: p.cacheRead ?? null,
    cacheWrite: p.cacheWrite ?? null,
  };
  for (const key of ['reasoning', 'request', 'image', 'audio', 'tiers'] as const) if (p[key] !== undefined) pricing[key] = p[key];
  return JSON.stringify({
    id: m.id,
    name: m.name,
    providers: m.providers,
    ...(m.status === undefined ? {} : { status: m.status }),
    pricing,
    contextLength: m.contextLength ?? null,
    maxOutput: m.maxOutput ?? null,
    modalities: m.modalities ?? null,
    capabilities: m.capabilities ?? null,
  });
}

function table(rows: string[][]): string {
  const widths = rows[0]?.map((_, c) => Math.max(...rows.map((r) => (r[c] ?? '').length))) ?? [];
  const right = new Set([2, 3, 4]);
  return rows
    .map((r) => r.map((cell, c) => (right.has(c) ? cell.padStart(widths[c] ?? 0) : cell.padEnd(widths[c] ?? 0))).join('  ').trimEnd())
    .join('\n');
}

/** Models whose priors a refresh fetches, at most: one listing request each. */
const MAX_PRIOR_LISTINGS = 50;

/**
 * With a refresh, OpenRouter's endpoints listings (published speed, first-token latency and
 * uptime per host) for the models there is a choice of hosts for, and for those fetched
 * before: the router's priors. A failed listing is skipped quietly; the figures are only hints.
 */
async function refreshRoutingPriors(io: CliIO, models: readonly CatalogModel[]): Promise<void> {
  const [{ refreshPriors }, { defaultPriorStore }, { catalogCandidates }, { DEFAULT_OPENROUTER_BASE_URL }] = await Promise.all([
    import('../routing/priors.js'),
    import('../routing/router.js'),
    import('../catalog/candidates.js'),
    import('../catalog/refresh.js'),
  ]);
  const { registry } = await commandContext(io);
  const store = defaultPriorStore(io.env);
  const choices = models.filter((m) => (catalogCandidates(m.id, registry, io.env)?.length ?? 0) > 1).map((m) => m.id);
  // Model groups with a member at OpenRouter: its listing describes the group's hosts.
  for (const [, members] of registry.allGroups()) for (const m of members) if (m.provider === 'openrouter') choices.push(m.providerModel);
  const wanted = [...new Set([...store.models().filter((m) => !m.startsWith('sim/')), ...choices])].slice(0, MAX_PRIOR_LISTINGS);
  if (wanted.length === 0) return;
  await refreshPriors(store, wanted, { registry, apiBase: io.env.OPENROUTER_BASE_URL || DEFAULT_OPENROUTER_BASE_URL });
}

/** Providers whose own model lists a refresh reads: local servers, and hosts the user has a key for. */
async function providerSources(io: CliIO): Promise<ProviderSource[]> {
  const { defaultBaseURLEnv } = await import('../providers/registry.js');
  const { registry } = await commandContext(io);
  const out: ProviderSource[] = [];
  for (const config of registry.all()) {
    if (config.simulated || config.name === 'openrouter' || config.protocol !== 'openai') continue;
    const envNames = config.baseURLEnv ?? [defaultBaseURLEnv(config.name)];
    const baseURL = envNames.map((n) => io.env[n]).find((v) => v !== undefined && v !== '') ?? config.baseURL;
    const apiKey = config.keyEnv.map((n) => io.env[n]).find((v) => v !== undefined && v !== '');
    if (!baseURL || (!config.local && apiKey === undefined)) continue;
    out.push({ provider: config.name, baseURL, apiKey, headers: config.headers, local: config.local });
  }
  return out;
}

export function registerModels(program: Command, io: CliIO): void {
  program
    .command('models')
    .description('List models with their providers, prices ($ per million tokens) and context length.')
    .argument('[query]', 'only models with a word of their id, name or provider id starting with this ("mini" finds gpt-4o-mini, not gemini)')
    .option('-p, --provider <name>', 'only models this provider serves (prices shown are its own)')
    .option('-s, --sort <key>', `sort by ${SORTS.join(', ')} (price: 3 input tokens to 1 output, as the routing modes weigh it)`, 'name')
    .option('--json', 'one JSON object per line')
    .option('--refresh', "fetch OpenRouter's live list (and local/keyed providers' lists) now")
    .option('--all', 'include deprecated and retired models (marked), hidden otherwise')
    .action(async (query: string | undefined, opts: ModelsOptions) => {
      if (!(SORTS as readonly string[]).includes(opts.sort)) {
        throw new CLIError(`--sort takes ${SORTS.join(', ')}; got "${opts.sort}".`);
      }
      const { listModels } = await import('../catalog/refresh.js');
      const result = await listModels({
        refresh: opts.refresh === true,
        env: io.env,
        providers: opts.refresh ? await providerSources(io) : [],
      });
      if (result.warning) io.stderr.write(`switchboard: warning: ${result.warning}\n`);
      if (opts.refresh && result.source === 'live') await refreshRoutingPriors(io, result.models);
      let models = [...result.models];
      if (query) models = models.filter((m) => matches(m, query));
      const provider = opts.provider;
      const hidden = models.filter((m) => statusAt(m, provider) !== undefined).length;
      if (!opts.all) models = models.filter((m) => statusAt(m, provider) === undefined);
      if (provider !== undefined) {
        const { registry } = await commandContext(io);
        const known = new Set([...registry.names(), ...result.models.flatMap((m) => m.providers.map((p) => p.provider))]);
        if (!known.has(provider)) {
          const hint = didYouMean(provider, known);
          throw new CLIError(`unknown provider "${provider}"${hint ? `; ${hint}` : ''} (the catalog's providers: ${[...new Set(result.models.flatMap((m) => m.providers.map((p) => p.provider)))].sort().join(', ')}).`);
        }
      }
      if (provider !== undefined) models = models.filter((m) => m.providers.some((p) => p.provider === provider));
      models.sort(compare(opts.sort, provider));

      if (opts.json) {
        io.stdout.write(models.map((m) => `${jsonLine(m, provider)}\n`).join(''));
        return;
      }
      if (models.length === 0) {
        io.stderr.write(`No model matches${query ? ` "${query}"` : ''}${provider ? ` at ${provider}` : ''}.\n`);
        return;
      }
      const rows = [['MODEL', 'PROVIDERS', 'INPUT $/M', 'OUTPUT $/M', 'CONTEXT']];
      for (const m of models) {
        const p = rowPricing(m, provider);
        const status = statusAt(m, provider);
        const served = opts.all ? m.providers : m.providers.filter((x) => x.status === undefined);
        rows.push([status ? `${m.id} (${status})` : m.id, [...new Set(served.map((x) => (x.status ? `${x.provider} (${x.status})` : x.provider)))].join(','), formatPrice(p?.input), formatPrice(p?.output), formatContext(m.contextLength)]);
      }
      io.stdout.write(`${table(rows)}\n`);
      const from = result.source === 'snapshot' ? `snapshot of ${result.catalog.generatedAt.slice(0, 10)}` : `${result.source} list of ${result.fetchedAt ?? ''}`;
      const more = !opts.all && hidden > 0 ? `; ${hidden} deprecated or retired hidden, --all shows them` : '';
      io.stderr.write(`${models.length} model${models.length === 1 ? '' : 's'} (${from}${more})\n`);
    });
}
