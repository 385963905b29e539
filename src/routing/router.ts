/**
 * The router: a model string to the deployment(s) that answer it, one attempt after another.
 *
 * It yields an `attempt` item each time it starts talking to a deployment, then that
 * attempt's event batches. A consumer that sees a new `attempt` item discards whatever the
 * previous attempt had produced (the router only moves on before anything reached the caller).
 *
 * Around each attempt: a circuit breaker per deployment, retries with backoff for failures
 * that may pass, fallback to the next candidate while no content token went out, a per-attempt
 * timeout and one overall deadline. Every attempt is measured into the metrics store.
 */
import { AbortError, APIError, MissingKeyError, SwitchboardError, TimeoutError, redactURL } from '../errors.js';
import type { Endpoint } from '../protocols/protocol.js';
import { CUSTOM_PROVIDER, endpointFor, resolveModel, type Deployment, type ResolveContext } from '../providers/resolve.js';
import { switchboardHome } from '../paths.js';
import { DeferredMetricsStore, openMetricsStore } from '../store/sqlite-metrics.js';
import type { ProtocolEvent, ProviderTiming } from '../types.js';
import { warnOnce } from '../catalog/cost.js';
import { defaultCandidates, type Candidate, type CandidateSource } from './candidates.js';
import { sharedModelString, type Constraint, type EndpointNode, type Mode, type ModelStringAST } from './grammar.js';
import { deploymentKey, MemoryMetricsStore, type MetricSample, type MetricsStore } from './metrics.js';
import { NoDeploymentError, type UnavailableCandidate } from './no-deployment-error.js';
import { openRouterPreferences } from './openrouter.js';
import { ensureSimulatorPriors, listingFor, priorIn, PriorStore } from './priors.js';
import { RoutingPolicy, type RankCandidate } from './policy.js';
import {
  backoffDelay,
  CircuitBreakers,
  countsAgainstDeployment,
  isRetryable,
  retryAfterOf,
  sleep,
  type RetryOptions,
} from './retry.js';

export type RouteItem =
  | { kind: 'attempt'; deployment: Deployment; endpoint: Endpoint }
  | { kind: 'events'; events: ProtocolEvent[] };

/** Sends one request to one deployment and yields its event batches. */
export type AttemptFn = (
  deployment: Deployment,
  endpoint: Endpoint,
  signal: AbortSignal | undefined,
) => AsyncIterable<ProtocolEvent[]>;

export interface RouteOptions extends ResolveContext {
  signal?: AbortSignal | undefined;
  /** Where attempts are measured (default: `$SWITCHBOARD_HOME/metrics.db`, or memory with SWITCHBOARD_METRICS=memory). */
  metrics?: MetricsStore | undefined;
  /** Chooses among candidates (default: one policy per process). */
  policy?: RoutingPolicy | undefined;
  /** Circuit breakers per deployment (default: one set per process). */
  breakers?: CircuitBreakers | undefined;
  /** Which providers serve a model (default: model groups of the registry, then simulator profiles, then the catalog). */
  candidates?: CandidateSource | undefined;
  /** Published figures used before (and with) measurements (default: one store per process, cached in `$SWITCHBOARD_HOME/cache/priors.json`). */
  priors?: PriorStore | undefined;
  retry?: RetryOptions | undefined;
  /** Random source for backoff jitter (default Math.random). */
  random?: (() => number) | undefined;
  /**
   * When every candidate is cooling down: `try` the one coming back first anyway (default: a
   * breaker must not cut off the only way a request has), `wait` for it, or `fail` at once.
   */
  onUnavailable?: 'try' | 'wait' | 'fail' | undefined;
  /** Milliseconds the whole routed request may take, retries and waits included. */
  deadlineMs?: number | undefined;
  /**
   * The caller reads each reply whole (`send`, `run`): nothing partial reached anyone, so a
   * failure midway through a reply may still fall back. Streaming callers get the typed error.
   */
  collected?: boolean | undefined;
  /** Milliseconds one attempt may take. */
  attemptTimeoutMs?: number | undefined;
  /**
   * The caller's own time limit for one request (the `timeout` option), applied by the
   * transport. Like `attemptTimeoutMs`, a timeout it causes counts as the provider's failure
   * only when it is longer than the deployment's measured p90 latency.
   */
  timeoutMs?: number | undefined;
  /** Endpoints already worked out, by deployment: for a caller whose configuration is fixed (see endpointFor). */
  endpoints?: Map<string, Endpoint> | undefined;
}

