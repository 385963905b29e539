/**
 * The gateway's response cache: an identical model request is answered from the cache store
 * instead of upstream, in the caller's own protocol, streamed or not, at cost 0.
 *
 * It works on the router's items (the canonical events), below the server halves: a miss
 * records the events of the attempt that answered and stores them once the router finished
 * cleanly; a hit hands the proxy the stored events as if one attempt had produced them, so
 * the caller's server half writes exactly the shapes a live reply has (text, tool calls,
 * usage, finish). An error, a reply that ended in an error, a stream cut by upstream or left by
 * the client is never stored: the recorder reaches its end only when the router did.
 *
 * Which requests: a rule for the caller's key wins over one for the model name (alias, group
 * or model string), which wins over `enabled`. The client's `Cache-Control: no-cache` skips the
 * read (the fresh reply is stored), `no-store` skips both; `temperature > 0` is cached only
 * when the config says `any_temperature`. Every request the cache covers gets
 * `x-switchboard-cache: hit | miss | bypass`; a request it does not cover gets no header.
 *
 * A hit is the gateway's cheapest answer, so its work is done once per entry, not per hit: the
 * key is one SHA-256 call (no hash state kept, see cache/key.ts), and the stored reply is
 * parsed, priced and turned into replay events the first time it is read, then kept beside its
 * key (`ReadyReplies`, bounded in bytes) for as long as the store returns the same value.
 */
import type { IncomingHttpHeaders } from 'node:http';
import { cacheKey, isCacheable } from '../cache/response-cache.js';
import { SQLiteCacheStore } from '../cache/sqlite-store.js';
import { RedisCacheStore } from '../cache/redis-store.js';
import { MemoryCacheStore, type CacheStore } from '../cache/store.js';
import { femtoToDollars } from '../money.js';
import { switchboardHome } from '../paths.js';
import type { Endpoint, ServerRequest } from '../protocols/protocol.js';
import type { Deployment } from '../providers/resolve.js';
import type { ProviderRegistry } from '../providers/registry.js';
import type { RouteItem } from '../routing/router.js';
import { replyCostFemto } from '../turn.js';
import type { ProtocolEvent } from '../types.js';
import type { Principal } from './admission.js';
import type { GatewayCacheConfig, GatewayConfig } from './config.js';

export type CacheState = 'hit' | 'miss' | 'bypass';

/** One request's dealings with the cache, from lookup to store. */
export interface CacheLookup {
  state: CacheState;
  /** `x-switchboard-cache`, and on a hit `x-switchboard-saved-cost`. */
  headers: Record<string, string>;
  /** On a hit: what the reply cost when it was made, femto-dollars (null when it had no price). */
  savedFemto: bigint | null;
  /** The router's items to serve: the stored reply on a hit, else the live ones (recorded). */
  items(live: () => AsyncIterable<RouteItem>): AsyncIterable<RouteItem>;
}

export interface LookupInput {
  config: GatewayConfig;
  principal: Principal;
  parsed: ServerRequest;
  headers: IncomingHttpHeaders;
  registry: ProviderRegistry;
}

/** A stored reply: the answering deployment (names only, no endpoint, no key) and its events. */
interface StoredReply {
  v: 1;
  deployment: Deployment;
  events: ProtocolEvent[];
}

/** A stored reply as a hit serves it: made once per entry value (and registry, which prices it). */
interface ReadyReply {
  value: string;
  registry: ProviderRegistry;
  headers: Readonly<Record<string, string>>;
  savedFemto: bigint | null;
  items: readonly RouteItem[];
}

/** Bytes of stored values whose ready replies are kept (their parsed form is about as large again). */
const READY_BYTES = 8 * 1024 * 1024;

/** Ready replies by cache key, the least recently served dropped first past READY_BYTES. */
class ReadyReplies {
  readonly #byKey = new Map<string, ReadyReply>();
  #bytes = 0;

  /** The ready reply for `key`, if it was made from this very value with this registry. */
  get(key: string, value: string, registry: ProviderRegistry): ReadyReply | undefined {
    const ready = this.#byKey.get(key);
    if (!ready || ready.value !== value || ready.registry !== registry) return undefined;
    this.#byKey.delete(key);
    this.#byKey.set(key, ready);
    return ready;
  }

