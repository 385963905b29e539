/**
 * Budgets and rate limits for virtual keys, their teams and the whole install: the gateway's
 * Admission (the gateway itself checks a key's allowed models before it gets here).
 *
 * admit(): one atomic reserve of the worst
 * case across the key's, its team's and the install's scopes (budgets, requests and tokens
 * per minute); its reservation row reaches the ledger if the request is still running after
 * `reservationWriteDelayMs`, else with its outcome. settle(): the exact cost (the caller's, which
 * is the provider's reported cost when there was one, else the catalog's price of the usage)
 * replaces the reservation in the shared state and the ledger; a failure with no usage
 * releases it, a stream that failed midway is charged what it used.
 *
 * When a store fails, `onStoreError` decides: `closed` refuses with 503 and sends nothing
 * upstream; `open` serves the request and writes its spend once the store answers again.
 */
import { randomUUID } from 'node:crypto';
import { tokenUpperBound } from '../catalog/context.js';
import { computeCostFemto, priceFor } from '../catalog/cost.js';
import type { Budget, KeyRecord, Ledger, Limits, ReservationRow, SpendOutcome, TeamRecord } from '../store/ledger.js';
import { FEMTO_PER_MICRO, femtoToMicrosCeil } from '../store/ledger.js';
import { formatDollars } from '../money.js';
import { periodWindow } from '../store/periods.js';
import type { Refusal, ScopeLimits, ScopeRef, ScopeState, SettleInput, SharedState, SpendJournal, WindowState } from '../store/shared-state.js';
import { untracedRedis } from '../store/redis-trace.js';
import { systemClock, type Clock } from '../store/shared-state.js';
import { AdmissionError, type Admission, type AdmissionRequest, type SettleOutcome, type Ticket } from './admission.js';
import { keyRecordOf } from './virtual-keys.js';
import { worstCase, type WorstCase } from './worst-case.js';

export type StoreErrorMode = 'closed' | 'open';

export interface BudgetAdmissionOptions {
  ledger: Ledger;
  state: SharedState;
  clock?: Clock;
  /** IANA zone whose calendar day and month budgets reset on (default UTC). */
  timeZone?: string;
  /** Output cap for requests that set no max tokens (default 4096). */
  defaultMaxTokens?: number;
  /** A budget over every request (the `total` scope). */
  totalBudget?: Budget;
  onStoreError?: StoreErrorMode;
  /**
   * A model with no known price under a budget: `refuse` (default, 403) or `free` (held and
   * charged at $0, for self-hosted models; rate limits still apply).
   */
  unpricedModels?: 'refuse' | 'free';
  /**
   * How long a request runs before its reservation is written to the ledger (default 200 ms).
   * A request that ends sooner is written once, reservation and outcome in one commit; a longer
   * one is durable from then on, so a restart after a crash holds it again until it expires.
   */
  reservationWriteDelayMs?: number;
  /** Where store failures are reported (never with a credential in them). */
  log?: (line: string) => void;
  /**
   * The ledger's spend queue, when it is a stream on the shared state's own Redis: a settlement
   * is then one script that settles and appends the ledger's entry (the ledger itself).
   */
  journal?: SpendJournal;
}

export interface AdmissionHealth {
  store: 'ok' | 'error';
  mode: StoreErrorMode;
  /** Spend rows waiting for the store to come back (open mode). */
  queued: number;
  lastError?: string;
}

const DEFAULT_MAX_TOKENS = 4096;
const DEFAULT_WRITE_DELAY_MS = 200;

/** The worst case of a request that no budget or token limit looks at. */
const NO_LIMITS: WorstCase = { promptTokens: 0, outputCap: 0, costFemto: 0n };

/** One scope a request draws on, with its budget's period when it has one. */
interface Drawn {
  limits: ScopeLimits;
  period?: Budget & { startMs: number };
}

