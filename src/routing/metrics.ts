/**
 * Measurements per deployment (`model@provider`): time to first token, inter-token latency,
 * output tokens per second, whole latency, and errors by code.
 *
 * Stats are robust and recent: each deployment keeps its last `window` samples, and each
 * sample weighs less the older it is (by age in time and by how many samples came after it),
 * so p50/p90 follow a provider that changed speed within a few requests while one outlier
 * moves nothing. A change detector cuts the window at a shift: when the newest samples (at
 * least `changeRun` of them) all lie beyond `changeRatio` (and three spreads) of the older
 * ones' typical value, on the same side, the log estimate counts only the samples since.
 *
 * The window is kept as samples arrive (`SampleWindow`): logs, weights and the order by value
 * are updated on record, so the stats after a new sample are one pass per figure, computed on
 * the first read and kept until the next sample; a decision in between reads them as they are.
 * `MetricsStore` is an interface: in-memory here, SQLite in `store/`, batched writes to a
 * shared store in `store/shared-metrics.ts`.
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

/** The figures a sample may carry, in the order `DeploymentStats` lists them. */
const FIELDS = ['ttftMs', 'itlMs', 'tokensPerSecond', 'latencyMs'] as const;

/** A sample's figure `FIELDS[k]` (one named read per field, not a lookup by name). */
function figure(s: MetricSample, k: number): number | undefined {
  switch (k) {
    case 0:
      return s.ttftMs;
    case 1:
      return s.itlMs;
    case 2:
      return s.tokensPerSecond;
    default:
      return s.latencyMs;
  }
}

/**
 * Scratch space for the stats of one window, reused by every call (they run synchronously
 * and one at a time): allocating typed arrays costs more than the arithmetic on them.
 */
const scratch = { size: 0, logs: new Float64Array(0), cumulative: new Float64Array(0), slots: new Int32Array(0), bySlot: new Float64Array(0) };
function scratchFor(n: number): typeof scratch {
  if (n + 1 > scratch.size) {
    const size = Math.max(n + 1, 2 * scratch.size, 64);
    Object.assign(scratch, { size, logs: new Float64Array(size), cumulative: new Float64Array(size), slots: new Int32Array(size), bySlot: new Float64Array(size) });
  }
  return scratch;
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
  // Sums over the samples before the run: the whole window's, less the run's so far.
  let prefix = 0;
  let squares = 0;
  for (let i = 0; i < n; i++) {
    const l = log[i] as number;
    prefix += l;
    squares += l * l;
  }
  let low = Infinity;
  let high = -Infinity;
  let found = 0;
  // start = index of the first sample of the run; the run is start..n-1.
  for (let start = n - 1; start >= 1; start--) {
    const l = log[start] as number;
    prefix -= l;
    squares -= l * l;
    low = Math.min(low, l);
    high = Math.max(high, l);
    if (n - start < run) continue;
    const before = prefix / start;
    // A noisy deployment needs a larger departure: three of its usual spreads at least
    // (compared squared: no square root per sample).
    const variance = Math.max(0, squares / start - before * before);
    const departure = Math.max(before - high, low - before);
    if (departure > least && departure > 0 && departure * departure > 9 * variance) found = start;
  }
  return found;
}

/** The first index whose cumulative weight reaches `goal` (nearest rank), by bisection. */
function reaching(cumulative: Float64Array, count: number, goal: number): number {
  let lo = 0;
  let hi = count - 1;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if ((cumulative[mid] as number) >= goal - 1e-12) hi = mid;
    else lo = mid + 1;
  }
  return lo;
}

/** The standard deviation of logs from their weighted sums (of weights, logs, and squared logs). */
function logSd(total: number, logSum: number, logSquares: number): number {
  const logMean = logSum / total;
  return Math.sqrt(Math.max(0, logSquares / total - logMean * logMean));
}

/**
 * One deployment's last `window` samples, kept ready for its stats as they arrive, so that
 * reading them does no logarithm, sort or allocation per sample:
 *
 * - each sample's figures and their logs, per field (NaN when it has none, or failed);
 * - each sample's weight counted from the newest sample: a new sample multiplies every other
 *   weight by one factor (one more newer sample, and the newest's advance in time), and only
 *   a read with the clock before the newest sample, or the newest leaving the window (samples
 *   from other instances may arrive out of order), computes them afresh;
 * - per field, the samples in order of value, one insertion per new sample.
 *
 * Stats are then one pass per field, computed on the first read after a new sample and kept
 * until the next (ages count from the newest sample, so the clock alone changes nothing).
 */
