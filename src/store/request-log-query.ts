/**
 * Search over the conversation log (`logs.db`) for the console's Logs page and the
 * `GET /admin/logs` endpoint: chats and gateway requests, filtered by model, provider, key,
 * status and time, newest first, each with its turns on request. Reads through its own
 * read-only connection, so the writer (the gateway's request log, a chat) is never blocked.
 */
import Database from 'better-sqlite3';

export interface LogFilter {
  /** Words in the user's message or the reply (when content was logged), or a request id. */
  q?: string | undefined;
  model?: string | undefined;
  provider?: string | undefined;
  /** A key's public id (`sk-sb-3f9a1c0d`, `master`). */
  key?: string | undefined;
  /** `ok` or `error`. */
  status?: 'ok' | 'error' | undefined;
  /** ISO times. */
  since?: string | undefined;
  until?: string | undefined;
  limit?: number | undefined;
}

export interface LogEntry {
  id: string;
  at: string;
  models: string[];
  provider: string | null;
  key_id: string | null;
  request_id: string | null;
  http_status: number | null;
  status: 'ok' | 'error';
  turns: number;
  prompt_tokens: number;
  completion_tokens: number;
  cost: number | null;
  latency_ms: number | null;
  first_message: string;
  error: string | null;
}

export interface LogTurn {
  seq: number;
  at: string;
  model: string;
  provider: string | null;
  resolved_model: string | null;
  user: string;
  reply: string | null;
  prompt_tokens: number;
  completion_tokens: number;
  cost: number | null;
  ttft_ms: number | null;
  latency_ms: number | null;
  tokens_per_second: number | null;
  error: string | null;
  replaced: boolean;
}

const ENTRY_SQL = `
SELECT c.id, c.started_at AS at, c.models, r.key_id, r.request_id, r.status AS http_status,
  (SELECT count(DISTINCT seq) FROM turns t WHERE t.conversation_id = c.id AND t.replaced = 0) AS turns,
  (SELECT group_concat(DISTINCT provider) FROM turns t WHERE t.conversation_id = c.id) AS provider,
  (SELECT sum(prompt_tokens) FROM turns t WHERE t.conversation_id = c.id) AS prompt_tokens,
  (SELECT sum(completion_tokens) FROM turns t WHERE t.conversation_id = c.id) AS completion_tokens,
  (SELECT sum(cost) FROM turns t WHERE t.conversation_id = c.id) AS cost,
  (SELECT sum(latency_ms) FROM turns t WHERE t.conversation_id = c.id) AS latency_ms,
  (SELECT user_text FROM turns t WHERE t.conversation_id = c.id ORDER BY seq, id LIMIT 1) AS first_message,
  (SELECT error FROM turns t WHERE t.conversation_id = c.id AND error IS NOT NULL ORDER BY seq DESC LIMIT 1) AS error
FROM conversations c LEFT JOIN requests r ON r.conversation_id = c.id`;

interface EntryRow extends Omit<LogEntry, 'models' | 'status'> {
  models: string;
}

export class RequestLogQuery {
  #db: Database.Database | undefined;

  constructor(private readonly path: string) {}

  /** The connection, opened on first use (the file may not exist until the first request is logged). */
  #open(): Database.Database | undefined {
    if (this.#db?.open) return this.#db;
    try {
      this.#db = new Database(this.path, { readonly: true, fileMustExist: true });
      this.#db.pragma('busy_timeout = 2000');
      // A log written only by chats has no requests table yet: the join needs one.
      const hasRequests = this.#db.prepare("SELECT 1 FROM sqlite_master WHERE name = 'requests'").get() !== undefined;
      if (!hasRequests) {
        this.#db.close();
        this.#db = undefined;
        return undefined;
      }
      return this.#db;
    } catch {
      return undefined;
    }
  }

  search(filter: LogFilter): LogEntry[] {
    const db = this.#open();
    if (!db) return [];
    const where: string[] = [];
    const params: (string | number)[] = [];
    const turnHas = (cond: string, ...values: (string | number)[]): void => {
      where.push(`EXISTS (SELECT 1 FROM turns t WHERE t.conversation_id = c.id AND ${cond})`);
      params.push(...values);
    };
    if (filter.q?.trim()) {
      const like = `%${filter.q.trim().replace(/[\\%_]/g, '\\$&')}%`;
      where.push(`(r.request_id = ? OR EXISTS (SELECT 1 FROM turns t WHERE t.conversation_id = c.id AND (t.user_text LIKE ? ESCAPE '\\' OR t.reply LIKE ? ESCAPE '\\')))`);
      params.push(filter.q.trim(), like, like);
    }
    if (filter.model) turnHas('(t.model = ? OR t.resolved_model = ?)', filter.model, filter.model);
    if (filter.provider) turnHas('t.provider = ?', filter.provider);
    if (filter.key) {
      where.push('r.key_id = ?');
      params.push(filter.key);
    }
    if (filter.status === 'error') turnHas('t.error IS NOT NULL');
    if (filter.status === 'ok') where.push('NOT EXISTS (SELECT 1 FROM turns t WHERE t.conversation_id = c.id AND t.error IS NOT NULL)');
    if (filter.since) {
      where.push('c.started_at >= ?');
      params.push(filter.since);
    }
    if (filter.until) {
      where.push('c.started_at < ?');
      params.push(filter.until);
    }
    const limit = Math.min(Math.max(1, filter.limit ?? 100), 1000);
    const sql = `${ENTRY_SQL}${where.length ? ` WHERE ${where.join(' AND ')}` : ''} ORDER BY c.started_at DESC, c.rowid DESC LIMIT ?`;
    const rows = db.prepare(sql).all(...params, limit) as EntryRow[];
    return rows.map((r) => ({ ...r, models: JSON.parse(r.models) as string[], status: r.error === null ? 'ok' : 'error', first_message: r.first_message ?? '' }));
  }

  /** One entry with its turns; undefined when there is none with this id (or `onlyKey` does not own it). */
  show(id: string, onlyKey?: string): { entry: LogEntry; turns: LogTurn[] } | undefined {
    const db = this.#open();
    if (!db) return undefined;
    const row = db.prepare(`${ENTRY_SQL} WHERE c.id = ?`).get(id) as EntryRow | undefined;
    if (!row || (onlyKey !== undefined && row.key_id !== onlyKey)) return undefined;
    const turns = db
      .prepare(
        `SELECT seq, at, model, provider, resolved_model, user_text AS user, reply, prompt_tokens, completion_tokens, cost, ttft_ms, latency_ms,
           tps AS tokens_per_second, error, replaced FROM turns WHERE conversation_id = ? ORDER BY seq, id`,
      )
      .all(id) as (Omit<LogTurn, 'replaced'> & { replaced: number })[];
    return {
      entry: { ...row, models: JSON.parse(row.models) as string[], status: row.error === null ? 'ok' : 'error', first_message: row.first_message ?? '' },
      turns: turns.map((t) => ({ ...t, replaced: t.replaced === 1 })),
    };
  }

  close(): void {
    if (this.#db?.open) this.#db.close();
  }
}