  set(key: string, ready: ReadyReply): void {
    const old = this.#byKey.get(key);
    if (old) {
      this.#byKey.delete(key);
      this.#bytes -= old.value.length;
    }
    if (ready.value.length > READY_BYTES) return;
    this.#byKey.set(key, ready);
    this.#bytes += ready.value.length;
    for (const [oldest, entry] of this.#byKey) {
      if (this.#bytes <= READY_BYTES) break;
      this.#byKey.delete(oldest);
      this.#bytes -= entry.value.length;
    }
  }
}

/** Stands in for the endpoint of a replayed attempt; the proxy never sends anything to it. */
const REPLAY_ENDPOINT: Endpoint = { provider: 'cache', protocol: 'openai', baseURL: 'cache:', headers: {}, compat: {} };

/** `Cache-Control` directives the gateway honours, as the client sent them. */
function directives(headers: IncomingHttpHeaders): { noCache: boolean; noStore: boolean } {
  const value = headers['cache-control'];
  const text = (Array.isArray(value) ? value.join(',') : (value ?? '')).toLowerCase();
  return { noCache: /(^|[\s,])no-cache($|[\s,=])/.test(text), noStore: /(^|[\s,])no-store($|[\s,])/.test(text) };
}

/** A store's kind, as a reload's message names it (never its URL: a Redis URL may hold a password). */
const STORE_NAMES = { memory: 'memory', sqlite: 'SQLite', redis: 'Redis' } as const;

/**
 * What the store a configuration asks for is made of: two configurations with the same one share
 * the store (its entries outlive the reload). Internal only; it holds the Redis URL.
 */
function storeIdentity(config: GatewayConfig): string | undefined {
  const settings = config.responseCache;
  if (!settings) return undefined;
  if (settings.store === 'redis') return `redis ${config.virtualKeys.redisUrl ?? ''} ${settings.maxEntryBytes}`;
  if (settings.store === 'sqlite') return `sqlite ${switchboardHome(config.env)} ${settings.maxBytes ?? ''}`;
  return `memory ${settings.maxBytes ?? ''}`;
}

async function closeStore(store: Promise<CacheStore>): Promise<void> {
  const open = (await store.catch(() => undefined)) as { close?: () => unknown } | undefined;
  await open?.close?.();
}

export class GatewayResponseCache {
  #store: Promise<CacheStore> | undefined;
  #given: boolean;
  readonly #ready = new ReadyReplies();
  /** The store once it is open (a Redis store only once it connected). */
  #open: CacheStore | undefined;
  /** The configuration the store is chosen by: the latest one configured (a reload's). */
  #config: GatewayConfig | undefined;
  #identity: string | undefined;

  /** `store`: one to use whatever the config says; without it the config's `store` is opened on first use. */
  constructor(
    config: GatewayConfig,
    store: CacheStore | undefined,
    private readonly warn: (message: string) => void,
  ) {
    this.#given = store !== undefined;
    if (store) this.#store = Promise.resolve(store);
    this.configure(config);
  }

