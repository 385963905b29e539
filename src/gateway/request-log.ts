/**
 * Writes the gateway's request log off the hot path: records queue in memory and go to
 * SQLite in one transaction every quarter second (or every 500 records), so a request never
 * waits on the disk. The log is the CLI's conversation log: `switchboard logs` and `usage`
 * show gateway traffic beside chats. A log that cannot be opened is reported once and the
 * gateway carries on without it.
 *
 * For a log in a file, the batches are written by a worker thread on its own connection
 * (request-log-worker.ts): a batch of 500 cost the main thread 10 to 33 ms of synchronous
 * SQLite, which every request in flight waited out. The worker starts with the writer, so it
 * is ready by the first batch; if it cannot start or dies, the batches it had not answered
 * and every later one are written in this thread, as before, and nothing queued is lost (a
 * batch the thread committed just before dying, unanswered, is then written a second time).
 */
import { Worker } from 'node:worker_threads';
import type { ConversationLog, RequestRecord } from '../store/conversation-log.js';
import { workerScriptURL } from '../worker-script.js';
import type { FromLogWorker, ToLogWorker } from './request-log-worker.js';

const FLUSH_MS = 250;
const FLUSH_COUNT = 500;
/** Past this many queued records (the disk is stuck), new ones are dropped and counted. */
const MAX_QUEUED = 50_000;

export class RequestLogWriter {
  #queue: RequestRecord[] = [];
  #timer: NodeJS.Timeout | undefined;
  #dropped = 0;
  #failed = false;
  #worker: Worker | undefined;
  /** Batches sent to the worker and not yet answered, oldest first (the worker answers in order). */
  #sent: RequestRecord[][] = [];
  #closed: (() => void) | undefined;

  constructor(
    private readonly log: ConversationLog,
    private readonly warn: (message: string) => void,
  ) {
    if (log.path !== ':memory:') this.#startWorker();
  }

  get dropped(): number {
    return this.#dropped;
  }

  /** Which thread writes the batches: a worker's, or this one (no worker, or it stopped). */
  get thread(): 'worker' | 'main' {
    return this.#worker ? 'worker' : 'main';
  }

  /** False while the last write to the database failed (the gateway is then not ready). */
  get healthy(): boolean {
    return !this.#failed;
  }

  add(record: RequestRecord): void {
    if (this.#queue.length >= MAX_QUEUED) {
      this.#dropped++;
      return;
    }
    this.#queue.push(record);
    if (this.#queue.length >= FLUSH_COUNT) setImmediate(() => this.flush());
    else if (!this.#timer) {
      this.#timer = setTimeout(() => this.flush(), FLUSH_MS);
      this.#timer.unref();
    }
  }

  /** Write everything queued now (to the worker, which commits it shortly). */
  flush(): void {
    if (this.#timer) {
      clearTimeout(this.#timer);
      this.#timer = undefined;
    }
    if (this.#queue.length === 0) return;
    const batch = this.#queue;
    this.#queue = [];
    if (this.#worker) {
      this.#sent.push(batch);
      this.#worker.ref();
      this.#worker.postMessage({ t: 'w', records: batch } satisfies ToLogWorker);
      return;
    }
    try {
      this.log.recordRequests(batch);
      this.#written();
    } catch (err) {
      this.#retry(batch, (err as Error).message);
    }
  }

  /** Write what is queued, let the worker commit it and stop, and close the log. */
  async close(): Promise<void> {
    this.flush();
    if (this.#timer) clearTimeout(this.#timer);
    const worker = this.#worker;
    if (worker) {
      await new Promise<void>((resolve) => {
        this.#closed = resolve;
        worker.ref();
        worker.postMessage({ t: 'close' } satisfies ToLogWorker);
      });
    }
    // Batches a failing worker handed back are written here, once.
    if (this.#queue.length > 0) this.flush();
    if (this.#timer) clearTimeout(this.#timer);
    this.log.close();
  }

  #written(): void {
    if (this.#failed) this.warn(`request log: writing to ${this.log.path} again`);
    this.#failed = false;
  }

  /** Keep a batch that failed for the next flush (a busy database passes), said once. */
  #retry(batch: RequestRecord[], why: string): void {
    if (!this.#failed) this.warn(`request log: cannot write to ${this.log.path} (${why}); retrying`);
    this.#failed = true;
    this.#queue = batch.concat(this.#queue).slice(0, MAX_QUEUED);
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = setTimeout(() => this.flush(), FLUSH_MS * 4);
    this.#timer.unref();
  }

  #startWorker(): void {
    let worker: Worker;
    try {
      worker = new Worker(workerScriptURL('./request-log-worker.js', import.meta.url), { workerData: { path: this.log.path } });
    } catch (err) {
      this.warn(`request log: writing in the main thread (no worker: ${(err as Error).message})`);
      return;
    }
    worker.unref();
    worker.on('message', (message: FromLogWorker) => {
      if (message.t === 'closed') {
        this.#worker = undefined;
        this.#closed?.();
        return;
      }
      const batch = this.#sent.shift();
      // Closing, the worker keeps the process alive until it has said it closed.
      if (this.#sent.length === 0 && !this.#closed) worker.unref();
      if (message.error === undefined) this.#written();
      else if (batch) this.#retry(batch, message.error);
    });
    const gone = (why: string): void => {
      if (this.#worker !== worker) return; // its 'error', then its 'exit'
      this.#worker = undefined;
      this.warn(`request log: its writer thread stopped (${why}); writing in the main thread`);
      // What it had not committed goes first, in order, then what was queued since.
      this.#queue = this.#sent.flat().concat(this.#queue).slice(0, MAX_QUEUED);
      this.#sent = [];
      this.#closed?.();
      if (this.#queue.length > 0) setImmediate(() => this.flush());
    };
    worker.on('error', (err) => gone(err.message));
    worker.on('exit', (code) => gone(`exit code ${code}`));
    this.#worker = worker;
  }
}
