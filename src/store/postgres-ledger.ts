/**
 * The Ledger on Postgres, shared by every gateway instance: keys, teams and spend rows.
 *
 * Migrations: versioned, run at start inside one transaction holding an advisory lock, so two
 * instances starting at once on an empty database apply each version exactly once.
 *
 * Spend writes stay off the request's path to Postgres. With a Redis queue (the usual shared
 * setup), a reservation or settlement is one XADD to a Redis stream, acknowledged once Redis
 * has it; a consumer group (one consumer per instance) drains the stream into Postgres in
 * batches, with inserts and updates that are idempotent, so an entry delivered twice (a crash
 * between commit and XACK, or another instance claiming a dead one's entries) changes nothing.
 * While Postgres is down the entries wait in the stream; nothing recorded is lost. When Redis
 * itself cannot take a write, the row is written to Postgres directly (batched per event-loop
 * turn), and held in memory until one of them takes it.
 *
 * Spend reads see what has reached Postgres: entries still on the stream are not in them yet
 * (`drain()` waits for them), and budget counters live in Redis, so admission never waits.
 *
 * Reads on the request path (a key by its secret's hash, a team) are cached, so a keyed request
 * does not query Postgres: every write of a key or team is followed by `NOTIFY switchboard_keys`,
 * and each instance LISTENs on its own connection and drops its cache when it hears one, within
 * milliseconds of the commit. While that connection is down (and for a moment after it returns)
 * entries live `cacheMs` (default 1 s) instead; a notification missed otherwise (a writer that
 * sends none: an older switchboard in a rolling deploy, or SQL by hand) is outlived by
 * `LISTENING_CACHE_MS`. The last answer is served while Postgres is unreachable, so requests keep flowing.
 *
 * Money is integers as in SQLiteLedger: whole micro-dollars plus the femto-dollar remainder,
 * summed by Postgres as NUMERIC (exact) and read back as BigInt.
 */
import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import pg from 'pg';
import {
  addSums,
  bucketFormatter,
  dayFormatter,
  FEMTO_PER_MICRO,
  GROUP_COLUMN,
  insertSQL,
  KEY_COLUMNS,
  keyFrom,
  keyValues,
  TEAM_COLUMNS,
  teamValues,
  teamFrom,
  type KeyRow,
  type TeamRow,
  LedgerError,
  splitFemto,
  type KeyPatch,
  type KeyRecord,
  type Ledger,
  type LedgerSeriesRow,
  type LedgerUsageRow,
  type SeriesQuery,
  type SumRow,
  type Limits,
  type NewKey,
  type ReservationRow,
  reservationFrom,
  type ReservedRow,
  type Scope,
  type SpendOutcome,
  type TeamPatch,
  type TeamRecord,
  type UsageQuery,
} from './ledger.js';
import { createRedisClient, runScript, Script, type RedisClient } from './redis-scripts.js';
import type { JournalEntry, SpendJournal } from './shared-state.js';

/** KEYS: the stream. ARGV: entry ids, written to Postgres: acknowledged and deleted in one round trip. */
const ACK_AND_DELETE = new Script(`
redis.call('XACK', KEYS[1], 'ledger', unpack(ARGV))
return redis.call('XDEL', KEYS[1], unpack(ARGV))
`);

/**
 * KEYS: the stream, its epoch. ARGV: an epoch to set when there is none. Returns {epoch, the
 * consumer group's last delivered id, its first pending id} ('' for none): every entry up to
 * the last delivered one and before the first pending one is in Postgres.
 */
const QUEUE_STATE = new Script(`
local epoch = redis.call('GET', KEYS[2])
if not epoch then
  redis.call('SET', KEYS[2], ARGV[1])
  epoch = ARGV[1]
end
if redis.call('EXISTS', KEYS[1]) == 0 then return {epoch, '', ''} end
local delivered = ''
for _, g in ipairs(redis.call('XINFO', 'GROUPS', KEYS[1])) do
  local f = {}
  for i = 1, #g, 2 do f[g[i]] = g[i + 1] end
  if f['name'] == 'ledger' then delivered = f['last-delivered-id'] end
end
if delivered == '' then return {epoch, '', ''} end
return {epoch, delivered, redis.call('XPENDING', KEYS[1], 'ledger')[2] or ''}
`);

/** Stream ids (`<ms>-<seq>`) in order. */
function compareStreamIds(a: string, b: string): number {
  const [am = 0, as = 0] = a.split('-').map(Number);
  const [bm = 0, bs = 0] = b.split('-').map(Number);
  return am - bm || as - bs;
}

/** How long a key or team read is trusted while change notifications are heard. */
const LISTENING_CACHE_MS = 30_000;
/** The channel every key and team write notifies. */
const KEYS_CHANNEL = 'switchboard_keys';

/** Entries kept for re-sending after a Redis wipe, at most (the oldest go first beyond it). */
const MAX_SENT = 200_000;

const INSERT_TEAM = `${insertSQL('teams', TEAM_COLUMNS, 'postgres')} ON CONFLICT (id) DO NOTHING`;
const INSERT_KEY = insertSQL('keys', KEY_COLUMNS, 'postgres');

/**
 * Each entry is one schema version; never edit a released one, add the next. Version 1 is the
 * SQLite ledger's schema; version 2 records which instance admitted each request; version 3
 * adds what caching saved on each request (micro-dollars plus the femto-dollar remainder, as the cost).
 */
