/**
 * One Ledger suite, every implementation: SQLite, Postgres with spend written directly, and
 * Postgres with spend queued on a Redis stream (real redis-server and postgres). Then what only
 * Postgres has: migrations under concurrency and from the previous schema version.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SQLiteLedger, type Ledger, type ReservationRow } from '../src/store/ledger.js';
import { migrate, MIGRATIONS, PostgresLedger, POSTGRES_SCHEMA_VERSION } from '../src/store/postgres-ledger.js';
import { startPostgres, startRedis, type PostgresServer, type RedisServer } from './helpers/servers.js';

let redis: RedisServer;
let postgres: PostgresServer;
let dbs = 0;
const opened: Ledger[] = [];
beforeAll(async () => {
  [redis, postgres] = await Promise.all([startRedis(), startPostgres()]);
}, 60_000);
afterAll(async () => {
  await Promise.all(opened.map((l) => l.close()));
  await Promise.all([redis?.destroy(), postgres?.destroy()]);
});

/** Reads that must see every write before them (the Redis queue drains in the background). */
const settled = async (l: Ledger): Promise<void> => {
  if (l instanceof PostgresLedger) await l.drain();
};

const implementations: [string, () => Promise<Ledger>][] = [
  ['SQLiteLedger (spend written in this thread)', () => Promise.resolve(new SQLiteLedger(':memory:'))],
  ['SQLiteLedger (spend written by a worker thread)', () => Promise.resolve(new SQLiteLedger(join(mkdtempSync(join(tmpdir(), 'sb-ledger-')), 'ledger.db')))],
  ['PostgresLedger', async () => PostgresLedger.open({ url: postgres.createDatabase(`direct${++dbs}`), log: () => {} })],
  ['PostgresLedger + Redis queue', async () => PostgresLedger.open({ url: postgres.createDatabase(`queued${++dbs}`), queueUrl: redis.url, stream: `{q${dbs}}:spend`, log: () => {} })],
];

const row = (id: string, at: number, keyId = 'sk-sb-00000001', teamId?: string): ReservationRow => ({
  id,
  at,
  keyId,
  ...(teamId ? { teamId } : {}),
  model: 'm',
  scopes: [{ scope: `key:${keyId}`, periodId: 'total' }],
  reservedMicros: 7,
  expiresAt: at + 1000,
});

