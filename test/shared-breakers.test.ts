/**
 * Circuit breakers shared through a real Redis: a trip on one instance opens the breaker on
 * the others for the same cooldown (by pub/sub, or read back when an instance starts), and a
 * Redis that is down leaves each instance's breakers working alone, with one warning.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RedisBreakerSync } from '../src/store/redis-breakers.js';
import { createRedisClient, type RedisClient } from '../src/store/redis-scripts.js';
import { waitFor } from './helpers/gateway.js';
import { startRedis, type RedisServer } from './helpers/servers.js';

let redis: RedisServer;
const clients: RedisClient[] = [];
const syncs: RedisBreakerSync[] = [];
let prefixes = 0;
beforeAll(async () => {
  redis = await startRedis();
}, 30_000);
afterAll(async () => {
  await Promise.all(syncs.map((s) => s.close().catch(() => {})));
  await Promise.all(clients.map((c) => (c.isOpen ? c.close() : undefined)));
  await redis?.destroy();
});

async function instance(name: string, prefix: string, warnings: string[] = []): Promise<RedisBreakerSync> {
  const client = createRedisClient(redis.url);
  await client.connect();
  clients.push(client);
  const sync = await RedisBreakerSync.open({ client, prefix, instance: name, warn: (m) => warnings.push(m), cooldownMs: 20_000 });
  syncs.push(sync);
  return sync;
}

const trip = (sync: RedisBreakerSync, key: string): void => {
  for (let i = 0; i < 3; i++) sync.breakers.failure(key, {});
};

describe('RedisBreakerSync', () => {
  it('a trip on one instance opens the breaker on the others for the cooldown; one that starts later reads it', async () => {
    const prefix = `{cb${++prefixes}}`;
    const [a, b] = [await instance('a', prefix), await instance('b', prefix)];
    trip(a, 'm@down');
    expect(a.breakers.state('m@down')).toBe('open');
    await waitFor(() => b.breakers.state('m@down') === 'open', 5000);
    expect(b.breakers.acquire('m@down')).toBe(false);
    expect(b.breakers.remainingMs('m@down')).toBeGreaterThan(15_000);
    expect(b.breakers.state('m@other')).toBe('closed');
    const late = await instance('late', prefix);
    expect(late.breakers.state('m@down')).toBe('open');
    expect(late.breakers.remainingMs('m@down')).toBeLessThanOrEqual(20_000);
  });

  it('while Redis is down each instance trips alone and warns once; trips made elsewhere meanwhile are read back', async () => {
    const prefix = `{cb${++prefixes}}`;
    const warnings: string[] = [];
    const a = await instance('a', prefix, warnings);
    await redis.stop('SIGKILL');
    try {
      trip(a, 'm@x');
      trip(a, 'm@y');
      await a.flush();
      expect(a.breakers.state('m@x')).toBe('open');
      expect(warnings.filter((w) => /could not share a circuit breaker trip/.test(w))).toHaveLength(1);
    } finally {
      await redis.start();
    }
    const b = await instance('b', prefix);
    trip(b, 'm@z');
    await b.flush();
    await waitFor(() => a.breakers.state('m@z') === 'open', 10_000);
  }, 30_000);
});
