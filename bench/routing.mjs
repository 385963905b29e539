// Routing benchmark against the built-in simulator (run: npm run bench:routing).
//
// (1) sim/llama@highest-tks-per-sec over 300 calls while providers' speeds swap halfway:
//     chosen provider's output speed as a share of an oracle that always knew the fastest.
// (2) sim/llama@sim-flaky->sim-cheap with sim-flaky failing 30%: share of calls that succeed,
//     and extra p99 latency against the same chain with no failures.
// (3) sim/llama@lowest-cost|tps>=N, N between sim-cheap's and sim-flaky's measured speeds:
//     share of calls answered by the cheapest provider that meets N.
//
// Needs the simulator (`startSimulator` with a `setProviderProfile(name, partial)` control,
// on the running simulator or exported beside it). Env: BENCH_CALLS (300), BENCH_TIME_SCALE (0.05).
import * as sb from '../dist/index.js';

const CALLS = Number(process.env.BENCH_CALLS ?? 300);
const TIME_SCALE = Number(process.env.BENCH_TIME_SCALE ?? 0.05);
const MODEL = 'sim/llama';

const sim = await sb.startSimulator({ port: 0, timeScale: TIME_SCALE });
const setProfile = (name, partial) => {
  if (typeof sim.setProviderProfile === 'function') return sim.setProviderProfile(name, partial);
  if (typeof sb.setProviderProfile === 'function') return sb.setProviderProfile(name, partial);
  throw new Error('the simulator has no setProviderProfile control');
};
const env = { ...process.env, SWITCHBOARD_SIM_URL: sim.url };
/** A provider's current profile, as the simulator reports it. */
async function profileOf(provider) {
  const profiles = await (await fetch(`${sim.url}/_sim/profiles`)).json();
  return (profiles.providers ?? profiles)[provider];
}

/** A fresh routing state (metrics, policy, breakers) so scenarios do not see each other. */
function routing(extra = {}) {
  return {
    metrics: new sb.MemoryMetricsStore(),
    policy: new sb.RoutingPolicy({ random: sb.seededRandom(42) }),
    breakers: new sb.CircuitBreakers(),
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
let tpsShareOfOracle;
let fallbackSuccess;
let fallbackP99ExtraMs;
let cheapestShare;

// (1) highest-tks-per-sec while speeds swap halfway.
{
  setProfile('sim-flaky', { failRate: 0 });
  // Every provider that serves the model counts, at the speed its profile gives it now:
  // the three swapped below, and the others (sim-anthropic, sim-gemini) at their own.
  const live = await (await fetch(`${sim.url}/`)).json();
  const speeds = {};
  for (const provider of live.models[MODEL.slice(4)].providers) {
    speeds[provider] = (await profileOf(provider)).tokensPerSecond;
  }
  Object.assign(speeds, { 'sim-fast': 220, 'sim-cheap': 45, 'sim-flaky': 120 });
  for (const [p, tps] of Object.entries(speeds)) setProfile(p, { tokensPerSecond: tps });
  const model = `${MODEL}@highest-tks-per-sec`;
  const call = new sb.Call(model, { env, routing: routing() });
  let achieved = 0;
  let oracle = 0;
  let measured = 0;
  const picks = {};
  for (let i = 0; i < CALLS; i++) {
    if (i === Math.floor(CALLS / 2)) {
      Object.assign(speeds, { 'sim-fast': 40, 'sim-cheap': 260, 'sim-flaky': 120 });
      for (const [p, tps] of Object.entries(speeds)) setProfile(p, { tokensPerSecond: tps });
    }
    const r = await once(call, model);
    oracle += Math.max(...Object.values(speeds));
    if (!r.ok) continue;
    const p = baseName(r.result.provider);
    picks[p] = (picks[p] ?? 0) + 1;
    achieved += speeds[p] ?? 0;
    measured += r.result.tokensPerSecond ?? 0;
  }
  const share = achieved / oracle;
  rows.push({ scenario: '1 tps, speeds swap halfway', metric: 'tps share of oracle', value: share.toFixed(3), target: '>= 0.90', detail: `picks ${JSON.stringify(picks)}, mean measured tps ${(measured / CALLS).toFixed(0)}` });
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
    const model = `${MODEL}@${provider}`;
    const call = new sb.Call(model, { env, routing: routing() });
    const xs = [];
    for (let i = 0; i < 5; i++) {
      const r = await once(call, model);
      if (r.ok && r.result.tokensPerSecond) xs.push(r.result.tokensPerSecond);
    }
    return percentile(xs, 0.5);
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
console.table(rows);
console.log(JSON.stringify({ tpsShareOfOracle, fallbackSuccess, fallbackP99ExtraMs, cheapestShare }));
