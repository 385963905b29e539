/**
 * Choosing a deployment. Price modes rank the candidates that meet the constraints by price.
 * Measured modes use an upper confidence bound over each candidate's estimate, in log space
 * (speeds and times vary by factors, not by amounts):
 *
 * - the estimate blends the published prior (OpenRouter's endpoints listing, or the
 *   simulator's) with the deployment's own decayed window of samples (see metrics.ts: weights
 *   halve every 4 newer samples, and a change detector cuts the window at a shift), each by
 *   its precision: the prior's spread is `priorSpread` and its weight halves every
 *   `priorHalfLifeMs` of age; own samples' spread is their measured one, at least
 *   `noiseFloor`. One own sample outweighs a prior about tenfold;
 * - own evidence fades with the time since its newest sample (halving every
 *   `evidenceHalfLifeMs`), a prior with its age;
 * - the bound is `mean + confidence * sd`; the candidate with the highest bound goes first
 *   (an unknown one, no prior and no samples, at once), the rest follow by their mean;
 * - steady exploration is in proportion to plausibility: every decision, each candidate
 *   behind the best earns re-check credit `exploreRate * P(it beats the best)` (from both
 *   estimates, their variances and `driftSpread`), scaled so the route spends at most
 *   `exploreShare` of its decisions on re-checks (against one other candidate, a close
 *   second is re-checked about every 33 requests, one 4x behind about every 120);
 * - a detected shift for the worse on one candidate puts the others in doubt: each gets extra
 *   variance `(shift / confidence)²`, so they are re-checked in order of their bounds (the
 *   most plausible first) until the best estimate tops the bounds of those left;
 * - the recent error rate discounts the estimate (a deployment failing half the time counts
 *   at half its speed), and the published uptime before any attempt of our own.
 *
 * Candidates rejected by a measured threshold are probed every `recheckRejectedEvery`
 * decisions (in price modes only when cheaper). No randomness: the same history gives the
 * same choice.
 */
import type { Constraint, Metric, Mode } from './grammar.js';
import { blendedPrice } from './candidates.js';
import type { DeploymentStats, Percentiles } from './metrics.js';
import type { Prior } from './priors.js';

export interface RankCandidate {
  /** `model@provider`. */
  key: string;
  provider: string;
  inputPrice?: number | undefined;
  outputPrice?: number | undefined;
  stats?: DeploymentStats | undefined;
  /** Published figures for the deployment, used until (and blended with) own measurements. */
  prior?: Prior | undefined;
}

export interface Rejection<T> {
  candidate: T;
  reason: string;
}

export interface Ranking<T> {
  /** Candidates to try, in order. */
  ordered: T[];
  /** Candidates left out, with the reason. */
  rejected: Rejection<T>[];
  /**
   * Why the first one goes first: `best` (highest estimate), `explore` (highest bound, not
   * the best estimate), `unmeasured` (nothing known), `recheck` (a rejected one probed), or
   * `order` (no mode: the listed order).
   */
  why: 'best' | 'unmeasured' | 'recheck' | 'explore' | 'order';
}

export interface PolicyOptions {
  /** Attempts before a measured threshold judges a candidate by its own figures (default 2). */
  minSamples?: number;
  /** Width of the confidence bound, in spreads (default 2). */
  confidence?: number;
  /** Least spread of a log figure (default 0.1: about 10% from one request to the next). */
  noiseFloor?: number;
  /** How far a fresh published figure may be from what we will measure, in log units (default 0.35: about 40%). */
  priorSpread?: number;
  /** A prior's weight halves with this much age (default 1 hour). */
  priorHalfLifeMs?: number;
  /** A try after this many decisions without one is a re-check: its first sample may stand alone (default 25). */
  forgetAfter?: number;
  /** At most this share of a route's decisions re-check others while nothing changed (default 0.03). */
  exploreShare?: number;
  /** Re-checks per decision of a candidate as likely as not to beat the best (default 0.1), before `exploreShare` caps the sum. */
  exploreRate?: number;
  /** How far a figure may have moved since it was measured, in log units, when judging how plausible a win is (default 1). */
  driftSpread?: number;
  /** Own evidence halves with this much time since its newest sample (default 10 minutes). */
  evidenceHalfLifeMs?: number;
  /** Factor between a re-check's sample and older figures that makes the re-check stand alone (default 2, as the change detector's). */
  changeRatio?: number;
  /** Decisions after which a candidate rejected by a measured threshold is probed again (default 40). */
  recheckRejectedEvery?: number;
  /** A candidate rejected by a measured threshold whose data is older than this is probed (default 10 minutes). */
  staleAfterMs?: number;
}

