/**
 * SharedState on Redis, so that several gateway instances share one set of budgets and rate
 * windows. Each step is one Lua script run atomically by Redis with its own clock (TIME), so
 * instances whose clocks disagree still agree on every window and expiry:
 * - reserve: expire the lapsed reservations of every budget it touches, check every scope's
 *   budget, requests and tokens per minute, then take from all of them or from none;
 * - settle: replace a reservation with the exact cost (and return unused tokens);
 * - seed / restore / budget: the rarer steps, each one script too.
 * The scripts are sent by their SHA-1 (EVALSHA), which names one version of their text, so two
 * gateway versions running side by side during a rolling deploy each run their own; a Redis
 * that restarted and forgot them is sent the text again. A changed script says its new version
 * in its first line, and must still work beside the old one on the same keys.
 *
 * The arithmetic is the same as MemorySharedState's (integer micro-dollars, GCRA windows with
 * times scaled by the limit), so one test suite holds both to it. Every key of the install
 * carries the same hash tag (`{switchboard}` by default): one request's scopes must sit in one
 * Redis Cluster slot for one script to see them all.
 *
 * Key layout (P = the prefix with its hash tag):
 * - `P:b:<scope>:<period>`  hash { spent, reserved, seeded } of one budget period
 * - `P:bz:<scope>:<period>` sorted set of reservation ids by expiry; `P:ba:...` hash id -> micros
 * - `P:w:<scope>:<rpm|tpm>` hash { backlog, at, limit }: one GCRA window
 * - `P:r:<id>`              the tokens a live reservation holds (expires with it)
 * - `P:epoch`               a random value, set once: a Redis restarted empty lacks it, and
 *   each instance's next reserve says so; the instance then gives the rate windows it saw back
 *   their backlog (they would otherwise start full) before it reserves
 *
 * With the ledger's spend queue on the same Redis, settle also appends the settlement's entry
 * to its stream (settleRecording): a request costs two round trips, reserve and settle.
 */
import { randomUUID } from 'node:crypto';
import { createRedisClient, runScript, Script, type RedisClient } from './redis-scripts.js';
import {
  DEFAULT_RESERVATION_TTL_MS,
  type Clock,
  type JournalEntry,
  type LimitKind,
  type Refusal,
  type ReserveInput,
  type ReserveResult,
  type RestoredReservation,
  type ScopeState,
  type SettleInput,
  type SharedState,
  type WindowState,
} from './shared-state.js';

/** Helpers every script starts with: integers as strings Redis accepts, the clock, expiry. */
const PRELUDE = `
local function int(x) if x == 0 then return '0' end return string.format('%.0f', x) end
local function num(x) return tonumber(x) or 0 end
local function clock(override)
  if override ~= '' then return tonumber(override) end
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
-- Drop a budget's lapsed reservations: their money is free again.
local function expire(b, bz, ba, now)
  local ids = redis.call('ZRANGEBYSCORE', bz, '-inf', int(now), 'LIMIT', 0, 1000)
  if #ids == 0 then return end
  local amounts = redis.call('HMGET', ba, unpack(ids))
  local total = 0
  for _, a in ipairs(amounts) do total = total + num(a) end
  redis.call('HINCRBY', b, 'reserved', int(-total))
  redis.call('ZREM', bz, unpack(ids))
  redis.call('HDEL', ba, unpack(ids))
end
local MINUTE = 60000
local function backlog(w, limit, now)
  local v = redis.call('HMGET', w, 'backlog', 'at', 'limit')
  if not v[1] then return 0 end
  local b, at, wl = tonumber(v[1]), tonumber(v[2]), tonumber(v[3])
  local scaled = b
  if wl ~= limit then scaled = math.ceil(b / wl * limit) end
  return math.max(0, scaled - (now - at) * limit)
end
`;

