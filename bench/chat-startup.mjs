// `npm run bench:chat`: how fast `switchboard chat` is ready, and whether its rendering keeps up.
//  1. Start-up: spawn to the prompt (the chat writes "[chat-ready]" to stderr right after it
//     shows the prompt when SWITCHBOARD_CHAT_READY_MARK=1), against `node -e ""` to exit.
//     Target: chat <= 1.3 x node + 200 ms.
//  2. Rendering: the simulator streams 2,000 tokens at 1,000 tokens/s; the chat renders them
//     with colours and Markdown styling (FORCE_COLOR=1) to a pipe. Produced tokens/s (the
//     library's own measurement, from the log) against rendered tokens/s (2,000 tokens over
//     the time from the first to the last byte of the reply on the chat's stdout).
//  3. The renderer alone: 2,000 deltas through the streaming Markdown styler and word wrap.
import { spawn } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';

const BIN = new URL('../dist/cli/bin.js', import.meta.url).pathname;
const RUNS = Number(process.env.RUNS ?? 10);
const home = mkdtempSync(join(tmpdir(), 'sb-bench-chat-'));
const baseEnv = { PATH: process.env.PATH, HOME: home, SWITCHBOARD_HOME: home, SWITCHBOARD_METRICS: 'memory' };
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

function timeNode() {
  const t0 = performance.now();
  const child = spawn(process.execPath, ['-e', ''], { stdio: 'ignore' });
  return new Promise((resolve) => child.on('exit', () => resolve(performance.now() - t0)));
}

function timeChatReady() {
  const t0 = performance.now();
  const child = spawn(process.execPath, [BIN, 'chat', '-m', 'sim/llama'], { env: { ...baseEnv, SWITCHBOARD_CHAT_READY_MARK: '1' } });
  return new Promise((resolve, reject) => {
    let err = '';
    child.stderr.setEncoding('utf8').on('data', (d) => {
      err += d;
      if (err.includes('[chat-ready]')) {
        const ms = performance.now() - t0;
        child.stdin.end();
        child.on('exit', () => resolve(ms));
      }
    });
    child.on('exit', (code) => (err.includes('[chat-ready]') ? undefined : reject(new Error(`chat exited ${code}: ${err}`))));
  });
}

async function startup() {
  await timeNode();
  await timeChatReady();
  const node = [];
  const chat = [];
  for (let i = 0; i < RUNS; i++) {
    node.push(await timeNode());
    chat.push(await timeChatReady());
  }
  const n = median(node);
  const c = median(chat);
  const target = 1.3 * n + 200;
  console.log(`start-up (median of ${RUNS}):`);
  console.log(`  node -e ""                 ${n.toFixed(0).padStart(5)} ms`);
  console.log(`  switchboard chat → prompt  ${c.toFixed(0).padStart(5)} ms   ratio ${(c / n).toFixed(2)}x   target <= ${target.toFixed(0)} ms (1.3x node + 200 ms): ${c <= target ? 'met' : 'MISSED'}`);
}

async function rendering() {
  const { startSimulator } = await import('../dist/sim/server.js');
  const sim = await startSimulator({ port: 0, timeScale: 1 });
  sim.setProviderProfile('sim-fast', { tokensPerSecond: 1000, ttftMs: 50 });
  try {
    const child = spawn(process.execPath, [BIN, 'chat', '-m', 'sim/llama@sim-fast'], {
      env: { ...baseEnv, FORCE_COLOR: '1', SWITCHBOARD_SIM_URL: sim.url },
    });
    let first = 0;
    let last = 0;
    let bytes = 0;
    child.stdout.on('data', (d) => {
      const now = performance.now();
      if (first === 0) first = now;
      last = now;
      bytes += d.length;
    });
    child.stdin.end('Write 2000 tokens about rendering speed\n');
    await new Promise((resolve) => child.on('exit', resolve));
    const logs = await new Promise((resolve) => {
      const c = spawn(process.execPath, [BIN, 'logs', '--json', '-n', '1'], { env: baseEnv });
      let out = '';
      c.stdout.on('data', (d) => (out += d));
      c.on('exit', () => resolve(JSON.parse(out.trim())));
    });
    const shown = await new Promise((resolve) => {
      const c = spawn(process.execPath, [BIN, 'logs', 'show', logs.id, '--json'], { env: baseEnv });
      let out = '';
      c.stdout.on('data', (d) => (out += d));
      c.on('exit', () => resolve(JSON.parse(out)));
    });
    const turn = shown.turns[0];
    const renderedSeconds = (last - first) / 1000;
    const rendered = turn.completionTokens / renderedSeconds;
    console.log(`rendering, ${turn.completionTokens} tokens from the simulator at 1,000 tokens/s (colour + Markdown styling, to a pipe):`);
    console.log(`  produced (library's measure) ${turn.tokensPerSecond.toFixed(0).padStart(6)} tokens/s`);
    console.log(`  rendered (first→last byte)   ${rendered.toFixed(0).padStart(6)} tokens/s   ${bytes} bytes   keeps up: ${rendered >= 0.95 * turn.tokensPerSecond ? 'yes' : 'NO'}`);
  } finally {
    await sim.close();
  }
}

async function rendererAlone() {
  const { MarkdownStream } = await import('../dist/cli/chat/markdown.js');
  const { SoftWrap } = await import('../dist/cli/chat/text.js');
  const { filler } = await import('../dist/sim/replies.js');
  const { splitTokens } = await import('../dist/sim/tokens.js');
  const md = `## Notes\n\n- **bold** and *italic* and \`code\`\n\n\`\`\`ts\nconst x = 1;\n\`\`\`\n\n${filler(1950)}`;
  const tokens = splitTokens(md);
  let best = Infinity;
  let out = 0;
  for (let r = 0; r < 5; r++) {
    const t0 = performance.now();
    const s = new MarkdownStream(true);
    const w = new SoftWrap(120);
    out = 0;
    for (const t of tokens) out += w.write(s.write(t)).length;
    out += (w.write(s.end()) + w.end()).length;
    best = Math.min(best, performance.now() - t0);
  }
  console.log(`renderer alone: ${tokens.length} deltas in ${best.toFixed(1)} ms = ${Math.round(tokens.length / (best / 1000)).toLocaleString('en-US')} tokens/s (${out} characters out)`);
}

await startup();
await rendering();
await rendererAlone();
