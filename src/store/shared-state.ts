/**
 * Hot shared state for admission: budget counters, in-flight reservations and rate-limit
 * windows, for every scope a request touches (its key, its team, the whole install).
 *
 * The contract is shaped for one atomic server-side call per step, so that a Redis Lua
 * script (or Redis function) can implement it with the server's clock:
 * - `reserve` checks every scope's budget, requests-per-minute and tokens-per-minute and then
 *   takes from all of them, or takes nothing and says which scope refused and why.
 * - `settle` replaces a reservation with the exact cost (zero to release it); it is given the
 *   scopes again so that it still charges the right period after the reservation expired.
 * - Reservations expire after `reservationTtlMs`, so a crashed caller leaks nothing for long.
 * Money is integer micro-dollars (exact in a double, and in Lua, up to 2^53), rate windows are
 * GCRA (a request is admitted when its theoretical arrival time stays within one minute of
 * now), also in integers: times are kept multiplied by the limit so no interval is fractional
 * (a limit of 10 rpm admits 10 at once, then one every 6 s).
 */
import type { ReservationRow, SpendOutcome } from './ledger.js';

/** The clock every store and admission step reads; tests move it by hand. */
export interface Clock {
  now(): number;
}
export const systemClock: Clock = { now: () => Date.now() };

/** A clock that only moves when told to. */
export class ManualClock implements Clock {
  private ms: number;
  constructor(startMs = Date.UTC(2026, 0, 1)) {
    this.ms = startMs;
  }
  now(): number {
    return this.ms;
  }
  advance(ms: number): void {
    this.ms += ms;
  }
  set(ms: number): void {
    this.ms = ms;
  }
}

/** The limits of one scope, as they stand for this request. */
export interface ScopeLimits {
  /** `key:<public id>`, `team:<id>` or `total`. */
  scope: string;
  budget?: {
    limitMicros: number;
    /** The period's id (`2026-12`): counters are per period, so a new period starts at zero. */
    periodId: string;
    /** When this period ends (ms), for the refusal's reset time; Infinity for a total budget. */
    resetAtMs: number;
  };
  rpm?: number;
  tpm?: number;
}

/** Where a reservation's money went: enough to settle it even after it expired. */
export interface ScopeRef {
  scope: string;
  periodId?: string;
}

export interface ReserveInput {
  /** Unique per request. */
  id: string;
  scopes: ScopeLimits[];
  /** The worst-case cost, rounded up to the micro-dollar. */
  costMicros: number;
  /** The worst-case tokens (prompt plus output cap), for tokens-per-minute. */
  tokens: number;
  /**
   * The caller seeded every budget counter of these scopes from the ledger: when the store does
   * not know one of them (a Redis restarted without its data), take nothing and say which, so
   * the caller seeds them again instead of counting the period from zero.
   */
  checkSeeded?: boolean;
}

export type LimitKind = 'budget' | 'rpm' | 'tpm';

/** One window's standing after a reservation (what the x-ratelimit-* headers report). */
export interface WindowState {
  limit: number;
  remaining: number;
  /** Milliseconds until the window is full again. */
  resetMs: number;
}

export interface ScopeState {
  scope: string;
  budgetRemainingMicros?: number;
  requests?: WindowState;
  tokens?: WindowState;
}

export interface Refusal {
  ok: false;
  scope: string;
  limit: LimitKind;
  /**
   * `exhausted`: the budget's remaining money (in-flight reservations aside) is less than this
   * request's worst case, until the period resets; `busy`: it would fit once in-flight
   * reservations settle; `window`: a rate limit refills in retryAfterMs; `too-large`: the
   * request can never fit (more tokens than a minute's allowance, or a worst case above the budget).
   */
  reason: 'exhausted' | 'busy' | 'window' | 'too-large';
  /** When trying again may succeed; null when it cannot within the period. */
  retryAfterMs: number | null;
  /** When the budget's period ends (ms since the epoch), for budget refusals. */
  resetAtMs: number | null;
  /** The limit's remaining allowance (micro-dollars or units) at the refusal. */
  remaining: number;
}

