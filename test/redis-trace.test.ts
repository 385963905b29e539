/**
 * Redis round trips counted per request (src/store/redis-trace.ts), on a real redis-server:
 * commands in flight together are one round trip, a command sent after a reply the next, and
 * commands outside a request are background.
 */
import { expect, it } from 'vitest';
import { countRedisInto, traceRedis, untracedRedis, type RedisTraffic } from '../src/store/redis-trace.js';
import { useRedisClient } from './helpers/servers.js';

const redis = useRedisClient();

const fresh = (): RedisTraffic => ({ requestCommands: { value: 0 }, requestRoundTrips: { value: 0 }, backgroundCommands: { value: 0 } });

it('commands sent together are one round trip; one sent after a reply is the next', async () => {
  const t = fresh();
  countRedisInto(t);
  await traceRedis(async () => {
    await Promise.all([redis.client.sendCommand(['SET', 'a', '1']), redis.client.sendCommand(['SET', 'b', '2'])]);
    // The typed helpers are counted too.
    expect(await redis.client.get('a')).toBe('1');
  });
  expect(t.requestCommands.value).toBe(3);
  expect(t.requestRoundTrips.value).toBe(2);
  expect(t.backgroundCommands.value).toBe(0);
});

it('each request counts its own depth, however requests interleave', async () => {
  const t = fresh();
  countRedisInto(t);
  const request = () =>
    traceRedis(async () => {
      for (let i = 0; i < 3; i++) await redis.client.sendCommand(['INCR', 'n']);
    });
  await Promise.all(Array.from({ length: 10 }, request));
  expect(t.requestRoundTrips.value).toBe(30);
});

it('commands outside a request, or that a request does not wait for, are background', async () => {
  const t = fresh();
  countRedisInto(t);
  await redis.client.sendCommand(['PING']);
  await traceRedis(async () => {
    await untracedRedis(() => redis.client.sendCommand(['PING']));
    await redis.client.sendCommand(['PING']);
  });
  expect(t.backgroundCommands.value).toBe(2);
  expect(t.requestCommands.value).toBe(1);
  expect(t.requestRoundTrips.value).toBe(1);
});
