/**
 * Three `switchboard serve` processes on one real Redis and one real Postgres, acting as one
 * gateway: one budget, one rate limit, one ledger; and what happens when an instance is
 * killed, Redis stops, or Postgres stops.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import OpenAI from 'openai';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { FEMTO_PER_MICRO } from '../src/store/ledger.js';
import { PostgresLedger } from '../src/store/postgres-ledger.js';
import { RedisSharedState } from '../src/store/redis-shared-state.js';
import { BIN } from './helpers/cli.js';
import { waitFor } from './helpers/gateway.js';
import { startPostgres, startRedis, type PostgresServer, type RedisServer } from './helpers/servers.js';
import { sendJSON, sendSSE, sse, startStandIn } from './helpers/stand-in.js';

const MASTER = 'sk-master-scaleout-0123456789';
const MODEL = 'sim/llama@sim-fast';

let redis: RedisServer;
let postgres: PostgresServer;
let dbs = 0;
beforeAll(async () => {
  [redis, postgres] = await Promise.all([startRedis(), startPostgres()]);
}, 60_000);
afterAll(async () => {
  await Promise.all([redis?.destroy(), postgres?.destroy()]);
});

interface Instance {
  child: ChildProcess;
  url: string;
  stderr: () => string;
}
const running: Instance[] = [];
afterEach(async () => {
  for (const i of running.splice(0)) i.child.kill('SIGKILL');
  await Promise.all(running.map((i) => new Promise((r) => (i.child.exitCode !== null || i.child.signalCode !== null ? r(null) : i.child.once('exit', r)))));
  if (redis) await redis.start().catch(() => {});
  if (postgres) await postgres.start().catch(() => {});
  // Each test starts on an empty Redis: no queue entries or counters of the one before.
  if (redis) execFileSync('redis-cli', ['-p', String(redis.port), 'FLUSHALL']);
});

async function serve(config: string, env: Record<string, string>): Promise<Instance> {
  const home = mkdtempSync(join(tmpdir(), 'sb-scale-'));
  const file = join(home, 'gateway.yaml');
  writeFileSync(file, `master_key: ${MASTER}\n${config}`);
  const child = spawn(process.execPath, [BIN, 'serve', '--port', '0', '--config', file], {
    env: { PATH: process.env.PATH ?? '', HOME: home, SWITCHBOARD_HOME: home, SWITCHBOARD_METRICS: 'memory', SWITCHBOARD_SIM_TIME_SCALE: '0', SWITCHBOARD_KEY_PEPPER: 'scaleout-pepper', ...env },
  });
  let stderr = '';
  child.stderr?.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  child.stdout?.resume();
  await waitFor(() => /listening on (http:\S+)/.test(stderr) || child.exitCode !== null, 15_000);
  const url = /listening on (http:\S+)/.exec(stderr)?.[1];
  if (!url) throw new Error(`serve did not start: ${stderr}`);
  const instance = { child, url, stderr: () => stderr };
  running.push(instance);
  return instance;
}

/** Three instances on one fresh database and one Redis key space. */
async function cluster(config = '', env: Record<string, string> = {}, count = 3) {
  const database = postgres.createDatabase(`scale${++dbs}`);
  const shared = { SWITCHBOARD_REDIS_URL: redis.url, SWITCHBOARD_DATABASE_URL: database, ...env };
  const instances = await Promise.all(Array.from({ length: count }, (_, i) => serve(config, { ...shared, SWITCHBOARD_INSTANCE: `gw${i}` })));
  const admin = async (method: string, path: string, body?: unknown) => {
    const res = await fetch(`${instances[0]?.url}${path}`, { method, headers: { authorization: `Bearer ${MASTER}`, 'content-type': 'application/json' }, ...(body === undefined ? {} : { body: JSON.stringify(body) }) });
    return (await res.json()) as Record<string, unknown>;
  };
  const clients = (key: string) => instances.map((i) => new OpenAI({ baseURL: `${i.url}/v1`, apiKey: key, maxRetries: 0, timeout: 30_000 }));
  /** The ledger as every instance wrote it, once the queue has drained into Postgres. */
  const ledger = async (): Promise<PostgresLedger> => {
    // A response ends before its settlement is queued: give the last ones a moment.
    await new Promise((r) => setTimeout(r, 500));
    const l = await PostgresLedger.open({ url: database, queueUrl: redis.url, instance: 'test-reader', log: () => {} });
    await l.drain(15_000);
    return l;
  };
  return { instances, admin, clients, ledger, database };
}

