/**
 * The admin endpoints the console needs beside keys and teams, usable by scripts too:
 *
 *   GET /admin/whoami                         who the credential is (any key)
 *   GET /admin/models?q=                      models to pick, with price, context and modalities (any key; its allowed models)
 *   GET /admin/spend?by=&bucket=&since=&until=&tz=   totals, a time series and budget burn-down (a key: its own)
 *   GET /admin/logs?q=&model=&provider=&key=&status=&since=&until=&limit=   the request and chat log (a key: its own)
 *   GET /admin/logs/{id}                      one entry with its turns
 *   GET /admin/routing                        per deployment: measurements, breaker, each mode's pick (admin)
 *
 * Answers `undefined` for any other path, so the keys admin API (admin-api.ts) can answer it.
 */
import { defaultCatalog } from '../catalog/catalog.js';
import { defaultCandidates } from '../routing/candidates.js';
import { MODES, type Mode } from '../routing/grammar.js';
import { computeStats, deploymentKey, type MetricSample } from '../routing/metrics.js';
import { RoutingPolicy, modeMetric } from '../routing/policy.js';
import { routingDefaults } from '../routing/router.js';
import { FEMTO_PER_MICRO, type Ledger, type LedgerUsageRow } from '../store/ledger.js';
import { periodWindow } from '../store/periods.js';
import { RequestLogQuery } from '../store/request-log-query.js';
import type { AdminRequest, AdminResponse } from './admin-api.js';
import { modelAllowed, type Principal } from './admission.js';
import type { GatewayConfig } from './config.js';
import { apiPathParts } from './http.js';
import { formatFemto, usageView } from './key-input.js';
import { listedModels } from './models.js';

export type ConsoleApi = (req: AdminRequest) => Promise<AdminResponse | undefined>;

export interface ConsoleApiOptions {
  /** The config in force (it can be reloaded). */
  config: () => GatewayConfig;
  /** The conversation log's file, when requests are logged. */
  logPath?: string | undefined;
  /** The spend ledger, when virtual keys are on. */
  ledger?: Ledger | undefined;
  /** The budgets' time zone. */
  timeZone?: string | undefined;
  now?: () => number;
}

const fail = (status: number, type: string, message: string): AdminResponse => ({ status, body: { error: { message, type } } });
const bad = (message: string): AdminResponse => fail(400, 'invalid_request_error', message);

/** The key a non-admin principal may see the data of (undefined: everything). */
function ownKey(p: Principal): string | undefined {
  if (p.admin) return undefined;
  return p.keyId ?? p.kind;
}

function timeParam(query: URLSearchParams, name: string): number | undefined | AdminResponse {
  const raw = query.get(name);
  if (raw === null || raw === '') return undefined;
  const ms = Date.parse(raw);
  return Number.isNaN(ms) ? bad(`${name} takes a date like 2026-12-01 or an ISO time; got "${raw}".`) : ms;
}

function validTimeZone(tz: string): boolean {
  try {
    new Intl.DateTimeFormat('en', { timeZone: tz });
    return true;
  } catch {
    return false;
  }
}

