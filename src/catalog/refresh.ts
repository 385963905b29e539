/**
 * Live model lists: OpenRouter's `GET /models` (prices, context, modalities, parameters) and
 * `GET {baseURL}/models` of the providers the caller names (those it holds keys for, or that
 * run locally), merged over the snapshot and cached on disk for 24 hours. A failed refresh
 * falls back to the cache, then to the snapshot, and says so.
 */
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { cacheDir as defaultCacheDir } from '../paths.js';
import type { Env } from '../providers/resolve.js';
import { Catalog, loadSnapshot, setDefaultCatalog, type CatalogData, type CatalogModel, type Pricing } from './catalog.js';

export const DEFAULT_OPENROUTER_BASE_URL = 'https://openrouter.ai/api/v1';
/** How long a cached live list is used before `refresh: 'auto'` fetches again. */
export const CACHE_MAX_AGE_MS = 24 * 60 * 60 * 1000;

export interface ProviderSource {
  provider: string;
  baseURL: string;
  apiKey?: string | undefined;
  headers?: Record<string, string> | undefined;
  /** A local server that may simply not be running: a refused connection is no warning. */
  local?: boolean | undefined;
}

export interface ListModelsOptions {
  /** true: fetch now; 'auto': fetch when the cache is missing or older than 24 h; false (default): no network. */
  refresh?: boolean | 'auto';
  env: Env;
  /** Folder for models.json (default `$SWITCHBOARD_HOME/cache`). */
  cacheDir?: string;
  /** OpenAI-compatible providers whose `/models` to read as well. */
  providers?: ProviderSource[];
  /** Milliseconds per request before giving up (default 10 s). */
  timeoutMs?: number;
  /** Install the result as the default catalog for prices (default true). */
  install?: boolean;
  now?: () => number;
}

export type ListSource = 'live' | 'cache' | 'snapshot';

export interface ListModelsResult {
  catalog: Catalog;
  models: readonly CatalogModel[];
  source: ListSource;
  /** When the live data was fetched (live and cache). */
  fetchedAt?: string;
  /** Why the result is not what was asked for (a failed refresh, an old cache). */
  warning?: string;
}

/** What is cached: the live lists only; they are merged over the snapshot on every load. */
interface LiveData {
  fetchedAt: string;
  openrouterBaseURL: string;
  openrouter: CatalogModel[];
  providers: { provider: string; ids: string[] }[];
}

// ---------- OpenRouter's documented shape ----------

interface OpenRouterModel {
  id: string;
  name?: string;
  context_length?: number | null;
  pricing?: Record<string, string | number | null | undefined>;
  architecture?: { input_modalities?: string[]; output_modalities?: string[] };
  supported_parameters?: string[];
  top_provider?: { max_completion_tokens?: number | null; context_length?: number | null };
}

/**
 * A per-token price string ("0.00000015") -> dollars per million tokens (0.15), by moving the
 * decimal point in the text so no binary rounding creeps in. Negative ("-1" marks a variable
 * price), empty and non-finite values are unknown.
 */
export function perTokenToPerMillion(value: string | number | null | undefined): number | undefined {
  if (value === null || value === undefined || value === '') return undefined;
  const text = typeof value === 'number' ? String(value) : value.trim();
  const m = /^(\d*)(?:\.(\d*))?$/.exec(text);
  if (m) {
    const whole = m[1] ?? '';
    const frac = (m[2] ?? '').padEnd(6, '0');
    const shifted = `${whole}${frac.slice(0, 6)}.${frac.slice(6)}`;
    const n = Number(shifted);
    return Number.isFinite(n) ? n : undefined;
  }
  const n = Number(text);
  if (!Number.isFinite(n) || n < 0) return undefined;
  return Number((n * 1e6).toPrecision(12));
}

/** A per-unit price (request, image) as a number of dollars; negative and non-finite are unknown. */
function dollars(value: string | number | null | undefined): number | undefined {
  if (value === null || value === undefined || value === '') return undefined;
  const n = Number(value);
  return Number.isFinite(n) && n >= 0 ? n : undefined;
}