const ask = (client: OpenAI, maxTokens = 50) =>
  client.chat.completions.create({ model: MODEL, max_tokens: maxTokens, messages: [{ role: 'user', content: 'How many requests fit in this budget?' }] }).withResponse();

type Asked = Awaited<ReturnType<typeof ask>>;
const costOf = (r: Asked): bigint => BigInt(Math.round(Number(r.response.headers.get('x-switchboard-cost')) * 1e15));
const fulfilled = <T>(rs: PromiseSettledResult<T>[]): T[] => rs.filter((r): r is PromiseFulfilledResult<T> => r.status === 'fulfilled').map((r) => r.value);
const statusOf = (r: PromiseSettledResult<unknown>): number => (r.status === 'fulfilled' ? 200 : (((r.reason as { status?: number }).status ?? 0)));

describe('three instances on one Redis and one Postgres', () => {
  it('300 concurrent requests spread over three instances never overspend one budget', async () => {
    const c = await cluster();
    // One request's worst case, from a probe key, sets a budget of about 40 of them.
    const probe = await c.admin('POST', '/admin/keys', { name: 'probe' });
    const first = await ask(c.clients(probe.key as string)[0] as OpenAI);
    const budgetMicros = 40 * Math.ceil(Number(first.response.headers.get('x-switchboard-cost')) * 1e6 * 3);
    const made = await c.admin('POST', '/admin/keys', { name: 'race', budget: (budgetMicros / 1e6).toFixed(6), period: 'total' });
    const clients = c.clients(made.key as string);
    const results = await Promise.allSettled(Array.from({ length: 300 }, (_, i) => ask(clients[i % 3] as OpenAI)));
    const ok = fulfilled(results);
    // Admitted, or refused for the budget; or, on a machine so loaded that Redis missed its 1 s
    // reply deadline, refused as the closed mode promises (not sent, not charged). Anything else
    // is named, status and message, when it fails.
    const storeStalled = (r: PromiseSettledResult<unknown>): boolean => statusOf(r) === 503 && /budget store cannot be reached/.test(String((r as PromiseRejectedResult).reason));
    const other = results.filter((r) => statusOf(r) !== 200 && statusOf(r) !== 429 && !storeStalled(r)).map((r) => `${statusOf(r)} ${r.status === 'rejected' ? String((r.reason as Error).message) : ''}`);
    expect(other).toEqual([]);
    expect(ok.length).toBeGreaterThan(10);
    expect(ok.length).toBeLessThan(300);
    const ledger = await c.ledger();
    const rows = await ledger.pool.query<{ instance: string; n: string }>("SELECT instance, COUNT(*)::text AS n FROM spend WHERE status = 'ok' AND key_id = $1 GROUP BY instance ORDER BY instance", [made.id]);
    const perInstance = rows.rows.map((r) => `${r.instance} ${r.n}`).join(', ');
    const spent = await ledger.spentFemto(`key:${made.id as string}`, 0);
    const shown = ok.reduce((sum, r) => sum + costOf(r), 0n);
    await ledger.close();
    console.log(`scale-out race: 300 concurrent requests over 3 instances, ${ok.length} admitted (${perInstance}), ${results.filter(storeStalled).length} refused for a stalled store; spent $${(Number(spent) / 1e15).toFixed(6)} of a $${(budgetMicros / 1e6).toFixed(6)} budget`);
    expect(spent).toBeLessThanOrEqual(BigInt(budgetMicros) * FEMTO_PER_MICRO);
    // Clients saw costs to the femto-dollar in decimal; the header sum matches the ledger to a micro-dollar.
    expect(Number(spent - shown) / 1e15).toBeCloseTo(0, 6);
  }, 60_000);

  it('a keyed request costs two Redis round trips and two commands: reserve, then settle with its ledger entry', async () => {
    const c = await cluster('', {}, 1);
    const made = await c.admin('POST', '/admin/keys', { name: 'trips', budget: '100', period: 'month', rpm: 1000, tpm: 1_000_000 });
    const client = c.clients(made.key as string)[0] as OpenAI;
    // The first request also seeds the budget counter from the ledger and teaches Redis the scripts.
    const first = await ask(client, 5);
    const redisTraffic = async () => {
      const text = await (await fetch(`${c.instances[0]?.url}/metrics`)).text();
      return { trips: Number(/^switchboard_redis_round_trips_total (\d+)/m.exec(text)?.[1]), commands: Number(/^switchboard_redis_commands_total\{path="request"\} (\d+)/m.exec(text)?.[1]) };
    };
    const before = await redisTraffic();
    const asked = [first];
    for (let i = 0; i < 10; i++) asked.push(await ask(client, 5));
    const after = await redisTraffic();
    expect(after.trips - before.trips).toBe(20);
    expect(after.commands - before.commands).toBe(20);
    // Each settle script appended the request's ledger entry: the ledger has every cost clients saw.
    const ledger = await c.ledger();
    const spent = await ledger.spentFemto(`key:${made.id as string}`, 0);
    const requests = (await ledger.usage({ by: 'key' })).find((r) => r.key === made.id)?.requests;
    await ledger.close();
    expect(requests).toBe(11);
    expect(Number(spent - asked.reduce((sum, r) => sum + costOf(r), 0n)) / 1e15).toBeCloseTo(0, 6);
  }, 60_000);

  it('a 30-rpm key admits 30 in a burst across all instances, not 90', async () => {
    const c = await cluster();
    const made = await c.admin('POST', '/admin/keys', { name: 'rpm', rpm: 30 });
    const clients = c.clients(made.key as string);
    const results = await Promise.allSettled(Array.from({ length: 90 }, (_, i) => ask(clients[i % 3] as OpenAI, 5)));
    const codes = results.map(statusOf);
    console.log(`scale-out rpm: 90 requests over 3 instances on a 30-rpm key: ${codes.filter((s) => s === 200).length} admitted, ${codes.filter((s) => s === 429).length} refused`);
    expect(codes.filter((s) => s === 200)).toHaveLength(30);
    expect(codes.filter((s) => s === 429)).toHaveLength(60);
  }, 60_000);

  it('kill -9 of one instance during 100 streaming requests: the others complete, its reservations expire, the ledger has each completed request once', async () => {
    const ttlMs = 10_000;
    const c = await cluster(`virtual_keys:\n  reservation_ttl_ms: ${ttlMs}\n`, { SWITCHBOARD_SIM_TIME_SCALE: '0.3' });
    const made = await c.admin('POST', '/admin/keys', { name: 'streams', budget: '100', period: 'total' });
    const clients = c.clients(made.key as string);
    let killedStreaming = false;
    /** A stream counts as completed when it ended with a finish reason (a cut connection may end quietly). */
    const stream = async (client: OpenAI): Promise<{ text: string; id: string; finished: boolean }> => {
      const s = await client.chat.completions.create({ model: MODEL, max_tokens: 40, stream: true, messages: [{ role: 'user', content: 'Tell me a long story.' }] });
      let text = '';
      let id = '';
      let finished = false;
      for await (const chunk of s) {
        if (chunk.choices[0]?.finish_reason) finished = true;
        id = chunk.id;
        if (client === clients[2]) killedStreaming = true;
        text += chunk.choices[0]?.delta?.content ?? '';
      }
      return { text, id, finished };
    };
    const results = Array.from({ length: 100 }, (_, i) => stream(clients[i % 3] as OpenAI));
    // Kill it once its streams are flowing (their reservations are held).
    await waitFor(() => killedStreaming, 10_000);
    (c.instances[2] as Instance).child.kill('SIGKILL');
    const killedAt = Date.now();
    const settledResults = await Promise.allSettled(results);
    const onSurvivors = settledResults.filter((_, i) => i % 3 !== 2);
    const onKilled = settledResults.filter((_, i) => i % 3 === 2);
    const completed = settledResults.filter((r) => r.status === 'fulfilled' && r.value.finished).length;
    expect(onSurvivors.every((r) => r.status === 'fulfilled' && r.value.finished && r.value.text.length > 0)).toBe(true);
    const killedFailed = onKilled.filter((r) => r.status === 'rejected' || !r.value.finished).length;
    expect(killedFailed).toBeGreaterThan(0);

    const state = await RedisSharedState.open({ url: redis.url });
    const ledger = await c.ledger();
    try {
      const okRows = await ledger.pool.query<{ n: string; ids: string; survivors: string }>(
        "SELECT COUNT(*)::text AS n, COUNT(DISTINCT id)::text AS ids, COUNT(*) FILTER (WHERE instance <> 'gw2')::text AS survivors FROM spend WHERE key_id = $1 AND status = 'ok'",
        [made.id],
      );
      const held = await ledger.pool.query<{ n: string }>("SELECT COUNT(*)::text AS n FROM spend WHERE key_id = $1 AND status = 'reserved' AND instance = 'gw2'", [made.id]);
      const before = await state.budget(`key:${made.id as string}`, 'total');
      console.log(`scale-out kill -9: 100 streams, ${completed} completed (${onSurvivors.length} on survivors, all complete), ${killedFailed} cut on the killed instance; ${held.rows[0]?.n} of its reservation rows open in Postgres so far, $${((before?.reservedMicros ?? 0) / 1e6).toFixed(6)} held in Redis`);
      // The survivors' requests are each charged once.
      expect(Number(okRows.rows[0]?.survivors)).toBe(onSurvivors.length);
      expect(okRows.rows[0]?.ids).toBe(okRows.rows[0]?.n);
      // On the killed instance, every stream its client saw finish is charged; so may be one the
      // provider finished and the instance settled (a reply is settled before its last bytes) whose
      // tail the kill then cut: the provider charged for it too. None is charged twice.
      const okOnKilled = Number(okRows.rows[0]?.n) - onSurvivors.length;
      expect(okOnKilled).toBeGreaterThanOrEqual(completed - onSurvivors.length);
      expect(okOnKilled).toBeLessThanOrEqual(onKilled.length);
      expect(before?.reservedMicros ?? 0).toBeGreaterThan(0);
      // Checked before the ttl ran out: the holds above are the killed instance's alone.
      expect(Date.now() - killedAt).toBeLessThan(ttlMs);
      // They lapse after the reservation ttl.
      let reserved = before?.reservedMicros ?? 0;
      while (reserved > 0 && Date.now() - killedAt < ttlMs + 5000) {
        await new Promise((r) => setTimeout(r, 250));
        reserved = (await state.budget(`key:${made.id as string}`, 'total'))?.reservedMicros ?? 0;
      }
      console.log(`scale-out kill -9: the killed instance's holds were released ${((Date.now() - killedAt) / 1000).toFixed(1)} s after the kill (ttl ${ttlMs / 1000} s)`);
      expect(reserved).toBe(0);
    } finally {
      await state.close();
      await ledger.close();
    }
  }, 60_000);
});

