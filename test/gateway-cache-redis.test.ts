/**
 * The response cache on Redis: two gateway instances configured with the same (real) Redis
 * share their cached replies, and the store keeps its bounds (TTL on every entry, a largest
 * entry, clearing by namespace, exact saved-cost counters).
 */
import OpenAI from 'openai';
import { createClient } from 'redis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RedisCacheStore } from '../src/cache/redis-store.js';
import { MASTER_KEY, startGateway, type RunningGateway } from './helpers/gateway.js';
import { startStandIn, type StandIn } from './helpers/openai-standin.js';
import { startRedis, type RedisServer } from './helpers/servers.js';

const UPSTREAM_KEY = 'sk-upstream-redis-secret-9876';
let redis: RedisServer;
let upstream: StandIn;
let a: RunningGateway;
let b: RunningGateway;
let reader: ReturnType<typeof createClient>;

const config = (): string =>
  [
    'providers:',
    `  - { name: local, protocol: openai, base_url: "\${UPSTREAM_URL}/v1", api_key: ${UPSTREAM_KEY} }`,
    'virtual_keys:',
    '  enabled: false',
    `  redis_url: ${redis.url}`,
    'response_cache:',
    '  ttl_seconds: 600',
  ].join('\n');

beforeAll(async () => {
  redis = await startRedis();
  upstream = await startStandIn({ costPerToken: 0.001 });
  a = await startGateway(config(), { env: { UPSTREAM_URL: upstream.url }, requestLog: false });
  b = await startGateway(config(), { env: { UPSTREAM_URL: upstream.url }, requestLog: false });
  reader = createClient({ url: redis.url });
  await reader.connect();
}, 30_000);
afterAll(async () => {
  await reader?.close();
  await a?.close();
  await b?.close();
  await upstream?.close();
  await redis?.destroy();
});

const client = (gw: RunningGateway) => new OpenAI({ baseURL: `${gw.url}/v1`, apiKey: MASTER_KEY, maxRetries: 0 });

describe('two gateways sharing one Redis', () => {
  it('a reply cached through one instance is a hit on the other', async () => {
    const messages = [{ role: 'user' as const, content: 'shared between instances' }];
    const before = upstream.requests.length;
    const first = await client(a).chat.completions.create({ model: 'echo@local', messages }).withResponse();
    const second = await client(b).chat.completions.create({ model: 'echo@local', messages, stream: true }).withResponse();
    let text = '';
    for await (const chunk of second.data) text += chunk.choices[0]?.delta?.content ?? '';
    expect(first.response.headers.get('x-switchboard-cache')).toBe('miss');
    expect(second.response.headers.get('x-switchboard-cache')).toBe('hit');
    expect(text).toBe(first.data.choices[0]?.message.content);
    expect(upstream.requests.length - before).toBe(1);
  });

  it('no-store writes nothing to Redis', async () => {
    const count = async () => (await reader.keys('{switchboard}:c:*')).length;
    const keys = await count();
    for (const gw of [a, b]) await client(gw).chat.completions.create({ model: 'echo@local', messages: [{ role: 'user', content: 'do not keep' }] }, { headers: { 'cache-control': 'no-store' } });
    expect(await count()).toBe(keys);
    const later = await client(b).chat.completions.create({ model: 'echo@local', messages: [{ role: 'user', content: 'do not keep' }] }).withResponse();
    expect(later.response.headers.get('x-switchboard-cache')).toBe('miss');
    expect(await count()).toBe(keys + 1);
  });

  it('every entry expires, and none holds a key', async () => {
    const keys = await reader.keys('{switchboard}:c:*');
    expect(keys.length).toBeGreaterThan(0);
    let bytes = '';
    for (const key of keys) {
      const ttl = await reader.pTTL(key);
      expect(ttl).toBeGreaterThan(0);
      expect(ttl).toBeLessThanOrEqual(600_000);
      bytes += `${key}\n${await reader.get(key)}\n`;
    }
    expect(bytes).toContain('echo heard: shared between instances');
    expect(bytes).not.toContain(UPSTREAM_KEY);
    expect(bytes).not.toContain(MASTER_KEY);
  });
});

describe('RedisCacheStore', () => {
  it('refuses entries past its bound, clears by namespace and counts saved cost exactly', async () => {
    const store = await RedisCacheStore.open({ url: redis.url, prefix: '{store-test}', maxEntryBytes: 100 });
    try {
      const big = 'x'.repeat(200);
      await store.set('ns1:big', { value: big, namespace: 'ns1', costFemto: 1n, expiresAt: null });
      expect(await store.get('ns1:big')).toBeUndefined();
      // Over a dollar and a half in two hits: the rest carries into whole dollars exactly.
      const cost = 800_000_000_000_001n;
      await store.set('ns1:a', { value: 'reply a', namespace: 'ns1', costFemto: cost, expiresAt: Date.now() + 60_000 });
      await store.set('ns2:b', { value: 'reply b', namespace: 'ns2', costFemto: null, expiresAt: null });
      expect(await store.get('ns1:a')).toBe('reply a');
      expect(await store.get('ns1:a')).toBe('reply a');
      expect(await store.get('ns2:b')).toBe('reply b');
      expect(await reader.pTTL('{store-test}:c:ns2:b')).toBeGreaterThan(6 * 86_400_000);
      await new Promise((r) => setTimeout(r, 50));
      const stats = await store.stats();
      expect(stats).toMatchObject({ entries: 2, hits: 3, misses: 1 });
      expect(stats.savedFemto).toBe(2n * cost);
      expect(stats.bytes).toBe('ns1:a'.length + String(cost).length + 1 + 'reply a'.length + 'ns2:b'.length + 1 + 'reply b'.length);
      expect(await store.clear('ns1')).toBe(1);
      expect(await store.get('ns1:a')).toBeUndefined();
      expect(await store.get('ns2:b')).toBe('reply b');
      expect(await store.clear()).toBe(1);
    } finally {
      await store.close();
    }
  });
});
