/**
 * The SQLite ledger's spend-row writes, on whichever connection writes them: the ledger's own
 * (in-thread, for `:memory:` ledgers and when asked) or a worker thread's (ledger-worker.ts, the
 * default for a file: its commits and SQLite's automatic checkpoints, with their fsync, then
 * never stall the main thread's event loop).
 *
 * A write is plain data (`SpendOp`: which statement and its values), so it can cross to a
 * worker by structured clone; nothing in it is a key, only spend rows. Writes are committed
 * together, one transaction per batch; if the batch fails, one by one, so a bad write fails
 * only itself.
 */
import Database from 'better-sqlite3';
import { InOrderWorker, workerScriptURL } from '../worker-thread.js';
import { LedgerError } from './ledger-error.js';
import type { FromWorker, ToWorker } from './ledger-worker.js';
import { useWAL } from './sqlite-wal.js';

/**
 * A connection to a ledger file, as the ledger and its spend writer both open it: WAL, and a
 * commit that survives a killed process (the WAL is in the OS's hands at commit; an OS crash may
 * lose the last commits).
 */
export function openLedgerFile(path: string): Database.Database {
  const db = new Database(path, { timeout: 5000 });
  useWAL(db, 5000);
  return db;
}

/** Which statement a spend write runs; its values follow in the statement's order. */
export type SpendStatement = 'reserve' | 'settle' | 'settlement' | 'expire';

export type SpendValue = string | number | bigint | null;
/** `[statement, ...values]`: one spend write, clonable to a worker. */
export type SpendOp = [SpendStatement, ...SpendValue[]];
/** A write's result: the rows it changed, or why it failed (`[message, code]`). */
export type SpendResult = number | [string, string];

const STATEMENTS: Record<SpendStatement, string> = {
  // A replayed write (open mode, after an outage) must not fail on the row it already wrote.
  reserve:
    "INSERT INTO spend (id, at, key_id, team_id, model, protocol, status, scopes, reserved_micros, expires_at) VALUES (?, ?, ?, ?, ?, ?, 'reserved', ?, ?, ?) ON CONFLICT(id) DO NOTHING",
  settle: `UPDATE spend SET status = ?, settled_at = ?, provider = ?, resolved_model = ?, prompt_tokens = ?, completion_tokens = ?,
       cost_micro = ?, cost_femto = ?, cost_known = ?, saved_micro = ?, saved_femto = ? WHERE id = ?`,
  // One insert instead of an insert and an update: a row and its indexes written once. A row
  // already there (a replay, or a reservation written meanwhile) is completed as settle would.
  settlement: `INSERT INTO spend (id, at, key_id, team_id, model, protocol, scopes, reserved_micros, expires_at,
       status, settled_at, provider, resolved_model, prompt_tokens, completion_tokens, cost_micro, cost_femto, cost_known, saved_micro, saved_femto)
     VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
     ON CONFLICT(id) DO UPDATE SET status = excluded.status, settled_at = excluded.settled_at, provider = excluded.provider,
       resolved_model = excluded.resolved_model, prompt_tokens = excluded.prompt_tokens, completion_tokens = excluded.completion_tokens,
       cost_micro = excluded.cost_micro, cost_femto = excluded.cost_femto, cost_known = excluded.cost_known,
       saved_micro = excluded.saved_micro, saved_femto = excluded.saved_femto`,
  expire: "UPDATE spend SET status = 'expired', settled_at = ? WHERE status = 'reserved' AND expires_at <= ?",
};

/** The spend statements prepared on one connection, and the batch commit. */
export class SpendWriter {
  private readonly statements: Record<SpendStatement, Database.Statement>;
  /** Made once: better-sqlite3 builds a transaction function at some cost. */
  private readonly inTransaction: (ops: SpendOp[], results: SpendResult[]) => void;

