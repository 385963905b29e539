/**
 * Measurements per deployment (`model@provider`): time to first token, inter-token latency,
 * output tokens per second, whole latency, and errors by code.
 *
 * Stats are robust and recent: each deployment keeps its last `window` samples, and each
 * sample weighs less the older it is (by age in time and by how many samples came after it),
 * so p50/p90 follow a provider that changed speed within a few requests while one outlier
 * moves nothing. A change detector cuts the window at a shift: when the newest samples (at
 * least `changeRun` of them) all lie beyond `changeRatio` (and three spreads) of the older
 * ones' typical value, on the same side, the log estimate counts only the samples since. `MetricsStore` is an interface:
 * in-memory here, SQLite in `store/`, batched writes to a shared store in `store/shared-metrics.ts`.
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
  /**
   * Weighted mean of the natural log of the values (speeds and times vary by factors), over
   * the samples since a detected shift (all of the window when none).
   */
  logMean: number;
  /** Weighted standard deviation of the log values, over the same samples (0 with one). */
  logSd: number;
  /** Sum of those samples' weights: how much evidence the estimate rests on (at most about 6 by default). */
  weight: number;
  /** Unix ms of the first sample after a detected shift; undefined when none was detected in the window. */
  changedAt?: number;
  /** With `changedAt`: the shift's size, the log mean after it minus the log mean before it. */
  shift?: number;
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
  /** Newest samples that must agree before a shift is believed (default 3: one or two outliers move nothing). */
  changeRun?: number;
  /** Factor between the newest samples and the older ones' log mean that counts as a shift (default 2). */
  changeRatio?: number;
}

const DEFAULTS: Required<StatsOptions> = { window: 40, sampleHalfLife: 4, timeHalfLifeMs: 10 * 60_000, changeRun: 3, changeRatio: 2 };

/** The key a deployment is measured under. */
export function deploymentKey(d: { model: string; provider: string }): string {
  return `${d.model}@${d.provider}`;
}

