import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { Principal } from '../src/gateway/admission.js';
import { formatFemto } from '../src/gateway/key-input.js';
import { FEMTO_PER_MICRO, LEDGER_SCHEMA_VERSION, LedgerError, SQLiteLedger, type ReservationRow } from '../src/store/ledger.js';
import { chatRequest, keyStores } from './helpers/keys.js';

const file = (): string => join(mkdtempSync(join(tmpdir(), 'sb-ledger-')), 'ledger.db');
const row = (id: string, at: number, keyId = 'sk-sb-00000001'): ReservationRow => ({ id, at, keyId, model: 'm', scopes: [], reservedMicros: 0, expiresAt: at + 1000 });

describe('SQLiteLedger', () => {
  it('keeps key and team records between requests, and sees every change at once: its own, and another connection\'s', async () => {
    const path = file();
    const gateway = new SQLiteLedger(path);
    const cli = new SQLiteLedger(path); // another process's connection, as the CLI's is
    await gateway.createTeam('t', { rpm: 5 }, 1);
    await gateway.createKey({ id: 'sk-sb-0000000a', name: 'a', teamId: 't' }, 'hash-a', 1);
    const nextTurn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));
    expect((await gateway.keyBySecretHash('hash-a', 2))?.id).toBe('sk-sb-0000000a');
    expect((await gateway.getTeam('t'))?.rpm).toBe(5);

    await cli.updateTeam('t', { rpm: 7 });
    await nextTurn();
    expect((await gateway.getTeam('t'))?.rpm).toBe(7);
    await cli.rotateKey('sk-sb-0000000a', 'hash-b', 3, 10);
    await nextTurn();
    expect((await gateway.keyBySecretHash('hash-a', 9))?.id).toBe('sk-sb-0000000a');
    expect(await gateway.keyBySecretHash('hash-a', 10)).toBeUndefined(); // the old secret retired
    expect((await gateway.keyBySecretHash('hash-b', 10))?.id).toBe('sk-sb-0000000a');
    await cli.revokeKey('sk-sb-0000000a', 11);
    await nextTurn();
    expect(await gateway.keyBySecretHash('hash-b', 12)).toBeUndefined();

    // This connection's own changes are seen within the same turn.
    await gateway.createKey({ id: 'sk-sb-0000000c', name: 'c', expiresAt: 100 }, 'hash-c', 1);
    expect((await gateway.keyBySecretHash('hash-c', 50))?.id).toBe('sk-sb-0000000c');
    expect(await gateway.keyBySecretHash('hash-c', 100)).toBeUndefined(); // expired, from the kept record
    await gateway.updateKey('sk-sb-0000000c', { expiresAt: 200 });
    expect((await gateway.keyBySecretHash('hash-c', 150))?.id).toBe('sk-sb-0000000c');
    await gateway.revokeKey('sk-sb-0000000c', 160);
    expect(await gateway.keyBySecretHash('hash-c', 170)).toBeUndefined();
    await cli.close();
    await gateway.close();
  });

  it("keeps key records while only spend rows change: the spend writer's commits do not empty them", async () => {
    const ledger = new SQLiteLedger(file());
    await ledger.createKey({ id: 'sk-sb-0000000d', name: 'd' }, 'hash-d', 1);
    const kept = await ledger.keyBySecretHash('hash-d', 2);
    await ledger.recordSettlement(row('s1', 3), { status: 'ok', at: 4, promptTokens: 1, completionTokens: 1, costFemto: 5n });
    await new Promise((resolve) => setImmediate(resolve));
    expect(await ledger.keyBySecretHash('hash-d', 5)).toBe(kept); // the same record object, not read again
    await ledger.close();
  });

  it('close() commits the writes still on their way; writes after it fail with a LedgerError', async () => {
    const path = file();
    const ledger = new SQLiteLedger(path);
    const writes = [ledger.recordReservation(row('c1', 1)), ledger.recordSettlement(row('c2', 2), { status: 'ok', at: 3, promptTokens: 1, completionTokens: 1, costFemto: 7n })];
    const closing = ledger.close();
    await expect(ledger.recordReservation(row('c0', 1))).rejects.toMatchObject({ name: 'LedgerError', kind: 'unavailable' }); // while closing
    await closing;
    await Promise.all(writes);
    const reopened = new SQLiteLedger(path);
    expect(await reopened.spentFemto('total', 0)).toBe(7n);
    expect((await reopened.pendingReservations(0)).map((r) => r.id)).toEqual(['c1']);
    await reopened.close();
    await expect(ledger.recordReservation(row('c3', 4))).rejects.toMatchObject({ name: 'LedgerError', kind: 'unavailable' });
  });

  it('a spend writer that dies fails what waited on it with a LedgerError, and later writes go on in this thread', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'sb-ledger-'));
    const ledger = new SQLiteLedger(join(dir, 'ledger.db'));
    await ledger.createKey({ id: 'sk-sb-0000000e', name: 'e' }, 'hash-e', 1);
    // The folder gone, the worker cannot open the file: it dies on its first write. This
    // thread's connection still has the file open.
    rmSync(dir, { recursive: true });
    const waiting = await Promise.allSettled([ledger.recordReservation(row('d1', 1)), ledger.recordReservation(row('d2', 2))]);
    for (const w of waiting) expect(w).toMatchObject({ status: 'rejected', reason: { name: 'LedgerError', kind: 'unavailable', message: expect.stringMatching(/spend writer .* stopped.*written on the ledger's own connection/) } });
    // Sent again (as the admission does with a write that failed), and the next: recorded here.
    await ledger.recordReservation(row('d1', 1));
    await ledger.recordSettlement(row('d3', 3), { status: 'ok', at: 4, promptTokens: 1, completionTokens: 1, costFemto: 9n });
    expect(await ledger.spentFemto('total', 0)).toBe(9n);
    expect((await ledger.pendingReservations(0)).map((r) => r.id)).toEqual(['d1']);
    // Keys are still read on this connection.
    expect((await ledger.keyBySecretHash('hash-e', 5))?.id).toBe('sk-sb-0000000e');
    await ledger.close();
  });

  it('sums are exact integers: no float rounding, and no overflow far past what int64 femto-dollars could hold', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(fc.bigInt({ min: 0n, max: 10n ** 24n }), { minLength: 1, maxLength: 40 }), async (costs) => {
        const ledger = new SQLiteLedger(':memory:');
        await Promise.all(costs.map((_, i) => ledger.recordReservation(row(`r${i}`, 1000 + i))));
        await Promise.all(costs.map((c, i) => ledger.settle(`r${i}`, { status: 'ok', at: 2000, promptTokens: 1, completionTokens: 1, costFemto: c })));
        const total = costs.reduce((a, b) => a + b, 0n);
        expect(await ledger.spentFemto('total', 0)).toBe(total);
        expect((await ledger.usage({ by: 'key' }))[0]?.costFemto).toBe(total);
        // What a rebuilt budget counter is charged: each row rounded up to the micro-dollar.
        expect(await ledger.spentMicros('total', 0)).toBe(Number(costs.reduce((a, c) => a + (c + FEMTO_PER_MICRO - 1n) / FEMTO_PER_MICRO, 0n)));
        await ledger.close();
      }),
      { numRuns: 50 },
    );
    // Ten cents and twenty cents make thirty cents, exactly.
    expect(formatFemto(100_000_000_000_000n + 200_000_000_000_000n, 2)).toBe('0.30');
  });

  it('a bad write in a batch fails alone; the others of the same turn are committed; a repeated reservation is a no-op', async () => {
    const ledger = new SQLiteLedger(file());
    await ledger.recordReservation(row('a', 1));
    const [bad, again, fresh] = await Promise.allSettled([
      ledger.recordReservation({ ...row('x', 2), model: null as unknown as string }),
      ledger.recordReservation(row('a', 2)),
      ledger.recordReservation(row('b', 3)),
    ]);
    expect(bad.status).toBe('rejected');
    expect(again.status).toBe('fulfilled');
    expect(fresh.status).toBe('fulfilled');
    expect((await ledger.pendingReservations(0)).map((r) => [r.id, r.at])).toEqual([['a', 1], ['b', 3]]);
  });

  it('groups days in the configured time zone and skips rows still reserved', async () => {
    const ledger = new SQLiteLedger(':memory:');
    const late = Date.UTC(2026, 5, 30, 23, 30); // 1 July, 01:30 in Berlin
    await ledger.recordReservation(row('x', late));
    await ledger.recordReservation(row('y', late + 1));
    await ledger.settle('x', { status: 'ok', at: late, promptTokens: 3, completionTokens: 4, costFemto: 5n });
    expect((await ledger.usage({ by: 'day' })).map((r) => [r.key, r.requests])).toEqual([['2026-06-30', 1]]);
    expect((await ledger.usage({ by: 'day', timeZone: 'Europe/Berlin' })).map((r) => r.key)).toEqual(['2026-07-01']);
    expect(await ledger.usage({ by: 'day', sinceMs: late + 1 })).toEqual([]);
  });

  it('refuses a ledger of another schema version, saying which', () => {
    const path = file();
    new SQLiteLedger(path).close();
    const db = new Database(path);
    db.prepare("UPDATE meta SET value = '99' WHERE name = 'schema'").run();
    db.close();
    expect(() => new SQLiteLedger(path)).toThrow(LedgerError);
    expect(() => new SQLiteLedger(path)).toThrow(new RegExp(`schema version 99; this switchboard reads version ${LEDGER_SCHEMA_VERSION}`));
  });

  it('upgrades a version-1 ledger (no savings columns) in place, keeping its rows', async () => {
    const path = file();
    new SQLiteLedger(path).close();
    // Back to version 1's shape, with a row settled then.
    const db = new Database(path);
    db.exec("ALTER TABLE spend DROP COLUMN saved_micro; ALTER TABLE spend DROP COLUMN saved_femto; UPDATE meta SET value = '1' WHERE name = 'schema'");
    db.prepare("INSERT INTO spend (id, at, model, status, scopes, reserved_micros, expires_at, cost_micro) VALUES ('old', 1, 'm', 'ok', '[]', 0, 2, 42)").run();
    db.close();
    const ledger = new SQLiteLedger(path);
    await ledger.recordReservation(row('new', 5));
    await ledger.settle('new', { status: 'ok', at: 6, promptTokens: 1, completionTokens: 1, costFemto: 0n, savedFemto: 3n * FEMTO_PER_MICRO + 4n });
    expect((await ledger.usage({ by: 'model' })).map((r) => [r.requests, r.costFemto, r.savedFemto])).toEqual([[2, 42n * FEMTO_PER_MICRO, 3n * FEMTO_PER_MICRO + 4n]]);
    await ledger.close();
    const check = new Database(path);
    expect(check.prepare("SELECT value FROM meta WHERE name = 'schema'").pluck().get()).toBe(String(LEDGER_SCHEMA_VERSION));
    check.close();
    // Opening it again finds it current.
    await new SQLiteLedger(path).close();
  });
});

describe('unpriced models under a budget', () => {
  it('free: admitted and charged $0 while the rate limits still count', async () => {
    const s = await keyStores({ unpricedModels: 'free' });
    const { key, secret } = await s.keys.create({ name: 'self-hosted', budget: { limitMicros: 1000, period: 'total' }, rpm: 1 });
    const principal = (await s.keys.authenticate(secret)) as Principal;
    const t = await s.admission.admit({ principal, model: 'my-own-model@local', request: chatRequest('hi', 10), protocol: 'openai' });
    await t.settle({ status: 'ok', usage: { promptTokens: 5, completionTokens: 5, totalTokens: 10 }, costFemto: null });
    expect(await s.ledger.spentFemto(`key:${key.id}`, 0)).toBe(0n);
    expect((await s.ledger.usage({ by: 'key' }))[0]).toMatchObject({ requests: 1, unpriced: 1 });
    await expect(s.admission.admit({ principal, model: 'my-own-model@local', request: chatRequest('hi', 10), protocol: 'openai' })).rejects.toMatchObject({ status: 429, scope: `key:${key.id}` });
  });
});