/** The store does not know these budget counters (it lost its data): seed them, then reserve again. */
export interface Unseeded {
  ok: false;
  unseeded: { scope: string; periodId: string }[];
}

export type ReserveResult = { ok: true; expiresAtMs: number; scopes: ScopeState[] } | Refusal | Unseeded;

export interface SettleInput {
  id: string;
  scopes: ScopeRef[];
  /** The exact cost, rounded up to the micro-dollar; 0 releases the reservation. */
  costMicros: number;
  /** Tokens actually used (prompt plus completion); the rest of the reserved tokens is returned. */
  tokens: number;
}

/** One entry of the ledger's spend queue: its stream, and its encoded text (the field `e`). */
export interface JournalEntry {
  stream: string;
  entry: string;
}

/** A ledger whose spend rows the shared state's settle can append to its queue (settleRecording). */
export interface SpendJournal {
  /** The queue entry recording this reservation's row and outcome at once; undefined when the ledger must write them itself. */
  settlementEntry(row: ReservationRow, outcome: SpendOutcome): JournalEntry | undefined;
  /** The shared state appended that entry (at `streamId`): the ledger keeps it until it is drained. */
  appended(id: string, journal: JournalEntry, streamId: string | undefined): void;
}

/** A reservation restored after a restart, from the ledger's durable copy. */
export interface RestoredReservation {
  id: string;
  scopes: ScopeRef[];
  costMicros: number;
  expiresAtMs: number;
}

export interface SharedState {
  /** The store's clock (Redis: its TIME), which periods and expiries are measured by. */
  now(): Promise<number>;
  reserve(input: ReserveInput): Promise<ReserveResult>;
  settle(input: SettleInput): Promise<void>;
  /**
   * Settle, and append the ledger's entry for it to a stream on this same store, in one atomic
   * step (Redis, when the ledger's spend queue is on it: one round trip for both). Resolves to
   * the entry's stream id (undefined when the settlement had been made already, entry and all).
   * Absent where the store has no streams; a failure may leave both done or neither.
   */
  settleRecording?(input: SettleInput, journal: JournalEntry): Promise<string | undefined>;
  /**
   * Seed a budget counter's spend for a period from the ledger, unless it was seeded already.
   * The ledger's sum is added to what the counter holds: settlements that reached the counter
   * before the seed (a Redis that lost its data and kept serving) may count twice, never zero times.
   */
  seedSpend(scope: string, periodId: string, spentMicros: number): Promise<void>;
  /** Hold a reservation again after a restart, until its original expiry. */
  restore(reservation: RestoredReservation): Promise<void>;
  /** Spent and held money of one scope's period, or undefined when not seeded yet. */
  budget(scope: string, periodId: string): Promise<{ spentMicros: number; reservedMicros: number } | undefined>;
  close(): Promise<void>;
}

export const MINUTE_MS = 60_000;
/** How long an unsettled reservation holds its money: longer than any request should take. */
export const DEFAULT_RESERVATION_TTL_MS = 10 * MINUTE_MS;
/** Retry-After for a budget that is only held by in-flight requests. */
const BUSY_RETRY_MS = 1000;

interface BudgetCounter {
  spent: number;
  reserved: number;
  /** Whether the spend came from the ledger already (restored reservations create counters too). */
  seeded: boolean;
}

/**
 * GCRA state: how far the theoretical arrival time was ahead of `atMs`, multiplied by the
 * limit it was computed with (kept relative to a recent instant so the products stay small).
 */
interface Window {
  backlog: number;
  atMs: number;
  limit: number;
}

interface Reservation {
  budgets: { key: string; micros: number }[];
  tokens: { key: string; tokens: number }[];
  expiresAtMs: number;
}

const budgetKey = (scope: string, periodId: string): string => `${scope}\u0000${periodId}`;
const windowKey = (scope: string, kind: 'rpm' | 'tpm'): string => `${scope}\u0000${kind}`;

