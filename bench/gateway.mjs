/**
 * bench:gateway: switchboard serve against its peers, one run, same machine, same local
 * upstream (a fixed JSON reply and a 20-chunk SSE reply), load from autocannon.
 *
 * Peers, each its own process: the upstream alone; the 15-line raw proxy (node:http + an
 * undici Pool, bench/raw-proxy.mjs); Portkey's open-source gateway (@portkey-ai/gateway from
 * npm, with bench/portkey-node20-shim.mjs so its streams work on Node 20); switchboard serve with auth (master key), routing (an alias to a model string at a
 * configured provider), the SQLite request log, the access log and metrics on; and the same
 * with a virtual key that has a budget, requests and tokens per minute and a team with its own
 * budget (`switchboard-keyed`: key lookup, one atomic reserve, two ledger rows per request).
 *
 * Prints req/s, p50/p99 latency, server CPU µs per request and RSS for each at 16 and 64
 * connections (and for switchboard the longest and the 99th-percentile event-loop delay during
 * the runs, from its /metrics), then one JSON line with the ratios the targets are set on.
 *
 * Each cell (mode, connections) is measured in BENCH_ROUNDS rounds, every peer once per round,
 * one after another: load on the machine that drifts (other processes on the same two cores)
 * then moves both sides of a ratio alike. A ratio is the median of its rounds' ratios, printed
 * with the lowest and highest round beside it; a row's req/s, CPU and failures are over all its
 * rounds, its latencies the median round's.
 *
 * Environment: BENCH_SECONDS (per run, default 2), BENCH_ROUNDS (default 3), BENCH_SOAK
 * (requests of the RSS soak that follows the timed runs, default 200000),
 * BENCH_TTFB (sequential requests for the time-to-first-byte check, default 300).
 * Then the cached run (bench/gateway-cache.mjs; `--cached` runs it alone).
 */
if (process.argv.includes('--cached')) {
  // The response cache's run alone (bench/gateway-cache.mjs); it also runs after the main one.
  await import('./gateway-cache.mjs');
  process.exit(0);
}
if (process.argv.includes('--shared')) {
  // The shared stores' comparison is its own script (bench/gateway-shared.mjs).
  await import('./gateway-shared.mjs');
  process.exit(0);
}
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { request as httpRequest, Agent } from 'node:http';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import autocannon from 'autocannon';

const SECONDS = Number(process.env.BENCH_SECONDS ?? 2);
const ROUNDS = Math.max(1, Number(process.env.BENCH_ROUNDS ?? 3));
const SOAK = Number(process.env.BENCH_SOAK ?? 200_000);
const TTFB_SAMPLES = Number(process.env.BENCH_TTFB ?? 300);
const CONNECTIONS = [16, 64];
const MASTER_KEY = 'sk-bench-master-key-0123456789';
const here = new URL('.', import.meta.url).pathname;
const root = new URL('..', import.meta.url).pathname;
const TICK_US = 1e6 / 100; // /proc times are in clock ticks of 10 ms