const MEASURED_MODES = new Set<Mode>(['highest-tks-per-sec', 'lowest-ttft', 'lowest-itl', 'lowest-latency']);
const MEASURED_METRICS = new Set<Metric>(['tps', 'ttft', 'itl', 'latency']);

/** A seeded generator for deterministic routing (tests, benchmarks). */
export { seededRandom } from '../random.js';

/** A candidate's own figures for a measured metric. */
function measuredFigure(c: RankCandidate, metric: Metric): Percentiles | undefined {
  switch (metric) {
    case 'tps':
      return c.stats?.tokensPerSecond;
    case 'ttft':
      return c.stats?.ttftMs;
    case 'itl':
      return c.stats?.itlMs;
    case 'latency':
      return c.stats?.latencyMs;
    default:
      return undefined;
  }
}

/** The published figure for a measured metric (inter-token latency follows from the speed). */
function priorFigure(prior: Prior | undefined, metric: Metric): number | undefined {
  if (!prior) return undefined;
  if (metric === 'tps') return prior.tokensPerSecond;
  if (metric === 'ttft') return prior.ttftMs;
  if (metric === 'itl') return prior.tokensPerSecond ? 1000 / prior.tokensPerSecond : undefined;
  return undefined;
}

/** The figure a metric compares: p50 for measured ones, $/M for prices; undefined when unknown. */
export function metricValue(c: RankCandidate, metric: Metric): number | undefined {
  switch (metric) {
    case 'tps':
    case 'ttft':
    case 'itl':
    case 'latency':
      return measuredFigure(c, metric)?.p50;
    case 'cost':
      return blendedPrice(c);
    case 'input-cost':
      return c.inputPrice;
    case 'output-cost':
      return c.outputPrice;
  }
}

const MODE_METRIC: Record<Mode, Metric> = {
  'lowest-cost': 'cost',
  'lowest-input-cost': 'input-cost',
  'lowest-output-cost': 'output-cost',
  'highest-tks-per-sec': 'tps',
  'lowest-ttft': 'ttft',
  'lowest-itl': 'itl',
  'lowest-latency': 'latency',
};

export function modeMetric(mode: Mode): Metric {
  return MODE_METRIC[mode];
}

function compare(value: number, op: Constraint & { kind: 'threshold' }): boolean {
  switch (op.op) {
    case '<':
      return value < op.value;
    case '<=':
      return value <= op.value;
    case '>':
      return value > op.value;
    case '>=':
      return value >= op.value;
  }
}

interface RouteState {
  decisions: number;
  /** Per candidate key, what the route remembers of it: one lookup per candidate per decision. */
  candidates: Map<string, CandidateState>;
}

interface CandidateState {
  /** The decision it was last tried at (or first seen at). */
  lastTried: number;
  /** Re-check credit: its plausibility of winning, summed over decisions; a re-check is due at 1. */
  credit: number;
  /** Extra variance after a sibling got worse (cleared when it is tried). */
  doubt: number;
  /** The newest shift already acted on (its `changedAt`). */
  shiftSeen: number;
  /** When it was last tried after a long gap. */
  recheck: Recheck | undefined;
}

/**
 * One candidate as a measured mode ranks it: one shape for all, and the same objects reused
 * by every decision (the ranking allocates nothing per candidate).
 */