/**
 * Version 2 (version 1 had no epoch).
 * KEYS: r:<id>, the epoch, then 5 per scope (b, bz, ba, w:rpm, w:tpm).
 * ARGV: now override ('' = TIME), ttl, cost, tokens, id, then 4 per scope:
 * budget limit ('' = none), budget reset ('' = never), rpm ('' = none), tpm ('' = none); then
 * '1' to check that every budget counter was seeded; then the epoch the caller knows.
 * Returns {1, expiresAt, {state per scope: 10 integers, -1 = absent}},
 * {0, scope index, kind (1 budget, 2 rpm, 3 tpm), reason (1 exhausted, 2 busy, 3 window, 4 too-large), retryAfter, resetAt, remaining},
 * {2, {indexes of the scopes whose budget counter was never seeded}},
 * or {3}: the epoch is not the caller's (Redis lost its data since), and nothing was taken.
 */
const RESERVE = `-- switchboard reserve, version 2
${PRELUDE}
local now = clock(ARGV[1])
local ttl, cost, tokens, id = tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4]), ARGV[5]
local n = (#KEYS - 2) / 5
local function k(i, j) return KEYS[2 + (i - 1) * 5 + j] end
local function a(i, j) return ARGV[5 + (i - 1) * 4 + j] end
if redis.call('GET', KEYS[2]) ~= ARGV[7 + n * 4] then return {3} end
local function wait(w, limit, units)
  local over = backlog(w, limit, now) + units * MINUTE - MINUTE * limit
  if over <= 0 then return 0 end
  return math.ceil(over / limit)
end
local function standing(w, limit)
  local used = backlog(w, limit, now)
  return math.max(0, math.min(limit, math.floor((MINUTE * limit - used) / MINUTE))), math.ceil(used / limit)
end
-- Budget counters the caller seeded and this Redis does not know (it lost its data): say which.
if ARGV[6 + n * 4] == '1' then
  local missing = {}
  for i = 1, n do
    if a(i, 1) ~= '' and redis.call('HEXISTS', k(i, 1), 'seeded') == 0 then missing[#missing + 1] = i end
  end
  if #missing > 0 then return {2, missing} end
end
-- Check everything first.
for i = 1, n do
  if a(i, 1) ~= '' then
    expire(k(i, 1), k(i, 2), k(i, 3), now)
    local limit = tonumber(a(i, 1))
    local v = redis.call('HMGET', k(i, 1), 'spent', 'reserved')
    local unspent = limit - num(v[1])
    local free = unspent - num(v[2])
    if cost > free then
      local reset = -1
      if a(i, 2) ~= '' then reset = tonumber(a(i, 2)) end
      local remaining = math.max(0, free)
      if cost > limit then return {0, i, 1, 4, -1, reset, remaining} end
      if cost > unspent then
        local retry = -1
        if reset >= 0 then retry = reset - now end
        return {0, i, 1, 1, retry, reset, remaining}
      end
      return {0, i, 1, 2, 1000, reset, remaining}
    end
  end
  for kind = 2, 3 do
    local limit, units = a(i, kind + 1), 1
    if kind == 3 then units = tokens end
    if limit ~= '' then
      limit = tonumber(limit)
      if units > limit then return {0, i, kind, 4, -1, -1, limit} end
      local wt = wait(k(i, kind + 2), limit, units)
      if wt > 0 then
        local remaining = standing(k(i, kind + 2), limit)
        return {0, i, kind, 3, wt, -1, remaining}
      end
    end
  end
end
-- Then take from every scope.
local expires = now + ttl
local out = {}
for i = 1, n do
  -- 1 has a budget, 2 its remaining; 3..6 requests and 7..10 tokens: present, limit, remaining, reset
  local s = {-1, -1, -1, -1, -1, -1, -1, -1, -1, -1}
  if a(i, 1) ~= '' then
    local b = k(i, 1)
    local reserved = redis.call('HINCRBY', b, 'reserved', int(cost))
    redis.call('ZADD', k(i, 2), int(expires), id)
    redis.call('HSET', k(i, 3), id, int(cost))
    local spent = num(redis.call('HGET', b, 'spent'))
    s[1] = 1
    s[2] = math.max(0, tonumber(a(i, 1)) - spent - reserved)
    if a(i, 2) ~= '' then
      local keep = math.max(tonumber(a(i, 2)) - now, 0) + 86400000
      for j = 1, 3 do redis.call('PEXPIRE', k(i, j), int(keep)) end
    end
  end
  for kind = 2, 3 do
    local limit = a(i, kind + 1)
    if limit ~= '' then
      limit = tonumber(limit)
      local units = 1
      if kind == 3 then units = tokens end
      local w = k(i, kind + 2)
      local b2 = backlog(w, limit, now) + units * MINUTE
      redis.call('HSET', w, 'backlog', int(b2), 'at', int(now), 'limit', int(limit))
      redis.call('PEXPIRE', w, int(math.ceil(b2 / limit) + MINUTE))
      local remaining, reset = standing(w, limit)
      local o = kind * 4 - 5
      s[o] = 1
      s[o + 1] = limit
      s[o + 2] = remaining
      s[o + 3] = reset
    end
  end
  out[i] = s
end
redis.call('SET', KEYS[1], int(tokens), 'PX', int(ttl))
return {1, expires, out}
`;

