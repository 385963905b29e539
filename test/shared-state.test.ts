import { execFileSync } from 'node:child_process';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { periodWindow } from '../src/store/periods.js';
import { RedisSharedState } from '../src/store/redis-shared-state.js';
import { ManualClock, MemorySharedState, type Clock, type ReserveInput, type ScopeLimits, type SharedState } from '../src/store/shared-state.js';
import { startRedis, type RedisServer } from './helpers/servers.js';

const budget = (limitMicros: number, periodId = 'total'): ScopeLimits['budget'] => ({ limitMicros, periodId, resetAtMs: Number.POSITIVE_INFINITY });

let n = 0;
const req = (scopes: ScopeLimits[], costMicros = 0, tokens = 0): ReserveInput => ({ id: `r${++n}`, scopes, costMicros, tokens });

type Make = (options: { clock: Clock; reservationTtlMs?: number }) => Promise<SharedState>;

let redis: RedisServer;
const opened: SharedState[] = [];
let prefixes = 0;
beforeAll(async () => {
  redis = await startRedis();
}, 30_000);
afterAll(async () => {
  await Promise.all(opened.map((s) => s.close()));
  await redis?.destroy();
});

// One suite, every implementation: the Redis one runs its Lua scripts on a real redis-server,
// told the test's clock instead of reading TIME.
const implementations: [string, Make, number][] = [
  ['MemorySharedState', (o) => Promise.resolve(new MemorySharedState(o)), 200],
  [
    'RedisSharedState',
    async (o) => {
      const state = await RedisSharedState.open({ url: redis.url, prefix: `{t${++prefixes}}`, ...o });
      opened.push(state);
      return state;
    },
    40,
  ],
];

