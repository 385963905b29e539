// Routing benchmark against the built-in simulator (run: npm run bench:routing).
//
// (0) Fresh installs with priors: sim/llama@highest-tks-per-sec (or @lowest-ttft) with new
//     routing state and random provider speeds; share whose first pick is the best provider.
// (1) sim/llama@highest-tks-per-sec over 300 calls while providers' speeds swap halfway:
//     chosen provider's output speed as a share of an oracle that always knew the fastest,
//     and the share of settled calls (not the first 20 after a change) that went elsewhere.
// (2) sim/llama@sim-flaky->sim-cheap with sim-flaky failing 30%: share of calls that succeed,
//     and extra p99 latency against the same chain with no failures.
// (3) sim/llama@lowest-cost|tps>=N, N between sim-cheap's and sim-flaky's measured speeds:
//     share of calls answered by the cheapest provider that meets N.
// (4) sim/llama@sim-flaky alone, failing 30%, 1,000 calls: share that succeed.
// (5) The policy's decision (ten deployments' stats read and ranked, one sample recorded), in
//     CPU time (and wall time) of a process of its own (bench/routing-decision.mjs).
//
// Env: BENCH_CALLS (300), BENCH_TIME_SCALE (0.05), BENCH_INSTALLS (20).
import { execFileSync } from 'node:child_process';
import * as sb from '../dist/index.js';

const CALLS = Number(process.env.BENCH_CALLS ?? 300);
const TIME_SCALE = Number(process.env.BENCH_TIME_SCALE ?? 0.05);
const INSTALLS = Number(process.env.BENCH_INSTALLS ?? 20);
const MODEL = 'sim/llama';

// The simulator reports each reply's simulated speed (llama.cpp's `timings`), which the router
// reads: what it measures is the speed the oracle below compares with, however loaded the machine.
const sim = await sb.startSimulator({ port: 0, timeScale: TIME_SCALE, timings: true });
const setProfile = (name, partial) => sim.setProviderProfile(name, partial);
const env = { ...process.env, SWITCHBOARD_SIM_URL: sim.url };
/** A provider's current profile, as the simulator reports it. */
async function profileOf(provider) {
  const profiles = await (await fetch(`${sim.url}/_sim/profiles`)).json();
  return (profiles.providers ?? profiles)[provider];
}

/** A fresh routing state (metrics, policy, breakers, priors) so scenarios do not see each other: a fresh install. */
function routing(extra = {}) {
  return {
    metrics: new sb.MemoryMetricsStore(),
    policy: new sb.RoutingPolicy(),
    breakers: new sb.CircuitBreakers(),
    priors: new sb.PriorStore({ path: null }),
    random: sb.seededRandom(7),
    ...extra,
  };
}

async function once(call, model) {
  try {
    await call.run('Tell me something.');
    return { ok: true, result: call.lastResults[model] };
  } catch (error) {
    return { ok: false, error };
  }
}

const percentile = (xs, q) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length === 0 ? NaN : s[Math.min(s.length - 1, Math.ceil(q * s.length) - 1)];
};
const baseName = (provider) => provider.split('/')[0];

const rows = [];
let firstPickRight;
let explorationShare;
let tpsShareOfOracle;
let fallbackSuccess;
let fallbackP99ExtraMs;
let cheapestShare;

const live = await (await fetch(`${sim.url}/`)).json();
const llamaProviders = live.models[MODEL.slice(4)].providers;