/**
 * Version 2 (version 1 appended nothing).
 * KEYS: r:<id>, then 4 per scope (b, bz, ba, w:tpm), then optionally a stream. ARGV: now
 * override, id, cost, tokens used, then per scope whether it names a budget period ('1' or '0'),
 * then the tombstone's ttl, then the entry to append to the stream (field `e`). Returns 0 when
 * settled already (nothing charged or appended: the first settle did both), else the entry's
 * stream id, or 1 without a stream.
 */
const SETTLE = `-- switchboard settle, version 2
${PRELUDE}
local now = clock(ARGV[1])
local id, cost, used = ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4])
local n = math.floor((#KEYS - 1) / 4)
local held = redis.call('GET', KEYS[1])
-- Settled already: a second settle (a replayed write) charges nothing more.
if held == 'settled' then return 0 end
-- The tombstone also tells restore that this reservation is over.
redis.call('SET', KEYS[1], 'settled', 'PX', ARGV[5 + n])
if held then
  local refund = math.max(0, tonumber(held) - used)
  for i = 1, n do
    local w = KEYS[1 + (i - 1) * 4 + 4]
    local b = redis.call('HGET', w, 'backlog')
    if b and refund > 0 then redis.call('HSET', w, 'backlog', int(math.max(0, tonumber(b) - refund * MINUTE))) end
  end
end
for i = 1, n do
  if ARGV[4 + i] == '1' then
    local b, bz, ba = KEYS[1 + (i - 1) * 4 + 1], KEYS[1 + (i - 1) * 4 + 2], KEYS[1 + (i - 1) * 4 + 3]
    expire(b, bz, ba, now)
    local amount = redis.call('HGET', ba, id)
    if amount then
      redis.call('HINCRBY', b, 'reserved', int(-tonumber(amount)))
      redis.call('HDEL', ba, id)
      redis.call('ZREM', bz, id)
    end
    if cost > 0 then redis.call('HINCRBY', b, 'spent', int(cost)) end
  end
end
if #KEYS > 1 + n * 4 then return redis.call('XADD', KEYS[#KEYS], '*', 'e', ARGV[6 + n]) end
return 1
`;

/** KEYS: b. ARGV: spent. Adds the ledger's spend unless the counter was seeded already. */
const SEED = `
if redis.call('HSETNX', KEYS[1], 'seeded', '1') == 1 then redis.call('HINCRBY', KEYS[1], 'spent', ARGV[1]) end
return 1
`;

/**
 * KEYS: r:<id>, then 3 per scope (b, bz, ba). ARGV: now override, id, cost, expiresAt.
 * A reservation Redis still knows (held, or settled: its tombstone) is left alone, so an
 * instance starting beside others restores only what a Redis that lost its data forgot.
 */
const RESTORE = `${PRELUDE}
local now = clock(ARGV[1])
local id, cost, expires = ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4])
if expires <= now or redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('SET', KEYS[1], '0', 'PX', int(expires - now))
for i = 1, (#KEYS - 1) / 3 do
  local b, bz, ba = KEYS[1 + (i - 1) * 3 + 1], KEYS[1 + (i - 1) * 3 + 2], KEYS[1 + (i - 1) * 3 + 3]
  if redis.call('HEXISTS', ba, id) == 0 then
    redis.call('HINCRBY', b, 'reserved', int(cost))
    redis.call('ZADD', bz, int(expires), id)
    redis.call('HSET', ba, id, int(cost))
  end
end
return 1
`;