/** One process's shared state, in memory: every call is synchronous inside, hence atomic. */
export class MemorySharedState implements SharedState {
  private readonly clock: Clock;
  private readonly ttlMs: number;
  private readonly budgets = new Map<string, BudgetCounter>();
  private readonly windows = new Map<string, Window>();
  /** In insertion order, which is expiry order: every reservation lives the same ttl. */
  private readonly reservations = new Map<string, Reservation>();

  constructor(options: { clock?: Clock; reservationTtlMs?: number } = {}) {
    this.clock = options.clock ?? systemClock;
    this.ttlMs = options.reservationTtlMs ?? DEFAULT_RESERVATION_TTL_MS;
  }

  now(): Promise<number> {
    return Promise.resolve(this.clock.now());
  }

  reserve(input: ReserveInput): Promise<ReserveResult> {
    const now = this.clock.now();
    this.expire(now);
    if (input.checkSeeded) {
      const unseeded = input.scopes.flatMap((s) => (s.budget && !this.budgets.get(budgetKey(s.scope, s.budget.periodId))?.seeded ? [{ scope: s.scope, periodId: s.budget.periodId }] : []));
      if (unseeded.length > 0) return Promise.resolve({ ok: false, unseeded });
    }
    const refusal = this.check(input, now);
    if (refusal) return Promise.resolve(refusal);

    const held: Reservation = { budgets: [], tokens: [], expiresAtMs: now + this.ttlMs };
    const states: ScopeState[] = [];
    for (const s of input.scopes) {
      const state: ScopeState = { scope: s.scope };
      if (s.budget) {
        const key = budgetKey(s.scope, s.budget.periodId);
        const counter = this.counter(key);
        counter.reserved += input.costMicros;
        held.budgets.push({ key, micros: input.costMicros });
        state.budgetRemainingMicros = Math.max(0, s.budget.limitMicros - counter.spent - counter.reserved);
      }
      if (s.rpm !== undefined) state.requests = this.take(windowKey(s.scope, 'rpm'), s.rpm, 1, now);
      if (s.tpm !== undefined) {
        const key = windowKey(s.scope, 'tpm');
        state.tokens = this.take(key, s.tpm, input.tokens, now);
        held.tokens.push({ key, tokens: input.tokens });
      }
      states.push(state);
    }
    this.reservations.set(input.id, held);
    return Promise.resolve({ ok: true, expiresAtMs: held.expiresAtMs, scopes: states });
  }

  settle(input: SettleInput): Promise<void> {
    this.expire(this.clock.now());
    const held = this.reservations.get(input.id);
    if (held) {
      this.reservations.delete(input.id);
      for (const b of held.budgets) this.counter(b.key).reserved -= b.micros;
      for (const t of held.tokens) this.refund(t.key, Math.max(0, t.tokens - input.tokens));
    }
    if (input.costMicros > 0) {
      for (const ref of input.scopes) if (ref.periodId !== undefined) this.counter(budgetKey(ref.scope, ref.periodId)).spent += input.costMicros;
    }
    return Promise.resolve();
  }

  seedSpend(scope: string, periodId: string, spentMicros: number): Promise<void> {
    const c = this.counter(budgetKey(scope, periodId));
    if (!c.seeded) {
      c.spent += spentMicros;
      c.seeded = true;
    }
    return Promise.resolve();
  }

  restore(reservation: RestoredReservation): Promise<void> {
    if (reservation.expiresAtMs <= this.clock.now() || this.reservations.has(reservation.id)) return Promise.resolve();
    const held: Reservation = { budgets: [], tokens: [], expiresAtMs: reservation.expiresAtMs };
    for (const ref of reservation.scopes) {
      if (ref.periodId === undefined) continue;
      const key = budgetKey(ref.scope, ref.periodId);
      this.counter(key).reserved += reservation.costMicros;
      held.budgets.push({ key, micros: reservation.costMicros });
    }
    this.reservations.set(reservation.id, held);
    return Promise.resolve();
  }