// (0) fresh installs with priors: is the first pick the best?
{
  const rand = sb.seededRandom(11);
  let right = 0;
  const wrong = [];
  for (let n = 0; n < INSTALLS; n++) {
    const byTtft = n % 4 === 3;
    const figures = {};
    for (const p of llamaProviders) {
      figures[p] = byTtft ? Math.round(100 + rand() * 900) : Math.round(30 + rand() * 300);
      setProfile(p, byTtft ? { ttftMs: figures[p], failRate: 0 } : { tokensPerSecond: figures[p], failRate: 0 });
    }
    const mode = byTtft ? 'lowest-ttft' : 'highest-tks-per-sec';
    const best = Object.entries(figures).sort((a, b) => (byTtft ? a[1] - b[1] : b[1] - a[1]))[0][0];
    const model = `${MODEL}@${mode}`;
    const r = await once(new sb.Call(model, { env, routing: routing() }), model);
    const picked = r.ok ? baseName(r.result.provider) : 'error';
    if (picked === best) right++;
    else wrong.push(`${mode}: ${picked} not ${best}`);
  }
  sim.resetProfiles();
  firstPickRight = right / INSTALLS;
  rows.push({ scenario: '0 fresh installs with priors', metric: 'first pick right', value: firstPickRight.toFixed(3), target: '>= 0.9', detail: wrong.length ? wrong.slice(0, 3).join('; ') : `${INSTALLS} installs` });
}

// (1) highest-tks-per-sec while speeds swap halfway.
{
  setProfile('sim-flaky', { failRate: 0 });
  // Every provider that serves the model counts, at the speed its profile gives it now:
  // the three swapped below, and the others (sim-anthropic, sim-gemini) at their own.
  const speeds = {};
  for (const provider of llamaProviders) {
    speeds[provider] = (await profileOf(provider)).tokensPerSecond;
  }
  Object.assign(speeds, { 'sim-fast': 220, 'sim-cheap': 45, 'sim-flaky': 120 });
  for (const [p, tps] of Object.entries(speeds)) setProfile(p, { tokensPerSecond: tps });
  const model = `${MODEL}@highest-tks-per-sec`;
  const call = new sb.Call(model, { env, routing: routing() });
  let achieved = 0;
  let oracle = 0;
  let measured = 0;
  let settled = 0;
  let elsewhere = 0;
  const picks = {};
  const half = Math.floor(CALLS / 2);
  for (let i = 0; i < CALLS; i++) {
    if (i === half) {
      Object.assign(speeds, { 'sim-fast': 40, 'sim-cheap': 260, 'sim-flaky': 120 });
      for (const [p, tps] of Object.entries(speeds)) setProfile(p, { tokensPerSecond: tps });
    }
    const r = await once(call, model);
    oracle += Math.max(...Object.values(speeds));
    if (!r.ok) continue;
    const p = baseName(r.result.provider);
    picks[p] = (picks[p] ?? 0) + 1;
    achieved += speeds[p] ?? 0;
    if (i % half >= 20) {
      settled++;
      const fastest = Object.entries(speeds).sort((a, b) => b[1] - a[1])[0][0];
      if (p !== fastest) elsewhere++;
    }
    measured += r.result.tokensPerSecond ?? 0;
  }
  const share = achieved / oracle;
  rows.push({ scenario: '1 tps, speeds swap halfway', metric: 'tps share of oracle', value: share.toFixed(3), target: '>= 0.95', detail: `picks ${JSON.stringify(picks)}, mean measured tps ${(measured / CALLS).toFixed(0)}` });
  explorationShare = elsewhere / settled;
  rows.push({ scenario: '1 tps, speeds swap halfway', metric: 'exploration share, settled', value: explorationShare.toFixed(3), target: '<= 0.05', detail: `${elsewhere} of ${settled} calls after the first 20 of each regime` });
  tpsShareOfOracle = share;
  setProfile('sim-fast', { tokensPerSecond: 220 });
  setProfile('sim-cheap', { tokensPerSecond: 45 });
}

// (2) fallback from a flaky provider.
{
  const model = `${MODEL}@sim-flaky->sim-cheap`;
  const latencies = async (failRate) => {
    setProfile('sim-flaky', { failRate });
    const call = new sb.Call(model, { env, routing: routing() });
    const out = { ok: 0, latency: [] };
    for (let i = 0; i < CALLS; i++) {
      const r = await once(call, model);
      if (r.ok) {
        out.ok++;
        out.latency.push(r.result.latencyMs);
      }
    }
    return out;
  };
  const clean = await latencies(0);
  const flaky = await latencies(0.3);
  const success = flaky.ok / CALLS;
  const extra = percentile(flaky.latency, 0.99) - percentile(clean.latency, 0.99);
  rows.push({ scenario: '2 flaky->cheap, 30% failures', metric: 'success share', value: success.toFixed(3), target: '1.0', detail: `p99 ${percentile(flaky.latency, 0.99).toFixed(0)} ms vs ${percentile(clean.latency, 0.99).toFixed(0)} ms clean` });
  rows.push({ scenario: '2 flaky->cheap, 30% failures', metric: 'extra p99 ms', value: extra.toFixed(0), target: 'small', detail: `time scale ${TIME_SCALE}` });
  fallbackSuccess = success;
  fallbackP99ExtraMs = extra;
}