/** `12.345678` from integer micro-dollars, without going through a float. */
export function formatMicros(micros: number): string {
  return micros === 0 ? '0.000000' : formatDollars(BigInt(micros) * FEMTO_PER_MICRO, 6).replace('$', '');
}

/** OpenAI's reset format: `20ms`, `6s`, `1m30s`. */
export function formatReset(ms: number): string {
  if (ms < 1000) return `${Math.max(0, Math.ceil(ms))}ms`;
  const s = Math.ceil(ms / 1000);
  return s < 60 ? `${s}s` : `${Math.floor(s / 60)}m${s % 60}s`;
}

function tightest(windows: (WindowState | undefined)[]): WindowState | undefined {
  let best: WindowState | undefined;
  for (const w of windows) if (w && (!best || w.remaining < best.remaining)) best = w;
  return best;
}

/** The x-ratelimit-* and x-switchboard-budget-remaining headers for the tightest scope of each kind. */
export function limitHeaders(scopes: ScopeState[]): Record<string, string> {
  const h: Record<string, string> = {};
  const requests = tightest(scopes.map((s) => s.requests));
  if (requests) {
    h['x-ratelimit-limit-requests'] = String(requests.limit);
    h['x-ratelimit-remaining-requests'] = String(requests.remaining);
    h['x-ratelimit-reset-requests'] = formatReset(requests.resetMs);
  }
  const tokens = tightest(scopes.map((s) => s.tokens));
  if (tokens) {
    h['x-ratelimit-limit-tokens'] = String(tokens.limit);
    h['x-ratelimit-remaining-tokens'] = String(tokens.remaining);
    h['x-ratelimit-reset-tokens'] = formatReset(tokens.resetMs);
  }
  const budgets = scopes.map((s) => s.budgetRemainingMicros).filter((b): b is number => b !== undefined);
  if (budgets.length > 0) h['x-switchboard-budget-remaining'] = formatMicros(Math.min(...budgets));
  return h;
}

function scopeLabel(scope: string, key: KeyRecord | undefined): string {
  if (scope === 'total') return "the gateway's total";
  if (scope.startsWith('team:')) return `team "${scope.slice(5)}"'s`;
  return `key "${key?.name ?? scope.slice(4)}"'s`;
}

const PER: Record<Budget['period'], string> = { day: ' a day', month: ' a month', total: '' };

export class BudgetAdmission implements Admission {
  private readonly ledger: Ledger;
  private readonly state: SharedState;
  private readonly clock: Clock;
  private readonly timeZone: string;
  private readonly defaultMaxTokens: number;
  private readonly totalBudget: Budget | undefined;
  private readonly mode: StoreErrorMode;
  private readonly unpricedModels: 'refuse' | 'free';
  private readonly writeDelayMs: number;
  private readonly log: (line: string) => void;
  private readonly journal: SpendJournal | undefined;
  /** Whether a one-script settlement failed already (said once; the writes then go apart). */
  private journalFailed = false;
  /** Budget counters rebuilt from the ledger in this process, per scope and period. */
  private readonly seeded = new Map<string, Promise<void>>();
  /** A rebuild after the shared state lost its data, shared by the requests that noticed it. */
  private recovering: Promise<void> | undefined;
  /** Writes that failed in open mode, replayed in order once the store answers. */
  private readonly queue: (() => Promise<void>)[] = [];
  /** The replay of the queue under way: one at a time, so no write is replayed twice or skipped. */
  private flushing: Promise<void> | undefined;
  private lastError: string | undefined;

  private constructor(options: BudgetAdmissionOptions) {
    this.ledger = options.ledger;
    this.state = options.state;
    this.clock = options.clock ?? systemClock;
    this.timeZone = options.timeZone ?? 'UTC';
    this.defaultMaxTokens = options.defaultMaxTokens ?? DEFAULT_MAX_TOKENS;
    this.totalBudget = options.totalBudget;
    this.mode = options.onStoreError ?? 'closed';
    this.unpricedModels = options.unpricedModels ?? 'refuse';
    this.writeDelayMs = options.reservationWriteDelayMs ?? DEFAULT_WRITE_DELAY_MS;
    this.log = options.log ?? ((line) => process.stderr.write(`switchboard: ${line}\n`));
    this.journal = options.journal;
  }

