// Start-up of the CLI against a bare `node -e ""`, in one run. Target (catalog issue): within
// 1.3x node + 150 ms.
// - `switchboard --version`: the whole process.
// - `switchboard ask`: from spawn until its request reaches a local OpenAI-style server (its
//   start-up: arguments, .env, registry, model string, request built and sent).
// - for information, `ask` against the in-process simulator until the reply is printed, and
//   until the process exits (Node 20's fetch holds a finished process ~150 ms before exit,
//   whoever calls it).
import { spawn, spawnSync } from 'node:child_process';
import { createServer } from 'node:http';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const BIN = new URL('../dist/cli/bin.js', import.meta.url).pathname;
const RUNS = Number(process.env.BENCH_RUNS ?? 15);
const env = { ...process.env, SWITCHBOARD_HOME: mkdtempSync(join(tmpdir(), 'sb-startup-')), SWITCHBOARD_SIM_TIME_SCALE: '0', NO_COLOR: '1' };
delete env.OPENROUTER_API_KEY;

function median(xs) {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

function time(args, input) {
  const samples = [];
  for (let i = 0; i < RUNS + 2; i++) {
    const t = performance.now();
    const r = spawnSync(process.execPath, args, { env, input, encoding: 'utf8' });
    const ms = performance.now() - t;
    if (r.status !== 0) throw new Error(`${args.join(' ')} failed: ${r.stderr}`);
    if (i >= 2) samples.push(ms); // two warm-up runs fill the file cache
  }
  return median(samples);
}

/** Milliseconds from spawn to the first byte on stdout (median), and to exit. */
async function timeToOutput(args) {
  const first = [];
  const whole = [];
  for (let i = 0; i < RUNS + 2; i++) {
    const t = performance.now();
    const child = spawn(process.execPath, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let printed;
    child.stdout.once('data', () => (printed = performance.now() - t));
    const code = await new Promise((resolve) => child.on('close', resolve));
    if (code !== 0 || printed === undefined) throw new Error(`${args.join(' ')} failed (${code})`);
    if (i >= 2) {
      first.push(printed);
      whole.push(performance.now() - t);
    }
  }
  return { first: median(first), whole: median(whole) };
}

// A local upstream that notes when each request arrives and answers at once.
let arrived;
const body = ['Hi', ' there'].map((t) => `data: ${JSON.stringify({ choices: [{ index: 0, delta: { content: t }, finish_reason: null }] })}\n\n`).join('') +
  `data: ${JSON.stringify({ choices: [], usage: { prompt_tokens: 1, completion_tokens: 2, total_tokens: 3 } })}\n\ndata: [DONE]\n\n`;
const upstream = createServer((req, res) => {
  arrived = performance.now();
  req.resume();
  req.on('end', () => {
    res.writeHead(200, { 'content-type': 'text/event-stream', connection: 'close' });
    res.end(body);
  });
});
await new Promise((resolve) => upstream.listen(0, '127.0.0.1', resolve));
const upstreamEnv = { ...env, OPENROUTER_API_KEY: 'sk-or-bench-0000000000', OPENROUTER_BASE_URL: `http://127.0.0.1:${upstream.address().port}/api/v1` };

async function timeToRequest(args) {
  const samples = [];
  for (let i = 0; i < RUNS + 2; i++) {
    arrived = undefined;
    const t = performance.now();
    const child = spawn(process.execPath, args, { env: upstreamEnv, stdio: 'ignore' });
    const code = await new Promise((resolve) => child.on('close', resolve));
    if (code !== 0 || arrived === undefined) throw new Error(`${args.join(' ')} failed (${code})`);
    if (i >= 2) samples.push(arrived - t);
  }
  return median(samples);
}

const node = time(['-e', '']);
const version = time([BIN, '--version']);
const askStart = await timeToRequest([BIN, 'ask', '-m', 'acme/model', 'hi']);
const { first: ask, whole: askWhole } = await timeToOutput([BIN, 'ask', '-m', 'sim/llama', 'hi']);
upstream.close();
const target = 1.3 * node + 150;
const row = (name, ms) => `  ${name.padEnd(34)} ${ms.toFixed(0).padStart(5)} ms   ratio ${(ms / node).toFixed(2)}x   ${ms <= target ? 'met' : 'MISSED'}`;
console.log(`start-up (median of ${RUNS}), target <= ${target.toFixed(0)} ms (1.3x node + 150 ms)`);
console.log(`  ${'node -e ""'.padEnd(34)} ${node.toFixed(0).padStart(5)} ms`);
console.log(row('switchboard --version', version));
console.log(row('switchboard ask, request sent', askStart));
const info = (name, ms) => `  ${name.padEnd(34)} ${ms.toFixed(0).padStart(5)} ms   (informational)`;
console.log(info('ask -m sim/llama, reply printed', ask));
console.log(info('ask -m sim/llama, process exited', askWhole));
console.log(JSON.stringify({ nodeMs: Math.round(node), versionMs: Math.round(version), askStartMs: Math.round(askStart), askReplyMs: Math.round(ask), askExitMs: Math.round(askWhole), targetMs: Math.round(target) }));
