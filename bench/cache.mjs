// The response cache's cost on a miss, and a hit against a live turn, in one run.
// Target: the lookup adds < 50 µs to a miss.
// - lookup on a miss: the canonical key (sorted JSON + SHA-256) and the store's get, for a
//   short request, a 10-turn chat and a 50-turn chat; in-memory and SQLite stores. The peer
//   is `JSON.stringify` of the same request alone (the least any content-keyed cache does).
//   "next turn": the history is the same message objects as the turn before (what Chat sends,
//   saying `historyContinues`), so only the new message is hashed; "cold": every message a new
//   object (a Call given a whole history, a gateway request), so everything is hashed in one
//   call; "cold chat": the same for a resumed chat's first turn, which also keeps the hash
//   state for the next turn.
// - a whole turn through Call against a local OpenAI-style server: cache off, cache on and
//   missing every time (lookup + storing the reply), and cache on and hitting.
import { createServer } from 'node:http';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Call } from '../dist/index.js';
import { cacheKey } from '../dist/cache/response-cache.js';
import { MemoryCacheStore } from '../dist/cache/store.js';
import { SQLiteCacheStore } from '../dist/cache/sqlite-store.js';

const quick = process.argv.includes('--quick');
const LOOKUPS = quick ? 2_000 : 20_000;
const TURNS = quick ? 100 : 600;
/** Cold lookups per round: enough that a collector pause in one round is not the round's figure. */
const COLD = quick ? 256 : 1024;

