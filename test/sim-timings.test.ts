/**
 * The simulator's `timings` option: every protocol's last event carries llama.cpp's
 * `timings`, the router reads it, and the speed it records is the simulated one (profile
 * speed over the time scale) whatever the machine's load.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Call } from '../src/call.js';
import { MemoryMetricsStore } from '../src/routing/metrics.js';
import { RoutingPolicy } from '../src/routing/policy.js';
import { PriorStore } from '../src/routing/priors.js';
import { CircuitBreakers } from '../src/routing/retry.js';
import { startSimulator, type RunningSimulator } from '../src/sim/server.js';

const TIME_SCALE = 0.02;
let sim: RunningSimulator;
let plain: RunningSimulator;

beforeAll(async () => {
  sim = await startSimulator({ port: 0, timeScale: TIME_SCALE, timings: true });
  plain = await startSimulator({ port: 0, timeScale: TIME_SCALE });
});
afterAll(async () => {
  await sim.close();
  await plain.close();
});

function routing() {
  return { metrics: new MemoryMetricsStore(), policy: new RoutingPolicy(), breakers: new CircuitBreakers(), priors: new PriorStore({ path: null }) };
}

describe('simulator timings', () => {
  // One provider per protocol and cloud: OpenAI, Anthropic, Gemini, Bedrock, Azure, Vertex.
  const providers = { 'sim-fast': 210, 'sim-anthropic': 70, 'sim-gemini': 170, 'sim-bedrock': 90, 'sim-azure': 130, 'sim-vertex': 40 };

  it.each(Object.entries(providers))('%s reports its simulated speed and the router records it', async (provider, tps) => {
    sim.setProviderProfile(provider, { tokensPerSecond: tps, failRate: 0 });
    const state = routing();
    const model = `sim/llama@${provider}|tps>0`;
    const call = new Call(model, { env: { ...process.env, SWITCHBOARD_SIM_URL: sim.url }, routing: state });
    for (let i = 0; i < 3; i++) await call.run(`Tell me something ${i}.`);
    const measured = state.metrics.snapshot(`sim/llama@${provider}`)?.tokensPerSecond;
    // Each token's delay has ±20% jitter; over a reply of dozens of tokens the mean is within a few percent.
    const simulated = tps / TIME_SCALE;
    expect(measured?.p50).toBeGreaterThan(simulated * 0.9);
    expect(measured?.p50).toBeLessThan(simulated * 1.1);
    sim.resetProfiles();
  });

  it('streams carry llama.cpp-style timings only when asked to', async () => {
    const body = JSON.stringify({ model: 'llama', stream: true, stream_options: { include_usage: true }, messages: [{ role: 'user', content: 'hi' }] });
    const read = async (s: RunningSimulator) => {
      const res = await fetch(`${s.url}/sim-fast/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body });
      return res.text();
    };
    const withTimings = await read(sim);
    const line = withTimings.split('\n').find((l) => l.includes('"timings"')) ?? '';
    const timings = (JSON.parse(line.slice('data: '.length)) as { timings: { predicted_n: number; predicted_ms: number; predicted_per_second: number } }).timings;
    expect(timings.predicted_per_second / (timings.predicted_n / (timings.predicted_ms / 1000))).toBeCloseTo(1, 3);
    expect(timings.predicted_per_second).toBeGreaterThan((220 / TIME_SCALE) * 0.8);
    expect(await read(plain)).not.toContain('"timings"');
  });
});
