/**
 * Cached replies in an embedded SQLite file (`$SWITCHBOARD_HOME/response-cache.db`), for the
 * command line and a single gateway: replies survive restarts and several processes on one
 * machine share them. Bounded in bytes like the memory store: past the bound, the least
 * recently used entries go. Hit and miss counts and the saved cost live in the same file,
 * for `switchboard cache stats`.
 *
 * A lookup only reads: the counts, the saved cost and the entries' last use are gathered in
 * memory and written in one transaction on the next turn of the event loop (and before
 * `stats`, `clear` and `close`). Writing them at each lookup made a miss cost a write
 * transaction, four times the indexed read it is.
 */
import { mkdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import type Database from 'better-sqlite3';
import { switchboardHome } from '../paths.js';
import { useWAL } from '../store/sqlite-wal.js';
import type { CacheEntry, CacheStats, CacheStore } from './store.js';

/** Default bound of the file: 256 MiB. */
export const DEFAULT_SQLITE_BYTES = 256 * 1024 * 1024;

export interface SQLiteCacheOptions {
  /** File path (default `$SWITCHBOARD_HOME/response-cache.db`). */
  path?: string;
  env?: Record<string, string | undefined>;
  maxBytes?: number;
}

const SCHEMA = `
CREATE TABLE IF NOT EXISTS entries (
  key TEXT PRIMARY KEY,
  namespace TEXT NOT NULL,
  value TEXT NOT NULL,
  bytes INTEGER NOT NULL,
  cost_femto TEXT,
  expires_at INTEGER,
  used_at INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS entries_by_use ON entries (used_at);
CREATE TABLE IF NOT EXISTS counters (id INTEGER PRIMARY KEY CHECK (id = 1), hits INTEGER NOT NULL, misses INTEGER NOT NULL, saved_femto TEXT NOT NULL);
INSERT OR IGNORE INTO counters VALUES (1, 0, 0, '0');
`;

/** The default file's path. */
export function responseCachePath(env?: Record<string, string | undefined>): string {
  return join(switchboardHome(env), 'response-cache.db');
}

export class SQLiteCacheStore implements CacheStore {
  readonly path: string;
  readonly maxBytes: number;
  readonly #db: Database.Database;
  readonly #read: Database.Statement;
  readonly #touch: Database.Statement;
  readonly #drop: Database.Statement;
  readonly #counters: Database.Statement;
  readonly #put: (key: string, entry: CacheEntry, now: number) => void;
  readonly #writeCounts: () => void;
  /** Counted since the last write: hits, misses, the hits' saved cost, and each hit key's last use. */
  #hits = 0;
  #misses = 0;
  #savedFemto = 0n;
  readonly #used = new Map<string, number>();
  #writeScheduled = false;

  constructor(options: SQLiteCacheOptions = {}) {
    this.path = options.path ?? responseCachePath(options.env);
    this.maxBytes = options.maxBytes ?? DEFAULT_SQLITE_BYTES;
    mkdirSync(dirname(this.path), { recursive: true });
    const Driver = createRequire(import.meta.url)('better-sqlite3') as typeof Database;
    const db = new Driver(this.path, { timeout: 1000 });
    this.#db = db;
    try {
      useWAL(db, 1000);
      db.exec(SCHEMA);
    } catch (err) {
      db.close();
      throw err;
    }
    this.#read = db.prepare('SELECT value, cost_femto, expires_at FROM entries WHERE key = ?');
    this.#touch = db.prepare('UPDATE entries SET used_at = ? WHERE key = ?');
    this.#drop = db.prepare('DELETE FROM entries WHERE key = ?');
    const upsert = db.prepare(
      `INSERT INTO entries (key, namespace, value, bytes, cost_femto, expires_at, used_at) VALUES (?, ?, ?, ?, ?, ?, ?)
       ON CONFLICT (key) DO UPDATE SET namespace = excluded.namespace, value = excluded.value, bytes = excluded.bytes,
         cost_femto = excluded.cost_femto, expires_at = excluded.expires_at, used_at = excluded.used_at`,
    );
    const total = db.prepare('SELECT COALESCE(SUM(bytes), 0) AS bytes FROM entries').pluck();
    const expired = db.prepare('DELETE FROM entries WHERE expires_at IS NOT NULL AND expires_at <= ?');
    const oldest = db.prepare('SELECT key, bytes FROM entries ORDER BY used_at ASC, rowid ASC LIMIT 64');
    this.#put = db.transaction((key: string, entry: CacheEntry, now: number) => {
      const bytes = Buffer.byteLength(key) + Buffer.byteLength(entry.value);
      this.#drop.run(key);
      if (bytes > this.maxBytes) return;
      upsert.run(key, entry.namespace, entry.value, bytes, entry.costFemto === null ? null : entry.costFemto.toString(), entry.expiresAt, now);
      expired.run(now);
      let held = total.get() as number;
      while (held > this.maxBytes) {
        const rows = oldest.all() as { key: string; bytes: number }[];
        if (rows.length === 0) break;
        for (const row of rows) {
          if (held <= this.maxBytes) break;
          this.#drop.run(row.key);
          held -= row.bytes;
        }
      }
    });
    this.#counters = db.prepare('SELECT hits, misses, saved_femto FROM counters');
    const count = db.prepare('UPDATE counters SET hits = hits + ?, misses = misses + ?, saved_femto = ?');
    this.#writeCounts = db.transaction(() => {
      for (const [key, at] of this.#used) this.#touch.run(at, key);
      // Femto-dollar sums outgrow SQLite's 64-bit integers past 9,223 dollars: kept as text, summed in BigInt.
      const saved = BigInt(this.#readCounters().saved_femto) + this.#savedFemto;
      count.run(this.#hits, this.#misses, saved.toString());
    });
  }

  /** Write the gathered counts and last uses now (a failed write keeps them for the next). */
  #flush(): void {
    this.#writeScheduled = false;
    if ((this.#hits === 0 && this.#misses === 0) || !this.#db.open) return;
    this.#writeCounts();
    this.#hits = 0;
    this.#misses = 0;
    this.#savedFemto = 0n;
    this.#used.clear();
  }

  #scheduleFlush(): void {
    if (this.#writeScheduled) return;
    this.#writeScheduled = true;
    setImmediate(() => {
      try {
        this.#flush();
      } catch {
        // A busy or locked file: the counts wait for the next lookup's write.
      }
    });
  }

  #readCounters(): { hits: number; misses: number; saved_femto: string } {
    return this.#counters.get() as { hits: number; misses: number; saved_femto: string };
  }

  get(key: string, now: number): string | undefined {
    const row = this.#read.get(key) as { value: string; cost_femto: string | null; expires_at: number | null } | undefined;
    if (row && (row.expires_at === null || row.expires_at > now)) {
      this.#hits++;
      if (row.cost_femto !== null) this.#savedFemto += BigInt(row.cost_femto);
      this.#used.set(key, now);
      this.#scheduleFlush();
      return row.value;
    }
    if (row) this.#drop.run(key);
    this.#misses++;
    this.#scheduleFlush();
    return undefined;
  }

  set(key: string, entry: CacheEntry): void {
    this.#put(key, entry, Date.now());
  }

  clear(namespace?: string): number {
    this.#flush();
    const result =
      namespace === undefined ? this.#db.prepare('DELETE FROM entries').run() : this.#db.prepare('DELETE FROM entries WHERE namespace = ?').run(namespace);
    return result.changes;
  }

  stats(): CacheStats {
    this.#flush();
    const row = this.#db.prepare('SELECT COUNT(*) AS entries, COALESCE(SUM(bytes), 0) AS bytes FROM entries').get() as { entries: number; bytes: number };
    const counters = this.#readCounters();
    return { entries: row.entries, bytes: row.bytes, maxBytes: this.maxBytes, hits: counters.hits, misses: counters.misses, savedFemto: BigInt(counters.saved_femto) };
  }

  /** Reset the hit, miss and saved counters (with `clear`, a fresh cache). */
  resetCounters(): void {
    this.#flush();
    this.#db.exec("UPDATE counters SET hits = 0, misses = 0, saved_femto = '0'");
  }

  close(): void {
    if (!this.#db.open) return;
    this.#flush();
    this.#db.close();
  }
}