/** The routing knobs a Chat or Call passes through (`new Chat(model, { routing: {...} })`). */
export type RoutingOptions = Omit<RouteOptions, keyof ResolveContext | 'signal' | 'collected' | 'timeoutMs' | 'endpoints'>;

interface Planned extends RankCandidate {
  deployment: Deployment;
}

interface Stage {
  routeKey: string;
  ordered: Planned[];
  rejected: UnavailableCandidate[];
}

let sharedPolicy: RoutingPolicy | undefined;
let sharedBreakers: CircuitBreakers | undefined;
let sharedMetrics: MetricsStore | undefined;
let sharedPriors: PriorStore | undefined;
/** Default stores by the folder they live in: two homes in one process keep their own files. */
const metricsByHome = new Map<string, MetricsStore>();
const priorsByHome = new Map<string, PriorStore>();

const STORAGE_VARIABLES = ['SWITCHBOARD_HOME', 'XDG_DATA_HOME', 'HOME', 'SWITCHBOARD_METRICS'] as const;

/**
 * Where routing keeps its files: the variables that choose a folder, from `env` when it sets
 * them, else from the process. An `env` option given for keys and base URLs does not move
 * the files away from the process's `SWITCHBOARD_HOME`.
 */
function storageEnv(env: Record<string, string | undefined>): Record<string, string | undefined> {
  const out: Record<string, string | undefined> = {};
  for (const name of STORAGE_VARIABLES) out[name] = env[name] !== undefined && env[name] !== '' ? env[name] : process.env[name];
  return out;
}

/**
 * The store kept for the folder `env` points at, made by `make` the first time: given the
 * storage variables, or null when routing keeps nothing on disk (SWITCHBOARD_METRICS=memory).
 */
function storeForHome<T>(stores: Map<string, T>, env: Record<string, string | undefined>, make: (storage: Record<string, string | undefined> | null) => T): T {
  const storage = storageEnv(env);
  const kind = storage.SWITCHBOARD_METRICS;
  const memory = kind === 'memory' || kind === 'off' || kind === '0';
  const home = memory ? ':memory:' : switchboardHome(storage);
  let store = stores.get(home);
  if (store === undefined) {
    store = make(memory ? null : storage);
    stores.set(home, store);
  }
  return store;
}

/** The process-wide metrics store the router uses when none is given (one per home folder). */
export function defaultMetricsStore(env: Record<string, string | undefined> = process.env): MetricsStore {
  return sharedMetrics ?? storeForHome(metricsByHome, env, (storage) => (storage ? new DeferredMetricsStore(() => openMetricsStore({ env: storage })) : new MemoryMetricsStore()));
}

/** The process-wide prior store (one per home folder; memory only with SWITCHBOARD_METRICS=memory). */
export function defaultPriorStore(env: Record<string, string | undefined> = process.env): PriorStore {
  return sharedPriors ?? storeForHome(priorsByHome, env, (storage) => new PriorStore(storage ? { env: storage } : { path: null }));
}

/** The process-wide metrics, policy and breakers the router uses when none is given (the console shows them). */
export function routingDefaults(): { metrics: MetricsStore; policy: RoutingPolicy; breakers: CircuitBreakers } {
  return { metrics: defaultMetricsStore(), policy: (sharedPolicy ??= new RoutingPolicy()), breakers: (sharedBreakers ??= new CircuitBreakers()) };
}