describe.each(implementations)('%s', (name, make, propertyRuns) => {
  describe(`${name}: rate limits (GCRA)`, () => {
    it('10 rpm admits exactly 10 in a burst, then one every 6 seconds', async () => {
      const clock = new ManualClock();
      const state = await make({ clock });
      const scope = { scope: 'key:a', rpm: 10 };
      const burst = await Promise.all(Array.from({ length: 15 }, () => state.reserve(req([scope]))));
      expect(burst.filter((r) => r.ok)).toHaveLength(10);
      const refused = burst.find((r) => !r.ok);
      expect(refused).toMatchObject({ ok: false, limit: 'rpm', reason: 'window', retryAfterMs: 6000, scope: 'key:a' });

      clock.advance(5999);
      expect((await state.reserve(req([scope]))).ok).toBe(false);
      clock.advance(1);
      expect((await state.reserve(req([scope]))).ok).toBe(true);
      expect((await state.reserve(req([scope]))).ok).toBe(false);
      clock.advance(6000 * 3);
      const after = await Promise.all(Array.from({ length: 5 }, () => state.reserve(req([scope]))));
      expect(after.filter((r) => r.ok)).toHaveLength(3);
      clock.advance(60_000);
      const full = await Promise.all(Array.from({ length: 12 }, () => state.reserve(req([scope]))));
      expect(full.filter((r) => r.ok)).toHaveLength(10);
    });

    it('reports the remaining requests and the time to a full window', async () => {
      const state = await make({ clock: new ManualClock() });
      const r = await state.reserve(req([{ scope: 'key:a', rpm: 60 }]));
      expect(r.ok && r.scopes[0]?.requests).toEqual({ limit: 60, remaining: 59, resetMs: 1000 });
    });

    it('tokens per minute: the unused part of a reservation comes back at settle', async () => {
      const clock = new ManualClock();
      const state = await make({ clock });
      const scope = { scope: 'key:a', tpm: 1000 };
      const first = req([scope], 0, 800);
      expect((await state.reserve(first)).ok).toBe(true);
      expect(await state.reserve(req([scope], 0, 300))).toMatchObject({ ok: false, limit: 'tpm', reason: 'window', retryAfterMs: 6000 });
      await state.settle({ id: first.id, scopes: [{ scope: 'key:a' }], costMicros: 0, tokens: 100 });
      expect((await state.reserve(req([scope], 0, 300))).ok).toBe(true);
    });

    it('a request with more tokens than a minute allows is refused as too large', async () => {
      const state = await make({ clock: new ManualClock() });
      expect(await state.reserve(req([{ scope: 'team:t', tpm: 100 }], 0, 101))).toMatchObject({ ok: false, reason: 'too-large', retryAfterMs: null });
    });
  });

  describe(`${name}: budgets`, () => {
    it('reserves every scope or none: a refusal by the team takes nothing from the key', async () => {
      const state = await make({ clock: new ManualClock() });
      const key = { scope: 'key:a', budget: budget(1000), rpm: 100 };
      const team = { scope: 'team:t', budget: budget(150) };
      expect((await state.reserve(req([key, team], 100))).ok).toBe(true);
      expect(await state.reserve(req([key, team], 100))).toMatchObject({ ok: false, scope: 'team:t', limit: 'budget', reason: 'busy' });
      expect(await state.budget('key:a', 'total')).toEqual({ spentMicros: 0, reservedMicros: 100 });
      const r = await state.reserve(req([key], 1));
      expect(r.ok && r.scopes[0]?.requests?.remaining).toBe(98);
    });

    it('settle replaces the hold with the exact cost; zero releases it', async () => {
      const state = await make({ clock: new ManualClock() });
      const scopes = [{ scope: 'key:a', budget: budget(1000, '2026-01') }];
      const refs = [{ scope: 'key:a', periodId: '2026-01' }];
      const a = req(scopes, 400);
      const b = req(scopes, 400);
      await state.reserve(a);
      await state.reserve(b);
      await state.settle({ id: a.id, scopes: refs, costMicros: 123, tokens: 0 });
      await state.settle({ id: b.id, scopes: refs, costMicros: 0, tokens: 0 });
      expect(await state.budget('key:a', '2026-01')).toEqual({ spentMicros: 123, reservedMicros: 0 });
    });

    it('refuses a reservation larger than the whole budget, and says when an exhausted one resets', async () => {
      const clock = new ManualClock(Date.UTC(2026, 4, 20, 12));
      const state = await make({ clock });
      const window = periodWindow('month', clock.now());
      const scopes = [{ scope: 'key:a', budget: { limitMicros: 500, periodId: window.id, resetAtMs: window.endMs } }];
      expect(await state.reserve(req(scopes, 501))).toMatchObject({ ok: false, reason: 'too-large', retryAfterMs: null });
      await state.seedSpend('key:a', window.id, 450);
      expect(await state.reserve(req(scopes, 100))).toMatchObject({ ok: false, reason: 'exhausted', remaining: 50, resetAtMs: Date.UTC(2026, 5, 1), retryAfterMs: Date.UTC(2026, 5, 1) - clock.now() });
      // A new period's counter starts at zero.
      const june = periodWindow('month', Date.UTC(2026, 5, 1));
      expect((await state.reserve(req([{ scope: 'key:a', budget: { limitMicros: 500, periodId: june.id, resetAtMs: june.endMs } }], 100))).ok).toBe(true);
    });

    it('a reserve that checks seeding names the budget counters the store does not know, and takes nothing', async () => {
      const state = await make({ clock: new ManualClock() });
      const key = { scope: 'key:a', budget: budget(1000), rpm: 1 };
      const team = { scope: 'team:t', budget: budget(1000) };
      await state.seedSpend('team:t', 'total', 100);
      expect(await state.reserve({ ...req([key, team], 100), checkSeeded: true })).toEqual({ ok: false, unseeded: [{ scope: 'key:a', periodId: 'total' }] });
      // A settlement that reached the counter before its seed is added to the ledger's sum, not overwritten by it.
      await state.settle({ id: 'before-seed', scopes: [{ scope: 'key:a', periodId: 'total' }], costMicros: 50, tokens: 0 });
      await state.seedSpend('key:a', 'total', 300);
      await state.seedSpend('key:a', 'total', 999); // seeded once
      expect(await state.budget('key:a', 'total')).toEqual({ spentMicros: 350, reservedMicros: 0 });
      // Nothing was taken by the refused call: the 1-rpm window still has its request.
      expect((await state.reserve({ ...req([key, team], 100), checkSeeded: true })).ok).toBe(true);
    });

    it('a reservation that is never settled expires and frees its money', async () => {
      const clock = new ManualClock();
      const state = await make({ clock, reservationTtlMs: 60_000 });
      const scopes = [{ scope: 'key:a', budget: budget(100) }];
      expect((await state.reserve(req(scopes, 100))).ok).toBe(true);
      expect((await state.reserve(req(scopes, 100))).ok).toBe(false);
      clock.advance(60_000);
      expect(await state.budget('key:a', 'total')).toEqual({ spentMicros: 0, reservedMicros: 0 });
      expect((await state.reserve(req(scopes, 100))).ok).toBe(true);
    });

    it('a settle after expiry still charges the period the request was reserved in', async () => {
      const clock = new ManualClock();
      const state = await make({ clock, reservationTtlMs: 1000 });
      const r = req([{ scope: 'key:a', budget: budget(100) }], 50);
      await state.reserve(r);
      clock.advance(5000);
      await state.settle({ id: r.id, scopes: [{ scope: 'key:a', periodId: 'total' }], costMicros: 40, tokens: 0 });
      expect(await state.budget('key:a', 'total')).toEqual({ spentMicros: 40, reservedMicros: 0 });
    });

    it('property: whatever the costs and order, spent plus held never exceeds the budget', async () => {
      await fc.assert(
        fc.asyncProperty(
          fc.integer({ min: 1, max: 10_000 }),
          fc.array(fc.record({ worst: fc.integer({ min: 0, max: 3000 }), used: fc.double({ min: 0, max: 1, noNaN: true }), settleFirst: fc.boolean() }), { maxLength: 60 }),
          async (limit, requests) => {
            const state = await make({ clock: new ManualClock() });
            const scopes = [{ scope: 'key:a', budget: budget(limit) }, { scope: 'total', budget: budget(limit * 2) }];
            const refs = scopes.map((s) => ({ scope: s.scope, periodId: 'total' }));
            const open: { id: string; cost: number }[] = [];
            for (const r of requests) {
              if (r.settleFirst && open.length > 0) {
                const o = open.shift() as { id: string; cost: number };
                await state.settle({ id: o.id, scopes: refs, costMicros: o.cost, tokens: 0 });
              }
              const input = req(scopes, r.worst);
              const result = await state.reserve(input);
              if (result.ok) open.push({ id: input.id, cost: Math.floor(r.worst * r.used) });
              const b = (await state.budget('key:a', 'total')) ?? { spentMicros: 0, reservedMicros: 0 };
              expect(b.spentMicros + b.reservedMicros).toBeLessThanOrEqual(limit);
            }
            for (const o of open) await state.settle({ id: o.id, scopes: refs, costMicros: o.cost, tokens: 0 });
            const b = (await state.budget('key:a', 'total')) ?? { spentMicros: 0, reservedMicros: 0 };
            expect(b.reservedMicros).toBe(0);
            expect(b.spentMicros).toBeLessThanOrEqual(limit);
          },
        ),
        { numRuns: propertyRuns },
      );
    });
  });
});

