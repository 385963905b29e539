/**
 * Priors: published figures for deployments the router has not measured yet, so the first
 * request of a fresh install already goes to the right provider.
 *
 * The source is OpenRouter's per-model endpoints listing
 * (`GET /api/v1/models/{author}/{slug}/endpoints`): per upstream provider, p50 time to first
 * token (`latency_last_30m`, seconds) and output speed (`throughput_last_30m`, tokens/s) over
 * the last 30 minutes, and uptime over 5 minutes, 30 minutes and a day. The simulator
 * publishes the same listing for its providers.
 *
 * Listings are kept with the time they were fetched, in memory and in
 * `$SWITCHBOARD_HOME/cache/priors.json`; the policy weighs a prior less the older it is. The
 * simulator's listing is fetched on demand (it is local); OpenRouter's with the catalog
 * refresh (`switchboard models --refresh`, or `refreshPriors`), never on a request's path.
 */
import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { cacheDir } from '../paths.js';
import type { ProviderRegistry } from '../providers/registry.js';
import type { Env } from '../providers/resolve.js';

/** Published figures for one deployment. */
export interface Prior {
  /** p50 output tokens per second. */
  tokensPerSecond?: number | undefined;
  /** p50 time to first token, ms. */
  ttftMs?: number | undefined;
  /** Share of requests that succeeded (0..1), over the shortest window published. */
  uptime?: number | undefined;
  /** Unix ms when the listing was fetched. */
  fetchedAt: number;
}

/** One listing: the priors of a model's deployments, by our provider name. */
export interface PriorListing {
  fetchedAt: number;
  url: string;
  providers: Record<string, Prior>;
  /**
   * The model at OpenRouter itself, unpinned: OpenRouter spreads requests over its hosts, so
   * the median of every listed host's figures (those we do not know included).
   */
  routed?: Prior | undefined;
}

interface Percentile {
  p50?: unknown;
}

interface ListedEndpoint {
  provider_name?: unknown;
  tag?: unknown;
  latency_last_30m?: Percentile | null;
  throughput_last_30m?: Percentile | null;
  uptime_last_5m?: unknown;
  uptime_last_30m?: unknown;
  uptime_last_1d?: unknown;
}

const positive = (v: unknown): number | undefined => (typeof v === 'number' && Number.isFinite(v) && v > 0 ? v : undefined);

/**
 * Read an endpoints listing (`{ data: { endpoints: [...] } }`). `providerOf` maps an
 * endpoint's `tag` (`groq`, `deepinfra/fp8`) and `provider_name` to our provider name;
 * endpoints it does not know are left out. Malformed parts are skipped, never thrown.
 */
export function parseEndpointsListing(json: unknown, fetchedAt: number, providerOf: (tag: string, providerName: string) => string | undefined): Record<string, Prior> {
  const endpoints = (json as { data?: { endpoints?: unknown } } | null)?.data?.endpoints;
  const out: Record<string, Prior> = {};
  if (!Array.isArray(endpoints)) return out;
  for (const raw of endpoints as ListedEndpoint[]) {
    if (raw === null || typeof raw !== 'object') continue;
    const tag = typeof raw.tag === 'string' ? raw.tag : '';
    const name = typeof raw.provider_name === 'string' ? raw.provider_name : '';
    const provider = providerOf(tag, name);
    if (!provider || Object.hasOwn(out, provider)) continue;
    const latency = positive(raw.latency_last_30m?.p50);
    const uptime = positive(raw.uptime_last_5m) ?? positive(raw.uptime_last_30m) ?? positive(raw.uptime_last_1d);
    const prior: Prior = { fetchedAt };
    const tps = positive(raw.throughput_last_30m?.p50);
    if (tps !== undefined) prior.tokensPerSecond = tps;
    if (latency !== undefined) prior.ttftMs = latency * 1000;
    if (uptime !== undefined) prior.uptime = Math.min(1, uptime / 100);
    if (prior.tokensPerSecond !== undefined || prior.ttftMs !== undefined || prior.uptime !== undefined) out[provider] = prior;
  }
  return out;
}

