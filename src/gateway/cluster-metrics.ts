/**
 * `GET /metrics` for `switchboard serve --workers N`. Each worker counts only the requests it
 * served, and a scrape reaches whichever worker the kernel hands the connection to; so that
 * worker asks the primary, the primary collects every live worker's snapshot over cluster
 * IPC, sums them (counters and histogram buckets add up; the in-flight gauge too) and sends
 * back the whole server's text. Nothing of this runs per request: only per scrape.
 *
 * If a worker does not answer in time the scrape fails (503) rather than report part of the
 * server, which Prometheus would read as counters going backwards. A worker that dies takes
 * its counts with it, as a restarted process does: Prometheus sees a counter reset.
 */
import type { Cluster } from 'node:cluster';
import { GatewayMetrics, type MetricsSnapshot } from './metrics.js';

/** worker -> primary: render the whole server's metrics. */
const ASK = 'switchboard:metrics-ask';
/** primary -> each worker: send your snapshot. */
const COLLECT = 'switchboard:metrics-collect';
/** worker -> primary: one worker's snapshot. */
const SNAPSHOT = 'switchboard:metrics-snapshot';
/** primary -> the asking worker: the text, or why there is none. */
const ANSWER = 'switchboard:metrics-answer';

interface Message {
  type?: unknown;
  id?: unknown;
  snapshot?: MetricsSnapshot;
  text?: string;
  error?: string;
}

/**
 * In a worker: answer the primary's collections with this worker's snapshot, and return the
 * function that gives the whole server's `/metrics` text (GatewayOptions.metricsText).
 */
export function workerMetricsText(metrics: GatewayMetrics, timeoutMs = 3000): () => Promise<string> {
  const waiting = new Map<number, { resolve: (text: string) => void; reject: (err: Error) => void }>();
  let next = 0;
  process.on('message', (raw: unknown) => {
    const m = raw as Message | null;
    if (m?.type === COLLECT) process.send?.({ type: SNAPSHOT, id: m.id, snapshot: metrics.snapshot() });
    else if (m?.type === ANSWER && typeof m.id === 'number') {
      const w = waiting.get(m.id);
      waiting.delete(m.id);
      if (m.error !== undefined) w?.reject(new Error(m.error));
      else w?.resolve(m.text ?? '');
    }
  });
  return () =>
    new Promise<string>((resolve, reject) => {
      const id = next++;
      const timer = setTimeout(() => {
        waiting.delete(id);
        reject(new Error('the primary process did not answer with the workers\' metrics in time'));
      }, timeoutMs);
      const done = <T>(f: (v: T) => void) => (v: T): void => {
        clearTimeout(timer);
        f(v);
      };
      waiting.set(id, { resolve: done(resolve), reject: done(reject) });
      process.send?.({ type: ASK, id });
    });
}

/** In the primary: answer a worker's ASK with every worker's metrics summed. */
export function serveClusterMetrics(cluster: Cluster, timeoutMs = 2000): void {
  let next = 0;
  const collections = new Map<number, { expected: Set<number>; total: GatewayMetrics; finish: () => void }>();

  cluster.on('message', (worker, raw: unknown) => {
    const m = raw as Message | null;
    if (m?.type === ASK) {
      collect().then(
        (text) => worker.send({ type: ANSWER, id: m.id, text }),
        (err: Error) => worker.send({ type: ANSWER, id: m.id, error: err.message }),
      );
    } else if (m?.type === SNAPSHOT && typeof m.id === 'number' && m.snapshot) {
      const c = collections.get(m.id);
      if (!c || !c.expected.delete(worker.id)) return;
      c.total.add(m.snapshot);
      if (c.expected.size === 0) c.finish();
    }
  });

  function collect(): Promise<string> {
    const workers = Object.values(cluster.workers ?? {}).filter((w): w is NonNullable<typeof w> => w !== undefined && w.isConnected());
    const id = next++;
    const total = new GatewayMetrics();
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        collections.delete(id);
        reject(new Error(`${c.expected.size} of ${workers.length} workers did not report their metrics in ${timeoutMs} ms`));
      }, timeoutMs);
      const c = {
        expected: new Set(workers.map((w) => w.id)),
        total,
        finish: (): void => {
          clearTimeout(timer);
          collections.delete(id);
          resolve(`${total.render()}# HELP switchboard_workers Worker processes whose series are summed above.\n# TYPE switchboard_workers gauge\nswitchboard_workers ${workers.length}\n`);
        },
      };
      collections.set(id, c);
      for (const w of workers) w.send({ type: COLLECT, id });
      if (workers.length === 0) c.finish();
    });
  }
}
