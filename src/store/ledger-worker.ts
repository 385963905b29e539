/**
 * The worker thread that writes the SQLite ledger's spend rows (see ledger-spend.ts and
 * WorkerSpend): its own connection to the ledger's file, so the commits, and the automatic WAL
 * checkpoints they trigger, run here instead of on the gateway's main thread. This connection
 * is the one writer of spend rows, so its checkpoints also restart the WAL.
 *
 * Messages from the main thread, each answered in the order it came:
 *   { t: 'w', ops }  spend writes; answered { t: 'w', results } once committed
 *   { t: 'b' }       a barrier; answered { t: 'b' } once every write before it is committed
 *   { t: 'close' }   commit what is waiting, close the connection; answered { t: 'closed' }
 * Writes that arrive in one turn of this thread's event loop share one transaction.
 */
import { parentPort, workerData, type MessagePort } from 'node:worker_threads';
import { openLedgerFile, SpendWriter, type SpendOp, type SpendResult } from './ledger-spend.js';

export type ToWorker = { t: 'w'; ops: SpendOp[] } | { t: 'b' } | { t: 'close' };
export type FromWorker = { t: 'w'; results: SpendResult[] } | { t: 'b' } | { t: 'closed' };

if (!parentPort) throw new Error('ledger-worker.js runs as a worker thread of the SQLite ledger.');
const port: MessagePort = parentPort;
const { path } = workerData as { path: string };

const db = openLedgerFile(path);
const writer = new SpendWriter(db);

/** Write messages of this turn, answered together once their shared commit is done. */
let waiting: SpendOp[][] = [];
let commitScheduled = false;

function commit(): void {
  commitScheduled = false;
  if (waiting.length === 0) return;
  const messages = waiting;
  waiting = [];
  const results = writer.commit(messages.length === 1 ? (messages[0] as SpendOp[]) : messages.flat());
  let at = 0;
  for (const ops of messages) {
    port.postMessage({ t: 'w', results: results.slice(at, at + ops.length) } satisfies FromWorker);
    at += ops.length;
  }
}

port.on('message', (message: ToWorker) => {
  if (message.t === 'w') {
    waiting.push(message.ops);
    if (!commitScheduled) {
      commitScheduled = true;
      setImmediate(commit);
    }
    return;
  }
  commit();
  if (message.t === 'b') {
    port.postMessage({ t: 'b' } satisfies FromWorker);
    return;
  }
  db.close();
  port.postMessage({ t: 'closed' } satisfies FromWorker);
  port.close();
});