class SampleWindow {
  readonly #o: Required<StatsOptions>;
  readonly #capacity: number;
  /** A ring, by slot: the oldest sample is at `#head`. */
  readonly #samples: (MetricSample | undefined)[];
  /** Each sample's time and whether it succeeded, by slot (read without touching the samples). */
  readonly #at: Float64Array;
  readonly #ok: Uint8Array;
  readonly #weights: Float64Array;
  readonly #values: Float64Array[];
  readonly #logs: Float64Array[];
  /** Per field, the slots holding a figure, by value (ascending), and how many. */
  readonly #sorted: Int32Array[];
  readonly #sortedCount: number[];
  #head = 0;
  #count = 0;
  #newest = Number.NEGATIVE_INFINITY;
  /** The stats since the newest sample, and the clock they were computed at. */
  #cached: DeploymentStats | undefined;
  #cachedNow = 0;

  constructor(options: Required<StatsOptions>) {
    this.#o = options;
    this.#capacity = Math.max(1, Math.floor(options.window));
    const slots = (): Float64Array => new Float64Array(this.#capacity);
    this.#samples = new Array<MetricSample | undefined>(this.#capacity);
    this.#at = slots();
    this.#ok = new Uint8Array(this.#capacity);
    this.#weights = slots();
    this.#values = FIELDS.map(slots);
    this.#logs = FIELDS.map(slots);
    this.#sorted = FIELDS.map(() => new Int32Array(this.#capacity));
    this.#sortedCount = FIELDS.map(() => 0);
  }

  #slot(i: number): number {
    const s = this.#head + i;
    return s >= this.#capacity ? s - this.#capacity : s;
  }