/** The median of every listed endpoint's figures: what OpenRouter's own routing among them gives, roughly. */
export function routedPrior(json: unknown, fetchedAt: number): Prior | undefined {
  const priors = Object.values(parseEndpointsListing(json, fetchedAt, (tag, name) => name || tag || undefined));
  const median = (pick: (p: Prior) => number | undefined): number | undefined => {
    const xs = priors.map(pick).filter((x): x is number => x !== undefined).sort((a, b) => a - b);
    if (xs.length === 0) return undefined;
    const mid = xs.length >> 1;
    return xs.length % 2 === 1 ? xs[mid] : ((xs[mid - 1] as number) + (xs[mid] as number)) / 2;
  };
  const out: Prior = { fetchedAt };
  const tps = median((p) => p.tokensPerSecond);
  const ttft = median((p) => p.ttftMs);
  const uptime = median((p) => p.uptime);
  if (tps !== undefined) out.tokensPerSecond = tps;
  if (ttft !== undefined) out.ttftMs = ttft;
  if (uptime !== undefined) out.uptime = uptime;
  return tps === undefined && ttft === undefined && uptime === undefined ? undefined : out;
}

/** The prior for one deployment in a listing: the host's own, or for OpenRouter unpinned the median of its hosts. */
export function priorIn(listing: PriorListing | undefined, provider: string): Prior | undefined {
  if (!listing) return undefined;
  if (Object.hasOwn(listing.providers, provider)) return listing.providers[provider];
  return provider === 'openrouter' ? listing.routed : undefined;
}

/**
 * The listing that describes a route's candidates: the model's own; for a model group
 * without one, that of the model a member reaches through OpenRouter (by its OpenRouter id),
 * which lists the other members' hosts too.
 */
export function listingFor(store: PriorStore, model: string, members: readonly { provider: string; providerModel: string }[]): PriorListing | undefined {
  const own = store.get(model);
  if (own) return own;
  for (const m of members) {
    if (m.provider !== 'openrouter' || m.providerModel === model) continue;
    const listing = store.get(m.providerModel);
    if (listing) return listing;
  }
  return undefined;
}

/** The listing's URL for an OpenRouter-style model id (`author/slug`) under an API base (`.../api/v1`). */
export function endpointsURL(apiBase: string, modelId: string): string | undefined {
  const [author, ...rest] = modelId.split('/');
  const slug = rest.join('/');
  if (!author || !slug) return undefined;
  return `${apiBase.replace(/\/+$/, '')}/models/${encodeURIComponent(author)}/${slug.split('/').map(encodeURIComponent).join('/')}/endpoints`;
}

/** Our provider for an OpenRouter endpoint: the registry provider whose `openrouterSlug` (or name) is the tag's first part. */
export function registryProviderOf(registry: ProviderRegistry): (tag: string) => string | undefined {
  const bySlug = new Map<string, string>();
  for (const c of registry.all()) {
    if (c.openrouterSlug) bySlug.set(c.openrouterSlug.toLowerCase(), c.name);
  }
  return (tag) => {
    const head = (tag.split('/')[0] ?? '').toLowerCase();
    return bySlug.get(head) ?? (registry.has(head) ? head : undefined);
  };
}

export interface PriorStoreOptions {
  /** The cache file (default `$SWITCHBOARD_HOME/cache/priors.json`); null keeps listings in memory only. */
  path?: string | null;
  env?: Env;
  now?: () => number;
  /** Milliseconds a listing fetch may take (default 1500). */
  timeoutMs?: number;
}

/**
 * Listings by model, in memory and (by default) on disk. `get` never does I/O beyond the
 * first read of the file; `fetchListing` fetches one listing and keeps it.
 */
export class PriorStore {
  readonly #listings = new Map<string, PriorListing>();
  readonly #inflight = new Map<string, Promise<PriorListing | undefined>>();
  /** Models whose last fetch failed, with when: not asked again for a while. */
  readonly #failedAt = new Map<string, number>();
  readonly #memoryOnly = new Set<string>();
  readonly #path: string | null;
  readonly #now: () => number;
  readonly #timeoutMs: number;
  #loaded = false;

  constructor(options: PriorStoreOptions = {}) {
    this.#path = options.path === undefined ? join(cacheDir(options.env ?? process.env), 'priors.json') : options.path;
    this.#now = options.now ?? Date.now;
    this.#timeoutMs = options.timeoutMs ?? 1500;
  }