/** Replace the process-wide defaults (a shared store for a gateway, say). */
export function setRoutingDefaults(defaults: { metrics?: MetricsStore; policy?: RoutingPolicy; breakers?: CircuitBreakers; priors?: PriorStore }): void {
  if (defaults.metrics) sharedMetrics = defaults.metrics;
  if (defaults.policy) sharedPolicy = defaults.policy;
  if (defaults.breakers) sharedBreakers = defaults.breakers;
  if (defaults.priors) sharedPriors = defaults.priors;
}

const CONTENT = new Set<ProtocolEvent['type']>(['text-delta', 'reasoning-delta', 'tool-call-delta', 'provider-block']);

const filledIn = new WeakMap<ModelStringAST, readonly (EndpointNode & { model: string })[]>();

/** The endpoints of a model string with each one's model filled in (kept with the shared AST). */
function withModels(ast: ModelStringAST): readonly (EndpointNode & { model: string })[] {
  let endpoints = filledIn.get(ast);
  if (endpoints === undefined) {
    let model = '';
    endpoints = ast.endpoints.map((e) => {
      model = e.model ?? model;
      return { ...e, model };
    });
    filledIn.set(ast, endpoints);
  }
  return endpoints;
}

function endpointKey(e: EndpointNode & { model: string }): string {
  const t = e.target ? (e.target.kind === 'mode' ? e.target.mode : e.target.name) : '';
  return `${e.model}@${t}`;
}

function withExtraBody(d: Deployment, extra: Record<string, unknown> | undefined): Deployment {
  if (!extra) return d;
  return { ...d, extraBody: { ...d.extraBody, ...extra } };
}

/** The candidates one endpoint of the chain stands for, ranked. */
function planStage(e: EndpointNode & { model: string }, options: RouteOptions, metrics: MetricsStore, policy: RoutingPolicy, priors: PriorStore): Stage {
  const source = options.candidates ?? defaultCandidates;
  const routeKey = endpointKey(e);
  // A pinned deployment without constraints needs neither candidates nor statistics: the
  // common case (`vendor/model`, `model@provider`) skips both.
  const judged = e.target?.kind === 'mode' || e.constraints.length > 0;
  const group = options.registry.group(e.model);
  const members: Candidate[] = group ?? (judged ? source.providersFor(e.model) : []);
  const known = judged ? members.filter((c) => options.registry.has(c.provider)) : [];
  const listing = judged && e.target?.kind === 'mode' ? listingFor(priors, e.model, members) : undefined;
  const plan = (deployment: Deployment, prices?: { inputPrice?: number | undefined; outputPrice?: number | undefined }): Planned => {
    // A custom endpoint is known by its URL too: two servers answering the same model name
    // must not share measurements or a circuit breaker.
    const key = deployment.provider === CUSTOM_PROVIDER && options.baseURL ? `${deploymentKey(deployment)} ${redactURL(options.baseURL)}` : deploymentKey(deployment);
    const prior = priorIn(listing, deployment.provider);
    return { key, provider: deployment.provider, deployment, inputPrice: prices?.inputPrice, outputPrice: prices?.outputPrice, stats: judged ? metrics.snapshot(key) : undefined, prior };
  };
  let mode: Mode | null = null;
  let constraints: Constraint[] = e.constraints;
  let planned: Planned[];
  if (e.target?.kind === 'mode') {
    mode = e.target.mode;
    if (known.length > 0) {
      planned = known.map((c) => plan(withExtraBody({ model: e.model, provider: c.provider, providerModel: c.providerModel }, c.extraBody), c));
    } else if (!e.model.startsWith('sim/') && options.registry.has('openrouter')) {
      // Nobody here knows this model's providers: OpenRouter's provider routing chooses.
      const prefs = openRouterPreferences(mode, constraints);
      const d = withExtraBody({ model: e.model, provider: 'openrouter', providerModel: e.model }, prefs ? { provider: prefs } : undefined);
      planned = [plan(d)];
      mode = null;
      constraints = constraints.filter((c) => c.kind === 'threshold');
    } else {
      planned = [];
    }
  } else if (group && !e.target) {
    // A model group named alone: its members in the listed order, each a fallback for the one before.
    planned = group.filter((c) => options.registry.has(c.provider)).map((c) => plan({ model: e.model, provider: c.provider, providerModel: c.providerModel }, c));
  } else {
    const input = e.target ? `${e.model}@${e.target.name}` : e.model;
    let d = resolveModel(input, options);
    // Pinned to a deployment the catalog calls retired: sent as asked (the catalog may be
    // behind), with a warning; modes leave such deployments out.
    if (!group && source.retired?.(e.model, d.provider, d.providerModel)) {
      warnOnce(`retired:${d.provider}:${d.providerModel}`, `the catalog marks ${e.model} at ${d.provider} as retired; sending it as pinned. \`switchboard models ${e.model}\` lists who still serves it.`);
    }
    const member = group?.find((c) => c.provider === d.provider);
    if (member) d = { ...d, providerModel: member.providerModel };
    const prices = known.find((c) => c.provider === d.provider) ?? member;
    if (d.provider === 'openrouter' && constraints.length > 0) {
      const prefs = openRouterPreferences(null, constraints);
      d = withExtraBody(d, prefs ? { provider: prefs } : undefined);
      constraints = constraints.filter((c) => c.kind === 'threshold');
    }
    planned = [plan(d, prices)];
  }
  const ranking = policy.rank(routeKey, mode, constraints, planned);
  return {
    routeKey,
    ordered: ranking.ordered,
    rejected: ranking.rejected.map((r) => ({ deployment: r.candidate.key, reason: r.reason, stats: r.candidate.stats, inputPrice: r.candidate.inputPrice, outputPrice: r.candidate.outputPrice })),
  };
}

