/**
 * The conversation log: every chat's turns (messages, models, providers, usage, cost,
 * timings) written as they finish to SQLite (`$SWITCHBOARD_HOME/logs.db`, WAL), so a crash
 * loses at most the turn in flight. The chat state (`chat.toJSON()`) is kept beside the
 * turns for `--resume`. Opening fails soft: a locked file or one of another schema version
 * gives `undefined` and one line saying why, and the chat goes on unlogged.
 *
 * Several processes may share one file: WAL lets them read while one writes, a busy timeout
 * makes a writer wait its turn instead of failing, every write transaction takes the write
 * lock first (BEGIN IMMEDIATE, so it never has to upgrade a read lock, which SQLite refuses
 * without waiting), a write still refused as busy is tried again, and the schema is created
 * inside such a transaction that looks again for a schema another process just created.
 */
import { randomBytes } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import Database from 'better-sqlite3';
import { switchboardHome } from '../paths.js';
import type { Env } from '../providers/resolve.js';
import { costToFemto, dollarsToFemto, femtoToDollars } from '../money.js';
import type { TurnResult } from '../types.js';
import { isBusy, sleepSync, useWAL } from './sqlite-wal.js';

/**
 * 2 added `turns.cost_femto`, the exact cost every sum reads; 3 added `turns.saved_femto`, what
 * caching saved on the turn. Older logs are upgraded in place.
 */
export const LOG_SCHEMA_VERSION = 3;

/** How long a write waits for another process's write to finish before SQLite calls it busy. */
const BUSY_TIMEOUT_MS = 5000;
/** Attempts of a write that SQLite still refuses as busy. */
const WRITE_ATTEMPTS = 3;

export type ConversationStatus = 'active' | 'paused' | 'ended';

/** One model's reply to one user message, as logged. */
export interface LoggedTurn {
  seq: number;
  at: string;
  user: string;
  model: string;
  provider: string | null;
  resolvedModel: string | null;
  reply: string | null;
  promptTokens: number;
  completionTokens: number;
  totalTokens: number;
  cost: number | null;
  ttftMs: number | null;
  latencyMs: number | null;
  tokensPerSecond: number | null;
  error: string | null;
  /** Replaced by `/retry`: still counted in usage (it was paid for), not shown as the conversation. */
  replaced: boolean;
}

export interface ConversationSummary {
  id: string;
  startedAt: string;
  updatedAt: string;
  status: ConversationStatus;
  models: string[];
  turns: number;
  tokens: number;
  /** The exact sum of the turns' costs; null when no turn's price is known. */
  cost: number | null;
  firstMessage: string;
  /** Who answered: one entry per model and provider, in order of first answer, summing to the totals above. */
  byModel: ModelSpend[];
}

/** The turns one model answered at one provider within a conversation. */
export interface ModelSpend {
  model: string;
  provider: string;
  turns: number;
  tokens: number;
  cost: number | null;
}

export interface UsageRow {
  key: string;
  turns: number;
  promptTokens: number;
  completionTokens: number;
  totalTokens: number;
  cost: number | null;
  /** The same cost as integer femto-dollars, for adding rows up exactly. */
  costFemto: bigint | null;
  /** What caching saved (response-cache hits and provider prompt caches), femto-dollars. */
  savedFemto?: bigint;
}