export const MIGRATIONS: readonly string[] = [
  `CREATE TABLE teams (
     id TEXT PRIMARY KEY, budget_micros BIGINT, budget_period TEXT, rpm INTEGER, tpm INTEGER, created_at BIGINT NOT NULL);
   CREATE TABLE keys (
     id TEXT PRIMARY KEY, name TEXT NOT NULL UNIQUE, team_id TEXT REFERENCES teams(id), admin BOOLEAN NOT NULL DEFAULT FALSE,
     budget_micros BIGINT, budget_period TEXT, rpm INTEGER, tpm INTEGER, models TEXT, expires_at BIGINT, revoked_at BIGINT,
     created_at BIGINT NOT NULL, metadata TEXT NOT NULL DEFAULT '{}');
   CREATE TABLE key_secrets (hash TEXT PRIMARY KEY, key_id TEXT NOT NULL REFERENCES keys(id), created_at BIGINT NOT NULL, retires_at BIGINT);
   CREATE TABLE spend (
     id TEXT PRIMARY KEY, at BIGINT NOT NULL, key_id TEXT, team_id TEXT, model TEXT NOT NULL, protocol TEXT,
     status TEXT NOT NULL, scopes TEXT NOT NULL, reserved_micros BIGINT NOT NULL, expires_at BIGINT NOT NULL,
     settled_at BIGINT, provider TEXT, resolved_model TEXT, prompt_tokens BIGINT NOT NULL DEFAULT 0,
     completion_tokens BIGINT NOT NULL DEFAULT 0, cost_micro BIGINT NOT NULL DEFAULT 0, cost_femto BIGINT NOT NULL DEFAULT 0,
     cost_known BOOLEAN NOT NULL DEFAULT TRUE);
   CREATE INDEX spend_at ON spend(at);
   CREATE INDEX spend_key ON spend(key_id, at);
   CREATE INDEX spend_team ON spend(team_id, at);
   CREATE INDEX spend_open ON spend(expires_at) WHERE status = 'reserved';`,
  `ALTER TABLE spend ADD COLUMN instance TEXT;
   CREATE INDEX spend_instance ON spend(instance) WHERE status = 'reserved';`,
  `ALTER TABLE spend ADD COLUMN saved_micro BIGINT NOT NULL DEFAULT 0, ADD COLUMN saved_femto BIGINT NOT NULL DEFAULT 0;`,
];
export const POSTGRES_SCHEMA_VERSION = MIGRATIONS.length;
/** The advisory lock migrations hold (any fixed 64-bit number; this one spells "sbledger"). */
const MIGRATION_LOCK = '7377626c65646765';

/** int8 columns as numbers (every stored one is below 2^53); sums are cast to text and read as BigInt. */
const types = {
  getTypeParser: (oid: number, format?: 'text' | 'binary') => (oid === 20 ? (v: string) => Number(v) : pg.types.getTypeParser(oid, format)),
};

export interface PostgresLedgerOptions {
  url: string;
  /** The durable queue's Redis (`redis://...`); without it spend rows go to Postgres directly. */
  queueUrl?: string;
  /** Stream key; its hash tag keeps it on one Cluster node (default `{switchboard-ledger}:spend`). */
  stream?: string;
  /** This instance's name in the consumer group and in spend rows (default host and pid). */
  instance?: string;
  cacheMs?: number;
  /** Apply migrations at open (default true); false only checks the version. */
  migrate?: boolean;
  poolSize?: number;
  log?: (line: string) => void;
}

/** One stream entry as Redis returns it (fields null once deleted). */
type StreamEntry = [string, string[] | null];

/**
 * A settlement carries its reservation's row when this process wrote it: consumers drain the
 * stream in parallel, so a settlement may reach Postgres before its reservation does.
 */
type Entry = { op: 'reserve'; row: ReservationRow; instance?: string } | { op: 'settle'; id: string; outcome: SpendOutcome; row?: ReservationRow; instance?: string };

/** Spend entries as JSON (femto-dollars as a decimal string). */
function encode(e: Entry): string {
  return JSON.stringify(e, (_k, v: unknown) => (typeof v === 'bigint' ? `${v}n` : v));
}
function decode(text: string): Entry {
  return JSON.parse(text, (_k, v: unknown) => (typeof v === 'string' && /^-?\d+n$/.test(v) ? BigInt(v.slice(0, -1)) : v)) as Entry;
}

function scopeFilter(scope: Scope, first: number): { where: string; params: string[] } {
  if (scope === 'total') return { where: 'TRUE', params: [] };
  const i = scope.indexOf(':');
  const [kind, id] = [scope.slice(0, i), scope.slice(i + 1)];
  if (kind === 'key') return { where: `key_id = $${first}`, params: [id] };
  if (kind === 'team') return { where: `team_id = $${first}`, params: [id] };
  throw new LedgerError(`Unknown scope "${scope}": use key:<id>, team:<id> or total.`);
}