  constructor(db: Database.Database) {
    this.statements = { reserve: db.prepare(STATEMENTS.reserve), settle: db.prepare(STATEMENTS.settle), settlement: db.prepare(STATEMENTS.settlement), expire: db.prepare(STATEMENTS.expire) };
    this.inTransaction = db.transaction((ops: SpendOp[], results: SpendResult[]) => {
      for (const op of ops) results.push(this.run(op));
    });
  }

  private run(op: SpendOp): number {
    return this.statements[op[0]].run(...op.slice(1)).changes;
  }

  /** Commit the writes together; if that fails, one by one, so one bad write fails only itself. */
  commit(ops: SpendOp[]): SpendResult[] {
    const results: SpendResult[] = [];
    try {
      this.inTransaction(ops, results);
      return results;
    } catch {
      return ops.map((op) => {
        const one: SpendResult[] = [];
        try {
          this.inTransaction([op], one);
          return one[0] as number;
        } catch (err) {
          return failure(err);
        }
      });
    }
  }
}

function failure(err: unknown): [string, string] {
  const e = err as { message?: unknown; code?: unknown };
  return [typeof e.message === 'string' ? e.message : String(err), typeof e.code === 'string' ? e.code : 'SQLITE_ERROR'];
}

/** The error a failed write's promise rejects with, as better-sqlite3 names it. */
function spendError([message, code]: [string, string]): Error {
  return Object.assign(new Error(message), { name: 'SqliteError', code });
}

/** A write's promise, settled once the write is committed (or has failed). */
type Waiter = { resolve: (changes: number) => void; reject: (err: unknown) => void };

/** Where the ledger sends its spend writes: committed in this thread or in a worker. */
export interface SpendSink {
  /** Resolves with the rows changed once the write is committed. */
  write(op: SpendOp): Promise<number>;
  /** Resolves once every write issued before it is committed (a spend read waits for it). */
  settled(): Promise<void>;
  /** Commit what is waiting and stop: at once (nothing returned), or once the promise resolves. */
  close(): Promise<void> | undefined;
}

/**
 * Writes committed on the ledger's own connection: the writes of one turn of the event loop in
 * one transaction, each promise resolved once its row is committed.
 */
export class InThreadSpend implements SpendSink {
  private readonly writer: SpendWriter;
  private pending: (Waiter & { op: SpendOp })[] = [];
  private flushScheduled = false;

  constructor(db: Database.Database) {
    this.writer = new SpendWriter(db);
  }

  write(op: SpendOp): Promise<number> {
    return new Promise((resolve, reject) => {
      this.pending.push({ op, resolve, reject });
      if (!this.flushScheduled) {
        this.flushScheduled = true;
        setImmediate(() => this.flush());
      }
    });
  }

  settled(): Promise<void> {
    this.flush();
    return Promise.resolve();
  }

  close(): undefined {
    this.flush();
    return undefined;
  }

  private flush(): void {
    this.flushScheduled = false;
    if (this.pending.length === 0) return;
    const batch = this.pending;
    this.pending = [];
    const results = this.writer.commit(batch.map((w) => w.op));
    batch.forEach((w, i) => settleWith(w, results[i] as SpendResult));
  }
}

/** Resolve or reject one write's promise with its result. */
function settleWith(w: Waiter, result: SpendResult): void {
  if (typeof result === 'number') w.resolve(result);
  else w.reject(spendError(result));
}

/** What the main thread waits for from the worker, in the order it asked (the worker answers in order). */
type Expected = { t: 'w'; waiters: Waiter[] } | { t: 'b' | 'closed'; resolve: () => void; reject: (err: unknown) => void };

/**
 * Writes committed by a worker thread on its own connection (ledger-worker.ts). The writes of
 * one turn of the main thread's event loop cross in one message; the main thread's part of a
 * write is building its values and resolving its promise when the worker says it is committed.
 * The worker starts on the first write (a CLI command that writes no spend never starts one)
 * and keeps the process alive only while a write or barrier waits on it.
 */
