/**
 * Choosing a deployment: a mode ranks the candidates that meet the constraints by measured
 * figures (p50, discounted by the recent error rate) or by price, and a little exploration
 * keeps the figures honest:
 *
 * - a candidate with fewer than `minSamples` attempts is tried first (optimism: an unmeasured
 *   figure passes every threshold);
 * - a candidate not tried for `recheckEvery` decisions (or whose data is older than
 *   `staleAfterMs`) is tried once ahead of the best, so one that fell behind can come back;
 *   candidates rejected by a measured threshold are re-checked every `recheckRejectedEvery`;
 * - in measured modes, with probability `epsilon` another passing candidate goes first.
 *
 * Deterministic given `random` (use `seededRandom` in tests).
 */
import type { Constraint, Metric, Mode } from './grammar.js';
import { blendedPrice } from './candidates.js';
import type { DeploymentStats } from './metrics.js';

export interface RankCandidate {
  /** `model@provider`. */
  key: string;
  provider: string;
  inputPrice?: number | undefined;
  outputPrice?: number | undefined;
  stats?: DeploymentStats | undefined;
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
  /** Why the first one goes first: `best`, `unmeasured`, `recheck` or `explore`. */
  why: 'best' | 'unmeasured' | 'recheck' | 'explore' | 'order';
}

export interface PolicyOptions {
  /** Random source in [0, 1) (default Math.random). */
  random?: () => number;
  /** Share of decisions in measured modes that try another passing candidate (default 0.01). */
  epsilon?: number;
  /** Attempts before a candidate counts as measured (default 2). */
  minSamples?: number;
  /** Decisions after which a candidate not tried is tried again (default 40: fewer re-checks cost less speed, measured with bench:routing). */
  recheckEvery?: number;
  /** Decisions after which a candidate rejected by a measured threshold is probed again (default 100). */
  recheckRejectedEvery?: number;
  /** Data older than this is re-checked (default 10 minutes). */
  staleAfterMs?: number;
}

const MEASURED_MODES = new Set<Mode>(['highest-tks-per-sec', 'lowest-ttft', 'lowest-itl', 'lowest-latency']);
const MEASURED_METRICS = new Set<Metric>(['tps', 'ttft', 'itl', 'latency']);

/** A seeded generator for deterministic routing (tests, benchmarks). */
export { seededRandom } from '../random.js';