export function createConsoleApi(options: ConsoleApiOptions): ConsoleApi {
  const now = options.now ?? Date.now;
  const logs = options.logPath ? new RequestLogQuery(options.logPath) : undefined;
  const budgetZone = options.timeZone ?? 'UTC';

  const whoami = (p: Principal): AdminResponse => ({
    status: 200,
    body: { kind: p.kind, key_id: p.keyId ?? null, team: p.teamId ?? null, admin: p.admin, models: p.allowedModels ?? null, spend: options.ledger !== undefined, logs: logs !== undefined },
  });

  const models = (req: AdminRequest): AdminResponse => {
    const q = (req.query.get('q') ?? '').trim().toLowerCase();
    const catalog = defaultCatalog();
    const out: Record<string, unknown>[] = [];
    const seen = new Set<string>();
    const add = (id: string, source: string): void => {
      if (seen.has(id) || !modelAllowed(req.principal, id)) return;
      seen.add(id);
      const m = catalog.get(id);
      out.push({
        id,
        source,
        name: m?.name ?? id,
        input_price: m?.pricing?.input ?? null,
        output_price: m?.pricing?.output ?? null,
        context_length: m?.contextLength ?? null,
        input_modalities: m?.modalities?.input ?? ['text'],
        providers: m?.providers.map((p) => p.provider) ?? [],
      });
    };
    for (const m of listedModels(options.config())) if (q === '' || m.id.toLowerCase().includes(q)) add(m.id, 'gateway');
    if (q !== '') {
      for (const m of catalog.all()) {
        if (out.length >= 50) break;
        if (m.id.toLowerCase().includes(q) || m.name.toLowerCase().includes(q)) add(m.id, 'catalog');
      }
    }
    return { status: 200, body: { data: out } };
  };

  const spend = async (req: AdminRequest): Promise<AdminResponse> => {
    const ledger = options.ledger;
    if (!ledger) return fail(404, 'not_found', 'Spend comes from the ledger, which is kept while virtual keys are on (a master key in the config or SWITCHBOARD_MASTER_KEY).');
    const by = req.query.get('by') ?? 'model';
    if (!['model', 'provider', 'key', 'team'].includes(by)) return bad(`by takes model, provider, key or team; got "${by}".`);
    const bucket = req.query.get('bucket') ?? 'day';
    if (bucket !== 'day' && bucket !== 'hour') return bad(`bucket takes day or hour; got "${bucket}".`);
    const tz = req.query.get('tz') ?? budgetZone;
    if (!validTimeZone(tz)) return bad(`tz takes an IANA time zone like Europe/Paris; got "${tz}".`);
    const since = timeParam(req.query, 'since');
    const until = timeParam(req.query, 'until');
    if (typeof since === 'object') return since;
    if (typeof until === 'object') return until;
    const keyId = ownKey(req.principal);
    const scope = { ...(since === undefined ? {} : { sinceMs: since }), ...(until === undefined ? {} : { untilMs: until }), ...(keyId === undefined ? {} : { keyId }) };
    const group = by as 'model' | 'provider' | 'key' | 'team';
    const totals = await ledger.usage({ by: group, timeZone: tz, ...scope });
    const series = await ledger.usageSeries({ by: group, bucket, timeZone: tz, ...scope });
    const all = totals.reduce<LedgerUsageRow>(
      (a, r) => ({ ...a, requests: a.requests + r.requests, promptTokens: a.promptTokens + r.promptTokens, completionTokens: a.completionTokens + r.completionTokens, costFemto: a.costFemto + r.costFemto, unpriced: a.unpriced + r.unpriced, savedFemto: a.savedFemto + r.savedFemto }),
      { key: 'total', requests: 0, promptTokens: 0, completionTokens: 0, costFemto: 0n, unpriced: 0, savedFemto: 0n },
    );
    return {
      status: 200,
      body: {
        by,
        bucket,
        time_zone: tz,
        data: totals.map((r) => usageView(by, r)),
        total: usageView(by, all),
        series: series.map((r) => ({ bucket: r.bucket, ...usageView(by, r) })),
        budgets: await burnDown(ledger, bucket, tz, keyId),
      },
    };
  };

  /** Each budgeted key and team: its limit and what was left after each bucket of its current period. */
  const burnDown = async (ledger: Ledger, bucket: 'hour' | 'day', tz: string, keyId: string | undefined): Promise<Record<string, unknown>[]> => {
    const at = now();
    const keys = (await ledger.listKeys()).filter((k) => k.budget && k.revokedAt === undefined && (keyId === undefined || k.id === keyId));
    const teams = keyId === undefined ? (await ledger.listTeams()).filter((t) => t.budget) : [];
    const scopes = [
      ...keys.map((k) => ({ scope: 'key' as const, id: k.id, name: k.name, budget: k.budget! })),
      ...teams.map((t) => ({ scope: 'team' as const, id: t.id, name: t.id, budget: t.budget! })),
    ];
    const out: Record<string, unknown>[] = [];
    for (const s of scopes) {
      const window = periodWindow(s.budget.period, at, budgetZone);
      const rows = await ledger.usageSeries({ by: s.scope, bucket, timeZone: tz, sinceMs: window.startMs, ...(s.scope === 'key' ? { keyId: s.id } : {}) });
      let left = BigInt(s.budget.limitMicros) * FEMTO_PER_MICRO;
      const points = rows
        .filter((r) => r.key === s.id)
        .map((r) => {
          left -= r.costFemto;
          return { bucket: r.bucket, remaining: formatFemto(left < 0n ? 0n : left) };
        });
      out.push({ scope: s.scope, id: s.id, name: s.name, limit: formatFemto(BigInt(s.budget.limitMicros) * FEMTO_PER_MICRO), period: s.budget.period, period_start: new Date(window.startMs).toISOString(), points });
    }
    return out;
  };

  const logList = (req: AdminRequest): AdminResponse => {
    if (!logs) return fail(404, 'not_found', 'The request log is off (logging.requests: false in the gateway config).');
    const q = req.query;
    const status = q.get('status') ?? undefined;
    if (status !== undefined && status !== '' && status !== 'ok' && status !== 'error') return bad(`status takes ok or error; got "${status}".`);
    const limit = q.get('limit') === null ? undefined : Number(q.get('limit'));
    if (limit !== undefined && !(Number.isInteger(limit) && limit > 0)) return bad(`limit takes a whole number above 0; got "${q.get('limit')}".`);
    const since = timeParam(q, 'since');
    const until = timeParam(q, 'until');
    if (typeof since === 'object') return since;
    if (typeof until === 'object') return until;
    const own = ownKey(req.principal);
    const data = logs.search({
      q: q.get('q') ?? undefined,
      model: q.get('model') || undefined,
      provider: q.get('provider') || undefined,
      key: own ?? (q.get('key') || undefined),
      status: (status || undefined) as 'ok' | 'error' | undefined,
      since: since === undefined ? undefined : new Date(since).toISOString(),
      until: until === undefined ? undefined : new Date(until).toISOString(),
      limit,
    });
    return { status: 200, body: { data } };
  };

  const logShow = (req: AdminRequest, id: string): AdminResponse => {
    const found = logs?.show(id, ownKey(req.principal));
    return found ? { status: 200, body: { ...found.entry, turns: found.turns } } : fail(404, 'not_found', `No log entry "${id}".`);
  };

  return async (req) => {
    if (req.method !== 'GET') return undefined;
    const parts = apiPathParts(req.path);
    if (!parts) return undefined;
    const [resource, id, extra] = parts;
    if (extra !== undefined) return undefined;
    if (resource === 'whoami' && id === undefined) return whoami(req.principal);
    if (resource === 'models' && id === undefined) return models(req);
    if (resource === 'spend' && id === undefined) return spend(req);
    if (resource === 'logs') return id === undefined ? logList(req) : logShow(req, id);
    if (resource === 'routing' && id === undefined) {
      if (!req.principal.admin) return fail(403, 'permission_error', 'Routing measurements take the master key or a key with the admin role.');
      return { status: 200, body: routingView(options.config(), now()) };
    }
    return undefined;
  };
}