  #load(): void {
    if (this.#loaded || this.#path === null) return;
    this.#loaded = true;
    try {
      const json = JSON.parse(readFileSync(this.#path, 'utf8')) as Record<string, PriorListing>;
      for (const [model, listing] of Object.entries(json)) {
        if (listing && typeof listing.fetchedAt === 'number' && listing.providers && typeof listing.providers === 'object') this.#listings.set(model, listing);
      }
    } catch {
      // No cache yet, or an unreadable one: priors come with the next refresh.
    }
  }

  #save(): void {
    if (this.#path === null) return;
    try {
      mkdirSync(join(this.#path, '..'), { recursive: true });
      const tmp = `${this.#path}.${process.pid}.tmp`;
      writeFileSync(tmp, JSON.stringify(Object.fromEntries([...this.#listings].filter(([model]) => !this.#memoryOnly.has(model)))));
      renameSync(tmp, this.#path);
    } catch {
      // A read-only home keeps priors in memory for this run.
    }
  }

  /** The listing kept for a model, whatever its age (the policy discounts old ones). */
  get(model: string): PriorListing | undefined {
    this.#load();
    return this.#listings.get(model);
  }

  /** Keep a listing; `persist: false` keeps it in memory only (the simulator's, whose URL changes per run). */
  set(model: string, listing: PriorListing, persist = true): void {
    this.#load();
    this.#listings.set(model, listing);
    if (persist) this.#save();
    else this.#memoryOnly.add(model);
  }

  /** Models with a listing (to refresh them). */
  models(): string[] {
    this.#load();
    return [...this.#listings.keys()];
  }

  /**
   * Fetch `url` and keep what it lists under `model`. Concurrent calls for one model share one
   * fetch. Resolves undefined when the listing cannot be had (a 404, a timeout, no network);
   * after a failure the model is not asked for again for 10 minutes.
   */
  fetchListing(model: string, url: string, providerOf: (tag: string, providerName: string) => string | undefined, persist = true): Promise<PriorListing | undefined> {
    const running = this.#inflight.get(model);
    if (running) return running;
    const failed = this.#failedAt.get(model);
    if (failed !== undefined && this.#now() - failed < 10 * 60_000) return Promise.resolve(undefined);
    const task = (async () => {
      try {
        const res = await fetch(url, { headers: { accept: 'application/json' }, signal: AbortSignal.timeout(this.#timeoutMs) });
        if (!res.ok) {
          await res.body?.cancel();
          this.#failedAt.set(model, this.#now());
          return undefined;
        }
        const fetchedAt = this.#now();
        const json: unknown = await res.json();
        const listing: PriorListing = { fetchedAt, url, providers: parseEndpointsListing(json, fetchedAt, providerOf), routed: routedPrior(json, fetchedAt) };
        this.set(model, listing, persist);
        return listing;
      } catch {
        this.#failedAt.set(model, this.#now());
        return undefined;
      } finally {
        this.#inflight.delete(model);
      }
    })();
    this.#inflight.set(model, task);
    return task;
  }
}

/** How old a simulator listing may get before it is fetched again. */
const SIM_LISTING_MAX_AGE_MS = 60 * 60_000;

/**
 * Make sure a `sim/...` model has a listing: fetched from the simulator (it is local, so on
 * demand) when missing or older than an hour. Other models' listings come from `refreshPriors`.
 */
export async function ensureSimulatorPriors(store: PriorStore, model: string, env: Env, now = Date.now()): Promise<void> {
  if (!model.startsWith('sim/')) return;
  const have = store.get(model);
  if (have && now - have.fetchedAt < SIM_LISTING_MAX_AGE_MS) return;
  const { simulatorOrigin } = await import('../sim/embedded.js');
  const origin = await simulatorOrigin(env);
  await store.fetchListing(model, `${origin}/api/v1/models/sim/${encodeURIComponent(model.slice(4))}/endpoints`, (tag) => tag || undefined, false);
}

/**
 * Fetch OpenRouter's endpoints listings for `models` (OpenRouter ids, `author/slug`), a few at
 * a time, into `store`. Run with the catalog refresh; returns how many listings were fetched.
 */
export async function refreshPriors(store: PriorStore, models: readonly string[], options: { registry: ProviderRegistry; apiBase: string; concurrency?: number }): Promise<number> {
  const providerOf = registryProviderOf(options.registry);
  const queue = [...new Set(models)];
  let fetched = 0;
  const worker = async (): Promise<void> => {
    for (let model = queue.shift(); model !== undefined; model = queue.shift()) {
      const url = endpointsURL(options.apiBase, model);
      if (url && (await store.fetchListing(model, url, providerOf))) fetched++;
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, options.concurrency ?? 4) }, worker));
  return fetched;
}