describe('outages', () => {
  /** Requests one after another (three at a time) until `stop` says so; each outcome kept. */
  async function load(clients: OpenAI[], during: () => Promise<void>) {
    const outcomes: { status: number; ms: number; result?: Asked }[] = [];
    let going = true;
    const worker = async (w: number): Promise<void> => {
      for (let i = 0; going; i++) {
        const t = performance.now();
        const [r] = await Promise.allSettled([ask(clients[(w + i) % clients.length] as OpenAI, 20)]);
        outcomes.push({ status: statusOf(r as PromiseSettledResult<Asked>), ms: performance.now() - t, ...(r?.status === 'fulfilled' ? { result: r.value } : {}) });
      }
    };
    const workers = [0, 1, 2].map(worker);
    await during();
    going = false;
    await Promise.all(workers);
    return outcomes;
  }

  it('Redis stops and restarts, closed mode: 503 at once while it is down, served again after', async () => {
    const c = await cluster('virtual_keys:\n  on_store_error: closed\n');
    const made = await c.admin('POST', '/admin/keys', { name: 'closed', budget: '100', period: 'total' });
    let duringOutage: number[] = [];
    const outcomes = await load(c.clients(made.key as string), async () => {
      await new Promise((r) => setTimeout(r, 300));
      await redis.stop('SIGKILL');
      const mark = Date.now();
      await new Promise((r) => setTimeout(r, 1500));
      duringOutage = [mark, Date.now()];
      await redis.start();
      await new Promise((r) => setTimeout(r, 1500));
    });
    const refused = outcomes.filter((o) => o.status === 503);
    const ok = outcomes.filter((o) => o.status === 200);
    const slowest503 = Math.max(...refused.map((o) => o.ms));
    console.log(`scale-out Redis outage (closed): ${outcomes.length} requests, ${ok.length} served, ${refused.length} refused with 503 (slowest ${slowest503.toFixed(0)} ms), outage ${duringOutage[1]! - duringOutage[0]!} ms`);
    expect(refused.length).toBeGreaterThan(0);
    expect(outcomes.every((o) => o.status === 200 || o.status === 503)).toBe(true);
    expect(slowest503).toBeLessThan(2500);
    // Served again after the restart.
    expect(outcomes.slice(-3).every((o) => o.status === 200)).toBe(true);
    const ledger = await c.ledger();
    const spent = await ledger.spentFemto(`key:${made.id as string}`, 0);
    await ledger.close();
    expect(spent).toBe(ok.reduce((s, o) => s + costOf(o.result as Asked), 0n));
  }, 60_000);

  it('Redis stops and restarts, open mode: served on local limits while it is down, the shared counter reconciled after', async () => {
    const c = await cluster('virtual_keys:\n  on_store_error: open\n');
    const made = await c.admin('POST', '/admin/keys', { name: 'open', budget: '100', period: 'total' });
    const outcomes = await load(c.clients(made.key as string), async () => {
      await new Promise((r) => setTimeout(r, 300));
      await redis.stop('SIGKILL');
      await new Promise((r) => setTimeout(r, 1500));
      await redis.start();
      await new Promise((r) => setTimeout(r, 1500));
    });
    const ok = outcomes.filter((o) => o.status === 200);
    console.log(`scale-out Redis outage (open): ${outcomes.length} requests, ${ok.length} served, ${outcomes.length - ok.length} refused`);
    expect(ok.length).toBe(outcomes.length);
    expect(c.instances.some((i) => /admitting on this instance's own limits/.test(i.stderr()))).toBe(true);
    const shown = ok.reduce((s, o) => s + costOf(o.result as Asked), 0n);
    const ledger = await c.ledger();
    const spent = await ledger.spentFemto(`key:${made.id as string}`, 0);
    await ledger.close();
    expect(Number(spent - shown) / 1e15).toBeCloseTo(0, 6);
    // Every instance replayed its local settlements: Redis's counter has every request's cost.
    const state = await RedisSharedState.open({ url: redis.url });
    let counted = 0;
    for (let i = 0; i < 50; i++) {
      counted = (await state.budget(`key:${made.id as string}`, 'total'))?.spentMicros ?? 0;
      if (counted >= Number(shown / FEMTO_PER_MICRO)) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    await state.close();
    expect(counted).toBeGreaterThanOrEqual(Number(shown / FEMTO_PER_MICRO));
  }, 60_000);

  it('Redis restarted without its data: the budget counters are rebuilt from the ledger, so the budget is not spent twice', async () => {
    const c = await cluster();
    const probe = await c.admin('POST', '/admin/keys', { name: 'probe' });
    const first = await ask(c.clients(probe.key as string)[0] as OpenAI);
    // About ten requests' worst case (a reservation is about three times a request's cost).
    const budgetMicros = 10 * Math.ceil(Number(first.response.headers.get('x-switchboard-cost')) * 1e6 * 3);
    const made = await c.admin('POST', '/admin/keys', { name: 'wiped', budget: (budgetMicros / 1e6).toFixed(6), period: 'total' });
    const clients = c.clients(made.key as string);
    // Spend the budget, one request after another, until it refuses.
    const before: Asked[] = [];
    for (let i = 0; i < 100; i++) {
      const [r] = await Promise.allSettled([ask(clients[i % 3] as OpenAI)]);
      if (r?.status !== 'fulfilled') break;
      before.push(r.value);
    }
    expect(before.length).toBeGreaterThan(5);
    // Every spend row is in Postgres; then Redis loses everything.
    (await c.ledger()).close();
    execFileSync('redis-cli', ['-p', String(redis.port), 'FLUSHALL']);
    const after = await Promise.allSettled(Array.from({ length: 30 }, (_, i) => ask(clients[i % 3] as OpenAI)));
    const admittedAfter = fulfilled(after);
    const ledger = await c.ledger();
    const spent = await ledger.spentFemto(`key:${made.id as string}`, 0);
    await ledger.close();
    console.log(`scale-out Redis wiped: ${before.length} requests spent the budget before, ${admittedAfter.length} of 30 admitted after the wipe; spent $${(Number(spent) / 1e15).toFixed(6)} of a $${(budgetMicros / 1e6).toFixed(6)} budget`);
    expect(after.every((r) => statusOf(r) === 200 || statusOf(r) === 429)).toBe(true);
    expect(spent).toBeLessThanOrEqual(BigInt(budgetMicros) * FEMTO_PER_MICRO);
    expect(c.instances.some((i) => /rebuilding from the ledger/.test(i.stderr()))).toBe(true);
  }, 60_000);

  it('Redis flushed while its queue holds spend Postgres has not taken: the instances send it again, so the ledger equals the costs clients saw', async () => {
    const c = await cluster();
    const made = await c.admin('POST', '/admin/keys', { name: 'flushed', budget: '100', period: 'total' });
    const clients = c.clients(made.key as string);
    const warm = await Promise.all(clients.map((cl) => ask(cl, 5)));
    // With Postgres down, the spend of these waits in the Redis stream; then Redis loses it.
    await postgres.stop();
    const queued: Asked[] = [];
    for (let i = 0; i < 9; i++) queued.push(await ask(clients[i % 3] as OpenAI, 5));
    execFileSync('redis-cli', ['-p', String(redis.port), 'FLUSHALL']);
    await waitFor(() => c.instances.every((i) => /the ledger's queue \(Redis\) lost its data/.test(i.stderr())), 10_000);
    await postgres.start();
    const shown = [...warm, ...queued].reduce((sum, r) => sum + costOf(r), 0n);
    const ledger = await c.ledger();
    let spent = 0n;
    let requests: number | undefined;
    for (let i = 0; i < 100; i++) {
      spent = await ledger.spentFemto(`key:${made.id as string}`, 0);
      requests = (await ledger.usage({ by: 'key' })).find((r) => r.key === made.id)?.requests;
      if (requests === 12) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    await ledger.close();
    console.log(`scale-out Redis flushed with spend queued: ${requests} of 12 requests in the ledger, $${(Number(spent) / 1e15).toFixed(9)}`);
    expect(requests).toBe(12);
    expect(Number(spent - shown) / 1e15).toBeCloseTo(0, 6);
  }, 60_000);

  it('Postgres stops and restarts: requests keep flowing, no recorded spend is lost, the ledger equals the costs clients saw', async () => {
    const c = await cluster();
    const made = await c.admin('POST', '/admin/keys', { name: 'pg', budget: '100', period: 'total' });
    // Warm each instance's key cache.
    const warm = await Promise.all(c.clients(made.key as string).map((cl) => ask(cl, 5)));
    const outcomes = await load(c.clients(made.key as string), async () => {
      await new Promise((r) => setTimeout(r, 300));
      await postgres.stop();
      await new Promise((r) => setTimeout(r, 2000));
      await postgres.start();
      await new Promise((r) => setTimeout(r, 500));
    });
    const ok = outcomes.filter((o) => o.status === 200);
    if (ok.length !== outcomes.length) console.log(outcomes.map((o) => o.status).join(','), c.instances.map((i) => i.stderr().split('\n').filter((l) => !l.includes('POST /v1')).join('\n')).join('\n---\n').slice(0, 3000));
    expect(ok.length).toBe(outcomes.length);
    const ledger = await c.ledger();
    const rows = await ledger.usage({ by: 'key' });
    const spent = await ledger.spentFemto(`key:${made.id as string}`, 0);
    await ledger.close();
    const shown = ok.reduce((s, o) => s + costOf(o.result as Asked), warm.reduce((s, r) => s + costOf(r), 0n));
    const requests = rows.find((r) => r.key === made.id)?.requests;
    if (requests !== ok.length + 3) console.log(c.instances.map((i) => i.stderr()).join('\n---\n').slice(0, 3000));
    console.log(`scale-out Postgres outage: ${outcomes.length} requests during the run, all served; ledger has ${requests} (3 warm-up) totalling $${(Number(spent) / 1e15).toFixed(9)}`);
    expect(requests).toBe(ok.length + 3);
    expect(Number(spent - shown) / 1e15).toBeCloseTo(0, 6);
  }, 60_000);
});

/**
 * A stand-in for the simulator (`SWITCHBOARD_SIM_URL`) whose providers do what each test
 * says: answer at a speed they report in llama.cpp's `timings` (so the figures do not depend
 * on how busy the machine is), or fail with a 500. It publishes no endpoints listing, so the
 * router starts with no priors and can only know a provider's speed from traffic.
 */
async function simStandIn(behaviour: Record<string, { tps: number } | 'fail'>) {
  const calls: Record<string, number> = {};
  const server = await startStandIn((req, res) => {
    const provider = req.url.split('/')[1] ?? '';
    if (!req.url.endsWith('/chat/completions')) return sendJSON(res, 404, { error: { message: 'no listing here' } });
    calls[provider] = (calls[provider] ?? 0) + 1;
    const b = behaviour[provider];
    if (b === undefined || b === 'fail') return sendJSON(res, 500, { error: { message: `${provider} is down`, type: 'server_error' } });
    const id = 'chatcmpl-standin';
    const words = ['Fine', ' thanks', ',', ' and', ' you', '?'];
    const frame = (delta: unknown, extra: Record<string, unknown> = {}) => ({ id, object: 'chat.completion.chunk', created: 1, model: 'llama', choices: [{ index: 0, delta, ...extra }] });
    const frames = [frame({ role: 'assistant', content: '' }), ...words.map((w) => frame({ content: w }))];
    const last = {
      ...frame({}, { finish_reason: 'stop' }),
      usage: { prompt_tokens: 8, completion_tokens: words.length, total_tokens: 8 + words.length },
      timings: { predicted_n: words.length, predicted_ms: (words.length / b.tps) * 1000, predicted_per_second: b.tps },
    };
    return sendSSE(res, sse([...[...frames, last].map((data): { data: unknown } => ({ data })), { data: '[DONE]' }]), [], 0);
  });
  return { server, calls };
}

const asMaster = (instance: Instance) => new OpenAI({ baseURL: `${instance.url}/v1`, apiKey: MASTER, maxRetries: 0, timeout: 30_000 });
/** Stream one reply (the stand-in speaks streams only) and say which provider served it. */
const providerOf = async (client: OpenAI, model: string): Promise<string | null> => {
  const r = await client.chat.completions.create({ model, max_tokens: 20, stream: true, messages: [{ role: 'user', content: 'How are you?' }] }).withResponse();
  for await (const _ of r.data) {
    // read to the end
  }
  return r.response.headers.get('x-switchboard-provider');
};

describe('routing state shared through Redis', () => {
  it('a deployment that trips the breaker on one instance cools down on all: the others send it nothing and use the fallback', async () => {
    const sim = await simStandIn({ 'sim-flaky': 'fail', 'sim-fast': { tps: 200 } });
    try {
      const c = await cluster('', { SWITCHBOARD_SIM_URL: sim.server.url });
      const [a, b, cc] = c.instances.map(asMaster) as [OpenAI, OpenAI, OpenAI];
      const model = 'sim/llama@sim-flaky->sim/llama@sim-fast';
      // Three failed requests on instance A trip its breaker (each one falls back and succeeds).
      for (let i = 0; i < 3; i++) expect(await providerOf(a, model)).toBe('sim-fast');
      expect(sim.calls['sim-flaky']).toBe(3);
      // The trip is published; give it a moment to arrive.
      await new Promise((r) => setTimeout(r, 300));
      const others: (string | null)[] = [];
      for (let i = 0; i < 4; i++) others.push(await providerOf(b, model), await providerOf(cc, model));
      console.log(`scale-out breaker: 3 failures on instance A; then 8 requests on B and C sent ${(sim.calls['sim-flaky'] ?? 0) - 3} to the failing deployment, served by ${[...new Set(others)].join(', ')}`);
      expect(others).toEqual(Array(8).fill('sim-fast'));
      expect(sim.calls['sim-flaky']).toBe(3);
    } finally {
      await sim.server.close();
    }
  }, 60_000);

  it('an instance that starts during a cooldown reads it from Redis', async () => {
    const sim = await simStandIn({ 'sim-flaky': 'fail', 'sim-fast': { tps: 200 } });
    try {
      const c = await cluster('', { SWITCHBOARD_SIM_URL: sim.server.url }, 1);
      const model = 'sim/llama@sim-flaky->sim/llama@sim-fast';
      for (let i = 0; i < 3; i++) await providerOf(asMaster(c.instances[0] as Instance), model);
      await new Promise((r) => setTimeout(r, 300));
      const late = await serve('', { SWITCHBOARD_REDIS_URL: redis.url, SWITCHBOARD_DATABASE_URL: c.database, SWITCHBOARD_SIM_URL: sim.server.url, SWITCHBOARD_INSTANCE: 'late' });
      expect(await providerOf(asMaster(late), model)).toBe('sim-fast');
      expect(sim.calls['sim-flaky']).toBe(3);
    } finally {
      await sim.server.close();
    }
  }, 60_000);

  it('instance B routes @highest-tks-per-sec to the fast provider it learned from traffic on instance A', async () => {
    // sim-cheap is the fast one here (the simulator's profiles say otherwise, and no listing is published).
    const sim = await simStandIn({ 'sim-fast': { tps: 40 }, 'sim-cheap': { tps: 900 } });
    try {
      const c = await cluster('', { SWITCHBOARD_SIM_URL: sim.server.url }, 2);
      const [a, b] = c.instances.map(asMaster) as [OpenAI, OpenAI];
      const model = 'sim/llama@highest-tks-per-sec|providers:sim-fast,sim-cheap';
      const onA: (string | null)[] = [];
      for (let i = 0; i < 8; i++) onA.push(await providerOf(a, model));
      expect(onA.slice(-3)).toEqual(['sim-cheap', 'sim-cheap', 'sim-cheap']);
      // A writes its per-second sums once a second; B takes in a second once it is complete.
      await new Promise((r) => setTimeout(r, 4500));
      const before = { ...sim.calls };
      const onB: (string | null)[] = [];
      for (let i = 0; i < 4; i++) onB.push(await providerOf(b, model));
      console.log(`scale-out measurements: A's picks ${onA.join(',')}; B's first picks ${onB.join(',')} (the slow one got ${(sim.calls['sim-fast'] ?? 0) - (before['sim-fast'] ?? 0)} of B's requests)`);
      expect(onB).toEqual(['sim-cheap', 'sim-cheap', 'sim-cheap', 'sim-cheap']);
    } finally {
      await sim.server.close();
    }
  }, 60_000);
});