interface Scored {
  c: RankCandidate | undefined;
  state: CandidateState;
  /** Its place in the listed order (ties keep it). */
  i: number;
  mean: number;
  variance: number;
  bound: number;
  /** Re-check credit earned this decision. */
  rate: number;
}

/** A try after a long gap: when (Unix ms), and whether it is still the only try since. */
interface Recheck {
  at: number;
  only: boolean;
}

export class RoutingPolicy {
  readonly #minSamples: number;
  readonly #confidence: number;
  readonly #noiseFloor: number;
  readonly #priorSpread: number;
  readonly #priorHalfLifeMs: number;
  readonly #forgetAfter: number;
  readonly #exploreShare: number;
  readonly #exploreRate: number;
  readonly #driftSpread: number;
  readonly #evidenceHalfLifeMs: number;
  readonly #recheckRejectedEvery: number;
  readonly #changeRatio: number;
  readonly #staleAfterMs: number;
  readonly #routes = new Map<string, RouteState>();
  /** Scratch for `rank` (synchronous, one at a time): the scored entries and one estimate, reused. */
  readonly #scored: Scored[] = [];
  readonly #estimated = { mean: Number.NaN, precision: Number.NaN };

  constructor(options: PolicyOptions = {}) {
    this.#minSamples = options.minSamples ?? 2;
    this.#confidence = options.confidence ?? 2;
    this.#noiseFloor = options.noiseFloor ?? 0.1;
    this.#priorSpread = options.priorSpread ?? 0.35;
    this.#priorHalfLifeMs = options.priorHalfLifeMs ?? 60 * 60_000;
    this.#forgetAfter = options.forgetAfter ?? 25;
    this.#exploreShare = options.exploreShare ?? 0.03;
    this.#exploreRate = options.exploreRate ?? 0.1;
    this.#driftSpread = options.driftSpread ?? 1;
    this.#evidenceHalfLifeMs = options.evidenceHalfLifeMs ?? 10 * 60_000;
    this.#recheckRejectedEvery = options.recheckRejectedEvery ?? 40;
    this.#changeRatio = options.changeRatio ?? 2;
    this.#staleAfterMs = options.staleAfterMs ?? 10 * 60_000;
  }

