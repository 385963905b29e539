/**
 * Measurements shared between instances (several gateways, several CLIs) through a shared
 * backend, with bounded writes: each instance sums its samples per deployment per second and
 * writes those sums once a second, never one write per request or per token. Reads come from
 * a local mirror, refreshed from the backend once a second, so a routing decision never waits
 * on the network.
 *
 * `SharedMetricsBackend` is what a Redis (or Postgres) implementation provides: `write` is one
 * round trip carrying every bucket of the last second (a Lua script or a pipeline of HINCRBY
 * per field), `read` one round trip for the buckets newer than a second. Buckets of the same
 * deployment, second and instance are added field by field, so writes commute and a retried
 * write can be detected by its `(instance, second)`. `MemorySharedBackend` implements it in
 * process, for tests and for several stores in one process.
 */
import { MemoryMetricsStore, type DeploymentStats, type MetricSample, type MetricsStore, type StatsOptions } from '../routing/metrics.js';

/** One instance's samples of one deployment within one second, summed. */
export interface MetricsBucket {
  deployment: string;
  /** Unix time in whole seconds. */
  second: number;
  /** Who wrote it (its own buckets are not read back into the instance that wrote them). */
  instance: string;
  successes: number;
  /** Failures by error code. */
  failures: Record<string, number>;
  /** Per timing field: how many samples carried it, and the sum of their natural logs. */
  sums: Partial<Record<TimingField, { count: number; logSum: number }>>;
}

const TIMING_FIELDS = ['ttftMs', 'itlMs', 'tokensPerSecond', 'latencyMs'] as const;
type TimingField = (typeof TIMING_FIELDS)[number];

export interface SharedMetricsBackend {
  /** Add the buckets (one call per flush). Buckets with the same deployment, second and instance add up. */
  write(buckets: readonly MetricsBucket[]): Promise<void>;
  /** Every bucket whose second is at least `sinceSecond`, oldest first. */
  read(sinceSecond: number): Promise<MetricsBucket[]>;
}

function addInto(target: MetricsBucket, b: MetricsBucket): void {
  target.successes += b.successes;
  for (const [code, n] of Object.entries(b.failures)) target.failures[code] = (target.failures[code] ?? 0) + n;
  for (const field of TIMING_FIELDS) {
    const s = b.sums[field];
    if (!s) continue;
    const t = (target.sums[field] ??= { count: 0, logSum: 0 });
    t.count += s.count;
    t.logSum += s.logSum;
  }
}

function emptyBucket(deployment: string, second: number, instance: string): MetricsBucket {
  return { deployment, second, instance, successes: 0, failures: {}, sums: {} };
}

/** A backend in this process's memory: what a Redis hash per (deployment, second) would hold. */
export class MemorySharedBackend implements SharedMetricsBackend {
  readonly #buckets = new Map<string, MetricsBucket>();
  /** How many write calls arrived (a test of the batching reads it). */
  writes = 0;

  write(buckets: readonly MetricsBucket[]): Promise<void> {
    this.writes++;
    for (const b of buckets) {
      const key = `${b.deployment}\u0000${b.second}\u0000${b.instance}`;
      let target = this.#buckets.get(key);
      if (!target) {
        target = emptyBucket(b.deployment, b.second, b.instance);
        this.#buckets.set(key, target);
      }
      addInto(target, b);
    }
    return Promise.resolve();
  }

  read(sinceSecond: number): Promise<MetricsBucket[]> {
    const out = [...this.#buckets.values()].filter((b) => b.second >= sinceSecond).sort((a, b) => a.second - b.second);
    return Promise.resolve(out.map((b) => structuredClone(b)));
  }
}

export interface SharedMetricsOptions extends StatsOptions {
  backend: SharedMetricsBackend;
  /** This instance's name in the buckets (default a random id). */
  instance?: string;
  /** Milliseconds between writes and between reads (default 1000). */
  intervalMs?: number;
  now?: () => number;
  /** Receives a message when the backend fails (default console.warn, once until it recovers). */
  warn?: (message: string) => void;
}

/** Samples a bucket stands for when read back: at most this many, so one busy second cannot flood the window. */
const MAX_SAMPLES_PER_BUCKET = 8;

/**
 * A metrics store whose measurements every instance shares. Local samples count at once in
 * this instance's own stats; other instances' arrive once their second is complete (within
 * about three seconds), as samples at each bucket's typical (geometric mean) figures.
 */
export class SharedMetricsStore implements MetricsStore {
  readonly #local: MemoryMetricsStore;
  readonly #backend: SharedMetricsBackend;
  readonly #instance: string;
  readonly #now: () => number;
  readonly #warn: (message: string) => void;
  readonly #pending = new Map<string, MetricsBucket>();
  readonly #timer: ReturnType<typeof setInterval>;
  /** Other instances' buckets already taken in, by key, with their second (pruned as they age). */
  readonly #seen = new Map<string, number>();
  #readFrom: number;
  #failing = false;
  #busy: Promise<void> | undefined;

