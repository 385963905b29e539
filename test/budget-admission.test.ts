import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { estimateTokens, tokenUpperBound } from '../src/catalog/context.js';
import { AdmissionError, type Principal, type Ticket } from '../src/gateway/admission.js';
import { BudgetAdmission } from '../src/gateway/budget-admission.js';
import { FEMTO_PER_MICRO, SQLiteLedger, type Ledger } from '../src/store/ledger.js';
import { VirtualKeys } from '../src/gateway/virtual-keys.js';
import { chatRequest, keyStores, PEPPER, worstFemto } from './helpers/keys.js';

const MODEL = 'sim/llama@sim-fast';
const PROMPT = 'How many requests fit in this budget?';
const MAX = 100;

async function refusal(p: Promise<unknown>): Promise<AdmissionError> {
  try {
    await p;
  } catch (err) {
    if (err instanceof AdmissionError) return err;
    throw err;
  }
  throw new Error('expected a refusal');
}

describe('budgets under concurrency', () => {
  it('200 concurrent requests against a budget of exactly 20 worst cases spend at most the budget', async () => {
    const worst = worstFemto('sim-fast', PROMPT, MAX);
    const worstMicros = (worst + FEMTO_PER_MICRO - 1n) / FEMTO_PER_MICRO;
    const budgetMicros = Number(worstMicros) * 20;
    const s = await keyStores();
    const { key, secret } = await s.keys.create({ name: 'race', budget: { limitMicros: budgetMicros, period: 'total' } });
    const principal = (await s.keys.authenticate(secret)) as Principal;
    expect(principal.keyId).toBe(key.id);

    // Every request spends its whole worst case: exactly 20 may pass, whatever the interleaving.
    let admitted = 0;
    const outcomes = await Promise.allSettled(
      Array.from({ length: 200 }, async (_, i) => {
        const ticket = await s.admission.admit({ principal, model: MODEL, request: chatRequest(PROMPT, MAX), protocol: 'openai' });
        admitted++;
        await sleep(i % 7);
        await ticket.settle({ status: 'ok', usage: { promptTokens: 1, completionTokens: 1, totalTokens: 2 }, costFemto: worst, provider: 'sim-fast' });
      }),
    );
    const refused = outcomes.filter((o) => o.status === 'rejected').map((o) => (o as PromiseRejectedResult).reason as AdmissionError);
    expect(admitted).toBe(20);
    expect(refused).toHaveLength(180);
    expect(refused.every((e) => e instanceof AdmissionError && e.status === 429 && e.wireType === 'insufficient_quota')).toBe(true);
    const spent = await s.ledger.spentFemto(`key:${key.id}`, 0);
    expect(spent).toBe(worst * 20n);
    expect(spent).toBeLessThanOrEqual(BigInt(budgetMicros) * FEMTO_PER_MICRO);
    console.log(`race: 200 concurrent requests, budget $${budgetMicros / 1e6} (20 worst cases): admitted ${admitted}, spent $${Number(spent) / 1e15}`);
  });

  it('with exact costs below the worst case, more requests fit and the spend still never passes the budget', async () => {
    const worst = worstFemto('sim-fast', PROMPT, MAX);
    const budgetMicros = Number((worst + FEMTO_PER_MICRO - 1n) / FEMTO_PER_MICRO) * 20;
    const s = await keyStores();
    const { key, secret } = await s.keys.create({ name: 'race', budget: { limitMicros: budgetMicros, period: 'day' } });
    const principal = (await s.keys.authenticate(secret)) as Principal;
    let charged = 0n;
    let admitted = 0;
    // Waves of 200 in flight until the budget refuses everything.
    for (let wave = 0; wave < 10; wave++) {
      await Promise.allSettled(
        Array.from({ length: 200 }, async (_, i) => {
          const ticket = await s.admission.admit({ principal, model: MODEL, request: chatRequest(PROMPT, MAX), protocol: 'openai' });
          admitted++;
          await sleep(i % 5);
          const completion = 1 + ((i * 37 + wave) % MAX);
          const cost = worstFemto('sim-fast', PROMPT, completion);
          charged += cost;
          await ticket.settle({ status: 'ok', usage: { promptTokens: 9, completionTokens: completion, totalTokens: 9 + completion }, costFemto: cost });
        }),
      );
    }
    const spent = await s.ledger.spentFemto(`key:${key.id}`, 0);
    expect(spent).toBe(charged);
    expect(admitted).toBeGreaterThan(20);
    expect(spent).toBeLessThanOrEqual(BigInt(budgetMicros) * FEMTO_PER_MICRO);
  });

  it('property: any budget, any mix of exact costs, failures and timings, the spend never passes the budget', async () => {
    const worst = worstFemto('sim-fast', PROMPT, MAX);
    await fc.assert(
      fc.asyncProperty(
        // From less than one worst case to forty of them, in micro-dollars.
        fc.integer({ min: 1, max: Number(worst / FEMTO_PER_MICRO) * 40 }),
        fc.array(fc.record({ used: fc.integer({ min: 0, max: 1000 }), fails: fc.boolean(), delay: fc.integer({ min: 0, max: 3 }) }), { minLength: 1, maxLength: 120 }),
        async (budgetMicros, requests) => {
          const s = await keyStores();
          const { key, secret } = await s.keys.create({ name: 'p', budget: { limitMicros: budgetMicros, period: 'total' } });
          const principal = (await s.keys.authenticate(secret)) as Principal;
          await Promise.allSettled(
            requests.map(async (r) => {
              const ticket = await s.admission.admit({ principal, model: MODEL, request: chatRequest(PROMPT, MAX), protocol: 'openai' });
              await sleep(r.delay);
              const costFemto = (worst * BigInt(r.used)) / 1000n;
              await ticket.settle(r.fails ? { status: 'error', usage: { promptTokens: 1, completionTokens: 1, totalTokens: 2 }, costFemto: costFemto / 2n } : { status: 'ok', costFemto });
            }),
          );
          expect(await s.ledger.spentFemto(`key:${key.id}`, 0)).toBeLessThanOrEqual(BigInt(budgetMicros) * FEMTO_PER_MICRO);
          expect(await s.state.budget(`key:${key.id}`, 'total')).toMatchObject({ reservedMicros: 0 });
          await s.ledger.close();
        },
      ),
      { numRuns: 25 },
    );
  });

  it('a key and its team both hold: two keys share the team budget', async () => {
    const s = await keyStores();
    const worst = worstFemto('sim-fast', PROMPT, MAX);
    const worstMicros = Number((worst + FEMTO_PER_MICRO - 1n) / FEMTO_PER_MICRO);
    await s.ledger.createTeam('eng', { budget: { limitMicros: worstMicros * 3, period: 'month' } }, s.clock.now());
    const a = await s.keys.create({ name: 'a', teamId: 'eng' });
    const b = await s.keys.create({ name: 'b', teamId: 'eng', budget: { limitMicros: worstMicros * 10, period: 'month' } });
    const pa = (await s.keys.authenticate(a.secret)) as Principal;
    const pb = (await s.keys.authenticate(b.secret)) as Principal;
    const tickets: Ticket[] = [];
    for (const p of [pa, pb, pa]) tickets.push(await s.admission.admit({ principal: p, model: MODEL, request: chatRequest(PROMPT, MAX), protocol: 'openai' }));
    const err = await refusal(s.admission.admit({ principal: pb, model: MODEL, request: chatRequest(PROMPT, MAX), protocol: 'openai' }));
    expect(err.scope).toBe('team:eng');
    expect(err.message).toMatch(/^Team "eng"'s budget \(\$0\.000\d+ a month\) is held by requests in flight/);
    for (const t of tickets) await t.settle({ status: 'ok', costFemto: worst });
    const spent = await refusal(s.admission.admit({ principal: pb, model: MODEL, request: chatRequest(PROMPT, MAX), protocol: 'openai' }));
    expect(spent.message).toMatch(/^Team "eng"'s budget of \$0\.000\d+ a month is spent: \$0\.000000 left/);
    expect(Date.parse(spent.resetAt ?? '')).toBeGreaterThan(s.clock.now());
    expect(spent.retryAfterMs).toBe(Date.parse(spent.resetAt ?? '') - s.clock.now());
  });

  it('the total budget holds across the master key and every virtual key', async () => {
    const worst = worstFemto('sim-fast', PROMPT, MAX);
    const worstMicros = Number((worst + FEMTO_PER_MICRO - 1n) / FEMTO_PER_MICRO);
    const s = await keyStores({ totalBudget: { limitMicros: worstMicros * 2, period: 'day' }, masterKey: 'master-secret-123' });
    const { secret } = await s.keys.create({ name: 'k' });
    const master = (await s.keys.authenticate('master-secret-123')) as Principal;
    const key = (await s.keys.authenticate(secret)) as Principal;
    const a = await s.admission.admit({ principal: master, model: MODEL, request: chatRequest(PROMPT, MAX), protocol: 'openai' });
    const b = await s.admission.admit({ principal: key, model: MODEL, request: chatRequest(PROMPT, MAX), protocol: 'openai' });
    const err = await refusal(s.admission.admit({ principal: master, model: MODEL, request: chatRequest(PROMPT, MAX), protocol: 'openai' }));
    expect(err.scope).toBe('total');
    expect(err.message).toMatch(/^The gateway's total budget \(\$0\.000\d+ a day\) is held by requests in flight/);
    await a.settle({ status: 'ok', costFemto: worst });
    await b.settle({ status: 'ok', costFemto: worst });
    const byKey = (await s.ledger.usage({ by: 'key' })).map((r) => r.key);
    expect(byKey).toHaveLength(2);
    expect(byKey).toEqual(expect.arrayContaining(['master', expect.stringMatching(/^sk-sb-/)]));
  });

  it('a request whose worst case is above the whole budget is refused, not queued', async () => {
    const s = await keyStores();
    const { secret } = await s.keys.create({ name: 'small', budget: { limitMicros: 10, period: 'total' } });
    const err = await refusal(s.admission.admit({ principal: (await s.keys.authenticate(secret)) as Principal, model: MODEL, request: chatRequest(PROMPT, MAX), protocol: 'openai' }));
    expect(err.status).toBe(429);
    expect(err.message).toBe(`This request may cost up to $0.000${Number((worstFemto('sim-fast', PROMPT, MAX) + FEMTO_PER_MICRO - 1n) / FEMTO_PER_MICRO)}, more than key "small"'s whole budget of $0.000010. Lower max_tokens or shorten the prompt.`);
    expect(err.retryAfterMs).toBeUndefined();
  });

  it('the output cap is the request\'s max tokens, else the server default, never the model\'s output limit', async () => {
    const s = await keyStores({ defaultMaxTokens: 50 });
    const worst = worstFemto('sim-fast', PROMPT, 50);
    const { secret } = await s.keys.create({ name: 'cap', budget: { limitMicros: Number((worst + FEMTO_PER_MICRO - 1n) / FEMTO_PER_MICRO), period: 'total' } });
    const principal = (await s.keys.authenticate(secret)) as Principal;
    const ticket = await s.admission.admit({ principal, model: MODEL, request: chatRequest(PROMPT), protocol: 'openai' });
    expect(ticket.headers['x-switchboard-budget-remaining']).toBe('0.000000');
    await ticket.settle({ status: 'error' });
    await refusal(s.admission.admit({ principal, model: MODEL, request: chatRequest(PROMPT, 51), protocol: 'openai' }));
  });
});

describe('settling', () => {
  it('a failure without usage releases the reservation; a stream cut midway is charged what it used', async () => {
    const s = await keyStores();
    const { key, secret } = await s.keys.create({ name: 'k', budget: { limitMicros: 1_000_000, period: 'total' } });
    const principal = (await s.keys.authenticate(secret)) as Principal;
    const t1 = await s.admission.admit({ principal, model: MODEL, request: chatRequest(PROMPT, MAX), protocol: 'openai' });
    expect(await s.state.budget(`key:${key.id}`, 'total')).toEqual({ spentMicros: 0, reservedMicros: Number((worstFemto('sim-fast', PROMPT, MAX) + FEMTO_PER_MICRO - 1n) / FEMTO_PER_MICRO) });
    await t1.settle({ status: 'error' });
    expect(await s.state.budget(`key:${key.id}`, 'total')).toEqual({ spentMicros: 0, reservedMicros: 0 });

    const t2 = await s.admission.admit({ principal, model: MODEL, request: chatRequest(PROMPT, MAX), protocol: 'openai' });
    // No cost given: the catalog's price of the usage, as the library computes it.
    await t2.settle({ status: 'cancelled', usage: { promptTokens: 12, completionTokens: 30, totalTokens: 42 }, provider: 'sim-fast', resolvedModel: 'llama' });
    const expected = 12n * 600_000_000n + 30n * 2_400_000_000n;
    expect(await s.ledger.spentFemto(`key:${key.id}`, 0)).toBe(expected);
    expect(await s.state.budget(`key:${key.id}`, 'total')).toEqual({ spentMicros: 80, reservedMicros: 0 });
    const [row] = await s.ledger.usage({ by: 'model' });
    expect(row).toMatchObject({ key: MODEL, requests: 2, promptTokens: 12, completionTokens: 30, costFemto: expected, unpriced: 0 });
  });

  it('settle is idempotent: a second call changes nothing', async () => {
    const s = await keyStores();
    const { key, secret } = await s.keys.create({ name: 'k', budget: { limitMicros: 1_000_000, period: 'total' } });
    const t = await s.admission.admit({ principal: (await s.keys.authenticate(secret)) as Principal, model: MODEL, request: chatRequest(PROMPT, MAX), protocol: 'openai' });
    await t.settle({ status: 'ok', costFemto: 5n * FEMTO_PER_MICRO });
    await t.settle({ status: 'ok', costFemto: 7n * FEMTO_PER_MICRO });
    expect(await s.ledger.spentFemto(`key:${key.id}`, 0)).toBe(5n * FEMTO_PER_MICRO);
  });
});

describe('rate limits, model access and headers', () => {
  it('10 rpm: 10 admitted in a burst, the 11th gets 429 with Retry-After and x-ratelimit-* headers, one more after 6 s', async () => {
    const s = await keyStores();
    const { secret } = await s.keys.create({ name: 'rpm', rpm: 10, tpm: 100_000 });
    const principal = (await s.keys.authenticate(secret)) as Principal;
    const admit = () => s.admission.admit({ principal, model: MODEL, request: chatRequest(PROMPT, MAX), protocol: 'openai' });
    const tickets = await Promise.all(Array.from({ length: 10 }, admit));
    expect(tickets[0]?.headers).toMatchObject({ 'x-ratelimit-limit-requests': '10', 'x-ratelimit-remaining-requests': '9', 'x-ratelimit-reset-requests': '6s', 'x-ratelimit-limit-tokens': '100000' });
    expect(tickets[9]?.headers['x-ratelimit-remaining-requests']).toBe('0');
    expect(tickets[9]?.headers['x-ratelimit-reset-requests']).toBe('1m0s');
    const err = await refusal(admit());
    expect(err).toMatchObject({ status: 429, code: 'rate_limit', retryAfterMs: 6000, scope: expect.stringMatching(/^key:sk-sb-/) });
    expect(err.headers).toEqual({ 'x-ratelimit-limit-requests': '10', 'x-ratelimit-remaining-requests': '0', 'x-ratelimit-reset-requests': '6s' });
    expect(err.message).toBe('Key "rpm"\'s limit of 10 requests per minute is reached; try again in 6s.');
    s.clock.advance(6000);
    await admit();
    await refusal(admit());
  });

  it('tokens per minute: a request the byte bound would not fit is still counted exactly, and admitted when it fits', async () => {
    const s = await keyStores();
    const text = 'word '.repeat(200); // 1,000 bytes, about 200 tokens
    const exact = estimateTokens(chatRequest(text).messages) + MAX;
    expect(tokenUpperBound(chatRequest(text).messages) + MAX).toBeGreaterThan(exact + 500);
    // No budget: the local model's tokens are all that is held; the limit fits the exact count alone.
    const { secret } = await s.keys.create({ name: 'tpm', tpm: exact });
    const principal = (await s.keys.authenticate(secret)) as Principal;
    const admit = () => s.admission.admit({ principal, model: 'local-model@ollama', request: chatRequest(text, MAX), protocol: 'openai' });
    const ticket = await admit();
    expect(ticket.headers['x-ratelimit-remaining-tokens']).toBe('0');
    const err = await refusal(admit());
    expect(err).toMatchObject({ status: 429, code: 'rate_limit' });
    expect(err.message).toBe(`Key "tpm"'s limit of ${exact} tokens per minute is reached; try again in 1m0s.`);
  });

  it('a budgeted key cannot use a model with no known price', async () => {
    const s = await keyStores();
    const { secret } = await s.keys.create({ name: 'p', budget: { limitMicros: 1_000_000, period: 'total' } });
    const err = await refusal(s.admission.admit({ principal: (await s.keys.authenticate(secret)) as Principal, model: 'nobody/unknown-model', request: chatRequest('hi', 5), protocol: 'openai' }));
    expect(err).toMatchObject({ status: 403, code: 'permission' });
    expect(err.message).toMatch(/^No price is known for "nobody\/unknown-model"/);
  });
});

describe('keys take effect at once', () => {
  it('revocation, expiry and rotation with and without a grace period', async () => {
    const s = await keyStores({ masterKey: 'master-secret-123' });
    const { key, secret } = await s.keys.create({ name: 'k', expiresAt: s.clock.now() + 60_000 });
    expect(await s.keys.authenticate('master-secret-123')).toEqual({ kind: 'master', keyId: 'master', admin: true });
    expect(await s.keys.authenticate(secret)).toMatchObject({ kind: 'virtual-key', keyId: key.id, admin: false });
    expect(await s.keys.authenticate(`${secret}x`)).toBeNull();

    const rotated = await s.keys.rotate(key.id, 10_000);
    expect(rotated.secret.startsWith(`${key.id}_`)).toBe(true);
    expect(await s.keys.authenticate(secret)).not.toBeNull();
    expect(await s.keys.authenticate(rotated.secret)).not.toBeNull();
    s.clock.advance(10_000);
    expect(await s.keys.authenticate(secret)).toBeNull();
    expect(await s.keys.authenticate(rotated.secret)).not.toBeNull();

    const again = await s.keys.rotate('k');
    expect(await s.keys.authenticate(rotated.secret)).toBeNull();
    s.clock.advance(50_000);
    expect(await s.keys.authenticate(again.secret)).toBeNull(); // expired
    await s.ledger.updateKey(key.id, { expiresAt: null });
    expect(await s.keys.authenticate(again.secret)).not.toBeNull();
    await s.ledger.revokeKey(key.id, s.clock.now());
    expect(await s.keys.authenticate(again.secret)).toBeNull();
  });

  it('no plaintext key in the database files, and nothing of it in the log', async () => {
    const lines: string[] = [];
    const s = await keyStores({ log: (l) => lines.push(l) });
    const made = await Promise.all(['a', 'b', 'c'].map((name) => s.keys.create({ name, budget: { limitMicros: 1_000_000, period: 'day' }, rpm: 100 })));
    const rotated = await s.keys.rotate('a', 1000);
    for (const m of made) {
      const t = await s.admission.admit({ principal: (await s.keys.authenticate(m.secret)) as Principal, model: MODEL, request: chatRequest(PROMPT, MAX), protocol: 'openai' });
      await t.settle({ status: 'ok', costFemto: 123n });
    }
    await s.ledger.close();
    const bytes = readdirSync(s.dir).map((f) => readFileSync(join(s.dir, f)).toString('latin1')).join('');
    expect(bytes).toContain(made[0]?.key.id); // the public id is there, the secret is not
    for (const secret of [...made.map((m) => m.secret), rotated.secret]) {
      expect(bytes).not.toContain(secret);
      expect(bytes).not.toContain(secret.slice(secret.indexOf('_') + 1));
      expect(lines.join('\n')).not.toContain(secret);
    }
  });
});

/**
 * A real ledger that stops answering while `down` is set (the store outage of a deployment);
 * with `latencyMs`, each call first waits that long, as a networked store would.
 */
function flakyLedger(inner: SQLiteLedger, latencyMs = 0): { ledger: Ledger; setDown(down: boolean | string[]): void; written: Map<string, number> } {
  /** true: every call fails; a list: only those methods fail. */
  let down: boolean | string[] = false;
  /** Calls that reached the ledger, by method. */
  const written = new Map<string, number>();
  const ledger = new Proxy(inner, {
    get(target, prop) {
      const value = Reflect.get(target, prop) as unknown;
      if (typeof value !== 'function') return value;
      const fails = (): boolean => down === true || (Array.isArray(down) && down.includes(String(prop)));
      const call = (args: unknown[]): unknown => {
        if (fails()) return Promise.reject(new Error('database is unreachable'));
        written.set(String(prop), (written.get(String(prop)) ?? 0) + 1);
        return (value as (...a: unknown[]) => unknown).apply(target, args);
      };
      return latencyMs === 0 ? (...args: unknown[]) => call(args) : async (...args: unknown[]) => (await sleep(latencyMs), call(args));
    },
  });
  return { ledger, setDown: (d) => (down = d), written };
}

describe('when the store fails', () => {
  async function flaky(mode: 'open' | 'closed', latencyMs = 0) {
    const base = await keyStores();
    const { ledger, setDown, written } = flakyLedger(base.ledger, latencyMs);
    const admission = await BudgetAdmission.open({ ledger, state: base.state, clock: base.clock, onStoreError: mode, log: () => {} });
    const { key, secret } = await base.keys.create({ name: 'k', budget: { limitMicros: 1_000_000, period: 'total' } });
    const principal = (await base.keys.authenticate(secret)) as Principal;
    return { ...base, ledger, setDown, written, admission, key, principal };
  }

  it('keys: closed refuses with 503 while the ledger is down; open accepts keys it saw valid before', async () => {
    for (const mode of ['closed', 'open'] as const) {
      const s = await flaky(mode);
      const keys = new VirtualKeys({ ledger: s.ledger, pepper: PEPPER, clock: s.clock, onStoreError: mode });
      const seen = await s.keys.create({ name: 'seen' });
      const unseen = await s.keys.create({ name: 'unseen' });
      expect(await keys.authenticate(seen.secret)).not.toBeNull();
      s.setDown(true);
      const refused = await keys.authenticate(unseen.secret).catch((e: unknown) => e);
      expect(refused).toMatchObject({ status: 503, scope: 'store' });
      if (mode === 'closed') expect(await keys.authenticate(seen.secret).catch((e: unknown) => e)).toBeInstanceOf(AdmissionError);
      else expect(await keys.authenticate(seen.secret)).toMatchObject({ keyId: seen.key.id });
    }
  });

  it('closed: 503 and nothing admitted while it is down', async () => {
    const s = await flaky('closed');
    s.setDown(true);
    const err = await refusal(s.admission.admit({ principal: s.principal, model: MODEL, request: chatRequest(PROMPT, MAX), protocol: 'openai' }));
    expect(err).toMatchObject({ status: 503, scope: 'store', retryAfterMs: 1000 });
    expect(s.admission.health()).toMatchObject({ store: 'error', mode: 'closed' });
    s.setDown(false);
    await s.admission.admit({ principal: s.principal, model: MODEL, request: chatRequest(PROMPT, MAX), protocol: 'openai' });
    expect(s.admission.health().store).toBe('ok');
  });

  it('closed: a ledger write that fails after the request was served is kept, and nothing more is admitted until it is written', async () => {
    const s = await flaky('closed');
    s.setDown(['recordReservation', 'settle', 'recordSettlement']);
    const t = await s.admission.admit({ principal: s.principal, model: MODEL, request: chatRequest(PROMPT, MAX), protocol: 'openai' });
    await t.settle({ status: 'ok', costFemto: 7n * FEMTO_PER_MICRO });
    expect(s.admission.health()).toMatchObject({ store: 'error', queued: 1 });
    expect(await refusal(s.admission.admit({ principal: s.principal, model: MODEL, request: chatRequest(PROMPT, MAX), protocol: 'openai' }))).toMatchObject({ status: 503 });
    s.setDown(false);
    await s.admission.admit({ principal: s.principal, model: MODEL, request: chatRequest(PROMPT, MAX), protocol: 'openai' });
    expect(await s.ledger.spentFemto(`key:${s.key.id}`, 0)).toBe(7n * FEMTO_PER_MICRO);
  });

  it('open: serves while it is down and writes the spend once it is back', async () => {
    const s = await flaky('open');
    s.setDown(true);
    const t = await s.admission.admit({ principal: s.principal, model: MODEL, request: chatRequest(PROMPT, MAX), protocol: 'openai' });
    await t.settle({ status: 'ok', costFemto: 42n * FEMTO_PER_MICRO });
    expect(s.admission.health()).toMatchObject({ store: 'error', mode: 'open', queued: 1 });
    s.setDown(false);
    const t2 = await s.admission.admit({ principal: s.principal, model: MODEL, request: chatRequest(PROMPT, MAX), protocol: 'openai' });
    await t2.settle({ status: 'ok', costFemto: 1n });
    expect(s.admission.health()).toMatchObject({ store: 'ok', queued: 0 });
    expect(await s.ledger.spentFemto(`key:${s.key.id}`, 0)).toBe(42n * FEMTO_PER_MICRO + 1n);
  });

  it('open: requests that settle together after an outage replay the queued spend once each', async () => {
    // A ledger that takes a moment to answer, so that the replays of several requests overlap.
    const s = await flaky('open', 2);
    const admit = () => s.admission.admit({ principal: s.principal, model: MODEL, request: chatRequest(PROMPT, MAX), protocol: 'openai' });
    s.setDown(true);
    const tickets: Ticket[] = [];
    for (let i = 0; i < 15; i++) tickets.push(await admit());
    // Ten requests finish while the ledger is down: their spend waits in the queue.
    for (let i = 1; i <= 10; i++) await (tickets.shift() as Ticket).settle({ status: 'ok', costFemto: BigInt(i) * FEMTO_PER_MICRO });
    expect(s.admission.health()).toMatchObject({ queued: 10 });
    s.setDown(false);
    // Five finish together once it is back; each one's write first replays the queue.
    await Promise.all(tickets.map((t, i) => t.settle({ status: 'ok', costFemto: BigInt(100 + i) * FEMTO_PER_MICRO })));
    expect(s.admission.health()).toMatchObject({ store: 'ok', queued: 0 });
    // 1 + 2 + ... + 10 while down, 100 + ... + 104 after.
    expect(await s.ledger.spentFemto(`key:${s.key.id}`, 0)).toBe((55n + 510n) * FEMTO_PER_MICRO);
    // Each of the 15 settlements reached the ledger once (in one write: none ran long enough for
    // its reservation row): the overlapping replays did not write any twice.
    expect(s.written.get('recordSettlement')).toBe(15);
    expect(s.written.get('settle')).toBeUndefined();
  });
});