export function fromOpenRouter(m: OpenRouterModel): CatalogModel {
  const pricing: Pricing = {};
  const p = m.pricing ?? {};
  const fields: [keyof Pricing, number | undefined][] = [
    ['input', perTokenToPerMillion(p.prompt)],
    ['output', perTokenToPerMillion(p.completion)],
    ['cacheRead', perTokenToPerMillion(p.input_cache_read)],
    ['cacheWrite', perTokenToPerMillion(p.input_cache_write)],
    ['reasoning', perTokenToPerMillion(p.internal_reasoning)],
    ['audio', perTokenToPerMillion(p.audio)],
    ['request', dollars(p.request)],
    ['image', dollars(p.image)],
  ];
  for (const [key, value] of fields) {
    // OpenRouter lists zeros for "no extra charge": keep them for input/output, skip them elsewhere.
    if (value === undefined) continue;
    if (value === 0 && key !== 'input' && key !== 'output') continue;
    (pricing as Record<string, number>)[key] = value;
  }
  // A reasoning price equal to output's is just output.
  if (pricing.reasoning !== undefined && pricing.reasoning === pricing.output) delete pricing.reasoning;
  const params = new Set(m.supported_parameters ?? []);
  const model: CatalogModel = {
    id: m.id,
    name: m.name ?? m.id,
    providers: [{ provider: 'openrouter', model: m.id }],
    capabilities: {
      tools: params.has('tools'),
      structuredOutput: params.has('structured_outputs') || params.has('response_format'),
      reasoning: params.has('reasoning') || params.has('include_reasoning'),
    },
  };
  if (Object.keys(pricing).length > 0) model.pricing = pricing;
  const context = m.context_length ?? m.top_provider?.context_length;
  if (typeof context === 'number' && context > 0) model.contextLength = context;
  const maxOut = m.top_provider?.max_completion_tokens;
  if (typeof maxOut === 'number' && maxOut > 0) model.maxOutput = maxOut;
  const arch = m.architecture;
  if (arch?.input_modalities && arch.output_modalities) {
    model.modalities = { input: [...arch.input_modalities], output: [...arch.output_modalities] };
  }
  return model;
}

// ---------- merging ----------

/** The snapshot with live lists laid over it: live OpenRouter prices win at OpenRouter. */
export function mergeLive(base: CatalogData, live: LiveData): CatalogData {
  const models = base.models.map((m) => ({ ...m, providers: m.providers.map((p) => ({ ...p })) }));
  const index = new Catalog({ ...base, models });
  for (const lm of live.openrouter) {
    const existing = index.get(lm.id);
    if (!existing || existing.id.toLowerCase() !== lm.id.toLowerCase()) {
      models.push(lm);
      continue;
    }
    const vendor = existing.id.slice(0, existing.id.indexOf('/'));
    const hasOwnVendor = existing.providers.some((p) => p.provider !== 'openrouter' && vendorOf(p.provider) === vendor);
    let at = existing.providers.find((p) => p.provider === 'openrouter');
    if (!at) {
      at = { provider: 'openrouter', model: lm.id };
      existing.providers.push(at);
    }
    if (lm.pricing) {
      if (!hasOwnVendor || !existing.pricing) {
        // OpenRouter's is the reference price: other providers that shared it keep theirs.
        for (const p of existing.providers) if (p !== at && !p.pricing && existing.pricing) p.pricing = existing.pricing;
        existing.pricing = lm.pricing;
        delete at.pricing;
      } else {
        at.pricing = lm.pricing;
      }
    }
    existing.contextLength = lm.contextLength ?? existing.contextLength;
    existing.maxOutput ??= lm.maxOutput;
    existing.modalities ??= lm.modalities;
    existing.capabilities = { ...existing.capabilities, ...lm.capabilities };
  }
  const merged = new Catalog({ ...base, models });
  for (const { provider, ids } of live.providers) {
    for (const id of ids) {
      if (merged.atProvider(provider, id)) continue;
      const known = merged.get(id);
      if (known) {
        // A model the catalog knows, served here under this id; its price here is unknown.
        if (!known.providers.some((p) => p.provider === provider)) known.providers.push({ provider, model: id, pricing: {} });
        continue;
      }
      models.push({ id: id.includes('/') ? id : `${provider}/${id}`, name: id, providers: [{ provider, model: id }] });
    }
  }
  return {
    source: { ...base.source, openrouter: live.fetchedAt },
    generatedAt: live.fetchedAt,
    models,
  };
}

const VENDOR_PREFIX: Record<string, string> = { mistral: 'mistralai', xai: 'x-ai' };
function vendorOf(provider: string): string {
  return (Object.hasOwn(VENDOR_PREFIX, provider) ? VENDOR_PREFIX[provider] : undefined) ?? provider;
}

// ---------- fetching and caching ----------

async function getJSON(url: string, headers: Record<string, string>, timeoutMs: number): Promise<unknown> {
  const res = await fetch(url, { headers: { accept: 'application/json', ...headers }, signal: AbortSignal.timeout(timeoutMs) });
  if (!res.ok) {
    await res.body?.cancel();
    throw new Error(`${url} answered ${res.status} ${res.statusText}`.trim());
  }
  return res.json();
}

function dataArray(body: unknown, url: string): Record<string, unknown>[] {
  const data = (body as { data?: unknown } | null)?.data;
  if (!Array.isArray(data)) throw new Error(`${url} sent no "data" list`);
  return data.filter((x): x is Record<string, unknown> => typeof x === 'object' && x !== null && typeof (x as { id?: unknown }).id === 'string');
}