const SETTLED = "status IN ('ok', 'error', 'cancelled')";
/** Run the migrations not yet applied, under an advisory lock; returns the versions applied. */
export async function migrate(pool: pg.Pool, upTo = MIGRATIONS.length): Promise<number[]> {
  const client = await pool.connect();
  try {
    await client.query('BEGIN');
    await client.query(`SELECT pg_advisory_xact_lock(x'${MIGRATION_LOCK}'::bigint)`);
    await client.query('CREATE TABLE IF NOT EXISTS switchboard_migrations (version INTEGER PRIMARY KEY, applied_at TIMESTAMPTZ NOT NULL DEFAULT now())');
    const done = new Set((await client.query<{ version: number }>('SELECT version FROM switchboard_migrations')).rows.map((r) => r.version));
    const newest = Math.max(0, ...done);
    if (newest > MIGRATIONS.length) throw new LedgerError(`The ledger database has schema version ${newest}; this switchboard knows versions up to ${MIGRATIONS.length}. Upgrade switchboard.`, 'schema');
    const applied: number[] = [];
    for (let v = 1; v <= upTo; v++) {
      if (done.has(v)) continue;
      await client.query(MIGRATIONS[v - 1] as string);
      await client.query('INSERT INTO switchboard_migrations (version) VALUES ($1)', [v]);
      applied.push(v);
    }
    await client.query('COMMIT');
    return applied;
  } catch (err) {
    await client.query('ROLLBACK').catch(() => {});
    throw err;
  } finally {
    client.release();
  }
}

export class PostgresLedger implements Ledger, SpendJournal {
  readonly pool: pg.Pool;
  readonly instance: string;
  private readonly queue: RedisClient | undefined;
  private readonly stream: string;
  private readonly cacheMs: number;
  private readonly log: (line: string) => void;
  private readonly cache = new Map<string, { at: number; value: unknown }>();
  /**
   * Reads in flight by cache key, since the last invalidation: requests that arrive together
   * with one uncached key (a new key's first burst) share one query instead of queueing one
   * each for the pool's few connections.
   */
  private readonly reading = new Map<string, Promise<unknown>>();
  private readonly url: string;
  /** Bumped by every invalidation: a read that started before one does not fill the cache after it. */
  private generation = 0;
  /** Whether the LISTEN connection is up, so that a change anywhere drops the cache at once. */
  private listening = false;
  private listener: pg.Client | undefined;
  /** Reservations recorded here and not settled yet, by id. */
  private readonly unsettled = new Map<string, ReservationRow>();
  /** Entries neither Redis nor Postgres took yet, oldest first. */
  private held: Entry[] = [];
  private direct: { entry: Entry; resolve: () => void }[] = [];
  private directScheduled = false;
  private draining: Promise<void> | undefined;
  private closed = false;
  private lastDrainError: string | undefined;
  /** Spend entries drained into Postgres by this instance. */
  drained = 0;
  /**
   * Entries this instance put on the stream (itself, or the shared state's settle script) and
   * the consumers have not yet written to Postgres, by stream id, encoded: a Redis that loses
   * its data (restarted empty, flushed) loses them too, so they are then sent again, straight to
   * Postgres. Dropped as the consumer group's progress passes them (checked once a second).
   */
  private sent: { id: string; entry: string }[] = [];
  /** The stream's epoch as this instance knows it: a value that a Redis which lost its data no longer has. */
  private epoch: string | undefined;
  private checkTimer: NodeJS.Timeout | undefined;
  private checking = false;

  private constructor(options: PostgresLedgerOptions) {
    this.url = options.url;
    this.pool = new pg.Pool({ connectionString: options.url, max: options.poolSize ?? 5, types, connectionTimeoutMillis: 2000 });
    // An idle client whose server went away: the next query reconnects.
    this.pool.on('error', () => {});
    this.instance = options.instance ?? `${hostname()}-${process.pid}`;
    this.stream = options.stream ?? '{switchboard-ledger}:spend';
    this.cacheMs = options.cacheMs ?? 1000;
    this.log = options.log ?? ((line) => process.stderr.write(`switchboard: ${line}\n`));
    if (options.queueUrl !== undefined) {
      this.queue = createRedisClient(options.queueUrl, 2000);
    }
  }

  static async open(options: PostgresLedgerOptions): Promise<PostgresLedger> {
    const ledger = new PostgresLedger(options);
    try {
      if (options.migrate === false) await ledger.checkVersion();
      else await migrate(ledger.pool);
      await ledger.listen();
      if (ledger.queue) {
        await ledger.queue.connect();
        await ledger.createGroup(ledger.queue);
        await ledger.checkQueue();
        ledger.checkTimer = setInterval(() => void ledger.checkQueue().catch(() => {}), 1000);
        ledger.checkTimer.unref();
        ledger.draining = ledger.drainLoop();
      }
    } catch (err) {
      await ledger.close();
      throw err;
    }
    return ledger;
  }

  private async checkVersion(): Promise<void> {
    const r = await this.pool.query<{ v: number | null }>('SELECT MAX(version) AS v FROM switchboard_migrations').catch(() => ({ rows: [{ v: null }] }));
    const v = r.rows[0]?.v ?? 0;
    if (v !== POSTGRES_SCHEMA_VERSION) throw new LedgerError(`The ledger database has schema version ${v}; this switchboard reads version ${POSTGRES_SCHEMA_VERSION}. Start it with migrations on.`, 'schema');
  }

  // --- Teams and keys -------------------------------------------------------------------

  /** LISTEN for key and team changes on a connection of its own, again after it drops. */
  private async listen(): Promise<void> {
    const client = new pg.Client({ connectionString: this.url, connectionTimeoutMillis: 2000 });
    client.on('error', () => {});
    client.on('notification', () => this.invalidate());
    try {
      await client.connect();
      await client.query(`LISTEN ${KEYS_CHANNEL}`);
    } catch (err) {
      await client.end().catch(() => {});
      throw err;
    }
    // Dropped (Postgres restarting): entries live cacheMs again, and stay as the last answer while reads fail.
    client.on('end', () => {
      this.listening = false;
      this.listenLater();
    });
    this.listener = client;
    // What changed while nobody listened is not in the cache either.
    this.invalidate();
    this.listening = true;
  }

