/**
 * Measurements per deployment (`model@provider`): time to first token, inter-token latency,
 * output tokens per second, whole latency, and errors by code.
 *
 * Stats are robust and recent: each deployment keeps its last `window` samples, and each
 * sample weighs less the older it is (by age in time and by how many samples came after it),
 * so p50/p90 follow a provider that changed speed within a few requests while one outlier
 * moves nothing. `MetricsStore` is an interface: in-memory here, SQLite in `store/`, a shared
 * (Redis) store later.
 */

/** One attempt at one deployment. Times in ms; `at` is a Unix time in ms. */
export interface MetricSample {
  at: number;
  ok: boolean;
  /** The error code when the attempt failed (`rate_limit`, `server`, `timeout`...). */
  errorCode?: string | undefined;
  ttftMs?: number | undefined;
  /** Mean gap between output tokens after the first. */
  itlMs?: number | undefined;
  /** Output tokens per second after the first token. */
  tokensPerSecond?: number | undefined;
  latencyMs?: number | undefined;
  outputTokens?: number | undefined;
}

export interface Percentiles {
  p50: number;
  p90: number;
  mean: number;
  /** How many samples carried this figure. */
  count: number;
}

export interface DeploymentStats {
  deployment: string;
  /** Attempts in the window (successes and failures). */
  attempts: number;
  successes: number;
  failures: number;
  /** Weighted share of recent attempts that failed (0..1). */
  errorRate: number;
  errorsByCode: Record<string, number>;
  ttftMs?: Percentiles;
  itlMs?: Percentiles;
  tokensPerSecond?: Percentiles;
  latencyMs?: Percentiles;
  /** Unix ms of the newest sample. */
  lastAt: number;
  /** The newest sample itself (a re-check that came back much better shows here first). */
  latest: MetricSample;
}

export interface MetricsStore {
  record(deployment: string, sample: MetricSample): void;
  /** Recent stats for a deployment; undefined when it was never measured. */
  snapshot(deployment: string, now?: number): DeploymentStats | undefined;
  /** Deployments with data. */
  deployments(): string[];
  close?(): void;
}

export interface StatsOptions {
  /** Samples kept per deployment (default 40). */
  window?: number;
  /** A sample's weight halves after this many newer samples (default 4). */
  sampleHalfLife?: number;
  /** A sample's weight halves after this many ms (default 10 minutes). */
  timeHalfLifeMs?: number;
}

const DEFAULTS: Required<StatsOptions> = { window: 40, sampleHalfLife: 4, timeHalfLifeMs: 10 * 60_000 };

/** The key a deployment is measured under. */
export function deploymentKey(d: { model: string; provider: string }): string {
  return `${d.model}@${d.provider}`;
}

/** Weighted percentile (nearest rank on cumulative weight). */
export function weightedPercentile(values: { value: number; weight: number }[], q: number): number {
  const sorted = [...values].sort((a, b) => a.value - b.value);
  const total = sorted.reduce((s, v) => s + v.weight, 0);
  if (sorted.length === 0 || total <= 0) return Number.NaN;
  const goal = q * total;
  let acc = 0;
  for (const v of sorted) {
    acc += v.weight;
    if (acc >= goal - 1e-12) return v.value;
  }
  return (sorted[sorted.length - 1] as { value: number }).value;
}

function summarize(values: { value: number; weight: number }[]): Percentiles | undefined {
  if (values.length === 0) return undefined;
  const total = values.reduce((s, v) => s + v.weight, 0);
  const mean = values.reduce((s, v) => s + v.value * v.weight, 0) / total;
  return { p50: weightedPercentile(values, 0.5), p90: weightedPercentile(values, 0.9), mean, count: values.length };
}

/** Stats from a deployment's samples, newest last. */
export function computeStats(deployment: string, samples: readonly MetricSample[], now: number, options: StatsOptions = {}): DeploymentStats | undefined {
  if (samples.length === 0) return undefined;
  const o = { ...DEFAULTS, ...options };
  const recent = samples.slice(-o.window);
  // Ages count from the newest sample, so figures stay defined however old the data is;
  // how stale the whole set is shows in `lastAt` (the policy re-checks stale deployments).
  const newest = recent.reduce((m, s) => Math.max(m, s.at), Number.NEGATIVE_INFINITY);
  const weights = recent.map((s, i) => {
    const newer = recent.length - 1 - i;
    const age = Math.max(0, Math.min(now, newest) - s.at);
    return 0.5 ** (newer / o.sampleHalfLife) * 0.5 ** (age / o.timeHalfLifeMs);
  });
  const pick = (get: (s: MetricSample) => number | undefined) => {
    const out: { value: number; weight: number }[] = [];
    recent.forEach((s, i) => {
      const v = get(s);
      if (s.ok && v !== undefined && Number.isFinite(v)) out.push({ value: v, weight: weights[i] ?? 0 });
    });
    return summarize(out);
  };
  let failWeight = 0;
  let allWeight = 0;
  const errorsByCode: Record<string, number> = {};
  recent.forEach((s, i) => {
    const w = weights[i] ?? 0;
    allWeight += w;
    if (!s.ok) {
      failWeight += w;
      const code = s.errorCode ?? 'unknown';
      errorsByCode[code] = (errorsByCode[code] ?? 0) + 1;
    }
  });
  const failures = recent.filter((s) => !s.ok).length;
  const stats: DeploymentStats = {
    deployment,
    attempts: recent.length,
    successes: recent.length - failures,
    failures,
    errorRate: allWeight > 0 ? failWeight / allWeight : 0,
    errorsByCode,
    lastAt: recent.reduce((m, s) => Math.max(m, s.at), 0),
    latest: recent[recent.length - 1] as MetricSample,
  };
  const ttft = pick((s) => s.ttftMs);
  const itl = pick((s) => s.itlMs);
  const tps = pick((s) => s.tokensPerSecond);
  const latency = pick((s) => s.latencyMs);
  if (ttft) stats.ttftMs = ttft;
  if (itl) stats.itlMs = itl;
  if (tps) stats.tokensPerSecond = tps;
  if (latency) stats.latencyMs = latency;
  return stats;
}

/** Keeps each deployment's recent samples in memory (the process-local store). */
export class MemoryMetricsStore implements MetricsStore {
  readonly #samples = new Map<string, MetricSample[]>();
  readonly #options: Required<StatsOptions>;
  readonly #now: () => number;

  constructor(options: StatsOptions & { now?: () => number } = {}) {
    this.#options = { ...DEFAULTS, ...options };
    this.#now = options.now ?? Date.now;
  }

  record(deployment: string, sample: MetricSample): void {
    let list = this.#samples.get(deployment);
    if (!list) {
      list = [];
      this.#samples.set(deployment, list);
    }
    list.push(sample);
    if (list.length > this.#options.window * 2) list.splice(0, list.length - this.#options.window);
  }

  snapshot(deployment: string, now = this.#now()): DeploymentStats | undefined {
    return computeStats(deployment, this.#samples.get(deployment) ?? [], now, this.#options);
  }

  deployments(): string[] {
    return [...this.#samples.keys()];
  }

  /** Samples newest last, for stores that persist them. */
  samples(deployment: string): readonly MetricSample[] {
    return this.#samples.get(deployment) ?? [];
  }
}