  #measured(c: RankCandidate): boolean {
    return (c.stats?.attempts ?? 0) >= this.#minSamples;
  }

  #state(routeKey: string): RouteState {
    let s = this.#routes.get(routeKey);
    if (!s) {
      s = { decisions: 0, candidates: new Map() };
      this.#routes.set(routeKey, s);
    }
    return s;
  }

  /** What a route remembers of a candidate; a candidate first seen counts as tried now (its gap starts). */
  #candidate(state: RouteState, key: string): CandidateState {
    let c = state.candidates.get(key);
    if (!c) {
      c = { lastTried: state.decisions, credit: 0, doubt: 0, shiftSeen: 0, recheck: undefined };
      state.candidates.set(key, c);
    }
    return c;
  }

  /** Whether a candidate passes the thresholds (unknown figures pass); the reason when not. */
  check(c: RankCandidate, constraints: Constraint[]): string | undefined {
    for (const k of constraints) {
      if (k.kind === 'providers' && !k.providers.includes(c.provider)) return `not among providers:${k.providers.join(',')}`;
      if (k.kind === 'skip-providers' && k.providers.includes(c.provider)) return 'in skip_providers';
      if (k.kind !== 'threshold') continue;
      let v: number | undefined;
      if (!MEASURED_METRICS.has(k.metric)) v = metricValue(c, k.metric);
      else if (this.#measured(c)) v = metricValue(c, k.metric);
      else v = priorFigure(c.prior, k.metric);
      if (v === undefined) continue;
      if (!compare(v, k)) return `${k.metric} ${round(v)} fails ${k.metric}${k.op}${k.value}`;
    }
    return undefined;
  }

  /**
   * A candidate's estimate for a measured metric, in log space with higher better: the mean
   * and its precision (1 / variance). Own samples and the published prior are combined by
   * precision: a sample's is `weight / spread²` (spread at least `noiseFloor`), a fresh
   * prior's `1 / priorSpread²`, so one measurement of our own already outweighs the prior
   * about tenfold. Own evidence fades with the time since its newest sample, a prior with
   * its age.
   */
  estimate(c: RankCandidate, metric: Metric, now: number, recheck?: Recheck): { mean: number; precision: number } | undefined {
    const out = { mean: 0, precision: 0 };
    return this.#estimateInto(out, c, metric, now, recheck) ? out : undefined;
  }

  /** `estimate` into `out` (no allocation); false when nothing is known. */
  #estimateInto(out: { mean: number; precision: number }, c: RankCandidate, metric: Metric, now: number, recheck: Recheck | undefined): boolean {
    const sign = metric === 'tps' ? 1 : -1;
    const own = this.#currentFigure(c, metric, recheck);
    const published = priorFigure(c.prior, metric);
    let precision = 0;
    let sum = 0;
    if (own) {
      const lastAt = c.stats?.lastAt ?? now;
      const spread = Math.max(this.#noiseFloor, own.logSd);
      const p = (own.weight / (spread * spread)) * halve(Math.max(0, now - lastAt) / this.#evidenceHalfLifeMs);
      precision += p;
      sum += p * sign * own.logMean;
    }
    if (published !== undefined && published > 0 && c.prior) {
      // Each own sample halves what the prior is worth; its age halves it every priorHalfLifeMs.
      const p = (1 / (this.#priorSpread * this.#priorSpread)) * halve(Math.max(0, now - c.prior.fetchedAt) / this.#priorHalfLifeMs + (own?.count ?? 0));
      precision += p;
      sum += p * sign * Math.log(published);
    }
    if (precision <= 0) return false;
    // The recent error rate discounts (a deployment failing half the time counts at half its
    // speed); before any attempt of our own, the published uptime does.
    const success = c.stats ? 1 - c.stats.errorRate : (c.prior?.uptime ?? 1);
    out.mean = sum / precision + Math.log(Math.max(0.05, success));
    out.precision = precision;
    return true;
  }

  /**
   * The figures to believe. After a re-check that followed a long gap, the window still
   * holds samples from before the gap: when the newest sample disagrees with them (beyond
   * the change ratio) and no shift has been confirmed since, the newest sample stands alone
   * until the next ones confirm or refute it.
   */
  #currentFigure(c: RankCandidate, metric: Metric, recheck: Recheck | undefined): Percentiles | undefined {
    const own = measuredFigure(c, metric);
    const latest = c.stats?.latest;
    // Only the first sample after the re-check stands alone; from the second on the window (and its change detector) decides.
    if (!own || !recheck || !recheck.only || !latest || latest.at < recheck.at || (own.changedAt ?? 0) >= recheck.at) return own;
    const value = metric === 'tps' ? latest.tokensPerSecond : metric === 'ttft' ? latest.ttftMs : metric === 'itl' ? latest.itlMs : latest.latencyMs;
    if (!latest.ok || value === undefined || !(value > 0) || Math.abs(Math.log(value) - own.logMean) <= Math.log(this.#changeRatio)) return own;
    return { p50: value, p90: value, mean: value, count: own.count, logMean: Math.log(value), logSd: 0, weight: 1, changedAt: undefined, shift: undefined };
  }

  /** Order the candidates for one request under `routeKey` (the endpoint's model string). */
  rank<T extends RankCandidate>(routeKey: string, mode: Mode | null, constraints: Constraint[], candidates: T[], now = Date.now()): Ranking<T> {
    const state = this.#state(routeKey);
    state.decisions++;
    const rejected: Rejection<T>[] = [];
    const passing: T[] = [];
    const passingStates: CandidateState[] = [];
    for (const c of candidates) {
      const known = this.#candidate(state, c.key);
      const reason = this.check(c, constraints);
      if (reason === undefined) {
        passing.push(c);
        passingStates.push(known);
      } else rejected.push({ candidate: c, reason });
    }
    if (mode === null) {
      if (passing[0]) this.#tried(state, passing[0].key);
      return { ordered: passing, rejected, why: 'order' };
    }
    const metric = MODE_METRIC[mode];
    const measuredMode = MEASURED_MODES.has(mode);
    let ordered: T[];
    let why: Ranking<T>['why'] = 'best';
    if (measuredMode) {
      this.#doubtAfterShift(metric, passing, passingStates);
      const n = passing.length;
      const scored = this.#scored;
      const e = this.#estimated;
      for (let i = 0; i < n; i++) {
        const c = passing[i] as T;
        const known = passingStates[i] as CandidateState;
        const entry = (scored[i] ??= { c, state: known, i, mean: 0, variance: 0, bound: 0, rate: 0 });
        entry.c = c;
        entry.state = known;
        entry.i = i;
        entry.rate = 0;
        if (this.#estimateInto(e, c, metric, now, known.recheck)) {
          entry.mean = e.mean;
          entry.variance = 1 / e.precision + known.doubt;
          entry.bound = e.mean + this.#confidence * Math.sqrt(entry.variance);
        } else {
          // Nothing known: first, in listed order. Attempted but no figure (every try failed): last.
          entry.mean = entry.bound = this.#measured(c) ? -Infinity : Infinity;
          entry.variance = Infinity;
        }
        // By mean, highest first, ties in listed order (an insertion sort: a handful of candidates).
        let j = i;
        while (j > 0 && (scored[j - 1] as Scored).mean < entry.mean) {
          scored[j] = scored[j - 1] as Scored;
          j--;
        }
        scored[j] = entry;
      }
      let top = 0;
      for (let j = 1; j < n; j++) if ((scored[j] as Scored).bound > (scored[top] as Scored).bound) top = j;
      if (top === 0) top = this.#dueRecheck(scored, n);
      ordered = new Array<T>(n);
      if (n > 0) ordered[0] = (scored[top] as Scored).c as T;
      for (let j = 0, k = 1; j < n; j++) if (j !== top) ordered[k++] = (scored[j] as Scored).c as T;
      const first = scored[top];
      if (first?.mean === Infinity) why = 'unmeasured';
      else if (top > 0) why = 'explore';
      if (first) {
        const gap = state.decisions - first.state.lastTried;
        if (gap >= this.#forgetAfter) first.state.recheck = { at: now, only: true };
        else if (first.state.recheck) first.state.recheck.only = false;
      }
      // The entries are reused by the next decision; they keep no candidate alive meanwhile.
      for (let j = 0; j < n; j++) (scored[j] as Scored).c = undefined;
    } else {
      const scored = passing.map((c, i) => ({ c, i, s: metricValue(c, metric) ?? Number.POSITIVE_INFINITY }));
      scored.sort((a, b) => (a.s === b.s ? a.i - b.i : a.s - b.s));
      ordered = scored.map((x) => x.c);
    }

    // Rejected by a measured figure: probe now and then, in price modes only when cheaper.
    if (rejected.length > 0 && ordered.length + rejected.length > 1) {
      const best = ordered[0];
      const bestPrice = best && !measuredMode ? metricValue(best, metric) : undefined;
      const gap = (c: T) => state.decisions - this.#candidate(state, c.key).lastTried;
      const stale = (c: T) => c.stats !== undefined && now - c.stats.lastAt > this.#staleAfterMs;
      let probe: T | undefined;
      for (const r of rejected) {
        const c = r.candidate;
        if (r.reason.startsWith('not among') || r.reason === 'in skip_providers') continue;
        if (bestPrice !== undefined && (metricValue(c, metric) ?? Infinity) >= bestPrice) continue;
        if ((gap(c) >= this.#recheckRejectedEvery || stale(c)) && (!probe || gap(c) > gap(probe))) probe = c;
      }
      if (probe) {
        ordered.unshift(probe);
        why = 'recheck';
      }
    }
    if (ordered[0]) this.#tried(state, ordered[0].key);
    return { ordered, rejected, why };
  }

  /**
   * A candidate newly found worse (a detected shift for the worse): the others may have
   * changed too. Each gets extra variance `(shift / confidence)²`, which lifts its bound by
   * about the size of the shift: they are re-checked in order of their bounds (the most
   * plausible first) until the best one's estimate tops the bounds of those left.
   */
  #doubtAfterShift(metric: Metric, candidates: RankCandidate[], states: CandidateState[]): void {
    const sign = metric === 'tps' ? 1 : -1;
    for (let i = 0; i < candidates.length; i++) {
      const c = candidates[i] as RankCandidate;
      const known = states[i] as CandidateState;
      const figure = measuredFigure(c, metric);
      const at = figure?.changedAt;
      if (at === undefined || at <= known.shiftSeen) continue;
      known.shiftSeen = at;
      const shift = sign * (figure?.shift ?? 0);
      if (!(shift < 0)) continue;
      const doubt = (shift / this.#confidence) ** 2;
      for (let j = 0; j < candidates.length; j++) {
        const other = states[j] as CandidateState;
        if ((candidates[j] as RankCandidate).key !== c.key) other.doubt = Math.max(doubt, other.doubt);
      }
    }
  }

  /**
   * Steady exploration: each candidate behind the best earns re-check credit every decision,
   * `exploreRate` times its plausibility of winning (the chance that its true figure is above
   * the best's, given both estimates, their variances and `driftSpread`), the whole scaled
   * down to at most `exploreShare` per decision. The candidate whose credit reaches 1 first
   * is re-checked (its credit resets when it is tried). Returns its index in `scored`, or 0.
   */
  #dueRecheck(scored: Scored[], n: number): number {
    const best = scored[0];
    if (!best || n < 2 || !Number.isFinite(best.mean) || this.#exploreShare <= 0) return 0;
    const drift = this.#driftSpread * this.#driftSpread;
    let total = 0;
    for (let j = 1; j < n; j++) {
      const s = scored[j] as (typeof scored)[number];
      s.rate = Number.isFinite(s.mean) ? this.#exploreRate * normalCdf((s.mean - best.mean) / Math.sqrt(s.variance + best.variance + drift)) : 0;
      total += s.rate;
    }
    const scale = total > this.#exploreShare ? this.#exploreShare / total : 1;
    let due = 0;
    let dueCredit = 1;
    for (let j = 1; j < n; j++) {
      const s = scored[j] as (typeof scored)[number];
      const credit = s.state.credit + s.rate * scale;
      s.state.credit = credit;
      if (credit >= dueCredit) {
        due = j;
        dueCredit = credit;
      }
    }
    return due;
  }

  /** Tell the policy a candidate was tried (the router calls this for fallbacks). */
  noteTried(routeKey: string, key: string): void {
    this.#tried(this.#state(routeKey), key);
  }

  #tried(state: RouteState, key: string): void {
    const known = this.#candidate(state, key);
    known.lastTried = state.decisions;
    known.credit = 0;
    known.doubt = 0;
  }
}

/** The standard normal distribution function (Abramowitz and Stegun 7.1.26, error below 1.5e-7). */
function normalCdf(z: number): number {
  const x = Math.abs(z) / Math.SQRT2;
  const t = 1 / (1 + 0.3275911 * x);
  const erf = 1 - ((((1.061405429 * t - 1.453152027) * t + 1.421413741) * t - 0.284496736) * t + 0.254829592) * t * Math.exp(-x * x);
  return z >= 0 ? 0.5 * (1 + erf) : 0.5 * (1 - erf);
}

/** 0.5 to the power `halvings`. */
function halve(halvings: number): number {
  return Math.exp(-Math.LN2 * halvings);
}

function round(n: number): number {
  return Math.round(n * 10) / 10;
}