  budget(scope: string, periodId: string): Promise<{ spentMicros: number; reservedMicros: number } | undefined> {
    this.expire(this.clock.now());
    const c = this.budgets.get(budgetKey(scope, periodId));
    return Promise.resolve(c ? { spentMicros: c.spent, reservedMicros: c.reserved } : undefined);
  }

  close(): Promise<void> {
    return Promise.resolve();
  }

  /** The first limit this request would break, checked before anything is taken. */
  private check(input: ReserveInput, now: number): Refusal | undefined {
    for (const s of input.scopes) {
      if (s.budget) {
        const c = this.budgets.get(budgetKey(s.scope, s.budget.periodId)) ?? { spent: 0, reserved: 0, seeded: false };
        const unspent = s.budget.limitMicros - c.spent;
        const free = unspent - c.reserved;
        if (input.costMicros > free) {
          const resetAtMs = Number.isFinite(s.budget.resetAtMs) ? s.budget.resetAtMs : null;
          const base = { ok: false as const, scope: s.scope, limit: 'budget' as const, remaining: Math.max(0, free) };
          if (input.costMicros > s.budget.limitMicros) return { ...base, reason: 'too-large', retryAfterMs: null, resetAtMs };
          if (input.costMicros > unspent) return { ...base, reason: 'exhausted', retryAfterMs: resetAtMs === null ? null : resetAtMs - now, resetAtMs };
          return { ...base, reason: 'busy', retryAfterMs: BUSY_RETRY_MS, resetAtMs };
        }
      }
      for (const [kind, limit, units] of [['rpm', s.rpm, 1], ['tpm', s.tpm, input.tokens]] as const) {
        if (limit === undefined) continue;
        const base = { ok: false as const, scope: s.scope, limit: kind, resetAtMs: null };
        if (units > limit) return { ...base, reason: 'too-large', retryAfterMs: null, remaining: limit };
        const wait = this.wait(windowKey(s.scope, kind), limit, units, now);
        if (wait > 0) return { ...base, reason: 'window', retryAfterMs: wait, remaining: this.standing(windowKey(s.scope, kind), limit, now).remaining };
      }
    }
    return undefined;
  }

  /** Milliseconds until `units` fit in the window (0: they fit now). */
  private wait(key: string, limit: number, units: number, now: number): number {
    const over = this.backlog(key, limit, now) + units * MINUTE_MS - MINUTE_MS * limit;
    return over <= 0 ? 0 : Math.ceil(over / limit);
  }

  private take(key: string, limit: number, units: number, now: number): WindowState {
    this.windows.set(key, { backlog: this.backlog(key, limit, now) + units * MINUTE_MS, atMs: now, limit });
    return this.standing(key, limit, now);
  }

  private refund(key: string, units: number): void {
    const w = this.windows.get(key);
    if (w && units > 0) w.backlog = Math.max(0, w.backlog - units * MINUTE_MS);
  }

  private standing(key: string, limit: number, now: number): WindowState {
    const used = this.backlog(key, limit, now);
    return {
      limit,
      remaining: Math.max(0, Math.min(limit, Math.floor((MINUTE_MS * limit - used) / MINUTE_MS))),
      resetMs: Math.ceil(used / limit),
    };
  }

  /** How far the theoretical arrival time is ahead of now, scaled by `limit` (0 when idle). */
  private backlog(key: string, limit: number, now: number): number {
    const w = this.windows.get(key);
    if (!w) return 0;
    const scaled = w.limit === limit ? w.backlog : Math.ceil((w.backlog / w.limit) * limit);
    return Math.max(0, scaled - (now - w.atMs) * limit);
  }

  private counter(key: string): BudgetCounter {
    let c = this.budgets.get(key);
    if (!c) {
      c = { spent: 0, reserved: 0, seeded: false };
      this.budgets.set(key, c);
    }
    return c;
  }

  /** Drop reservations whose time is up: their money is free again. */
  private expire(now: number): void {
    for (const [id, r] of this.reservations) {
      if (r.expiresAtMs > now) break;
      this.reservations.delete(id);
      for (const b of r.budgets) this.counter(b.key).reserved -= b.micros;
    }
  }
}
