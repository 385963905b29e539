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
 */
import type { IncomingHttpHeaders } from 'node:http';
import { cacheKey, isCacheable } from '../cache/response-cache.js';
import { SQLiteCacheStore } from '../cache/sqlite-store.js';
import { RedisCacheStore } from '../cache/redis-store.js';
import { MemoryCacheStore, type CacheStore } from '../cache/store.js';
import { dollarsToFemto, femtoToDollars } from '../money.js';
import type { Endpoint, ServerRequest } from '../protocols/protocol.js';
import type { Deployment } from '../providers/resolve.js';
import type { ProviderRegistry } from '../providers/registry.js';
import type { RouteItem } from '../routing/router.js';
import { replyCostFemto } from '../turn.js';
import type { ProtocolEvent, TokenUsage } from '../types.js';
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

/** Stands in for the endpoint of a replayed attempt; the proxy never sends anything to it. */
const REPLAY_ENDPOINT: Endpoint = { provider: 'cache', protocol: 'openai', baseURL: 'cache:', headers: {}, compat: {} };

/** `Cache-Control` directives the gateway honours, as the client sent them. */
function directives(headers: IncomingHttpHeaders): { noCache: boolean; noStore: boolean } {
  const value = headers['cache-control'];
  const text = (Array.isArray(value) ? value.join(',') : (value ?? '')).toLowerCase();
  return { noCache: /(^|[\s,])no-cache($|[\s,=])/.test(text), noStore: /(^|[\s,])no-store($|[\s,])/.test(text) };
}

export class GatewayResponseCache {
  #store: Promise<CacheStore> | undefined;
  #given: boolean;

  /** `store`: one to use whatever the config says; without it the config's `store` is opened on first use. */
  constructor(
    store: CacheStore | undefined,
    private readonly warn: (message: string) => void,
  ) {
    this.#given = store !== undefined;
    if (store) this.#store = Promise.resolve(store);
  }

  /** The store in use: memory, SQLite (`$SWITCHBOARD_HOME/response-cache.db`) or the configured Redis, opened once. */
  #storeFor(settings: GatewayCacheConfig, config: GatewayConfig): Promise<CacheStore> {
    if (this.#store) return this.#store;
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

  /** Close a store this cache opened (a Redis connection, a SQLite file). */
  async close(): Promise<void> {
    if (this.#given || !this.#store) return;
    const store = (await this.#store.catch(() => undefined)) as { close?: () => unknown } | undefined;
    await store?.close?.();
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
      const value = await this.#guard(async () => (await this.#storeFor(settings, input.config)).get(key, Date.now()), undefined);
      const reply = value === undefined ? undefined : parseReply(value);
      if (reply) {
        const saved = replyCost(reply, input.registry);
        const headers: Record<string, string> = { 'x-switchboard-cache': 'hit' };
        if (saved !== null) headers['x-switchboard-saved-cost'] = String(femtoToDollars(saved));
        return { state: 'hit', headers, savedFemto: saved, items: () => replay(reply) };
      }
    }
    const store = (reply: StoredReply, costFemto: bigint | null): Promise<void> => {
      const value = JSON.stringify(reply);
      if (value.length > settings.maxEntryBytes) return Promise.resolve();
      const entry = { value, namespace: 'gateway', costFemto, expiresAt: ttlSeconds === 0 ? null : Date.now() + ttlSeconds * 1000 };
      return this.#guard(async () => (await this.#storeFor(settings, input.config)).set(key, entry), undefined);
    };
    return { state: 'miss', headers: { 'x-switchboard-cache': 'miss' }, savedFemto: null, items: (live) => record(live(), input.registry, store) };
  }

  /** A store that fails (a lost connection, a locked file) costs the cache, never the request. */
  async #guard<T>(op: () => T | Promise<T>, fallback: T): Promise<T> {
    try {
      return await op();
    } catch (err) {
      this.warn(`the response cache failed and is skipped for this request: ${err instanceof Error ? err.message : String(err)}`);
      return fallback;
    }
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

/** The reply's cost as the proxy prices it: the provider's reported cost, else the catalog's. */
function replyCost(reply: StoredReply, registry: ProviderRegistry): bigint | null {
  let usage: TokenUsage | undefined;
  let reported: number | undefined;
  for (const ev of reply.events) {
    if (ev.type !== 'usage') continue;
    usage = ev.usage;
    if (ev.cost !== undefined) reported = ev.cost;
  }
  return usage ? replyCostFemto({ registry }, reply.deployment, usage, reported) : reported !== undefined ? dollarsToFemto(reported) : null;
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

/** The stored reply as one attempt, its usage at cost 0 (nothing was spent). */
async function* replay(reply: StoredReply): AsyncGenerator<RouteItem> {
  yield { kind: 'attempt', deployment: reply.deployment, endpoint: REPLAY_ENDPOINT };
  yield { kind: 'events', events: reply.events.map((ev) => (ev.type === 'usage' ? { ...ev, cost: 0 } : ev)) };
}

function parseReply(value: string): StoredReply | undefined {
  try {
    const reply = JSON.parse(value) as StoredReply;
    return reply.v === 1 && Array.isArray(reply.events) && typeof reply.deployment?.provider === 'string' ? reply : undefined;
  } catch {
    return undefined;
  }
}