describe.each(implementations)('%s', (_name, open) => {
  let ledger: Ledger;
  beforeAll(async () => {
    ledger = await open();
    opened.push(ledger);
  });

  it('teams and keys: create, read by id or name, update, conflicts, rotation and revocation', async () => {
    const team = await ledger.createTeam('research', { budget: { limitMicros: 5_000_000, period: 'month' }, rpm: 60 }, 1000);
    expect(team).toEqual({ id: 'research', createdAt: 1000, budget: { limitMicros: 5_000_000, period: 'month' }, rpm: 60 });
    await expect(ledger.createTeam('research', {}, 1)).rejects.toMatchObject({ kind: 'conflict' });
    expect(await ledger.updateTeam('research', { rpm: null, tpm: 1000 })).toMatchObject({ tpm: 1000 });
    expect((await ledger.getTeam('research'))?.rpm).toBeUndefined();

    const key = await ledger.createKey({ id: 'sk-sb-aaaa0001', name: 'ci', teamId: 'research', models: ['gpt-*'], metadata: { owner: 'ops' } }, 'hash-1', 2000);
    expect(key).toMatchObject({ id: 'sk-sb-aaaa0001', name: 'ci', teamId: 'research', admin: false, models: ['gpt-*'], metadata: { owner: 'ops' }, createdAt: 2000 });
    await expect(ledger.createKey({ id: 'sk-sb-aaaa0002', name: 'ci' }, 'hash-x', 1)).rejects.toMatchObject({ kind: 'conflict' });
    await expect(ledger.createKey({ id: 'sk-sb-aaaa0003', name: 'other', teamId: 'nope' }, 'hash-y', 1)).rejects.toMatchObject({ kind: 'not_found' });
    expect((await ledger.getKey('ci'))?.id).toBe('sk-sb-aaaa0001');
    expect(await ledger.updateKey('sk-sb-aaaa0001', { budget: { limitMicros: 10, period: 'day' }, models: null })).toMatchObject({ budget: { limitMicros: 10, period: 'day' } });
    expect((await ledger.getKey('ci'))?.models).toBeUndefined();

    expect((await ledger.keyBySecretHash('hash-1', 3000))?.id).toBe('sk-sb-aaaa0001');
    await ledger.rotateKey('sk-sb-aaaa0001', 'hash-2', 3000, 4000);
    expect((await ledger.keyBySecretHash('hash-1', 3999))?.id).toBe('sk-sb-aaaa0001');
    expect(await ledger.keyBySecretHash('hash-1', 4000)).toBeUndefined();
    expect((await ledger.keyBySecretHash('hash-2', 4000))?.id).toBe('sk-sb-aaaa0001');
    await ledger.revokeKey('sk-sb-aaaa0001', 5000);
    expect(await ledger.keyBySecretHash('hash-2', 6000)).toBeUndefined();
    expect((await ledger.listKeys()).map((k) => [k.name, k.revokedAt])).toEqual([['ci', 5000]]);
  });

  it('spend: reserved rows are pending until they settle or expire; sums are exact femto-dollars', async () => {
    const base = 1_000_000;
    await Promise.all([ledger.recordReservation(row('s1', base)), ledger.recordReservation(row('s2', base + 1, 'sk-sb-00000002', 'research')), ledger.recordReservation(row('s3', base + 2))]);
    await settled(ledger);
    expect((await ledger.pendingReservations(base)).map((r) => r.id)).toEqual(['s1', 's2', 's3']);
    // Savings: a cache hit's price (more than a micro-dollar), a prompt cache's write premium (negative).
    await ledger.settle('s1', { status: 'ok', at: base + 10, promptTokens: 3, completionTokens: 4, costFemto: 1_000_000_001n, savedFemto: 2_500_000_007n, provider: 'p' });
    await ledger.settle('s2', { status: 'error', at: base + 10, promptTokens: 1, completionTokens: 0, costFemto: 10n ** 24n + 5n, savedFemto: -1_000_000_003n });
    await settled(ledger);
    expect(await ledger.spentFemto('key:sk-sb-00000001', 0)).toBe(1_000_000_001n);
    expect(await ledger.spentFemto('team:research', 0)).toBe(10n ** 24n + 5n);
    expect(await ledger.spentFemto('total', 0)).toBe(10n ** 24n + 1_000_000_006n);
    // Each row rounded up to the micro-dollar, as the shared state counts it.
    expect(await ledger.spentMicros('key:sk-sb-00000001', 0)).toBe(2);
    expect(await ledger.expireReservations(base + 1002)).toBe(1); // s3
    expect(await ledger.pendingReservations(0)).toEqual([]);
    const byKey = await ledger.usage({ by: 'key' });
    expect(byKey.map((r) => [r.key, r.requests, r.promptTokens, r.costFemto, r.savedFemto])).toEqual([
      ['sk-sb-00000001', 1, 3, 1_000_000_001n, 2_500_000_007n],
      ['sk-sb-00000002', 1, 1, 10n ** 24n + 5n, -1_000_000_003n],
    ]);
    expect((await ledger.usage({ by: 'model' })).map((r) => r.savedFemto)).toEqual([1_500_000_004n]);
    const late = Date.UTC(2026, 5, 30, 23, 30);
    await ledger.recordReservation(row('s4', late));
    await ledger.settle('s4', { status: 'ok', at: late, promptTokens: 1, completionTokens: 1, costFemto: null });
    await settled(ledger);
    expect((await ledger.usage({ by: 'day', timeZone: 'Europe/Berlin', sinceMs: late })).map((r) => [r.key, r.unpriced])).toEqual([['2026-07-01', 1]]);
  });

  it('a reservation written settled in one go is the same row as one reserved then settled, and writing it again changes nothing', async () => {
    const at = Date.UTC(2026, 7, 1);
    const outcome = { status: 'ok' as const, at: at + 5, promptTokens: 5, completionTokens: 6, costFemto: 4_000_000_003n, savedFemto: 7n, provider: 'p', resolvedModel: 'm-1' };
    const keyId = 'sk-sb-00000009';
    await ledger.recordReservation(row('two-step', at, keyId));
    await ledger.settle('two-step', outcome);
    await ledger.recordSettlement(row('one-step', at, keyId), outcome);
    await ledger.recordSettlement(row('one-step', at, keyId), outcome);
    // Reserved by a timer that fired just before the settlement: completed, not written twice.
    await ledger.recordReservation(row('reserved-first', at, keyId));
    await ledger.recordSettlement(row('reserved-first', at, keyId), outcome);
    await settled(ledger);
    expect((await ledger.pendingReservations(at)).map((r) => r.id)).toEqual([]);
    expect(await ledger.spentFemto(`key:${keyId}`, 0)).toBe(3n * 4_000_000_003n);
    expect(await ledger.spentMicros(`key:${keyId}`, 0)).toBe(3 * 5);
    const [usage] = await ledger.usage({ by: 'key', sinceMs: at });
    expect(usage).toEqual({ key: keyId, requests: 3, promptTokens: 15, completionTokens: 18, costFemto: 3n * 4_000_000_003n, unpriced: 0, savedFemto: 21n });
    expect((await ledger.usage({ by: 'provider', sinceMs: at })).map((r) => [r.key, r.requests])).toEqual([['p', 3]]);
  });
});