export class WorkerSpend implements SpendSink {
  private worker: InOrderWorker<ToWorker, FromWorker, Expected> | undefined;
  private outbox: SpendOp[] = [];
  private outboxWaiters: Waiter[] = [];
  private postScheduled = false;
  /** Why new writes are refused: the ledger is closing, or its worker stopped. */
  private refusal: LedgerError | undefined;
  private closing = false;

  /**
   * `onStopped`: the worker died (not closed); the ledger then writes on its own connection,
   * and a write refused here (one that waited on the dead worker) may be sent again there.
   */
  constructor(
    private readonly path: string,
    private readonly onStopped?: () => void,
  ) {}

  write(op: SpendOp): Promise<number> {
    if (this.refusal) return Promise.reject(this.refusal);
    return new Promise((resolve, reject) => {
      this.outbox.push(op);
      this.outboxWaiters.push({ resolve, reject });
      if (!this.postScheduled) {
        this.postScheduled = true;
        setImmediate(() => this.post());
      }
    });
  }

  settled(): Promise<void> {
    this.post();
    const worker = this.worker;
    // Nothing unanswered: every write before this is committed (or has failed) already.
    if (!worker || worker.waiting === 0) return Promise.resolve();
    return new Promise((resolve, reject) => worker.send({ t: 'b' }, { t: 'b', resolve, reject }));
  }

  close(): Promise<void> | undefined {
    this.post();
    const worker = this.worker;
    this.closing = true;
    this.refusal ??= new LedgerError('The ledger is closed: no more spend can be written to it.', 'unavailable');
    if (!worker) return undefined;
    let exited: Promise<void> | undefined;
    const closed = new Promise<void>((resolve, reject) => {
      exited = worker.close({ t: 'close' }, { t: 'closed', resolve, reject });
    });
    return closed.then(() => exited);
  }

  /** Send this turn's writes to the worker (starting it on the first). */
  private post(): void {
    this.postScheduled = false;
    if (this.outbox.length === 0) return;
    const ops = this.outbox;
    const waiters = this.outboxWaiters;
    this.outbox = [];
    this.outboxWaiters = [];
    const worker = this.worker ?? this.start();
    worker.send({ t: 'w', ops }, { t: 'w', waiters });
  }

  private start(): InOrderWorker<ToWorker, FromWorker, Expected> {
    const worker: InOrderWorker<ToWorker, FromWorker, Expected> = new InOrderWorker(workerScriptURL('./ledger-worker.js', import.meta.url), { path: this.path }, {
      answered: (e, message) => {
        if (e.t === 'w' && message.t === 'w') e.waiters.forEach((w, i) => settleWith(w, message.results[i] as SpendResult));
        else if (e.t !== 'w') e.resolve();
      },
      stopped: (unanswered, why) => this.stopped(worker, unanswered, why),
    });
    this.worker = worker;
    return worker;
  }

  /**
   * The worker is gone (after a close, nothing waits on it): what waits on it, and every write
   * after, fails with a clear error instead of waiting for ever.
   */
  private stopped(worker: InOrderWorker<ToWorker, FromWorker, Expected>, unanswered: Expected[], why: string): void {
    if (this.worker !== worker) return;
    this.worker = undefined;
    const closing = this.closing;
    const later = this.onStopped && !closing ? 'later ones are written on the ledger\'s own connection' : 'later ones are refused';
    const err = new LedgerError(`The ledger's spend writer (a worker thread on ${this.path}) stopped: ${why}. Spend writes still waiting may not be recorded; ${later}.`, 'unavailable');
    this.refusal ??= err;
    for (const e of unanswered) {
      if (e.t === 'w') for (const w of e.waiters) w.reject(err);
      else e.reject(err);
    }
    for (const w of this.outboxWaiters.splice(0)) w.reject(err);
    this.outbox = [];
    if (!closing) this.onStopped?.();
  }
}