// (3) lowest-cost with a throughput floor.
{
  setProfile('sim-flaky', { failRate: 0 });
  // Calibrate N between sim-cheap's and sim-flaky's speeds as measured here (time scale included).
  const measuredTps = async (provider) => {
    const model = `${MODEL}@${provider}|tps>0`;
    const state = routing();
    const call = new sb.Call(model, { env, routing: state });
    for (let i = 0; i < 5; i++) await once(call, model);
    // The router's own measurement (the figure the threshold is judged by).
    return state.metrics.snapshot(`${MODEL}@${provider}`)?.tokensPerSecond?.p50 ?? NaN;
  };
  const cheapTps = await measuredTps('sim-cheap');
  const flakyTps = await measuredTps('sim-flaky');
  const n = Math.round(Math.sqrt(cheapTps * flakyTps));
  const model = `${MODEL}@lowest-cost|tps>=${n}`;
  const call = new sb.Call(model, { env, routing: routing() });
  const picks = {};
  for (let i = 0; i < CALLS; i++) {
    const r = await once(call, model);
    if (r.ok) picks[baseName(r.result.provider)] = (picks[baseName(r.result.provider)] ?? 0) + 1;
  }
  const share = (picks['sim-flaky'] ?? 0) / CALLS;
  rows.push({ scenario: `3 lowest-cost|tps>=${n}`, metric: 'cheapest-meeting share', value: share.toFixed(3), target: '>= 0.95', detail: `picks ${JSON.stringify(picks)}; measured cheap ${cheapTps.toFixed(0)} / flaky ${flakyTps.toFixed(0)} tps` });
  cheapestShare = share;
}

await sim.close();

// (4) one provider failing 30% of the time, alone.
let flakyAloneSuccess;
{
  const instant = await sb.startSimulator({ port: 0, timeScale: 0, failRate: 0.3, seed: 5 });
  const model = `${MODEL}@sim-flaky`;
  const call = new sb.Call(model, { env: { ...process.env, SWITCHBOARD_SIM_URL: instant.url }, routing: routing({ retry: { baseDelayMs: 2, maxDelayMs: 20 } }) });
  let ok = 0;
  const total = 1000;
  for (let i = 0; i < total; i++) if ((await once(call, model)).ok) ok++;
  await instant.close();
  flakyAloneSuccess = ok / total;
  rows.push({ scenario: '4 sim-flaky alone, 30% failures', metric: 'success share', value: flakyAloneSuccess.toFixed(3), target: 'nearly 1', detail: `${ok} of ${total} calls; 2 retries each` });
}

// (5) decision time with ten deployments, in a process of its own (bench/routing-decision.mjs):
// here it would also pay for marking the heap the simulated traffic above left behind.
let decisionMicros;
let decisionWallMicros;
{
  const out = execFileSync(process.execPath, [new URL('./routing-decision.mjs', import.meta.url).pathname], { encoding: 'utf8' });
  ({ decisionMicros, decisionWallMicros } = JSON.parse(out));
  rows.push({ scenario: '5 decision, 10 deployments', metric: 'CPU µs per decision', value: decisionMicros.toFixed(2), target: '< 20', detail: `stats read + rank + one sample recorded, own process; wall ${decisionWallMicros.toFixed(2)} µs` });
}

console.table(rows);
console.log(JSON.stringify({ tpsShareOfOracle, firstPickRight, explorationShare, cheapestShare, fallbackSuccess, fallbackP99ExtraMs, flakyAloneSuccess, decisionMicros, decisionWallMicros }));