function freePort() {
  return new Promise((resolve) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

/** Start a server process and wait until it says where it listens. */
function startProcess(name, args, { env = {}, ready, url: knownURL } = {}) {
  const child = spawn(process.execPath, args, { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${name} did not start: ${out.slice(-500)}`)), 30_000);
    const check = (d) => {
      // Keep only the start of the output: the access log goes on for every request.
      if (out.length < 20_000) out += d;
      const m = /listening on (http:\/\/[\d.:]+)/.exec(out);
      if ((ready && ready.test(out)) || m) {
        clearTimeout(timer);
        child.stdout.removeListener('data', check);
        child.stderr.removeListener('data', check);
        child.stdout.resume();
        child.stderr.resume();
        resolve({ name, child, pid: child.pid, url: knownURL ?? m[1] });
      }
    };
    child.stdout.setEncoding('utf8').on('data', check);
    child.stderr.setEncoding('utf8').on('data', check);
    child.on('exit', (code) => reject(new Error(`${name} exited (${code}): ${out.slice(-500)}`)));
  });
}

function cpuTicks(pid) {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return Number(fields[11]) + Number(fields[12]); // utime + stime
}

function rssMb(pid) {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) / 1024 : NaN;
}

const body = (stream) => JSON.stringify({ model: 'bench', stream, messages: [{ role: 'user', content: 'Say something short.' }] });

function peerRequest(peer, upstreamURL, stream) {
  const headers = { 'content-type': 'application/json' };
  let payload = body(stream);
  if (peer.name === 'portkey') {
    headers['x-portkey-provider'] = 'openai';
    headers['x-portkey-custom-host'] = `${upstreamURL}/v1`;
    headers.authorization = 'Bearer sk-upstream-not-checked';
    payload = payload.replace('"bench"', '"bench-model"');
  } else if (peer.name === 'switchboard') {
    headers.authorization = `Bearer ${MASTER_KEY}`;
  } else if (peer.name === 'switchboard-keyed') {
    headers.authorization = `Bearer ${virtualKey}`;
  }
  return { url: `${peer.url}/v1/chat/completions`, method: 'POST', headers, body: payload };
}

/** One request through a peer, to check it answers what the upstream sent before timing it. */
async function check(peer, upstreamURL, stream) {
  const r = peerRequest(peer, upstreamURL, stream);
  const res = await fetch(r.url, { method: 'POST', headers: r.headers, body: r.body });
  const text = await res.text();
  const expected = stream ? 'word19' : 'quick brown fox';
  if (res.status !== 200 || !text.includes(expected)) throw new Error(`${peer.name} (${stream ? 'stream' : 'json'}) answered ${res.status}: ${text.slice(0, 300)}`);
}

/** Switchboard's event-loop lag gauges (seconds); each scrape starts a new window. */
async function loopLag(peer) {
  const text = await (await fetch(`${peer.url}/metrics`)).text();
  const read = (name) => Number(new RegExp(`^nodejs_eventloop_lag_${name}_seconds (\\S+)$`, 'm').exec(text)?.[1] ?? Number.NaN);
  return { max: read('max'), p99: read('p99') };
}

async function load(peer, upstreamURL, stream, connections, opts = {}) {
  const r = peerRequest(peer, upstreamURL, stream);
  const gateway = peer.name.startsWith('switchboard');
  if (gateway) await loopLag(peer);
  const cpu0 = cpuTicks(peer.pid);
  const result = await autocannon({ url: r.url, method: 'POST', headers: r.headers, body: r.body, connections, pipelining: 1, ...(opts.amount ? { amount: opts.amount } : { duration: SECONDS }) });
  const cpu1 = cpuTicks(peer.pid);
  const total = result.requests.total;
  const lag = gateway ? await loopLag(peer) : { max: Number.NaN, p99: Number.NaN };
  return {
    loopMaxMs: lag.max * 1000,
    loopP99Ms: lag.p99 * 1000,
    rps: total / (opts.amount ? result.duration : SECONDS),
    p50: result.latency.p50,
    p99: result.latency.p99,
    cpuUs: total > 0 ? ((cpu1 - cpu0) * TICK_US) / total : NaN,
    rss: rssMb(peer.pid),
    total,
    failed: result.errors + result.non2xx + result.timeouts,
  };
}

/** Median milliseconds from sending a streaming request to the first byte of its body, one at a time. */
async function ttfb(peer, upstreamURL, samples) {
  const agent = new Agent({ keepAlive: true, maxSockets: 1 });
  const r = peerRequest(peer, upstreamURL, true);
  const url = new URL(r.url);
  const times = [];
  for (let i = 0; i < samples; i++) {
    times.push(
      await new Promise((resolve, reject) => {
        const t0 = process.hrtime.bigint();
        const req = httpRequest({ agent, host: url.hostname, port: url.port, path: url.pathname, method: 'POST', headers: { ...r.headers, 'content-length': Buffer.byteLength(r.body) } }, (res) => {
          let first;
          res.on('data', () => (first ??= process.hrtime.bigint()));
          res.on('end', () => resolve(Number(first - t0) / 1e6));
        });
        req.on('error', reject);
        req.end(r.body);
      }),
    );
  }
  agent.destroy();
  times.sort((a, b) => a - b);
  return times[Math.floor(times.length / 2)];
}

/** The key `switchboard-keyed` is called with, made by `switchboard keys create` at start. */
let virtualKey = '';

const fmt = (n, d = 0) => (Number.isFinite(n) ? n.toFixed(d) : '-');

async function main() {
  const home = mkdtempSync(join(tmpdir(), 'sb-bench-gw-'));
  const upstream = await startProcess('upstream', [join(here, 'gateway-upstream.mjs')]);
  const raw = await startProcess('raw proxy', [join(here, 'raw-proxy.mjs')], { env: { UPSTREAM_URL: upstream.url } });
  const portkeyPort = await freePort();
  const portkeyMain = join(root, 'node_modules/@portkey-ai/gateway/build/start-server.js');
  const portkey = await startProcess('portkey', ['--import', join(here, 'portkey-node20-shim.mjs'), portkeyMain, `--port=${portkeyPort}`, '--headless'], { ready: /Ready for connections/, url: `http://127.0.0.1:${portkeyPort}`, env: { NODE_ENV: 'production' } });
  const config = join(home, 'gateway.yaml');
  writeFileSync(
    config,
    [
      `master_key: ${MASTER_KEY}`,
      'providers:',
      '  - name: local',
      '    protocol: openai',
      `    base_url: ${upstream.url}/v1`,
      'aliases:',
      '  bench: bench-model@local',
      'limits:',
      '  max_in_flight: 4096',
    ].join('\n'),
  );
  const configText = readFileSync(config, 'utf8');
  writeFileSync(config, `${configText}\nvirtual_keys:\n  enabled: false\n`);
  const switchboard = await startProcess('switchboard', [join(root, 'dist/cli/bin.js'), 'serve', '--config', config, '--port', '0'], { env: { SWITCHBOARD_HOME: home } });
  // The same gateway with virtual keys on, called with a key that has a budget and limits.
  const keyedHome = mkdtempSync(join(tmpdir(), 'sb-bench-gw-keyed-'));
  const keyedConfig = join(keyedHome, 'gateway.yaml');
  // The local upstream's model has no catalog price: its budget is charged at $0, with every check still made.
  writeFileSync(keyedConfig, `${configText}\nvirtual_keys:\n  unpriced_models: free\n`);
  const cli = (...args) => {
    const r = spawnSync(process.execPath, [join(root, 'dist/cli/bin.js'), ...args, '--config', keyedConfig], { env: { ...process.env, SWITCHBOARD_HOME: keyedHome }, encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`switchboard ${args.join(' ')}: ${r.stderr}`);
    return r.stdout.trim();
  };
  cli('teams', 'create', 'bench', '--budget', '1000000', '--period', 'month', '--rpm', '100000000');
  virtualKey = cli('keys', 'create', '--name', 'bench', '--team', 'bench', '--budget', '1000000', '--period', 'month', '--rpm', '100000000', '--tpm', '100000000000');
  const keyed = await startProcess('switchboard-keyed', [join(root, 'dist/cli/bin.js'), 'serve', '--config', keyedConfig, '--port', '0'], { env: { SWITCHBOARD_HOME: keyedHome } });
  const peers = [
    { ...upstream, name: 'upstream' },
    { ...raw, name: 'raw-proxy' },
    { ...portkey, name: 'portkey' },
    { ...switchboard, name: 'switchboard' },
    { ...keyed, name: 'switchboard-keyed' },
  ];
  const procs = [upstream, raw, portkey, switchboard, keyed];
  try {
    for (const p of peers) for (const stream of [false, true]) await check(p, upstream.url, stream);
    // Warm every peer (JIT, connection pools) before anything is timed.
    for (const p of peers) for (const stream of [false, true]) await load(p, upstream.url, stream, 16, { amount: 4000 });
    const rssStart = rssMb(switchboard.pid);

    /** Every round's result, by `peer/mode/connections`. */
    const rounds = {};
    for (const stream of [false, true]) {
      for (const connections of CONNECTIONS) {
        for (let round = 0; round < ROUNDS; round++) {
          for (const p of peers) (rounds[`${p.name}/${stream ? 'stream' : 'json'}/${connections}`] ??= []).push(await load(p, upstream.url, stream, connections));
        }
      }
    }
    const median = (values) => {
      const sorted = [...values].sort((a, b) => a - b);
      const mid = sorted.length >> 1;
      return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
    };
    /** A peer's cell over its rounds: requests and CPU summed, latencies of the median round. */
    const results = {};
    for (const [key, runs] of Object.entries(rounds)) {
      const total = runs.reduce((n, r) => n + r.total, 0);
      results[key] = {
        rps: total / (SECONDS * runs.length),
        p50: median(runs.map((r) => r.p50)),
        p99: median(runs.map((r) => r.p99)),
        cpuUs: total > 0 ? runs.reduce((n, r) => n + r.cpuUs * r.total, 0) / total : NaN,
        rss: runs[runs.length - 1].rss,
        loopMaxMs: Math.max(...runs.map((r) => r.loopMaxMs)),
        loopP99Ms: median(runs.map((r) => r.loopP99Ms)),
        total,
        failed: runs.reduce((n, r) => n + r.failed, 0),
      };
    }
    const rows = [['peer', 'mode', 'conns', 'req/s', 'p50 ms', 'p99 ms', 'cpu µs/req', 'rss MB', 'loop max/p99 ms', 'failed']];
    for (const stream of [false, true]) {
      for (const connections of CONNECTIONS) {
        for (const p of peers) {
          const r = results[`${p.name}/${stream ? 'stream' : 'json'}/${connections}`];
          const loop = Number.isFinite(r.loopMaxMs) ? `${fmt(r.loopMaxMs, 1)}/${fmt(r.loopP99Ms, 1)}` : '-';
          rows.push([p.name, stream ? 'stream' : 'json', String(connections), fmt(r.rps), fmt(r.p50, 1), fmt(r.p99, 1), fmt(r.cpuUs), fmt(r.rss, 1), loop, String(r.failed)]);
        }
      }
    }
    process.stdout.write(`${ROUNDS} rounds of ${SECONDS} s per peer and cell\n`);
    const widths = rows[0].map((_, c) => Math.max(...rows.map((r) => r[c].length)));
    process.stdout.write(`${rows.map((r) => r.map((cell, c) => (c < 2 ? cell.padEnd(widths[c]) : cell.padStart(widths[c]))).join('  ')).join('\n')}\n\n`);

    const upTtfb = await ttfb(peers[0], upstream.url, TTFB_SAMPLES);
    const sbTtfb = await ttfb(peers[3], upstream.url, TTFB_SAMPLES);
    const rawTtfb = await ttfb(peers[1], upstream.url, TTFB_SAMPLES);
    process.stdout.write(`time to first byte (median of ${TTFB_SAMPLES}, one at a time): upstream ${fmt(upTtfb, 3)} ms, raw proxy ${fmt(rawTtfb, 3)} ms, switchboard ${fmt(sbTtfb, 3)} ms\n`);

    // RSS over a long run: after the timed runs (the heap has grown to its working size by
    // then), BENCH_SOAK more requests in four parts, JSON and streamed in turn, with RSS sampled
    // every 250 ms. A collection moves RSS by tens of MB either way, so growth is the median of
    // the last quarter's samples less the first quarter's, not two single readings.
    const soFar = Object.entries(results).filter(([k]) => k.startsWith('switchboard/')).reduce((n, [, r]) => n + r.total, 0);
    const part = Math.ceil(SOAK / 4);
    const rssSettled = rssMb(switchboard.pid);
    const samples = [];
    const sampler = setInterval(() => samples.push(rssMb(switchboard.pid)), 250);
    if (part > 0) for (let i = 0; i < 4; i++) await load(peers[3], upstream.url, i % 2 === 1, 64, { amount: part });
    clearInterval(sampler);
    const rssEnd = rssMb(switchboard.pid);
    const quarter = Math.max(1, Math.floor(samples.length / 4));
    const soakGrowth = samples.length >= 8 ? median(samples.slice(-quarter)) - median(samples.slice(0, quarter)) : Number.NaN;
    process.stdout.write(
      `switchboard RSS: ${fmt(rssStart, 1)} MB after warm-up, ${fmt(rssSettled, 1)} MB after the timed runs (${soFar} requests), ${fmt(rssEnd, 1)} MB after ${4 * part} more; ` +
        `over those, the median of the last quarter's ${samples.length} samples less the first quarter's: ${fmt(soakGrowth, 1)} MB\n`,
    );

    const at = (name, mode) => results[`${name}/${mode}/64`];
    const round3 = (x) => Number(x.toFixed(3));
    /** Per round, a's req/s over b's, in one mode at 64 connections. */
    const perRound = (a, b, mode) => rounds[`${a}/${mode}/64`].map((r, i) => r.rps / rounds[`${b}/${mode}/64`][i].rps);
    /** The median of the rounds' ratios (the lower of the two modes' when `mode` is 'both'). */
    const ratio = (a, b, mode) => round3(mode === 'both' ? Math.min(median(perRound(a, b, 'json')), median(perRound(a, b, 'stream'))) : median(perRound(a, b, mode)));
    const span = (a, b, mode) => perRound(a, b, mode).map(round3).sort((x, y) => x - y);
    const summary = {
      nonStreamVsRawProxy: ratio('switchboard', 'raw-proxy', 'json'),
      streamVsRawProxy: ratio('switchboard', 'raw-proxy', 'stream'),
      keyedVsRawProxy: ratio('switchboard-keyed', 'raw-proxy', 'both'),
      keyedVsPlain: ratio('switchboard-keyed', 'switchboard', 'both'),
      vsPortkey: ratio('switchboard', 'portkey', 'both'),
      roundRatios: {
        nonStreamVsRawProxy: span('switchboard', 'raw-proxy', 'json'),
        streamVsRawProxy: span('switchboard', 'raw-proxy', 'stream'),
        keyedVsRawProxyJson: span('switchboard-keyed', 'raw-proxy', 'json'),
        keyedVsRawProxyStream: span('switchboard-keyed', 'raw-proxy', 'stream'),
      },
      addedTtfbMs: Number((sbTtfb - upTtfb).toFixed(3)),
      cpuUsPerRequest: Math.round(Math.max(at('switchboard', 'json').cpuUs, at('switchboard', 'stream').cpuUs)),
      cpuUsAboveRawProxy: Math.round(Math.max(at('switchboard', 'json').cpuUs - at('raw-proxy', 'json').cpuUs, at('switchboard', 'stream').cpuUs - at('raw-proxy', 'stream').cpuUs)),
      rssGrowthMbPer100k: part > 0 ? Number(((soakGrowth / (4 * part)) * 100_000).toFixed(2)) : null,
      // From the warm-up on: the heap growing to its working size, as well as any leak.
      rssGrowthFromWarmupMb: Number((rssEnd - rssStart).toFixed(1)),
      rawProxyCpuUsPerRequest: Math.round(Math.max(at('raw-proxy', 'json').cpuUs, at('raw-proxy', 'stream').cpuUs)),
      portkeyCpuUsPerRequest: Math.round(Math.max(at('portkey', 'json').cpuUs, at('portkey', 'stream').cpuUs)),
      failedRequests: Object.values(results).reduce((n, r) => n + r.failed, 0),
      targets: { nonStreamVsRawProxy: 0.8, streamVsRawProxy: 0.8, keyedVsRawProxy: 0.8, vsPortkey: 10, addedTtfbMs: 1, cpuUsPerRequest: 100, rssGrowthMbPer100k: 10 },
    };
    process.stdout.write(`${JSON.stringify(summary)}\n`);
  } finally {
    for (const p of procs) p.child.kill('SIGTERM');
  }
}

await main();
// The cached run: what a response-cache hit costs (bench/gateway-cache.mjs).
await import('./gateway-cache.mjs');