  private listenLater(): void {
    if (!this.closed) setTimeout(() => void this.listen().catch(() => this.listenLater()), 1000).unref();
  }

  private invalidate(): void {
    this.generation++;
    this.cache.clear();
    // A read that started before the change may answer from before it: later callers do not join it.
    this.reading.clear();
  }

  /** After a key or team write: drop this cache, and tell every instance's. */
  private async changed(): Promise<void> {
    this.invalidate();
    await this.pool.query(`NOTIFY ${KEYS_CHANNEL}`);
  }

  private cached<T>(key: string, read: () => Promise<T>): Promise<T> {
    const hit = this.cache.get(key);
    const now = Date.now();
    if (hit && now - hit.at < (this.listening ? LISTENING_CACHE_MS : this.cacheMs)) return Promise.resolve(hit.value as T);
    const inFlight = this.reading.get(key);
    if (inFlight) return inFlight as Promise<T>;
    const generation = this.generation;
    const reading = (async () => {
      try {
        const value = await read();
        if (generation === this.generation) this.cache.set(key, { at: now, value });
        return value;
      } catch (err) {
        // Postgres unreachable: the last answer stands, so authenticated callers keep flowing.
        if (hit) return hit.value as T;
        throw err;
      }
    })();
    this.reading.set(key, reading);
    const forget = (): void => {
      if (this.reading.get(key) === reading) this.reading.delete(key);
    };
    reading.then(forget, forget);
    return reading;
  }

  private async one<T extends pg.QueryResultRow>(text: string, params: unknown[]): Promise<T | undefined> {
    return (await this.pool.query<T>(text, params)).rows[0];
  }

  async createTeam(id: string, limits: Limits, at: number): Promise<TeamRecord> {
    const r = await this.pool.query(INSERT_TEAM, teamValues(id, limits, at));
    if (r.rowCount === 0) throw new LedgerError(`A team named "${id}" already exists.`, 'conflict');
    await this.changed();
    return this.team(id);
  }

  async getTeam(id: string): Promise<TeamRecord | undefined> {
    return this.cached(`team:${id}`, async () => {
      const row = await this.one<TeamRow>('SELECT * FROM teams WHERE id = $1', [id]);
      return row ? teamFrom(row) : undefined;
    });
  }

  async listTeams(): Promise<TeamRecord[]> {
    return (await this.pool.query<TeamRow>('SELECT * FROM teams ORDER BY id')).rows.map(teamFrom);
  }

  async updateTeam(id: string, patch: TeamPatch): Promise<TeamRecord> {
    if (!(await this.one('SELECT 1 FROM teams WHERE id = $1', [id]))) throw new LedgerError(`No team named "${id}".`);
    await this.applyLimits(this.pool, 'teams', id, patch);
    await this.changed();
    return this.team(id);
  }

  private async team(id: string): Promise<TeamRecord> {
    this.invalidate();
    const team = await this.getTeam(id);
    if (!team) throw new LedgerError(`No team named "${id}".`);
    return team;
  }

  private async applyLimits(db: pg.Pool | pg.PoolClient, table: 'teams' | 'keys', id: string, patch: TeamPatch): Promise<void> {
    if (patch.budget !== undefined) await db.query(`UPDATE ${table} SET budget_micros = $1, budget_period = $2 WHERE id = $3`, [patch.budget?.limitMicros ?? null, patch.budget?.period ?? null, id]);
    if (patch.rpm !== undefined) await db.query(`UPDATE ${table} SET rpm = $1 WHERE id = $2`, [patch.rpm, id]);
    if (patch.tpm !== undefined) await db.query(`UPDATE ${table} SET tpm = $1 WHERE id = $2`, [patch.tpm, id]);
  }

  private async transaction<T>(fn: (db: pg.PoolClient) => Promise<T>): Promise<T> {
    const client = await this.pool.connect();
    // A server that goes away mid-transaction errors the query; the client's own event must not crash the process.
    const ignore = (): void => {};
    client.on('error', ignore);
    try {
      await client.query('BEGIN');
      const out = await fn(client);
      await client.query('COMMIT');
      return out;
    } catch (err) {
      await client.query('ROLLBACK').catch(() => {});
      throw err;
    } finally {
      client.off('error', ignore);
      client.release();
    }
  }

  async createKey(key: NewKey, secretHash: string, at: number): Promise<KeyRecord> {
    if (await this.one('SELECT 1 FROM keys WHERE name = $1', [key.name])) throw new LedgerError(`A key named "${key.name}" already exists.`, 'conflict');
    if (key.teamId !== undefined && !(await this.one('SELECT 1 FROM teams WHERE id = $1', [key.teamId]))) throw new LedgerError(`No team named "${key.teamId}".`);
    await this.transaction(async (db) => {
      await db.query(INSERT_KEY, keyValues(key, at, (admin) => admin));
      await db.query('INSERT INTO key_secrets (hash, key_id, created_at) VALUES ($1, $2, $3)', [secretHash, key.id, at]);
    });
    await this.changed();
    return this.key(key.id);
  }

  async getKey(idOrName: string): Promise<KeyRecord | undefined> {
    return this.cached(`key:${idOrName}`, async () => {
      const row = await this.one<KeyRow>('SELECT * FROM keys WHERE id = $1 OR name = $1', [idOrName]);
      return row ? keyFrom(row) : undefined;
    });
  }