function median(xs) {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

/** Microseconds per call of fn, median of 7 rounds of n calls. */
function perCall(n, fn) {
  const rounds = [];
  for (let r = 0; r < 8; r++) {
    const t = performance.now();
    for (let i = 0; i < n; i++) fn(i);
    if (r > 0) rounds.push(((performance.now() - t) * 1000) / n);
  }
  return median(rounds);
}

const sentence = 'The quick brown fox jumps over the lazy dog while the cache keeps every answer it saw. ';
function conversation(turns) {
  const messages = [{ role: 'system', content: 'You are a careful assistant. Answer briefly and cite sources when you can.' }];
  for (let t = 0; t < turns; t++) {
    messages.push({ role: 'user', content: `Question ${t}: ${sentence.repeat(2)}` });
    messages.push({ role: 'assistant', content: sentence.repeat(4) });
  }
  messages.push({ role: 'user', content: 'And finally?' });
  return messages;
}

const options = { params: { temperature: 0, maxTokens: 512 } };
const chatOptions = { ...options, historyContinues: true };
const memory = new MemoryCacheStore();
const sqlite = new SQLiteCacheStore({ path: join(mkdtempSync(join(tmpdir(), 'sb-bench-cache-')), 'response-cache.db') });
const now = Date.now();
const TARGET_US = 50;

console.log(`response cache: lookup on a miss (µs per lookup, median of 7 x ${LOOKUPS}); target < ${TARGET_US} µs`);
const figures = {};
for (const [name, messages] of [['short request', conversation(0)], ['10-turn chat', conversation(10)], ['50-turn chat', conversation(50)]]) {
  const bytes = Buffer.byteLength(JSON.stringify(messages));
  // A new last message each time: every lookup is a miss, as in a live chat.
  const variants = Array.from({ length: 64 }, (_, i) => [...messages.slice(0, -1), { role: 'user', content: `And finally? (${i})` }]);
  cacheKey('openai/gpt-4o-mini', messages, chatOptions, 'default'); // the turn before
  const cold = Array.from({ length: 64 }, (_, i) => structuredClone(variants[i]));
  let fresh = 0;
  const peer = perCall(LOOKUPS, (i) => JSON.stringify({ model: 'openai/gpt-4o-mini', messages: variants[i & 63], params: options.params }));
  const mem = perCall(LOOKUPS, (i) => memory.get(cacheKey('openai/gpt-4o-mini', variants[i & 63], chatOptions, 'default'), now));
  const sql = perCall(Math.floor(LOOKUPS / 4), (i) => sqlite.get(cacheKey('openai/gpt-4o-mini', variants[i & 63], chatOptions, 'default'), now));
  // Cold: a new copy of the history for every lookup (the copying timed alone and taken off).
  const copyUs = perCall(COLD, () => cold[fresh++ & 63].map((m) => ({ ...m })));
  const coldUs = perCall(COLD, () => memory.get(cacheKey('openai/gpt-4o-mini', cold[fresh++ & 63].map((m) => ({ ...m })), options, 'default'), now)) - copyUs;
  const coldChatUs = perCall(COLD, () => memory.get(cacheKey('openai/gpt-4o-mini', cold[fresh++ & 63].map((m) => ({ ...m })), chatOptions, 'default'), now)) - copyUs;
  figures[name] = { bytes, peerUs: peer, memoryUs: mem, sqliteUs: sql, coldMemoryUs: coldUs, coldChatMemoryUs: coldChatUs };
  const verdict = (us) => (us < TARGET_US ? 'met' : 'MISSED');
  console.log(
    `  ${name.padEnd(14)} ${String(bytes).padStart(6)} B   JSON.stringify ${peer.toFixed(1).padStart(5)} µs   next turn: memory ${mem.toFixed(1).padStart(5)} µs (${(mem / peer).toFixed(2)}x, ${verdict(mem)}), sqlite ${sql.toFixed(1).padStart(5)} µs (${(sql / peer).toFixed(2)}x, ${verdict(sql)})   cold: memory ${coldUs.toFixed(1).padStart(5)} µs (${(coldUs / peer).toFixed(2)}x, ${verdict(coldUs)})   cold chat: ${coldChatUs.toFixed(1).padStart(5)} µs`,
  );
}
sqlite.close();

// Whole turns against a local server that answers at once.
const body =
  ['Hi', ' there', ', friend'].map((t) => `data: ${JSON.stringify({ choices: [{ index: 0, delta: { content: t }, finish_reason: null }] })}\n\n`).join('') +
  `data: ${JSON.stringify({ choices: [], usage: { prompt_tokens: 12, completion_tokens: 3, total_tokens: 15 } })}\n\ndata: [DONE]\n\n`;
const upstream = createServer((req, res) => {
  req.resume();
  req.on('end', () => {
    res.writeHead(200, { 'content-type': 'text/event-stream' });
    res.end(body);
  });
});
await new Promise((resolve) => upstream.listen(0, '127.0.0.1', resolve));
const client = { baseURL: `http://127.0.0.1:${upstream.address().port}/v1`, apiKey: 'sk-bench-0000', temperature: 0 };
const messages = conversation(10);

let counter = 0;
async function turns(call, prompt) {
  const t = performance.now();
  for (let i = 0; i < TURNS / 6; i++) await call.run(prompt(counter++));
  return ((performance.now() - t) * 1000 * 6) / TURNS;
}
/** Six interleaved rounds each (the order rotating), after a warm-up; the median round per case. */
async function interleaved(cases) {
  for (const [call, prompt] of cases) for (let i = 0; i < 20; i++) await call.run(prompt(counter++));
  const rounds = cases.map(() => []);
  for (let r = 0; r < 6; r++) {
    for (let k = 0; k < cases.length; k++) {
      const i = (k + r) % cases.length;
      const [call, prompt] = cases[i];
      rounds[i].push(await turns(call, prompt));
    }
  }
  return rounds.map(median);
}
const withHistory = (text) => [...messages.slice(0, -1), { role: 'user', content: text }];
const off = new Call('acme/model', client);
const missing = new Call('acme/model', { ...client, cache: { store: new MemoryCacheStore() } });
const hitting = new Call('acme/model', { ...client, cache: { store: new MemoryCacheStore() } });
// Call takes one input: the 10-turn history is folded into it (as large as the chat above, and cold).
const big = JSON.stringify(withHistory('x'));
const [offUs, missUs, hitUs] = await interleaved([
  [off, (i) => `${big} ${i}`],
  [missing, (i) => `${big} ${i}`],
  [hitting, () => `${big} same`],
]);
upstream.close();
console.log(`whole turns (µs per turn, ${TURNS} turns, ${Buffer.byteLength(big)} B prompt)`);
console.log(`  cache off ${offUs.toFixed(0).padStart(6)} µs   cache on, miss ${missUs.toFixed(0).padStart(6)} µs (+${(missUs - offUs).toFixed(0)} µs, ${(missUs / offUs).toFixed(2)}x)   cache on, hit ${hitUs.toFixed(0).padStart(6)} µs (${(hitUs / offUs).toFixed(3)}x of a live turn)`);
console.log(JSON.stringify({ lookup: figures, turns: { offUs, missUs, hitUs } }));