/** The figure a metric compares: p50 for measured ones, $/M for prices; undefined when unknown. */
export function metricValue(c: RankCandidate, metric: Metric): number | undefined {
  switch (metric) {
    case 'tps':
      return c.stats?.tokensPerSecond?.p50;
    case 'ttft':
      return c.stats?.ttftMs?.p50;
    case 'itl':
      return c.stats?.itlMs?.p50;
    case 'latency':
      return c.stats?.latencyMs?.p50;
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
  lastTried: Map<string, number>;
}

export class RoutingPolicy {
  readonly #random: () => number;
  readonly #epsilon: number;
  readonly #minSamples: number;
  readonly #recheckEvery: number;
  readonly #recheckRejectedEvery: number;
  readonly #staleAfterMs: number;
  readonly #routes = new Map<string, RouteState>();

  constructor(options: PolicyOptions = {}) {
    this.#random = options.random ?? Math.random;
    this.#epsilon = options.epsilon ?? 0.01;
    this.#minSamples = options.minSamples ?? 2;
    this.#recheckEvery = options.recheckEvery ?? 40;
    this.#recheckRejectedEvery = options.recheckRejectedEvery ?? 100;
    this.#staleAfterMs = options.staleAfterMs ?? 10 * 60_000;
  }

  #measured(c: RankCandidate): boolean {
    return (c.stats?.attempts ?? 0) >= this.#minSamples;
  }

  #state(routeKey: string): RouteState {
    let s = this.#routes.get(routeKey);
    if (!s) {
      s = { decisions: 0, lastTried: new Map() };
      this.#routes.set(routeKey, s);
    }
    return s;
  }

  /** Whether a candidate passes the thresholds (unknown figures pass); the reason when not. */
  check(c: RankCandidate, constraints: Constraint[]): string | undefined {
    for (const k of constraints) {
      if (k.kind === 'providers' && !k.providers.includes(c.provider)) return `not among providers:${k.providers.join(',')}`;
      if (k.kind === 'skip-providers' && k.providers.includes(c.provider)) return 'in skip_providers';
      if (k.kind !== 'threshold') continue;
      if (MEASURED_METRICS.has(k.metric) && !this.#measured(c)) continue;
      const v = metricValue(c, k.metric);
      if (v === undefined) continue;
      if (!compare(v, k)) return `${k.metric} ${round(v)} fails ${k.metric}${k.op}${k.value}`;
    }
    return undefined;
  }

  /** A lower score is better; unmeasured candidates in measured modes score -Infinity. */
  score(c: RankCandidate, mode: Mode): number {
    const metric = MODE_METRIC[mode];
    if (!MEASURED_METRICS.has(metric)) return metricValue(c, metric) ?? Number.POSITIVE_INFINITY;
    if (!this.#measured(c)) return Number.NEGATIVE_INFINITY;
    const v = metricValue(c, metric);
    if (v === undefined) return Number.POSITIVE_INFINITY;
    const success = Math.max(0.05, 1 - (c.stats?.errorRate ?? 0));
    return metric === 'tps' ? -v * success : v / success;
  }

  /** The score of a candidate's newest sample alone (measured modes). */
  latestScore(c: RankCandidate, mode: Mode): number {
    const latest = c.stats?.latest;
    const metric = MODE_METRIC[mode];
    if (!latest) return Number.POSITIVE_INFINITY;
    const v =
      metric === 'tps' ? latest.tokensPerSecond : metric === 'ttft' ? latest.ttftMs : metric === 'itl' ? latest.itlMs : metric === 'latency' ? latest.latencyMs : undefined;
    if (v === undefined) return Number.POSITIVE_INFINITY;
    return metric === 'tps' ? -v : v;
  }

  /** Order the candidates for one request under `routeKey` (the endpoint's model string). */
  rank<T extends RankCandidate>(routeKey: string, mode: Mode | null, constraints: Constraint[], candidates: T[], now = Date.now()): Ranking<T> {
    const state = this.#state(routeKey);
    state.decisions++;
    for (const c of candidates) if (!state.lastTried.has(c.key)) state.lastTried.set(c.key, state.decisions);
    const rejected: Rejection<T>[] = [];
    const passing: T[] = [];
    for (const c of candidates) {
      const reason = this.check(c, constraints);
      if (reason === undefined) passing.push(c);
      else rejected.push({ candidate: c, reason });
    }
    if (mode === null) {
      if (passing[0]) this.noteTried(routeKey, passing[0].key);
      return { ordered: passing, rejected, why: 'order' };
    }
    const scored = passing.map((c, i) => ({ c, i, s: this.score(c, mode) }));
    scored.sort((a, b) => (a.s === b.s ? a.i - b.i : a.s - b.s));
    const ordered = scored.map((x) => x.c);
    let why: Ranking<T>['why'] = ordered[0] && scored[0]?.s === Number.NEGATIVE_INFINITY ? 'unmeasured' : 'best';
    const measuredMode = MEASURED_MODES.has(mode);

    if (why === 'best' && ordered.length + rejected.length > 1) {
      const best = ordered[0];
      const bestPrice = best ? metricValue(best, MODE_METRIC[mode]) : undefined;
      const gap = (c: T) => state.decisions - (state.lastTried.get(c.key) ?? state.decisions);
      const stale = (c: T) => c.stats !== undefined && now - c.stats.lastAt > this.#staleAfterMs;
      // A candidate whose newest sample beats the best's figure is tried again at once, so a
      // provider that got faster wins within a few requests instead of a few re-checks.
      const bestScore = scored[0]?.s ?? Number.POSITIVE_INFINITY;
      const promising = (c: T) => measuredMode && c.stats?.latest.ok === true && this.latestScore(c, mode) < bestScore;
      // Rejected by a measured figure: probe now and then, in price modes only when cheaper.
      const probeable = rejected
        .filter((r) => !r.reason.startsWith('not among') && r.reason !== 'in skip_providers')
        .map((r) => r.candidate)
        .filter((c) => measuredMode || bestPrice === undefined || (metricValue(c, MODE_METRIC[mode]) ?? Infinity) < bestPrice);
      const due = [
        ...ordered.slice(1).filter((c) => measuredMode && (gap(c) >= this.#recheckEvery || stale(c) || (promising(c) && gap(c) >= 1))),
        ...probeable.filter((c) => gap(c) >= this.#recheckRejectedEvery || stale(c)),
      ].sort((a, b) => gap(b) - gap(a));
      const recheck = due[0];
      if (recheck) {
        const at = ordered.indexOf(recheck);
        if (at >= 0) ordered.splice(at, 1);
        ordered.unshift(recheck);
        why = 'recheck';
      } else if (measuredMode && ordered.length > 1 && this.#random() < this.#epsilon) {
        const pick = 1 + Math.floor(this.#random() * (ordered.length - 1));
        const [chosen] = ordered.splice(pick, 1);
        if (chosen) ordered.unshift(chosen);
        why = 'explore';
      }
    }
    if (ordered[0]) this.noteTried(routeKey, ordered[0].key);
    return { ordered, rejected, why };
  }

  /** Tell the policy a candidate was tried (the router calls this for fallbacks). */
  noteTried(routeKey: string, key: string): void {
    const state = this.#state(routeKey);
    state.lastTried.set(key, state.decisions);
  }
}

function round(n: number): number {
  return Math.round(n * 10) / 10;
}
