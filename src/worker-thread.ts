/**
 * Worker threads that take work off the main thread (the ledger's spend writes, the request
 * log's batches): where a worker's script is, and the bookkeeping both need around a worker
 * that answers every message in the order it was sent.
 */
import { existsSync } from 'node:fs';
import { Worker } from 'node:worker_threads';

/**
 * `name` (e.g. `./ledger-worker.js`) beside `moduleURL` (the caller's `import.meta.url`), or its
 * built copy: from dist/ the script is next to the module; from the TypeScript source (the tests
 * run it) it is the same file under dist/, which `npm run build` makes (`npm test` builds first).
 */
export function workerScriptURL(name: string, moduleURL: string): URL {
  const here = new URL(name, moduleURL);
  if (existsSync(here)) return here;
  // The last /src/ of the path is the source tree: the built file is at the same place under dist/.
  return new URL(here.href.replace(/\/src\/(?!.*\/src\/)/, '/dist/'));
}

export interface InOrderWorkerHandlers<FromWorker, Pending> {
  /** The answer to the oldest unanswered message, with what was kept for it. */
  answered(pending: Pending, message: FromWorker): void;
  /**
   * The worker stopped (it failed or exited), once: with what it had not answered, oldest
   * first, and whether it had been told to close (then this is its normal end).
   */
  stopped(unanswered: Pending[], why: string, closing: boolean): void;
}

/**
 * A worker thread that answers each message in the order sent. What each answer settles is kept
 * in a queue on this side; the worker keeps the process alive only while an answer is awaited,
 * and from its closing message until it exits.
 */
export class InOrderWorker<ToWorker, FromWorker, Pending> {
  readonly #worker: Worker;
  readonly #pending: Pending[] = [];
  #closing = false;
  readonly #exited: Promise<void>;

  /** Starts the worker; throws when it cannot be started. */
  constructor(script: URL, workerData: unknown, handlers: InOrderWorkerHandlers<FromWorker, Pending>) {
    const worker = new Worker(script, { workerData });
    this.#worker = worker;
    worker.unref();
    worker.on('message', (message: FromWorker) => {
      const pending = this.#pending.shift();
      if (this.#pending.length === 0 && !this.#closing) worker.unref();
      if (pending !== undefined) handlers.answered(pending, message);
    });
    let gone = false;
    const stop = (why: string): void => {
      if (gone) return; // its 'error', then its 'exit'
      gone = true;
      handlers.stopped(this.#pending.splice(0), why, this.#closing);
    };
    worker.on('error', (err) => stop(`it failed: ${err.message}`));
    this.#exited = new Promise((resolve) =>
      worker.on('exit', (code) => {
        stop(`it exited with code ${code}`);
        resolve();
      }),
    );
  }

  /** Messages sent and not yet answered. */
  get waiting(): number {
    return this.#pending.length;
  }

  /** Send a message whose answer settles `pending`. */
  send(message: ToWorker, pending: Pending): void {
    if (this.#pending.push(pending) === 1) this.#worker.ref();
    this.#worker.postMessage(message);
  }

  /** Send the closing message (answered like any other); resolves once the worker has exited. */
  close(message: ToWorker, pending: Pending): Promise<void> {
    this.#closing = true;
    this.#worker.ref();
    this.send(message, pending);
    return this.#exited;
  }
}
