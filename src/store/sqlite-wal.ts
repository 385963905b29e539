/**
 * Every switchboard database file is in WAL mode with `synchronous = NORMAL`: readers never
 * wait for the writer, and a commit survives a killed process. Several processes (gateway
 * workers, a chat and a gateway, the ledger's spend thread) may open the same new file at once,
 * and one step of that is not covered by SQLite's busy wait: switching a new file to WAL reads
 * its header, then upgrades to a write, and SQLite refuses a lock wanted while a read is held at
 * once (waiting could deadlock). While another process converts the file, the switch is tried
 * again here instead, until the connection's busy timeout is spent.
 */
import type Database from 'better-sqlite3';

/** Whether an error is SQLite's SQLITE_BUSY (any of its extended codes). */
export function isBusy(err: unknown): boolean {
  const code = typeof err === 'object' && err !== null ? (err as { code?: unknown }).code : undefined;
  return typeof code === 'string' && code.startsWith('SQLITE_BUSY');
}

/** Block the thread for `ms` milliseconds (the drivers are synchronous, as SQLite's own busy wait is). */
export function sleepSync(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

/** WAL and `synchronous = NORMAL` on `db`, waiting up to `timeoutMs` for another process converting the same file. */
export function useWAL(db: Database.Database, timeoutMs: number): void {
  const deadline = Date.now() + timeoutMs;
  for (let wait = 5; ; wait = Math.min(wait * 2, 100)) {
    try {
      db.pragma('journal_mode = WAL');
      break;
    } catch (err) {
      if (!isBusy(err) || Date.now() + wait > deadline) throw err;
      sleepSync(wait);
    }
  }
  db.pragma('synchronous = NORMAL');
}