  /**
   * Take a configuration (at start and on every reload). A reload that asks for another store
   * (kind, Redis URL, bound) opens it on first use and closes the old one once requests in flight
   * have had the drain timeout to finish with it; one that keeps the store keeps its entries.
   */
  configure(config: GatewayConfig): void {
    const identity = storeIdentity(config);
    const previous = this.#config;
    this.#config = config;
    if (this.#given || identity === this.#identity) return;
    const old = this.#store;
    this.#identity = identity;
    this.#store = undefined;
    this.#open = undefined;
    if (!old || !previous) return;
    const was = previous.responseCache ? STORE_NAMES[previous.responseCache.store] : 'no';
    const now = config.responseCache ? `the ${STORE_NAMES[config.responseCache.store]} store` : 'none (the cache is off)';
    this.warn(`response cache: the new configuration changes its store (from the ${was} store to ${now}); entries in the old store are not carried over.`);
    setTimeout(() => void closeStore(old).catch((err: unknown) => this.#failed(err)), previous.limits.drainTimeoutMs).unref();
  }

  /**
   * The store in use: memory, SQLite (`$SWITCHBOARD_HOME/response-cache.db`) or the configured
   * Redis, opened once per configured store. None when a reload turned the cache off after the
   * request began: it then reads and writes nothing.
   */
  #storeFor(): Promise<CacheStore> | undefined {
    if (this.#store) return this.#store;
    const config = this.#config;
    const settings = config?.responseCache;
    if (!config || !settings) return undefined;
    const maxBytes = settings.maxBytes === undefined ? {} : { maxBytes: settings.maxBytes };
    const redisUrl = config.virtualKeys.redisUrl;
    if (settings.store === 'redis' && redisUrl !== undefined) {
      const opening = RedisCacheStore.open({ url: redisUrl, maxEntryBytes: settings.maxEntryBytes });
      // A Redis that cannot be reached now is tried again by the next request.
      opening.catch(() => {
        if (this.#store === opening) this.#store = undefined;
      });
      this.#store = opening;
    } else {
      this.#store = Promise.resolve(settings.store === 'sqlite' ? new SQLiteCacheStore({ env: config.env, ...maxBytes }) : new MemoryCacheStore(maxBytes));
    }
    return this.#store;
  }

  /** The stored value under `key`: read at once from a store already open (memory and SQLite answer without a promise). */
  async #read(key: string): Promise<string | undefined> {
    try {
      let store = this.#open;
      if (!store) {
        const opening = this.#storeFor();
        if (!opening) return undefined;
        store = await opening;
        // Kept for the next reads unless a reload replaced the store meanwhile.
        if (this.#store === opening) this.#open = store;
      }
      const value = store.get(key, Date.now());
      return typeof value === 'string' || value === undefined ? value : await value;
    } catch (err) {
      this.#failed(err);
      return undefined;
    }
  }

  /** Close a store this cache opened (a Redis connection, a SQLite file). */
  async close(): Promise<void> {
    if (this.#given || !this.#store) return;
    await closeStore(this.#store);
  }

  /** Decide and look up; undefined when the cache does not cover this request (no header then). */
  async lookup(input: LookupInput): Promise<CacheLookup | undefined> {
    const settings = input.config.responseCache;
    if (!settings) return undefined;
    const { principal, parsed } = input;
    const rule = settings.keys.get(principal.keyId ?? '') ?? settings.models.get(parsed.model) ?? (settings.enabled ? {} : false);
    if (rule === false) return undefined;
    const ttlSeconds = rule.ttlSeconds ?? settings.ttlSeconds;
    const anyTemperature = rule.anyTemperature ?? settings.anyTemperature;
    const { noCache, noStore } = directives(input.headers);
    const params = parsed.request.params;
    if (noStore || parsed.previousResponseId !== undefined || (parsed.choices ?? 1) > 1 || !isCacheable(params, { anyTemperature })) {
      return { state: 'bypass', headers: { 'x-switchboard-cache': 'bypass' }, savedFemto: null, items: (live) => live() };
    }
    // The model as configured: an alias by what it points at, a group or model string by its name.
    const model = input.config.aliases.get(parsed.model) ?? parsed.model;
    const key = cacheKey(model, parsed.request.messages, { params }, namespaceOf(settings, principal));
    if (!noCache) {
      const value = await this.#read(key);
      const ready = value === undefined ? undefined : (this.#ready.get(key, value, input.registry) ?? this.#prepare(key, value, input.registry));
      if (ready) return { state: 'hit', headers: ready.headers, savedFemto: ready.savedFemto, items: () => replay(ready.items) };
    }
    const store = (reply: StoredReply, costFemto: bigint | null): Promise<void> => {
      const value = JSON.stringify(reply);
      if (value.length > settings.maxEntryBytes) return Promise.resolve();
      const entry = { value, namespace: 'gateway', costFemto, expiresAt: ttlSeconds === 0 ? null : Date.now() + ttlSeconds * 1000 };
      return this.#guard(async () => (await this.#storeFor())?.set(key, entry), undefined);
    };
    return { state: 'miss', headers: { 'x-switchboard-cache': 'miss' }, savedFemto: null, items: (live) => record(live(), input.registry, store) };
  }

  /** Parse, price and ready a stored value for hits; undefined when it is not a reply this gateway wrote. */
  #prepare(key: string, value: string, registry: ProviderRegistry): ReadyReply | undefined {
    const reply = parseReply(value);
    if (!reply) return undefined;
    const savedFemto = replyCost(reply, registry);
    const headers: Record<string, string> = { 'x-switchboard-cache': 'hit' };
    if (savedFemto !== null) headers['x-switchboard-saved-cost'] = String(femtoToDollars(savedFemto));
    // Its usage at cost 0: nothing was spent. Shared by every hit on the entry, so frozen.
    const events = reply.events.map((ev) => Object.freeze(ev.type === 'usage' ? { ...ev, cost: 0 } : ev));
    const items: RouteItem[] = [
      { kind: 'attempt', deployment: reply.deployment, endpoint: REPLAY_ENDPOINT },
      { kind: 'events', events: Object.freeze(events) as ProtocolEvent[] },
    ];
    const ready: ReadyReply = { value, registry, headers: Object.freeze(headers), savedFemto, items: Object.freeze(items) };
    this.#ready.set(key, ready);
    return ready;
  }

  /** A store that fails (a lost connection, a locked file) costs the cache, never the request. */
  async #guard<T>(op: () => T | Promise<T>, fallback: T): Promise<T> {
    try {
      return await op();
    } catch (err) {
      this.#failed(err);
      return fallback;
    }
  }

  #failed(err: unknown): void {
    this.warn(`the response cache failed and is skipped for this request: ${err instanceof Error ? err.message : String(err)}`);
  }
}

/**
 * Entries are shared by one key, one team (keys without a team keep their own) or everyone.
 * Every key begins `gateway:`, the entries' namespace (stores clear by it).
 */
function namespaceOf(settings: GatewayCacheConfig, principal: Principal): string {
  if (settings.scope === 'gateway') return 'gateway:all';
  const id = settings.scope === 'team' && principal.teamId !== undefined ? `team:${principal.teamId}` : `key:${principal.keyId ?? principal.kind}`;
  return `gateway:${id}`;
}

/** The reply's cost as the proxy prices it (replyCostFemto): its usage events' reported cost, else the catalog's price. */
function replyCost(reply: StoredReply, registry: ProviderRegistry): bigint | null {
  const usage = reply.events.findLast((ev) => ev.type === 'usage');
  const reported = reply.events.findLast((ev) => ev.type === 'usage' && ev.cost !== undefined);
  return replyCostFemto({ registry }, reply.deployment, usage?.type === 'usage' ? usage.usage : undefined, reported?.type === 'usage' ? reported.cost : undefined);
}

/** Pass the live items on, keep the answering attempt's events, store them when the router is done. */
async function* record(
  live: AsyncIterable<RouteItem>,
  registry: ProviderRegistry,
  store: (reply: StoredReply, costFemto: bigint | null) => Promise<void>,
): AsyncGenerator<RouteItem> {
  let deployment: Deployment | undefined;
  let events: ProtocolEvent[] = [];
  for await (const item of live) {
    if (item.kind === 'attempt') {
      deployment = item.deployment;
      events = [];
    } else for (const ev of item.events) events.push(ev.type === 'usage' && ev.raw !== undefined ? { ...ev, raw: undefined } : ev);
    yield item;
  }
  // Here only when the router finished: no error, no cut stream, no client that left.
  if (!deployment || events.some((ev) => ev.type === 'finish' && ev.reason === 'error')) return;
  const { model, provider, providerModel } = deployment;
  const reply: StoredReply = { v: 1, deployment: { model, provider, providerModel }, events };
  // Written before the reply ends: a client that asks again after reading it finds the entry.
  await store(reply, replyCost(reply, registry));
}

/** A ready reply's items: one attempt and its events. */
async function* replay(items: readonly RouteItem[]): AsyncGenerator<RouteItem> {
  yield* items;
}

function parseReply(value: string): StoredReply | undefined {
  try {
    const reply = JSON.parse(value) as StoredReply;
    return reply.v === 1 && Array.isArray(reply.events) && typeof reply.deployment?.provider === 'string' ? reply : undefined;
  } catch {
    return undefined;
  }
}
