// The SQLite ledger's spend writes as the gateway's main thread sees them: rounds of
// `recordSettlement` calls issued in one turn of the event loop (as concurrent requests settle),
// timed by the main thread's busy time (performance.eventLoopUtilization) and its longest
// stalls (monitorEventLoopDelay), and the largest the WAL grew. Three ways: rounds back to back
// (`flat out`), the same with a key lookup beside each write (`lookups`), and rounds started
// every 2 ms without waiting for the last (`paced`: the loop is idle between rounds, as a
// gateway's is, so its delays are the stalls themselves: a commit, a checkpoint's fsync).
// `npm run bench:ledger` (it builds dist/ first).
//
//   LEDGER_WRITES=50000 LEDGER_CONCURRENCY=64 npm run bench:ledger
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { monitorEventLoopDelay, performance } from 'node:perf_hooks';
import { SQLiteLedger } from '../dist/store/ledger.js';

const WRITES = Number(process.env.LEDGER_WRITES ?? 20_000);
const CONCURRENCY = (process.env.LEDGER_CONCURRENCY ?? '16,64').split(',').map(Number);

const walSize = (path) => {
  try {
    return statSync(`${path}-wal`).size;
  } catch {
    return 0;
  }
};

async function run(concurrency, mode) {
  const withLookups = mode === 'lookups';
  const dir = mkdtempSync(join(tmpdir(), 'sb-ledger-bench-'));
  const path = join(dir, 'ledger.db');
  const ledger = new SQLiteLedger(path);
  await ledger.createKey({ id: 'sk-sb-bench0001', name: 'bench' }, 'hash-bench', 1);
  const outcome = { status: 'ok', at: Date.now(), promptTokens: 12, completionTokens: 40, costFemto: 123_456_789_012n, provider: 'local', resolvedModel: 'llama' };
  const row = (i) => ({ id: `req-${i}`, at: Date.now(), keyId: 'sk-sb-bench0001', model: 'llama', protocol: 'openai', scopes: [{ scope: 'key:sk-sb-bench0001', periodId: 'month-2026-12' }], reservedMicros: 90, expiresAt: Date.now() + 60_000 });
  // Warm up (statements prepared, a worker started), then measure.
  await Promise.all(Array.from({ length: concurrency }, (_, i) => ledger.recordSettlement(row(`warm${i}`), outcome)));
  const delay = monitorEventLoopDelay({ resolution: 1 });
  delay.enable();
  const elu = performance.eventLoopUtilization();
  const started = performance.now();
  let maxWal = 0;
  const inFlight = [];
  for (let done = 0; done < WRITES; done += concurrency) {
    const round = [];
    for (let i = done; i < done + concurrency && i < WRITES; i++) {
      if (withLookups) round.push(ledger.keyBySecretHash('hash-bench', Date.now()));
      round.push(ledger.recordSettlement(row(i), outcome));
    }
    if (mode === 'paced') {
      inFlight.push(Promise.all(round));
      await new Promise((resolve) => setTimeout(resolve, 2));
    } else await Promise.all(round);
    if (done % (concurrency * 16) === 0) maxWal = Math.max(maxWal, walSize(path));
  }
  await Promise.all(inFlight);
  const wall = performance.now() - started;
  const busy = performance.eventLoopUtilization(elu);
  delay.disable();
  const spent = await ledger.spentFemto('total', 0);
  if (spent !== outcome.costFemto * BigInt(WRITES + concurrency)) throw new Error(`the ledger holds ${spent} femto-dollars, not what was written`);
  await ledger.close();
  rmSync(dir, { recursive: true, force: true });
  return {
    concurrency,
    mode,
    writesPerSecond: Math.round(WRITES / (wall / 1000)),
    mainBusyUsPerWrite: Number(((busy.active * 1000) / WRITES).toFixed(1)),
    maxStallMs: Number((delay.max / 1e6).toFixed(1)),
    p99StallMs: Number((delay.percentile(99) / 1e6).toFixed(1)),
    maxWalMB: Number((maxWal / 1e6).toFixed(1)),
  };
}

for (const c of CONCURRENCY) {
  for (const mode of ['flat out', 'lookups', 'paced']) console.log(JSON.stringify(await run(c, mode)));
}
