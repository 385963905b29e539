/**
 * bench:gateway, cached run (also alone: `node bench/gateway.mjs --cached`): what a response-cache
 * hit costs the gateway. Two `switchboard serve` processes on the same config (master key, an
 * alias to a local provider, the SQLite request log and the access log on), one with
 * `response_cache: {}` (memory store) and one without; the peer is the local upstream itself,
 * a static reply server: the least any answer from memory can cost.
 *
 * Prints, for JSON and streamed replies: server CPU µs per request under load (16
 * connections, from /proc), and the median of `x-switchboard-overhead-ms` over sequential
 * hits (the gateway's own clock from receiving the request to writing the answer: its whole
 * server time, since a hit waits on no upstream). Target: a hit < 0.3 ms of server time.
 * BENCH_SECONDS per load run (default 3), BENCH_SAMPLES sequential requests (default 400).
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import autocannon from 'autocannon';

const SECONDS = Number(process.env.BENCH_SECONDS ?? 3);
const SAMPLES = Number(process.env.BENCH_SAMPLES ?? 400);
const MASTER_KEY = 'sk-bench-master-key-0123456789';
const TARGET_MS = 0.3;
const here = new URL('.', import.meta.url).pathname;
const bin = new URL('../dist/cli/bin.js', import.meta.url).pathname;
const children = [];

/** Start a node process and resolve with its URL once it prints `listening on`. */
function start(args, env = {}) {
  const child = spawn(process.execPath, args, { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  children.push(child);
  return new Promise((resolve, reject) => {
    let out = '';
    const seen = (d) => {
      if (out.length < 20_000) out += d;
      const m = /listening on (http:\/\/[\d.:]+)/.exec(out);
      if (m) resolve({ url: m[1], pid: child.pid });
    };
    child.stdout.setEncoding('utf8').on('data', seen);
    child.stderr.setEncoding('utf8').on('data', seen);
    child.on('exit', (code) => reject(new Error(`${args.join(' ')} exited (${code}): ${out.slice(-400)}`)));
  });
}

const ticks = (pid) => {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
  return Number(fields[11]) + Number(fields[12]);
};

function request(peer, stream) {
  const headers = { 'content-type': 'application/json', authorization: `Bearer ${MASTER_KEY}` };
  return { url: `${peer.url}/v1/chat/completions`, method: 'POST', headers, body: JSON.stringify({ model: 'bench', stream, messages: [{ role: 'user', content: 'Say something short.' }] }) };
}

async function cpuPerRequest(peer, stream) {
  const before = ticks(peer.pid);
  const r = await autocannon({ ...request(peer, stream), connections: 16, duration: SECONDS });
  return { cpuUs: (((ticks(peer.pid) - before) * 10_000) / r.requests.total), rps: r.requests.total / SECONDS, failed: r.errors + r.non2xx };
}

/** Median x-switchboard-overhead-ms and the x-switchboard-cache header seen, over sequential requests. */
async function serverTime(peer, stream) {
  const times = [];
  let cache = '';
  for (let i = 0; i < SAMPLES; i++) {
    const r = request(peer, stream);
    const res = await fetch(r.url, r);
    await res.text();
    cache = res.headers.get('x-switchboard-cache') ?? 'none';
    times.push(Number(res.headers.get('x-switchboard-overhead-ms')));
  }
  times.sort((a, b) => a - b);
  return { ms: times[Math.floor(times.length / 2)], cache };
}

try {
  const upstream = await start([join(here, 'gateway-upstream.mjs')]);
  const config = (home, extra) => {
    const file = join(home, 'gateway.yaml');
    writeFileSync(file, [`master_key: ${MASTER_KEY}`, 'providers:', `  - { name: local, protocol: openai, base_url: "${upstream.url}/v1" }`, 'aliases:', '  bench: bench-model@local', 'virtual_keys:', '  enabled: false', ...extra].join('\n'));
    return file;
  };
  const peers = {};
  for (const [name, extra] of [['cached', ['response_cache: {}']], ['live', []]]) {
    const home = mkdtempSync(join(tmpdir(), `sb-bench-cache-${name}-`));
    peers[name] = await start([bin, 'serve', '--config', config(home, extra), '--port', '0'], { SWITCHBOARD_HOME: home });
  }
  peers.upstream = { ...upstream, url: upstream.url };
  const rows = [];
  const figures = {};
  for (const stream of [false, true]) {
    const mode = stream ? 'stream' : 'json';
    for (const name of ['cached', 'live', 'upstream']) await autocannon({ ...request(peers[name], stream), connections: 16, amount: 2000 }); // warm-up (and the entry)
    const time = name => (name === 'upstream' ? Promise.resolve({ ms: NaN, cache: '-' }) : serverTime(peers[name], stream));
    for (const name of ['cached', 'live', 'upstream']) {
      const t = await time(name);
      const load = await cpuPerRequest(peers[name], stream);
      figures[`${name}/${mode}`] = { ...load, serverMs: t.ms, cache: t.cache };
      rows.push(`  ${name.padEnd(9)} ${mode.padEnd(7)} cache=${t.cache.padEnd(5)} server time ${Number.isFinite(t.ms) ? `${t.ms.toFixed(3)} ms` : '   -    '}   cpu ${load.cpuUs.toFixed(0).padStart(5)} µs/req   ${load.rps.toFixed(0).padStart(6)} req/s   failed ${load.failed}`);
    }
  }
  console.log(`response-cache hits through the gateway (target: < ${TARGET_MS} ms of server time per hit)`);
  console.log(rows.join('\n'));
  const hitMs = Math.max(figures['cached/json'].serverMs, figures['cached/stream'].serverMs);
  const summary = {
    cachedHitServerMs: hitMs,
    cachedHitMet: hitMs < TARGET_MS,
    hitCpuVsLive: Number((Math.max(figures['cached/json'].cpuUs / figures['live/json'].cpuUs, figures['cached/stream'].cpuUs / figures['live/stream'].cpuUs)).toFixed(3)),
    hitCpuVsUpstream: Number((Math.max(figures['cached/json'].cpuUs / figures['upstream/json'].cpuUs, figures['cached/stream'].cpuUs / figures['upstream/stream'].cpuUs)).toFixed(3)),
    hitCpuUs: Math.round(Math.max(figures['cached/json'].cpuUs, figures['cached/stream'].cpuUs)),
    targets: { cachedHitServerMs: TARGET_MS },
  };
  console.log(JSON.stringify(summary));
} finally {
  for (const c of children) c.kill('SIGTERM');
}
