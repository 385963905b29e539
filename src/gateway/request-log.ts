/**
 * Writes the gateway's request log off the hot path: records queue in memory and go to
 * SQLite in one transaction every quarter second (or every 500 records), so a request never
 * waits on the disk. The log is the CLI's conversation log: `switchboard logs` and `usage`
 * show gateway traffic beside chats. A log that cannot be opened is reported once and the
 * gateway carries on without it.
 */
import type { ConversationLog, RequestRecord } from '../store/conversation-log.js';

const FLUSH_MS = 250;
const FLUSH_COUNT = 500;
/** Past this many queued records (the disk is stuck), new ones are dropped and counted. */
const MAX_QUEUED = 50_000;

export class RequestLogWriter {
  #queue: RequestRecord[] = [];
  #timer: NodeJS.Timeout | undefined;
  #dropped = 0;
  #failed = false;

  constructor(
    private readonly log: ConversationLog,
    private readonly warn: (message: string) => void,
  ) {}

  get dropped(): number {
    return this.#dropped;
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

  /** Write everything queued now. */
  flush(): void {
    if (this.#timer) {
      clearTimeout(this.#timer);
      this.#timer = undefined;
    }
    if (this.#queue.length === 0) return;
    const batch = this.#queue;
    this.#queue = [];
    try {
      this.log.recordRequests(batch);
      this.#failed = false;
    } catch (err) {
      // Keep the batch for the next flush (a busy database passes), once said.
      if (!this.#failed) this.warn(`request log: cannot write to ${this.log.path} (${(err as Error).message}); retrying`);
      this.#failed = true;
      this.#queue = batch.concat(this.#queue).slice(0, MAX_QUEUED);
      this.#timer = setTimeout(() => this.flush(), FLUSH_MS * 4);
      this.#timer.unref();
    }
  }

  close(): void {
    this.flush();
    if (this.#timer) clearTimeout(this.#timer);
    this.log.close();
  }
}
