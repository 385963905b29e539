/**
 * The gateway's Prometheus metrics (`GET /metrics`, text format 0.0.4). Names follow the
 * OpenTelemetry GenAI semantic conventions where they have one (`gen_ai.server.request.duration`
 * becomes `gen_ai_server_request_duration_seconds`), with their attribute names as labels
 * (`gen_ai_request_model`, `gen_ai_provider_name`, `error_type`); the rest are `switchboard_*`.
 *
 * Our own small registry rather than a client library: one request records about ten values,
 * and a label set here is one string key into a Map, so recording stays well under a microsecond.
 */

import { monitorEventLoopDelay, type IntervalHistogram } from 'node:perf_hooks';

type Labels = Record<string, string>;

function escapeLabel(value: string): string {
  return value.replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/"/g, '\\"');
}

function labelText(names: readonly string[], values: readonly string[]): string {
  if (names.length === 0) return '';
  return names.map((n, i) => `${n}="${escapeLabel(values[i] ?? '')}"`).join(',');
}

abstract class Metric {
  constructor(
    readonly name: string,
    readonly help: string,
    readonly labelNames: readonly string[],
  ) {}
  protected key(labels: Labels): string {
    let k = '';
    for (const n of this.labelNames) k += `${labels[n] ?? ''}\u0000`;
    return k;
  }
  protected values(key: string): string[] {
    return key.split('\u0000').slice(0, this.labelNames.length);
  }
  abstract render(): string;
}

/** One metric's series as plain JSON, to pass between processes: label key -> value or histogram series. */
export type SeriesSnapshot = [key: string, value: number | Series][];
/** Every metric of one process, by name (see GatewayMetrics.snapshot and .add). */
export type MetricsSnapshot = Record<string, SeriesSnapshot>;

/** One counter's value for one label set, kept by whoever records it often. */
export interface CounterCell {
  value: number;
}