describe('PostgresLedger only', () => {
  it('a spend entry delivered twice is written once (idempotent inserts and settlements)', async () => {
    const ledger = await PostgresLedger.open({ url: postgres.createDatabase(`twice${++dbs}`), queueUrl: redis.url, stream: `{twice${dbs}}:spend`, log: () => {} });
    opened.push(ledger);
    const outcome = { status: 'ok' as const, at: 5, promptTokens: 1, completionTokens: 1, costFemto: 3_000_000_000n };
    for (let i = 0; i < 2; i++) {
      await ledger.recordReservation(row('dup', 1));
      await ledger.settle('dup', outcome);
    }
    await ledger.drain();
    const rows = await ledger.pool.query<{ n: string; status: string }>("SELECT COUNT(*)::text AS n, MIN(status) AS status FROM spend WHERE id = 'dup'");
    expect(rows.rows[0]).toEqual({ n: '1', status: 'ok' });
    expect(await ledger.spentFemto('total', 0)).toBe(3_000_000_000n);
  });

  it('migrations: two instances starting at once on an empty database apply each version once', async () => {
    const url = postgres.createDatabase(`race${++dbs}`);
    const [a, b] = await Promise.all([PostgresLedger.open({ url, log: () => {} }), PostgresLedger.open({ url, log: () => {} })]);
    opened.push(a, b);
    const versions = (await a.pool.query<{ version: number }>('SELECT version FROM switchboard_migrations ORDER BY version')).rows.map((r) => r.version);
    expect(versions).toEqual(MIGRATIONS.map((_, i) => i + 1));
    await a.createTeam('t', {}, 1);
    expect((await b.getTeam('t'))?.id).toBe('t');
  });

  it('migrations: a database at the previous schema version is upgraded and keeps its rows', async () => {
    const url = postgres.createDatabase(`upgrade${++dbs}`);
    const pool = new pg.Pool({ connectionString: url });
    expect(await migrate(pool, POSTGRES_SCHEMA_VERSION - 1)).toEqual(MIGRATIONS.slice(0, -1).map((_, i) => i + 1));
    await pool.query("INSERT INTO spend (id, at, model, status, scopes, reserved_micros, expires_at, cost_micro) VALUES ('old', 1, 'm', 'ok', '[]', 0, 2, 42)");
    await pool.end();
    const ledger = await PostgresLedger.open({ url, log: () => {} });
    opened.push(ledger);
    expect((await ledger.pool.query<{ v: number }>('SELECT MAX(version) AS v FROM switchboard_migrations')).rows[0]?.v).toBe(POSTGRES_SCHEMA_VERSION);
    expect(await ledger.spentFemto('total', 0)).toBe(42n * 1_000_000_000n);
    await ledger.recordReservation(row('new', 10));
    expect((await ledger.pool.query<{ instance: string }>("SELECT instance FROM spend WHERE id = 'new'")).rows[0]?.instance).toBe(ledger.instance);
    // Version 3's savings columns: the old row saved nothing, the new one what it is settled with.
    await ledger.settle('new', { status: 'ok', at: 10, promptTokens: 1, completionTokens: 1, costFemto: 0n, savedFemto: 7n });
    await settled(ledger);
    expect((await ledger.usage({ by: 'model' })).map((r) => [r.requests, r.savedFemto])).toEqual([[2, 7n]]);
  });

  it('key reads are cached until a write through any instance says otherwise: revocation and rotation apply at once', async () => {
    const url = postgres.createDatabase(`cache${++dbs}`);
    const [a, b] = [await PostgresLedger.open({ url, log: () => {} }), await PostgresLedger.open({ url, log: () => {} })];
    opened.push(a, b);
    await a.createKey({ id: 'sk-sb-cache0001', name: 'cached' }, 'hash-1', 1);
    // Once B has heard of that write (a later notification would empty its cache again), B reads the key.
    await new Promise((r) => setTimeout(r, 200));
    expect((await b.keyBySecretHash('hash-1', 2))?.name).toBe('cached');
    // Cached: a change that notifies nobody (SQL by hand) is not seen, so no read went to Postgres.
    await a.pool.query("UPDATE keys SET name = 'renamed by hand' WHERE id = 'sk-sb-cache0001'");
    expect((await b.keyBySecretHash('hash-1', 3))?.name).toBe('cached');
    // A write through an instance notifies every one: B sees it as soon as the notification lands.
    // Within half a second: well inside the second a time-to-live alone would take.
    const seen = async (check: () => Promise<boolean>): Promise<boolean> => {
      for (let i = 0; i < 50; i++) {
        if (await check()) return true;
        await new Promise((r) => setTimeout(r, 10));
      }
      return false;
    };
    await a.rotateKey('sk-sb-cache0001', 'hash-2', 4, 4);
    expect(await seen(async () => (await b.keyBySecretHash('hash-1', 5)) === undefined)).toBe(true);
    expect((await b.keyBySecretHash('hash-2', 5))?.name).toBe('renamed by hand');
    await a.revokeKey('sk-sb-cache0001', 6);
    expect(await seen(async () => (await b.keyBySecretHash('hash-2', 7)) === undefined)).toBe(true);
  });

  it('lookups of one uncached key that arrive together make one query', async () => {
    const url = postgres.createDatabase(`burst${++dbs}`);
    const ledger = await PostgresLedger.open({ url, log: () => {} });
    opened.push(ledger);
    await ledger.createKey({ id: 'sk-sb-burst0001', name: 'burst' }, 'hash-burst', 1);
    await new Promise((r) => setTimeout(r, 200)); // the key's own notification has emptied the cache
    // Hold the table, so every query that reaches Postgres waits where pg_stat_activity shows it.
    // The count is read on another connection: within one transaction (the lock's) Postgres
    // answers pg_stat_activity from the snapshot of its first read, which may predate the query.
    const lock = new pg.Client({ connectionString: url });
    const watch = new pg.Client({ connectionString: url });
    await lock.connect();
    await watch.connect();
    try {
      await lock.query('BEGIN');
      await lock.query('LOCK TABLE key_secrets IN ACCESS EXCLUSIVE MODE');
      const lookups = Array.from({ length: 50 }, () => ledger.keyBySecretHash('hash-burst', 2));
      const waiting = async (): Promise<number> =>
        Number((await watch.query<{ n: string }>("SELECT count(*)::text AS n FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock' AND query LIKE 'SELECT keys.*%'")).rows[0]?.n);
      for (let i = 0; i < 100 && (await waiting()) === 0; i++) await new Promise((r) => setTimeout(r, 20));
      // Time for more queries to arrive, were they sent (the pool would run five at once).
      await new Promise((r) => setTimeout(r, 300));
      const queries = await waiting();
      await lock.query('COMMIT');
      const keys = await Promise.all(lookups);
      expect(queries).toBe(1);
      expect(keys.every((k) => k?.name === 'burst')).toBe(true);
    } finally {
      await lock.end();
      await watch.end();
    }
  });

  it('refuses a database from a newer switchboard, saying which version', async () => {
    const url = postgres.createDatabase(`newer${++dbs}`);
    const pool = new pg.Pool({ connectionString: url });
    await migrate(pool);
    await pool.query('INSERT INTO switchboard_migrations (version) VALUES (99)');
    await pool.end();
    await expect(PostgresLedger.open({ url, log: () => {} })).rejects.toThrow(new RegExp(`schema version 99; this switchboard knows versions up to ${POSTGRES_SCHEMA_VERSION}`));
  });
});
