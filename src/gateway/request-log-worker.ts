/**
 * The worker thread that writes the gateway's request log (see request-log.ts): its own
 * connection to the log's file, so the inserts, their commits and SQLite's automatic WAL
 * checkpoints (with their fsync) run here, not on the gateway's main thread. A batch of 500
 * requests took 10 to 33 ms to write there, holding every request in flight that long.
 *
 * Messages from the main thread, each answered in the order it came:
 *   { t: 'w', id, records }  one batch; answered { t: 'w' } once committed (or found committed
 *                            under its id before), or { t: 'w', error }
 *   { t: 'close' }           close the connection; answered { t: 'closed' }
 */
import { parentPort, workerData, type MessagePort } from 'node:worker_threads';
import { SQLiteConversationLog, type RequestRecord } from '../store/conversation-log.js';

export type ToLogWorker = { t: 'w'; id: string; records: RequestRecord[] } | { t: 'close' };
export type FromLogWorker = { t: 'w'; error?: string } | { t: 'closed' };

if (!parentPort) throw new Error('request-log-worker.js runs as a worker thread of the gateway.');
const port: MessagePort = parentPort;
const { path } = workerData as { path: string };
const log = new SQLiteConversationLog({ path });

port.on('message', (message: ToLogWorker) => {
  if (message.t === 'close') {
    log.close();
    port.postMessage({ t: 'closed' } satisfies FromLogWorker);
    port.close();
    return;
  }
  try {
    log.recordRequests(message.records, message.id);
    port.postMessage({ t: 'w' } satisfies FromLogWorker);
  } catch (err) {
    port.postMessage({ t: 'w', error: err instanceof Error ? err.message : String(err) } satisfies FromLogWorker);
  }
});