/** Why a mode puts a deployment first, in words. */
function reasonFor(mode: Mode, first: { inputPrice?: number | undefined; outputPrice?: number | undefined; stats?: { tokensPerSecond?: { p50: number }; ttftMs?: { p50: number }; itlMs?: { p50: number }; latencyMs?: { p50: number } } | undefined }, measured: boolean): string {
  const metric = modeMetric(mode);
  const money = (n: number | undefined): string => (n === undefined ? 'unknown' : `$${n}/M`);
  if (metric === 'cost') return `lowest blended price (3 input : 1 output): ${money(first.inputPrice)} in, ${money(first.outputPrice)} out`;
  if (metric === 'input-cost') return `lowest input price: ${money(first.inputPrice)}`;
  if (metric === 'output-cost') return `lowest output price: ${money(first.outputPrice)}`;
  if (!measured) return 'not measured yet: it is tried first to get figures';
  const s = first.stats;
  const p50 = metric === 'tps' ? s?.tokensPerSecond?.p50 : metric === 'ttft' ? s?.ttftMs?.p50 : metric === 'itl' ? s?.itlMs?.p50 : s?.latencyMs?.p50;
  const unit = metric === 'tps' ? 'tokens/s' : 'ms';
  return `${metric === 'tps' ? 'highest' : 'lowest'} recent ${metric} p50 ${p50 === undefined ? '?' : Math.round(p50)} ${unit}, weighed by its success rate`;
}

function routingView(config: GatewayConfig, at: number): Record<string, unknown> {
  const { metrics, breakers } = routingDefaults();
  // A policy of its own, so looking does not count as a routing decision.
  const policy = new RoutingPolicy();
  const models = listedModels(config).filter((m) => defaultCandidates.providersFor(m.id).length > 0);
  return {
    at: new Date(at).toISOString(),
    models: models.map((m) => {
      const candidates = defaultCandidates.providersFor(m.id).map((c) => {
        const key = deploymentKey({ model: m.id, provider: c.provider });
        const stats = metrics.snapshot(key, at);
        const samples = (metrics as { samples?: (k: string) => readonly MetricSample[] }).samples?.(key) ?? [];
        return { key, provider: c.provider, inputPrice: c.inputPrice, outputPrice: c.outputPrice, stats, samples, breaker: breakers.state(key), retryInMs: breakers.remainingMs(key) };
      });
      const usable = candidates.filter((c) => c.breaker !== 'open');
      const picks = MODES.map((mode) => {
        const ranking = policy.rank(`${m.id}@${mode}`, mode, [], usable, at);
        const first = ranking.ordered[0];
        return { mode, deployment: first?.key ?? null, why: first ? reasonFor(mode, first, (first.stats?.attempts ?? 0) >= 2) : 'every deployment is cooling down' };
      });
      return {
        model: m.id,
        deployments: candidates.map((c) => ({
          deployment: c.key,
          provider: c.provider,
          input_price: c.inputPrice ?? null,
          output_price: c.outputPrice ?? null,
          breaker: c.breaker,
          retry_in_ms: c.retryInMs,
          attempts: c.stats?.attempts ?? 0,
          error_rate: c.stats?.errorRate ?? null,
          ttft_p50_ms: c.stats?.ttftMs?.p50 ?? null,
          tokens_per_second_p50: c.stats?.tokensPerSecond?.p50 ?? null,
          // Each sample with the error rate of the samples up to it, for charts over time.
          samples: c.samples.map((s, i) => ({
            at: s.at,
            ok: s.ok,
            ttft_ms: s.ttftMs ?? null,
            tokens_per_second: s.tokensPerSecond ?? null,
            error_rate: computeStats(c.key, c.samples.slice(0, i + 1), s.at)?.errorRate ?? null,
          })),
        })),
        picks,
      };
    }),
  };
}