  async listKeys(): Promise<KeyRecord[]> {
    return (await this.pool.query<KeyRow>('SELECT * FROM keys ORDER BY created_at, id')).rows.map(keyFrom);
  }

  async updateKey(id: string, patch: KeyPatch): Promise<KeyRecord> {
    await this.key(id);
    if (patch.teamId !== undefined && patch.teamId !== null && !(await this.one('SELECT 1 FROM teams WHERE id = $1', [patch.teamId]))) throw new LedgerError(`No team named "${patch.teamId}".`);
    if (patch.name !== undefined) {
      const other = await this.one<{ id: string }>('SELECT id FROM keys WHERE name = $1', [patch.name]);
      if (other && other.id !== id) throw new LedgerError(`A key named "${patch.name}" already exists.`, 'conflict');
    }
    await this.transaction(async (db) => {
      const set = async (column: string, value: unknown): Promise<void> => void (await db.query(`UPDATE keys SET ${column} = $1 WHERE id = $2`, [value, id]));
      if (patch.name !== undefined) await set('name', patch.name);
      if (patch.teamId !== undefined) await set('team_id', patch.teamId);
      if (patch.admin !== undefined) await set('admin', patch.admin);
      if (patch.models !== undefined) await set('models', patch.models === null ? null : JSON.stringify(patch.models));
      if (patch.expiresAt !== undefined) await set('expires_at', patch.expiresAt);
      if (patch.metadata !== undefined) await set('metadata', JSON.stringify(patch.metadata));
      await this.applyLimits(db, 'keys', id, patch);
    });
    await this.changed();
    return this.key(id);
  }

  async revokeKey(id: string, at: number): Promise<KeyRecord> {
    const key = await this.key(id);
    await this.pool.query('UPDATE keys SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL', [at, key.id]);
    await this.changed();
    return this.key(key.id);
  }

  async rotateKey(id: string, secretHash: string, at: number, retireAt: number): Promise<KeyRecord> {
    const key = await this.key(id);
    if (key.revokedAt !== undefined) throw new LedgerError(`Key ${key.id} is revoked; create a new one instead.`, 'conflict');
    await this.transaction(async (db) => {
      await db.query('UPDATE key_secrets SET retires_at = $1 WHERE key_id = $2 AND (retires_at IS NULL OR retires_at > $1)', [retireAt, key.id]);
      await db.query('INSERT INTO key_secrets (hash, key_id, created_at) VALUES ($1, $2, $3)', [secretHash, key.id, at]);
    });
    await this.changed();
    return key;
  }

  async keyBySecretHash(secretHash: string, at: number): Promise<KeyRecord | undefined> {
    // Cached with its validity window, so that expiry and retirement are still judged at `at`.
    const found = await this.cached(`secret:${secretHash}`, async () => {
      const row = await this.one<KeyRow & { retires_at: number | null }>(
        'SELECT keys.*, key_secrets.retires_at FROM key_secrets JOIN keys ON keys.id = key_secrets.key_id WHERE key_secrets.hash = $1',
        [secretHash],
      );
      return row ? { key: keyFrom(row), retiresAt: row.retires_at } : undefined;
    });
    if (!found) return undefined;
    const { key, retiresAt } = found;
    if ((retiresAt !== null && retiresAt <= at) || key.revokedAt !== undefined || (key.expiresAt !== undefined && key.expiresAt <= at)) return undefined;
    return key;
  }

  private async key(idOrName: string): Promise<KeyRecord> {
    this.invalidate();
    const key = await this.getKey(idOrName);
    if (!key) throw new LedgerError(`No key with id or name "${idOrName}" (see: switchboard keys list).`);
    return key;
  }

  // --- Spend ----------------------------------------------------------------------------

  recordReservation(row: ReservationRow): Promise<void> {
    this.unsettled.set(row.id, row);
    return this.write({ op: 'reserve', row, instance: this.instance });
  }

  settle(id: string, outcome: SpendOutcome): Promise<void> {
    const row = this.unsettled.get(id);
    this.unsettled.delete(id);
    return this.write({ op: 'settle', id, outcome, ...(row ? { row, instance: this.instance } : {}) });
  }

  recordSettlement(row: ReservationRow, outcome: SpendOutcome): Promise<void> {
    this.unsettled.delete(row.id);
    return this.write({ op: 'settle', id: row.id, outcome, row, instance: this.instance });
  }

  /** The entry recording a reservation and its outcome at once, for the shared state's settle to append (see SpendJournal). */
  settlementEntry(row: ReservationRow, outcome: SpendOutcome): JournalEntry | undefined {
    if (!this.queue || this.held.length > 0 || this.direct.length > 0) return undefined;
    return { stream: this.stream, entry: encode({ op: 'settle', id: row.id, outcome, row, instance: this.instance }) };
  }

  appended(id: string, journal: JournalEntry, streamId: string | undefined): void {
    this.unsettled.delete(id);
    if (streamId !== undefined) this.keep(streamId, journal.entry);
  }

  private keep(id: string, entry: string): void {
    if (this.sent.length >= MAX_SENT) {
      this.log(`more than ${MAX_SENT} spend entries wait in the Redis queue; the oldest would no longer be re-sent if Redis lost its data.`);
      this.sent.splice(0, MAX_SENT / 2);
    }
    this.sent.push({ id, entry });
  }

