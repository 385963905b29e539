// bench:routing's scenario (5), run by bench/routing.mjs in a process of its own: the policy's
// decision with ten deployments (their stats read, ranked, one sample recorded), in CPU time of
// this process (and wall time). Prints one JSON line.
import * as sb from '../dist/index.js';

const metrics = new sb.MemoryMetricsStore();
const policy = new sb.RoutingPolicy();
const keys = Array.from({ length: 10 }, (_, i) => `m@p${i}`);
const now = Date.now();
for (const key of keys) for (let j = 0; j < 40; j++) metrics.record(key, { at: now, ok: true, tokensPerSecond: 100 + 10 * Number(key.slice(3)) + j, ttftMs: 200, latencyMs: 900, itlMs: 8 });
// Candidates of the shape the router hands the policy (router.ts, planStage's `plan`), field for
// field in its order: a shape of the bench's own would make `rank` polymorphic here, which in
// the gateway it never is.
const deployments = new Map(keys.map((key) => [key, { model: 'm', provider: key.slice(2), providerModel: 'm' }]));
const decide = (n) => {
  for (let i = 0; i < n; i++) {
    const candidates = keys.map((key) => ({ key, provider: key.slice(2), deployment: deployments.get(key), inputPrice: 1, outputPrice: 2, stats: metrics.snapshot(key), prior: { tokensPerSecond: 150, fetchedAt: now } }));
    const pick = policy.rank('m@tps', 'highest-tks-per-sec', [], candidates).ordered[0];
    metrics.record(pick.key, { at: Date.now(), ok: true, tokensPerSecond: 190 + (i % 7), ttftMs: 200, latencyMs: 900, itlMs: 8 });
  }
};
decide(2000);
const n = 20000;
// CPU time of this process, not wall time: on a shared machine the wall clock also counts the
// time other processes held the CPU (both are printed).
const c0 = process.cpuUsage();
const t0 = performance.now();
decide(n);
const cpu = process.cpuUsage(c0);
process.stdout.write(`${JSON.stringify({ decisionMicros: (cpu.user + cpu.system) / n, decisionWallMicros: ((performance.now() - t0) * 1000) / n })}\n`);