  /**
   * An admission over these stores, after recovery: reservations a killed process left in
   * the ledger are held again until they expire, and those already past expiry are closed.
   */
  static async open(options: BudgetAdmissionOptions): Promise<BudgetAdmission> {
    const admission = new BudgetAdmission(options);
    const now = await admission.state.now();
    await admission.ledger.expireReservations(now);
    for (const r of await admission.ledger.pendingReservations(now)) {
      await admission.state.restore({ id: r.id, scopes: r.scopes, costMicros: r.reservedMicros, expiresAtMs: r.expiresAt });
    }
    return admission;
  }

  health(): AdmissionHealth {
    const h: AdmissionHealth = { store: this.lastError === undefined ? 'ok' : 'error', mode: this.mode, queued: this.queue.length };
    if (this.lastError !== undefined) h.lastError = this.lastError;
    return h;
  }

  async admit(req: AdmissionRequest): Promise<Ticket> {
    const { principal } = req;
    const id = randomUUID();
    try {
      await this.flush();
      const key = principal.kind !== 'virtual-key' || principal.keyId === undefined ? undefined : (keyRecordOf(principal) ?? (await this.ledger.getKey(principal.keyId)));
      const team = key?.teamId === undefined ? undefined : await this.ledger.getTeam(key.teamId);
      const now = await this.state.now();
      const drawn = this.scopes(key, team, now);
      const scopes = drawn.map((d) => d.limits);
      const budgeted = scopes.some((s) => s.budget);
      // Only budgets and tokens per minute need the worst case. The tokenizer's count of the
      // prompt is needed where a price turns it into money held against a budget; otherwise a
      // byte bound on the prompt is held, and the exact count is taken only if that is refused.
      let worst = budgeted || scopes.some((s) => s.tpm !== undefined) ? worstCase(req.model, req.request, this.defaultMaxTokens, tokenUpperBound(req.request.messages)) : NO_LIMITS;
      let bounded = worst !== NO_LIMITS;
      if (bounded && budgeted && worst.costFemto !== null && worst.costFemto > 0n) {
        worst = worstCase(req.model, req.request, this.defaultMaxTokens);
        bounded = false;
      }
      if (budgeted && worst.costFemto === null && this.unpricedModels === 'refuse') {
        throw new AdmissionError(403, `No price is known for "${req.model}", so its cost cannot be held against a budget. Use a priced model, or a key without a budget.`, { scope: drawn.find((d) => d.limits.budget)?.limits.scope ?? 'key' });
      }
      const costMicros = femtoToMicrosCeil(worst.costFemto ?? 0n);
      let tokens = worst.promptTokens + worst.outputCap;
      await Promise.all(drawn.map((d) => this.seed(d)));
      const input = { id, scopes, costMicros, tokens, checkSeeded: budgeted };
      let result = await this.state.reserve(input);
      if (!result.ok && 'unseeded' in result) {
        await this.recover(result.unseeded, drawn);
        result = await this.state.reserve(input);
        if (!result.ok && 'unseeded' in result) throw new Error('the shared state forgot the budget counters again while they were rebuilt');
      }
      if (!result.ok && bounded && 'limit' in result && result.limit === 'tpm') {
        // The bound was refused by a tokens-per-minute limit: the exact count decides.
        worst = worstCase(req.model, req.request, this.defaultMaxTokens);
        tokens = worst.promptTokens + worst.outputCap;
        result = await this.state.reserve({ ...input, tokens });
      }
      if (!result.ok && 'unseeded' in result) throw new Error('the shared state forgot the budget counters while the request was reserved');
      if (!result.ok) throw this.refusal(result, key, costMicros, tokens, drawn);
      const refs: ScopeRef[] = scopes.map((s) => (s.budget ? { scope: s.scope, periodId: s.budget.periodId } : { scope: s.scope }));
      const row: ReservationRow = { id, at: now, model: req.model, protocol: req.protocol, scopes: refs, reservedMicros: costMicros, expiresAt: result.expiresAtMs };
      if (key) row.keyId = key.id;
      if (key?.teamId !== undefined) row.teamId = key.teamId;
      this.lastError = undefined;
      return this.ticket(row, limitHeaders(result.scopes));
    } catch (err) {
      if (err instanceof AdmissionError) throw err;
      return this.storeFailed(err, id, req);
    }
  }

