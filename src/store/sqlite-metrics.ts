/**
 * Metrics kept in SQLite (`$SWITCHBOARD_HOME/metrics.db`), so routing remembers what it
 * measured across runs. Reads come from an in-memory mirror loaded at open; writes are
 * queued and written in one transaction shortly after (and at exit), so a request never
 * waits on the disk. Opening fails soft: a locked or corrupt file
 * gives an in-memory store and one warning.
 */
import { mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { createRequire } from 'node:module';
import type Database from 'better-sqlite3';
import { switchboardHome } from '../paths.js';
import { useWAL } from './sqlite-wal.js';
import {
  MemoryMetricsStore,
  type DeploymentStats,
  type MetricSample,
  type MetricsStore,
  type StatsOptions,
} from '../routing/metrics.js';

export interface SQLiteMetricsOptions extends StatsOptions {
  /** File path (default `$SWITCHBOARD_HOME/metrics.db`). */
  path?: string;
  env?: Record<string, string | undefined>;
  now?: () => number;
  /** Receives the one warning when the file cannot be used (default console.warn). */
  warn?: (message: string) => void;
  /** Samples older than this are dropped at open (default 7 days). */
  retentionMs?: number;
}

interface Row {
  deployment: string;
  at: number;
  ok: number;
  error_code: string | null;
  ttft_ms: number | null;
  itl_ms: number | null;
  tps: number | null;
  latency_ms: number | null;
  output_tokens: number | null;
}

const SCHEMA = `
CREATE TABLE IF NOT EXISTS samples (
  deployment TEXT NOT NULL,
  at INTEGER NOT NULL,
  ok INTEGER NOT NULL,
  error_code TEXT,
  ttft_ms REAL,
  itl_ms REAL,
  tps REAL,
  latency_ms REAL,
  output_tokens INTEGER
);
CREATE INDEX IF NOT EXISTS samples_by_deployment ON samples (deployment, at);
`;

const orNull = (v: number | string | undefined): number | string | null => (v === undefined ? null : v);
const orUndef = <T>(v: T | null): T | undefined => (v === null ? undefined : v);

export class SQLiteMetricsStore implements MetricsStore {
  readonly path: string;
  readonly #db: Database.Database;
  readonly #memory: MemoryMetricsStore;
  readonly #insert: Database.Statement;
  readonly #warn: (message: string) => void;
  readonly #writeAll: (rows: unknown[][]) => void;
  #pending: unknown[][] = [];
  #flushTimer: ReturnType<typeof setTimeout> | undefined;
  readonly #flushAtExit = (): void => this.flush();
  #broken = false;

  /** Opens (or creates) the database; throws when it cannot. Use `openMetricsStore` to fail soft. */
  constructor(options: SQLiteMetricsOptions = {}) {
    this.path = options.path ?? join(switchboardHome(options.env), 'metrics.db');
    this.#warn = options.warn ?? ((m) => console.warn(m));
    const memOptions: StatsOptions & { now?: () => number } = { ...options };
    this.#memory = new MemoryMetricsStore(memOptions);
    mkdirSync(dirname(this.path), { recursive: true });
    // The native driver loads when the first store opens, not with the library.
    const Driver = createRequire(import.meta.url)('better-sqlite3') as typeof Database;
    this.#db = new Driver(this.path, { timeout: 250 });
    try {
      useWAL(this.#db, 250);
      this.#db.exec(SCHEMA);
      const now = (options.now ?? Date.now)();
      this.#db.prepare('DELETE FROM samples WHERE at < ?').run(now - (options.retentionMs ?? 7 * 86_400_000));
      this.#insert = this.#db.prepare(
        'INSERT INTO samples (deployment, at, ok, error_code, ttft_ms, itl_ms, tps, latency_ms, output_tokens) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)',
      );
      const insert = this.#insert;
      this.#writeAll = this.#db.transaction((rows: unknown[][]) => {
        for (const row of rows) insert.run(...row);
      });
      process.once('exit', this.#flushAtExit);
      const window = options.window ?? 40;
      const rows = this.#db
        .prepare(
          `SELECT * FROM (SELECT *, rowid AS rid, ROW_NUMBER() OVER (PARTITION BY deployment ORDER BY at DESC, rowid DESC) AS n FROM samples)
           WHERE n <= ? ORDER BY at ASC, rid ASC`,
        )
        .all(window) as Row[];
      for (const r of rows) {
        this.#memory.record(r.deployment, {
          at: r.at,
          ok: r.ok === 1,
          errorCode: orUndef(r.error_code),
          ttftMs: orUndef(r.ttft_ms),
          itlMs: orUndef(r.itl_ms),
          tokensPerSecond: orUndef(r.tps),
          latencyMs: orUndef(r.latency_ms),
          outputTokens: orUndef(r.output_tokens),
        });
      }
    } catch (err) {
      this.#db.close();
      throw err;
    }
  }

  record(deployment: string, sample: MetricSample): void {
    this.#memory.record(deployment, sample);
    if (this.#broken) return;
    this.#pending.push([
      deployment,
      Math.round(sample.at),
      sample.ok ? 1 : 0,
      orNull(sample.errorCode),
      orNull(sample.ttftMs),
      orNull(sample.itlMs),
      orNull(sample.tokensPerSecond),
      orNull(sample.latencyMs),
      orNull(sample.outputTokens),
    ]);
    if (!this.#flushTimer) {
      this.#flushTimer = setTimeout(() => this.flush(), 100);
      this.#flushTimer.unref();
    }
  }

  /** Write the queued samples now, in one transaction. */
  flush(): void {
    if (this.#flushTimer) clearTimeout(this.#flushTimer);
    this.#flushTimer = undefined;
    if (this.#broken || this.#pending.length === 0 || !this.#db.open) return;
    const rows = this.#pending;
    this.#pending = [];
    try {
      this.#writeAll(rows);
    } catch (err) {
      this.#broken = true;
      this.#warn(`switchboard: cannot write routing metrics to ${this.path} (${(err as Error).message}); keeping them in memory.`);
    }
  }

  snapshot(deployment: string, now?: number): DeploymentStats | undefined {
    return this.#memory.snapshot(deployment, now);
  }

  deployments(): string[] {
    return this.#memory.deployments();
  }

  close(): void {
    this.flush();
    process.removeListener('exit', this.#flushAtExit);
    if (this.#db.open) this.#db.close();
  }
}

/**
 * The metrics store at `path` (default `$SWITCHBOARD_HOME/metrics.db`), or an in-memory one
 * with one warning when the file is locked, corrupt or not writable.
 */
export function openMetricsStore(options: SQLiteMetricsOptions = {}): MetricsStore {
  try {
    return new SQLiteMetricsStore(options);
  } catch (err) {
    const path = options.path ?? join(switchboardHome(options.env), 'metrics.db');
    (options.warn ?? ((m: string) => console.warn(m)))(
      `switchboard: cannot open routing metrics at ${path} (${(err as Error).message}); keeping them in memory for this run.`,
    );
    const memOptions: StatsOptions & { now?: () => number } = { ...options };
    return new MemoryMetricsStore(memOptions);
  }
}

/**
 * A store that opens its backing store (the SQLite file) only when needed: on the first
 * read, shortly after the first write, or at exit. A request on a pinned deployment never
 * reads statistics, so the CLI's first request does not wait for the database to open.
 * Samples recorded before the store opens are handed to it, in order, when it does.
 */
export class DeferredMetricsStore implements MetricsStore {
  readonly #open: () => MetricsStore;
  #store: MetricsStore | undefined;
  #queued: [string, MetricSample][] = [];
  #timer: ReturnType<typeof setTimeout> | undefined;
  readonly #openAtExit = (): void => {
    // Listeners added while 'exit' runs are not called: flush the opened store here.
    if (this.#queued.length > 0) (this.#get() as { flush?: () => void }).flush?.();
  };

  constructor(open: () => MetricsStore) {
    this.#open = open;
  }

  #get(): MetricsStore {
    if (!this.#store) {
      if (this.#timer) clearTimeout(this.#timer);
      process.removeListener('exit', this.#openAtExit);
      this.#store = this.#open();
      for (const [deployment, sample] of this.#queued) this.#store.record(deployment, sample);
      this.#queued = [];
    }
    return this.#store;
  }

  record(deployment: string, sample: MetricSample): void {
    if (this.#store) {
      this.#store.record(deployment, sample);
      return;
    }
    this.#queued.push([deployment, sample]);
    if (!this.#timer) {
      this.#timer = setTimeout(() => this.#get(), 100);
      this.#timer.unref();
      process.once('exit', this.#openAtExit);
    }
  }

  snapshot(deployment: string, now?: number): DeploymentStats | undefined {
    return this.#get().snapshot(deployment, now);
  }

  deployments(): string[] {
    return this.#get().deployments();
  }

  close(): void {
    if (this.#queued.length > 0) this.#get();
    this.#store?.close?.();
  }
}