export class Counter extends Metric {
  readonly #values = new Map<string, CounterCell>();
  inc(labels: Labels = {}, by = 1): void {
    this.cell(labels).value += by;
  }
  /** The value for one label set, to add to without looking the labels up again. */
  cell(labels: Labels = {}): CounterCell {
    const k = this.key(labels);
    let c = this.#values.get(k);
    if (!c) {
      c = { value: 0 };
      this.#values.set(k, c);
    }
    return c;
  }
  get(labels: Labels = {}): number {
    return this.#values.get(this.key(labels))?.value ?? 0;
  }
  snapshot(): SeriesSnapshot {
    return [...this.#values].map(([k, c]) => [k, c.value]);
  }
  /** Sum another process's series into these (in place: cells held by recorders stay valid). */
  add(series: SeriesSnapshot): void {
    for (const [k, v] of series) {
      if (typeof v !== 'number') continue;
      const c = this.#values.get(k);
      if (c) c.value += v;
      else this.#values.set(k, { value: v });
    }
  }
  render(): string {
    let out = `# HELP ${this.name} ${this.help}\n# TYPE ${this.name} counter\n`;
    for (const [k, c] of this.#values) {
      const l = labelText(this.labelNames, this.values(k));
      out += `${this.name}${l ? `{${l}}` : ''} ${c.value}\n`;
    }
    return out;
  }
}

export class Gauge extends Metric {
  value = 0;
  snapshot(): SeriesSnapshot {
    return [['', this.value]];
  }
  /** A gauge of the whole server is the sum of its processes' (requests in flight). */
  add(series: SeriesSnapshot): void {
    for (const [, v] of series) if (typeof v === 'number') this.value += v;
  }
  render(): string {
    return `# HELP ${this.name} ${this.help}\n# TYPE ${this.name} gauge\n${this.name} ${this.value}\n`;
  }
}

export interface Series {
  counts: number[];
  sum: number;
  count: number;
}

export class Histogram extends Metric {
  readonly #series = new Map<string, Series>();
  constructor(
    name: string,
    help: string,
    labelNames: readonly string[],
    readonly buckets: readonly number[],
  ) {
    super(name, help, labelNames);
  }
  observe(labels: Labels, value: number): void {
    this.observeIn(this.series(labels), value);
  }
  /** The series of one label set, to observe into without looking the labels up again. */
  series(labels: Labels): Series {
    const k = this.key(labels);
    let s = this.#series.get(k);
    if (!s) {
      s = { counts: new Array<number>(this.buckets.length).fill(0), sum: 0, count: 0 };
      this.#series.set(k, s);
    }
    return s;
  }
  observeIn(s: Series, value: number): void {
    const b = this.buckets;
    for (let i = 0; i < b.length; i++) {
      if (value <= (b[i] as number)) {
        s.counts[i] = (s.counts[i] as number) + 1;
        break;
      }
    }
    s.sum += value;
    s.count++;
  }
  count(labels: Labels = {}): number {
    return this.#series.get(this.key(labels))?.count ?? 0;
  }
  snapshot(): SeriesSnapshot {
    return [...this.#series];
  }
  /** Sum another process's series (same buckets) into these: bucket counts, sums and counts add up. */
  add(series: SeriesSnapshot): void {
    for (const [k, v] of series) {
      if (typeof v === 'number' || v.counts.length !== this.buckets.length) continue;
      let s = this.#series.get(k);
      if (!s) {
        s = { counts: new Array<number>(this.buckets.length).fill(0), sum: 0, count: 0 };
        this.#series.set(k, s);
      }
      for (let i = 0; i < s.counts.length; i++) s.counts[i] = (s.counts[i] as number) + (v.counts[i] ?? 0);
      s.sum += v.sum;
      s.count += v.count;
    }
  }
  render(): string {
    let out = `# HELP ${this.name} ${this.help}\n# TYPE ${this.name} histogram\n`;
    for (const [k, s] of this.#series) {
      const l = labelText(this.labelNames, this.values(k));
      const sep = l ? ',' : '';
      let cumulative = 0;
      this.buckets.forEach((le, i) => {
        cumulative += s.counts[i] as number;
        out += `${this.name}_bucket{${l}${sep}le="${le}"} ${cumulative}\n`;
      });
      out += `${this.name}_bucket{${l}${sep}le="+Inf"} ${s.count}\n`;
      out += `${this.name}_sum${l ? `{${l}}` : ''} ${s.sum}\n${this.name}_count${l ? `{${l}}` : ''} ${s.count}\n`;
    }
    return out;
  }
}

/** The process's event-loop delay monitor, started by the first EventLoopLag (one per process). */
let loopMonitor: IntervalHistogram | undefined;

/**
 * How late this process's event loop ran since the last scrape (perf_hooks'
 * monitorEventLoopDelay, sampling every 10 ms): the longest delay and the 99th percentile, under
 * prom-client's names for them. A synchronous stall (a disk sync, a long computation) holds
 * every request in flight for its length, and shows here first. Each read starts a new window.
 * Over several worker processes the server's figure is its worst process's.
 */
export class EventLoopLag extends Metric {
  #others = { max: 0, p99: 0 };
  constructor() {
    super('nodejs_eventloop_lag', 'Event-loop delay since the last scrape.', []);
    if (!loopMonitor) {
      loopMonitor = monitorEventLoopDelay({ resolution: 10 });
      loopMonitor.enable();
    }
  }
  /** Seconds: this process's window (then a new one starts), or the worst with the processes added. */
  #take(): { max: number; p99: number } {
    const m = loopMonitor as IntervalHistogram;
    const own = m.count > 0 ? { max: m.max / 1e9, p99: m.percentile(99) / 1e9 } : { max: 0, p99: 0 };
    m.reset();
    const out = { max: Math.max(own.max, this.#others.max), p99: Math.max(own.p99, this.#others.p99) };
    this.#others = { max: 0, p99: 0 };
    return out;
  }
  snapshot(): SeriesSnapshot {
    const t = this.#take();
    return [['max', t.max], ['p99', t.p99]];
  }
  add(series: SeriesSnapshot): void {
    for (const [k, v] of series) {
      if (typeof v !== 'number' || (k !== 'max' && k !== 'p99')) continue;
      this.#others[k] = Math.max(this.#others[k], v);
    }
  }
  render(): string {
    const t = this.#take();
    return (
      `# HELP ${this.name}_max_seconds The longest event-loop delay since the last scrape.\n# TYPE ${this.name}_max_seconds gauge\n${this.name}_max_seconds ${t.max}\n` +
      `# HELP ${this.name}_p99_seconds The 99th percentile of event-loop delay since the last scrape.\n# TYPE ${this.name}_p99_seconds gauge\n${this.name}_p99_seconds ${t.p99}\n`
    );
  }
}

/** OpenTelemetry's advised buckets for GenAI durations and token counts. */
const DURATION_BUCKETS = [0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92];
const TTFT_BUCKETS = [0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10];
const ITL_BUCKETS = [0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1, 2.5];
const TOKEN_BUCKETS = [1, 4, 16, 64, 256, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304, 16777216, 67108864];
const OVERHEAD_BUCKETS = [0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1];

const MODEL_LABELS = ['gen_ai_operation_name', 'gen_ai_request_model', 'gen_ai_provider_name'] as const;

/** What one finished request tells the metrics. */
export interface RequestObservation {
  protocol: string;
  model: string;
  provider: string;
  /** HTTP status sent (200 for a stream that failed midway: `errorType` says so). */
  status: number;
  /** Error kind (`rate_limit`, `server`, `bad_request`, ...), absent on success. */
  errorType?: string | undefined;
  durationS: number;
  ttftS?: number | undefined;
  itlS?: number | undefined;
  inputTokens?: number | undefined;
  outputTokens?: number | undefined;
  costUsd?: number | null | undefined;
  overheadS: number;
  /** The response cache's answer (absent when the cache does not cover the request). */
  cache?: 'hit' | 'miss' | 'bypass' | undefined;
  /** What caching saved, dollars: a hit's stored price, else a prompt cache's discount (negative: writes cost extra). */
  savedUsd?: number | null | undefined;
}

/** Where one kind of request (protocol, status, model, provider, error) records, found once. */
interface RequestCells {
  labels: Labels;
  byModel: Labels;
  requests?: CounterCell;
  errors?: CounterCell;
  duration?: Series;
  ttft?: Series;
  itl?: Series;
  inputTokens?: Series;
  outputTokens?: Series;
  inputTotal?: CounterCell;
  outputTotal?: CounterCell;
  cost?: CounterCell;
  overhead?: Series;
}

export class GatewayMetrics {
  readonly requests = new Counter('switchboard_requests_total', 'Requests answered, by caller protocol and HTTP status.', ['protocol', 'status']);
  readonly errors = new Counter('switchboard_errors_total', 'Failed requests by error kind.', ['protocol', 'error_type']);
  readonly duration = new Histogram('gen_ai_server_request_duration_seconds', 'Time from receiving a request to its last byte (gen_ai.server.request.duration).', [...MODEL_LABELS, 'error_type'], DURATION_BUCKETS);
  readonly ttft = new Histogram('gen_ai_server_time_to_first_token_seconds', 'Time from receiving a request to its first content token (gen_ai.server.time_to_first_token).', MODEL_LABELS, TTFT_BUCKETS);
  readonly itl = new Histogram('gen_ai_server_time_per_output_token_seconds', 'Mean time between output tokens after the first (gen_ai.server.time_per_output_token).', MODEL_LABELS, ITL_BUCKETS);
  readonly tokens = new Histogram('gen_ai_client_token_usage', 'Tokens per request by type, input or output (gen_ai.client.token.usage).', [...MODEL_LABELS, 'gen_ai_token_type'], TOKEN_BUCKETS);
  readonly tokensTotal = new Counter('switchboard_tokens_total', 'Tokens by model, provider and type.', ['gen_ai_request_model', 'gen_ai_provider_name', 'gen_ai_token_type']);
  readonly cost = new Counter('switchboard_cost_usd_total', 'Cost in US dollars by model and provider (requests of unknown price are not counted).', ['gen_ai_request_model', 'gen_ai_provider_name']);
  readonly overhead = new Histogram('switchboard_gateway_overhead_seconds', 'Time spent in the gateway itself per request, upstream time excluded.', ['protocol'], OVERHEAD_BUCKETS);
  readonly inFlight = new Gauge('switchboard_in_flight_requests', 'Requests being served now.', []);
  readonly rejected = new Counter('switchboard_rejected_total', 'Requests refused before reaching a model, by reason.', ['reason']);
  readonly reloads = new Counter('switchboard_config_reloads_total', 'Configuration reloads by result.', ['result']);
  readonly corsPreflights = new Counter('switchboard_cors_preflights_total', 'Browser CORS preflights answered, by result (allowed, refused).', ['result']);
  readonly cacheRequests = new Counter('switchboard_response_cache_requests_total', 'Model requests the response cache covered, by result (hit, miss, bypass).', ['result']);
  readonly saved = new Counter(
    'switchboard_cache_saved_usd_total',
    'What caching saved in US dollars, by source: response_cache (a hit: what the reply cost when it was made) and prompt_cache (the provider cache discount against the uncached price).',
    ['gen_ai_request_model', 'source'],
  );
  readonly extra = new Counter(
    'switchboard_cache_extra_usd_total',
    'What prompt-cache writes cost beyond the uncached price, in US dollars, on requests where they outweighed the cached reads (net saving = saved - extra).',
    ['gen_ai_request_model', 'source'],
  );
  readonly redisCommands = new Counter('switchboard_redis_commands_total', "Redis commands sent, on a request's path or in the background (the ledger's consumer, routing measurements).", ['path']);
  readonly redisRoundTrips = new Counter('switchboard_redis_round_trips_total', 'Sequential Redis round trips requests waited for (commands in flight together count once; see redis-trace.ts).', []);
  readonly eventLoopLag = new EventLoopLag();