  /** The scopes this request draws on: the key's, its team's and the install's, where they have limits. */
  private scopes(key: KeyRecord | undefined, team: TeamRecord | undefined, now: number): Drawn[] {
    const out: Drawn[] = [];
    const add = (scope: string, limits: Limits | undefined): void => {
      if (!limits || (limits.budget === undefined && limits.rpm === undefined && limits.tpm === undefined)) return;
      const s: ScopeLimits = { scope };
      const drawn: Drawn = { limits: s };
      if (limits.budget) {
        const window = periodWindow(limits.budget.period, now, this.timeZone);
        s.budget = { limitMicros: limits.budget.limitMicros, periodId: window.id, resetAtMs: window.endMs };
        drawn.period = { ...limits.budget, startMs: window.startMs };
      }
      if (limits.rpm !== undefined) s.rpm = limits.rpm;
      if (limits.tpm !== undefined) s.tpm = limits.tpm;
      out.push(drawn);
    };
    if (key) add(`key:${key.id}`, key);
    if (team) add(`team:${team.id}`, team);
    if (this.totalBudget) add('total', { budget: this.totalBudget });
    return out;
  }

  /** Rebuild a budget counter from the ledger the first time this process meets its period. */
  private seed(d: Drawn): Promise<void> {
    const { scope, budget } = d.limits;
    if (!budget || !d.period) return Promise.resolve();
    const k = `${scope}\u0000${budget.periodId}`;
    let p = this.seeded.get(k);
    if (!p) {
      p = this.ledger.spentMicros(scope, d.period.startMs).then((micros) => this.state.seedSpend(scope, budget.periodId, micros));
      p.catch(() => this.seeded.delete(k));
      this.seeded.set(k, p);
    }
    return p;
  }

  /**
   * The shared state lost budget counters this process had seeded (a Redis restarted without
   * its data): seed them again from the ledger, and hold again the reservations the ledger
   * knows to be in flight (on every instance), so the period is not counted from zero.
   */
  private recover(unseeded: { scope: string; periodId: string }[], drawn: Drawn[]): Promise<void> {
    for (const u of unseeded) this.seeded.delete(`${u.scope}\u0000${u.periodId}`);
    this.recovering ??= (async () => {
      this.log(`the shared state (Redis) does not know ${unseeded.length === 1 ? 'a budget counter' : `${unseeded.length} budget counters`} this instance had seeded (restarted without its data?); rebuilding from the ledger.`);
      const now = await this.state.now();
      for (const r of await this.ledger.pendingReservations(now)) {
        await this.state.restore({ id: r.id, scopes: r.scopes, costMicros: r.reservedMicros, expiresAtMs: r.expiresAt });
      }
    })().finally(() => (this.recovering = undefined));
    return this.recovering.then(() => Promise.all(drawn.map((d) => this.seed(d)))).then(() => undefined);
  }