async function fetchLive(opts: ListModelsOptions, now: number): Promise<{ live: LiveData; warnings: string[] }> {
  const timeoutMs = opts.timeoutMs ?? 10_000;
  const baseURL = (opts.env.OPENROUTER_BASE_URL || DEFAULT_OPENROUTER_BASE_URL).replace(/\/+$/, '');
  const url = `${baseURL}/models`;
  const orHeaders: Record<string, string> = {};
  const key = opts.env.OPENROUTER_API_KEY;
  if (key) orHeaders.authorization = `Bearer ${key}`;
  const openrouter = dataArray(await getJSON(url, orHeaders, timeoutMs), url).map((m) => fromOpenRouter(m as unknown as OpenRouterModel));

  const warnings: string[] = [];
  const providers = await Promise.all(
    (opts.providers ?? []).map(async (src) => {
      const purl = `${src.baseURL.replace(/\/+$/, '')}/models`;
      const headers: Record<string, string> = { ...src.headers };
      if (src.apiKey) headers.authorization = `Bearer ${src.apiKey}`;
      try {
        const ids = dataArray(await getJSON(purl, headers, timeoutMs), purl).map((m) => String(m.id));
        return { provider: src.provider, ids };
      } catch (err) {
        if (!(src.local && isRefused(err))) warnings.push(`could not list ${src.provider}'s models: ${errorText(err)}`);
        return { provider: src.provider, ids: [] };
      }
    }),
  );
  return { live: { fetchedAt: new Date(now).toISOString(), openrouterBaseURL: baseURL, openrouter, providers }, warnings };
}

function isRefused(err: unknown): boolean {
  const cause = err instanceof Error ? err.cause : undefined;
  return (cause as NodeJS.ErrnoException | undefined)?.code === 'ECONNREFUSED';
}

function errorText(err: unknown): string {
  if (err instanceof Error) {
    const cause = err.cause instanceof Error ? `: ${err.cause.message}` : '';
    return `${err.message}${cause}`;
  }
  return String(err);
}

async function readCache(file: string): Promise<LiveData | undefined> {
  try {
    const data = JSON.parse(await readFile(file, 'utf8')) as LiveData;
    if (typeof data.fetchedAt !== 'string' || !Array.isArray(data.openrouter) || !Array.isArray(data.providers)) return undefined;
    return data;
  } catch {
    return undefined;
  }
}

async function writeCache(file: string, dir: string, data: LiveData): Promise<void> {
  await mkdir(dir, { recursive: true });
  const tmp = `${file}.${process.pid}.tmp`;
  await writeFile(tmp, JSON.stringify(data));
  await rename(tmp, file);
}

function hoursOld(fetchedAt: string, now: number): number {
  return Math.max(0, Math.round((now - Date.parse(fetchedAt)) / 3_600_000));
}

/**
 * The catalog, live or cached or from the snapshot, with where it came from. Never throws for
 * a failed refresh: the result says what it fell back to in `warning`.
 */
export async function listModels(options: Partial<ListModelsOptions> = {}): Promise<ListModelsResult> {
  const opts: ListModelsOptions = { ...options, env: options.env ?? process.env };
  const now = (opts.now ?? Date.now)();
  const dir = opts.cacheDir ?? defaultCacheDir(opts.env);
  const file = join(dir, 'models.json');
  const snapshot = loadSnapshot();
  const cached = await readCache(file);
  const fresh = cached !== undefined && now - Date.parse(cached.fetchedAt) < CACHE_MAX_AGE_MS;
  const mode = opts.refresh ?? false;

  let result: ListModelsResult;
  if (mode === true || (mode === 'auto' && !fresh)) {
    try {
      const { live, warnings } = await fetchLive(opts, now);
      let warning = warnings.length > 0 ? warnings.join('; ') : undefined;
      try {
        await writeCache(file, dir, live);
      } catch (err) {
        warning = [warning, `could not write the model cache ${file}: ${errorText(err)}`].filter(Boolean).join('; ');
      }
      const catalog = new Catalog(mergeLive(snapshot, live));
      result = { catalog, models: catalog.all(), source: 'live', fetchedAt: live.fetchedAt };
      if (warning) result.warning = warning;
    } catch (err) {
      const why = `refreshing the model list failed (${errorText(err)})`;
      result = fallback(snapshot, cached, now, why);
    }
  } else {
    result = fallback(snapshot, cached, now, undefined);
  }
  if (opts.install ?? true) setDefaultCatalog(result.catalog);
  return result;
}

function fallback(snapshot: CatalogData, cached: LiveData | undefined, now: number, why: string | undefined): ListModelsResult {
  if (cached) {
    const catalog = new Catalog(mergeLive(snapshot, cached));
    const age = hoursOld(cached.fetchedAt, now);
    const stale = now - Date.parse(cached.fetchedAt) >= CACHE_MAX_AGE_MS;
    const parts: string[] = [];
    if (why) parts.push(`${why}; using the cached list from ${cached.fetchedAt} (${age} h old)`);
    else if (stale) parts.push(`the cached model list is ${age} h old; run with --refresh for current prices`);
    const result: ListModelsResult = { catalog, models: catalog.all(), source: 'cache', fetchedAt: cached.fetchedAt };
    if (parts.length > 0) result.warning = parts.join('; ');
    return result;
  }
  const catalog = new Catalog(snapshot);
  const result: ListModelsResult = { catalog, models: catalog.all(), source: 'snapshot' };
  if (why) result.warning = `${why}; no cached list, using the built-in snapshot from ${snapshot.generatedAt}`;
  return result;
}
