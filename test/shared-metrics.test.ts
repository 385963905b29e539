/**
 * One contract for the backends of the shared routing measurements, run against each: the
 * in-process one and the Redis one (a real redis-server). Buckets of the same deployment,
 * second and instance add up; a read returns what was written from a second on; and a
 * `SharedMetricsStore` on each writes once per interval and learns from another instance.
 */
import { describe, expect, it } from 'vitest';
import { RedisMetricsBackend } from '../src/store/redis-metrics-backend.js';
import { MemorySharedBackend, SharedMetricsStore, type MetricsBucket, type SharedMetricsBackend } from '../src/store/shared-metrics.js';
import { useRedisClient } from './helpers/servers.js';

const redis = useRedisClient();
let prefixes = 0;

/** Each backend counts its round trips: `writes` (memory) or `calls` (Redis). */
const backends: [string, () => SharedMetricsBackend & { writes?: number; calls?: number }][] = [
  ['MemorySharedBackend', () => new MemorySharedBackend()],
  ['RedisMetricsBackend', () => new RedisMetricsBackend({ client: redis.client, prefix: `{m${++prefixes}}` })],
];

const bucket = (over: Partial<MetricsBucket>): MetricsBucket => ({ deployment: 'm@fast', second: 0, instance: 'a', successes: 0, failures: {}, sums: {}, ...over });

describe.each(backends)('%s', (_name, make) => {
  const second = Math.floor(Date.now() / 1000);

  it('adds buckets of one deployment, second and instance field by field, and keeps others apart', async () => {
    const backend = make();
    await backend.write([bucket({ second, successes: 2, failures: { server: 1 }, sums: { tokensPerSecond: { count: 2, logSum: 10.5 } } })]);
    await backend.write([
      bucket({ second, successes: 3, failures: { server: 2, timeout: 1 }, sums: { tokensPerSecond: { count: 3, logSum: 0.25 }, ttftMs: { count: 1, logSum: 4.6 } } }),
      bucket({ second, instance: 'b', successes: 1 }),
      bucket({ second, deployment: 'm@slow', successes: 4 }),
    ]);
    const read = await backend.read(second);
    const find = (instance: string, deployment: string) => read.find((b) => b.instance === instance && b.deployment === deployment);
    expect(read).toHaveLength(3);
    expect(find('a', 'm@fast')).toEqual(bucket({ second, successes: 5, failures: { server: 3, timeout: 1 }, sums: { tokensPerSecond: { count: 5, logSum: 10.75 }, ttftMs: { count: 1, logSum: 4.6 } } }));
    expect(find('b', 'm@fast')?.successes).toBe(1);
    expect(find('a', 'm@slow')?.successes).toBe(4);
  });

  it('reads the buckets from a second on, oldest first', async () => {
    const backend = make();
    await backend.write([bucket({ second: second - 10, successes: 1 }), bucket({ second: second - 2, successes: 2 }), bucket({ second, successes: 3 })]);
    expect((await backend.read(second - 2)).map((b) => [b.second, b.successes])).toEqual([
      [second - 2, 2],
      [second, 3],
    ]);
    expect(await backend.read(second + 1)).toEqual([]);
  });

  it('a store writes once per interval, summed per deployment and second, and each instance learns from the other', async () => {
    let now = second * 1000;
    const backend = make();
    const trips = (): number => backend.writes ?? backend.calls ?? 0;
    const a = new SharedMetricsStore({ backend, instance: 'a', now: () => now, intervalMs: 60_000 });
    const b = new SharedMetricsStore({ backend, instance: 'b', now: () => now, intervalMs: 60_000 });
    try {
      const before = trips();
      for (let i = 0; i < 500; i++) a.record('m@fast', { at: now + (i % 1000), ok: true, tokensPerSecond: 200, ttftMs: 100 });
      a.record('m@fast', { at: now, ok: false, errorCode: 'server' });
      await a.sync();
      // One write for 501 samples (the Redis backend also counts the read that follows it).
      expect(trips() - before).toBe(backend instanceof RedisMetricsBackend ? 2 : 1);
      const stored = await backend.read(0);
      expect(stored).toHaveLength(1);
      expect(stored[0]).toMatchObject({ deployment: 'm@fast', instance: 'a', successes: 500, failures: { server: 1 } });
      // b sees a's second once it is complete.
      now += 5_000;
      await b.sync();
      const seen = b.snapshot('m@fast');
      expect(seen?.tokensPerSecond?.p50).toBeCloseTo(200, 6);
      expect(seen?.failures).toBe(1);
      expect(seen?.attempts).toBeLessThanOrEqual(9); // one busy second stands for a few samples, not 500
      await b.sync();
      expect(b.snapshot('m@fast')?.attempts).toBe(seen?.attempts); // read once
      expect(a.snapshot('m@fast')?.attempts).toBe(40); // a's own samples, not read back
    } finally {
      a.close();
      b.close();
    }
  });
});
