/**
 * The durable side of virtual keys: keys (as hashes only), teams, and one spend row per
 * request, in SQLite by default (`$SWITCHBOARD_HOME/ledger.db`, WAL).
 *
 * Money is integers: a row's exact cost in femto-dollars is stored as whole micro-dollars plus
 * the femto-dollar remainder below one micro-dollar, two INTEGER columns whose SQL sums cannot
 * overflow in practice (2^63 micro-dollars) or round; readers join them back into a BigInt.
 * What caching saved on the request (`saved_micro`, `saved_femto`: a response-cache hit's
 * price, or a provider prompt cache's discount, negative for a request that only wrote the
 * cache) is kept the same way.
 *
 * Schema versions: 1 had no savings columns; 2 added them. An older file is upgraded in place
 * when opened (under the write lock, looking again for another process's upgrade).
 *
 * A spend row is written when a request is reserved (status `reserved`, its worst case and its
 * expiry) and completed when it settles, each committed before its promise resolves (writes of
 * the same event-loop turn share one transaction, by default on a worker thread's connection:
 * ledger-spend.ts; spend reads wait until every write before them is committed): a process
 * killed between the two leaves a reservation that a restart holds again until it expires and
 * then marks `expired`, and every settled row is already on disk. A request that settles before
 * its reservation row was due (the gateway writes it only once a request has run a while) is
 * written once, settled (`recordSettlement`).
 *
 * The interface is asynchronous so that Postgres can implement it; the SQLite one reads keys and
 * teams at once, on this thread's connection. Nothing here ever sees a plaintext key (the
 * spend writer sees only spend rows).
 */
import { mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import type Database from 'better-sqlite3';
import { switchboardHome } from '../paths.js';
import { LedgerError } from './ledger-error.js';
import { InThreadSpend, openLedgerFile, WorkerSpend, type SpendOp, type SpendSink } from './ledger-spend.js';
import type { Env } from '../providers/resolve.js';
import type { BudgetPeriod } from './periods.js';
import type { ScopeRef } from './shared-state.js';

export const LEDGER_SCHEMA_VERSION = 2;
export const FEMTO_PER_MICRO = 1_000_000_000n;

export interface Budget {
  /** Integer micro-dollars. */
  limitMicros: number;
  period: BudgetPeriod;
}

/** What limits a key or a team: all optional. */
export interface Limits {
  budget?: Budget;
  rpm?: number;
  tpm?: number;
}

export interface TeamRecord extends Limits {
  id: string;
  createdAt: number;
}

export interface KeyRecord extends Limits {
  /** Public id, the key's first characters (`sk-sb-3f9a1c0d`): safe to log and show. */
  id: string;
  name: string;
  teamId?: string;
  admin: boolean;
  /** Glob patterns over model strings and aliases; undefined allows every model. */
  models?: string[];
  expiresAt?: number;
  revokedAt?: number;
  createdAt: number;
  metadata: Record<string, string>;
}

export interface NewKey extends Limits {
  id: string;
  name: string;
  teamId?: string;
  admin?: boolean;
  models?: string[];
  expiresAt?: number;
  metadata?: Record<string, string>;
}

/** Fields to change; `null` clears one. */
export interface KeyPatch {
  name?: string;
  teamId?: string | null;
  admin?: boolean;
  budget?: Budget | null;
  rpm?: number | null;
  tpm?: number | null;
  models?: string[] | null;
  expiresAt?: number | null;
  metadata?: Record<string, string>;
}

export type TeamPatch = Pick<KeyPatch, 'budget' | 'rpm' | 'tpm'>;

export interface ReservationRow {
  id: string;
  at: number;
  keyId?: string;
  teamId?: string;
  model: string;
  protocol?: string;
  scopes: ScopeRef[];
  reservedMicros: number;
  expiresAt: number;
}

export type SpendStatus = 'ok' | 'error' | 'cancelled';

export interface SpendOutcome {
  status: SpendStatus;
  at: number;
  promptTokens: number;
  completionTokens: number;
  /** Exact cost in femto-dollars; null when no price is known. */
  costFemto: bigint | null;
  /** What caching saved, femto-dollars (a cache hit's price, a prompt cache's discount); absent: nothing. */
  savedFemto?: bigint;
  provider?: string;
  resolvedModel?: string;
}

/** A scope's spend: `key:<id>`, `team:<id>` or `total`. */
export type Scope = string;

export const USAGE_GROUPS = ['key', 'team', 'model', 'provider', 'day'] as const;
export type UsageGroup = (typeof USAGE_GROUPS)[number];

export interface LedgerUsageRow {
  key: string;
  requests: number;
  promptTokens: number;
  completionTokens: number;
  /** Exact sum in femto-dollars of the rows whose price was known. */
  costFemto: bigint;
  /** Rows whose cost is unknown (no price). */
  unpriced: number;
  /** What caching saved on these rows, exact femto-dollars. */
  savedFemto: bigint;
}

export interface UsageQuery {
  by: UsageGroup;
  sinceMs?: number;
  /** Rows before this time only (default: all). */
  untilMs?: number;
  /** One key's rows only (a key sees its own usage). */
  keyId?: string;
  /** For `day`: the calendar's time zone (default UTC). */
  timeZone?: string;
}

export interface Ledger {
  createTeam(id: string, limits: Limits, at: number): Promise<TeamRecord>;
  getTeam(id: string): Promise<TeamRecord | undefined>;
  listTeams(): Promise<TeamRecord[]>;
  updateTeam(id: string, patch: TeamPatch): Promise<TeamRecord>;

  /** Store a key with the hash of its first secret. */
  createKey(key: NewKey, secretHash: string, at: number): Promise<KeyRecord>;
  /** The key (by public id or name). */
  getKey(idOrName: string): Promise<KeyRecord | undefined>;
  listKeys(): Promise<KeyRecord[]>;
  updateKey(id: string, patch: KeyPatch): Promise<KeyRecord>;
  revokeKey(id: string, at: number): Promise<KeyRecord>;
  /** Add a secret; the key's other secrets stop working at `retireAt` (now: at once). */
  rotateKey(id: string, secretHash: string, at: number, retireAt: number): Promise<KeyRecord>;
  /** The key a secret's hash belongs to, when the secret, the key and its expiry all allow it at `at`. */
  keyBySecretHash(secretHash: string, at: number): Promise<KeyRecord | undefined>;

  /** Write a reservation's row; writing the same id again changes nothing. */
  recordReservation(row: ReservationRow): Promise<void>;
  settle(id: string, outcome: SpendOutcome): Promise<void>;
  /**
   * A request that ended before its reservation's row was written: the row as settled, in one
   * write (what `recordReservation` then `settle` would leave; writing it again changes nothing).
   */
  recordSettlement(row: ReservationRow, outcome: SpendOutcome): Promise<void>;
  /** Unsettled reservations still within their expiry (to hold again after a restart). */
  pendingReservations(at: number): Promise<ReservationRow[]>;
  /** Mark unsettled reservations past their expiry `expired`; returns how many. */
  expireReservations(at: number): Promise<number>;
  /**
   * Settled spend of a scope since `sinceMs`, each row rounded up to the micro-dollar exactly as
   * the shared state counts it, so a rebuilt budget counter matches the one that was lost.
   */
  spentMicros(scope: Scope, sinceMs: number): Promise<number>;
  /** Exact settled spend of a scope since `sinceMs`, in femto-dollars. */
  spentFemto(scope: Scope, sinceMs: number): Promise<bigint>;
  usage(query: UsageQuery): Promise<LedgerUsageRow[]>;
  /** Usage per time bucket (hour or day in `timeZone`) and group: the console's spend charts. */
  usageSeries(query: SeriesQuery): Promise<LedgerSeriesRow[]>;
  close(): Promise<void>;
}

export interface SeriesQuery extends Omit<UsageQuery, 'by'> {
  by: Exclude<UsageGroup, 'day'>;
  bucket: 'hour' | 'day';
}

export interface LedgerSeriesRow extends LedgerUsageRow {
  /** The bucket in the query's time zone: `2026-12-01` or `2026-12-01T14`. */
  bucket: string;
}

export { LedgerError };

/**
 * Every change to keys, secrets or teams, from any connection or process, counts up
 * `meta.records` (by trigger, in the change's own transaction): a connection that keeps those
 * records in memory empties them when the count moved, and not for the spend rows that another
 * connection (the spend writer's) commits all the time.
 */
const COUNT_RECORDS = "UPDATE meta SET value = CAST(value AS INTEGER) + 1 WHERE name = 'records'";

const SCHEMA = `
CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS teams (
  id TEXT PRIMARY KEY, budget_micros INTEGER, budget_period TEXT, rpm INTEGER, tpm INTEGER, created_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS keys (
  id TEXT PRIMARY KEY, name TEXT NOT NULL UNIQUE, team_id TEXT REFERENCES teams(id), admin INTEGER NOT NULL DEFAULT 0,
  budget_micros INTEGER, budget_period TEXT, rpm INTEGER, tpm INTEGER, models TEXT, expires_at INTEGER, revoked_at INTEGER,
  created_at INTEGER NOT NULL, metadata TEXT NOT NULL DEFAULT '{}'
);
CREATE TABLE IF NOT EXISTS key_secrets (
  hash TEXT PRIMARY KEY, key_id TEXT NOT NULL REFERENCES keys(id), created_at INTEGER NOT NULL, retires_at INTEGER
);
CREATE TABLE IF NOT EXISTS spend (
  id TEXT PRIMARY KEY, at INTEGER NOT NULL, key_id TEXT, team_id TEXT, model TEXT NOT NULL, protocol TEXT,
  status TEXT NOT NULL, scopes TEXT NOT NULL, reserved_micros INTEGER NOT NULL, expires_at INTEGER NOT NULL,
  settled_at INTEGER, provider TEXT, resolved_model TEXT, prompt_tokens INTEGER NOT NULL DEFAULT 0,
  completion_tokens INTEGER NOT NULL DEFAULT 0, cost_micro INTEGER NOT NULL DEFAULT 0, cost_femto INTEGER NOT NULL DEFAULT 0,
  cost_known INTEGER NOT NULL DEFAULT 1, saved_micro INTEGER NOT NULL DEFAULT 0, saved_femto INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS spend_at ON spend(at);
CREATE INDEX IF NOT EXISTS spend_key ON spend(key_id, at);
CREATE INDEX IF NOT EXISTS spend_team ON spend(team_id, at);
CREATE INDEX IF NOT EXISTS spend_open ON spend(expires_at) WHERE status = 'reserved';
INSERT OR IGNORE INTO meta (name, value) VALUES ('records', '0');
${['keys', 'teams', 'key_secrets']
  .flatMap((table) => ['INSERT', 'UPDATE', 'DELETE'].map((op) => `CREATE TRIGGER IF NOT EXISTS ${table}_${op.toLowerCase()}_counted AFTER ${op} ON ${table} BEGIN ${COUNT_RECORDS}; END;`))
  .join('\n')}
`;

/** A keys row as SQLite (admin 0/1) or Postgres (admin boolean) returns it. */
export interface KeyRow {
  id: string;
  name: string;
  team_id: string | null;
  admin: number | boolean;
  budget_micros: number | null;
  budget_period: string | null;
  rpm: number | null;
  tpm: number | null;
  models: string | null;
  expires_at: number | null;
  revoked_at: number | null;
  created_at: number;
  metadata: string;
}

export type TeamRow = Pick<KeyRow, 'id' | 'budget_micros' | 'budget_period' | 'rpm' | 'tpm' | 'created_at'>;

function limitsFrom(row: TeamRow): Limits {
  const out: Limits = {};
  if (row.budget_micros !== null) out.budget = { limitMicros: row.budget_micros, period: (row.budget_period ?? 'total') as BudgetPeriod };
  if (row.rpm !== null) out.rpm = row.rpm;
  if (row.tpm !== null) out.tpm = row.tpm;
  return out;
}

/** The columns a new team's row is written with, in the order of teamValues(); one list for both ledgers. */
export const TEAM_COLUMNS = ['id', 'budget_micros', 'budget_period', 'rpm', 'tpm', 'created_at'] as const;

export function teamValues(id: string, limits: Limits, at: number): unknown[] {
  return [id, limits.budget?.limitMicros ?? null, limits.budget?.period ?? null, limits.rpm ?? null, limits.tpm ?? null, at];
}

/** The columns a new key's row is written with, in the order of keyValues(). */
export const KEY_COLUMNS = ['id', 'name', 'team_id', 'admin', 'budget_micros', 'budget_period', 'rpm', 'tpm', 'models', 'expires_at', 'created_at', 'metadata'] as const;

/** A new key's row; `admin` as the database stores it (SQLite 0/1, Postgres a boolean). */
export function keyValues(key: NewKey, at: number, admin: (isAdmin: boolean) => unknown): unknown[] {
  return [
    key.id,
    key.name,
    key.teamId ?? null,
    admin(key.admin ?? false),
    key.budget?.limitMicros ?? null,
    key.budget?.period ?? null,
    key.rpm ?? null,
    key.tpm ?? null,
    key.models ? JSON.stringify(key.models) : null,
    key.expiresAt ?? null,
    at,
    JSON.stringify(key.metadata ?? {}),
  ];
}

/** `INSERT INTO table (columns) VALUES (...)` with SQLite's `?` or Postgres's `$1, $2, ...` placeholders. */
export function insertSQL(table: string, columns: readonly string[], dialect: 'sqlite' | 'postgres'): string {
  const placeholders = columns.map((_, i) => (dialect === 'sqlite' ? '?' : `$${i + 1}`)).join(', ');
  return `INSERT INTO ${table} (${columns.join(', ')}) VALUES (${placeholders})`;
}

const INSERT_TEAM = insertSQL('teams', TEAM_COLUMNS, 'sqlite');
const INSERT_KEY = insertSQL('keys', KEY_COLUMNS, 'sqlite');

export function keyFrom(row: KeyRow): KeyRecord {
  const key: KeyRecord = { id: row.id, name: row.name, admin: row.admin === 1 || row.admin === true, createdAt: row.created_at, metadata: JSON.parse(row.metadata) as Record<string, string>, ...limitsFrom(row) };
  if (row.team_id !== null) key.teamId = row.team_id;
  if (row.models !== null) key.models = JSON.parse(row.models) as string[];
  if (row.expires_at !== null) key.expiresAt = row.expires_at;
  if (row.revoked_at !== null) key.revokedAt = row.revoked_at;
  return key;
}

export function teamFrom(row: TeamRow): TeamRecord {
  return { id: row.id, createdAt: row.created_at, ...limitsFrom(row) };
}

/** A `spend` row still reserved, as both ledgers' stores return it. */
export interface ReservedRow {
  id: string;
  at: number;
  key_id: string | null;
  team_id: string | null;
  model: string;
  protocol: string | null;
  scopes: string;
  reserved_micros: number;
  expires_at: number;
}

export function reservationFrom(r: ReservedRow): ReservationRow {
  const out: ReservationRow = { id: r.id, at: r.at, model: r.model, scopes: JSON.parse(r.scopes) as ScopeRef[], reservedMicros: r.reserved_micros, expiresAt: r.expires_at };
  if (r.key_id !== null) out.keyId = r.key_id;
  if (r.team_id !== null) out.teamId = r.team_id;
  if (r.protocol !== null) out.protocol = r.protocol;
  return out;
}

/** The SQL condition and parameter selecting a scope's rows. */
function scopeFilter(scope: Scope): { where: string; params: string[] } {
  if (scope === 'total') return { where: '1 = 1', params: [] };
  const [kind, id] = [scope.slice(0, scope.indexOf(':')), scope.slice(scope.indexOf(':') + 1)];
  if (kind === 'key') return { where: 'key_id = ?', params: [id] };
  if (kind === 'team') return { where: 'team_id = ?', params: [id] };
  throw new LedgerError(`Unknown scope "${scope}": use key:<id>, team:<id> or total.`);
}

/** Split an exact femto-dollar cost into whole micro-dollars and the remainder. */
export function splitFemto(femto: bigint): { micro: bigint; femto: bigint } {
  return { micro: femto / FEMTO_PER_MICRO, femto: femto % FEMTO_PER_MICRO };
}

/** A reservation's columns, in the order its insert writes them (id through expires_at). */
function reservationValues(row: ReservationRow): (string | number | null)[] {
  return [row.id, row.at, row.keyId ?? null, row.teamId ?? null, row.model, row.protocol ?? null, JSON.stringify(row.scopes), row.reservedMicros, row.expiresAt];
}

/** A settled row's outcome columns, in the order settle writes them (status through saved_femto). */
function outcomeValues(outcome: SpendOutcome): (string | number | bigint | null)[] {
  const cost = splitFemto(outcome.costFemto ?? 0n);
  const saved = splitFemto(outcome.savedFemto ?? 0n);
  return [
    outcome.status,
    outcome.at,
    outcome.provider ?? null,
    outcome.resolvedModel ?? null,
    outcome.promptTokens,
    outcome.completionTokens,
    cost.micro,
    cost.femto,
    outcome.costFemto === null ? 0 : 1,
    saved.micro,
    saved.femto,
  ];
}

/** Femto-dollars rounded up to whole micro-dollars: what a budget counter is charged. */
export function femtoToMicrosCeil(femto: bigint): number {
  return Number((femto + FEMTO_PER_MICRO - 1n) / FEMTO_PER_MICRO);
}

/** The SQL expression each usage grouping groups by (the same in SQLite and Postgres). */
export const GROUP_COLUMN: Record<Exclude<UsageGroup, 'day'>, string> = {
  key: "COALESCE(key_id, 'master')",
  team: "COALESCE(team_id, '-')",
  model: 'model',
  provider: "COALESCE(provider, '-')",
};

/** How many key and team records the SQLite ledger keeps in memory between requests. */
const RECORDS_KEPT = 10_000;

export interface SQLiteLedgerOptions {
  /**
   * Where spend rows are written: `worker` (the default for a file) on a worker thread's own
   * connection, so their commits and the WAL checkpoints never stall this thread; `thread`
   * (always for `:memory:`) on this connection, in this thread.
   */
  spendWrites?: 'worker' | 'thread';
}

/** SQLite ledger; `path` defaults to `$SWITCHBOARD_HOME/ledger.db`, `:memory:` for a throwaway one. */
export class SQLiteLedger implements Ledger {
  readonly path: string;
  private readonly db: Database.Database;
  private readonly statements = new Map<string, Database.Statement>();
  /**
   * Key and team records read on the request path, kept between requests: keys by the hash of
   * a secret (with that secret's retirement time), teams by id. Any change to keys or teams
   * empties them: this connection's own writes at once, another connection's (the CLI's) when
   * SQLite's data_version says another connection committed and the records count
   * (`meta.records`) moved, checked before every read.
   */
  private readonly keysByHash = new Map<string, { key: KeyRecord; retiresAt: number | null }>();
  private readonly teamsById = new Map<string, TeamRecord | undefined>();
  private readonly dataVersion: Database.Statement;
  private readonly recordsCount: Database.Statement;
  private seenVersion = -1;
  private seenRecords: unknown = undefined;
  private versionChecked = false;
  /** Where spend rows are written (ledger-spend.ts); spend reads wait for it, then read here. */
  private spend: SpendSink;

  constructor(path: string, options: SQLiteLedgerOptions = {}) {
    this.path = path;
    if (path !== ':memory:') mkdirSync(dirname(path), { recursive: true });
    this.db = openLedgerFile(path);
    this.db.pragma('foreign_keys = ON');
    this.db.exec(SCHEMA);
    this.dataVersion = this.db.prepare('PRAGMA data_version').pluck();
    this.recordsCount = this.db.prepare("SELECT value FROM meta WHERE name = 'records'").pluck();
    const version = this.db.prepare("SELECT value FROM meta WHERE name = 'schema'").get() as { value: string } | undefined;
    if (!version) this.db.prepare("INSERT INTO meta (name, value) VALUES ('schema', ?)").run(String(LEDGER_SCHEMA_VERSION));
    else if (Number(version.value) === 1) this.upgradeFrom1();
    else if (Number(version.value) !== LEDGER_SCHEMA_VERSION) {
      throw new LedgerError(`The ledger at ${path} has schema version ${version.value}; this switchboard reads version ${LEDGER_SCHEMA_VERSION}.`, 'schema');
    }
    if (path === ':memory:' || options.spendWrites === 'thread') this.spend = new InThreadSpend(this.db);
    else {
      // The worker's connection checkpoints as it commits; this one (keys and teams: rare) never does.
      this.db.pragma('wal_autocheckpoint = 0');
      // A writer that dies hands over to this connection: spend goes on being recorded (with
      // this thread's commits and checkpoints, as before workers), rather than refused until a restart.
      this.spend = new WorkerSpend(path, () => {
        this.db.pragma('wal_autocheckpoint = 1000');
        this.spend = new InThreadSpend(this.db);
      });
    }
  }

  /** Version 1 had no savings columns: add them (0 for the rows written before). */
  private upgradeFrom1(): void {
    this.db.transaction(() => {
      const now = this.db.prepare("SELECT value FROM meta WHERE name = 'schema'").pluck().get() as string;
      if (Number(now) !== 1) return; // another process upgraded it meanwhile
      this.db.exec('ALTER TABLE spend ADD COLUMN saved_micro INTEGER NOT NULL DEFAULT 0; ALTER TABLE spend ADD COLUMN saved_femto INTEGER NOT NULL DEFAULT 0');
      this.db.prepare("UPDATE meta SET value = ? WHERE name = 'schema'").run(String(LEDGER_SCHEMA_VERSION));
    }).immediate();
  }

  /**
   * Empty the record caches when another connection committed since the last look: looked at
   * once per turn of the event loop (the requests read in one turn share the look), so a change
   * committed before a request arrived is always seen.
   */
  private checkRecords(): void {
    if (this.versionChecked) return;
    this.versionChecked = true;
    setImmediate(() => (this.versionChecked = false));
    const version = this.dataVersion.get() as number;
    if (version === this.seenVersion) return;
    this.seenVersion = version;
    const records = this.recordsCount.get();
    if (records !== this.seenRecords) {
      this.seenRecords = records;
      this.forgetRecords();
    }
  }

  /** Empty the record caches (after this connection changed a key, a secret or a team). */
  private forgetRecords(): void {
    this.keysByHash.clear();
    this.teamsById.clear();
  }

  private sql(text: string): Database.Statement {
    let s = this.statements.get(text);
    if (!s) {
      s = this.db.prepare(text);
      this.statements.set(text, s);
    }
    return s;
  }

  createTeam(id: string, limits: Limits, at: number): Promise<TeamRecord> {
    if (this.sql('SELECT 1 FROM teams WHERE id = ?').get(id)) return Promise.reject(new LedgerError(`A team named "${id}" already exists.`, 'conflict'));
    this.sql(INSERT_TEAM).run(...teamValues(id, limits, at));
    this.forgetRecords();
    return this.team(id);
  }

  getTeam(id: string): Promise<TeamRecord | undefined> {
    this.checkRecords();
    if (this.teamsById.has(id)) return Promise.resolve(this.teamsById.get(id));
    const row = this.sql('SELECT * FROM teams WHERE id = ?').get(id) as TeamRow | undefined;
    const team = row ? Object.freeze(teamFrom(row)) : undefined;
    if (this.teamsById.size >= RECORDS_KEPT) this.teamsById.clear();
    this.teamsById.set(id, team);
    return Promise.resolve(team);
  }

  listTeams(): Promise<TeamRecord[]> {
    return Promise.resolve((this.sql('SELECT * FROM teams ORDER BY id').all() as TeamRow[]).map(teamFrom));
  }

  updateTeam(id: string, patch: TeamPatch): Promise<TeamRecord> {
    if (!this.sql('SELECT 1 FROM teams WHERE id = ?').get(id)) return Promise.reject(new LedgerError(`No team named "${id}".`));
    this.applyLimits('teams', id, patch);
    this.forgetRecords();
    return this.team(id);
  }

  private async team(id: string): Promise<TeamRecord> {
    const team = await this.getTeam(id);
    if (!team) throw new LedgerError(`No team named "${id}".`);
    return team;
  }

  private applyLimits(table: 'teams' | 'keys', id: string, patch: TeamPatch): void {
    if (patch.budget !== undefined) {
      this.db.prepare(`UPDATE ${table} SET budget_micros = ?, budget_period = ? WHERE id = ?`).run(patch.budget?.limitMicros ?? null, patch.budget?.period ?? null, id);
    }
    if (patch.rpm !== undefined) this.db.prepare(`UPDATE ${table} SET rpm = ? WHERE id = ?`).run(patch.rpm, id);
    if (patch.tpm !== undefined) this.db.prepare(`UPDATE ${table} SET tpm = ? WHERE id = ?`).run(patch.tpm, id);
  }

  createKey(key: NewKey, secretHash: string, at: number): Promise<KeyRecord> {
    if (this.sql('SELECT 1 FROM keys WHERE name = ?').get(key.name)) return Promise.reject(new LedgerError(`A key named "${key.name}" already exists.`, 'conflict'));
    if (key.teamId !== undefined && !this.sql('SELECT 1 FROM teams WHERE id = ?').get(key.teamId)) return Promise.reject(new LedgerError(`No team named "${key.teamId}".`));
    this.db.transaction(() => {
      this.sql(INSERT_KEY).run(...keyValues(key, at, (admin) => (admin ? 1 : 0)));
      this.sql('INSERT INTO key_secrets (hash, key_id, created_at) VALUES (?, ?, ?)').run(secretHash, key.id, at);
    })();
    this.forgetRecords();
    return this.key(key.id);
  }

  getKey(idOrName: string): Promise<KeyRecord | undefined> {
    const row = this.sql('SELECT * FROM keys WHERE id = ? OR name = ?').get(idOrName, idOrName) as KeyRow | undefined;
    return Promise.resolve(row ? keyFrom(row) : undefined);
  }

  listKeys(): Promise<KeyRecord[]> {
    return Promise.resolve((this.sql('SELECT * FROM keys ORDER BY created_at, id').all() as KeyRow[]).map(keyFrom));
  }

  async updateKey(id: string, patch: KeyPatch): Promise<KeyRecord> {
    await this.key(id);
    if (patch.teamId !== undefined && patch.teamId !== null && !this.sql('SELECT 1 FROM teams WHERE id = ?').get(patch.teamId)) {
      throw new LedgerError(`No team named "${patch.teamId}".`);
    }
    if (patch.name !== undefined) {
      const other = this.sql('SELECT id FROM keys WHERE name = ?').get(patch.name) as { id: string } | undefined;
      if (other && other.id !== id) throw new LedgerError(`A key named "${patch.name}" already exists.`, 'conflict');
    }
    this.db.transaction(() => {
      const set = (column: string, value: unknown): void => void this.db.prepare(`UPDATE keys SET ${column} = ? WHERE id = ?`).run(value, id);
      if (patch.name !== undefined) set('name', patch.name);
      if (patch.teamId !== undefined) set('team_id', patch.teamId);
      if (patch.admin !== undefined) set('admin', patch.admin ? 1 : 0);
      if (patch.models !== undefined) set('models', patch.models === null ? null : JSON.stringify(patch.models));
      if (patch.expiresAt !== undefined) set('expires_at', patch.expiresAt);
      if (patch.metadata !== undefined) set('metadata', JSON.stringify(patch.metadata));
      this.applyLimits('keys', id, patch);
    })();
    this.forgetRecords();
    return this.key(id);
  }

  async revokeKey(id: string, at: number): Promise<KeyRecord> {
    const key = await this.key(id);
    if (key.revokedAt === undefined) this.sql('UPDATE keys SET revoked_at = ? WHERE id = ?').run(at, key.id);
    this.forgetRecords();
    return this.key(key.id);
  }

  async rotateKey(id: string, secretHash: string, at: number, retireAt: number): Promise<KeyRecord> {
    const key = await this.key(id);
    if (key.revokedAt !== undefined) throw new LedgerError(`Key ${key.id} is revoked; create a new one instead.`, 'conflict');
    this.db.transaction(() => {
      this.sql('UPDATE key_secrets SET retires_at = ? WHERE key_id = ? AND (retires_at IS NULL OR retires_at > ?)').run(retireAt, key.id, retireAt);
      this.sql('INSERT INTO key_secrets (hash, key_id, created_at) VALUES (?, ?, ?)').run(secretHash, key.id, at);
    })();
    this.forgetRecords();
    return key;
  }

  keyBySecretHash(secretHash: string, at: number): Promise<KeyRecord | undefined> {
    this.checkRecords();
    const known = this.keysByHash.get(secretHash);
    if (known) {
      const { key, retiresAt } = known;
      const valid = (retiresAt === null || retiresAt > at) && key.revokedAt === undefined && (key.expiresAt === undefined || key.expiresAt > at);
      return Promise.resolve(valid ? key : undefined);
    }
    const row = this.sql(
      `SELECT keys.*, key_secrets.retires_at AS secret_retires_at FROM key_secrets JOIN keys ON keys.id = key_secrets.key_id
       WHERE key_secrets.hash = ? AND (key_secrets.retires_at IS NULL OR key_secrets.retires_at > ?)
         AND keys.revoked_at IS NULL AND (keys.expires_at IS NULL OR keys.expires_at > ?)`,
    ).get(secretHash, at, at) as (KeyRow & { secret_retires_at: number | null }) | undefined;
    if (!row) return Promise.resolve(undefined);
    const key = keyFrom(row);
    if (key.models) Object.freeze(key.models);
    Object.freeze(key.metadata);
    if (this.keysByHash.size >= RECORDS_KEPT) this.keysByHash.clear();
    this.keysByHash.set(secretHash, { key: Object.freeze(key), retiresAt: row.secret_retires_at });
    return Promise.resolve(key);
  }

  private async key(idOrName: string): Promise<KeyRecord> {
    const key = await this.getKey(idOrName);
    if (!key) throw new LedgerError(`No key with id or name "${idOrName}" (see: switchboard keys list).`);
    return key;
  }

  recordReservation(row: ReservationRow): Promise<void> {
    return this.write(['reserve', ...reservationValues(row)]);
  }

  settle(id: string, outcome: SpendOutcome): Promise<void> {
    return this.write(['settle', ...outcomeValues(outcome), id]);
  }

  recordSettlement(row: ReservationRow, outcome: SpendOutcome): Promise<void> {
    return this.write(['settlement', ...reservationValues(row), ...outcomeValues(outcome)]);
  }

  /** A spend write, resolved once committed (see ledger-spend.ts). */
  private async write(op: SpendOp): Promise<void> {
    await this.spend.write(op);
  }

  async pendingReservations(at: number): Promise<ReservationRow[]> {
    await this.spend.settled(); // spend reads see every write before them
    const rows = this.sql("SELECT * FROM spend WHERE status = 'reserved' AND expires_at > ? ORDER BY expires_at").all(at) as ReservedRow[];
    return rows.map(reservationFrom);
  }

  expireReservations(at: number): Promise<number> {
    // A spend write like the others: after every write before it, by the same writer.
    return this.spend.write(['expire', at, at]);
  }

  async spentMicros(scope: Scope, sinceMs: number): Promise<number> {
    await this.spend.settled(); // spend reads see every write before them
    const f = scopeFilter(scope);
    const row = this.sql(`SELECT COALESCE(SUM(cost_micro + (cost_femto > 0)), 0) AS micros FROM spend WHERE ${f.where} AND at >= ? AND status IN ('ok', 'error', 'cancelled')`).get(
      ...f.params,
      sinceMs,
    ) as { micros: number };
    return row.micros;
  }

  async spentFemto(scope: Scope, sinceMs: number): Promise<bigint> {
    await this.spend.settled(); // spend reads see every write before them
    const f = scopeFilter(scope);
    const row = this.sql(`SELECT COALESCE(SUM(cost_micro), 0) AS micro, COALESCE(SUM(cost_femto), 0) AS femto FROM spend WHERE ${f.where} AND at >= ? AND status IN ('ok', 'error', 'cancelled')`)
      .safeIntegers(true)
      .get(...f.params, sinceMs) as { micro: bigint; femto: bigint };
    return row.micro * FEMTO_PER_MICRO + row.femto;
  }

  async usage(query: UsageQuery): Promise<LedgerUsageRow[]> {
    // Days are grouped in the caller's time zone from quarter-hour buckets, which every zone's offset divides.
    const dayOf = query.by === 'day' ? bucketFormatter('day', query.timeZone ?? 'UTC') : undefined;
    const rows = await this.#sums(query, query.by === 'day' ? undefined : GROUP_COLUMN[query.by]);
    const out = new Map<string, LedgerUsageRow>();
    for (const r of rows) addSums(out, dayOf ? dayOf(Number(r.quarter) * 900_000) : String(r.grp), r);
    return [...out.values()].sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  }

  async usageSeries(query: SeriesQuery): Promise<LedgerSeriesRow[]> {
    const bucketOf = bucketFormatter(query.bucket, query.timeZone ?? 'UTC');
    const out = new Map<string, LedgerSeriesRow>();
    for (const r of await this.#sums(query, GROUP_COLUMN[query.by])) {
      const bucket = bucketOf(Number(r.quarter) * 900_000);
      const row = addSums(out, `${bucket}\u0000${String(r.grp)}`, r) as LedgerSeriesRow;
      row.key = String(r.grp);
      row.bucket = bucket;
    }
    return [...out.values()];
  }

  /** Settled rows summed per quarter hour and (optionally) a group column, exact in micro + femto parts. */
  async #sums(query: Omit<UsageQuery, 'by'>, group: string | undefined): Promise<SumRow[]> {
    await this.spend.settled(); // spend reads see every write before them
    const where = ["status IN ('ok', 'error', 'cancelled')", 'at >= ?'];
    const params: (number | string)[] = [query.sinceMs ?? 0];
    if (query.untilMs !== undefined) {
      where.push('at < ?');
      params.push(query.untilMs);
    }
    if (query.keyId !== undefined) {
      where.push('key_id = ?');
      params.push(query.keyId);
    }
    const groupBy = group === undefined ? 'quarter' : 'quarter, grp';
    return this.sql(
      `SELECT at / 900000 AS quarter, ${group ?? "''"} AS grp, COUNT(*) AS requests, SUM(prompt_tokens) AS prompt, SUM(completion_tokens) AS completion,
         SUM(cost_micro) AS micro, SUM(cost_femto) AS femto, SUM(1 - cost_known) AS unpriced,
         SUM(saved_micro) AS saved_micro, SUM(saved_femto) AS saved_femto
       FROM spend WHERE ${where.join(' AND ')} GROUP BY ${groupBy} ORDER BY ${groupBy}`,
    )
      .safeIntegers(true)
      .all(...params) as SumRow[];
  }

  private closed: Promise<void> | undefined;

  /** Commit every spend write issued before, stop the spend writer, and close the file. */
  close(): Promise<void> {
    if (!this.closed) {
      // At once when no worker was running (a CLI command, a :memory: ledger), so the file is closed when this returns.
      const draining = this.spend.close();
      if (draining) this.closed = draining.finally(() => this.db.close());
      else {
        this.db.close();
        this.closed = Promise.resolve();
      }
    }
    return this.closed;
  }
}