  /** Add one entry to the stream, kept until it is drained. */
  private async xadd(entry: Entry): Promise<void> {
    const text = encode(entry);
    const id = await (this.queue as RedisClient).sendCommand(['XADD', this.stream, '*', 'e', text]);
    this.keep(String(id), text);
  }

  /**
   * Once a second while entries are kept: forget those the consumers have written to Postgres,
   * or, when the stream's epoch changed (Redis lost its data, and them with it), send them all
   * again straight to Postgres (every write is idempotent, so one that had arrived changes nothing).
   */
  private async checkQueue(): Promise<void> {
    if (!this.queue || this.checking || (this.epoch !== undefined && this.sent.length === 0)) return;
    this.checking = true;
    try {
      const [epoch, delivered, pending] = (await runScript(this.queue, QUEUE_STATE, [this.stream, `${this.stream}:epoch`], [randomUUID()])) as [string, string, string];
      if (this.epoch !== undefined && epoch !== this.epoch && this.sent.length > 0) {
        this.log(`the ledger's queue (Redis) lost its data; sending the ${this.sent.length} spend entries this instance had queued straight to Postgres.`);
        this.held.push(...this.sent.map((s) => decode(s.entry)));
        this.sent = [];
        void this.retryHeld();
      } else if (delivered !== '') {
        this.sent = this.sent.filter((s) => compareStreamIds(s.id, delivered) > 0 || (pending !== '' && compareStreamIds(s.id, pending) >= 0));
      }
      this.epoch = epoch;
    } finally {
      this.checking = false;
    }
  }

  /** Queue one spend entry: on the Redis stream when there is one, else straight to Postgres. */
  private async write(entry: Entry): Promise<void> {
    if (this.queue && this.held.length === 0) {
      try {
        await this.xadd(entry);
        return;
      } catch (err) {
        this.log(`the ledger queue (Redis) failed (${(err as Error).message}); writing spend to Postgres directly.`);
      }
    }
    await this.writeDirect(entry);
  }

  /** Batch this turn's entries into one Postgres transaction; keep them in memory while it is down. */
  private writeDirect(entry: Entry): Promise<void> {
    return new Promise((resolve) => {
      this.direct.push({ entry, resolve });
      if (!this.directScheduled) {
        this.directScheduled = true;
        setImmediate(() => void this.flushDirect());
      }
    });
  }

  private async flushDirect(): Promise<void> {
    this.directScheduled = false;
    const batch = this.direct;
    this.direct = [];
    this.held.push(...batch.map((b) => b.entry));
    // Accepted: the entry is held by this process until a store takes it.
    for (const b of batch) b.resolve();
    await this.retryHeld();
  }

  private retrying = false;
  /** Hand held entries to Postgres (or back to the stream), oldest first, until one of them takes them. */
  private async retryHeld(): Promise<void> {
    if (this.retrying) return;
    this.retrying = true;
    try {
      while (this.held.length > 0 && !this.closed) {
        const batch = this.held.slice(0, 500);
        try {
          await this.apply(batch);
        } catch {
          try {
            if (!this.queue) throw new Error('no queue');
            for (const e of batch) await this.xadd(e);
          } catch {
            await new Promise((r) => setTimeout(r, 250));
            continue;
          }
        }
        this.held.splice(0, batch.length);
      }
    } finally {
      this.retrying = false;
    }
  }

  /** Write entries to Postgres in one transaction; every statement is idempotent. */
  private async apply(entries: Entry[]): Promise<void> {
    const reserving = entries.filter((e) => e.row !== undefined) as { row: ReservationRow; instance?: string }[];
    const reserves = reserving.map((e) => e.row);
    const settles = entries.filter((e): e is Extract<Entry, { op: 'settle' }> => e.op === 'settle');
    await this.transaction(async (db) => {
      if (reserves.length > 0) {
        await db.query(
          `INSERT INTO spend (id, at, key_id, team_id, model, protocol, status, scopes, reserved_micros, expires_at, instance)
           SELECT id, at, key_id, team_id, model, protocol, 'reserved', scopes, reserved_micros, expires_at, instance
           FROM unnest($1::text[], $2::bigint[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::bigint[], $9::bigint[], $10::text[])
             AS t(id, at, key_id, team_id, model, protocol, scopes, reserved_micros, expires_at, instance)
           ON CONFLICT (id) DO NOTHING`,
          [
            reserves.map((r) => r.id),
            reserves.map((r) => r.at),
            reserves.map((r) => r.keyId ?? null),
            reserves.map((r) => r.teamId ?? null),
            reserves.map((r) => r.model),
            reserves.map((r) => r.protocol ?? null),
            reserves.map((r) => JSON.stringify(r.scopes)),
            reserves.map((r) => r.reservedMicros),
            reserves.map((r) => r.expiresAt),
            reserving.map((e) => e.instance ?? null),
          ],
        );
      }
      if (settles.length > 0) {
        const cost = settles.map((s) => splitFemto(s.outcome.costFemto ?? 0n));
        const saved = settles.map((s) => splitFemto(s.outcome.savedFemto ?? 0n));
        await db.query(
          `UPDATE spend SET status = t.status, settled_at = t.settled_at, provider = t.provider, resolved_model = t.resolved_model,
             prompt_tokens = t.prompt, completion_tokens = t.completion, cost_micro = t.micro, cost_femto = t.femto, cost_known = t.known,
             saved_micro = t.saved_micro, saved_femto = t.saved_femto
           FROM unnest($1::text[], $2::text[], $3::bigint[], $4::text[], $5::text[], $6::bigint[], $7::bigint[], $8::bigint[], $9::bigint[], $10::boolean[], $11::bigint[], $12::bigint[])
             AS t(id, status, settled_at, provider, resolved_model, prompt, completion, micro, femto, known, saved_micro, saved_femto)
           WHERE spend.id = t.id`,
          [
            settles.map((s) => s.id),
            settles.map((s) => s.outcome.status),
            settles.map((s) => s.outcome.at),
            settles.map((s) => s.outcome.provider ?? null),
            settles.map((s) => s.outcome.resolvedModel ?? null),
            settles.map((s) => s.outcome.promptTokens),
            settles.map((s) => s.outcome.completionTokens),
            cost.map((c) => c.micro.toString()),
            cost.map((c) => c.femto.toString()),
            settles.map((s) => s.outcome.costFemto !== null),
            saved.map((c) => c.micro.toString()),
            saved.map((c) => c.femto.toString()),
          ],
        );
      }
    });
  }