/** What the chat writes and the `logs`/`usage` commands read; a Redis or remote log can plug in here. */
export interface ConversationLog {
  readonly path: string;
  /** Start a conversation; returns its id. */
  create(models: string[], system: string | undefined): string;
  /** Log one user message and each model's outcome, and the chat state after it, in one transaction. */
  recordTurn(id: string, entry: { user: string; results: TurnResult[]; errors: { model: string; error: string }[]; state: unknown; models: string[]; replacesLast?: boolean }): void;
  setStatus(id: string, status: ConversationStatus, state?: unknown): void;
  /** Ids equal to or starting with `prefix` (at most `limit`): tells "no such conversation" from "ambiguous prefix". */
  matchingIds(prefix: string, limit?: number): string[];
  /** The chat state to resume: the given conversation (id or unique prefix), or the last paused one. */
  resumable(id?: string): { id: string; state: unknown } | undefined;
  list(options?: { limit?: number; search?: string }): ConversationSummary[];
  show(id: string): { summary: ConversationSummary; turns: LoggedTurn[] } | undefined;
  usage(options: { by: 'model' | 'provider' | 'day'; since?: string }): UsageRow[];
  /**
   * Log gateway requests, each as a one-turn conversation plus its request row, in one
   * transaction. Given the batch's id (`requestBatchId()`), a batch already committed under it
   * is not written again: a writer that cannot tell whether its last write landed sends it again.
   */
  recordRequests(records: RequestRecord[], batchId?: string): void;
  close(): void;
}

/**
 * A batch of request records' id, its records' conversation ids after it. Many requests can
 * start in one millisecond: more randomness than a chat's id needs, drawn once per batch.
 */
export function requestBatchId(): string {
  return `${Date.now().toString(36)}${randomBytes(6).toString('hex')}`;
}

/** One request the gateway served (or refused after admission), as the request log keeps it. */
export interface RequestRecord {
  requestId: string;
  at: string;
  /** The caller's public key id ('master', 'open', a virtual key's id); never the key. */
  keyId: string | null;
  protocol: string;
  /** The model string the caller sent (alias as written). */
  model: string;
  provider: string | null;
  resolvedModel: string | null;
  /** The last user message, when content logging is on; '' otherwise. */
  user: string;
  reply: string | null;
  promptTokens: number;
  completionTokens: number;
  totalTokens: number;
  cost: number | null;
  /** Exact cost in integer femto-dollars, as a decimal string; null when the price is unknown. */
  costFemto: string | null;
  /** What caching saved (a response-cache hit's price, a prompt cache's discount), femto-dollars as a decimal string; null: nothing. */
  savedFemto?: string | null;
  ttftMs: number | null;
  latencyMs: number | null;
  tokensPerSecond: number | null;
  overheadMs: number | null;
  /** HTTP status sent (200 for a stream that failed midway: `error` says why). */
  status: number;
  error: string | null;
}

export class LogUnavailableError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'LogUnavailableError';
  }
}

const SCHEMA = `
CREATE TABLE schema_version (version INTEGER NOT NULL);
CREATE TABLE conversations (
  id TEXT PRIMARY KEY,
  started_at TEXT NOT NULL,
  updated_at TEXT NOT NULL,
  status TEXT NOT NULL,
  models TEXT NOT NULL,
  system TEXT,
  state TEXT
);
CREATE TABLE turns (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  conversation_id TEXT NOT NULL REFERENCES conversations(id),
  seq INTEGER NOT NULL,
  at TEXT NOT NULL,
  user_text TEXT NOT NULL,
  model TEXT NOT NULL,
  provider TEXT,
  resolved_model TEXT,
  reply TEXT,
  prompt_tokens INTEGER NOT NULL DEFAULT 0,
  completion_tokens INTEGER NOT NULL DEFAULT 0,
  total_tokens INTEGER NOT NULL DEFAULT 0,
  cost REAL,
  cost_femto INTEGER,
  saved_femto INTEGER,
  ttft_ms REAL,
  latency_ms REAL,
  tps REAL,
  error TEXT,
  replaced INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX turns_by_conversation ON turns (conversation_id, seq);
CREATE INDEX turns_by_time ON turns (at);
`;

/** Gateway requests: beside the conversation and turn each one is logged as (older readers ignore the table). */
const REQUESTS = `
CREATE TABLE IF NOT EXISTS requests (
  request_id TEXT NOT NULL,
  conversation_id TEXT NOT NULL REFERENCES conversations(id),
  at TEXT NOT NULL,
  key_id TEXT,
  protocol TEXT NOT NULL,
  status INTEGER NOT NULL,
  cost_femto TEXT,
  overhead_ms REAL
);
CREATE INDEX IF NOT EXISTS requests_by_time ON requests (at);
`;