  private refusal(r: Refusal, key: KeyRecord | undefined, costMicros: number, tokens: number, drawn: Drawn[]): AdmissionError {
    const who = scopeLabel(r.scope, key);
    const d = drawn.find((s) => s.limits.scope === r.scope);
    const limits = d?.limits;
    const init = {
      scope: r.scope,
      ...(r.retryAfterMs === null ? {} : { retryAfterMs: r.retryAfterMs }),
      ...(r.resetAtMs === null ? {} : { resetAt: new Date(r.resetAtMs).toISOString() }),
    };
    if (r.limit === 'budget') {
      const limit = limits?.budget?.limitMicros ?? 0;
      const per = d?.period ? PER[d.period.period] : '';
      const resets = r.resetAtMs === null ? ' It does not reset: raise it, or use another key.' : ` It resets at ${new Date(r.resetAtMs).toISOString()}.`;
      const message =
        r.reason === 'too-large'
          ? `This request may cost up to $${formatMicros(costMicros)}, more than ${who} whole budget of $${formatMicros(limit)}${per}. Lower max_tokens or shorten the prompt.`
          : r.reason === 'busy'
            ? `${who} budget ($${formatMicros(limit)}${per}) is held by requests in flight; $${formatMicros(r.remaining)} is free and this request may cost up to $${formatMicros(costMicros)}. Try again shortly.`
            : `${who} budget of $${formatMicros(limit)}${per} is spent: $${formatMicros(r.remaining)} left, and this request may cost up to $${formatMicros(costMicros)}.${resets}`;
      return new AdmissionError(429, capitalise(message), { ...init, wireType: 'insufficient_quota', headers: { 'x-switchboard-budget-remaining': formatMicros(r.remaining) } });
    }
    const unit = r.limit === 'rpm' ? 'requests' : 'tokens';
    const limit = (r.limit === 'rpm' ? limits?.rpm : limits?.tpm) ?? 0;
    const message =
      r.reason === 'too-large'
        ? `This request may use up to ${tokens} tokens (prompt plus max_tokens), more than ${who} limit of ${limit} tokens per minute. Lower max_tokens.`
        : `${who} limit of ${limit} ${unit} per minute is reached; try again in ${formatReset(r.retryAfterMs ?? 0)}.`;
    return new AdmissionError(429, capitalise(message), {
      ...init,
      headers: { [`x-ratelimit-limit-${unit}`]: String(limit), [`x-ratelimit-remaining-${unit}`]: String(r.remaining), [`x-ratelimit-reset-${unit}`]: formatReset(r.retryAfterMs ?? 0) },
    });
  }