describe('RedisSharedState: a Redis that lost its data', () => {
  it('gives the rate windows every instance saw back their backlog, so they do not start full', async () => {
    const clock = new ManualClock();
    const prefix = `{t${++prefixes}}`;
    const a = await RedisSharedState.open({ url: redis.url, prefix, clock });
    const b = await RedisSharedState.open({ url: redis.url, prefix, clock });
    opened.push(a, b);
    const key = { scope: 'key:a', rpm: 10 };
    const team = { scope: 'team:t', tpm: 1000 };
    // A takes 6 requests of the key's 10 and 600 tokens of the team's 1000; B the other 4 requests.
    for (let i = 0; i < 6; i++) expect((await a.reserve(req([key, team], 0, 100))).ok).toBe(true);
    for (let i = 0; i < 4; i++) expect((await b.reserve(req([key]))).ok).toBe(true);
    clock.advance(6000); // one request back
    execFileSync('redis-cli', ['-p', String(redis.port), 'FLUSHALL']);
    // Each instance restores what it last saw at its next reserve: B had seen the window full.
    expect((await b.reserve(req([key]))).ok).toBe(true);
    expect(await b.reserve(req([key]))).toMatchObject({ ok: false, limit: 'rpm' });
    expect(await a.reserve(req([key]))).toMatchObject({ ok: false, limit: 'rpm' });
    // A alone saw the team's tokens: 600 held, minus the 100 a tenth of a minute returned.
    expect(await a.reserve(req([team], 0, 600))).toMatchObject({ ok: false, limit: 'tpm' });
    expect((await a.reserve(req([team], 0, 500))).ok).toBe(true);
  });
});

describe('periodWindow', () => {
  it('resets a day budget at local midnight and a month budget on the first, in the given zone', () => {
    const at = Date.UTC(2026, 2, 31, 23, 30); // 01:30 on 1 April in Berlin (summer time, UTC+2)
    expect(periodWindow('day', at, 'UTC')).toEqual({ id: '2026-03-31', startMs: Date.UTC(2026, 2, 31), endMs: Date.UTC(2026, 3, 1) });
    expect(periodWindow('day', at, 'Europe/Berlin')).toEqual({ id: '2026-04-01', startMs: Date.UTC(2026, 2, 31, 22), endMs: Date.UTC(2026, 3, 1, 22) });
    expect(periodWindow('month', at, 'Europe/Berlin')).toEqual({ id: '2026-04', startMs: Date.UTC(2026, 2, 31, 22), endMs: Date.UTC(2026, 3, 30, 22) });
    // March in Berlin starts in winter time (UTC+1) and ends in summer time.
    expect(periodWindow('month', Date.UTC(2026, 2, 15), 'Europe/Berlin')).toEqual({ id: '2026-03', startMs: Date.UTC(2026, 1, 28, 23), endMs: Date.UTC(2026, 2, 31, 22) });
    expect(periodWindow('day', Date.UTC(2026, 0, 1, 3), 'Asia/Kolkata')).toMatchObject({ id: '2026-01-01', startMs: Date.UTC(2025, 11, 31, 18, 30) });
    expect(periodWindow('total', at)).toEqual({ id: 'total', startMs: 0, endMs: Number.POSITIVE_INFINITY });
  });
});