/** KEYS: b, bz, ba. ARGV: now override. Returns {} when unknown, else {spent, reserved}. */
const BUDGET = `${PRELUDE}
local now = clock(ARGV[1])
expire(KEYS[1], KEYS[2], KEYS[3], now)
local v = redis.call('HMGET', KEYS[1], 'spent', 'reserved')
if not v[1] and not v[2] then return {} end
return {num(v[1]), num(v[2])}
`;

/**
 * KEYS: the epoch, then rate windows. ARGV: now override, an epoch to set when there is none,
 * then per window when its backlog ends (ms) and its limit, as this instance last saw them.
 * Each window gets that backlog back unless it holds more already; returns the epoch.
 */
const RESTORE_WINDOWS = `${PRELUDE}
local now = clock(ARGV[1])
for i = 2, #KEYS do
  local ends, limit = tonumber(ARGV[2 * i - 1]), tonumber(ARGV[2 * i])
  local b = (ends - now) * limit
  if b > backlog(KEYS[i], limit, now) then
    redis.call('HSET', KEYS[i], 'backlog', int(b), 'at', int(now), 'limit', int(limit))
    redis.call('PEXPIRE', KEYS[i], int(math.ceil(b / limit) + MINUTE))
  end
end
if not redis.call('GET', KEYS[1]) then redis.call('SET', KEYS[1], ARGV[2]) end
return redis.call('GET', KEYS[1])
`;

const SCRIPTS = {
  reserve: new Script(RESERVE),
  settle: new Script(SETTLE),
  seed: new Script(SEED),
  restore: new Script(RESTORE),
  budget: new Script(BUDGET),
  restoreWindows: new Script(RESTORE_WINDOWS),
};

const KINDS: LimitKind[] = ['budget', 'rpm', 'tpm'];
const REASONS: Refusal['reason'][] = ['exhausted', 'busy', 'window', 'too-large'];

export interface RedisSharedStateOptions {
  /** `redis://host:port/db` (or `rediss://`). */
  url: string;
  /** Key prefix; its `{...}` hash tag keeps an install's keys in one Cluster slot (default `{switchboard}`). */
  prefix?: string;
  reservationTtlMs?: number;
  /**
   * A clock to use instead of Redis's TIME, for tests that move time by hand. Production leaves
   * it unset so every instance reads the one clock Redis has.
   */
  clock?: Clock;
  /** How long a command may wait for Redis before it fails (default 1000 ms): a down Redis must fail fast. */
  commandTimeoutMs?: number;
}

/** Budgets and rate windows of every instance, in one Redis. */
export class RedisSharedState implements SharedState {
  readonly client: RedisClient;
  private readonly prefix: string;
  private readonly ttlMs: number;
  private readonly clock: Clock | undefined;
  /** Redis's clock minus ours, measured at connect and refreshed now and then. */
  private offsetMs = 0;
  private offsetTimer: NodeJS.Timeout | undefined;
  /**
   * Redis's data as this instance knows it: a random value every instance adopts, which a Redis
   * restarted empty no longer has, so the first reserve after it says so (see restoreWindows).
   */
  private epoch = '';
  /** Each rate window as this instance last saw it: when its backlog ends (Redis ms) and its limit. */
  private readonly windows = new Map<string, { endsAt: number; limit: number }>();
  private sweepAt = 1024;
  private restoring: Promise<void> | undefined;

  private constructor(options: RedisSharedStateOptions) {
    this.prefix = options.prefix ?? '{switchboard}';
    this.ttlMs = options.reservationTtlMs ?? DEFAULT_RESERVATION_TTL_MS;
    this.clock = options.clock;
    const timeout = options.commandTimeoutMs ?? 1000;
    this.client = createRedisClient(options.url, timeout);
  }