  private ticket(row: ReservationRow, headers: Record<string, string>): Ticket {
    const { id, model, scopes } = row;
    let settled = false;
    // The reservation's row, once the request has run long enough to need one (see reservationWriteDelayMs).
    let written: Promise<void> | undefined;
    // Off the request's path (a one-script settle carries the row again), so its Redis command counts as background.
    const timer = setTimeout(() => untracedRedis(() => (written = this.attempt(() => this.ledger.recordReservation(row)))), this.writeDelayMs);
    timer.unref();
    return {
      headers,
      settle: async (outcome) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        const spend = this.exactSpend(model, outcome);
        const input: SettleInput = { id, scopes, costMicros: femtoToMicrosCeil(spend.costFemto ?? 0n), tokens: spend.promptTokens + spend.completionTokens };
        if (await this.settleRecording(input, row, spend)) return;
        // Otherwise the shared state and the ledger are written apart (and queued apart in open
        // mode), so a replay never charges the shared state twice; recording a reservation twice
        // is a no-op. Both stores are written at once: a reply waits for its spend (see the gateway).
        const state = this.attempt(() => this.state.settle(input));
        const ledger = written
          ? written.then(() => this.attempt(() => this.ledger.settle(id, spend)))
          : this.attempt(() => this.ledger.recordSettlement(row, spend));
        await Promise.all([state, ledger]);
      },
    };
  }

  /**
   * Settle the shared state and append the ledger's entry in one script, where the ledger's
   * queue is on the shared state's Redis: one command for the whole settlement. False when it
   * did not run (no such queue, writes queued in open mode, Redis failing): the caller then
   * writes both apart, which is safe even if this one ran after all (a second settle charges
   * nothing, a second ledger entry changes no row).
   */
  private async settleRecording(input: SettleInput, row: ReservationRow, spend: SpendOutcome): Promise<boolean> {
    if (!this.journal || !this.state.settleRecording || this.queue.length > 0) return false;
    const entry = this.journal.settlementEntry(row, spend);
    if (!entry) return false;
    try {
      this.journal.appended(row.id, entry, await this.state.settleRecording(input, entry));
      this.lastError = undefined;
      return true;
    } catch (err) {
      if (!this.journalFailed) this.log(`a settlement could not be made in one script (${err instanceof Error ? err.message : String(err)}); the shared state and the ledger are written apart.`);
      this.journalFailed = true;
      return false;
    }
  }

  /** The ledger's row for an outcome: the caller's exact cost, else the catalog's price of the usage. */
  private exactSpend(model: string, outcome: SettleOutcome): SpendOutcome {
    const usage = outcome.usage;
    let costFemto: bigint | null = 0n;
    if (outcome.costFemto !== undefined) costFemto = outcome.costFemto;
    else if (usage) {
      const billed = outcome.resolvedModel ?? model;
      costFemto = computeCostFemto(usage, priceFor(billed, outcome.provider) ?? priceFor(model, outcome.provider), billed);
    }
    const spend: SpendOutcome = {
      status: outcome.status,
      at: this.clock.now(),
      promptTokens: usage?.promptTokens ?? 0,
      completionTokens: usage?.completionTokens ?? 0,
      costFemto,
    };
    if (outcome.provider !== undefined) spend.provider = outcome.provider;
    if (outcome.resolvedModel !== undefined) spend.resolvedModel = outcome.resolvedModel;
    if (outcome.savedFemto) spend.savedFemto = outcome.savedFemto;
    return spend;
  }

  /** Run a store write; in open mode a failure queues it for later instead of losing it. */
  private async attempt(write: () => Promise<void>): Promise<void> {
    try {
      await this.flush();
      await write();
      this.lastError = undefined;
    } catch (err) {
      this.noteError(err);
      this.queue.push(write);
    }
  }

  /**
   * Replay queued writes in order; stops (and keeps the rest) at the first that fails. Callers
   * that arrive while a replay runs wait for it rather than start a second one.
   */
  private flush(): Promise<void> {
    if (this.queue.length === 0) return Promise.resolve();
    this.flushing ??= (async () => {
      try {
        while (this.queue.length > 0) {
          const next = this.queue[0] as () => Promise<void>;
          await next();
          this.queue.shift();
        }
      } finally {
        this.flushing = undefined;
      }
    })();
    return this.flushing;
  }

  private noteError(err: unknown): void {
    const message = err instanceof Error ? err.message : String(err);
    if (this.lastError === undefined) this.log(`the budget store failed (${message}); on-store-error: ${this.mode}.`);
    this.lastError = message;
  }

  private storeFailed(err: unknown, id: string, req: AdmissionRequest): Ticket {
    this.noteError(err);
    if (this.mode === 'closed') {
      throw new AdmissionError(503, 'The budget store cannot be reached, so this request was not sent. Try again shortly.', { scope: 'store', retryAfterMs: 1000 });
    }
    // Open: serve now, and record the request once the ledger answers again.
    const { principal } = req;
    let settled = false;
    return {
      headers: {},
      settle: async (outcome) => {
        if (settled) return;
        settled = true;
        const spend = this.exactSpend(req.model, outcome);
        const row = { id, at: spend.at, model: req.model, protocol: req.protocol, scopes: [], reservedMicros: 0, expiresAt: spend.at };
        await this.attempt(() =>
          this.ledger.recordSettlement({ ...row, ...(principal.kind !== 'virtual-key' || principal.keyId === undefined ? {} : { keyId: principal.keyId }), ...(principal.teamId === undefined ? {} : { teamId: principal.teamId }) }, spend),
        );
      },
    };
  }
}

function capitalise(s: string): string {
  return s.charAt(0).toUpperCase() + s.slice(1);
}
