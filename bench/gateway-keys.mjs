// Virtual keys' cost on the gateway's throughput (run: npm run bench:gateway-keys).
//
// The same gateway, the same simulated upstream (sim/llama@sim-fast at time scale 0), the
// same load (autocannon, non-streaming chat completions), run twice in one process:
//   raw    the master key, no admission (the plain proxy);
//   keyed  a virtual key with a budget, an rpm and a tpm limit, and a team with its own
//          budget: hashing, the ledger lookups, one atomic reserve and two ledger writes each.
// Prints req/s and p99 of each and keyed/raw; the target is keyed >= 0.8x raw.
// Env: BENCH_SECONDS (5), BENCH_CONNECTIONS (32).
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import autocannon from 'autocannon';
import { parseGatewayConfig } from '../dist/gateway/config.js';
import { Gateway } from '../dist/gateway/gateway.js';
import { openVirtualKeyStack } from '../dist/gateway/virtual-key-stack.js';

const SECONDS = Number(process.env.BENCH_SECONDS ?? 5);
const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS ?? 32);
const MASTER = 'bench-master-key-0123456789';
const dir = mkdtempSync(join(tmpdir(), 'sb-bench-keys-'));
const env = { ...process.env, SWITCHBOARD_HOME: dir, SWITCHBOARD_SIM_TIME_SCALE: '0', SWITCHBOARD_METRICS: 'memory', SWITCHBOARD_KEY_PEPPER: 'bench' };
const body = JSON.stringify({ model: 'sim/llama@sim-fast', max_tokens: 40, messages: [{ role: 'user', content: 'Say something short.' }] });

async function run(label, gateway, key) {
  const url = await gateway.listen(0, '127.0.0.1');
  const request = { method: 'POST', path: '/v1/chat/completions', headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' }, body };
  // Warm up (tokenizer, catalog, connections), then measure.
  await autocannon({ url, connections: CONNECTIONS, duration: 1, requests: [request] });
  const result = await autocannon({ url, connections: CONNECTIONS, duration: SECONDS, requests: [request] });
  await gateway.shutdown(1000);
  const non2xx = result.non2xx + result.errors;
  console.log(`${label.padEnd(6)} ${result.requests.average.toFixed(0).padStart(7)} req/s   p99 ${String(result.latency.p99).padStart(4)} ms   ${non2xx} non-2xx`);
  return result.requests.average;
}

const quiet = { accessLog: () => {}, warn: () => {}, requestLog: false };
const rawConfig = parseGatewayConfig(`master_key: ${MASTER}\nvirtual_keys:\n  enabled: false\n`, 'bench.yaml', env);
const raw = await run('raw', new Gateway({ config: rawConfig, ...quiet }), MASTER);

const keyedConfig = parseGatewayConfig(`master_key: ${MASTER}\nvirtual_keys:\n  ledger: ${join(dir, 'ledger.db')}\n`, 'bench.yaml', env);
const stack = await openVirtualKeyStack(keyedConfig, { log: () => {} });
await stack.ledger.createTeam('bench', { budget: { limitMicros: 1_000_000_000, period: 'month' }, rpm: 10_000_000 }, Date.now());
const { secret } = await stack.keys.create({ name: 'bench', teamId: 'bench', budget: { limitMicros: 1_000_000_000, period: 'month' }, rpm: 10_000_000, tpm: 1_000_000_000 });
const keyed = await run('keyed', new Gateway({ config: keyedConfig, ...quiet, authenticator: stack.keys, admission: stack.admission, admin: stack.admin, readiness: stack.readiness }), secret);
const rows = (await stack.ledger.usage({ by: 'key' }))[0];
await stack.close();

console.log(`keyed/raw ${(keyed / raw).toFixed(2)}x (target >= 0.80x); ledger rows written: ${rows?.requests ?? 0}`);