/** Only turns with text are indexed: a gateway request logged without content has none, and indexing nothing cost a third of its row's write. */
const FTS_TRIGGER = `
CREATE TRIGGER turns_fts_insert AFTER INSERT ON turns WHEN new.user_text <> '' OR coalesce(new.reply, '') <> '' BEGIN
  INSERT INTO turns_fts(rowid, user_text, reply) VALUES (new.id, new.user_text, coalesce(new.reply, ''));
END;
`;

const FTS = `
CREATE VIRTUAL TABLE turns_fts USING fts5(user_text, reply, content='turns', content_rowid='id');
${FTS_TRIGGER}`;

interface TurnRow {
  seq: number;
  at: string;
  user_text: string;
  model: string;
  provider: string | null;
  resolved_model: string | null;
  reply: string | null;
  prompt_tokens: number;
  completion_tokens: number;
  total_tokens: number;
  cost: number | null;
  /** cost_femto as text: a femto-dollar count can exceed a double's exact integers. */
  cost_text: string | null;
  ttft_ms: number | null;
  latency_ms: number | null;
  tps: number | null;
  error: string | null;
  replaced: number;
}

interface SummaryRow {
  id: string;
  started_at: string;
  updated_at: string;
  status: ConversationStatus;
  models: string;
  turns: number;
  tokens: number | null;
  cost: string | null;
  first_message: string | null;
}

/** A SQL sum of femto-dollars, read as text so no sum passes through a double, as dollars. */
function textFemtoToDollars(sum: string | null): number | null {
  return sum === null ? null : femtoToDollars(BigInt(sum));
}

function newId(): string {
  return `${Date.now().toString(36)}${Math.floor(Math.random() * 36 ** 4).toString(36).padStart(4, '0')}`;
}

/** A phrase query for FTS5: the text as typed, quotes doubled. */
function ftsPhrase(text: string): string {
  return `"${text.replaceAll('"', '""')}"`;
}

const SUMMARY_SQL = `
SELECT c.id, c.started_at, c.updated_at, c.status, c.models,
  (SELECT count(DISTINCT seq) FROM turns t WHERE t.conversation_id = c.id AND t.replaced = 0) AS turns,
  (SELECT sum(total_tokens) FROM turns t WHERE t.conversation_id = c.id) AS tokens,
  (SELECT CAST(sum(cost_femto) AS TEXT) FROM turns t WHERE t.conversation_id = c.id) AS cost,
  (SELECT user_text FROM turns t WHERE t.conversation_id = c.id ORDER BY seq, id LIMIT 1) AS first_message
FROM conversations c`;

export class SQLiteConversationLog implements ConversationLog {
  readonly path: string;
  readonly #db: Database.Database;
  readonly #fts: boolean;
  #requestsTable = false;

  /** Opens (or creates) the log; throws LogUnavailableError with a one-line reason when it cannot be used. */
  constructor(options: { path?: string; env?: Env; readonly?: boolean; busyTimeoutMs?: number } = {}) {
    this.path = options.path ?? join(switchboardHome(options.env), 'logs.db');
    mkdirSync(dirname(this.path), { recursive: true });
    let db: Database.Database;
    try {
      db = new Database(this.path, { timeout: options.busyTimeoutMs ?? BUSY_TIMEOUT_MS });
    } catch (err) {
      throw new LogUnavailableError(`cannot open the conversation log ${this.path} (${(err as Error).message})`);
    }
    this.#db = db;
    try {
      useWAL(db, options.busyTimeoutMs ?? BUSY_TIMEOUT_MS);
      this.#fts = this.#migrate();
      // A write lock taken and given back at once: a log another program holds fails now, not mid-chat.
      if (!options.readonly) db.exec('BEGIN IMMEDIATE; COMMIT;');
    } catch (err) {
      db.close();
      if (err instanceof LogUnavailableError) throw err;
      const code = (err as { code?: string }).code ?? '';
      if (code.startsWith('SQLITE_BUSY') || code.startsWith('SQLITE_LOCKED')) {
        throw new LogUnavailableError(`the conversation log ${this.path} is locked by another program`);
      }
      throw new LogUnavailableError(`cannot use the conversation log ${this.path} (${(err as Error).message})`);
    }
  }