  record(sample: MetricSample): void {
    const perNewer = Math.LN2 / this.#o.sampleHalfLife;
    const perMs = Math.LN2 / this.#o.timeHalfLifeMs;
    let reweigh = false;
    if (this.#count === this.#capacity) {
      const oldest = this.#head;
      for (let k = 0; k < FIELDS.length; k++) if (!Number.isNaN(this.#values[k]?.[oldest])) this.#unsort(k, oldest);
      // Ages count from the newest sample: when it leaves, from the next newest.
      if ((this.#at[oldest] as number) >= this.#newest) reweigh = true;
      this.#head = this.#slot(1);
      this.#count--;
    }
    const slot = this.#slot(this.#count);
    this.#samples[slot] = sample;
    this.#at[slot] = sample.at;
    this.#ok[slot] = sample.ok ? 1 : 0;
    for (let k = 0; k < FIELDS.length; k++) {
      const v = sample.ok ? figure(sample, k) : undefined;
      const values = this.#values[k] as Float64Array;
      if (v === undefined || !Number.isFinite(v)) {
        values[slot] = Number.NaN;
        continue;
      }
      values[slot] = v;
      (this.#logs[k] as Float64Array)[slot] = Math.log(Math.max(v, 1e-9));
      this.#sort(k, slot);
    }
    this.#count++;
    this.#cached = undefined;
    if (reweigh) {
      let newest = Number.NEGATIVE_INFINITY;
      for (let i = 0; i < this.#count; i++) newest = Math.max(newest, this.#at[this.#slot(i)] as number);
      // Most often another sample shares its time and nothing changes.
      if (newest < this.#newest) {
        this.#newest = newest;
        this.#weigh(newest, this.#weights);
        return;
      }
    }
    const newest = Math.max(this.#newest, sample.at);
    if (this.#count > 1) {
      const factor = Math.exp(-perNewer - (newest - this.#newest) * perMs);
      for (let i = 0; i < this.#count - 1; i++) {
        const other = this.#slot(i);
        this.#weights[other] = (this.#weights[other] as number) * factor;
      }
    }
    this.#weights[slot] = Math.exp(-(newest - sample.at) * perMs);
    this.#newest = newest;
  }

  /** Every sample's weight with ages counted from `reference`, into `out` by slot. */
  #weigh(reference: number, out: Float64Array): void {
    const perNewer = Math.LN2 / this.#o.sampleHalfLife;
    const perMs = Math.LN2 / this.#o.timeHalfLifeMs;
    for (let i = 0; i < this.#count; i++) {
      const slot = this.#slot(i);
      out[slot] = Math.exp(-(this.#count - 1 - i) * perNewer - Math.max(0, reference - (this.#at[slot] as number)) * perMs);
    }
  }

  #sort(k: number, slot: number): void {
    const sorted = this.#sorted[k] as Int32Array;
    const values = this.#values[k] as Float64Array;
    const v = values[slot] as number;
    let j = this.#sortedCount[k] as number;
    while (j > 0 && (values[sorted[j - 1] as number] as number) > v) {
      sorted[j] = sorted[j - 1] as number;
      j--;
    }
    sorted[j] = slot;
    this.#sortedCount[k] = (this.#sortedCount[k] as number) + 1;
  }

  #unsort(k: number, slot: number): void {
    const sorted = this.#sorted[k] as Int32Array;
    const n = this.#sortedCount[k] as number;
    let j = 0;
    while (j < n && sorted[j] !== slot) j++;
    if (j === n) return;
    for (; j < n - 1; j++) sorted[j] = sorted[j + 1] as number;
    this.#sortedCount[k] = n - 1;
  }

  /** Samples oldest first. */
  samples(): MetricSample[] {
    return Array.from({ length: this.#count }, (_, i) => this.#samples[this.#slot(i)] as MetricSample);
  }

  stats(deployment: string, now: number): DeploymentStats | undefined {
    if (this.#count === 0) return undefined;
    const cached = this.#cached;
    if (cached && now >= cached.lastAt && this.#cachedNow >= cached.lastAt) return cached;
    // Ages count from the newest sample, so figures stay defined however old the data is;
    // how stale the whole set is shows in `lastAt` (the policy re-checks stale deployments).
    let weights = this.#weights;
    if (now < this.#newest) {
      weights = scratchFor(this.#capacity).bySlot;
      this.#weigh(now, weights);
    }
    let failWeight = 0;
    let allWeight = 0;
    let failures = 0;
    const errorsByCode: Record<string, number> = {};
    for (let i = 0; i < this.#count; i++) {
      const slot = this.#slot(i);
      const w = weights[slot] as number;
      allWeight += w;
      if (this.#ok[slot] === 0) {
        failWeight += w;
        failures++;
        const code = (this.#samples[slot] as MetricSample).errorCode ?? 'unknown';
        errorsByCode[code] = (errorsByCode[code] ?? 0) + 1;
      }
    }
    // Every key present (undefined when the window has no such figure): one object shape
    // for all stats, so the code that reads them stays monomorphic.
    const stats: DeploymentStats = {
      deployment,
      attempts: this.#count,
      successes: this.#count - failures,
      failures,
      errorRate: allWeight > 0 ? failWeight / allWeight : 0,
      errorsByCode,
      ttftMs: this.#summary(0, weights),
      itlMs: this.#summary(1, weights),
      tokensPerSecond: this.#summary(2, weights),
      latencyMs: this.#summary(3, weights),
      lastAt: Math.max(0, this.#newest),
      latest: this.#samples[this.#slot(this.#count - 1)] as MetricSample,
    };
    this.#cached = stats;
    this.#cachedNow = now;
    return stats;
  }

  /** One field's percentiles over the window, and its log estimate since any detected shift. */
  #summary(k: number, weights: Float64Array): Percentiles | undefined {
    const count = this.#sortedCount[k] as number;
    if (count === 0) return undefined;
    const values = this.#values[k] as Float64Array;
    const logs = this.#logs[k] as Float64Array;
    const sorted = this.#sorted[k] as Int32Array;
    const { cumulative, logs: chronLogs, slots: chronSlots } = scratchFor(this.#capacity);
    // One pass in order of value: the weighted sums, and the cumulative weight the
    // percentiles are read from.
    let total = 0;
    let sum = 0;
    let logSum = 0;
    let logSquares = 0;
    for (let i = 0; i < count; i++) {
      const slot = sorted[i] as number;
      const w = weights[slot] as number;
      const log = logs[slot] as number;
      total += w;
      sum += (values[slot] as number) * w;
      logSum += log * w;
      logSquares += log * log * w;
      cumulative[i] = total;
    }
    const p50 = values[sorted[reaching(cumulative, count, 0.5 * total)] as number] as number;
    const p90 = values[sorted[reaching(cumulative, count, 0.9 * total)] as number] as number;
    const summary: Percentiles = { p50, p90, mean: sum / total, count, logMean: logSum / total, logSd: logSd(total, logSum, logSquares), weight: total, changedAt: undefined, shift: undefined };
    if (!this.#mayHaveShifted(k)) return summary;
    // The samples with a figure, oldest first, for the change detector.
    const capacity = this.#capacity;
    let n = 0;
    for (let i = 0, slot = this.#head; i < this.#count; i++, slot = slot + 1 === capacity ? 0 : slot + 1) {
      if (Number.isNaN(values[slot])) continue;
      chronLogs[n] = logs[slot] as number;
      chronSlots[n] = slot;
      n++;
    }
    const cut = changePoint(chronLogs, this.#o.changeRun, this.#o.changeRatio, n);
    if (cut > 0) {
      // Percentiles stay those of the whole window (thresholds and reports want a steady
      // figure); the log estimate the policy ranks by follows the shift at once.
      let sinceTotal = 0;
      let sinceLogSum = 0;
      let sinceLogSquares = 0;
      for (let i = cut; i < n; i++) {
        const w = weights[chronSlots[i] as number] as number;
        const log = chronLogs[i] as number;
        sinceTotal += w;
        sinceLogSum += log * w;
        sinceLogSquares += log * log * w;
      }
      summary.logMean = sinceLogSum / sinceTotal;
      summary.logSd = logSd(sinceTotal, sinceLogSum, sinceLogSquares);
      summary.shift = summary.logMean - (logSum - sinceLogSum) / (total - sinceTotal);
      summary.weight = sinceTotal;
      summary.changedAt = this.#at[chronSlots[cut] as number] as number;
    }
    return summary;
  }

  /**
   * Whether the change detector could find a shift in a field, in O(changeRun): a shift
   * needs the newest `changeRun` samples all beyond `changeRatio` of the mean of those
   * before them, so all of them below the window's largest value by that factor, or all
   * above its smallest. A steady window (within 2x from end to end) never runs the detector.
   */
  #mayHaveShifted(k: number): boolean {
    const count = this.#sortedCount[k] as number;
    const run = this.#o.changeRun;
    if (count < run + 1) return false;
    const values = this.#values[k] as Float64Array;
    const logs = this.#logs[k] as Float64Array;
    const sorted = this.#sorted[k] as Int32Array;
    let low = Infinity;
    let high = -Infinity;
    for (let i = this.#count - 1, found = 0; i >= 0 && found < run; i--) {
      const slot = this.#slot(i);
      if (Number.isNaN(values[slot])) continue;
      low = Math.min(low, logs[slot] as number);
      high = Math.max(high, logs[slot] as number);
      found++;
    }
    // A margin for rounding in the detector's means: when in doubt, it runs.
    const least = Math.log(this.#o.changeRatio) - 1e-9;
    return high < (logs[sorted[count - 1] as number] as number) - least || low > (logs[sorted[0] as number] as number) + least;
  }
}

/** Stats from a deployment's samples, newest last. */
export function computeStats(deployment: string, samples: readonly MetricSample[], now: number, options: StatsOptions = {}): DeploymentStats | undefined {
  const o = { ...DEFAULTS, ...options };
  const window = new SampleWindow(o);
  for (let i = Math.max(0, samples.length - o.window); i < samples.length; i++) window.record(samples[i] as MetricSample);
  return window.stats(deployment, now);
}

/** Keeps each deployment's recent samples in memory (the process-local store). */
export class MemoryMetricsStore implements MetricsStore {
  /** Per deployment, its window, which keeps its stats until a new sample (a decision reads them, it does not recompute). */
  readonly #windows = new Map<string, SampleWindow>();
  readonly #options: Required<StatsOptions>;
  readonly #now: () => number;

  constructor(options: StatsOptions & { now?: () => number } = {}) {
    this.#options = { ...DEFAULTS, ...options };
    this.#now = options.now ?? Date.now;
  }

  record(deployment: string, sample: MetricSample): void {
    let window = this.#windows.get(deployment);
    if (!window) {
      window = new SampleWindow(this.#options);
      this.#windows.set(deployment, window);
    }
    window.record(sample);
  }

  snapshot(deployment: string, now = this.#now()): DeploymentStats | undefined {
    return this.#windows.get(deployment)?.stats(deployment, now);
  }

  deployments(): string[] {
    return [...this.#windows.keys()];
  }

  /** The window's samples, newest last, for stores that persist them. */
  samples(deployment: string): readonly MetricSample[] {
    return this.#windows.get(deployment)?.samples() ?? [];
  }
}