interface AttemptOutcome {
  ok: boolean;
  error?: unknown;
  /** A content token reached the caller. */
  emitted: boolean;
  /** The failure says nothing about the deployment (the caller's own short time limit). */
  callersFault?: boolean;
}

/** What identifies a failure as the same one again: an HTTP error's status and message; undefined for timeouts and cut connections. */
function failureSignature(error: unknown): string | undefined {
  return error instanceof APIError ? `${error.status} ${error.message}` : undefined;
}

/** What one successful attempt measured, for the metrics store. */
export function measure(m: {
  at: number;
  t0: number;
  end: number;
  first: number | undefined;
  last: number | undefined;
  contentReads: number;
  /** Content events in all, and in the first read that carried any. */
  contentEvents: number;
  firstReadEvents: number;
  tokens: number;
  reported: ProviderTiming | undefined;
}): MetricSample {
  const { t0, end, first, last, tokens } = m;
  // Tokens that came in the first read were generated before it arrived, at no time we
  // know: the speed counts only the tokens after it, over the time after it. A reply that
  // arrived in one read has no such window and is measured from the request, so a short
  // reply cannot report a near-infinite speed.
  let measuredTps: number | undefined;
  if (first !== undefined && m.contentReads > 1 && end > first) {
    const after = tokens * ((m.contentEvents - m.firstReadEvents) / m.contentEvents);
    measuredTps = after > 0 ? after / ((end - first) / 1000) : undefined;
  } else if (end > t0 && tokens > 0) {
    measuredTps = tokens / ((end - t0) / 1000);
  }
  return {
    at: m.at,
    ok: true,
    ttftMs: first === undefined ? undefined : first - t0,
    itlMs: m.reported?.tokensPerSecond ? 1000 / m.reported.tokensPerSecond : first !== undefined && last !== undefined && tokens > 1 && m.contentReads > 1 ? (last - first) / (tokens - 1) : undefined,
    // The provider's own timing when it reports one (llama.cpp's `timings`).
    tokensPerSecond: m.reported?.tokensPerSecond ?? measuredTps,
    latencyMs: end - t0,
    outputTokens: tokens,
  };
}

