/**
 * Cached replies in Redis, shared by every gateway instance that points at it: a reply cached
 * through one instance is a hit on the others.
 *
 * Key layout (P = the prefix, `{switchboard}` by default, with the hash tag the shared state
 * uses, so a Redis Cluster keeps an install's keys together; give the cache a prefix of its own,
 * `{switchboard-cache}`, to put it on another slot):
 * - `P:c:<key>`  one string per entry: the cost in femto-dollars (empty when unknown), a
 *                newline, the stored reply. Every entry has an expiry (its TTL, or `maxTtlMs`
 *                for one that asked for none), so Redis's `volatile-lru` / `allkeys-lru`
 *                eviction under `maxmemory` removes single entries, never an index.
 * - `P:cs`       hash of counters: hits, misses, saved (whole dollars + femto-dollar rest).
 *
 * The size bound: an entry above `maxEntryBytes` is not written, and the total is Redis's
 * `maxmemory` (the store keeps no byte count of its own, which evictions would make wrong).
 * A read is one GET; the hit and miss counters go out after it without being waited for.
 */
import { createRedisClient, type RedisClient } from '../store/redis-scripts.js';
import type { CacheEntry, CacheStats, CacheStore } from './store.js';

export interface RedisCacheOptions {
  /** `redis://host:port/db` (or `rediss://`). */
  url: string;
  /** Key prefix with its hash tag (default `{switchboard}`). */
  prefix?: string;
  /** Entries larger than this (key plus value, bytes) are not stored (default 1 MiB). */
  maxEntryBytes?: number;
  /** Expiry of an entry that asked for none (default 7 days): every key expires, so LRU eviction can take it. */
  maxTtlMs?: number;
  /** How long a command may wait before it fails (default 1000 ms): a down Redis skips the cache fast. */
  commandTimeoutMs?: number;
}

const FEMTO_PER_DOLLAR = 1_000_000_000_000_000n;

/** KEYS: the counters. ARGV: whole dollars, femto rest. Keeps the rest below a dollar (Lua numbers are doubles, exact to 2^53). */
const COUNT_HIT = `
redis.call('HINCRBY', KEYS[1], 'hits', 1)
redis.call('HINCRBY', KEYS[1], 'saved_dollars', ARGV[1])
local rest = redis.call('HINCRBY', KEYS[1], 'saved_femto', ARGV[2])
if rest >= 1000000000000000 then
  redis.call('HINCRBY', KEYS[1], 'saved_femto', -1000000000000000)
  redis.call('HINCRBY', KEYS[1], 'saved_dollars', 1)
end
return 1`;

/** `*`, `?`, `[` and `\` match literally in a SCAN pattern once escaped. */
function globLiteral(text: string): string {
  return text.replace(/[*?[\]\\]/g, '\\$&');
}

export class RedisCacheStore implements CacheStore {
  readonly client: RedisClient;
  readonly maxEntryBytes: number;
  readonly #prefix: string;
  readonly #maxTtlMs: number;

  private constructor(options: RedisCacheOptions) {
    this.#prefix = options.prefix ?? '{switchboard}';
    this.maxEntryBytes = options.maxEntryBytes ?? 1024 * 1024;
    this.#maxTtlMs = options.maxTtlMs ?? 7 * 86_400_000;
    // A down Redis fails the command fast: the cache then skips itself for that request.
    this.client = createRedisClient(options.url, options.commandTimeoutMs ?? 1000);
  }

  static async open(options: RedisCacheOptions): Promise<RedisCacheStore> {
    const store = new RedisCacheStore(options);
    await store.client.connect();
    return store;
  }

  #entryKey(key: string): string {
    return `${this.#prefix}:c:${key}`;
  }

  /** Expiry is Redis's own (the entry's PX), so `now` is not needed here. */
  async get(key: string): Promise<string | undefined> {
    const raw = await this.client.get(this.#entryKey(key));
    const counters = `${this.#prefix}:cs`;
    if (raw === null) {
      this.client.hIncrBy(counters, 'misses', 1).catch(() => {});
      return undefined;
    }
    const newline = raw.indexOf('\n');
    const cost = raw.slice(0, newline) === '' ? 0n : BigInt(raw.slice(0, newline));
    this.client.sendCommand(['EVAL', COUNT_HIT, '1', counters, String(cost / FEMTO_PER_DOLLAR), String(cost % FEMTO_PER_DOLLAR)]).catch(() => {});
    return raw.slice(newline + 1);
  }

  async set(key: string, entry: CacheEntry): Promise<void> {
    const value = `${entry.costFemto === null ? '' : String(entry.costFemto)}\n${entry.value}`;
    if (Buffer.byteLength(key) + Buffer.byteLength(value) > this.maxEntryBytes) return;
    const ttl = entry.expiresAt === null ? this.#maxTtlMs : Math.min(this.#maxTtlMs, entry.expiresAt - Date.now());
    if (ttl <= 0) return;
    await this.client.set(this.#entryKey(key), value, { expiration: { type: 'PX', value: Math.ceil(ttl) } });
  }

  /** Keys of every entry (of one namespace: keys begin with `namespace:`), a batch at a time. */
  async *#keys(namespace?: string): AsyncGenerator<string[]> {
    const match = `${globLiteral(this.#entryKey(namespace === undefined ? '' : `${namespace}:`))}*`;
    for await (const batch of this.client.scanIterator({ MATCH: match, COUNT: 500 })) if (batch.length > 0) yield batch;
  }

  async clear(namespace?: string): Promise<number> {
    let removed = 0;
    for await (const keys of this.#keys(namespace)) removed += await this.client.unlink(keys);
    return removed;
  }

  async stats(): Promise<CacheStats> {
    let entries = 0;
    let bytes = 0;
    for await (const keys of this.#keys()) {
      entries += keys.length;
      const sizes = await Promise.all(keys.map((k) => this.client.strLen(k)));
      for (let i = 0; i < keys.length; i++) bytes += (sizes[i] ?? 0) + Buffer.byteLength(keys[i] as string) - this.#prefix.length - 3;
    }
    const c = await this.client.hGetAll(`${this.#prefix}:cs`);
    const maxmemory = await this.client.configGet('maxmemory').catch(() => ({}) as Record<string, string>);
    return {
      entries,
      bytes,
      maxBytes: Number(maxmemory.maxmemory ?? 0),
      hits: Number(c.hits ?? 0),
      misses: Number(c.misses ?? 0),
      savedFemto: BigInt(c.saved_dollars ?? 0) * FEMTO_PER_DOLLAR + BigInt(c.saved_femto ?? 0),
    };
  }

  async close(): Promise<void> {
    await this.client.close();
  }
}