  /** The consumer group, unless it exists (a Redis restarted without its data has none). */
  private async createGroup(queue: RedisClient): Promise<void> {
    await queue.sendCommand(['XGROUP', 'CREATE', this.stream, 'ledger', '0', 'MKSTREAM']).catch((err: Error) => {
      if (!err.message.startsWith('BUSYGROUP')) throw err;
    });
  }

  /**
   * The consumer: this instance's unacknowledged entries first (a batch that failed, or one
   * claimed from a dead instance), then new ones; each batch is committed, then acknowledged.
   */
  private async drainLoop(): Promise<void> {
    const queue = this.queue as RedisClient;
    let claimAt = 0;
    // This consumer's own unacknowledged entries are read only when there may be some: at
    // start, after a claim took some over, and after a batch failed; otherwise a batch costs
    // two round trips (read new entries, then acknowledge and delete them in one script).
    let ownPending = true;
    while (!this.closed) {
      try {
        if (Date.now() >= claimAt) {
          // Entries a crashed instance read but never committed: after 5 s idle, they are ours.
          const claimed = (await queue.sendCommand(['XAUTOCLAIM', this.stream, 'ledger', this.instance, '5000', '0-0', 'COUNT', '500'])) as [string, unknown[]] | null;
          if (Array.isArray(claimed?.[1]) && claimed[1].length > 0) ownPending = true;
          claimAt = Date.now() + 2000;
        }
        let entries = ownPending ? await this.read(queue, '0') : [];
        if (entries.length === 0) {
          ownPending = false;
          entries = await this.read(queue, '>');
        }
        if (entries.length === 0) continue;
        ownPending = true; // until this batch is acknowledged
        await this.apply(entries.map((e) => e.entry));
        const ids = entries.map((e) => e.id);
        await runScript(queue, ACK_AND_DELETE, [this.stream], ids);
        ownPending = false;
        this.drained += ids.length;
        if (this.lastDrainError !== undefined) this.log(`the ledger is being written again (${ids.length} queued entries drained).`);
        this.lastDrainError = undefined;
      } catch (err) {
        if (this.closed) break;
        const message = (err as Error).message;
        // A Redis restarted without its data lost the group too: make it again and go on.
        if (message.startsWith('NOGROUP') && (await this.createGroup(queue).then(() => true, () => false))) continue;
        if (this.lastDrainError === undefined) this.log(`the ledger cannot be written (${message}); spend waits in the Redis queue.`);
        this.lastDrainError = message;
        await new Promise((r) => setTimeout(r, 250));
      }
    }
  }

  private async read(queue: RedisClient, from: '0' | '>'): Promise<{ id: string; entry: Entry }[]> {
    const reply = (await queue.sendCommand(
      from === '>' ? ['XREADGROUP', 'GROUP', 'ledger', this.instance, 'COUNT', '500', 'BLOCK', '100', 'STREAMS', this.stream, '>'] : ['XREADGROUP', 'GROUP', 'ledger', this.instance, 'COUNT', '500', 'STREAMS', this.stream, '0'],
    )) as [string, StreamEntry[]][] | Record<string, StreamEntry[]> | null;
    // RESP2 answers [[stream, entries]], RESP3 a map from stream to entries.
    const lists = Array.isArray(reply) ? reply.map((s) => s[1]) : reply ? Object.values(reply) : [];
    const out: { id: string; entry: Entry }[] = [];
    for (const entries of lists) for (const [id, fields] of entries) if (fields) out.push({ id, entry: decode(fields[1] as string) });
    return out;
  }

