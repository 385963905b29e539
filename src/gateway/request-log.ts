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
 * and every later one are written in this thread, as before, and nothing queued is lost. A
 * batch keeps the id it was given when formed, so one the thread committed just before dying,
 * unanswered, is not written a second time.
 */
import { requestBatchId, type ConversationLog, type RequestRecord } from '../store/conversation-log.js';
import { InOrderWorker, workerScriptURL } from '../worker-thread.js';
import type { FromLogWorker, ToLogWorker } from './request-log-worker.js';

const FLUSH_MS = 250;
const FLUSH_COUNT = 500;
/** Past this many queued records (the disk is stuck), new ones are dropped and counted. */
const MAX_QUEUED = 50_000;

/** Records written together, under one id (so a batch sent twice is written once). */
interface Batch {
  id: string;
  records: RequestRecord[];
}

export class RequestLogWriter {
  #queue: RequestRecord[] = [];
  /** Batches formed and not yet written by this thread (a failed write, or a worker's leftovers), oldest first. */
  #held: Batch[] = [];
  /** Records in held batches and batches sent to the worker: they count against the bound with the queue. */
  #backlog = 0;
  #timer: NodeJS.Timeout | undefined;
  #dropped = 0;
  #failed = false;
  /** The worker's answers settle a batch sent, or the close. */
  #worker: InOrderWorker<ToLogWorker, FromLogWorker, Batch | 'close'> | undefined;

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
    if (this.#queue.length + this.#backlog >= MAX_QUEUED) {
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
    if (this.#queue.length > 0) {
      this.#held.push({ id: requestBatchId(), records: this.#queue });
      this.#backlog += this.#queue.length;
      this.#queue = [];
    }
    if (this.#held.length === 0) return;
    const worker = this.#worker;
    if (worker) {
      for (const batch of this.#held) worker.send({ t: 'w', id: batch.id, records: batch.records }, batch);
      this.#held = [];
      return;
    }
    while (this.#held.length > 0) {
      const batch = this.#held[0] as Batch;
      try {
        this.log.recordRequests(batch.records, batch.id);
      } catch (err) {
        this.#retry((err as Error).message);
        return;
      }
      this.#held.shift();
      this.#backlog -= batch.records.length;
      this.#written();
    }
  }

  /** Write what is queued, let the worker commit it and stop, and close the log. */
  async close(): Promise<void> {
    this.flush();
    if (this.#timer) clearTimeout(this.#timer);
    // A worker that stops instead of answering hands its batches back first (see #startWorker).
    await this.#worker?.close({ t: 'close' }, 'close');
    // Batches a failing worker handed back are written here, once.
    if (this.#held.length > 0) this.flush();
    if (this.#timer) clearTimeout(this.#timer);
    this.log.close();
  }

  #written(): void {
    if (this.#failed) this.warn(`request log: writing to ${this.log.path} again`);
    this.#failed = false;
  }

  /** A write failed: the batches stay held for the next flush (a busy database passes), said once. */
  #retry(why: string): void {
    if (!this.#failed) this.warn(`request log: cannot write to ${this.log.path} (${why}); retrying`);
    this.#failed = true;
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = setTimeout(() => this.flush(), FLUSH_MS * 4);
    this.#timer.unref();
  }

  #startWorker(): void {
    let worker: InOrderWorker<ToLogWorker, FromLogWorker, Batch | 'close'>;
    try {
      worker = new InOrderWorker(workerScriptURL('./request-log-worker.js', import.meta.url), { path: this.log.path }, {
        answered: (sent, message) => {
          if (sent === 'close') return;
          if (message.t === 'w' && message.error === undefined) {
            this.#backlog -= sent.records.length;
            this.#written();
          } else {
            this.#held.push(sent);
            this.#retry(message.t === 'w' ? (message.error as string) : 'the writer thread answered out of turn');
          }
        },
        stopped: (unanswered, why, closing) => {
          this.#worker = undefined;
          const batches = unanswered.filter((sent): sent is Batch => sent !== 'close');
          if (closing && batches.length === 0) return;
          this.warn(`request log: its writer thread stopped (${why}); writing in the main thread`);
          // What it had not answered goes first, in order, each batch under its id (one it
          // committed without saying so is then skipped), then what was queued since.
          this.#held = batches.concat(this.#held);
          if (!closing && (this.#held.length > 0 || this.#queue.length > 0)) setImmediate(() => this.flush());
        },
      });
    } catch (err) {
      this.warn(`request log: writing in the main thread (no worker: ${(err as Error).message})`);
      return;
    }
    this.#worker = worker;
  }
}
