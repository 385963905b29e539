/**
 * bench:gateway --shared: the same keyed load (a virtual key with a budget, requests and
 * tokens per minute) against one `switchboard serve` on the embedded stores (memory and
 * SQLite), one on Redis and Postgres, and two on Redis and Postgres (load split evenly).
 * Upstream: the built-in simulator with no delay, so the figures are the gateway's own.
 *
 * Prints req/s, p99 latency, the gateways' CPU µs per request (steadier than req/s on a busy
 * machine), and per request:
 * - Redis round trips: the sequential round trips a request waited for, counted by the gateway's
 *   own Redis clients (GET /metrics, switchboard_redis_round_trips_total: a command sent after
 *   another's reply is one more; commands in flight together are one; see src/store/redis-trace.ts);
 * - Redis commands: those the requests sent, and those sent in the background (the queue's
 *   consumer, the shared routing state, the clock), from switchboard_redis_commands_total{path};
 * - from Redis's side (INFO commandstats), the scripts it ran per request (EVALSHA and EVAL, which
 *   only clients send) and the other commands clients sent, by name; XADD is left out of those,
 *   since the settle script runs it inside Redis and commandstats counts both alike.
 * Then one JSON line with the ratio the target is set on (Redis-backed one instance / embedded
 * >= 0.7). Needs redis-server and postgresql installed (apt-get install redis-server postgresql).
 * BENCH_SECONDS per run (default 4), BENCH_CONNECTIONS (default 32).
 */
import { execFileSync, spawn } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import autocannon from 'autocannon';

const SECONDS = Number(process.env.BENCH_SECONDS ?? 4);
const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS ?? 32);
const MASTER = 'sk-bench-master-key-0123456789';
const BIN = new URL('../dist/cli/bin.js', import.meta.url).pathname;
const PG_BIN = ['/usr/lib/postgresql/17/bin', '/usr/lib/postgresql/16/bin', '/usr/lib/postgresql/15/bin'].find((d) => existsSync(join(d, 'initdb')));
const children = [];
const dirs = [];

