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
import { AbortError, SwitchboardError, TimeoutError, redactURL } from '../errors.js';
import type { Endpoint } from '../protocols/protocol.js';
import { CUSTOM_PROVIDER, endpointFor, resolveModel, type Deployment, type ResolveContext } from '../providers/resolve.js';
import { DeferredMetricsStore, openMetricsStore } from '../store/sqlite-metrics.js';
import type { ProtocolEvent } from '../types.js';
import { defaultCandidates, type CandidateSource } from './candidates.js';
import { parseModelString, type Constraint, type EndpointNode, type Mode } from './grammar.js';
import { deploymentKey, MemoryMetricsStore, type MetricsStore } from './metrics.js';
import { NoDeploymentError, type UnavailableCandidate } from './no-deployment-error.js';
import { openRouterPreferences } from './openrouter.js';
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
  /** Which providers serve a model (default: simulator profiles, then the catalog). */
  candidates?: CandidateSource | undefined;
  retry?: RetryOptions | undefined;
  /** Random source for backoff jitter (default Math.random). */
  random?: (() => number) | undefined;
  /** When every candidate is cooling down: wait for the first to come back, or fail at once (default). */
  onUnavailable?: 'wait' | 'fail' | undefined;
  /** Milliseconds the whole routed request may take, retries and waits included. */
  deadlineMs?: number | undefined;
  /**
   * The caller reads each reply whole (`send`, `run`): nothing partial reached anyone, so a
   * failure midway through a reply may still fall back. Streaming callers get the typed error.
   */
  collected?: boolean | undefined;
  /** Milliseconds one attempt may take. */
  attemptTimeoutMs?: number | undefined;
}

/** The routing knobs a Chat or Call passes through (`new Chat(model, { routing: {...} })`). */
export type RoutingOptions = Omit<RouteOptions, keyof ResolveContext | 'signal' | 'collected'>;

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

/** The process-wide metrics store the router uses when none is given. */
export function defaultMetricsStore(env: Record<string, string | undefined> = process.env): MetricsStore {
  if (!sharedMetrics) {
    const kind = env.SWITCHBOARD_METRICS;
    sharedMetrics =
      kind === 'memory' || kind === 'off' || kind === '0' ? new MemoryMetricsStore() : new DeferredMetricsStore(() => openMetricsStore({ env }));
  }
  return sharedMetrics;
}

/** Replace the process-wide defaults (a shared store for a gateway, say). */
export function setRoutingDefaults(defaults: { metrics?: MetricsStore; policy?: RoutingPolicy; breakers?: CircuitBreakers }): void {
  if (defaults.metrics) sharedMetrics = defaults.metrics;
  if (defaults.policy) sharedPolicy = defaults.policy;
  if (defaults.breakers) sharedBreakers = defaults.breakers;
}

const CONTENT = new Set<ProtocolEvent['type']>(['text-delta', 'reasoning-delta', 'tool-call-delta', 'provider-block']);