  /** Create the schema in an empty file; refuse a file of another version. Returns whether FTS5 is there. */
  #migrate(): boolean {
    const db = this.#db;
    const listTables = (): string[] => db.prepare("SELECT name FROM sqlite_master WHERE type = 'table'").pluck().all() as string[];
    let tables = listTables();
    if (tables.length === 0) {
      // Another process may be creating it at this moment: under the write lock, look again.
      tables = this.#write(() => {
        const now = listTables();
        if (now.length > 0) return now;
        db.exec(SCHEMA);
        db.prepare('INSERT INTO schema_version (version) VALUES (?)').run(LOG_SCHEMA_VERSION);
        try {
          db.exec(FTS);
        } catch {
          // No FTS5 in this SQLite: search falls back to LIKE.
        }
        return listTables();
      });
    }
    if (!tables.includes('schema_version')) {
      throw new LogUnavailableError(`the conversation log ${this.path} is not a switchboard log (no schema version)`);
    }
    let version = db.prepare('SELECT max(version) FROM schema_version').pluck().get() as number | null;
    if (version === 1) version = this.#upgradeFrom1();
    if (version === 2) version = this.#upgradeFrom2();
    if (version !== LOG_SCHEMA_VERSION) {
      const which = version !== null && version > LOG_SCHEMA_VERSION ? 'a newer' : 'an older';
      throw new LogUnavailableError(
        `the conversation log ${this.path} is from ${which} switchboard (schema version ${version ?? 'none'}, this one reads ${LOG_SCHEMA_VERSION})`,
      );
    }
    const fts = this.#hasTable('turns_fts');
    if (fts) this.#skipEmptyInIndex();
    return fts;
  }

  /** A log made before the index skipped empty turns gets the trigger that does (the index reads the same). */
  #skipEmptyInIndex(): void {
    const db = this.#db;
    const trigger = (): string => (db.prepare("SELECT sql FROM sqlite_master WHERE type = 'trigger' AND name = 'turns_fts_insert'").pluck().get() as string | undefined) ?? '';
    if (/\bWHEN\b/.test(trigger()) || db.readonly) return;
    this.#write(() => {
      if (/\bWHEN\b/.test(trigger())) return;
      db.exec(`DROP TRIGGER IF EXISTS turns_fts_insert; ${FTS_TRIGGER}`);
    });
  }

  /**
   * Version 1 kept costs as REAL only: add the exact femto-dollar column, filled from each
   * cost's decimal, under the write lock (another process may be upgrading at this moment).
   */
  #upgradeFrom1(): number {
    const db = this.#db;
    return this.#write(() => {
      const version = db.prepare('SELECT max(version) FROM schema_version').pluck().get() as number | null;
      if (version !== 1) return version ?? 0;
      db.exec('ALTER TABLE turns ADD COLUMN cost_femto INTEGER');
      const fill = db.prepare('UPDATE turns SET cost_femto = ? WHERE id = ?');
      for (const row of db.prepare('SELECT id, cost FROM turns WHERE cost IS NOT NULL').all() as { id: number; cost: number }[]) {
        fill.run(dollarsToFemto(row.cost), row.id);
      }
      db.prepare('UPDATE schema_version SET version = ?').run(2);
      return 2;
    });
  }

  /** Version 2 had no savings column: add it (empty for the turns logged before). */
  #upgradeFrom2(): number {
    const db = this.#db;
    return this.#write(() => {
      const version = db.prepare('SELECT max(version) FROM schema_version').pluck().get() as number | null;
      if (version !== 2) return version ?? 0;
      db.exec('ALTER TABLE turns ADD COLUMN saved_femto INTEGER');
      db.prepare('UPDATE schema_version SET version = ?').run(3);
      return 3;
    });
  }

  /**
   * Run `body` as one write transaction that holds the write lock from its start. SQLite waits
   * up to the busy timeout for another writer; a write refused as busy even so is tried again.
   */
  #write<T>(body: () => T): T {
    const run = this.#db.transaction(body);
    for (let attempt = 1; ; attempt++) {
      try {
        return run.immediate();
      } catch (err) {
        if (attempt >= WRITE_ATTEMPTS || !isBusy(err)) throw err;
        sleepSync(20 * attempt);
      }
    }
  }

  #hasTable(name: string): boolean {
    return this.#db.prepare("SELECT 1 FROM sqlite_master WHERE name = ?").get(name) !== undefined;
  }

  /** A full id from an id or a unique prefix of one. */
  #resolve(id: string): string | undefined {
    const rows = this.matchingIds(id, 2);
    if (rows.includes(id)) return id;
    return rows.length === 1 ? rows[0] : undefined;
  }

  matchingIds(prefix: string, limit = 5): string[] {
    return this.#db
      .prepare("SELECT id FROM conversations WHERE id = ? OR id LIKE ? ESCAPE '\\' ORDER BY id = ? DESC, updated_at DESC LIMIT ?")
      .pluck()
      .all(prefix, `${prefix.replace(/[\\%_]/g, '\\$&')}%`, prefix, limit) as string[];
  }

  create(models: string[], system: string | undefined): string {
    const id = newId();
    const now = new Date().toISOString();
    this.#write(() =>
      this.#db
        .prepare('INSERT INTO conversations (id, started_at, updated_at, status, models, system) VALUES (?, ?, ?, ?, ?, ?)')
        .run(id, now, now, 'active', JSON.stringify(models), system ?? null),
    );
    return id;
  }

  recordTurn(id: string, entry: { user: string; results: TurnResult[]; errors: { model: string; error: string }[]; state: unknown; models: string[]; replacesLast?: boolean }): void {
    const db = this.#db;
    const now = new Date().toISOString();
    this.#write(() => {
      let seq = ((db.prepare('SELECT max(seq) FROM turns WHERE conversation_id = ?').pluck().get(id) as number | null) ?? 0) + 1;
      if (entry.replacesLast && seq > 1) {
        seq -= 1;
        db.prepare('UPDATE turns SET replaced = 1 WHERE conversation_id = ? AND seq = ?').run(id, seq);
      }
      const insert = db.prepare(
        `INSERT INTO turns (conversation_id, seq, at, user_text, model, provider, resolved_model, reply, prompt_tokens, completion_tokens,
          total_tokens, cost, cost_femto, saved_femto, ttft_ms, latency_ms, tps, error) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      );
      for (const r of entry.results) {
        const u = r.usage;
        insert.run(id, seq, r.startedAt || now, entry.user, r.model, r.provider, r.resolvedModel, r.text, u.promptTokens, u.completionTokens, u.totalTokens, u.cost, costToFemto(u.cost), costToFemto(u.savedCost), r.ttftMs, r.latencyMs, r.tokensPerSecond, null);
      }
      for (const e of entry.errors) insert.run(id, seq, now, entry.user, e.model, null, null, null, 0, 0, 0, null, null, null, null, null, null, e.error);
      db.prepare('UPDATE conversations SET updated_at = ?, models = ?, state = ? WHERE id = ?').run(now, JSON.stringify(entry.models), JSON.stringify(entry.state), id);
    });
  }

  setStatus(id: string, status: ConversationStatus, state?: unknown): void {
    const now = new Date().toISOString();
    this.#write(() => {
      if (state === undefined) this.#db.prepare('UPDATE conversations SET status = ?, updated_at = ? WHERE id = ?').run(status, now, id);
      else this.#db.prepare('UPDATE conversations SET status = ?, updated_at = ?, state = ? WHERE id = ?').run(status, now, JSON.stringify(state), id);
    });
  }

  resumable(id?: string): { id: string; state: unknown } | undefined {
    const row = (
      id === undefined
        ? this.#db.prepare("SELECT id, state FROM conversations WHERE status = 'paused' AND state IS NOT NULL ORDER BY updated_at DESC, rowid DESC LIMIT 1").get()
        : this.#db.prepare('SELECT id, state FROM conversations WHERE id = ? AND state IS NOT NULL').get(this.#resolve(id) ?? '')
    ) as { id: string; state: string } | undefined;
    return row ? { id: row.id, state: JSON.parse(row.state) as unknown } : undefined;
  }

  #summary(r: SummaryRow): ConversationSummary {
    const byModel = (
      this.#db
        .prepare(
          `SELECT model, provider, count(*) AS turns, sum(total_tokens) AS tokens, CAST(sum(cost_femto) AS TEXT) AS cost FROM turns
           WHERE conversation_id = ? AND error IS NULL GROUP BY model, provider ORDER BY min(id)`,
        )
        .all(r.id) as { model: string; provider: string | null; turns: number; tokens: number; cost: string | null }[]
    ).map((m): ModelSpend => ({ model: m.model, provider: m.provider ?? '?', turns: m.turns, tokens: m.tokens, cost: textFemtoToDollars(m.cost) }));
    // Every model that answered, in order, then those the chat holds now that have not answered yet.
    const models = [...new Set([...byModel.map((m) => m.model), ...(JSON.parse(r.models) as string[])])];
    return {
      id: r.id,
      startedAt: r.started_at,
      updatedAt: r.updated_at,
      status: r.status,
      models,
      turns: r.turns,
      tokens: r.tokens ?? 0,
      cost: textFemtoToDollars(r.cost),
      firstMessage: r.first_message ?? '',
      byModel,
    };
  }

  list(options: { limit?: number; search?: string } = {}): ConversationSummary[] {
    const limit = options.limit ?? 20;
    const search = options.search?.trim();
    let rows: SummaryRow[];
    if (search) {
      const match = this.#fts
        ? 'c.id IN (SELECT t.conversation_id FROM turns t JOIN turns_fts f ON f.rowid = t.id WHERE turns_fts MATCH ?)'
        : "c.id IN (SELECT conversation_id FROM turns WHERE user_text LIKE ? ESCAPE '\\' OR reply LIKE ? ESCAPE '\\')";
      const like = `%${search.replace(/[\\%_]/g, '\\$&')}%`;
      const params = this.#fts ? [ftsPhrase(search)] : [like, like];
      rows = this.#db.prepare(`${SUMMARY_SQL} WHERE ${match} ORDER BY c.updated_at DESC LIMIT ?`).all(...params, limit) as SummaryRow[];
    } else {
      rows = this.#db.prepare(`${SUMMARY_SQL} ORDER BY c.updated_at DESC, c.rowid DESC LIMIT ?`).all(limit) as SummaryRow[];
    }
    return rows.map((r) => this.#summary(r));
  }

  show(id: string): { summary: ConversationSummary; turns: LoggedTurn[] } | undefined {
    const full = this.#resolve(id);
    if (full === undefined) return undefined;
    const row = this.#db.prepare(`${SUMMARY_SQL} WHERE c.id = ?`).get(full) as SummaryRow | undefined;
    if (!row) return undefined;
    const turns = (this.#db.prepare('SELECT *, CAST(cost_femto AS TEXT) AS cost_text FROM turns WHERE conversation_id = ? ORDER BY seq, id').all(full) as TurnRow[]).map(
      (t): LoggedTurn => ({
        seq: t.seq,
        at: t.at,
        user: t.user_text,
        model: t.model,
        provider: t.provider,
        resolvedModel: t.resolved_model,
        reply: t.reply,
        promptTokens: t.prompt_tokens,
        completionTokens: t.completion_tokens,
        totalTokens: t.total_tokens,
        cost: textFemtoToDollars(t.cost_text),
        ttftMs: t.ttft_ms,
        latencyMs: t.latency_ms,
        tokensPerSecond: t.tps,
        error: t.error,
        replaced: t.replaced === 1,
      }),
    );
    return { summary: this.#summary(row), turns };
  }

  usage(options: { by: 'model' | 'provider' | 'day'; since?: string }): UsageRow[] {
    const key = { model: 'model', provider: "coalesce(provider, '(failed)')", day: 'substr(at, 1, 10)' }[options.by];
    const where = options.since ? 'WHERE at >= ?' : '';
    const params = options.since ? [options.since] : [];
    return (
      this.#db
        .prepare(
          `SELECT ${key} AS key, count(*) AS turns, sum(prompt_tokens) AS promptTokens, sum(completion_tokens) AS completionTokens,
           sum(total_tokens) AS totalTokens, CAST(sum(cost_femto) AS TEXT) AS cost, CAST(coalesce(sum(saved_femto), 0) AS TEXT) AS saved FROM turns ${where} GROUP BY 1 ORDER BY ${options.by === 'day' ? '1' : 'totalTokens DESC, 1'}`,
        )
        .all(...params) as (Omit<UsageRow, 'cost' | 'costFemto' | 'savedFemto'> & { cost: string | null; saved: string })[]
    ).map(({ saved, ...r }) => ({ ...r, cost: textFemtoToDollars(r.cost), costFemto: r.cost === null ? null : BigInt(r.cost), savedFemto: BigInt(saved) }));
  }

  recordRequests(records: RequestRecord[], batchId = requestBatchId()): void {
    const db = this.#db;
    if (!this.#requestsTable) {
      db.exec(REQUESTS);
      this.#requestsTable = true;
    }
    const conversation = db.prepare('INSERT INTO conversations (id, started_at, updated_at, status, models) VALUES (?, ?, ?, ?, ?)');
    const turn = db.prepare(
      `INSERT INTO turns (conversation_id, seq, at, user_text, model, provider, resolved_model, reply, prompt_tokens, completion_tokens,
        total_tokens, cost, cost_femto, saved_femto, ttft_ms, latency_ms, tps, error) VALUES (?, 1, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    );
    const request = db.prepare('INSERT INTO requests (request_id, conversation_id, at, key_id, protocol, status, cost_femto, overhead_ms) VALUES (?, ?, ?, ?, ?, ?, ?, ?)');
    const written = db.prepare('SELECT 1 FROM conversations WHERE id = ?');
    db.transaction(() => {
      // A record's conversation id is the batch's id, then its place in the batch.
      if (records.length > 0 && written.get(`${batchId}0`) !== undefined) return;
      for (let i = 0; i < records.length; i++) {
        const r = records[i] as RequestRecord;
        const id = `${batchId}${i.toString(36)}`;
        conversation.run(id, r.at, r.at, 'ended', JSON.stringify([r.model]));
        turn.run(id, r.at, r.user, r.model, r.provider, r.resolvedModel, r.reply, r.promptTokens, r.completionTokens, r.totalTokens, r.cost, r.costFemto === null ? null : BigInt(r.costFemto), r.savedFemto == null ? null : BigInt(r.savedFemto), r.ttftMs, r.latencyMs, r.tokensPerSecond, r.error);
        request.run(r.requestId, id, r.at, r.keyId, r.protocol, r.status, r.costFemto, r.overheadMs);
      }
    })();
  }

  close(): void {
    if (this.#db.open) this.#db.close();
  }
}

/** Open the log, or say in one line why not and return undefined. */
export function openConversationLog(options: { env?: Env; path?: string; readonly?: boolean; warn: (message: string) => void }): ConversationLog | undefined {
  try {
    return new SQLiteConversationLog(options);
  } catch (err) {
    options.warn(err instanceof LogUnavailableError ? err.message : `cannot use the conversation log (${(err as Error).message})`);
    return undefined;
  }
}