const freePort = () =>
  new Promise((resolve) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const tmp = (name) => {
  const d = mkdtempSync(join(tmpdir(), name));
  dirs.push(d);
  return d;
};
async function until(check, what) {
  for (let i = 0; i < 300; i++) {
    try {
      if (check()) return;
    } catch {
      /* not yet */
    }
    await sleep(50);
  }
  throw new Error(`${what} did not start`);
}

async function startRedis() {
  const port = await freePort();
  children.push(spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--dir', tmp('sb-bench-redis-'), '--appendonly', 'yes', '--save', ''], { stdio: 'ignore' }));
  const cli = (...args) => execFileSync('redis-cli', ['-p', String(port), ...args], { encoding: 'utf8' });
  await until(() => cli('ping').trim() === 'PONG', 'redis-server');
  return { url: `redis://127.0.0.1:${port}`, cli };
}

async function startPostgres() {
  const dir = tmp('sb-bench-pg-');
  chmodSync(dir, 0o777);
  const as = (cmd, args) => (process.getuid() === 0 ? ['setpriv', ['--reuid=postgres', '--regid=postgres', '--init-groups', cmd, ...args]] : [cmd, args]);
  const [ic, ia] = as(join(PG_BIN, 'initdb'), ['-D', join(dir, 'data'), '-U', 'postgres', '--auth=trust', '--no-sync']);
  execFileSync(ic, ia, { stdio: 'ignore' });
  const port = await freePort();
  const [pc, pa] = as(join(PG_BIN, 'postgres'), ['-D', join(dir, 'data'), '-p', String(port), '-h', '127.0.0.1', '-k', dir]);
  children.push(spawn(pc, pa, { stdio: 'ignore' }));
  const psql = (sql) => execFileSync('psql', ['-h', '127.0.0.1', '-p', String(port), '-U', 'postgres', '-tAc', sql], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
  await until(() => psql('SELECT 1').trim() === '1', 'postgres');
  let n = 0;
  return { database: () => (psql(`CREATE DATABASE bench${++n}`), `postgres://postgres@127.0.0.1:${port}/bench${n}`) };
}

async function serve(env) {
  const home = tmp('sb-bench-home-');
  writeFileSync(join(home, 'gateway.yaml'), `master_key: ${MASTER}\nlogging:\n  access_log: false\n  requests: false\n`);
  const child = spawn(process.execPath, [BIN, 'serve', '--port', '0', '--config', join(home, 'gateway.yaml')], {
    env: { PATH: process.env.PATH, HOME: home, SWITCHBOARD_HOME: home, SWITCHBOARD_METRICS: 'memory', SWITCHBOARD_SIM_TIME_SCALE: '0', SWITCHBOARD_KEY_PEPPER: 'bench', ...env },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  children.push(child);
  let err = '';
  child.stderr.setEncoding('utf8').on('data', (d) => (err.length < 5000 ? (err += d) : undefined));
  await until(() => /listening on http/.test(err), `switchboard serve (${err})`);
  return { url: /listening on (http:\/\/[\d.:]+)/.exec(err)[1], pid: child.pid };
}

/** utime + stime of a process, in µs (/proc ticks are 10 ms). */
function cpuMicros(pid) {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(f[11]) + Number(f[12])) * 10_000;
}

/** The gateway's own count of its Redis traffic (GET /metrics). */
async function redisTraffic(url) {
  const text = await (await fetch(`${url}/metrics`)).text();
  const value = (re) => Number(re.exec(text)?.[1] ?? 0);
  return {
    roundTrips: value(/^switchboard_redis_round_trips_total (\d+)/m),
    commands: value(/^switchboard_redis_commands_total\{path="request"\} (\d+)/m),
    background: value(/^switchboard_redis_commands_total\{path="background"\} (\d+)/m),
    // Every request the gateway answered, those the load generator cut off at its end included.
    requests: [...text.matchAll(/^switchboard_requests_total\{[^}]*\} (\d+)/gm)].reduce((s, m) => s + Number(m[1]), 0),
  };
}

async function makeKey(url) {
  const res = await fetch(`${url}/admin/keys`, { method: 'POST', headers: { authorization: `Bearer ${MASTER}`, 'content-type': 'application/json' }, body: JSON.stringify({ name: `bench-${Date.now()}`, budget: 100000, period: 'month', rpm: 10_000_000, tpm: 1_000_000_000 }) });
  return (await res.json()).key;
}

const body = JSON.stringify({ model: 'sim/llama@sim-fast', max_tokens: 16, messages: [{ role: 'user', content: 'Say hi.' }] });
function load(url, key, connections) {
  return autocannon({ url: `${url}/v1/chat/completions`, method: 'POST', connections, duration: SECONDS, headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' }, body });
}

/** Commands only switchboard's clients send (the rest of commandstats, XADD included, also runs inside its scripts). */
const CLIENT_COMMANDS = new Set(['evalsha', 'eval', 'xreadgroup', 'xautoclaim', 'xlen', 'xrange', 'xgroup|create', 'ping', 'subscribe']);

function commandCalls(cli) {
  const stats = {};
  for (const line of cli('INFO', 'commandstats').split('\n')) {
    const m = /^cmdstat_(\w+(?:\|\w+)?):calls=(\d+)/.exec(line.trim());
    if (m) stats[m[1]] = Number(m[2]);
  }
  return stats;
}

/** Load spread over the instances; one result line. */
async function run(name, gateways, redis) {
  const urls = gateways.map((g) => g.url);
  const key = await makeKey(urls[0]);
  // Warm up (key caches, budget seeding, scripts loaded).
  await Promise.all(urls.map((u) => autocannon({ url: `${u}/v1/chat/completions`, method: 'POST', connections: 4, amount: 200, headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' }, body })));
  const before = redis ? commandCalls(redis.cli) : {};
  const traffic0 = await Promise.all(urls.map(redisTraffic));
  const cpu0 = gateways.map((g) => cpuMicros(g.pid));
  const results = await Promise.all(urls.map((u) => load(u, key, Math.max(1, Math.round(CONNECTIONS / urls.length)))));
  const cpu = gateways.reduce((s, g, i) => s + cpuMicros(g.pid) - cpu0[i], 0);
  // The requests cut off when the load stopped are settled meanwhile.
  await sleep(500);
  const traffic1 = await Promise.all(urls.map(redisTraffic));
  const after = redis ? commandCalls(redis.cli) : {};
  const requests = results.reduce((s, r) => s + r.requests.total, 0);
  // The scrapes themselves send no Redis command, so everything counted between them is the load's;
  // per request of those the gateways answered (a request cut off at the end sent its commands too).
  const counted = (field) => traffic1.reduce((s, t, i) => s + t[field] - traffic0[i][field], 0);
  const perRequest = (field) => counted(field) / counted('requests');
  const non2xx = results.reduce((s, r) => s + r.non2xx + r.errors, 0);
  const delta = (k) => (after[k] ?? 0) - (before[k] ?? 0);
  const row = {
    name,
    reqPerSec: Math.round(requests / SECONDS),
    p99Ms: Math.max(...results.map((r) => r.latency.p99)),
    non2xx,
    cpuUsPerReq: Math.round(cpu / requests),
    ...(redis
      ? {
          redisRoundTripsPerReq: +perRequest('roundTrips').toFixed(2),
          redisCommandsPerReq: +perRequest('commands').toFixed(2),
          redisBackgroundPerReq: +perRequest('background').toFixed(2),
          redisScriptsPerReq: +((delta('evalsha') + delta('eval')) / counted('requests')).toFixed(2),
        }
      : {}),
  };
  // Where the round trips went, per request, the busiest first (the queue's consumers, the shared routing state).
  if (redis) row.redisByCommand = Object.fromEntries(Object.keys(after).filter((k) => CLIENT_COMMANDS.has(k) && delta(k) > 0).sort((a, b) => delta(b) - delta(a)).slice(0, 8).map((k) => [k, +(delta(k) / counted('requests')).toFixed(2)]));
  console.log(
    `${name.padEnd(28)} ${String(row.reqPerSec).padStart(7)} req/s  p99 ${String(row.p99Ms).padStart(4)} ms  ${String(row.cpuUsPerReq).padStart(5)} CPU µs/req  ${non2xx} non-2xx` +
      (redis
        ? `\n${''.padEnd(28)} Redis round trips per request: ${row.redisRoundTripsPerReq} (sequential)  Redis commands per request: ${row.redisCommandsPerReq} on the request's path, ${row.redisBackgroundPerReq} in the background; Redis ran ${row.redisScriptsPerReq} scripts per request (client commands per request: ${JSON.stringify(row.redisByCommand)})`
        : ''),
  );
  return row;
}

try {
  if (!PG_BIN || !existsSync('/usr/bin/redis-server')) throw new Error('bench:gateway --shared needs redis-server and postgresql: apt-get update && apt-get install -y redis-server postgresql');
  const [redis, pg] = await Promise.all([startRedis(), startPostgres()]);
  console.log(`bench:gateway --shared: ${SECONDS} s per run, ${CONNECTIONS} connections, a keyed request to the simulator (no delay)`);
  const embedded = await run('embedded (memory + SQLite)', [await serve({})]);
  const db1 = pg.database();
  const one = await run('1 instance, Redis + Postgres', [await serve({ SWITCHBOARD_REDIS_URL: redis.url, SWITCHBOARD_DATABASE_URL: db1 })], redis);
  const db2 = pg.database();
  const shared = { SWITCHBOARD_REDIS_URL: redis.url, SWITCHBOARD_DATABASE_URL: db2 };
  const two = await run('2 instances, Redis + Postgres', await Promise.all([serve({ ...shared, SWITCHBOARD_INSTANCE: 'a' }), serve({ ...shared, SWITCHBOARD_INSTANCE: 'b' })]), redis);
  console.log(JSON.stringify({ redisOneVsEmbedded: +(one.reqPerSec / embedded.reqPerSec).toFixed(2), redisTwoVsEmbedded: +(two.reqPerSec / embedded.reqPerSec).toFixed(2), target: 0.7, embedded, one, two }));
} finally {
  for (const c of children.reverse()) c.kill('SIGINT');
  await sleep(500);
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
}