/** Weighted percentile (nearest rank on cumulative weight). */
export function weightedPercentile(values: readonly { value: number; weight: number }[], q: number): number {
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

/**
 * Scratch space for the stats of one window, reused by every call (they run synchronously
 * and one at a time): allocating typed arrays costs more than the arithmetic on them.
 */
let scratchSize = 0;
let scratch: Float64Array[] = [];
function scratchArrays(n: number): Float64Array[] {
  if (n + 1 > scratchSize) {
    scratchSize = Math.max(n + 1, 2 * scratchSize, 64);
    scratch = Array.from({ length: 10 }, () => new Float64Array(scratchSize));
  }
  return scratch;
}

/**
 * Percentiles of `values[from..to)` with their weights. An insertion sort on scratch arrays:
 * windows are small (40) and this runs once per new sample, so nothing is allocated per value.
 */
function summarize(values: Float64Array, logs: Float64Array, weights: Float64Array, from: number, to: number): Percentiles | undefined {
  const n = to - from;
  if (n <= 0) return undefined;
  let total = 0;
  let sum = 0;
  let logSum = 0;
  let logSquares = 0;
  const [, , , , , sortedValues, sortedWeights] = scratchArrays(n) as [unknown, unknown, unknown, unknown, unknown, Float64Array, Float64Array];
  for (let i = 0; i < n; i++) {
    const v = values[from + i] as number;
    const w = weights[from + i] as number;
    const log = logs[from + i] as number;
    total += w;
    sum += v * w;
    logSum += log * w;
    logSquares += log * log * w;
    let j = i;
    while (j > 0 && (sortedValues[j - 1] as number) > v) {
      sortedValues[j] = sortedValues[j - 1] as number;
      sortedWeights[j] = sortedWeights[j - 1] as number;
      j--;
    }
    sortedValues[j] = v;
    sortedWeights[j] = w;
  }
  const logMean = logSum / total;
  let p50 = Number.NaN;
  let p90 = sortedValues[n - 1] as number;
  let acc = 0;
  for (let i = 0; i < n; i++) {
    acc += sortedWeights[i] as number;
    if (Number.isNaN(p50) && acc >= 0.5 * total - 1e-12) p50 = sortedValues[i] as number;
    if (acc >= 0.9 * total - 1e-12) {
      p90 = sortedValues[i] as number;
      break;
    }
  }
  return { p50, p90, mean: sum / total, count: n, logMean, logSd: Math.sqrt(Math.max(0, logSquares / total - logMean * logMean)), weight: total };
}

/**
 * Where the newest run of samples (given as natural logs) departs from the rest: the index of the first sample after
 * the shift, or 0 when there is none. A shift is a run of at least `run` newest samples that
 * all lie beyond `ratio` (and beyond three standard deviations) of the log mean of every
 * sample before them, on the same side; the longest such run wins. Linear in the number of
 * samples.
 */
export function changePoint(logs: ArrayLike<number>, run: number, ratio: number, count = logs.length): number {
  const n = count;
  if (n < run + 1) return 0;
  const least = Math.log(ratio);
  const log = logs;
  const [, , , , , , , prefix, squares] = scratchArrays(n) as [unknown, unknown, unknown, unknown, unknown, unknown, unknown, Float64Array, Float64Array];
  prefix[0] = 0;
  squares[0] = 0;
  for (let i = 0; i < n; i++) {
    const l = log[i] as number;
    prefix[i + 1] = (prefix[i] as number) + l;
    squares[i + 1] = (squares[i] as number) + l * l;
  }
  let low = Infinity;
  let high = -Infinity;
  let found = 0;
  // start = index of the first sample of the run; the run is start..n-1.
  for (let start = n - 1; start >= 1; start--) {
    low = Math.min(low, log[start] as number);
    high = Math.max(high, log[start] as number);
    if (n - start < run) continue;
    const before = (prefix[start] as number) / start;
    // A noisy deployment needs a larger departure: three of its usual spreads at least.
    const spread = Math.sqrt(Math.max(0, (squares[start] as number) / start - before * before));
    const limit = Math.max(least, 3 * spread);
    if (high < before - limit || low > before + limit) found = start;
  }
  return found;
}

/** Stats from a deployment's samples, newest last. */
export function computeStats(deployment: string, samples: readonly MetricSample[], now: number, options: StatsOptions = {}): DeploymentStats | undefined {
  if (samples.length === 0) return undefined;
  const o = options.window === undefined && Object.keys(options).length === 0 ? DEFAULTS : { ...DEFAULTS, ...options };
  const recent = samples.length > o.window ? samples.slice(-o.window) : samples;
  // Ages count from the newest sample, so figures stay defined however old the data is;
  // how stale the whole set is shows in `lastAt` (the policy re-checks stale deployments).
  let newest = Number.NEGATIVE_INFINITY;
  for (const s of recent) newest = Math.max(newest, s.at);
  const reference = Math.min(now, newest);
  const [weights, values, logs, valueWeights, at] = scratchArrays(recent.length) as [Float64Array, Float64Array, Float64Array, Float64Array, Float64Array];
  const perNewer = Math.LN2 / o.sampleHalfLife;
  const perMs = Math.LN2 / o.timeHalfLifeMs;
  for (let i = 0; i < recent.length; i++) {
    weights[i] = Math.exp(-(recent.length - 1 - i) * perNewer - Math.max(0, reference - (recent[i] as MetricSample).at) * perMs);
  }
  const pick = (get: (s: MetricSample) => number | undefined): Percentiles | undefined => {
    let n = 0;
    for (let i = 0; i < recent.length; i++) {
      const s = recent[i] as MetricSample;
      const v = get(s);
      if (!s.ok || v === undefined || !Number.isFinite(v)) continue;
      values[n] = v;
      logs[n] = Math.log(Math.max(v, 1e-9));
      valueWeights[n] = weights[i] as number;
      at[n] = s.at;
      n++;
    }
    const summary = summarize(values, logs, valueWeights, 0, n);
    const cut = changePoint(logs, o.changeRun, o.changeRatio, n);
    if (summary && cut > 0) {
      // Percentiles stay those of the whole window (thresholds and reports want a steady
      // figure); the log estimate the policy ranks by follows the shift at once.
      const since = summarize(values, logs, valueWeights, cut, n) as Percentiles;
      const before = (summary.logMean * summary.weight - since.logMean * since.weight) / (summary.weight - since.weight);
      summary.shift = since.logMean - before;
      summary.logMean = since.logMean;
      summary.logSd = since.logSd;
      summary.weight = since.weight;
      summary.changedAt = at[cut] as number;
    }
    return summary;
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
  /** Stats per deployment, computed once per new sample (a decision reads them, it does not recompute). */
  readonly #cache = new Map<string, { now: number; stats: DeploymentStats | undefined }>();
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
    this.#cache.delete(deployment);
  }

  snapshot(deployment: string, now = this.#now()): DeploymentStats | undefined {
    // Weights count ages from the newest sample, so the stats change only with a new sample
    // (or a clock set before it); the time-based decay between decisions is the policy's.
    const cached = this.#cache.get(deployment);
    if (cached && (cached.stats === undefined || (now >= cached.stats.lastAt && cached.now >= cached.stats.lastAt))) return cached.stats;
    const stats = computeStats(deployment, this.#samples.get(deployment) ?? [], now, this.#options);
    this.#cache.set(deployment, { now, stats });
    return stats;
  }

  deployments(): string[] {
    return [...this.#samples.keys()];
  }

  /** Samples newest last, for stores that persist them. */
  samples(deployment: string): readonly MetricSample[] {
    return this.#samples.get(deployment) ?? [];
  }
}
