/**
 * A gateway process killed (SIGKILL) between reserve and reconcile: after a restart no settled
 * spend is missing, the dead process's reservations hold their money until they expire, and
 * none outlives its expiry.
 */
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { describe, expect, it } from 'vitest';
import type { Principal } from '../src/gateway/admission.js';
import { FEMTO_PER_MICRO } from '../src/store/ledger.js';
import { ManualClock } from '../src/store/shared-state.js';
import { chatRequest, keyStores, PEPPER, worstFemto } from './helpers/keys.js';

const CHILD = new URL('./fixtures/reserve-then-hang.mjs', import.meta.url).pathname;
const TTL_MS = 60_000;

describe('a process killed between reserve and reconcile', () => {
  it('loses no settled spend and leaks no reservation past its expiry', async () => {
    const first = await keyStores();
    const worstMicros = Number((worstFemto('sim-fast', 'crash test', 100) + FEMTO_PER_MICRO - 1n) / FEMTO_PER_MICRO);
    const { key, secret } = await first.keys.create({ name: 'crash', budget: { limitMicros: worstMicros * 6, period: 'month' } });
    await first.ledger.close();

    const child = spawn(process.execPath, [CHILD, first.dir, String(TTL_MS)], { env: { ...process.env, PEPPER: PEPPER.toString(), KEY: secret }, stdio: ['ignore', 'pipe', 'inherit'] });
    const line = await new Promise<string>((resolve, reject) => {
      createInterface({ input: child.stdout }).once('line', resolve);
      child.once('exit', (code) => reject(new Error(`child exited early (${code})`)));
    });
    const killedAt = Date.now();
    const exited = new Promise((resolve) => child.once('exit', (_code, signal) => resolve(signal)));
    child.kill('SIGKILL');
    expect(await exited).toBe('SIGKILL');
    const settled = (JSON.parse(line) as { settled: string[] }).settled.map(BigInt);

    // Restart on the same ledger with a fresh shared state, as a new process would.
    const clock = new ManualClock(killedAt);
    const s = await keyStores({ dir: first.dir, clock, ttlMs: TTL_MS });
    const scope = `key:${key.id}`;
    expect(await s.ledger.spentFemto(scope, 0)).toBe(settled.reduce((a, b) => a + b, 0n));
    const period = (await s.ledger.pendingReservations(clock.now()))[0]?.scopes[0]?.periodId as string;
    expect(await s.ledger.pendingReservations(clock.now())).toHaveLength(2);

    // The two open reservations still hold their worst case: 3 settled (each rounded up to the micro-dollar), 2 held, and this one.
    const principal = (await s.keys.authenticate(secret)) as Principal;
    const admit = () => s.admission.admit({ principal, model: 'sim/llama@sim-fast', request: chatRequest('crash test', 100), protocol: 'openai' });
    const ticket = await admit();
    expect(await s.state.budget(scope, period)).toEqual({ spentMicros: 2 + 3 + 4, reservedMicros: worstMicros * 3 });
    await ticket.settle({ status: 'error' });

    // Past their expiry they hold nothing, and the ledger closes them.
    clock.advance(TTL_MS);
    expect(await s.state.budget(scope, period)).toEqual({ spentMicros: 9, reservedMicros: 0 });
    expect(await s.ledger.expireReservations(clock.now())).toBe(2);
    expect(await s.ledger.pendingReservations(clock.now())).toHaveLength(0);
    expect(await s.ledger.spentFemto(scope, 0)).toBe(settled.reduce((a, b) => a + b, 0n));
    // A second restart after expiry restores nothing.
    const again = await keyStores({ dir: first.dir, clock, ttlMs: TTL_MS });
    await again.admission.admit({ principal, model: 'sim/llama@sim-fast', request: chatRequest('crash test', 100), protocol: 'openai' });
    expect(await again.state.budget(scope, period)).toEqual({ spentMicros: 9, reservedMicros: worstMicros });
  });
});