/** The endpoints of a model string with each one's model filled in. */
function withModels(endpoints: EndpointNode[]): (EndpointNode & { model: string })[] {
  let model = '';
  return endpoints.map((e) => {
    model = e.model ?? model;
    return { ...e, model };
  });
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
function planStage(e: EndpointNode & { model: string }, options: RouteOptions, metrics: MetricsStore, policy: RoutingPolicy): Stage {
  const source = options.candidates ?? defaultCandidates;
  const routeKey = endpointKey(e);
  // A pinned deployment without constraints needs neither candidates nor statistics: the
  // common case (`vendor/model`, `model@provider`) skips both.
  const judged = e.target?.kind === 'mode' || e.constraints.length > 0;
  const known = judged ? source.providersFor(e.model).filter((c) => options.registry.has(c.provider)) : [];
  const plan = (deployment: Deployment, prices?: { inputPrice?: number | undefined; outputPrice?: number | undefined }): Planned => {
    // A custom endpoint is known by its URL too: two servers answering the same model name
    // must not share measurements or a circuit breaker.
    const key = deployment.provider === CUSTOM_PROVIDER && options.baseURL ? `${deploymentKey(deployment)} ${redactURL(options.baseURL)}` : deploymentKey(deployment);
    return { key, provider: deployment.provider, deployment, inputPrice: prices?.inputPrice, outputPrice: prices?.outputPrice, stats: judged ? metrics.snapshot(key) : undefined };
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
  } else {
    const input = e.target ? `${e.model}@${e.target.name}` : e.model;
    let d = resolveModel(input, options);
    const prices = known.find((c) => c.provider === d.provider);
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
}

export async function* route(modelString: string, options: RouteOptions, attempt: AttemptFn): AsyncGenerator<RouteItem> {
  const ast = parseModelString(modelString);
  const endpoints = withModels(ast.endpoints);
  const metrics = options.metrics ?? defaultMetricsStore(options.env);
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

  async function* runAttempt(p: Planned, endpoint: Endpoint): AsyncGenerator<RouteItem, AttemptOutcome> {
    const attemptTimeout = options.attemptTimeoutMs !== undefined && options.attemptTimeoutMs > 0 ? options.attemptTimeoutMs : undefined;
    // Without an attempt timeout the caller's signal is passed on as it is: a controller of its
    // own and a listener per attempt cost about 40 µs a request in the gateway's benchmark.
    const controller = attemptTimeout !== undefined ? new AbortController() : undefined;
    const onStop = (): void => controller?.abort();
    if (controller) signal?.addEventListener('abort', onStop, { once: true });
    let timedOut = false;
    const timer =
      attemptTimeout !== undefined
        ? setTimeout(() => {
            timedOut = true;
            controller?.abort();
          }, attemptTimeout)
        : undefined;
    const at = Date.now();
    const t0 = performance.now();
    let first: number | undefined;
    let last: number | undefined;
    let contentEvents = 0;
    let outputTokens: number | undefined;
    try {
      for await (const events of attempt(p.deployment, endpoint, controller?.signal ?? signal)) {
        const t = performance.now();
        for (const ev of events) {
          if (CONTENT.has(ev.type)) {
            first ??= t;
            last = t;
            contentEvents++;
          } else if (ev.type === 'usage') {
            outputTokens = ev.usage.completionTokens;
          }
        }
        yield { kind: 'events', events };
      }
      const end = performance.now();
      const tokens = outputTokens ?? contentEvents;
      const generating = first === undefined ? 0 : (end - first) / 1000;
      metrics.record(p.key, {
        at,
        ok: true,
        ttftMs: first === undefined ? undefined : first - t0,
        itlMs: first !== undefined && last !== undefined && tokens > 1 ? (last - first) / (tokens - 1) : undefined,
        tokensPerSecond: generating > 0 && tokens > 0 ? tokens / generating : undefined,
        latencyMs: end - t0,
        outputTokens: tokens,
      });
      return { ok: true, emitted: first !== undefined };
    } catch (caught) {
      let error = caught;
      if (timedOut && !signal?.aborted) {
        error = new TimeoutError(`${p.key} did not finish within ${options.attemptTimeoutMs} ms.`);
      } else if (signal?.aborted) {
        error = stopped();
      }
      if (!(error instanceof AbortError) && !(deadlineHit && error instanceof TimeoutError)) {
        metrics.record(p.key, {
          at,
          ok: false,
          errorCode: error instanceof SwitchboardError ? error.code : 'unknown',
          latencyMs: performance.now() - t0,
        });
      }
      return { ok: false, error, emitted: first !== undefined };
    } finally {
      if (timer) clearTimeout(timer);
      signal?.removeEventListener('abort', onStop);
    }
  }

  try {
    if (signal?.aborted) throw stopped();
    let lastError: unknown;
    const unavailable: UnavailableCandidate[] = [];
    for (let round = 0; ; round++) {
      const cooling: { key: string; waitMs: number }[] = [];
      unavailable.length = 0;
      for (let s = 0; s < endpoints.length; s++) {
        const e = endpoints[s] as EndpointNode & { model: string };
        const stage = planStage(e, options, metrics, policy);
        unavailable.push(...stage.rejected);
        for (let i = 0; i < stage.ordered.length; i++) {
          const p = stage.ordered[i] as Planned;
          const lastCandidate = s === endpoints.length - 1 && i === stage.ordered.length - 1;
          if (!breakers.acquire(p.key)) {
            const waitMs = breakers.remainingMs(p.key);
            cooling.push({ key: p.key, waitMs });
            unavailable.push({ deployment: p.key, reason: `cooling down after repeated failures (${Math.ceil(waitMs / 1000)} s left)`, stats: p.stats, inputPrice: p.inputPrice, outputPrice: p.outputPrice });
            continue;
          }
          if (i > 0) policy.noteTried(stage.routeKey, p.key);
          const endpoint = await endpointFor(p.deployment, options);
          for (let retries = 0; ; retries++) {
            yield { kind: 'attempt', deployment: p.deployment, endpoint };
            const outcome = yield* runAttempt(p, endpoint);
            if (outcome.ok) {
              breakers.success(p.key);
              return;
            }
            const error = outcome.error;
            if (error instanceof AbortError || signal?.aborted) {
              breakers.release(p.key);
              throw signal?.aborted ? stopped() : error;
            }
            if (countsAgainstDeployment(error)) breakers.failure(p.key);
            else breakers.release(p.key);
            // After a content token reached the caller, the stream ends with the error.
            if (outcome.emitted && !options.collected) throw error;
            lastError = error;
            const allowed = lastCandidate ? (retry.maxRetries ?? 2) : (retry.retriesBeforeFallback ?? 0);
            if (!isRetryable(error) || retries >= allowed) break;
            const retryAfter = retryAfterOf(error);
            if (retryAfter !== undefined && retryAfter > (retry.maxRetryAfterMs ?? 30_000)) break;
            const delay = backoffDelay(retries, retry, random, retryAfter);
            if (Date.now() + delay >= deadlineAt) break;
            await sleep(delay, signal).catch(() => {
              throw stopped();
            });
            if (!breakers.acquire(p.key)) break;
          }
        }
      }
      if (lastError !== undefined && cooling.length === 0) throw lastError;
      if (cooling.length > 0 && options.onUnavailable === 'wait' && round < 5) {
        const waitMs = Math.max(1, Math.min(...cooling.map((c) => c.waitMs)));
        if (Date.now() + waitMs >= deadlineAt) throw new NoDeploymentError(modelString, unavailable, 'every deployment is cooling down past the deadline');
        await sleep(waitMs, signal).catch(() => {
          throw stopped();
        });
        continue;
      }
      if (lastError !== undefined) throw lastError;
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
  const ast = parseModelString(modelString);
  const source = options.candidates ?? defaultCandidates;
  for (const e of withModels(ast.endpoints)) {
    if (e.target?.kind === 'provider') {
      resolveModel(`${e.model}@${e.target.name}`, options);
    } else if (e.target?.kind === 'mode') {
      if (e.model.startsWith('sim/')) resolveModel(e.model, options);
    } else {
      resolveModel(e.model, options);
    }
    // Provider lists name our registry's providers when we know the model's providers; for
    // models routed through OpenRouter they are OpenRouter's upstream slugs.
    const known = source.providersFor(e.model);
    if (known.length > 0 || e.model.startsWith('sim/')) {
      for (const c of e.constraints) {
        if (c.kind === 'providers' || c.kind === 'skip-providers') for (const name of c.providers) options.registry.get(name);
      }
    }
  }
}
