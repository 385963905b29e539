/**
 * Where cached replies live. One interface, any backend: every method may answer now or
 * with a promise, so an in-memory map, an embedded SQLite file and a Redis server (redis-store.ts)
 * shared by several gateways all fit. A store keeps opaque strings; it never parses them.
 *
 * The in-memory store is an LRU bounded in bytes: a read moves an entry to the young end,
 * a write past the bound evicts from the old end until the total fits again.
 */

export type MaybePromise<T> = T | Promise<T>;

export interface CacheEntry {
  /** The stored reply (JSON, see response-cache.ts). */
  value: string;
  /** Entries of one namespace can be cleared together. */
  namespace: string;
  /** What the reply cost when it was made, integer femto-dollars; null when no price was known. */
  costFemto: bigint | null;
  /** Milliseconds since the epoch after which the entry is gone; null = no expiry. */
  expiresAt: number | null;
}

export interface CacheStats {
  entries: number;
  /** Bytes held: keys plus values, UTF-8. */
  bytes: number;
  /** The store's bound in bytes. */
  maxBytes: number;
  hits: number;
  misses: number;
  /** The sum of hit entries' costs: what the cache saved, integer femto-dollars. */
  savedFemto: bigint;
}

export interface CacheStore {
  /** The live entry's value, or undefined (a miss); counts the hit or miss. */
  get(key: string, now: number): MaybePromise<string | undefined>;
  set(key: string, entry: CacheEntry): MaybePromise<void>;
  /** Remove every entry (of one namespace when given); returns how many went. */
  clear(namespace?: string): MaybePromise<number>;
  stats(): MaybePromise<CacheStats>;
}

/** Default bound of the in-memory store: 64 MiB. */
export const DEFAULT_MEMORY_BYTES = 64 * 1024 * 1024;

interface MemoryEntry extends CacheEntry {
  bytes: number;
}

export class MemoryCacheStore implements CacheStore {
  readonly maxBytes: number;
  readonly #entries = new Map<string, MemoryEntry>();
  #bytes = 0;
  #hits = 0;
  #misses = 0;
  #savedFemto = 0n;

  constructor(options: { maxBytes?: number } = {}) {
    this.maxBytes = options.maxBytes ?? DEFAULT_MEMORY_BYTES;
  }

  get(key: string, now: number): string | undefined {
    const entry = this.#entries.get(key);
    if (entry && entry.expiresAt !== null && entry.expiresAt <= now) this.#remove(key, entry);
    else if (entry) {
      // Map order is insertion order: re-inserting makes this the most recently used.
      this.#entries.delete(key);
      this.#entries.set(key, entry);
      this.#hits++;
      if (entry.costFemto !== null) this.#savedFemto += entry.costFemto;
      return entry.value;
    }
    this.#misses++;
    return undefined;
  }

  set(key: string, entry: CacheEntry): void {
    const bytes = Buffer.byteLength(key) + Buffer.byteLength(entry.value);
    const old = this.#entries.get(key);
    if (old) this.#remove(key, old);
    if (bytes > this.maxBytes) return; // larger than the whole cache: not kept
    // Spelled out rather than spread: a spread with a member added takes V8's slow path (about 2 µs).
    this.#entries.set(key, { value: entry.value, namespace: entry.namespace, costFemto: entry.costFemto, expiresAt: entry.expiresAt, bytes });
    this.#bytes += bytes;
    if (this.#bytes <= this.maxBytes) return;
    for (const [oldest, value] of this.#entries) {
      if (this.#bytes <= this.maxBytes) break;
      this.#remove(oldest, value);
    }
  }

  clear(namespace?: string): number {
    let removed = 0;
    for (const [key, entry] of this.#entries) {
      if (namespace !== undefined && entry.namespace !== namespace) continue;
      this.#remove(key, entry);
      removed++;
    }
    return removed;
  }

  stats(): CacheStats {
    return { entries: this.#entries.size, bytes: this.#bytes, maxBytes: this.maxBytes, hits: this.#hits, misses: this.#misses, savedFemto: this.#savedFemto };
  }

  /** Whether `key` is held (tests and eviction checks; does not count as a read). */
  has(key: string): boolean {
    return this.#entries.has(key);
  }

  #remove(key: string, entry: MemoryEntry): void {
    this.#entries.delete(key);
    this.#bytes -= entry.bytes;
  }
}