  constructor(options: SharedMetricsOptions) {
    this.#backend = options.backend;
    this.#instance = options.instance ?? Math.random().toString(36).slice(2, 10);
    this.#now = options.now ?? Date.now;
    this.#warn = options.warn ?? ((m) => console.warn(m));
    const stats: StatsOptions & { now?: () => number } = { ...options };
    this.#local = new MemoryMetricsStore(stats);
    this.#readFrom = Math.floor(this.#now() / 1000) - 600;
    this.#timer = setInterval(() => void this.sync(), options.intervalMs ?? 1000);
    this.#timer.unref();
  }

  record(deployment: string, sample: MetricSample): void {
    this.#local.record(deployment, sample);
    const second = Math.floor(sample.at / 1000);
    const key = `${deployment}\u0000${second}`;
    let bucket = this.#pending.get(key);
    if (!bucket) {
      bucket = emptyBucket(deployment, second, this.#instance);
      this.#pending.set(key, bucket);
    }
    if (sample.ok) bucket.successes++;
    else bucket.failures[sample.errorCode ?? 'unknown'] = (bucket.failures[sample.errorCode ?? 'unknown'] ?? 0) + 1;
    if (!sample.ok) return;
    for (const field of TIMING_FIELDS) {
      const v = sample[field];
      if (v === undefined || !Number.isFinite(v) || v <= 0) continue;
      const s = (bucket.sums[field] ??= { count: 0, logSum: 0 });
      s.count++;
      s.logSum += Math.log(v);
    }
  }

  snapshot(deployment: string, now?: number): DeploymentStats | undefined {
    return this.#local.snapshot(deployment, now);
  }

  deployments(): string[] {
    return this.#local.deployments();
  }

  /** Write what was recorded since the last write (one backend call), then read the others' new buckets. */
  sync(): Promise<void> {
    this.#busy ??= this.#sync().finally(() => (this.#busy = undefined));
    return this.#busy;
  }

  async #sync(): Promise<void> {
    const buckets = [...this.#pending.values()];
    this.#pending.clear();
    try {
      if (buckets.length > 0) await this.#backend.write(buckets);
      const since = this.#readFrom;
      const fresh = await this.#backend.read(since);
      for (const b of fresh) {
        if (b.instance === this.#instance) continue;
        const key = `${b.deployment}\u0000${b.second}\u0000${b.instance}`;
        // A second still being written may grow; it is read again until it is a few seconds old.
        if (this.#seen.has(key)) continue;
        if (b.second < Math.floor(this.#now() / 1000) - 2) this.#seen.set(key, b.second);
        else continue;
        for (const sample of samplesOf(b)) this.#local.record(b.deployment, sample);
      }
      this.#readFrom = Math.max(since, Math.floor(this.#now() / 1000) - 5);
      for (const [key, second] of this.#seen) if (second < this.#readFrom) this.#seen.delete(key);
      this.#failing = false;
    } catch (err) {
      // Keep the sums for the next attempt; warn once until the backend answers again.
      for (const b of buckets) {
        const key = `${b.deployment}\u0000${b.second}`;
        const again = this.#pending.get(key);
        if (again) addInto(again, b);
        else this.#pending.set(key, b);
      }
      if (!this.#failing) this.#warn(`switchboard: the shared routing metrics are unavailable (${(err as Error).message}); measuring locally until they are back.`);
      this.#failing = true;
    }
  }

  close(): void {
    clearInterval(this.#timer);
  }
}

/** The samples a bucket stands for: its failures, and its successes at the bucket's geometric means. */
function samplesOf(b: MetricsBucket): MetricSample[] {
  const out: MetricSample[] = [];
  const at = b.second * 1000 + 500;
  const failures = Object.entries(b.failures);
  const total = b.successes + failures.reduce((n, [, k]) => n + k, 0);
  const scale = total > MAX_SAMPLES_PER_BUCKET ? MAX_SAMPLES_PER_BUCKET / total : 1;
  for (const [code, n] of failures) for (let i = 0; i < Math.max(1, Math.round(n * scale)); i++) out.push({ at, ok: false, errorCode: code });
  const typical: MetricSample = { at, ok: true };
  for (const field of TIMING_FIELDS) {
    const s = b.sums[field];
    if (s && s.count > 0) typical[field] = Math.exp(s.logSum / s.count);
  }
  if (b.successes > 0) for (let i = 0; i < Math.max(1, Math.round(b.successes * scale)); i++) out.push({ ...typical });
  return out;
}