/**
 * One attempt's clock and counts, and with an attempt timeout its own controller (without one
 * the caller's signal is passed on as it is: a controller and a listener per attempt cost about
 * 40 µs a request in the gateway's benchmark).
 */
class AttemptClock {
  readonly at = Date.now();
  readonly t0 = performance.now();
  first: number | undefined;
  last: number | undefined;
  timedOut = false;
  readonly signal: AbortSignal | undefined;
  #contentEvents = 0;
  #contentReads = 0;
  #firstReadEvents = 0;
  #outputTokens: number | undefined;
  #reported: ProviderTiming | undefined;
  readonly #outer: AbortSignal | undefined;
  readonly #timer: NodeJS.Timeout | undefined;
  readonly #onStop: (() => void) | undefined;

  constructor(
    readonly timeoutMs: number | undefined,
    outer: AbortSignal | undefined,
  ) {
    this.#outer = outer;
    if (timeoutMs === undefined) {
      this.signal = outer;
      return;
    }
    const controller = new AbortController();
    this.signal = controller.signal;
    this.#onStop = () => controller.abort();
    outer?.addEventListener('abort', this.#onStop, { once: true });
    this.#timer = setTimeout(() => {
      this.timedOut = true;
      controller.abort();
    }, timeoutMs);
  }

  /** One batch of the reply arrived. */
  note(events: readonly ProtocolEvent[]): void {
    const t = performance.now();
    let content = false;
    for (const ev of events) {
      if (CONTENT.has(ev.type)) {
        this.first ??= t;
        this.last = t;
        this.#contentEvents++;
        content = true;
      } else if (ev.type === 'usage') {
        this.#outputTokens = ev.usage.completionTokens;
        this.#reported = ev.timing ?? this.#reported;
      }
    }
    if (content && ++this.#contentReads === 1) this.#firstReadEvents = this.#contentEvents;
  }

  /** What the finished attempt measured. */
  sample(): MetricSample {
    const contentEvents = this.#contentEvents;
    return measure({ at: this.at, t0: this.t0, end: performance.now(), first: this.first, last: this.last, contentReads: this.#contentReads, contentEvents, firstReadEvents: this.#firstReadEvents, tokens: this.#outputTokens ?? contentEvents, reported: this.#reported });
  }

  stop(): void {
    if (this.#timer) clearTimeout(this.#timer);
    if (this.#onStop) this.#outer?.removeEventListener('abort', this.#onStop);
  }
}

export async function* route(modelString: string, options: RouteOptions, attempt: AttemptFn): AsyncGenerator<RouteItem> {
  const ast = sharedModelString(modelString);
  const endpoints = withModels(ast);
  const metrics = options.metrics ?? defaultMetricsStore(options.env);
  const priors = options.priors ?? defaultPriorStore(options.env);
  const policy = options.policy ?? (sharedPolicy ??= new RoutingPolicy());
  const breakers = options.breakers ?? (sharedBreakers ??= new CircuitBreakers());
  const retry = options.retry ?? {};
  const random = options.random ?? Math.random;

  // One signal for everything: the caller's, plus the overall deadline. Controllers and
  // signals exist only when something can abort (creating them is not free in Node: it showed
  // in the per-call profile); without them an abandoned attempt is still cancelled by the
  // transport, which cancels the response body when its consumer stops.
  let deadlineHit = false;
  const deadlineController = options.deadlineMs !== undefined && options.deadlineMs > 0 ? new AbortController() : undefined;
  const deadlineTimer = deadlineController
    ? setTimeout(() => {
        deadlineHit = true;
        deadlineController.abort();
      }, options.deadlineMs)
    : undefined;
  const deadlineAt = options.deadlineMs !== undefined ? Date.now() + options.deadlineMs : Number.POSITIVE_INFINITY;
  const signal = combineSignals(options.signal, deadlineController?.signal);
  const stopped = (): Error => (deadlineHit ? new TimeoutError(`${modelString}: no reply within the deadline of ${options.deadlineMs} ms.`) : new AbortError());

  /** Deployments that already failed this request once. */
  const failedHere = new Set<string>();
  /** One token for this request, so a breaker counts its repeated failures once. */
  const requestToken = {};

  /** The start of one attempt: its clock, counts and (with an attempt timeout) its own controller. */
  function startAttempt(): AttemptClock {
    const attemptTimeout = options.attemptTimeoutMs !== undefined && options.attemptTimeoutMs > 0 ? options.attemptTimeoutMs : undefined;
    return new AttemptClock(attemptTimeout, signal);
  }

  /** A finished attempt measured into the metrics store. */
  function succeeded(p: Planned, clock: AttemptClock): AttemptOutcome {
    metrics.record(p.key, clock.sample());
    return { ok: true, emitted: clock.first !== undefined };
  }

  /** A failed attempt: its error as the caller should see it, measured unless it says nothing about the deployment. */
  function failed(p: Planned, clock: AttemptClock, caught: unknown): AttemptOutcome {
    let error = caught;
    const callerLimit = clock.timedOut && !signal?.aborted ? clock.timeoutMs : error instanceof TimeoutError ? options.timeoutMs : undefined;
    if (clock.timedOut && !signal?.aborted) {
      error = new TimeoutError(`${p.key} did not finish within ${options.attemptTimeoutMs} ms.`);
    } else if (signal?.aborted) {
      error = stopped();
    }
    // A time limit the caller chose is the provider's failure only when the provider
    // usually answers well within it (longer than its measured p90 latency).
    const p90 = p.stats?.latencyMs?.p90;
    const callersFault = callerLimit !== undefined && error instanceof TimeoutError && !(p90 !== undefined && callerLimit > p90);
    // Retries of one request that fail again say nothing new about the deployment.
    const repeat = failedHere.has(p.key);
    failedHere.add(p.key);
    if (!(error instanceof AbortError) && !(deadlineHit && error instanceof TimeoutError) && !callersFault && !repeat) {
      metrics.record(p.key, {
        at: clock.at,
        ok: false,
        errorCode: error instanceof SwitchboardError ? error.code : 'unknown',
        latencyMs: performance.now() - clock.t0,
      });
    }
    return { ok: false, error, emitted: clock.first !== undefined, callersFault };
  }

  async function* runAttempt(p: Planned, endpoint: Endpoint): AsyncGenerator<RouteItem, AttemptOutcome> {
    const clock = startAttempt();
    try {
      for await (const events of attempt(p.deployment, endpoint, clock.signal)) {
        clock.note(events);
        yield { kind: 'events', events };
      }
      return succeeded(p, clock);
    } catch (caught) {
      return failed(p, clock, caught);
    } finally {
      clock.stop();
    }
  }

  let lastError: unknown;
  /** The first candidate skipped for want of a key: what to set, should nothing else answer. */
  let missingKey: MissingKeyError | undefined;

  /**
   * Attempts at one deployment, with retries: `done` when it answered, `next` to move on.
   * `forced` runs a deployment whose breaker is open because nothing else is left.
   */
  /** The deployment's endpoint, or `next` when it lacks a key and a later candidate may not. */
  async function endpointOrNext(p: Planned, lastCandidate: boolean): Promise<Endpoint | 'next'> {
    try {
      return await endpointFor(p.deployment, options, options.endpoints);
    } catch (error) {
      // The breaker's permission was not used: give it back whatever the error.
      breakers.release(p.key);
      // No key for this one: the next candidate may not need one. The last one throws the
      // error that says which variable to set (unless an earlier attempt failed otherwise).
      if (!(error instanceof MissingKeyError)) throw error;
      missingKey ??= error;
      if (lastCandidate) throw missingKey;
      return 'next';
    }
  }

  /** `first`: the deployment's first attempt, already run (at its endpoint) by the lone-candidate path below. */
  async function* tryDeployment(
    p: Planned,
    lastCandidate: boolean,
    forced: boolean,
    first?: { endpoint: Endpoint; outcome: AttemptOutcome },
  ): AsyncGenerator<RouteItem, 'done' | 'next'> {
    const endpoint = first?.endpoint ?? (await endpointOrNext(p, lastCandidate));
    if (endpoint === 'next') return 'next';
    let firstFailure: string | undefined;
    for (let retries = 0; ; retries++) {
      let outcome: AttemptOutcome;
      if (retries === 0 && first) outcome = first.outcome;
      else {
        yield { kind: 'attempt', deployment: p.deployment, endpoint };
        outcome = yield* runAttempt(p, endpoint);
      }
      if (outcome.ok) {
        breakers.success(p.key);
        return 'done';
      }
      const error = outcome.error;
      if (error instanceof AbortError || signal?.aborted) {
        breakers.release(p.key);
        throw signal?.aborted ? stopped() : error;
      }
      if (countsAgainstDeployment(error) && !outcome.callersFault) {
        breakers.failure(p.key, requestToken);
        // The same answer again on the retry: the request, not the server, is the cause.
        const signature = failureSignature(error);
        if (retries > 0 && signature !== undefined && signature === firstFailure) breakers.forgive(p.key, requestToken);
        firstFailure ??= signature;
      } else breakers.release(p.key);
      // After a content token reached the caller, the stream ends with the error.
      if (outcome.emitted && !options.collected) throw error;
      lastError = error;
      const allowed = lastCandidate ? (retry.maxRetries ?? 2) : (retry.retriesBeforeFallback ?? 0);
      if (!isRetryable(error) || retries >= allowed) return 'next';
      const retryAfter = retryAfterOf(error);
      if (retryAfter !== undefined && retryAfter > (retry.maxRetryAfterMs ?? 30_000)) return 'next';
      const delay = backoffDelay(retries, retry, random, retryAfter);
      if (Date.now() + delay >= deadlineAt) return 'next';
      await sleep(delay, signal).catch(() => {
        throw stopped();
      });
      if (forced) breakers.forceAcquire(p.key);
      else if (!breakers.acquire(p.key)) return 'next';
    }
  }

  try {
    if (signal?.aborted) throw stopped();
    const unavailable: UnavailableCandidate[] = [];
    for (let round = 0; ; round++) {
      const cooling: { planned: Planned; routeKey: string; waitMs: number }[] = [];
      let attempted = false;
      unavailable.length = 0;
      for (let s = 0; s < endpoints.length; s++) {
        const e = endpoints[s] as EndpointNode & { model: string };
        if (e.target?.kind === 'mode') await ensureSimulatorPriors(priors, e.model, options.env);
        const stage = planStage(e, options, metrics, policy, priors);
        unavailable.push(...stage.rejected);
        for (let i = 0; i < stage.ordered.length; i++) {
          const p = stage.ordered[i] as Planned;
          const lastCandidate = s === endpoints.length - 1 && i === stage.ordered.length - 1;
          if (!breakers.acquire(p.key)) {
            const waitMs = breakers.remainingMs(p.key);
            cooling.push({ planned: p, routeKey: stage.routeKey, waitMs });
            unavailable.push({ deployment: p.key, reason: `cooling down after repeated failures (${Math.ceil(waitMs / 1000)} s left)`, stats: p.stats, inputPrice: p.inputPrice, outputPrice: p.outputPrice });
            continue;
          }
          if (i > 0) policy.noteTried(stage.routeKey, p.key);
          attempted = true;
          if (endpoints.length === 1 && stage.ordered.length === 1) {
            // The only candidate (a pinned deployment, the common case): its first attempt runs
            // here, as runAttempt runs it, rather than two generators down (every batch of a
            // reply pays for each generator level it passes); a failure goes on to
            // tryDeployment's retries.
            const endpoint = await endpointOrNext(p, true);
            if (endpoint === 'next') continue;
            yield { kind: 'attempt', deployment: p.deployment, endpoint };
            const clock = startAttempt();
            let first: AttemptOutcome;
            try {
              for await (const events of attempt(p.deployment, endpoint, clock.signal)) {
                clock.note(events);
                yield { kind: 'events', events };
              }
              first = succeeded(p, clock);
            } catch (caught) {
              first = failed(p, clock, caught);
            } finally {
              clock.stop();
            }
            if (first.ok) {
              breakers.success(p.key);
              return;
            }
            if ((yield* tryDeployment(p, true, false, { endpoint, outcome: first })) === 'done') return;
            continue;
          }
          if ((yield* tryDeployment(p, lastCandidate, false)) === 'done') return;
        }
      }
      if (lastError !== undefined && cooling.length === 0) throw lastError;
      // Every deployment left is cooling down: a breaker steers traffic elsewhere, and there
      // is nowhere else, so the one coming back first is tried anyway (unless told otherwise).
      const soonest = cooling.reduce<(typeof cooling)[number] | undefined>((a, c) => (a === undefined || c.waitMs < a.waitMs ? c : a), undefined);
      if (soonest && !attempted && (options.onUnavailable ?? 'try') === 'try') {
        breakers.forceAcquire(soonest.planned.key);
        policy.noteTried(soonest.routeKey, soonest.planned.key);
        if ((yield* tryDeployment(soonest.planned, true, true)) === 'done') return;
        throw lastError;
      }
      if (cooling.length > 0 && options.onUnavailable === 'wait' && round < 5) {
        const waitMs = Math.max(1, Math.min(...cooling.map((c) => c.waitMs)));
        if (Date.now() + waitMs >= deadlineAt) throw new NoDeploymentError(modelString, unavailable, 'every deployment is cooling down past the deadline');
        await sleep(waitMs, signal).catch(() => {
          throw stopped();
        });
        continue;
      }
      if (lastError !== undefined) throw lastError;
      if (missingKey && cooling.length === 0) throw missingKey;
      throw new NoDeploymentError(
        modelString,
        unavailable,
        cooling.length > 0 ? 'every deployment is cooling down after repeated failures' : 'no deployment meets the constraints',
      );
    }
  } finally {
    if (deadlineTimer) clearTimeout(deadlineTimer);
  }
}

/** The one signal that fires when any given one does; undefined when none is given. */
function combineSignals(...signals: (AbortSignal | undefined)[]): AbortSignal | undefined {
  const present = signals.filter((s): s is AbortSignal => s !== undefined);
  if (present.length <= 1) return present[0];
  return AbortSignal.any(present);
}

/** Check a model string without sending anything; throws a typed error that says what is wrong. */
export function checkModelString(modelString: string, options: ResolveContext & { candidates?: CandidateSource | undefined }): void {
  const ast = sharedModelString(modelString);
  const source = options.candidates ?? defaultCandidates;
  for (const e of withModels(ast)) {
    const group = options.registry.group(e.model);
    if (e.target?.kind === 'provider') {
      resolveModel(`${e.model}@${e.target.name}`, options);
    } else if (e.target?.kind === 'mode') {
      if (e.model.startsWith('sim/')) resolveModel(e.model, options);
    } else if (!group) {
      resolveModel(e.model, options);
    }
    // Provider lists name our registry's providers when we know the model's providers; for
    // models routed through OpenRouter they are OpenRouter's upstream slugs.
    const known = group ?? source.providersFor(e.model);
    if (known.length > 0 || e.model.startsWith('sim/')) {
      for (const c of e.constraints) {
        if (c.kind === 'providers' || c.kind === 'skip-providers') for (const name of c.providers) options.registry.get(name);
      }
    }
  }
}