  /** Wait until every spend entry written before this call is in Postgres (reads that must see them). */
  async drain(timeoutMs = 10_000): Promise<void> {
    const end = Date.now() + timeoutMs;
    for (;;) {
      const waiting = this.held.length + this.direct.length + (this.queue ? Number(await this.queue.sendCommand(['XLEN', this.stream])) : 0);
      if (waiting === 0) return;
      if (Date.now() > end) {
        const first = this.queue ? JSON.stringify(await this.queue.sendCommand(['XRANGE', this.stream, '-', '+', 'COUNT', '1'])) : '';
        throw new LedgerError(`${waiting} spend entries are still waiting for Postgres (${this.lastDrainError ?? 'no error'}; first: ${first}).`, 'conflict');
      }
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  /** Entries waiting for Postgres: on the stream, and held in this process. */
  async backlog(): Promise<number> {
    const streamed = this.queue ? Number(await this.queue.sendCommand(['XLEN', this.stream]).catch(() => 0)) : 0;
    return streamed + this.held.length + this.direct.length;
  }

  async pendingReservations(at: number): Promise<ReservationRow[]> {
    const rows = (await this.pool.query<ReservedRow>("SELECT * FROM spend WHERE status = 'reserved' AND expires_at > $1 ORDER BY expires_at", [at])).rows;
    return rows.map(reservationFrom);
  }

  async expireReservations(at: number): Promise<number> {
    return (await this.pool.query("UPDATE spend SET status = 'expired', settled_at = $1 WHERE status = 'reserved' AND expires_at <= $1", [at])).rowCount ?? 0;
  }

  async spentMicros(scope: Scope, sinceMs: number): Promise<number> {
    const f = scopeFilter(scope, 2);
    const row = await this.one<{ micros: string }>(`SELECT COALESCE(SUM(cost_micro + (cost_femto > 0)::int), 0)::text AS micros FROM spend WHERE ${f.where} AND at >= $1 AND ${SETTLED}`, [sinceMs, ...f.params]);
    return Number(row?.micros ?? 0);
  }

  async spentFemto(scope: Scope, sinceMs: number): Promise<bigint> {
    const f = scopeFilter(scope, 2);
    const row = await this.one<{ micro: string; femto: string }>(`SELECT COALESCE(SUM(cost_micro), 0)::text AS micro, COALESCE(SUM(cost_femto), 0)::text AS femto FROM spend WHERE ${f.where} AND at >= $1 AND ${SETTLED}`, [sinceMs, ...f.params]);
    return BigInt(row?.micro ?? 0) * FEMTO_PER_MICRO + BigInt(row?.femto ?? 0);
  }

  async usage(query: UsageQuery): Promise<LedgerUsageRow[]> {
    const dayOf = query.by === 'day' ? dayFormatter(query.timeZone ?? 'UTC') : undefined;
    const out = new Map<string, LedgerUsageRow>();
    for (const r of await this.sums(query, query.by === 'day' ? undefined : GROUP_COLUMN[query.by])) addSums(out, dayOf ? dayOf(Number(r.quarter) * 900_000) : String(r.grp), r);
    return [...out.values()].sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  }

  async usageSeries(query: SeriesQuery): Promise<LedgerSeriesRow[]> {
    const bucketOf = bucketFormatter(query.bucket, query.timeZone ?? 'UTC');
    const out = new Map<string, LedgerSeriesRow>();
    for (const r of await this.sums(query, GROUP_COLUMN[query.by])) {
      const bucket = bucketOf(Number(r.quarter) * 900_000);
      const row = addSums(out, `${bucket}\u0000${String(r.grp)}`, r) as LedgerSeriesRow;
      row.key = String(r.grp);
      row.bucket = bucket;
    }
    return [...out.values()];
  }

  /** Settled rows summed per quarter hour and (optionally) a group column. */
  private async sums(query: Omit<UsageQuery, 'by'>, group: string | undefined): Promise<SumRow[]> {
    const where = [SETTLED, 'at >= $1'];
    const params: (number | string)[] = [query.sinceMs ?? 0];
    if (query.untilMs !== undefined) {
      params.push(query.untilMs);
      where.push(`at < $${params.length}`);
    }
    if (query.keyId !== undefined) {
      params.push(query.keyId);
      where.push(`key_id = $${params.length}`);
    }
    const groupBy = group === undefined ? 'quarter' : 'quarter, grp';
    const rows = (
      await this.pool.query<{ quarter: string; grp: string | number; requests: string; prompt: string; completion: string; micro: string; femto: string; unpriced: string; saved_micro: string; saved_femto: string }>(
        `SELECT (at / 900000)::text AS quarter, ${group ?? "''"} AS grp, COUNT(*)::text AS requests, SUM(prompt_tokens)::text AS prompt, SUM(completion_tokens)::text AS completion,
           SUM(cost_micro)::text AS micro, SUM(cost_femto)::text AS femto, SUM(CASE WHEN cost_known THEN 0 ELSE 1 END)::text AS unpriced,
           SUM(saved_micro)::text AS saved_micro, SUM(saved_femto)::text AS saved_femto
         FROM spend WHERE ${where.join(' AND ')} GROUP BY ${groupBy} ORDER BY ${groupBy}`,
        params,
      )
    ).rows;
    return rows.map((r) => ({ quarter: BigInt(r.quarter), grp: String(r.grp), requests: BigInt(r.requests), prompt: BigInt(r.prompt), completion: BigInt(r.completion), micro: BigInt(r.micro), femto: BigInt(r.femto), unpriced: BigInt(r.unpriced), saved_micro: BigInt(r.saved_micro), saved_femto: BigInt(r.saved_femto) }));
  }

  async close(): Promise<void> {
    if (this.closed) return;
    // Hand over what this process still holds before it goes (for a few seconds at most).
    await Promise.race([this.retryHeld().catch(() => {}), new Promise((r) => setTimeout(r, 3000).unref())]);
    if (this.held.length > 0) this.log(`${this.held.length} spend entries could not be written to Redis or Postgres before closing.`);
    this.closed = true;
    if (this.checkTimer) clearInterval(this.checkTimer);
    await this.draining?.catch(() => {});
    if (this.queue?.isOpen) await this.queue.close().catch(() => {});
    await this.listener?.end().catch(() => {});
    await this.pool.end().catch(() => {});
  }
}