/** One settled-spend sum per quarter hour and group, as both ledgers read it. */
export interface SumRow {
  quarter: bigint;
  grp: string | bigint;
  requests: bigint;
  prompt: bigint;
  completion: bigint;
  micro: bigint;
  femto: bigint;
  unpriced: bigint;
  saved_micro: bigint;
  saved_femto: bigint;
}

/** Add one summed row into the accumulator under `key`. */
export function addSums(out: Map<string, LedgerUsageRow>, key: string, r: SumRow): LedgerUsageRow {
  const acc = out.get(key) ?? { key, requests: 0, promptTokens: 0, completionTokens: 0, costFemto: 0n, unpriced: 0, savedFemto: 0n };
  acc.requests += Number(r.requests);
  acc.promptTokens += Number(r.prompt);
  acc.completionTokens += Number(r.completion);
  acc.costFemto += r.micro * FEMTO_PER_MICRO + r.femto;
  acc.unpriced += Number(r.unpriced);
  acc.savedFemto += r.saved_micro * FEMTO_PER_MICRO + r.saved_femto;
  out.set(key, acc);
  return acc;
}

/** `2026-12-01` (day) or `2026-12-01T14` (hour) for a time, in a time zone. */
export function bucketFormatter(bucket: 'hour' | 'day', timeZone: string): (ms: number) => string {
  const f = new Intl.DateTimeFormat('en-CA', { timeZone, year: 'numeric', month: '2-digit', day: '2-digit', hour: '2-digit', hourCycle: 'h23' });
  return (ms) => {
    const parts = Object.fromEntries(f.formatToParts(new Date(ms)).map((p) => [p.type, p.value]));
    const day = `${parts.year}-${parts.month}-${parts.day}`;
    return bucket === 'day' ? day : `${day}T${parts.hour}`;
  };
}

export function dayFormatter(timeZone: string): (ms: number) => string {
  const f = new Intl.DateTimeFormat('en-CA', { timeZone, year: 'numeric', month: '2-digit', day: '2-digit' });
  return (ms) => f.format(new Date(ms));
}

/** The ledger file: `$SWITCHBOARD_LEDGER` when set, else `$SWITCHBOARD_HOME/ledger.db`. */
export function ledgerPath(env: Env = process.env): string {
  const explicit = env.SWITCHBOARD_LEDGER;
  return explicit !== undefined && explicit !== '' ? explicit : join(switchboardHome(env), 'ledger.db');
}