  static async open(options: RedisSharedStateOptions): Promise<RedisSharedState> {
    const state = new RedisSharedState(options);
    await state.client.connect();
    await state.syncClock();
    await state.restoreWindows();
    state.offsetTimer = setInterval(() => void state.syncClock().catch(() => {}), 10_000);
    state.offsetTimer.unref();
    return state;
  }

  private async syncClock(): Promise<void> {
    const before = Date.now();
    const [sec, usec] = (await this.client.sendCommand(['TIME'])) as [string, string];
    const after = Date.now();
    this.offsetMs = Number(sec) * 1000 + Math.floor(Number(usec) / 1000) - Math.round((before + after) / 2);
  }

  /** Redis's clock, as measured at the last sync: no round trip (the scripts read TIME themselves). */
  now(): Promise<number> {
    return Promise.resolve(this.clock ? this.clock.now() : Date.now() + this.offsetMs);
  }

  private nowArg(): string {
    return this.clock ? String(this.clock.now()) : '';
  }

  private key(...parts: string[]): string {
    return `${this.prefix}:${parts.join(':')}`;
  }

  private budgetKeys(scope: string, periodId: string): string[] {
    return [this.key('b', scope, periodId), this.key('bz', scope, periodId), this.key('ba', scope, periodId)];
  }

  private run(script: Script, keys: string[], args: string[]): Promise<unknown> {
    return runScript(this.client, script, keys, args);
  }

  /**
   * Give the rate windows this instance saw back the backlog they had, on a Redis that lost its
   * data (they would start full, admitting a whole minute again), and adopt the epoch (made
   * here when there is none). At open, only the epoch.
   */
  private restoreWindows(): Promise<void> {
    // The requests that all found the epoch changed share one restore.
    this.restoring ??= this.restoreWindowsOnce().finally(() => (this.restoring = undefined));
    return this.restoring;
  }

  private async restoreWindowsOnce(): Promise<void> {
    const keys = [this.key('epoch')];
    const args = [this.nowArg(), randomUUID()];
    for (const [key, w] of this.windows) {
      keys.push(key);
      args.push(String(w.endsAt), String(w.limit));
    }
    this.epoch = String(await this.run(SCRIPTS.restoreWindows, keys, args));
  }

  /** Remember the windows a reserve reported, to restore them after a wipe. */
  private noteWindows(input: ReserveInput, scopes: ScopeState[], now: number): void {
    scopes.forEach((state, i) => {
      const scope = input.scopes[i]?.scope ?? '';
      if (state.requests) this.windows.set(this.key('w', scope, 'rpm'), { endsAt: now + state.requests.resetMs, limit: state.requests.limit });
      if (state.tokens) this.windows.set(this.key('w', scope, 'tpm'), { endsAt: now + state.tokens.resetMs, limit: state.tokens.limit });
    });
    if (this.windows.size < this.sweepAt) return;
    for (const [key, w] of this.windows) if (w.endsAt <= now) this.windows.delete(key);
    this.sweepAt = Math.max(1024, this.windows.size * 2);
  }

  async reserve(input: ReserveInput): Promise<ReserveResult> {
    let result = await this.reserveOnce(input);
    if (result === 'lost') {
      await this.restoreWindows();
      result = await this.reserveOnce(input);
      if (result === 'lost') throw new Error('Redis lost its data again while the rate windows were restored');
    }
    return result;
  }