  /** The series one kind of request records into, by protocol, status, model, provider and error. */
  readonly #cells = new Map<string, RequestCells>();
  readonly #cacheCells: Partial<Record<string, CounterCell>> = {};

  observe(o: RequestObservation): void {
    const k = `${o.protocol}\u0000${o.status}\u0000${o.model}\u0000${o.provider}\u0000${o.errorType ?? ''}`;
    let c = this.#cells.get(k);
    if (!c) {
      c = { labels: { gen_ai_operation_name: 'chat', gen_ai_request_model: o.model, gen_ai_provider_name: o.provider }, byModel: { gen_ai_request_model: o.model, gen_ai_provider_name: o.provider } };
      this.#cells.set(k, c);
    }
    // Each series is made the first time it is recorded into, so /metrics lists only what was seen.
    const { labels, byModel } = c;
    (c.requests ??= this.requests.cell({ protocol: o.protocol, status: String(o.status) })).value++;
    if (o.errorType) (c.errors ??= this.errors.cell({ protocol: o.protocol, error_type: o.errorType })).value++;
    this.duration.observeIn((c.duration ??= this.duration.series(o.errorType ? { ...labels, error_type: o.errorType } : labels)), o.durationS);
    if (o.ttftS !== undefined) this.ttft.observeIn((c.ttft ??= this.ttft.series(labels)), o.ttftS);
    if (o.itlS !== undefined) this.itl.observeIn((c.itl ??= this.itl.series(labels)), o.itlS);
    if (o.inputTokens !== undefined) {
      this.tokens.observeIn((c.inputTokens ??= this.tokens.series({ ...labels, gen_ai_token_type: 'input' })), o.inputTokens);
      (c.inputTotal ??= this.tokensTotal.cell({ ...byModel, gen_ai_token_type: 'input' })).value += o.inputTokens;
    }
    if (o.outputTokens !== undefined) {
      this.tokens.observeIn((c.outputTokens ??= this.tokens.series({ ...labels, gen_ai_token_type: 'output' })), o.outputTokens);
      (c.outputTotal ??= this.tokensTotal.cell({ ...byModel, gen_ai_token_type: 'output' })).value += o.outputTokens;
    }
    if (typeof o.costUsd === 'number' && o.costUsd > 0) (c.cost ??= this.cost.cell(byModel)).value += o.costUsd;
    this.overhead.observeIn((c.overhead ??= this.overhead.series({ protocol: o.protocol })), o.overheadS);
    if (o.cache) (this.#cacheCells[o.cache] ??= this.cacheRequests.cell({ result: o.cache })).value++;
    if (typeof o.savedUsd === 'number' && o.savedUsd !== 0) {
      const source = o.cache === 'hit' ? 'response_cache' : 'prompt_cache';
      if (o.savedUsd > 0) this.saved.inc({ gen_ai_request_model: o.model, source }, o.savedUsd);
      else this.extra.inc({ gen_ai_request_model: o.model, source }, -o.savedUsd);
    }
  }

  #all(): (Counter | Gauge | Histogram | EventLoopLag)[] {
    return [this.requests, this.errors, this.duration, this.ttft, this.itl, this.tokens, this.tokensTotal, this.cost, this.overhead, this.inFlight, this.rejected, this.reloads, this.corsPreflights, this.cacheRequests, this.saved, this.extra, this.redisCommands, this.redisRoundTrips, this.eventLoopLag];
  }

  /** This process's series, for a primary process to sum (`serve --workers N`). */
  snapshot(): MetricsSnapshot {
    const out: MetricsSnapshot = {};
    for (const m of this.#all()) out[m.name] = m.snapshot();
    return out;
  }

  /** Add one process's snapshot: counters and histograms sum, as Prometheus sums series. */
  add(snapshot: MetricsSnapshot): void {
    for (const m of this.#all()) {
      const series = snapshot[m.name];
      if (Array.isArray(series)) m.add(series);
    }
  }

  render(): string {
    return this.#all()
      .map((m) => m.render())
      .join('');
  }
}