  private async reserveOnce(input: ReserveInput): Promise<ReserveResult | 'lost'> {
    const keys = [this.key('r', input.id), this.key('epoch')];
    const args = [this.nowArg(), String(this.ttlMs), String(input.costMicros), String(input.tokens), input.id];
    for (const s of input.scopes) {
      keys.push(...this.budgetKeys(s.scope, s.budget?.periodId ?? '-'), this.key('w', s.scope, 'rpm'), this.key('w', s.scope, 'tpm'));
      const reset = s.budget && Number.isFinite(s.budget.resetAtMs) ? String(s.budget.resetAtMs) : '';
      args.push(s.budget ? String(s.budget.limitMicros) : '', reset, s.rpm === undefined ? '' : String(s.rpm), s.tpm === undefined ? '' : String(s.tpm));
    }
    args.push(input.checkSeeded ? '1' : '0', this.epoch);
    const reply = (await this.run(SCRIPTS.reserve, keys, args)) as number[] | [number, number, number[][]];
    if (reply[0] === 3) return 'lost';
    if (reply[0] === 2) {
      const missing = reply[1] as unknown as number[];
      return { ok: false, unseeded: missing.map((i) => ({ scope: input.scopes[i - 1]?.scope ?? '', periodId: input.scopes[i - 1]?.budget?.periodId ?? '' })) };
    }
    if (reply[0] === 0) {
      const [, index, kind, reason, retry, reset, remaining] = reply as number[];
      return {
        ok: false,
        scope: input.scopes[(index as number) - 1]?.scope ?? '',
        limit: KINDS[(kind as number) - 1] as LimitKind,
        reason: REASONS[(reason as number) - 1] as Refusal['reason'],
        retryAfterMs: (retry as number) < 0 ? null : (retry as number),
        resetAtMs: (reset as number) < 0 ? null : (reset as number),
        remaining: remaining as number,
      };
    }
    const [, expiresAtMs, states] = reply as [number, number, number[][]];
    const window = (v: number[], at: number): WindowState | undefined => (v[at] === 1 ? { limit: v[at + 1] as number, remaining: v[at + 2] as number, resetMs: v[at + 3] as number } : undefined);
    const scopes = input.scopes.map((s, i): ScopeState => {
      const v = states[i] as number[];
      const state: ScopeState = { scope: s.scope };
      if (v[0] === 1) state.budgetRemainingMicros = v[1] as number;
      const requests = window(v, 2);
      const tokens = window(v, 6);
      if (requests) state.requests = requests;
      if (tokens) state.tokens = tokens;
      return state;
    });
    this.noteWindows(input, scopes, expiresAtMs - this.ttlMs);
    return { ok: true, expiresAtMs, scopes };
  }

  async settle(input: SettleInput): Promise<void> {
    await this.settleScript(input);
  }

  /** Settle and append the ledger's entry to its stream, in one script: one command, one round trip. */
  async settleRecording(input: SettleInput, journal: JournalEntry): Promise<string | undefined> {
    const reply = await this.settleScript(input, journal);
    return typeof reply === 'string' ? reply : undefined;
  }

  private settleScript(input: SettleInput, journal?: JournalEntry): Promise<unknown> {
    const keys = [this.key('r', input.id)];
    const args = [this.nowArg(), input.id, String(input.costMicros), String(input.tokens)];
    for (const ref of input.scopes) {
      keys.push(...this.budgetKeys(ref.scope, ref.periodId ?? '-'), this.key('w', ref.scope, 'tpm'));
      args.push(ref.periodId === undefined ? '0' : '1');
    }
    args.push(String(this.ttlMs));
    if (journal) {
      keys.push(journal.stream);
      args.push(journal.entry);
    }
    return this.run(SCRIPTS.settle, keys, args);
  }

  async seedSpend(scope: string, periodId: string, spentMicros: number): Promise<void> {
    await this.run(SCRIPTS.seed, [this.key('b', scope, periodId)], [String(spentMicros)]);
  }

  async restore(reservation: RestoredReservation): Promise<void> {
    const keys = [this.key('r', reservation.id), ...reservation.scopes.filter((r) => r.periodId !== undefined).flatMap((r) => this.budgetKeys(r.scope, r.periodId as string))];
    await this.run(SCRIPTS.restore, keys, [this.nowArg(), reservation.id, String(reservation.costMicros), String(reservation.expiresAtMs)]);
  }

  async budget(scope: string, periodId: string): Promise<{ spentMicros: number; reservedMicros: number } | undefined> {
    const reply = (await this.run(SCRIPTS.budget, this.budgetKeys(scope, periodId), [this.nowArg()])) as number[];
    return reply.length === 0 ? undefined : { spentMicros: reply[0] as number, reservedMicros: reply[1] as number };
  }

  async close(): Promise<void> {
    if (this.offsetTimer) clearInterval(this.offsetTimer);
    if (this.client.isOpen) await this.client.close();
  }
}
